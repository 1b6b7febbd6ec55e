/**
 * Cluster throughput under a mixed workload: 3 and then 5 processes all working at once,
 * 55 % get / 20 % insert / 20 % update / 5 % delete, against McCache (every process holds the
 * whole cache, writes replicate) and against one shared Redis (every process a client), with
 * a per-process lru-cache (nothing shared) as the harness's own floor, in one run (STYLE.md
 * rule 9; never asserts, never gates CI). Writes bench/results/cluster-mix.json.
 *
 *   node bench/run.mjs cluster-mix       (BENCH_QUICK=1 for a short run)
 *
 * Offered load: a total ops/s split evenly over the processes, each paced by ~1 ms timer ticks
 * (as replication.bench.ts), for SECONDS. Keys: KEYS keys loaded before each phase (gets,
 * updates and deletes pick one at random), inserts make new keys; values are 100-character
 * strings that start with the write's wall instant.
 *  - McCache: `get`/`set`/`delete` are local and synchronous; the work that can fall behind is
 *    replication. So after the load stops, the parent waits until every process holds the
 *    same cache ("converge": the last remote write applied before the checksums agreed;
 *    bench/fixtures/converge.ts hashes only once the cluster is quiet, so waiting does not
 *    starve the replication it waits for).
 *  - Redis: each op is a command on the process's connection, issued on the tick it is due
 *    while fewer than MAX_IN_FLIGHT are outstanding (beyond that the process falls behind);
 *    "converge" is the wait for the last replies (one copy: coherent when acknowledged).
 *  - lru-cache: each process alone; no sharing, so no convergence. It shows what the pacing
 *    loop and the op mix cost by themselves (CPU %), not a competitor.
 * Effective throughput = ops done / (load time + converge time): what the cluster sustained,
 * counting the catch-up its backlog needed. A phase that has not converged within
 * CONVERGE_MAX_MS has no effective throughput ("no").
 * Also: CPU % of one core per process over load + converge (and redis-server's); memory as the
 * heap each process retains after a full GC at the end of the phase minus before it (children
 * run with --expose-gc) and, for Redis, the growth of the server's used_memory; the largest
 * RSS a process reached (sampled every 100 ms); McCache's put-to-visible lag as seen in
 * 'remote-set' events (from the wall instant in the value), the latency of each op call, and
 * what the rest of the (shared) host used meanwhile. McCache: host-local multicast (random
 * 239.255.x.y group, 127.0.0.1, TTL 0). Redis: private redis-server on 127.0.0.1.
 */
import { LRUCache } from 'lru-cache';
import type { Redis } from 'ioredis';
import { getCache, getLocalMetrics, type Cache } from '../runtime/index';
import { benchIndex, joinCluster, sayReady, serveParent } from './fixtures/child';
import { abortAfter, Cluster, fmt, hostLocalEnv, median, randomGroup, rng32, runBench, sleep, toParent, untilWall, wallNow } from './fixtures/cluster';
import { awaitConvergence, RemoteTracker } from './fixtures/converge';
import { benchRedis, redisClient } from './fixtures/redis';
import { dist, DISTURBED_PCT, HostLoad, machineLine, mib, mmm, pick, REPS, si, spread, us, writeResults, type Dist, type Spread } from './fixtures/results';

const SIZES = [3, 5];
// Up to where both saturate on the 2-core bench machine: 300k ops/s offered is 135k writes/s,
// above the rate three writers sustained in overload.bench.ts there.
const RATES = pick([10_000, 50_000, 150_000, 300_000], [20_000, 150_000]);
const SECONDS = pick(1.5, 1);
const KEYS = 2_000;
const VALUE_CHARS = 100;
const MAX_IN_FLIGHT = 256;
const CONVERGE_MAX_MS = 8_000;
const MIX = { get: 0.55, insert: 0.2, update: 0.2, delete: 0.05 };
const DEADLINE_MS = 400_000;
const CACHE_OPTIONS = { max: 2_000_000, maxSize: 1 << 30, ttl: 0, callbackWindow: 0 };
const MAX_LAT = 200_000;
const GRACE_MS = 1_000;
/** The processes start each phase together, this long after the parent says go. */
const START_DELAY_MS = 100;
const NET_COUNTERS = ['messagesSent', 'datagramsOut', 'retransmits', 'naksSent', 'gaps', 'messagesGivenUp'] as const;

type System = 'mccache' | 'redis' | 'lru';
const SYSTEM_NAMES: Record<System, string> = { mccache: 'McCache', redis: 'Redis (shared server)', lru: 'lru-cache per process (not shared)' };
interface Spec {
  id: number;
  system: System;
  nodes: number;
  /** Total offered ops/s over all processes. */
  rate: number;
  seconds: number;
}
interface Done {
  ops: number;
  hits: number;
  gets: number;
  firstAt: number;
  /** Wall instant the last op completed (Redis: its reply). */
  lastAt: number;
  opLat: Dist;
  rssMax: number;
  /** Largest McCache backlog seen (sampled every 100 ms): writes not yet sent, messages unacknowledged. */
  pendingMax: number;
  unackedMax: number;
}
interface Final {
  cpuMs: number;
  /** Transport counters over the phase (McCache): repairs show loss or overrun. */
  net: Record<string, number>;
  lag: Dist;
  shed: number;
  rss: number;
  heapUsed: number;
  /** Heap used after a full GC at the end of the phase minus the same before it (--expose-gc). */
  heapRetained: number;
}

// ---------------------------------------------------------------------------------------------
// child: one process of the cluster
// ---------------------------------------------------------------------------------------------

async function child(): Promise<void> {
  const index = benchIndex();
  const nodes = Number(process.env['BENCH_NODES']);
  const redisPort = Number(process.env['BENCH_REDIS_PORT'] ?? 0);
  await joinCluster(CACHE_OPTIONS, nodes - 1, 15_000);
  const r: Redis | undefined = redisPort ? redisClient(redisPort, `mix-${index}`) : undefined;
  sayReady();

  const pad = 'x'.repeat(VALUE_CHARS);
  const value = (): string => {
    const s = `${wallNow().toFixed(3)}|`;
    return s + pad.slice(s.length);
  };
  let spec: Spec | undefined;
  let mc: Cache<string> | undefined;
  let tracker: RemoteTracker | undefined;
  let preloaded: () => void = () => {};
  // Children run with --expose-gc, so "heap retained" compares two heaps after a full GC.
  const gc = (globalThis as { gc?: () => void }).gc;
  let heap0 = 0;
  let lru: LRUCache<string, string> | undefined;
  let prefix = '';
  let cpu0 = process.cpuUsage();
  let shed0 = 0;
  let net0: Record<string, number> = {};
  const net = (): Record<string, number> => {
    const t = (getLocalMetrics()?.transport ?? {}) as Record<string, unknown>;
    const out: Record<string, number> = {};
    for (const k of NET_COUNTERS) out[k] = typeof t[k] === 'number' ? t[k] as number : 0;
    return out;
  };
  let lag = new Float64Array(MAX_LAT);
  let nLag = 0;
  const onRemoteSet = (info: Record<string, unknown>): void => {
    if (nLag >= MAX_LAT) return;
    const v = mc!.peek(info['key'] as string);
    if (typeof v === 'string') lag[nLag++] = (wallNow() - Number.parseFloat(v)) * 1000;
  };

  const load = async (s: Spec, startAt: number): Promise<Done> => {
    const rate = s.rate / s.nodes;
    const total = Math.round(rate * s.seconds);
    const rnd = rng32(s.id * 100 + index + 1);
    const opLat = new Float64Array(total);
    let ops = 0;
    let issued = 0;
    let inFlight = 0;
    let hits = 0;
    let gets = 0;
    let inserts = 0;
    let lastAt = wallNow();
    let rssMax = process.memoryUsage.rss();
    let pendingMax = 0;
    let unackedMax = 0;
    const rssTimer = setInterval(() => {
      rssMax = Math.max(rssMax, process.memoryUsage.rss());
      const lm = getLocalMetrics();
      pendingMax = Math.max(pendingMax, lm?.pending ?? 0);
      unackedMax = Math.max(unackedMax, (lm?.transport as { unackedMessages?: number } | undefined)?.unackedMessages ?? 0);
    }, 100);
    const key = (): string => `${prefix}k${Math.floor(rnd() * KEYS)}`;
    const local = (c: { get(k: string): string | undefined; set(k: string, v: string): unknown; delete(k: string): unknown }): void => {
      const u = rnd();
      const t0 = performance.now();
      if (u < MIX.get) {
        gets++;
        if (c.get(key()) !== undefined) hits++;
      } else if (u < MIX.get + MIX.insert) c.set(`${prefix}n${index}:${++inserts}`, value());
      else if (u < MIX.get + MIX.insert + MIX.update) c.set(key(), value());
      else c.delete(key());
      opLat[ops++] = (performance.now() - t0) * 1000;
    };
    const remote = (): void => {
      const u = rnd();
      const t0 = performance.now();
      const at = issued++;
      inFlight++;
      let p: Promise<unknown>;
      if (u < MIX.get) {
        gets++;
        p = r!.get(key()).then((v) => { if (v !== null) hits++; });
      } else if (u < MIX.get + MIX.insert) p = r!.set(`${prefix}n${index}:${++inserts}`, value());
      else if (u < MIX.get + MIX.insert + MIX.update) p = r!.set(key(), value());
      else p = r!.del(key());
      p.then(() => {
        opLat[at] = (performance.now() - t0) * 1000;
        ops++;
        inFlight--;
        lastAt = wallNow();
      }, () => { inFlight--; });
    };
    await untilWall(startAt);
    const firstAt = startAt;
    // A process that falls behind gets GRACE_MS more to do what it owes (its achieved rate shows it).
    const stopAt = firstAt + s.seconds * 1000 + GRACE_MS;
    while ((s.system === 'redis' ? issued : ops) < total && wallNow() < stopAt) {
      const owed = Math.min(total, Math.floor(((wallNow() - firstAt) * rate) / 1000));
      if (s.system === 'redis') {
        while (issued < owed && inFlight < MAX_IN_FLIGHT) remote();
      } else {
        const c = s.system === 'mccache' ? mc! : lru!;
        while (ops < owed) local(c);
        lastAt = wallNow();
      }
      await sleep(1);
    }
    const drainBy = wallNow() + CONVERGE_MAX_MS;
    while (inFlight > 0 && wallNow() < drainBy) await sleep(1);
    clearInterval(rssTimer);
    return { ops, hits, gets, firstAt, lastAt, opLat: dist(opLat, s.system === 'redis' ? issued : ops), rssMax, pendingMax, unackedMax };
  };

  serveParent({
    phase: async (m) => {
      spec = m['spec'] as Spec;
      prefix = `m${spec.id}:`;
      nLag = 0;
      lag = new Float64Array(MAX_LAT);
      if (spec.system === 'mccache') {
        mc = getCache<string>(`mix-${spec.id}`, CACHE_OPTIONS);
        mc.on('remote-set', onRemoteSet);
        tracker = new RemoteTracker(mc as Cache<unknown>);
        // Every process names the cache (with its options) before the load reaches it.
        toParent({ type: 'created', index });
        await new Promise<void>((resolve) => { preloaded = resolve; });
        if (index === 0) for (let i = 0; i < KEYS; i++) mc.set(`${prefix}k${i}`, value());
        const by = Date.now() + 10_000;
        while (mc.size < KEYS && Date.now() < by) await sleep(10);
        // Everyone holds the keys; give the loading's ACKs a moment so the phase starts clean.
        while ((getLocalMetrics()?.pending ?? 0) > 0 && Date.now() < by) await sleep(10);
        shed0 = getLocalMetrics()?.shed ?? 0;
        net0 = net();
        // The lag is the workload's: the preload (2,000 sets in one turn by process 0) is not.
        nLag = 0;
      } else if (spec.system === 'lru') {
        lru = new LRUCache<string, string>({ max: 2_000_000 });
        for (let i = 0; i < KEYS; i++) lru.set(`${prefix}k${i}`, value());
      } else if (index === 0) {
        const p = r!.pipeline();
        for (let i = 0; i < KEYS; i++) p.set(`${prefix}k${i}`, value());
        await p.exec();
      }
      gc?.();
      heap0 = process.memoryUsage().heapUsed;
      toParent({ type: 'armed', index, size: mc?.size ?? 0 });
    },
    preload: () => preloaded(),
    go: async (m) => {
      cpu0 = process.cpuUsage();
      toParent({ type: 'done', index, report: await load(spec!, m['startAt'] as number) });
    },
    check: (m) => {
      toParent({ type: 'check', index, ...tracker!.reply(`mix-${spec!.id}`, m['sum'] === true) });
    },
    final: () => {
      const c = process.cpuUsage(cpu0);
      const mu = process.memoryUsage();
      const n1 = net();
      gc?.();
      const heapRetained = process.memoryUsage().heapUsed - heap0;
      const report: Final = { cpuMs: (c.user + c.system) / 1000, net: Object.fromEntries(NET_COUNTERS.map((k) => [k, n1[k]! - (net0[k] ?? 0)])), lag: dist(lag, nLag), shed: (getLocalMetrics()?.shed ?? 0) - shed0, rss: mu.rss, heapUsed: mu.heapUsed, heapRetained };
      toParent({ type: 'final', index, report });
    },
    cleanup: () => {
      // After every 'final': a replicated clear drops the phase's entries on every member.
      if (mc) {
        mc.off('remote-set', onRemoteSet as (info: Record<string, unknown>) => void);
        tracker?.detach();
        if (index === 0) mc.clear();
        mc = undefined;
      }
      lru = undefined;
      toParent({ type: 'cleaned', index });
    },
  }, () => r?.disconnect());
}

// ---------------------------------------------------------------------------------------------
// parent
// ---------------------------------------------------------------------------------------------

interface Run {
  system: System;
  nodes: number;
  rate: number;
  rep: number;
  ops: number;
  loadMs: number;
  convergeMs: number;
  converged: boolean;
  /** McCache: until nothing was pending or unacknowledged anywhere. */
  drainMs: number;
  effective: number;
  hitRate: number;
  opLat: Dist;
  lag: Dist;
  shed: number;
  /** Transport counters summed over the processes (McCache phases). */
  net: Record<string, number>;
  cpuPct: number[];
  redisCpuPct: number;
  rssMax: number[];
  heapRetained: number[];
  /** Redis: growth of the server's used_memory over the phase (its copy of the data). */
  redisMemGrowth: number;
  pendingMax: number;
  unackedMax: number;
  redisRss: number;
  othersPct: number;
}

async function main(): Promise<void> {
  const started = Date.now();
  const redis = await benchRedis();
  const server = redis.server;
  // BENCH_MIX_SYSTEMS=mccache,redis narrows a development run.
  const only = process.env['BENCH_MIX_SYSTEMS']?.split(',');
  const systems = (server ? ['mccache', 'redis', 'lru'] as System[] : ['mccache', 'lru'] as System[]).filter((x) => !only || only.includes(x));
  console.log(`# cluster-mix.bench: ${SIZES.join(' and ')} processes at once, ${fmt(MIX.get * 100)} % get / ${fmt(MIX.insert * 100)} % insert / ${fmt(MIX.update * 100)} % update / ${fmt(MIX.delete * 100)} % delete`);
  console.log(`# ${machineLine()}`);
  console.log(`# ${redis.line}`);
  console.log(`# ${SECONDS} s per phase; ${fmt(KEYS)} keys loaded per phase, ${VALUE_CHARS}-character values; Redis: <= ${MAX_IN_FLIGHT} commands in flight per process`);
  let cluster: Cluster | undefined;
  abortAfter(DEADLINE_MS, () => cluster?.kids ?? [], server && (() => server.stop()));
  const runs: Run[] = [];
  let id = 0;
  try {
    for (const nodes of SIZES) {
      const g = randomGroup();
      cluster = new Cluster(__filename, nodes, { ...hostLocalEnv(g), BENCH_NODES: String(nodes), BENCH_REDIS_PORT: String(server?.port ?? 0) }, ['--expose-gc']);
      const ready = await cluster.next('ready', nodes, 20_000);
      console.log(`# ${nodes} processes on ${g.ip}:${g.port} (127.0.0.1, TTL 0); members seen: ${ready.map((m) => m['members']).join(', ')} (of ${nodes - 1})`);
      for (let rep = 1; rep <= REPS; rep++) {
        for (const rate of RATES) {
          for (const system of systems) {
            if (system === 'lru' && rep > 1) continue; // the harness floor: once per cell is enough
            const spec: Spec = { id: ++id, system, nodes, rate, seconds: SECONDS };
            cluster.broadcast({ type: 'phase', spec });
            if (system === 'mccache') {
              await cluster.next('created', nodes, 20_000);
              cluster.broadcast({ type: 'preload' });
            }
            await cluster.next('armed', nodes, 20_000);
            const load = new HostLoad();
            const redisCpu0 = server?.cpuMs() ?? 0;
            const redisMem0 = system === 'redis' && server ? await server.usedMemory() : NaN;
            const t0 = performance.now();
            cluster.broadcast({ type: 'go', startAt: wallNow() + START_DELAY_MS });
            const done = await cluster.reports<Done>('done', nodes, (SECONDS + 5) * 1000 + CONVERGE_MAX_MS);
            const stoppedAt = Math.max(...done.map((d) => d.lastAt));
            // Redis: one copy, coherent once the last reply is in (convergeMs 0).
            const conv = system === 'mccache' ? await awaitConvergence(cluster, nodes, stoppedAt, CONVERGE_MAX_MS) : { drainMs: 0, convergeMs: 0, checksumRounds: 0 };
            const converged = Number.isFinite(conv.convergeMs);
            const wallMs = performance.now() - t0;
            const redisCpu = server ? server.cpuMs() - redisCpu0 : 0;
            const redisRss = system === 'redis' && server ? server.rssBytes() : NaN;
            const fin = await cluster.ask<Final>('final', 10_000);
            cluster.broadcast({ type: 'cleanup' });
            await cluster.next('cleaned', nodes, 10_000);
            const othersPct = load.othersPct(fin.reduce((n, f) => n + f.cpuMs, 0) + redisCpu);
            const ops = done.reduce((n, d) => n + d.ops, 0);
            const firstAt = Math.min(...done.map((d) => d.firstAt));
            const loadMs = stoppedAt - firstAt;
            const convergeMs = system === 'lru' ? NaN : conv.convergeMs;
            const lagAll = fin.flatMap((f) => (f.lag.n ? [f.lag] : []));
            runs.push({
              system, nodes, rate, rep, ops, loadMs, convergeMs, converged, drainMs: conv.drainMs,
              effective: converged ? (ops * 1000) / (loadMs + (system === 'lru' ? 0 : convergeMs)) : NaN,
              hitRate: done.reduce((n, d) => n + d.hits, 0) / Math.max(1, done.reduce((n, d) => n + d.gets, 0)),
              // Worst process's quantiles (each process's own distribution).
              opLat: worst(done.map((d) => d.opLat)),
              lag: worst(lagAll),
              shed: fin.reduce((n, f) => n + f.shed, 0),
              net: Object.fromEntries(NET_COUNTERS.map((k) => [k, fin.reduce((n, f) => n + (f.net[k] ?? 0), 0)])),
              cpuPct: fin.map((f) => (f.cpuMs * 100) / wallMs),
              redisCpuPct: system === 'redis' ? (redisCpu * 100) / wallMs : NaN,
              rssMax: done.map((d) => d.rssMax),
              heapRetained: fin.map((f) => f.heapRetained),
              redisMemGrowth: system === 'redis' && server ? (await server.usedMemory()) - redisMem0 : NaN,
              pendingMax: Math.max(...done.map((d) => d.pendingMax)),
              unackedMax: Math.max(...done.map((d) => d.unackedMax)),
              redisRss,
              othersPct,
            });
            if (server && system === 'redis') {
              const c = server.client('flush');
              await c.flushdb();
              c.disconnect();
            }
            await sleep(100);
          }
        }
      }
      await cluster.close();
      cluster = undefined;
    }
  } finally {
    await cluster?.close();
    await server?.stop();
  }

  const cells = SIZES.flatMap((nodes) => RATES.flatMap((rate) => systems.map((system) => {
    const rs = runs.filter((r) => r.nodes === nodes && r.rate === rate && r.system === system);
    return {
      nodes, rate, system, name: SYSTEM_NAMES[system], runs: rs.length,
      effective: spread(rs.map((r) => r.effective)), convergeMs: spread(rs.map((r) => r.convergeMs)),
      notConverged: rs.filter((r) => !r.converged).length,
      opP50: spread(rs.map((r) => r.opLat.p50)), opP99: spread(rs.map((r) => r.opLat.p99)),
      lagP50: spread(rs.map((r) => r.lag.p50)), lagP99: spread(rs.map((r) => r.lag.p99)),
      cpuPerProcess: spread(rs.flatMap((r) => r.cpuPct)), cpuTotal: spread(rs.map((r) => r.cpuPct.reduce((a, b) => a + b, 0))),
      redisCpu: spread(rs.map((r) => r.redisCpuPct)), rssMax: spread(rs.flatMap((r) => r.rssMax)), heapRetained: spread(rs.flatMap((r) => r.heapRetained)), redisMemGrowth: spread(rs.map((r) => r.redisMemGrowth)), redisRss: spread(rs.map((r) => r.redisRss)),
      net: Object.fromEntries(NET_COUNTERS.map((k) => [k, median(rs.map((r) => r.net[k] ?? 0))])),
      pendingMax: spread(rs.map((r) => r.pendingMax)), unackedMax: spread(rs.map((r) => r.unackedMax)),
      hitRate: spread(rs.map((r) => r.hitRate)), shed: spread(rs.map((r) => r.shed)), othersPct: spread(rs.map((r) => r.othersPct)),
    };
  })));
  const pc = (s: Spread): string => (s.n ? fmt(s.median, 0) : '-');
  for (const nodes of SIZES) {
    console.log('');
    console.log(`## ${nodes} processes: effective ops/s = ops / (load + converge); min / **median** / max over ${REPS} repetition(s) (lru-cache: 1)`);
    console.log('| offered ops/s | system | effective ops/s | x Redis | converge | op call p50 / p99 | McCache lag p50 / p99 | CPU % per process (sum) | redis-server CPU % | heap retained per process | redis used_memory growth | max RSS per process | redis-server RSS | peak pending / unacked | shed | McCache msgs / datagrams / retransmits / NAKs | rest of host % |');
    console.log('|---:|---|---|---:|---|---|---|---|---:|---:|---:|---:|---:|---|---:|---|---:|');
    for (const c of cells.filter((x) => x.nodes === nodes)) {
      const red = cells.find((x) => x.nodes === nodes && x.rate === c.rate && x.system === 'redis');
      const conv = c.system === 'mccache' ? `${mmm(c.convergeMs, (n) => `${fmt(n, 0)} ms`)}${c.notConverged ? ` (${c.notConverged} not within ${CONVERGE_MAX_MS / 1000} s)` : ''}` : '-';
      const lagCell = c.system === 'mccache' ? `${us(c.lagP50.median)} / ${us(c.lagP99.median)}` : '-';
      console.log(`| ${fmt(c.rate)} | ${c.name} | ${c.effective.n ? mmm(c.effective) : 'no'} | ${red ? fmt(c.effective.median / red.effective.median, 2) : '-'} | ${conv} | ${us(c.opP50.median)} / ${us(c.opP99.median)} | ${lagCell} | ${pc(c.cpuPerProcess)} (${pc(c.cpuTotal)}) | ${c.system === 'redis' ? pc(c.redisCpu) : '-'} | ${mib(c.heapRetained.median)} | ${c.system === 'redis' ? mib(c.redisMemGrowth.median) : '-'} | ${mib(c.rssMax.max)} | ${c.system === 'redis' ? mib(c.redisRss.max) : '-'} | ${c.system === 'mccache' ? `${fmt(c.pendingMax.max)} / ${fmt(c.unackedMax.max)}` : '-'} | ${c.system === 'mccache' ? fmt(c.shed.max) : '-'} | ${c.system === 'mccache' ? NET_COUNTERS.slice(0, 4).map((k) => si(c.net[k]!)).join(' / ') : '-'} | ${pc(c.othersPct)}${c.othersPct.max > DISTURBED_PCT ? ' !' : ''} |`);
    }
  }
  console.log(`\nCPU % is of one core, median over processes and repetitions (sum: all ${SIZES.join('/')} processes). Heap retained: heap used after a full GC at the end of the phase minus the same before it, median over processes (what each process keeps of the phase's data). RSS: the largest any process reached (the processes are reused across phases, so it carries their history). "!": the rest of the host used more than ${DISTURBED_PCT} % of a core during some repetition.`);
  writeResults('cluster-mix', {
    title: 'Cluster throughput, mixed workload',
    redis: redis.info,
    params: { sizes: SIZES, rates: RATES, seconds: SECONDS, keys: KEYS, valueChars: VALUE_CHARS, mix: MIX, maxInFlight: MAX_IN_FLIGHT, convergeMaxMs: CONVERGE_MAX_MS, reps: REPS },
    systems: systems.map((s) => ({ id: s, name: SYSTEM_NAMES[s] })),
    cells,
    runs,
    seconds: (Date.now() - started) / 1000,
  });
  console.log(`\n# ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/** The worst (largest) of each quantile over several processes' distributions. */
function worst(ds: Dist[]): Dist {
  if (!ds.length) return dist([]);
  const m = (k: 'p50' | 'p90' | 'p99' | 'p999' | 'max' | 'mean'): number => Math.max(...ds.map((d) => d[k]));
  return { n: ds.reduce((n, d) => n + d.n, 0), p50: m('p50'), p90: m('p90'), p99: m('p99'), p999: m('p999'), max: m('max'), mean: m('mean'), cdf: [] };
}

runBench(main, child);
