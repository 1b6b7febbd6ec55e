/**
 * Large values under loss: put-to-visible latency, delivery and repair work for 10 KB and
 * 100 KB values with 0 %, 1 % and 5 % of datagrams dropped on purpose, beside Redis pub/sub
 * invalidation moving the same values in the same run (STYLE.md rule 9; never asserts, never
 * gates CI). Writes bench/results/large-values.json.
 *
 *   node bench/run.mjs large-values       (BENCH_QUICK=1 for a short run)
 *
 * Three processes: 0 writes, 1 and 2 read. Loss comes from the library's MCCACHE_MONKEY_TANTRUM
 * (runtime/transport/udp-driver.ts: each outgoing datagram of every process, data and control
 * alike, is dropped with that probability before it reaches the socket), so the cluster is
 * restarted for each loss level. A 100 KB value is about 70 datagrams of 1,472 bytes: at 5 %
 * loss nearly every value loses a fragment and needs a NAK and a retransmission.
 *  - McCache: each put is a new key (nothing coalesces) whose value starts with the wall
 *    instant of the put; a reader timestamps the 'remote-set' event. Delivery = distinct keys
 *    the worse reader got / puts; drain = from the last put until both readers hold them all.
 *  - Redis pub/sub invalidation (baseline, loopback TCP, no injected loss): the writer SETs the
 *    value and PUBLISHes its key; each reader GETs it on the message and timestamps the reply.
 * Same pacing for both (every ~1 ms timer tick writes what is owed), the same bytes per second
 * for both sizes (RATE_BYTES). McCache: host-local multicast (random 239.255.x.y group,
 * 127.0.0.1, TTL 0). Redis: private redis-server on 127.0.0.1. Bounded in writes and time.
 */
import type { Redis } from 'ioredis';
import { getCache, getLocalMetrics, type Cache } from '../runtime/index';
import { Arrivals, benchIndex, joinCluster, sayReady, serveParent } from './fixtures/child';
import { abortAfter, Cluster, fmt, hostLocalEnv, pace, randomGroup, runBench, sleep, toParent, wallNow } from './fixtures/cluster';
import { benchRedis, redisClient } from './fixtures/redis';
import { dist, DISTURBED_PCT, HostLoad, machineLine, mmm, pick, REPS, spread, us, writeResults, type Dist, type Spread } from './fixtures/results';

const NODES = 3;
const SIZES = [10 * 1024, 100 * 1024];
const LOSSES = [0, 1, 5];
/** Bytes per second written, for every size: 500 puts/s of 10 KB, 50 puts/s of 100 KB. */
const RATE_BYTES = 5 * 1024 * 1024;
const SECONDS: Record<number, number> = { [10 * 1024]: pick(2, 1), [100 * 1024]: pick(3, 1.5) };
const DRAIN_DEADLINE_MS = 8_000;
const DEADLINE_MS = 300_000;
const CACHE_OPTIONS = { max: 100_000, maxSize: 1 << 30, ttl: 0, callbackWindow: 0 };
const CHANNEL = 'big';

type Path = 'mccache' | 'redis-pubsub';
interface Spec {
  id: number;
  path: Path;
  size: number;
  rate: number;
  seconds: number;
}
interface WriterReport {
  sent: number;
  firstAt: number;
  lastAt: number;
}
interface ReaderReport {
  seen: number;
  lat: Dist;
  /** Wall instant the last missing value arrived (NaN: never complete). */
  completeAt: number;
}
interface Counters {
  cpuMs: number;
  retransmits: number;
  naksSent: number;
  tantrumDropped: number;
  datagramsOut: number;
}

// ---------------------------------------------------------------------------------------------
// child
// ---------------------------------------------------------------------------------------------

function counters0(): Omit<Counters, 'cpuMs'> {
  const t = (getLocalMetrics()?.transport ?? {}) as Record<string, number>;
  return { retransmits: t['retransmits'] ?? 0, naksSent: t['naksSent'] ?? 0, tantrumDropped: t['tantrumDropped'] ?? 0, datagramsOut: t['datagramsOut'] ?? 0 };
}

async function child(): Promise<void> {
  const index = benchIndex();
  const redisPort = Number(process.env['BENCH_REDIS_PORT'] ?? 0);
  await joinCluster(CACHE_OPTIONS, NODES - 1, 15_000);
  const r: Redis | undefined = redisPort ? redisClient(redisPort, `big-${index}`) : undefined;
  const sub: Redis | undefined = redisPort && index > 0 ? redisClient(redisPort, `big-sub-${index}`) : undefined;
  if (sub) await sub.subscribe(CHANNEL);
  sayReady();

  let spec: Spec | undefined;
  let cache: Cache<Uint8Array> | undefined;
  const got = new Arrivals();
  let cpu0 = process.cpuUsage();
  let c0 = counters0();

  const arrive = (seq: number, v: Uint8Array): void => got.arrive(seq, Buffer.from(v.buffer, v.byteOffset, v.byteLength).readDoubleBE(0));
  const onRemoteSet = (info: Record<string, unknown>): void => {
    const key = info['key'] as string;
    const v = cache!.peek(key);
    if (v instanceof Uint8Array) arrive(Number(key), v);
  };
  sub?.on('message', (_ch: string, key: string) => {
    if (spec?.path !== 'redis-pubsub') return;
    void r!.getBuffer(`${spec.id}:${key}`).then((v) => { if (v) arrive(Number(key), v); }, () => { /* not seen */ });
  });

  const write = async (s: Spec): Promise<WriterReport> => {
    const put = (seq: number): void => {
      const v = Buffer.alloc(s.size, seq & 0xff);
      v.writeDoubleBE(wallNow(), 0);
      if (s.path === 'mccache') cache!.set(String(seq), v);
      else {
        void r!.set(`${s.id}:${seq}`, v);
        void r!.publish(CHANNEL, String(seq));
      }
    };
    const { sent, firstAt, lastAt } = await pace({ rate: s.rate, total: Math.round(s.rate * s.seconds), forMs: s.seconds * 1000 + 2000, put });
    return { sent, firstAt, lastAt };
  };

  serveParent({
    phase: async (m) => {
      spec = m['spec'] as Spec;
      if (cache) cache.off('remote-set', onRemoteSet as (info: Record<string, unknown>) => void);
      cache = spec.path === 'mccache' ? getCache<Uint8Array>(`big-${spec.id}`, CACHE_OPTIONS) : undefined;
      if (cache && index !== 0) cache.on('remote-set', onRemoteSet);
      got.reset(index === 0 ? 0 : Math.round(spec.rate * spec.seconds));
      await sleep(50);
      toParent({ type: 'armed', index });
    },
    go: async () => {
      cpu0 = process.cpuUsage();
      c0 = counters0();
      if (index === 0) toParent({ type: 'written', index, report: await write(spec!) });
    },
    expect: async (m) => {
      const all = await got.awaitAll(m['sent'] as number, (m['lastAt'] as number) + DRAIN_DEADLINE_MS);
      toParent({ type: 'read', index, report: { ...all, lat: dist(got.lat, got.nLat) } satisfies ReaderReport });
    },
    counters: async () => {
      const c = process.cpuUsage(cpu0);
      const n = counters0();
      toParent({
        type: 'counters', index, counters: {
          cpuMs: (c.user + c.system) / 1000, retransmits: n.retransmits - c0.retransmits, naksSent: n.naksSent - c0.naksSent,
          tantrumDropped: n.tantrumDropped - c0.tantrumDropped, datagramsOut: n.datagramsOut - c0.datagramsOut,
        } satisfies Counters,
      });
      // The phase's values are not needed any more: a replicated clear drops them everywhere.
      if (index === 0 && cache) cache.clear();
      if (index === 0 && r && spec?.path === 'redis-pubsub') await r.flushdb();
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
  path: Path;
  loss: number;
  size: number;
  rep: number;
  sent: number;
  delivery: number;
  lat: Dist;
  drainMs: number;
  counters: Counters[];
  redisCpuMs: number;
  othersPct: number;
  wallMs: number;
}

async function main(): Promise<void> {
  const started = Date.now();
  const redis = await benchRedis();
  const server = redis.server;
  console.log(`# large-values.bench: 10 KB and 100 KB values, ${LOSSES.join(' / ')} % datagram loss (MCCACHE_MONKEY_TANTRUM), 1 writer, ${NODES - 1} readers; Redis pub/sub invalidation beside it`);
  console.log(`# ${machineLine()}`);
  console.log(`# ${redis.line}`);
  console.log(`# ${fmt(RATE_BYTES / 2 ** 20)} MiB/s of values for each size: ${SIZES.map((s) => `${fmt(RATE_BYTES / s)} puts/s of ${s / 1024} KB for ${SECONDS[s]} s`).join(', ')}`);
  let cluster: Cluster | undefined;
  abortAfter(DEADLINE_MS, () => cluster?.kids ?? [], server && (() => server.stop()));
  const runs: Run[] = [];
  let id = 0;
  try {
    for (const loss of LOSSES) {
      const g = randomGroup();
      cluster = new Cluster(__filename, NODES, { ...hostLocalEnv(g), MCCACHE_MONKEY_TANTRUM: String(loss), BENCH_REDIS_PORT: String(server?.port ?? 0) });
      const ready = await cluster.next('ready', NODES, 20_000);
      console.log(`# loss ${loss} %: group ${g.ip}:${g.port} (127.0.0.1, TTL 0); members seen: ${ready.map((m) => m['members']).join(', ')} (of ${NODES - 1})`);
      // Redis has no injected loss, so it runs once, beside the 0 % cluster.
      const paths: Path[] = loss === 0 && server ? ['mccache', 'redis-pubsub'] : ['mccache'];
      for (let rep = 1; rep <= REPS; rep++) {
        for (const size of SIZES) {
          for (const path of paths) {
            const c = cluster;
            const spec: Spec = { id: ++id, path, size, rate: RATE_BYTES / size, seconds: SECONDS[size]! };
            await c.arm(spec);
            const load = new HostLoad();
            const redisCpu0 = server?.cpuMs() ?? 0;
            const t0 = performance.now();
            const { w, readers } = await c.writeThenRead<WriterReport, ReaderReport>((spec.seconds + 10) * 1000, DRAIN_DEADLINE_MS + 10_000);
            const wallMs = performance.now() - t0;
            const counters = await c.ask<Counters>('counters', 30_000, 'counters');
            const redisCpuMs = path === 'redis-pubsub' && server ? server.cpuMs() - redisCpu0 : 0;
            const done = readers.every((x) => Number.isFinite(x.completeAt));
            const worst = (k: 'p50' | 'p90' | 'p99' | 'p999' | 'max' | 'mean'): number => Math.max(...readers.map((x) => x.lat[k]));
            runs.push({
              path, loss, size, rep, sent: w.sent,
              delivery: Math.min(...readers.map((x) => x.seen)) / Math.max(1, w.sent),
              lat: { ...readers[0]!.lat, p50: worst('p50'), p90: worst('p90'), p99: worst('p99'), p999: worst('p999'), max: worst('max'), mean: worst('mean'), n: Math.min(...readers.map((x) => x.lat.n)) },
              drainMs: done ? Math.max(0, ...readers.map((x) => x.completeAt - w.lastAt)) : NaN,
              counters, redisCpuMs, wallMs,
              othersPct: load.othersPct(counters.reduce((n, x) => n + x.cpuMs, 0) + redisCpuMs),
            });
            await sleep(200);
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

  const combos: Array<{ path: Path; loss: number }> = [
    ...LOSSES.map((loss) => ({ path: 'mccache' as Path, loss })),
    ...(server ? [{ path: 'redis-pubsub' as Path, loss: 0 }] : []),
  ];
  const cells = SIZES.flatMap((size) => combos.map(({ path, loss }) => {
    const rs = runs.filter((r) => r.size === size && r.path === path && r.loss === loss);
    const sum = (k: keyof Omit<Counters, 'cpuMs'>): number[] => rs.map((r) => r.counters.reduce((n, c) => n + c[k], 0));
    return {
      size, path, loss, name: path === 'mccache' ? `McCache, ${loss} % loss` : 'Redis pub/sub invalidation (TCP, no injected loss)', runs: rs.length,
      p50: spread(rs.map((r) => r.lat.p50)), p99: spread(rs.map((r) => r.lat.p99)), max: spread(rs.map((r) => r.lat.max)),
      delivery: spread(rs.map((r) => r.delivery)), drainMs: spread(rs.map((r) => r.drainMs)), incomplete: rs.filter((r) => !Number.isFinite(r.drainMs)).length,
      retransmits: spread(sum('retransmits')), naksSent: spread(sum('naksSent')), tantrumDropped: spread(sum('tantrumDropped')), datagramsOut: spread(sum('datagramsOut')),
      cpuWriter: spread(rs.map((r) => (r.counters[0]!.cpuMs * 100) / r.wallMs)),
      cpuReaders: spread(rs.map((r) => (r.counters.slice(1).reduce((n, c) => n + c.cpuMs, 0) * 50) / r.wallMs)),
      cpuRedis: spread(rs.map((r) => (r.redisCpuMs * 100) / r.wallMs)),
      othersPct: spread(rs.map((r) => r.othersPct)),
    };
  }));
  const u = (s: Spread): string => mmm(s, us);
  console.log('');
  console.log(`## put-to-visible on both readers (worst reader): min / **median** / max over ${REPS} repetition(s)`);
  console.log('| value | path | p50 | p99 | max | x 0 % p50 | x Redis p50 | delivery (worst) | drain after the last put | datagrams / dropped on purpose / retransmits / NAKs | CPU % writer / reader (redis-server) | rest of host % |');
  console.log('|---:|---|---|---|---|---:|---:|---:|---|---|---|---:|');
  for (const c of cells) {
    const zero = cells.find((x) => x.size === c.size && x.path === 'mccache' && x.loss === 0)!;
    const red = cells.find((x) => x.size === c.size && x.path === 'redis-pubsub');
    const drain = `${mmm(c.drainMs, (n) => `${fmt(n, 0)} ms`)}${c.incomplete ? ` (${c.incomplete} incomplete after ${DRAIN_DEADLINE_MS / 1000} s)` : ''}`;
    const net = c.path === 'mccache' ? [c.datagramsOut, c.tantrumDropped, c.retransmits, c.naksSent].map((s) => fmt(s.median)).join(' / ') : '-';
    console.log(`| ${c.size / 1024} KB | ${c.name} | ${u(c.p50)} | ${u(c.p99)} | ${u(c.max)} | ${fmt(c.p50.median / zero.p50.median, 2)} | ${red ? fmt(c.p50.median / red.p50.median, 2) : '-'} | ${fmt(c.delivery.min * 100, 2)} % | ${drain} | ${net} | ${fmt(c.cpuWriter.median)} / ${fmt(c.cpuReaders.median)}${c.path === 'redis-pubsub' ? ` (${fmt(c.cpuRedis.median)})` : ''} | ${fmt(c.othersPct.median)}${c.othersPct.max > DISTURBED_PCT ? ' !' : ''} |`);
  }
  console.log(`\nCounters are medians of the sums over the 3 processes per repetition. Reader CPU: mean of the two readers. "!": the rest of the host used more than ${DISTURBED_PCT} % of a core during some repetition.`);
  writeResults('large-values', {
    title: 'Large values under loss',
    redis: redis.info,
    params: { nodes: NODES, sizes: SIZES, losses: LOSSES, rateBytes: RATE_BYTES, seconds: SECONDS, drainDeadlineMs: DRAIN_DEADLINE_MS, reps: REPS },
    cells,
    runs,
    seconds: (Date.now() - started) / 1000,
  });
  console.log(`\n# ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

runBench(main, child);
