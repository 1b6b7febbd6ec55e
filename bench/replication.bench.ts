/**
 * Replication through the public API: put-to-visible-on-peer latency at paced write rates, the
 * largest sustained write rate, and the drain time after the load stops; beside raw node:dgram
 * datagrams sent by the same processes at the same rates in the same run (STYLE.md rule 9:
 * a baseline in the same run, ratios; never asserts, never gates CI).
 *
 *   node bench/run.mjs replication     or   TS_NODE_TRANSPILE_ONLY=1 node -r ts-node/register bench/replication.bench.ts
 *
 * Three processes, each one McCache node from `getCache` (settings from MCCACHE_* variables:
 * MCCACHE_MULTICAST_HOPS=0, i.e. interface 127.0.0.1, TTL 0, and a random 239.255.x.y group
 * and high port, so no packet leaves the machine; every other setting at its default).
 * Process 0 writes; processes 1 and 2 read. Each phase uses a fresh cache and unique keys (one
 * per put), so nothing is coalesced and every put must arrive.
 *
 *  - A put is `cache.set(String(seq), sentAt)` where sentAt = performance.timeOrigin +
 *    performance.now() (one clock for every process on a host). A reader timestamps the
 *    cache's 'remote-set' event for that key the same way: latency = visible - sentAt. So it
 *    includes the writer's set() (encode, hand-off to the node) and the reader's apply.
 *  - Paced: every ~1 ms timer tick puts what is owed (research/perf-baseline.md §3.1), so 20k/s
 *    arrives as bursts of ~20. A second baseline, "raw + Map.set", is the same datagrams stored
 *    by each reader in a Map (String(seq) -> sentAt): the least an in-process replica must do,
 *    and the heap growth (garbage collection) that comes with it.
 *    The raw baseline sends 64-byte datagrams (seq, sentAt) the same
 *    way on the same group, port + 1, to the same two readers, with the same 4 MiB receive
 *    buffer the McCache driver asks for.
 *  - Delivery: distinct keys seen by the worse reader / puts. Drain: from the writer's last
 *    put until both readers hold every put (McCache waits up to DRAIN_DEADLINE_MS; the raw path
 *    has no repair and stops after 300 ms of silence).
 *  - Sustained: a paced sweep above the latency rates; a step passes when the writer kept
 *    >= 95 % of the rate, delivery is 100 % and the drain is under SUSTAINED_DRAIN_MS (no
 *    backlog left when the load stops: a queue that grows during the step shows here). The
 *    sweep stops at the first step that fails; the latency rates count as steps too. Then one flat-out phase: the writer puts in bursts of FLAT_BURST
 *    per event-loop turn, up to FLAT_MAX puts or FLAT_SECONDS.
 *  - CPU: % of one core per process from process.cpuUsage over the phase (go .. report); in
 *    brackets, what the rest of the host used meanwhile (/proc/stat busy time minus ours): the
 *    host is shared, and a busy neighbour shows up as latency here.
 * Everything is bounded: phases in count and time, the whole run aborts at DEADLINE_MS.
 */
import type { Socket } from 'node:dgram';
import { loadavg } from 'node:os';
import { getCache, getLocalMetrics, type Cache } from '../runtime/index';
import { Arrivals, benchIndex, joinCluster, sayReady, serveParent } from './fixtures/child';
import { abortAfter, Cluster, fmt, hostBusyMs, hostLocalEnv, pace, quantiles, randomGroup, rawSocket, runBench, sleep, toParent, wallNow, type Quantiles } from './fixtures/cluster';

const NODES = 3;
const LAT_RATES = [1_000, 5_000, 20_000];
const LAT_SECONDS = 3;
const SWEEP_RATES = [30_000, 50_000, 80_000, 120_000, 160_000];
const SWEEP_SECONDS = 2;
const FLAT_MAX = 150_000;
const FLAT_SECONDS = 3;
const FLAT_BURST = 256;
const DRAIN_DEADLINE_MS = 4_000;
const SUSTAINED_DRAIN_MS = 100;
const RAW_QUIET_MS = 300;
const RAW_SIZE = 64;
const DEADLINE_MS = 120_000;
/** Phases are skipped once less than this is left of DEADLINE_MS. */
const RESERVE_MS = 12_000;
/** A phase during which the rest of the host used more than this % of a core is marked "!". */
const DISTURBED_PCT = 20;
const CACHE_OPTIONS = { max: 1_000_000, maxSize: 1 << 30, ttl: 0, callbackWindow: 0 };

interface PhaseSpec {
  id: number;
  /** rawstore: raw datagrams that each reader also stores in a Map (what any in-process cache must at least do). */
  kind: 'raw' | 'rawstore' | 'mccache';
  /** puts/s; 0 = flat out */
  rate: number;
  seconds: number;
  maxPuts: number;
}
interface WriterReport {
  sent: number;
  firstAt: number;
  /** Wall ms right after the last put call. */
  lastAt: number;
  /** Mean µs inside the put calls (set() or socket.send()). */
  putUs: number;
}
interface ReaderReport {
  seen: number;
  lat: Quantiles;
  /** Wall ms at which the last missing put arrived (NaN: never complete). */
  completeAt: number;
}
interface Counters {
  cpuMs: number;
  ms: number;
  retransmits: number;
  naksSent: number;
  sendErrors: number;
  gaps: number;
}

// ---------------------------------------------------------------------------------------------
// child: one node; the writer (index 0) or a reader
// ---------------------------------------------------------------------------------------------

function transportCounters(): Omit<Counters, 'cpuMs' | 'ms'> {
  const t = (getLocalMetrics()?.transport ?? {}) as Partial<Record<'retransmits' | 'naksSent' | 'sendErrors' | 'gaps', number>>;
  return { retransmits: t.retransmits ?? 0, naksSent: t.naksSent ?? 0, sendErrors: t.sendErrors ?? 0, gaps: t.gaps ?? 0 };
}

async function child(): Promise<void> {
  const index = benchIndex();
  const rawPort = Number(process.env['BENCH_RAW_PORT']);
  const rawGroup = process.env['BENCH_RAW_GROUP']!;
  const raw: Socket = await rawSocket(rawGroup, rawPort);
  raw.unref();
  await joinCluster(CACHE_OPTIONS, NODES - 1, 10_000);
  sayReady();

  let spec: PhaseSpec | undefined;
  let cache: Cache<number> | undefined;
  const got = new Arrivals();
  let store = new Map<string, number>();
  let cpu0 = process.cpuUsage();
  let t0 = wallNow();
  let c0 = transportCounters();

  const onRemoteSet = (info: Record<string, unknown>): void => {
    const key = info['key'] as string;
    const v = cache!.peek(key);
    if (typeof v === 'number') got.arrive(Number(key), v);
  };
  raw.on('message', (b) => {
    if ((spec?.kind === 'raw' || spec?.kind === 'rawstore') && b.length >= 13 && b[0] === (spec.id & 0xff)) {
      const seq = b.readUInt32BE(1);
      const sentAt = b.readDoubleBE(5);
      if (spec.kind === 'rawstore') store.set(String(seq), sentAt);
      got.arrive(seq, sentAt);
    }
  });

  const counters = (): Counters => {
    const c = process.cpuUsage(cpu0);
    const t = transportCounters();
    return {
      cpuMs: (c.user + c.system) / 1000, ms: wallNow() - t0,
      retransmits: t.retransmits - c0.retransmits, naksSent: t.naksSent - c0.naksSent,
      sendErrors: t.sendErrors - c0.sendErrors, gaps: t.gaps - c0.gaps,
    };
  };

  const write = async (s: PhaseSpec): Promise<WriterReport> => {
    const put = s.kind !== 'mccache'
      ? (seq: number): void => {
        // A fresh buffer each time: dgram may send after send() returns, from this memory.
        const buf = Buffer.alloc(RAW_SIZE);
        buf[0] = s.id & 0xff;
        buf.writeUInt32BE(seq, 1);
        buf.writeDoubleBE(wallNow(), 5);
        raw.send(buf, rawPort, rawGroup);
      }
      : (seq: number): void => {
        cache!.set(String(seq), wallNow());
      };
    const total = totalPuts(s);
    const p = await pace({ rate: s.rate, total, forMs: s.seconds * 1000, burst: FLAT_BURST, put });
    return { sent: p.sent, firstAt: p.firstAt, lastAt: p.lastAt, putUs: p.sent ? (p.inPutMs * 1000) / p.sent : NaN };
  };

  serveParent({
    phase: async (m) => {
      spec = m['spec'] as PhaseSpec;
      if (cache) cache.off('remote-set', onRemoteSet as (info: Record<string, unknown>) => void);
      cache = spec.kind === 'mccache' ? getCache<number>(`phase-${spec.id}`, CACHE_OPTIONS) : undefined;
      if (cache && index !== 0) cache.on('remote-set', onRemoteSet);
      got.reset(index === 0 ? 0 : totalPuts(spec));
      store = new Map();
      await sleep(50); // let the peers' caches exist before anything arrives
      toParent({ type: 'armed', index });
    },
    go: async () => {
      cpu0 = process.cpuUsage();
      t0 = wallNow();
      c0 = transportCounters();
      if (index === 0) toParent({ type: 'written', index, report: await write(spec!) });
    },
    expect: async (m) => {
      // Nothing repairs raw loss: a raw phase stops waiting after RAW_QUIET_MS of silence.
      const all = await got.awaitAll(m['sent'] as number, (m['lastAt'] as number) + DRAIN_DEADLINE_MS, spec!.kind === 'mccache' ? Infinity : RAW_QUIET_MS);
      toParent({ type: 'read', index, report: { ...all, lat: quantiles(got.lat, got.nLat) } satisfies ReaderReport });
    },
    counters: () => {
      toParent({ type: 'counters', index, counters: counters() });
      // The phase's entries are not needed any more: a replicated clear drops them on every
      // member, so later phases do not pay for a growing heap.
      if (index === 0 && cache) cache.clear();
    },
  }, () => raw.close());
}

/** Puts in a phase: rate x seconds, at most maxPuts (flat out: maxPuts). */
function totalPuts(s: PhaseSpec): number {
  return s.rate === 0 ? s.maxPuts : Math.min(s.maxPuts, Math.round(s.rate * s.seconds));
}

// ---------------------------------------------------------------------------------------------
// parent
// ---------------------------------------------------------------------------------------------

interface Result {
  spec: PhaseSpec;
  w: WriterReport;
  readers: ReaderReport[];
  counters: Counters[];
  /** % of one core the rest of the host used during the phase (busy - our processes). */
  othersPct: number;
}

/** Worst reader's quantiles and delivery; drain over both readers. */
function summary(r: Result): { delivery: number; lat: Quantiles; drainMs: number; achieved: number } {
  const worst = (k: keyof Quantiles): number => Math.max(...r.readers.map((x) => x.lat[k]));
  const delivery = r.w.sent ? Math.min(...r.readers.map((x) => x.seen)) / r.w.sent : NaN;
  const done = r.readers.every((x) => Number.isFinite(x.completeAt));
  return {
    delivery,
    lat: { n: Math.min(...r.readers.map((x) => x.lat.n)), p50: worst('p50'), p99: worst('p99'), p999: worst('p999'), max: worst('max') },
    drainMs: done ? Math.max(0, ...r.readers.map((x) => x.completeAt - r.w.lastAt)) : NaN,
    achieved: (r.w.sent * 1000) / Math.max(1, r.w.lastAt - r.w.firstAt),
  };
}

function sustained(rate: number, s: ReturnType<typeof summary>): boolean {
  return s.achieved >= 0.95 * rate && s.delivery === 1 && s.drainMs < SUSTAINED_DRAIN_MS;
}

async function main(): Promise<void> {
  const started = Date.now();
  const g = randomGroup();
  const rawGroup = g.ip; // same group, another port
  const rawPort = g.port + 1;
  console.log(`# replication.bench: put-to-visible latency, sustained rate and drain; ${NODES} processes (1 writer, ${NODES - 1} readers), public API`);
  console.log(`# Node ${process.version}, V8 ${process.versions.v8}; load average at start ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`# McCache group ${g.ip}:${g.port}, raw baseline ${rawGroup}:${rawPort}; MCCACHE_MULTICAST_HOPS=0 (127.0.0.1, TTL 0); other settings default`);

  const cluster = new Cluster(__filename, NODES, { ...hostLocalEnv(g), BENCH_RAW_GROUP: rawGroup, BENCH_RAW_PORT: String(rawPort) });
  abortAfter(DEADLINE_MS, () => cluster.kids);

  const ready = await cluster.next('ready', NODES, 15_000);
  const members = ready.map((m) => m['members'] as number);
  console.log(`# members seen by each process at start: ${members.join(', ')} (of ${NODES - 1}); ready after ${((Date.now() - started) / 1000).toFixed(1)} s`);

  let id = 0;
  const left = (): number => DEADLINE_MS - (Date.now() - started);
  const phase = async (kind: PhaseSpec['kind'], rate: number, seconds: number, maxPuts = Math.max(1, Math.round(rate * seconds))): Promise<Result> => {
    const spec: PhaseSpec = { id: ++id, kind, rate, seconds, maxPuts };
    await cluster.arm(spec);
    const busy0 = hostBusyMs();
    const cpu0 = process.cpuUsage();
    const at0 = Date.now();
    const { w, readers } = await cluster.writeThenRead<WriterReport, ReaderReport>((seconds + 5) * 1000, DRAIN_DEADLINE_MS + 5000);
    const counters = await cluster.ask<Counters>('counters', 30_000, 'counters');
    const own = process.cpuUsage(cpu0);
    const ours = counters.reduce((n, c) => n + c.cpuMs, 0) + (own.user + own.system) / 1000;
    const othersPct = Math.max(0, ((hostBusyMs() - busy0 - ours) * 100) / Math.max(1, Date.now() - at0));
    await sleep(150); // let stragglers (ACKs, heartbeats) settle before the next phase
    return { spec, w, readers, counters, othersPct };
  };

  // 1. Latency at paced rates, raw then McCache at each rate.
  const latency: Array<{ rate: number; raw: Result; rawstore: Result; mc: Result }> = [];
  for (const rate of LAT_RATES) {
    if (left() < RESERVE_MS + 3 * (LAT_SECONDS * 1000 + 1500)) break;
    const raw = await phase('raw', rate, LAT_SECONDS);
    const rawstore = await phase('rawstore', rate, LAT_SECONDS);
    const mc = await phase('mccache', rate, LAT_SECONDS);
    latency.push({ rate, raw, rawstore, mc });
  }
  // 2. Sustained: paced sweep, raw then McCache at each step; stop at McCache's first failure.
  const sweep: Array<{ rate: number; raw: Result; mc: Result; pass: boolean }> = [];
  for (const rate of SWEEP_RATES) {
    if (left() < RESERVE_MS + 2 * (SWEEP_SECONDS * 1000 + 1500)) break;
    const raw = await phase('raw', rate, SWEEP_SECONDS);
    const mc = await phase('mccache', rate, SWEEP_SECONDS);
    const s = summary(mc);
    const pass = sustained(rate, s);
    sweep.push({ rate, raw, mc, pass });
    if (!pass) break;
  }
  // 3. Flat out.
  let flat: Result | undefined;
  if (left() > FLAT_SECONDS * 1000 + DRAIN_DEADLINE_MS + 3000) flat = await phase('mccache', 0, FLAT_SECONDS, FLAT_MAX);
  await cluster.close();

  // Tables
  const us = (n: number): string => fmt(n, 0);
  const ms = (n: number): string => (Number.isFinite(n) ? `${fmt(n, n < 10 ? 1 : 0)} ms` : 'incomplete');
  const pct = (n: number): string => `${fmt(n * 100, n === 1 ? 0 : 3)} %`;
  const cpu = (r: Result): string => `${r.counters.map((c) => fmt((c.cpuMs * 100) / Math.max(1, c.ms))).join(' / ')} (${fmt(r.othersPct)}${r.othersPct > DISTURBED_PCT ? ' !' : ''})`;
  const lat = (q: Quantiles): string => `${us(q.p50)} / ${us(q.p99)} / ${us(q.p999)} / ${us(q.max)}`;

  console.log('');
  console.log(`## put-to-visible latency, µs (worst reader): paced, ${LAT_SECONDS} s per rate; raw = 64-byte datagrams, same processes, same pacing`);
  console.log('| puts/s | path | achieved/s | delivery | p50 / p99 / p99.9 / max | drain | put call µs | CPU % writer / readers (rest of host) | retransmits / NAKs |');
  console.log('|---:|---|---:|---:|---|---:|---:|---|---|');
  for (const { rate, raw, rawstore, mc } of latency) {
    for (const [name, r] of [['raw node:dgram', raw], ['raw + Map.set', rawstore], ['McCache', mc]] as const) {
      const s = summary(r);
      const rn = r.spec.kind !== 'mccache' ? '-' : `${fmt(r.counters[0]!.retransmits)} / ${fmt(r.counters.slice(1).reduce((n, c) => n + c.naksSent, 0))}`;
      console.log(`| ${fmt(rate)} | ${name} | ${fmt(s.achieved)} | ${pct(s.delivery)} | ${lat(s.lat)} | ${ms(s.drainMs)} | ${fmt(r.w.putUs, 2)} | ${cpu(r)} | ${rn} |`);
    }
  }
  console.log('');
  console.log('## ratio McCache / raw and McCache / raw + Map.set (same rate, same run)');
  console.log('| puts/s | p50 | p99 | p99.9 | max | p50 vs Map | p99 vs Map | p99.9 vs Map |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const { rate, raw, rawstore, mc } of latency) {
    const a = summary(mc).lat;
    const b = summary(raw).lat;
    const m = summary(rawstore).lat;
    console.log(`| ${fmt(rate)} | ${fmt(a.p50 / b.p50, 1)} | ${fmt(a.p99 / b.p99, 1)} | ${fmt(a.p999 / b.p999, 1)} | ${fmt(a.max / b.max, 1)} | ${fmt(a.p50 / m.p50, 1)} | ${fmt(a.p99 / m.p99, 1)} | ${fmt(a.p999 / m.p999, 1)} |`);
  }

  console.log('');
  console.log(`## sustained: paced sweep, ${SWEEP_SECONDS} s per step; pass = writer kept >= 95 % of the rate, 100 % delivery, drain < ${SUSTAINED_DRAIN_MS} ms`);
  console.log('| puts/s | raw: achieved / delivery / p99 µs | McCache: achieved/s | delivery | p50 / p99 / p99.9 / max µs | drain | CPU % writer / readers (rest of host) | retransmits / NAKs | pass |');
  console.log('|---:|---|---:|---:|---|---:|---|---|---|');
  for (const { rate, raw, mc, pass } of sweep) {
    const r = summary(raw);
    const s = summary(mc);
    console.log(`| ${fmt(rate)} | ${fmt(r.achieved)} / ${pct(r.delivery)} / ${us(r.lat.p99)} | ${fmt(s.achieved)} | ${pct(s.delivery)} | ${lat(s.lat)} | ${ms(s.drainMs)} | ${cpu(mc)} | ${fmt(mc.counters[0]!.retransmits)} / ${fmt(mc.counters.slice(1).reduce((n, c) => n + c.naksSent, 0))} | ${pass ? 'yes' : 'no'} |`);
  }
  const passed = [...latency.filter((l) => sustained(l.rate, summary(l.mc))).map((l) => l.rate),
    ...sweep.filter((x) => x.pass).map((x) => x.rate)];
  console.log(`\nLargest sustained paced rate (all criteria met): ${passed.length ? `${fmt(Math.max(...passed))} puts/s` : 'none'}${sweep.length && sweep.every((x) => x.pass) ? ' (every step passed: the sweep ended, not the library)' : ''}`);

  if (flat) {
    const s = summary(flat);
    const deliveredPerSec = Number.isFinite(s.drainMs) ? (flat.w.sent * 1000) / (flat.w.lastAt + s.drainMs - flat.w.firstAt) : NaN;
    console.log('');
    console.log(`## flat out: bursts of ${FLAT_BURST} puts per event-loop turn, <= ${fmt(FLAT_MAX)} puts or ${FLAT_SECONDS} s`);
    console.log('| puts | put rate/s | delivered rate/s (to both readers) | delivery | p50 / p99 / p99.9 / max µs | drain after the last put | put call µs | CPU % writer / readers (rest of host) | retransmits / NAKs / send errors |');
    console.log('|---:|---:|---:|---:|---|---:|---:|---|---|');
    console.log(`| ${fmt(flat.w.sent)} | ${fmt(s.achieved)} | ${fmt(deliveredPerSec)} | ${pct(s.delivery)} | ${lat(s.lat)} | ${ms(s.drainMs)} | ${fmt(flat.w.putUs, 2)} | ${cpu(flat)} | ${fmt(flat.counters[0]!.retransmits)} / ${fmt(flat.counters.slice(1).reduce((n, c) => n + c.naksSent, 0))} / ${fmt(flat.counters[0]!.sendErrors)} |`);
  }
  const at20k = latency.find((l) => l.rate === 20_000);
  if (at20k) {
    const s = summary(at20k.mc);
    console.log(`\nIssue targets: p99 at 20,000 puts/s ${fmt(s.lat.p99 / 1000, 2)} ms (target < 1 ms) with ${pct(s.delivery)} delivery;`
      + ` drain after the flat-out load ${flat ? ms(summary(flat).drainMs) : 'not run'} (target < 1 s).`);
  }
  console.log(`\n"!" marks a phase during which the rest of the host used more than ${DISTURBED_PCT} % of a core (it competes with these 3 processes for the CPUs): its latencies are not clean.`);
  console.log(`\n# ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

runBench(main, child);
