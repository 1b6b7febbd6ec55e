/**
 * Child processes of the real-socket cluster tests: each runs conformance/fixtures/cache-node.ts
 * (the public API) through ts-node in transpile-only mode (the mocha run type-checks the
 * fixtures already; transpile-only starts in about 1 s instead of 4).
 *
 * Network safety: every process gets MCCACHE_MULTICAST_HOPS=0 (interface 127.0.0.1, TTL 0,
 * loopback on) and a group and port of this run's own, never the production 224.0.0.3:4000.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export const FIXTURES = join(__dirname, '..', 'fixtures');
export const TS_NODE = ['-r', require.resolve('ts-node/register')];

/** A group in 239.255.0.0/16 (administratively scoped) and a high port, random per run. */
export function privateGroup(): { group: string; port: number } {
  const r = (n: number): number => Math.floor(Math.random() * n);
  return { group: `239.255.${1 + r(254)}.${1 + r(254)}`, port: 20_000 + r(40_000) };
}

/** The environment of a host-local McCache process on `group:port`. */
export function hostLocalEnv(group: string, port: number, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('MCCACHE_')) delete env[k];
  return {
    ...env,
    TS_NODE_TRANSPILE_ONLY: '1',
    TS_NODE_PROJECT: join(__dirname, '..', '..', 'tsconfig.test.json'),
    MCCACHE_MULTICAST_IP: `${group}:${port}`,
    MCCACHE_MULTICAST_HOPS: '0',
    ...extra,
  };
}

export interface Reply {
  type: string;
  index: number;
  [k: string]: unknown;
}

/** One cache-node.ts child with a request/response helper over IPC. */
export class CacheNodeProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  readonly ready: Promise<Reply>;
  readonly #waiting = new Map<string, (r: Reply) => void>();
  readonly #errors: Reply[] = [];

  constructor(index: number, members: number, cache: string, env: NodeJS.ProcessEnv) {
    this.child = fork(join(FIXTURES, 'cache-node.ts'), [], {
      execArgv: TS_NODE,
      env: { ...env, CACHE_NODE_CONFIG: JSON.stringify({ index, members, cache }) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal, at: performance.now() })));
    this.ready = this.#next('ready');
    this.child.on('message', (m: Reply) => {
      if (m.type === 'error') this.#errors.push(m);
      const w = this.#waiting.get(m.type === 'error' ? String(m['cmd']) : m.type);
      if (w) {
        this.#waiting.delete(m.type === 'error' ? String(m['cmd']) : m.type);
        w(m);
      }
    });
  }

  get errors(): Reply[] {
    return this.#errors;
  }

  /** Sends a command and resolves with its answer. */
  ask(cmd: string, args: Record<string, unknown> = {}): Promise<Reply> {
    const p = this.#next(cmd);
    this.child.send({ cmd, ...args });
    return p;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  #next(type: string): Promise<Reply> {
    return new Promise((resolve) => this.#waiting.set(type, resolve));
  }
}

/** Runs `node -r ts-node/register <script> [args]` without IPC; resolves with its exit and output. */
export function runScript(script: string, env: NodeJS.ProcessEnv, timeoutMs: number, args: string[] = []):
Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; exitedAt: number; lines: Array<{ line: string; at: number }> }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...TS_NODE, script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let partial = '';
    const lines: Array<{ line: string; at: number }> = [];
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      partial += d.toString();
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) lines.push({ line, at: performance.now() });
    });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (partial) lines.push({ line: partial, at: performance.now() });
      resolve({ code, signal, stdout, stderr, exitedAt: performance.now(), lines });
    });
  });
}
