/**
 * Local cache operations per second: McCache's `get` (hits, misses) and `set` (a small string,
 * a small object) beside `Map` and `lru-cache` measured in the same run, same keys, same
 * capacity (STYLE.md rule 9: a baseline in the same run, ratios; never asserts, never gates CI).
 *
 *   node bench/run.mjs cache      or   TS_NODE_TRANSPILE_ONLY=1 node -r ts-node/register bench/cache.bench.ts
 *
 * Workload: every cache holds CAPACITY entries (max = CAPACITY); the ops cycle over HOT keys
 * spread through them. Misses look up HOT keys that were never stored.
 *
 * The McCache rows split the cost of a write:
 *  - "local only": a Cache with no replicator (encode the value, stamp an HLC, store): what
 *    `set` costs the cache itself;
 *  - "node": the cache from the public `getCache`, whose node is a real UDP multicast node on
 *    host-local multicast (a random 239.255.x.y group, interface 127.0.0.1, TTL 0): every set
 *    is replicated, i.e. also handed to the reliable core and sent as a datagram. First alone
 *    (no member: nothing to wait for), then with one peer process that receives and ACKs
 *    every write (phase B, with its own lru-cache baseline measured beside it);
 *  - "node, default settings": the same with the settings' defaults for ttl (1 h) and
 *    callbackWindow (5 s), each of which makes `get` read the clock; beside lru-cache with the
 *    same 1 h ttl.
 * A last row is a floor for a replicated `set` (ReplicationFloor): a Map plus each write
 * appended to a datagram buffer, one node:dgram send per ~1,400 bytes or turn, to a host-local
 * group; what any replicating cache in Node pays at least, beside McCache's "node" rows.
 * Set rounds yield to the event loop (setImmediate) after every pass over the HOT keys, for
 * every implementation, so McCache's replication (a microtask flush into the socket, the send
 * completions, its own datagrams looped back) falls inside the measured time; each pass writes
 * HOT distinct keys, so nothing is coalesced. The cost of that yield alone is printed.
 *
 * Each cell runs ROUNDS rounds of ROUND_MS (after one warm-up round), implementations
 * interleaved within a round; the table gives min / median / max ops/s and median ratios.
 *
 * A last table, growth: GROWTH_N new keys set into an empty Map, lru-cache and McCache cache
 * (local only, with max GROWTH_N and with max 0), each in a fresh process, every set() timed:
 * the longest pause while a cache fills (column growth, key-Map rehashes, collections).
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { Cache, getCache, getLocalMetrics, shutdown } from '../runtime/index';
import { servePeer } from './fixtures/child';
import { HybridClock } from '../runtime/cache/hlc';
import type { Socket } from 'node:dgram';
import { Cluster, fmt, hostBusyMs, hostLocalEnv, median, randomGroup, rawSocket, sleep, tick, type Group } from './fixtures/cluster';

const CAPACITY = 10_000;
const HOT = 1_000;
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5);
const ROUND_MS = Number(process.env['BENCH_MS'] ?? 150);
const GET_PASSES = 10; // gets per batch = GET_PASSES * HOT, then one yield
const DEADLINE_MS = 150_000;
const CACHE_OPTIONS = { max: CAPACITY, ttl: 0, callbackWindow: 0 };
/** Growth: entries written into an empty cache, one process per fill (a fresh heap each). */
const GROWTH_N = 1_000_000;
const GROWTH_REPS = Number(process.env['BENCH_REPS'] ?? 3);
const DEFAULTS_OPTIONS = { max: CAPACITY }; // ttl and callbackWindow from the settings' defaults

type Op = 'get hit' | 'get miss' | 'set string' | 'set object';
const OPS: Op[] = ['get hit', 'get miss', 'set string', 'set object'];

interface Target {
  name: string;
  c: unknown;
  /** Counts messages the node sent, for "datagrams per set". */
  replicated?: boolean;
}
interface Ctx {
  hot: string[];
  miss: string[];
  str: string[];
  obj: object[];
}

// Each (target, op) gets its own compiled loop (new Function), so each call site sees one
// receiver type: no implementation pays for another's polymorphism.
const LOOP_SRC: Record<Op, string> = {
  'get hit': `let s = 0; for (let p = 0; p < ${GET_PASSES}; p++) for (let i = 0; i < ctx.hot.length; i++) if (c.get(ctx.hot[i]) !== undefined) s++; return ${GET_PASSES} * ctx.hot.length + (s & 0);`,
  'get miss': `let s = 0; for (let p = 0; p < ${GET_PASSES}; p++) for (let i = 0; i < ctx.miss.length; i++) if (c.get(ctx.miss[i]) === undefined) s++; return ${GET_PASSES} * ctx.miss.length + (s & 0);`,
  'set string': 'for (let i = 0; i < ctx.hot.length; i++) c.set(ctx.hot[i], ctx.str[i]); return ctx.hot.length;',
  'set object': 'for (let i = 0; i < ctx.hot.length; i++) c.set(ctx.hot[i], ctx.obj[i]); return ctx.hot.length;',
};
type Loop = (c: unknown, ctx: Ctx) => number;
const loops = new Map<string, Loop>();
function loopFor(t: Target, op: Op): Loop {
  const id = `${t.name}\u0000${op}`;
  let f = loops.get(id);
  if (!f) {
    f = new Function('c', 'ctx', LOOP_SRC[op]) as Loop;
    loops.set(id, f);
  }
  return f;
}

/** One round: batches, each followed by a yield to the event loop, for ROUND_MS; ops done, ops/s. */
async function round(t: Target, op: Op, ctx: Ctx): Promise<{ ops: number; rate: number }> {
  const f = loopFor(t, op);
  let ops = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < ROUND_MS) {
    ops += f(t.c, ctx);
    await tick();
    elapsed = performance.now() - start;
  }
  return { ops, rate: (ops * 1000) / elapsed };
}

async function yieldCost(): Promise<number> {
  const n = 5000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await tick();
  return ((performance.now() - t0) * 1000) / n; // µs
}

function messagesSent(): number {
  const t = getLocalMetrics()?.transport as { messagesSent?: number } | undefined;
  return t?.messagesSent ?? 0;
}

interface Cell {
  samples: number[];
  sent: number;
  sets: number;
}
/** set calls on replicated targets, warm-up included (what a peer should receive). */
let replicatedSets = 0;

async function measure(targets: Target[], ctx: Ctx): Promise<Map<string, Cell>> {
  const cells = new Map<string, Cell>();
  for (let r = 0; r <= ROUNDS; r++) {
    for (const op of OPS) {
      for (const t of targets) {
        const before = t.replicated ? messagesSent() : 0;
        const { ops, rate } = await round(t, op, ctx);
        if (t.replicated && op.startsWith('set')) replicatedSets += ops;
        if (r === 0) continue; // warm-up
        const key = `${t.name}\u0000${op}`;
        const cell = cells.get(key) ?? { samples: [], sent: 0, sets: 0 };
        cell.samples.push(rate);
        if (t.replicated && op.startsWith('set')) {
          // Flushes are asynchronous: let the last batch's datagrams out before counting.
          await tick();
          cell.sent += messagesSent() - before;
          cell.sets += ops;
        }
        cells.set(key, cell);
      }
    }
  }
  return cells;
}

function lruVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(__dirname, '..', 'node_modules', 'lru-cache', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '(version unknown)';
  }
}

function fill(c: { set(k: string, v: string): unknown }, keys: string[], str: string[]): void {
  for (let i = 0; i < keys.length; i++) c.set(keys[i]!, str[i % str.length]!);
}

// ---------------------------------------------------------------------------------------------
// replication floor: the least a replicating `set` costs in Node
// ---------------------------------------------------------------------------------------------

/** Bytes of one floor datagram (below a 1,472-byte MTU payload, as McCache's batches). */
const FLOOR_DATAGRAM = 1400;

/**
 * A Map whose `set` also sends the write: key and value (a string as it is, anything else as
 * JSON) appended to a datagram buffer behind a u2 length each, the buffer sent with one
 * node:dgram `send` to a host-local group when the next record might not fit, and at the end
 * of the turn (a microtask), as McCache batches. No version, sequence number, retransmission
 * or validation: a floor for a replicated `set`, not a protocol.
 */
class ReplicationFloor {
  readonly #m = new Map<string, unknown>();
  #buf = Buffer.allocUnsafe(FLOOR_DATAGRAM);
  #pos = 0;
  #scheduled = false;
  sent = 0;
  readonly #flush = (): void => {
    this.#scheduled = false;
    if (this.#pos === 0) return;
    this.socket.send(this.#buf.subarray(0, this.#pos), this.port, this.ip);
    this.sent++;
    // A fresh buffer: dgram may send after send() returns, from this memory.
    this.#buf = Buffer.allocUnsafe(FLOOR_DATAGRAM);
    this.#pos = 0;
  };

  constructor(readonly socket: Socket, readonly port: number, readonly ip: string) {}

  get(key: string): unknown {
    return this.#m.get(key);
  }

  set(key: string, value: unknown): this {
    this.#m.set(key, value);
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    // At most 3 UTF-8 bytes per UTF-16 unit: flush first when the record might not fit.
    if (this.#pos + 4 + 3 * (key.length + text.length) > FLOOR_DATAGRAM) this.#flush();
    const b = this.#buf;
    const k = b.write(key, this.#pos + 2);
    b.writeUInt16BE(k, this.#pos);
    this.#pos += 2 + k;
    const v = b.write(text, this.#pos + 2);
    b.writeUInt16BE(v, this.#pos);
    this.#pos += 2 + v;
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.#flush);
    }
    return this;
  }
}

// ---------------------------------------------------------------------------------------------
// peer: a second node that receives (and ACKs) the writes of phase B
// ---------------------------------------------------------------------------------------------

function peer(): void {
  servePeer([getCache('bench', CACHE_OPTIONS), getCache('bench-defaults', DEFAULTS_OPTIONS)]);
}

// ---------------------------------------------------------------------------------------------
// growth: the pauses of a cache that fills up (a process of its own per fill)
// ---------------------------------------------------------------------------------------------

const GROWTH_TARGETS = ['Map', 'lru-cache, max 1M', 'McCache local only, max 1M', 'McCache local only, max 0 (maxSize bound)'] as const;
type GrowthTarget = typeof GROWTH_TARGETS[number];
interface GrowthResult { target: GrowthTarget; totalMs: number; longestMs: number; over1: number; over1Ms: number }

/** In a fresh process: GROWTH_N new keys into an empty `target`, each set() timed. */
function growthChild(target: GrowthTarget): void {
  const keys = Array.from({ length: GROWTH_N }, (_, i) => `user:${String(i).padStart(7, '0')}`);
  const str = Array.from({ length: HOT }, (_, i) => `value-${String(i).padStart(6, '0')}`);
  const c: { set(k: string, v: string): unknown } =
    target === 'Map' ? new Map<string, string>()
      : target === 'lru-cache, max 1M' ? new LRUCache<string, string>({ max: GROWTH_N })
        : new Cache<string>('growth', { ...(target === 'McCache local only, max 1M' ? { max: GROWTH_N } : { max: 0, maxSize: 2 ** 40 }), ttl: 0, callbackWindow: 0 }, { clock: new HybridClock(), nodeId: 1n });
  let longest = 0;
  let over1 = 0;
  let over1Ms = 0;
  const t0 = performance.now();
  for (let i = 0; i < GROWTH_N; i++) {
    const a = performance.now();
    c.set(keys[i]!, str[i % HOT]!);
    const d = performance.now() - a;
    if (d > longest) longest = d;
    if (d > 1) {
      over1++;
      over1Ms += d;
    }
  }
  const totalMs = performance.now() - t0;
  process.send!({ target, totalMs, longestMs: longest, over1, over1Ms } satisfies GrowthResult, () => process.exit(0));
}

/** Each target's fills, interleaved over GROWTH_REPS rounds. */
async function growth(): Promise<GrowthResult[]> {
  const out: GrowthResult[] = [];
  for (let r = 0; r < GROWTH_REPS; r++) {
    for (const target of GROWTH_TARGETS) {
      const k = fork(__filename, ['growth', target], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      out.push(await new Promise<GrowthResult>((resolve, reject) => {
        k.once('message', (m) => resolve(m as GrowthResult));
        k.once('exit', (code) => reject(new Error(`growth child for ${target} exited with ${code}`)));
      }));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// parent
// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = Date.now();
  const killer = setTimeout(() => {
    console.log(`# aborted: the ${DEADLINE_MS / 1000} s bound was reached`);
    process.exit(0);
  }, DEADLINE_MS);
  killer.unref();

  const g: Group = randomGroup();
  Object.assign(process.env, hostLocalEnv(g));
  console.log(`# cache.bench: get/set ops/s, McCache beside Map and lru-cache ${lruVersion()}`);
  console.log(`# Node ${process.version}, V8 ${process.versions.v8}; load average at start ${loadavg().map((x) => x.toFixed(2)).join(' ')}; capacity ${fmt(CAPACITY)} entries, ${fmt(HOT)} hot keys; ${ROUNDS} rounds x ${ROUND_MS} ms per cell`);
  console.log(`# node: group ${g.ip}:${g.port}, MCCACHE_MULTICAST_HOPS=0 (127.0.0.1, TTL 0)`);

  const keys = Array.from({ length: CAPACITY }, (_, i) => `user:${String(i).padStart(6, '0')}`);
  const ctx: Ctx = {
    hot: Array.from({ length: HOT }, (_, i) => keys[(i * CAPACITY) / HOT]!),
    miss: Array.from({ length: HOT }, (_, i) => `absent:${String(i).padStart(6, '0')}`),
    str: Array.from({ length: HOT }, (_, i) => `value-${String(i).padStart(6, '0')}`),
    obj: Array.from({ length: HOT }, (_, i) => ({ id: i, name: `user ${i}`, active: i % 2 === 0, score: i * 1.5 })),
  };

  const map = new Map<string, unknown>();
  const lru = new LRUCache<string, {}>({ max: CAPACITY });
  const lruTtl = new LRUCache<string, {}>({ max: CAPACITY, ttl: 3_600_000 });
  const local = new Cache<unknown>('bench-local', CACHE_OPTIONS, { clock: new HybridClock(), nodeId: 1n });
  const node = getCache<unknown>('bench', { ...CACHE_OPTIONS, multicastHops: 0, multicastIp: g.ip, multicastPort: g.port });
  const nodeDefaults = getCache<unknown>('bench-defaults', DEFAULTS_OPTIONS);
  const floorSocket = await rawSocket(g.ip, g.port + 1);
  const floor = new ReplicationFloor(floorSocket, g.port + 1, g.ip);
  for (const c of [map, lru, lruTtl, local, node, nodeDefaults, floor]) fill(c as { set(k: string, v: string): unknown }, keys, ctx.str);
  // A new node holds its writes back until a peer answers or its join grace ends (about
  // 1.5 s with no peer): wait until the fill has gone out, so every measured set is sent.
  const graceBy = Date.now() + 5000;
  do await sleep(50); while ((getLocalMetrics()?.pending ?? 1) > 0 && Date.now() < graceBy);

  const yieldUs = await yieldCost();
  console.log(`# one yield (await setImmediate) costs ${fmt(yieldUs, 2)} µs: per ${fmt(HOT)} sets, or per ${fmt(GET_PASSES * HOT)} gets`);

  const A: Target[] = [
    { name: 'Map', c: map },
    { name: 'lru-cache', c: lru },
    { name: 'lru-cache, ttl 1 h', c: lruTtl },
    { name: 'McCache, local only (no replicator)', c: local },
    { name: 'McCache, node, no peer', c: node, replicated: true },
    { name: 'McCache, node, no peer, default settings', c: nodeDefaults, replicated: true },
    { name: 'floor: Map.set + batched raw datagram', c: floor },
  ];
  const floorSent0 = floor.sent;
  const busy0 = hostBusyMs();
  const cpu0 = process.cpuUsage();
  const at0 = Date.now();
  const phaseA = await measure(A, ctx);
  const own = process.cpuUsage(cpu0);
  const othersPct = Math.max(0, ((hostBusyMs() - busy0 - (own.user + own.system) / 1000) * 100) / (Date.now() - at0));
  const floorSent = floor.sent - floorSent0;
  floorSocket.close();

  // Phase B: one peer joins; every set is now delivered to it and ACKed.
  const cluster = new Cluster(__filename, 1, hostLocalEnv(g));
  let peerApplied = 0;
  let phaseB = new Map<string, Cell>();
  const B: Target[] = [
    { name: 'lru-cache', c: lru },
    { name: 'McCache, node, 1 peer', c: node, replicated: true },
    { name: 'McCache, node, 1 peer, default settings', c: nodeDefaults, replicated: true },
  ];
  try {
    const deadline = Date.now() + 8000;
    while ((getLocalMetrics()?.members.length ?? 0) < 1 && Date.now() < deadline) await sleep(20);
    await cluster.next('members', 1);
    if ((getLocalMetrics()?.members.length ?? 0) < 1) throw new Error('the peer did not become a member within 8 s');
    replicatedSets = 0;
    phaseB = await measure(B, ctx);
    await sleep(300);
    cluster.broadcast({ type: 'report' });
    peerApplied = (await cluster.next('applied', 1))[0]!['applied'] as number;
  } catch (err) {
    console.log(`# phase B (1 peer) skipped: ${String(err)}`);
  }
  await shutdown();
  await cluster.close();

  // Table
  const med = (cells: Map<string, Cell>, name: string, op: Op): number => median(cells.get(`${name}\u0000${op}`)?.samples ?? [NaN]);
  const ops = (n: number): string => (n >= 1e6 ? `${fmt(n / 1e6, 2)}M` : `${fmt(n / 1e3, 0)}k`);
  const cell = (c: Cell | undefined): string => {
    if (!c) return '-';
    const s = [...c.samples].sort((a, b) => a - b);
    return `${ops(s[0]!)} / **${ops(median(s))}** / ${ops(s[s.length - 1]!)}`;
  };
  console.log('');
  console.log('## ops/s: min / **median** / max over rounds; "x lru" = median / lru-cache median of the same phase');
  console.log(`| implementation | ${OPS.map((o) => `${o} | x lru`).join(' | ')} | datagrams per set |`);
  console.log(`|---|${OPS.map(() => '---:|---:').join('|')}|---:|`);
  const rows: Array<[Target, Map<string, Cell>, string]> = [
    ...A.map((t) => [t, phaseA, ''] as [Target, Map<string, Cell>, string]),
    ...(phaseB.size ? B.map((t) => [t, phaseB, t.name === 'lru-cache' ? ' (phase B)' : ''] as [Target, Map<string, Cell>, string]) : []),
  ];
  for (const [t, cells, suffix] of rows) {
    const parts = OPS.map((op) => {
      const c = cells.get(`${t.name}\u0000${op}`);
      return `${cell(c)} | ${fmt(med(cells, t.name, op) / med(cells, 'lru-cache', op), 2)}`;
    });
    let dps = '-';
    if (t.replicated) {
      const sets = OPS.filter((o) => o.startsWith('set')).map((o) => cells.get(`${t.name}\u0000${o}`)!);
      const sent = sets.reduce((n, c) => n + c.sent, 0);
      const n = sets.reduce((k, c) => k + c.sets, 0);
      dps = fmt(sent / n, 2);
    }
    console.log(`| ${t.name}${suffix} | ${parts.join(' | ')} | ${dps} |`);
  }
  const defaultRatio = (cells: Map<string, Cell>, name: string): string =>
    fmt(med(cells, name, 'get hit') / med(cells, 'lru-cache, ttl 1 h', 'get hit'), 2);
  const x = (cells: Map<string, Cell>, name: string, op: Op): string => `${fmt(med(cells, name, op) / med(cells, 'lru-cache', op), 2)}x`;
  console.log('');
  console.log(`- issue targets, medians: get hit >= 0.7x lru-cache: local only ${x(phaseA, A[3]!.name, 'get hit')}, node ${x(phaseA, A[4]!.name, 'get hit')}, node with default settings ${x(phaseA, A[5]!.name, 'get hit')}; `
    + `set >= 0.3x: local only ${x(phaseA, A[3]!.name, 'set string')} (string) / ${x(phaseA, A[3]!.name, 'set object')} (object), `
    + `replicated (node, no peer) ${x(phaseA, A[4]!.name, 'set string')} / ${x(phaseA, A[4]!.name, 'set object')}; `
    + `the replication floor (${A[6]!.name}) ${x(phaseA, A[6]!.name, 'set string')} / ${x(phaseA, A[6]!.name, 'set object')}`);
  console.log(`- the floor sent ${fmt(floorSent)} datagrams during phase A (its gets send nothing)`);
  console.log(`- McCache default settings vs lru-cache with the same 1 h ttl, get hit: ${defaultRatio(phaseA, 'McCache, node, no peer, default settings')}x`);
  if (phaseB.size) {
    console.log(`- phase B: the peer applied ${fmt(peerApplied)} remote sets of the ${fmt(replicatedSets)} sets made (about; warm-up included); fewer when the send window was full and pending writes of a key were coalesced`);
  }
  console.log(`- the rest of the host used ${fmt(othersPct)} % of a core during phase A (/proc/stat busy time minus this process): the machine is shared, so rounds vary`);
  console.log(`- datagrams per set: the node's messagesSent over the sets of the set rounds (1.00 = every set went out as its own message)`);

  // Growth: what filling an empty cache costs, and its longest pauses.
  const grown = await growth();
  console.log('');
  console.log(`## growth: ${fmt(GROWTH_N)} new keys set into an empty cache, each set() timed; one fresh process per fill, ${GROWTH_REPS} fills each, interleaved; min / **median** / max`);
  console.log('| implementation | sets/s | longest set, ms | sets over 1 ms | time in sets over 1 ms, ms |');
  console.log('|---|---:|---:|---:|---:|');
  const spread = (v: number[], f: (x: number) => string): string => {
    const q = [...v].sort((a, b) => a - b);
    return `${f(q[0]!)} / **${f(median(q))}** / ${f(q[q.length - 1]!)}`;
  };
  for (const target of GROWTH_TARGETS) {
    const rs = grown.filter((r) => r.target === target);
    console.log(`| ${target} | ${spread(rs.map((r) => (GROWTH_N * 1000) / r.totalMs), ops)} | ${spread(rs.map((r) => r.longestMs), (x) => fmt(x, 1))} | ${spread(rs.map((r) => r.over1), (x) => fmt(x))} | ${spread(rs.map((r) => r.over1Ms), (x) => fmt(x, 0))} |`);
  }
  console.log(`- McCache "max 1M": the first growth of the columns goes to min(max, PREALLOCATE_MAX = 262,144 entries) at once (runtime/cache/cache.ts), then they double; "max 0": no entry bound, the columns double from 16 (each doubling copies them); lru-cache allocates its arrays for max up front; Map, lru-cache and McCache all rehash a key Map as it grows`);
  console.log(`\n# ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

if (process.argv[2] === 'child') peer();
else if (process.argv[2] === 'growth') growthChild(process.argv[3] as GrowthTarget);
else main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
