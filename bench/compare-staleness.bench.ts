/**
 * Staleness: how long after a write on process A process B reads the new value, for McCache
 * replication and two ways of sharing a value through Redis, at 1k, 5k and 20k writes/s, in
 * one run (STYLE.md rule 9: baselines in the same run, ratios; never asserts, never gates CI).
 * Writes bench/results/compare-staleness.json.
 *
 *   node bench/run.mjs compare-staleness       (BENCH_QUICK=1 for a short run)
 *
 * Two processes: A (index 0) writes one hot key, B (index 1) reads it. A write is the sequence
 * number of the write; A records the wall instant just before each write call
 * (performance.timeOrigin + performance.now(): one clock for every process on a host). B
 * records each instant at which it first holds a newer sequence number. The parent pairs them:
 * the staleness of write w is the first instant at which B held w or a later write, minus
 * w's instant. So a write that was overwritten before B saw it ends when B sees the newer one.
 *  - McCache: A `set`s the key; B timestamps the cache's 'remote-set' event (what a `get` at
 *    that instant returns). McCache coalesces the writes of one key made in the same
 *    event-loop turn into one message; Redis applies every write.
 *  - Redis, B re-reads: A SETs (pipelined, not awaited); B GETs in a loop, one at a time, and
 *    timestamps each reply. The cost is a round trip per read, and B's CPU (shown).
 *  - Redis pub/sub invalidation: A SETs then PUBLISHes on the same connection; B, subscribed
 *    on a second connection, GETs the key on each message and timestamps the reply.
 * Paced like replication.bench.ts: every ~1 ms timer tick A writes what is owed, so 20k/s
 * arrives as bursts of ~20. Every mode runs at every rate in each of BENCH_REPS repetitions,
 * interleaved, so drifting host load hits them alike. Staleness quantiles are per repetition
 * (min / median / max across repetitions); the distributions charted pool every repetition.
 * McCache: host-local multicast (random 239.255.x.y group, 127.0.0.1, TTL 0). Redis: a private
 * redis-server on 127.0.0.1 (bench/fixtures/redis.ts). Bounded in writes, reads and time.
 */
import type { Redis } from 'ioredis';
import { getCache, type Cache } from '../runtime/index';
import { benchIndex, joinCluster, sayReady, serveParent } from './fixtures/child';
import { abortAfter, Cluster, fmt, hostLocalEnv, pace, randomGroup, runBench, sleep, toParent, wallNow } from './fixtures/cluster';
import { benchRedis, redisClient } from './fixtures/redis';
import { dist, DISTURBED_PCT, HostLoad, machineLine, mmm, pick, REPS, spread, us, writeResults, type Dist, type Spread } from './fixtures/results';

const RATES = [1_000, 5_000, 20_000];
const SECONDS = pick(2, 1);
const DRAIN_MS = 2_000;
const MAX_READS = 2_000_000;
const KEY = 'hot';
const CHANNEL = 'inval';
const DEADLINE_MS = 240_000;
const CACHE_OPTIONS = { max: 1000, ttl: 0, callbackWindow: 0 };

type Mode = 'mccache' | 'redis-reread' | 'redis-pubsub';
const MODE_NAMES: Record<Mode, string> = {
  'mccache': 'McCache replication',
  'redis-reread': 'Redis, B re-reads',
  'redis-pubsub': 'Redis pub/sub invalidation',
};
interface Spec {
  id: number;
  mode: Mode;
  rate: number;
  seconds: number;
}
interface WriterReport {
  sent: number;
  sentAt: number[];
  firstAt: number;
  lastAt: number;
  cpuMs: number;
}
interface ReaderReport {
  /** Increasing sequence numbers B held, and when it first held each. */
  seqs: number[];
  ats: number[];
  reads: number;
  cpuMs: number;
}

// ---------------------------------------------------------------------------------------------
// child: A (index 0) writes, B (index 1) reads
// ---------------------------------------------------------------------------------------------

async function child(): Promise<void> {
  const index = benchIndex();
  const redisPort = Number(process.env['BENCH_REDIS_PORT'] ?? 0);
  await joinCluster(CACHE_OPTIONS, 1, 10_000);
  const r: Redis | undefined = redisPort ? redisClient(redisPort, `stale-${index}`) : undefined;
  const sub: Redis | undefined = redisPort && index === 1 ? redisClient(redisPort, 'stale-sub') : undefined;
  if (sub) await sub.subscribe(CHANNEL);
  sayReady();

  let spec: Spec | undefined;
  let cache: Cache<number> | undefined;
  let seqs: number[] = [];
  let ats: number[] = [];
  let last = 0;
  let reads = 0;
  let cpu0 = process.cpuUsage();
  let stopReading = false;
  const observe = (seq: number): void => {
    if (seq > last) {
      last = seq;
      seqs.push(seq);
      ats.push(wallNow());
    }
  };
  const onRemoteSet = (info: Record<string, unknown>): void => {
    if (info['key'] !== KEY) return;
    reads++;
    const v = cache!.peek(KEY);
    if (typeof v === 'number') observe(v);
  };
  sub?.on('message', () => {
    if (spec?.mode !== 'redis-pubsub') return;
    reads++;
    void r!.get(KEY).then((v) => observe(Number(v ?? 0)), () => { /* counted as not observed */ });
  });

  const write = async (s: Spec): Promise<WriterReport> => {
    const total = Math.round(s.rate * s.seconds);
    const sentAt = new Array<number>(total + 1).fill(NaN);
    const put = s.mode === 'mccache'
      ? (seq: number): void => {
        sentAt[seq] = wallNow();
        cache!.set(KEY, seq);
      }
      : s.mode === 'redis-reread'
        ? (seq: number): void => {
          sentAt[seq] = wallNow();
          void r!.set(KEY, String(seq));
        }
        : (seq: number): void => {
          sentAt[seq] = wallNow();
          void r!.set(KEY, String(seq));
          void r!.publish(CHANNEL, String(seq));
        };
    const { sent, firstAt, lastAt } = await pace({ rate: s.rate, total, forMs: s.seconds * 1000 + 1000, put });
    if (r && s.mode !== 'mccache') await r.ping(); // every write has reached the server
    const c = process.cpuUsage(cpu0);
    return { sent, sentAt: sentAt.slice(0, sent + 1), firstAt, lastAt, cpuMs: (c.user + c.system) / 1000 };
  };

  const reread = async (s: Spec): Promise<void> => {
    const until = wallNow() + s.seconds * 1000 + DRAIN_MS + 2000;
    while (!stopReading && reads < MAX_READS && wallNow() < until) {
      const v = await r!.get(KEY);
      reads++;
      observe(Number(v ?? 0));
    }
  };

  serveParent({
    phase: async (m) => {
      spec = m['spec'] as Spec;
      if (cache) cache.off('remote-set', onRemoteSet as (info: Record<string, unknown>) => void);
      cache = spec.mode === 'mccache' ? getCache<number>(`stale-${spec.id}`, CACHE_OPTIONS) : undefined;
      if (cache && index === 1) cache.on('remote-set', onRemoteSet);
      if (index === 0 && r) await r.set(KEY, '0');
      seqs = [];
      ats = [];
      last = 0;
      reads = 0;
      stopReading = false;
      await sleep(50); // the peer's cache exists before anything arrives
      toParent({ type: 'armed', index });
    },
    go: async () => {
      cpu0 = process.cpuUsage();
      if (index === 0) toParent({ type: 'written', index, report: await write(spec!) });
      else if (spec!.mode === 'redis-reread') void reread(spec!);
    },
    expect: async (m) => {
      const want = m['sent'] as number;
      const by = wallNow() + DRAIN_MS;
      while (last < want && wallNow() < by) await sleep(2);
      stopReading = true;
      await sleep(5);
      const c = process.cpuUsage(cpu0);
      toParent({ type: 'read', index, report: { seqs, ats, reads, cpuMs: (c.user + c.system) / 1000 } satisfies ReaderReport });
    },
  }, () => {
    r?.disconnect();
    sub?.disconnect();
  });
}

// ---------------------------------------------------------------------------------------------
// parent
// ---------------------------------------------------------------------------------------------

interface Run {
  mode: Mode;
  rate: number;
  rep: number;
  sent: number;
  achieved: number;
  /** Writes whose value (or a newer one) B held before the phase ended. */
  observed: number;
  stale: Dist;
  staleSamples: Float64Array;
  readsPerSec: number;
  cpuPct: { writer: number; reader: number; redis: number };
  othersPct: number;
}

/** Staleness of every write, µs (NaN: never observed). Both arrays increase, so one pass. */
function pair(w: WriterReport, rd: ReaderReport): Float64Array {
  const out = new Float64Array(w.sent).fill(NaN);
  let j = 0;
  for (let seq = 1; seq <= w.sent; seq++) {
    while (j < rd.seqs.length && rd.seqs[j]! < seq) j++;
    if (j === rd.seqs.length) break;
    out[seq - 1] = (rd.ats[j]! - w.sentAt[seq]!) * 1000;
  }
  return out;
}

async function main(): Promise<void> {
  const started = Date.now();
  const g = randomGroup();
  const redis = await benchRedis();
  const server = redis.server;
  const modes: Mode[] = server ? ['mccache', 'redis-reread', 'redis-pubsub'] : ['mccache'];
  console.log('# compare-staleness.bench: write on A until B reads the new value; McCache vs Redis re-read vs Redis pub/sub invalidation');
  console.log(`# ${machineLine()}`);
  console.log(`# ${redis.line}`);
  console.log(`# McCache group ${g.ip}:${g.port}, MCCACHE_MULTICAST_HOPS=0 (127.0.0.1, TTL 0); ${SECONDS} s per phase, paced by ~1 ms ticks`);

  const cluster = new Cluster(__filename, 2, { ...hostLocalEnv(g), BENCH_REDIS_PORT: String(server?.port ?? 0) });
  abortAfter(DEADLINE_MS, () => cluster.kids, server && (() => server.stop()));
  const runs: Run[] = [];
  try {
    const ready = await cluster.next('ready', 2, 15_000);
    console.log(`# McCache members seen by A and B: ${ready.map((m) => m['members']).join(', ')} (of 1)`);
    let id = 0;
    for (let rep = 1; rep <= REPS; rep++) {
      for (const rate of RATES) {
        for (const mode of modes) {
          const spec: Spec = { id: ++id, mode, rate, seconds: SECONDS };
          await cluster.arm(spec);
          const load = new HostLoad();
          const redisCpu0 = server?.cpuMs() ?? 0;
          const t0 = performance.now();
          const { w, readers } = await cluster.writeThenRead<WriterReport, ReaderReport>((SECONDS + 10) * 1000, DRAIN_MS + 10_000);
          const rd = readers[0]!;
          const wallMs = performance.now() - t0;
          const redisCpu = server ? server.cpuMs() - redisCpu0 : 0;
          const samples = pair(w, rd);
          const seen = samples.filter((x) => Number.isFinite(x));
          runs.push({
            mode, rate, rep, sent: w.sent,
            achieved: (w.sent * 1000) / Math.max(1, w.lastAt - w.firstAt),
            observed: seen.length / Math.max(1, w.sent),
            stale: dist(seen), staleSamples: Float64Array.from(seen),
            readsPerSec: (rd.reads * 1000) / wallMs,
            cpuPct: { writer: (w.cpuMs * 100) / wallMs, reader: (rd.cpuMs * 100) / wallMs, redis: (redisCpu * 100) / wallMs },
            othersPct: load.othersPct(w.cpuMs + rd.cpuMs + redisCpu),
          });
          await sleep(100);
        }
      }
    }
  } finally {
    await cluster.close();
    await server?.stop();
  }

  // Tables
  const cells = RATES.flatMap((rate) => modes.map((mode) => {
    const rs = runs.filter((r) => r.rate === rate && r.mode === mode);
    const pooled = dist(Float64Array.from(rs.flatMap((r) => [...r.staleSamples])));
    return {
      rate, mode, name: MODE_NAMES[mode], runs: rs.length,
      p50: spread(rs.map((r) => r.stale.p50)), p99: spread(rs.map((r) => r.stale.p99)),
      p999: spread(rs.map((r) => r.stale.p999)), max: spread(rs.map((r) => r.stale.max)),
      observed: spread(rs.map((r) => r.observed)), achieved: spread(rs.map((r) => r.achieved)),
      readsPerSec: spread(rs.map((r) => r.readsPerSec)),
      cpuWriter: spread(rs.map((r) => r.cpuPct.writer)), cpuReader: spread(rs.map((r) => r.cpuPct.reader)),
      cpuRedis: spread(rs.map((r) => r.cpuPct.redis)), othersPct: spread(rs.map((r) => r.othersPct)),
      pooled,
    };
  }));
  const u = (s: Spread): string => mmm(s, us);
  const p = (n: number): string => fmt(n, 0);
  console.log('');
  console.log(`## staleness (write on A until B holds it): min / **median** / max over ${REPS} repetition(s) of each quantile`);
  console.log('| writes/s | path | p50 | p99 | p99.9 | max | writes seen by B | B reads/s | CPU % A / B / redis-server (rest of host) |');
  console.log('|---:|---|---|---|---|---|---:|---:|---|');
  for (const c of cells) {
    const obs = c.observed.n ? `${fmt(c.observed.min * 100, 2)} %` : '-';
    const busy = c.othersPct.max > DISTURBED_PCT ? ' !' : '';
    console.log(`| ${fmt(c.rate)} | ${c.name} | ${u(c.p50)} | ${u(c.p99)} | ${u(c.p999)} | ${u(c.max)} | ${obs} | ${fmt(c.readsPerSec.median)} | ${p(c.cpuWriter.median)} / ${p(c.cpuReader.median)} / ${p(c.cpuRedis.median)} (${p(c.othersPct.median)}${busy}) |`);
  }
  if (server) {
    console.log('');
    console.log('## ratio McCache / Redis (medians of the same rate, same run): below 1 = McCache fresher');
    console.log('| writes/s | p50 / re-read | p99 / re-read | p50 / pub/sub | p99 / pub/sub |');
    console.log('|---:|---:|---:|---:|---:|');
    for (const rate of RATES) {
      const m = cells.find((c) => c.rate === rate && c.mode === 'mccache')!;
      const a = cells.find((c) => c.rate === rate && c.mode === 'redis-reread')!;
      const b = cells.find((c) => c.rate === rate && c.mode === 'redis-pubsub')!;
      console.log(`| ${fmt(rate)} | ${fmt(m.p50.median / a.p50.median, 2)} | ${fmt(m.p99.median / a.p99.median, 2)} | ${fmt(m.p50.median / b.p50.median, 2)} | ${fmt(m.p99.median / b.p99.median, 2)} |`);
    }
  }
  console.log(`\n"writes seen by B": the worst repetition. "!" marks a cell during which the rest of the host used more than ${DISTURBED_PCT} % of a core: its latencies are not clean.`);
  writeResults('compare-staleness', {
    title: 'Staleness: write on A until B reads it',
    redis: redis.info,
    params: { rates: RATES, seconds: SECONDS, reps: REPS, drainMs: DRAIN_MS, key: 'one hot key' },
    modes: modes.map((m) => ({ id: m, name: MODE_NAMES[m] })),
    cells: cells.map(({ pooled, ...c }) => ({ ...c, pooled })),
    runs: runs.map(({ staleSamples: _s, ...r }) => r),
    seconds: (Date.now() - started) / 1000,
  });
  console.log(`\n# ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

runBench(main, child);
