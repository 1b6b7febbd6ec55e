/**
 * Local reads and writes, side by side in one run: McCache `get`/`set` beside a `Map`, an
 * lru-cache, and Redis GET/SET through ioredis to a private redis-server on loopback
 * (bench/fixtures/redis.ts). Throughput (ops/s, min / median / max over BENCH_REPS rounds) and
 * the latency distribution of single calls (STYLE.md rule 9: baselines in the same run, ratios;
 * never asserts, never gates CI). Writes bench/results/compare-local.json.
 *
 *   node bench/run.mjs compare-local       (BENCH_QUICK=1 for a short run)
 *
 * Workload: CAPACITY entries in every store (max = CAPACITY), ops cycle over HOT keys spread
 * through them; values are 12-character strings. The McCache cache comes from the public
 * `getCache` on a real node with one peer process (host-local multicast: a random 239.255.x.y
 * group, interface 127.0.0.1, TTL 0), so every `set` is also replicated; ttl 0 and
 * callbackWindow 0, like the lru-cache beside it (no ttl). Redis runs two ways:
 *  - "await each": one command at a time, the way most application code reads a cache;
 *  - "32 in flight": 32 commands issued together and awaited together (ioredis writes them
 *    back to back on one connection): what concurrency buys on one connection.
 * In-process rounds yield to the event loop (setImmediate) after every HOT sets or 10 x HOT
 * gets, so McCache's replication work falls inside the measured time.
 *
 * Latency: each call timed alone with performance.now(); "timer only" is the same pair of
 * clock reads around nothing, the floor under every in-process figure. The in-process figures
 * are the cost of the call only: for McCache the time until a peer sees a write is in
 * compare-staleness.bench.ts.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { getCache, getLocalMetrics, shutdown } from '../runtime/index';
import { servePeer } from './fixtures/child';
import { abortAfter, Cluster, fmt, hostLocalEnv, randomGroup, sleep, tick } from './fixtures/cluster';
import { benchRedis } from './fixtures/redis';
import { dist, HostLoad, machine, machineLine, mmm, pick, REPS, spread, us, writeResults, type Dist, type Spread } from './fixtures/results';
import type { Redis } from 'ioredis';

const CAPACITY = 10_000;
const HOT = 1_000;
const GET_PASSES = 10;
const ROUND_MS = pick(300, 100);
const LAT_N_LOCAL = pick(50_000, 10_000);
const LAT_N_REDIS = pick(5_000, 1_000);
const IN_FLIGHT = 32;
const DEADLINE_MS = 120_000;
const CACHE_OPTIONS = { max: CAPACITY, ttl: 0, callbackWindow: 0 };

type Op = 'get' | 'set';
const OPS: Op[] = ['get', 'set'];

interface Ctx {
  hot: string[];
  str: string[];
}
interface Target {
  name: string;
  kind: 'local' | 'redis-await' | 'redis-inflight';
  c: unknown;
}

// One compiled loop per (target, op): each call site sees one receiver type (as cache.bench.ts).
const LOOP_SRC: Record<Op, string> = {
  get: `let s = 0; for (let p = 0; p < ${GET_PASSES}; p++) for (let i = 0; i < ctx.hot.length; i++) if (c.get(ctx.hot[i]) !== undefined) s++; return ${GET_PASSES} * ctx.hot.length + (s & 0);`,
  set: 'for (let i = 0; i < ctx.hot.length; i++) c.set(ctx.hot[i], ctx.str[i]); return ctx.hot.length;',
};
const LAT_SRC: Record<Op, string> = {
  get: 'for (let i = 0; i < n; i++) { const t0 = performance.now(); c.get(ctx.hot[(from + i) % ctx.hot.length]); out[from + i] = (performance.now() - t0) * 1000; } ',
  set: 'for (let i = 0; i < n; i++) { const t0 = performance.now(); c.set(ctx.hot[(from + i) % ctx.hot.length], ctx.str[i % ctx.str.length]); out[from + i] = (performance.now() - t0) * 1000; } ',
};
const EMPTY_SRC = 'for (let i = 0; i < n; i++) { const t0 = performance.now(); out[from + i] = (performance.now() - t0) * 1000; }';
type Loop = (c: unknown, ctx: Ctx) => number;
type LatLoop = (c: unknown, ctx: Ctx, out: Float64Array, from: number, n: number) => void;
const compiled = new Map<string, Function>();
function compile<F>(id: string, args: string[], src: string): F {
  let f = compiled.get(id);
  if (!f) {
    f = new Function(...args, src);
    compiled.set(id, f);
  }
  return f as F;
}

async function round(t: Target, op: Op, ctx: Ctx): Promise<number> {
  let ops = 0;
  const start = performance.now();
  let elapsed = 0;
  if (t.kind === 'local') {
    const f = compile<Loop>(`${t.name}\0${op}`, ['c', 'ctx'], LOOP_SRC[op]);
    while (elapsed < ROUND_MS) {
      ops += f(t.c, ctx);
      await tick();
      elapsed = performance.now() - start;
    }
  } else {
    const r = t.c as Redis;
    let i = 0;
    const one = (): Promise<unknown> => {
      const k = ctx.hot[i++ % HOT]!;
      return op === 'get' ? r.get(k) : r.set(k, ctx.str[i % HOT]!);
    };
    while (elapsed < ROUND_MS) {
      if (t.kind === 'redis-await') {
        await one();
        ops++;
      } else {
        await Promise.all(Array.from({ length: IN_FLIGHT }, one));
        ops += IN_FLIGHT;
      }
      elapsed = performance.now() - start;
    }
  }
  return (ops * 1000) / elapsed;
}

async function latencies(t: Target | undefined, op: Op, ctx: Ctx): Promise<Dist> {
  if (!t || t.kind === 'local') {
    const n = LAT_N_LOCAL;
    const out = new Float64Array(n);
    const f = t ? compile<LatLoop>(`lat\0${t.name}\0${op}`, ['c', 'ctx', 'out', 'from', 'n'], LAT_SRC[op])
      : compile<LatLoop>('lat\0empty', ['c', 'ctx', 'out', 'from', 'n'], EMPTY_SRC);
    for (let from = 0; from < n; from += HOT) {
      f(t?.c, ctx, out, from, Math.min(HOT, n - from));
      await tick();
    }
    return dist(out);
  }
  const r = t.c as Redis;
  const n = LAT_N_REDIS;
  const out = new Float64Array(n);
  let i = 0;
  const one = (): Promise<unknown> => {
    const k = ctx.hot[i % HOT]!;
    return op === 'get' ? r.get(k) : r.set(k, ctx.str[i % HOT]!);
  };
  while (i < n) {
    if (t.kind === 'redis-await') {
      const t0 = performance.now();
      await one();
      out[i++] = (performance.now() - t0) * 1000;
    } else {
      const t0 = performance.now();
      const batch: Array<Promise<void>> = [];
      for (let j = 0; j < IN_FLIGHT && i < n; j++) {
        const at = i;
        batch.push(one().then(() => { out[at] = (performance.now() - t0) * 1000; }));
        i++;
      }
      await Promise.all(batch);
    }
  }
  return dist(out);
}

function lruVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(__dirname, '..', 'node_modules', 'lru-cache', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

// ---------------------------------------------------------------------------------------------
// peer: a second McCache node that receives (and ACKs) every write
// ---------------------------------------------------------------------------------------------

function peer(): void {
  servePeer([getCache('cmp', CACHE_OPTIONS)]);
}

// ---------------------------------------------------------------------------------------------
// parent
// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = Date.now();
  abortAfter(DEADLINE_MS, () => []);
  const g = randomGroup();
  Object.assign(process.env, hostLocalEnv(g));
  const redis = await benchRedis();
  const server = redis.server;
  console.log(`# compare-local.bench: get/set, McCache vs Map vs lru-cache ${lruVersion()} vs Redis (ioredis, loopback)`);
  console.log(`# ${machineLine()}`);
  console.log(`# ${redis.line}`);
  console.log(`# McCache group ${g.ip}:${g.port}, MCCACHE_MULTICAST_HOPS=0 (127.0.0.1, TTL 0); ${fmt(CAPACITY)} entries, ${fmt(HOT)} hot keys, ${REPS} rounds x ${ROUND_MS} ms per cell`);

  const cluster = new Cluster(__filename, 1, hostLocalEnv(g));
  const clients: Redis[] = [];
  try {
    const keys = Array.from({ length: CAPACITY }, (_, i) => `user:${String(i).padStart(6, '0')}`);
    const ctx: Ctx = {
      hot: Array.from({ length: HOT }, (_, i) => keys[(i * CAPACITY) / HOT]!),
      str: Array.from({ length: HOT }, (_, i) => `value-${String(i).padStart(6, '0')}`),
    };
    const map = new Map<string, string>();
    const lru = new LRUCache<string, string>({ max: CAPACITY });
    const mc = getCache<string>('cmp', { ...CACHE_OPTIONS, multicastHops: 0, multicastIp: g.ip, multicastPort: g.port });
    const membersBy = Date.now() + 10_000;
    while ((getLocalMetrics()?.members.length ?? 0) < 1 && Date.now() < membersBy) await sleep(20);
    const members = getLocalMetrics()?.members.length ?? 0;
    for (const c of [map, lru, mc]) for (let i = 0; i < keys.length; i++) c.set(keys[i]!, ctx.str[i % HOT]!);

    const targets: Target[] = [
      { name: 'Map', kind: 'local', c: map },
      { name: 'lru-cache', kind: 'local', c: lru },
      { name: 'McCache (1 peer)', kind: 'local', c: mc },
    ];
    if (server) {
      const a = server.client('await');
      const b = server.client('inflight');
      clients.push(a, b);
      const p = a.pipeline();
      for (let i = 0; i < keys.length; i++) p.set(keys[i]!, ctx.str[i % HOT]!);
      await p.exec();
      targets.push({ name: 'Redis, await each', kind: 'redis-await', c: a }, { name: `Redis, ${IN_FLIGHT} in flight`, kind: 'redis-inflight', c: b });
    }
    let graceBy = Date.now() + 5000;
    do await sleep(50); while ((getLocalMetrics()?.pending ?? 0) > 0 && Date.now() < graceBy);
    console.log(`# McCache members seen: ${members} (of 1)`);

    // Throughput: one warm-up round, then REPS rounds, targets interleaved within a round.
    const load = new HostLoad();
    const cpu0 = process.cpuUsage();
    const redisCpu0 = server?.cpuMs() ?? 0;
    const rates = new Map<string, number[]>();
    for (let r = 0; r <= REPS; r++) {
      for (const op of OPS) {
        for (const t of targets) {
          const rate = await round(t, op, ctx);
          if (r === 0) continue;
          const k = `${t.name}\0${op}`;
          rates.set(k, [...(rates.get(k) ?? []), rate]);
        }
      }
    }
    // Latency distributions, after the throughput rounds warmed everything up.
    const lat = new Map<string, Dist>();
    for (const op of OPS) {
      lat.set(`timer only\0${op}`, await latencies(undefined, op, ctx));
      for (const t of targets) lat.set(`${t.name}\0${op}`, await latencies(t, op, ctx));
    }
    const own = process.cpuUsage(cpu0);
    const redisCpu = server ? server.cpuMs() - redisCpu0 : 0;
    const othersPct = load.othersPct((own.user + own.system) / 1000 + redisCpu);
    graceBy = Date.now() + 3000;
    do await sleep(50); while ((getLocalMetrics()?.pending ?? 0) > 0 && Date.now() < graceBy);
    cluster.broadcast({ type: 'report' });
    const applied = (await cluster.next('applied', 1, 5000))[0]!['applied'] as number;

    // Tables
    const spreads = new Map<string, Spread>([...rates].map(([k, v]) => [k, spread(v)]));
    const med = (name: string, op: Op): number => spreads.get(`${name}\0${op}`)?.median ?? NaN;
    const redisName = server ? 'Redis, await each' : undefined;
    console.log('');
    console.log(`## ops/s: min / **median** / max over ${REPS} rounds; "x lru" and "x Redis" = median / the median of lru-cache or of "Redis, await each" in this run`);
    console.log('| implementation | get | x lru | x Redis | set | x lru | x Redis |');
    console.log('|---|---:|---:|---:|---:|---:|---:|');
    for (const t of targets) {
      const cells = OPS.map((op) => `${mmm(spreads.get(`${t.name}\0${op}`)!)} | ${fmt(med(t.name, op) / med('lru-cache', op), 3)} | ${redisName ? fmt(med(t.name, op) / med(redisName, op), 1) : '-'}`);
      console.log(`| ${t.name} | ${cells.join(' | ')} |`);
    }
    console.log('');
    console.log(`## latency of one call: p50 / p99 / p99.9 / max (${fmt(LAT_N_LOCAL)} calls in-process, ${fmt(LAT_N_REDIS)} for Redis)`);
    console.log('| implementation | get | set |');
    console.log('|---|---|---|');
    for (const name of ['timer only', ...targets.map((t) => t.name)]) {
      const cells = OPS.map((op) => {
        const d = lat.get(`${name}\0${op}`)!;
        return `${us(d.p50)} / ${us(d.p99)} / ${us(d.p999)} / ${us(d.max)}`;
      });
      console.log(`| ${name} | ${cells.join(' | ')} |`);
    }
    console.log('');
    console.log(`- the McCache peer applied ${fmt(applied)} remote sets (pending writes of a key are coalesced when the send window is full, so fewer than the sets made is expected)`);
    console.log(`- the rest of the host used ${fmt(othersPct)} % of a core meanwhile (/proc/stat busy time minus this process and redis-server)`);
    writeResults('compare-local', {
      title: 'Local reads and writes',
      redis: redis.info,
      params: { capacity: CAPACITY, hot: HOT, roundMs: ROUND_MS, reps: REPS, inFlight: IN_FLIGHT, latNLocal: LAT_N_LOCAL, latNRedis: LAT_N_REDIS, members },
      lruCache: lruVersion(),
      ops: OPS,
      targets: targets.map((t) => t.name),
      baseline: 'lru-cache',
      throughput: Object.fromEntries([...rates].map(([k, v]) => [k.replace('\0', ' | '), { samples: v, ...spreads.get(k)! }])),
      latencyUs: Object.fromEntries([...lat].map(([k, v]) => [k.replace('\0', ' | '), v])),
      peerApplied: applied,
      othersPct,
      loadavgEnd: loadavg(),
      seconds: (Date.now() - started) / 1000,
    });
  } finally {
    for (const c of clients) c.disconnect();
    await shutdown();
    await cluster.close();
    await server?.stop();
  }
  console.log(`\n# ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

if (process.argv[2] === 'child') peer();
else main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
