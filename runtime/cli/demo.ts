/**
 * `make demo` / `mccache demo`: three local processes share one cache (README's first command).
 *
 * The parent forks three node processes (this file with `--demo-node <i>`), each of which takes
 * `getCache('demo')` from the public API on host-local multicast: interface 127.0.0.1, TTL 0,
 * a random group in 239.255.0.0/16 and a random high port, so nothing leaves this host and two
 * demos never meet. Then it shows:
 *   1. a write on node 1 and the time until nodes 2 and 3 see it (put-to-visible latency,
 *      from process.hrtime, the system-wide monotonic clock, so the processes' instants compare);
 *   2. an update from node 2 and a delete from node 3, each visible everywhere;
 *   3. every node's view and the cluster checksums (getClusterChecksum) agreeing;
 * and every node then simply ends (no shutdown() call: the library shuts down at exit).
 *
 * Exit code 0 when every step was seen everywhere, the views and checksums agree and every
 * node exited with code 0 by itself; 1 otherwise. `--json` adds one JSON summary line at the end.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { getCache, getClusterChecksum, getLocalMetrics } from '../index';

const CACHE = 'demo';
const NODES = 3;
/** Longest the demo waits for any one thing (cluster formation, a write seen, an exit), ms. */
const STEP_TIMEOUT_MS = 5000;
/** Heartbeat period of the demo's nodes: forms the cluster fast even if a JOIN is missed. */
const DAEMON_SLEEP_MS = 200;
/**
 * Writes per node to a scratch cache before the measured steps. The first messages run cold
 * code (V8 interprets before it compiles): about 2 ms per message on the project's machine
 * against about 0.3 ms once compiled, of which 0.2 ms is the host's own UDP loopback.
 */
const WARMUP_WRITES = 300;

// --- node process ------------------------------------------------------------------------------

type NodeCommand =
  | { cmd: 'warmup'; writes: number }
  | { cmd: 'set'; key: string; value: unknown }
  | { cmd: 'delete'; key: string }
  | { cmd: 'view' }
  | { cmd: 'checksum' }
  | { cmd: 'exit' };

interface NodeEvent {
  type: 'ready' | 'warm' | 'seen' | 'done' | 'view' | 'checksum' | 'failed';
  node: number;
  [k: string]: unknown;
}

function hr(): string {
  return process.hrtime.bigint().toString();
}

function runNode(index: number, group: string, port: number): void {
  const cache = getCache<unknown>(CACHE, { multicastIp: group, multicastPort: port, multicastHops: 0, daemonSleep: DAEMON_SLEEP_MS });
  const scratch = getCache<number>(`${CACHE}-warmup`);
  const send = (e: Omit<NodeEvent, 'node'>): void => {
    process.send?.({ ...e, node: index });
  };
  cache.on('remote-set', (e) => send({ type: 'seen', at: hr(), key: e['key'], op: 'set' }));
  cache.on('remote-delete', (e) => send({ type: 'seen', at: hr(), key: e['key'], op: 'delete' }));

  const started = performance.now();
  const poll = setInterval(() => {
    const m = getLocalMetrics();
    if (m && m.members.length === NODES - 1) {
      clearInterval(poll);
      send({ type: 'ready', id: m.nodeId, pid: process.pid });
    } else if (performance.now() - started > STEP_TIMEOUT_MS) {
      clearInterval(poll);
      send({ type: 'failed', why: 'the cluster did not form' });
    }
  }, 5);

  process.on('message', (c: NodeCommand) => {
    switch (c.cmd) {
      case 'warmup':
        void (async () => {
          for (let i = 0; i < c.writes; i++) {
            scratch.set(`n${index}-${i % 50}`, i);
            await new Promise((r) => setImmediate(r));
          }
          // Until every member acknowledged them: the measured steps then start on a quiet network.
          for (let i = 0; i < 500; i++) {
            const m = getLocalMetrics()!;
            if (m.pending === 0 && (m.transport as { unackedMessages: number }).unackedMessages === 0) break;
            await new Promise((r) => setTimeout(r, 2));
          }
          send({ type: 'warm' });
        })();
        break;
      case 'set': {
        const at = hr();
        cache.set(c.key, c.value);
        send({ type: 'done', at });
        break;
      }
      case 'delete': {
        const at = hr();
        cache.delete(c.key);
        send({ type: 'done', at });
        break;
      }
      case 'view':
        send({ type: 'view', entries: Object.fromEntries(cache.entries()) });
        break;
      case 'checksum':
        getClusterChecksum(CACHE).then((sums) => send({ type: 'checksum', sums }),
          (err: unknown) => send({ type: 'failed', why: String(err) }));
        break;
      case 'exit':
        // Simply end: no shutdown() call, no timer left. The library must let the process go.
        process.disconnect();
        break;
    }
  });
}

// --- parent ------------------------------------------------------------------------------------

class DemoNode {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  readonly #waiters: Array<{ match: (e: NodeEvent) => boolean; resolve: (e: NodeEvent) => void }> = [];
  readonly #events: NodeEvent[] = [];

  constructor(readonly index: number, group: string, port: number) {
    this.child = fork(__filename, ['--demo-node', String(index), group, String(port)], {
      execArgv: process.execArgv, stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
    this.child.on('message', (e: NodeEvent) => {
      const i = this.#waiters.findIndex((w) => w.match(e));
      if (i >= 0) this.#waiters.splice(i, 1)[0]!.resolve(e);
      else this.#events.push(e);
    });
  }

  /** The next event matching `match` (one that already arrived counts), or undefined on timeout. */
  next(match: (e: NodeEvent) => boolean, timeoutMs = STEP_TIMEOUT_MS): Promise<NodeEvent | undefined> {
    const i = this.#events.findIndex(match);
    if (i >= 0) return Promise.resolve(this.#events.splice(i, 1)[0]);
    return new Promise((resolve) => {
      const w = { match, resolve: (e: NodeEvent | undefined) => { clearTimeout(timer); resolve(e); } };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        resolve(undefined);
      }, timeoutMs);
      this.#waiters.push(w);
    });
  }

  send(c: NodeCommand): void {
    if (this.child.connected) this.child.send(c);
  }
}

interface Step {
  by: number;
  what: string;
  op: 'set' | 'delete';
  /** Node index -> ms from the write to that node seeing it; null if it never did. */
  latencyMs: Record<number, number | null>;
}

export async function runDemo(options: { json?: boolean; out?: (line: string) => void } = {}): Promise<number> {
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const t0 = performance.now();
  const r = (n: number): number => Math.floor(Math.random() * n);
  const group = `239.255.${1 + r(254)}.${1 + r(254)}`;
  const port = 20_000 + r(40_000);
  out(`McCache demo: ${NODES} processes share cache "${CACHE}" over host-local multicast ${group}:${port} (TTL 0, nothing leaves this host)`);

  const nodes = Array.from({ length: NODES }, (_, i) => new DemoNode(i, group, port));
  const kill = (): void => {
    for (const n of nodes) if (n.child.exitCode === null && n.child.signalCode === null) n.child.kill('SIGKILL');
  };
  const failures: string[] = [];
  const steps: Step[] = [];
  let views: Array<Record<string, unknown> | undefined> = [];
  let sums: Record<string, Record<string, string>> | undefined;
  let exitCodes: Array<number | null> = [];
  try {
    const ready = await Promise.all(nodes.map((n) => n.next((e) => e.type === 'ready' || e.type === 'failed')));
    if (!ready.every((e) => e?.type === 'ready')) throw new Error('the cluster did not form');
    out(`cluster formed in ${Math.round(performance.now() - t0)} ms: ${ready.map((e, i) => `node ${i + 1} (pid ${String(e!['pid'])}, id ${String(e!['id'])})`).join(', ')}`);
    for (const n of nodes) n.send({ cmd: 'warmup', writes: WARMUP_WRITES });
    const warm = await Promise.all(nodes.map((n) => n.next((e) => e.type === 'warm')));
    if (!warm.every((e) => e !== undefined)) throw new Error('the warm-up did not finish');
    out(`warm-up: each node wrote ${WARMUP_WRITES} times to cache "${CACHE}-warmup", so V8 has compiled the hot paths`);
    out('');

    const step = async (by: number, c: NodeCommand & { key: string }, label: string): Promise<void> => {
      const op = c.cmd === 'delete' ? 'delete' : 'set';
      const others = nodes.filter((n) => n.index !== by);
      const seen = others.map((n) => n.next((e) => e.type === 'seen' && e['key'] === c.key && e['op'] === op));
      nodes[by]!.send(c);
      const done = await nodes[by]!.next((e) => e.type === 'done');
      const at = BigInt(String(done?.['at'] ?? 0));
      const latencyMs: Record<number, number | null> = {};
      const got = await Promise.all(seen);
      others.forEach((n, i) => {
        const e = got[i];
        latencyMs[n.index] = e ? Number(BigInt(String(e['at'])) - at) / 1e6 : null;
      });
      steps.push({ by, what: label, op, latencyMs });
      const verb = op === 'delete' ? 'gone on' : 'visible on';
      const where = others.map((n) => {
        const ms = latencyMs[n.index];
        return ms === null || ms === undefined ? `node ${n.index + 1} NEVER` : `node ${n.index + 1} after ${ms.toFixed(2)} ms`;
      }).join(', ');
      out(`  node ${by + 1}  ${label.padEnd(32)} ${verb} ${where}`);
      if (others.some((n) => latencyMs[n.index] === null)) failures.push(`${label}: not seen everywhere`);
    };

    await step(0, { cmd: 'set', key: 'greeting', value: 'hello' }, 'set    greeting = "hello"');
    await step(0, { cmd: 'set', key: 'answer', value: { n: 42, tags: ['a', 'b'] } }, 'set    answer = {n: 42, ...}');
    await step(1, { cmd: 'set', key: 'greeting', value: 'hello again' }, 'update greeting = "hello again"');
    await step(2, { cmd: 'delete', key: 'answer' }, 'delete answer');
    out('');

    for (const n of nodes) n.send({ cmd: 'view' });
    const viewEvents = await Promise.all(nodes.map((n) => n.next((e) => e.type === 'view')));
    views = viewEvents.map((e) => e?.['entries'] as Record<string, unknown> | undefined);
    out('views:');
    views.forEach((v, i) => out(`  node ${i + 1}  ${v === undefined ? '(no answer)' : JSON.stringify(v)}`));
    const distinctViews = new Set(views.map((v) => JSON.stringify(v)));
    if (distinctViews.size !== 1 || views[0] === undefined) failures.push('the views differ');

    nodes[0]!.send({ cmd: 'checksum' });
    const cs = await nodes[0]!.next((e) => e.type === 'checksum' || e.type === 'failed');
    sums = cs?.['sums'] as Record<string, Record<string, string>> | undefined;
    const values = Object.values(sums ?? {}).map((s) => s[CACHE]);
    const agree = values.length === NODES && new Set(values).size === 1;
    out(`cluster checksums (getClusterChecksum, asked by node 1): ${agree ? `all ${NODES} members agree` : 'DISAGREE'}`);
    for (const [id, s] of Object.entries(sums ?? {})) out(`  ${id}  ${s[CACHE] ?? '(none)'}`);
    if (!agree) failures.push('the cluster checksums disagree');

    for (const n of nodes) n.send({ cmd: 'exit' });
    const exitTimer = setTimeout(kill, STEP_TIMEOUT_MS);
    exitCodes = await Promise.all(nodes.map((n) => n.exited));
    clearTimeout(exitTimer);
    const clean = exitCodes.every((c) => c === 0);
    out(`${clean ? 'every node exited by itself with code 0' : `node exit codes: ${exitCodes.join(', ')}`} (${((performance.now() - t0) / 1000).toFixed(1)} s in all)`);
    if (!clean) failures.push('a node did not exit cleanly');
  } catch (err) {
    failures.push(String((err as Error).message ?? err));
    kill();
  }
  if (failures.length > 0) out(`demo FAILED: ${failures.join('; ')}`);
  if (options.json) {
    out(JSON.stringify({ ok: failures.length === 0, group, port, steps, views, checksums: sums ?? null, exitCodes, failures }));
  }
  return failures.length === 0 ? 0 : 1;
}

// --- entry -------------------------------------------------------------------------------------

const nodeFlag = process.argv.indexOf('--demo-node');
if (nodeFlag >= 0) {
  const [index, group, port] = process.argv.slice(nodeFlag + 1);
  runNode(Number(index), String(group), Number(port));
} else if (require.main === module || process.argv[2] === 'demo') {
  // Run directly, or required by the `mccache demo` command (runtime/cli/main.ts).
  runDemo({ json: process.argv.includes('--json') }).then((code) => { process.exitCode = code; }, (err: unknown) => {
    process.stderr.write(`demo: ${String(err)}\n`);
    process.exitCode = 1;
  });
}
