/**
 * The test side of a writer child process (conformance/fixtures/coherence-node.ts on host-local
 * multicast, conformance/netns/netns-node.ts in a network namespace): request/response over IPC,
 * and the sets it streams ('written' messages), kept for the "no returned write lost" checks.
 */
import type { ChildProcess } from 'node:child_process';

export interface Reply {
  type: string;
  index: number;
  [k: string]: unknown;
}

/** Rejects after `ms` with `what`, so no step of a test can hang. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_r, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  })]).finally(() => clearTimeout(timer));
}

/** Versions as reports give them (decimal hlc, hex origin): hlc first, then the origin. */
export function compareVersion(a: { hlc: string; origin: string }, b: { hlc: string; origin: string }): number {
  const h = BigInt(a.hlc) - BigInt(b.hlc);
  if (h !== 0n) return h < 0n ? -1 : 1;
  const n = BigInt(`0x${a.origin}`) - BigInt(`0x${b.origin}`);
  return n === 0n ? 0 : n < 0n ? -1 : 1;
}

export class MemberProcess {
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly ready: Promise<Reply>;
  readonly errors: Reply[] = [];
  /** "key/hlc" -> value checksum of every set it reported; and the highest hlc reported. */
  readonly written = new Map<string, string>();
  lastReportedHlc = 0n;
  nodeId = '';
  readonly #waiting = new Map<string, (r: Reply) => void>();

  /** `name` labels its failures ("process a", "host 2 (b2)"). */
  constructor(readonly child: ChildProcess, readonly name: string) {
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
    this.ready = this.#next('ready').then((r) => {
      this.nodeId = String(r['nodeId'] ?? '');
      return r;
    });
    this.child.on('message', (m: Reply) => {
      if (m.type === 'written') {
        for (const [key, hlc, sum] of m['sets'] as Array<[string, string, string]>) {
          this.written.set(`${key}/${hlc}`, sum);
          if (BigInt(hlc) > this.lastReportedHlc) this.lastReportedHlc = BigInt(hlc);
        }
        return;
      }
      if (m.type === 'error') this.errors.push(m);
      const name = m.type === 'error' ? String(m['cmd']) : m.type;
      const w = this.#waiting.get(name);
      if (w) {
        this.#waiting.delete(name);
        w(m);
      }
    });
  }

  ask(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 20_000): Promise<Reply> {
    const p = this.#next(cmd);
    this.child.send({ cmd, ...args });
    return within(p, timeoutMs, `${this.name} ${cmd}`);
  }

  signal(sig: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(sig);
  }

  kill(): void {
    this.signal('SIGKILL');
  }

  #next(type: string): Promise<Reply> {
    return new Promise((resolve) => this.#waiting.set(type, resolve));
  }
}
