/**
 * Anti-entropy cost (runtime/cache/anti-entropy.ts): bytes and time to repair a member that
 * misses 1 %, 10 % and 100 % of N = 10,000 and 100,000 entries, and the idle cost of a coherent
 * cluster per pulse. Beside two baselines of the same run (STYLE.md rule 9; never asserts,
 * never gates CI): the bytes of the missing entries alone (what a perfect difference would
 * send, as sync_entries bodies) and of every entry (a full state transfer).
 *
 *   node bench/run.mjs anti-entropy    or   TS_NODE_TRANSPILE_ONLY=1 node -r ts-node/register bench/anti-entropy.bench.ts
 *   AE_SIZES=10000 AE_FRACTIONS=0.01,1 AE_REPS=1 ...   a subset
 *
 * Set-up: two whole McCacheNodes on the simulated network (conformance/cluster/sim-cluster.ts:
 * virtual time, no sockets, no faults), MTU 1472 (the UDP default; the sim tests use 548). The
 * divergence is made without replication: both caches are filled directly through the path
 * anti-entropy itself applies repairs with (Cache.applySync: same keys, versions and values on
 * both), node 1 skipping a random chosen fraction ("missing"), or, at 100 %, holding an older
 * version of every key ("stale": every bucket differs, yet node 1 is not empty, so it cannot
 * just ask for everything). Keys `key-<i>`, 40-byte UTF-8 values.
 *
 * Repair: node 0 pulses at t = 0, P, 2P, ...; node 1 at P/2, 3P/2, ... (P = 300 virtual ms;
 * pulses are not synchronised in a real cluster). Converged = node 1 holds all N entries, in
 * their newest versions (checked afterwards: equal Cache.checksum). The simulated network
 * delivers in under a millisecond and processing takes no virtual time, so the virtual time to
 * converge is the wait for a pulse plus round trips; the CPU ms is what repair costs. Bytes are every datagram any node transmitted (header
 * included), by op from the datagram header: sync_digest (root and full digests), sync_request,
 * sync_entries (and their retransmissions), and the core's own ack/nak/heartbeat, from the first
 * pulse until the repair is acknowledged (quiescence). Time: virtual
 * ms from the first pulse; real CPU ms of this process (both nodes, the simulated network,
 * encoding and decoding included) and wall ms.
 *
 * Idle: after convergence and quiescence, IDLE_PULSES pulse periods of the coherent pair:
 * anti-entropy bytes per pulse period (both nodes) and CPU per pulse period.
 *
 * Bounded: each case stops at CASE_VIRTUAL_MS virtual or CASE_REAL_MS real ms, the whole run
 * skips what is left after DEADLINE_MS.
 */
import { cpus, loadavg } from 'node:os';
import { encodedMessageSize } from '../runtime/codec/encode';
import { OP_CODES, type Message, type SyncEntry } from '../runtime/codec/packet';
import type { Cache } from '../runtime/cache/cache';
import { SimCluster } from '../conformance/cluster/sim-cluster';
import { seededRng } from '../runtime/transport/sim-network';

const SIZES = (process.env['AE_SIZES'] ?? '10000,100000').split(',').map(Number);
const FRACTIONS = (process.env['AE_FRACTIONS'] ?? '0.01,0.1,1').split(',').map(Number);
/** missing: node 1 lacks the entries; stale: it holds an older version of each (only at 100 %). */
const KINDS = (process.env['AE_KINDS'] ?? 'missing,stale').split(',') as Kind[];
type Kind = 'missing' | 'stale';
/** Repetitions per case (each a fresh cluster); 100,000 entries get fewer, see repsFor. */
const REPS = Number(process.env['AE_REPS'] ?? 3);
const PULSE_MS = 300;
const STEP_MS = 10;
/** Virtual ms per step while repairing: the resolution of the time to converge. */
const REPAIR_STEP_MS = 1;
const IDLE_PULSES = 10;
const VALUE_BYTES = 40;
const MTU = 1472;
const CASE_VIRTUAL_MS = 120_000;
const CASE_REAL_MS = 40_000;
const DEADLINE_MS = 110_000;
const CACHE = 'ae';
const CACHE_OPTIONS = { max: 1_000_000, maxSize: 2 ** 40, ttl: 0 };

const OP_BY_CODE = new Map<number, string>(Object.entries(OP_CODES).map(([k, v]) => [v, k]));
type Bytes = Record<'digest' | 'request' | 'entries' | 'retransmit' | 'core' | 'other', number>;
const zero = (): Bytes => ({ digest: 0, request: 0, entries: 0, retransmit: 0, core: 0, other: 0 });

function classify(bytes: Uint8Array): keyof Bytes {
  const op = OP_BY_CODE.get(bytes[3]!);
  if (op === 'sync_digest') return 'digest';
  if (op === 'sync_request') return 'request';
  if (op === 'sync_entries') return (bytes[4]! & 0x02) !== 0 ? 'retransmit' : 'entries';
  if (op === 'ack' || op === 'nak' || op === 'heartbeat' || op === 'join' || op === 'leave') return 'core';
  return 'other';
}

interface Result {
  n: number;
  fraction: number;
  kind: Kind;
  missing: number;
  converged: boolean;
  virtualMs: number;
  cpuMs: number;
  wallMs: number;
  bytes: Bytes;
  datagrams: number;
  /** sync_entries entries sent, both directions (AntiEntropy stats). */
  entriesSent: number;
  requests: number;
  digests: number;
  idleBytesPerPulse: number;
  idleCoreBytesPerPulse: number;
  idleCpuMsPerPulse: number;
  idealBytes: number;
  fullBytes: number;
  checksumsEqual: boolean;
}

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Encoded size of `entries` as sync_entries bodies of at most `max` bytes (chunked like anti-entropy). */
function entriesBytes(entries: SyncEntry[], max: number): number {
  let total = 0;
  let batch: SyncEntry[] = [];
  let size = 0;
  const flush = (): void => {
    if (batch.length === 0) return;
    total += encodedMessageSize({ op: 'sync_entries', cache: CACHE, replyTo: 1n, entries: batch } as Message);
    batch = [];
    size = 0;
  };
  for (const e of entries) {
    const n = 2 + e.key.length + 8 + 8 + 1 + 4 + 1 + 4 + e.value.length;
    if (size + n > max - 64) flush();
    batch.push(e);
    size += n;
  }
  flush();
  return total;
}

async function runCase(n: number, fraction: number, kind: Kind, seed: number): Promise<Result> {
  const c = await SimCluster.start({ seed, nodes: 2, core: { packetMtu: MTU } });
  const caches = [c.cache(0, CACHE, CACHE_OPTIONS), c.cache(1, CACHE, CACHE_OPTIONS)] as [Cache<unknown>, Cache<unknown>];
  const origin = c.nodes[0]!.nodeId;
  // Which entries node 1 misses: an exact count, spread at random over the keys.
  const rng = seededRng(seed * 7919 + n);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const missing = Math.round(n * fraction);
  const skip = new Set(order.slice(0, missing));
  const all: SyncEntry[] = [];
  const lacking: SyncEntry[] = [];
  const entry = (i: number, v: string): SyncEntry => ({ key: `key-${i}`, hlc: c.nodes[0]!.clock.now(), originId: origin, kind: 'value',
    ttl: 0, codec: 'utf8', value: Buffer.from(`${v} ${i} `.padEnd(VALUE_BYTES, '.')) });
  // Stale: both first get an older version of every key, then node 0 alone the newer one.
  if (kind === 'stale') for (let i = 0; i < n; i++) if (skip.has(i)) caches[1].applySync(entry(i, 'old'));
  for (let i = 0; i < n; i++) {
    const e = entry(i, 'value');
    all.push(e);
    caches[0].applySync(e);
    if (skip.has(i)) lacking.push(e);
    else caches[1].applySync(e);
  }
  const max = c.nodes[0]!.maxMessageSize;
  const idealBytes = entriesBytes(lacking, max);
  const fullBytes = entriesBytes(all, max);

  const bytes = zero();
  let datagrams = 0;
  c.net.onTransmit = (_node, b) => {
    bytes[classify(b)] += b.length;
    datagrams++;
  };
  const t0 = c.net.now;
  const next = [t0, t0 + PULSE_MS / 2];
  const pulseDue = (): void => {
    for (let i = 0; i < 2; i++) {
      if (c.net.now >= next[i]!) {
        c.nodes[i]!.pulse();
        next[i]! += PULSE_MS;
      }
    }
  };
  const cpu0 = cpuMs();
  const wall0 = performance.now();
  // Done: node 1 holds every entry (missing) or every entry's newest version (stale: counted by
  // the repairs applied, as its size does not change).
  const applied = (): number => c.nodes[1]!.antiEntropyStats.entriesApplied;
  const done = (): boolean => caches[1].size === n && (kind === 'missing' || applied() >= missing);
  let converged = false;
  while (c.net.now - t0 < CASE_VIRTUAL_MS && performance.now() - wall0 < CASE_REAL_MS) {
    pulseDue();
    c.run(REPAIR_STEP_MS);
    if (done()) {
      converged = true;
      break;
    }
  }
  const virtualMs = c.net.now - t0;
  const cpu = cpuMs() - cpu0;
  const wallMs = performance.now() - wall0;
  // The repair's traffic includes its acknowledgements: run (no pulses) until quiescent.
  if (converged) c.settle();
  const repairBytes = { ...bytes };
  const repairDatagrams = datagrams;
  const ae = c.nodes.map((x) => x.antiEntropyStats);

  // Idle: quiescent, coherent pair; IDLE_PULSES pulse periods.
  let idleBytesPerPulse = NaN;
  let idleCoreBytesPerPulse = NaN;
  let idleCpuMsPerPulse = NaN;
  let checksumsEqual = false;
  if (converged) {
    c.settle();
    // Let the exchanges still in flight finish (their answers to the last pulses).
    for (const t = c.net.now + 2 * PULSE_MS; c.net.now < t;) {
      pulseDue();
      c.run(STEP_MS);
    }
    Object.assign(bytes, zero());
    const i0 = c.net.now;
    const icpu = cpuMs();
    while (c.net.now - i0 < IDLE_PULSES * PULSE_MS) {
      pulseDue();
      c.run(STEP_MS);
    }
    idleCpuMsPerPulse = (cpuMs() - icpu) / IDLE_PULSES;
    idleBytesPerPulse = (bytes.digest + bytes.request + bytes.entries + bytes.retransmit) / IDLE_PULSES;
    idleCoreBytesPerPulse = bytes.core / IDLE_PULSES;
    checksumsEqual = caches[0].checksum() === caches[1].checksum();
  }
  c.net.onTransmit = () => {};
  return {
    n, fraction, kind, missing, converged, virtualMs, cpuMs: cpu, wallMs, bytes: repairBytes, datagrams: repairDatagrams,
    entriesSent: ae.reduce((a, s) => a + s.entriesSent, 0), requests: ae.reduce((a, s) => a + s.requestsSent, 0),
    digests: ae.reduce((a, s) => a + s.digestsSent, 0),
    idleBytesPerPulse, idleCoreBytesPerPulse, idleCpuMsPerPulse, idealBytes, fullBytes, checksumsEqual,
  };
}

const fmt = (x: number, digits = 0): string => (Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '-');
const kb = (b: number): string => fmt(b / 1024, 1);
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const repsFor = (n: number): number => (n >= 100_000 ? 1 : REPS);

async function main(): Promise<void> {
  const start = performance.now();
  console.log('# anti-entropy.bench: repair bytes and time on the simulated network (2 nodes, no faults)');
  console.log(`# Node ${process.version}, V8 ${process.versions.v8}, ${cpus().length} x ${cpus()[0]?.model ?? '?'}; load average at start ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`# MTU ${MTU}; pulse every ${PULSE_MS} virtual ms per node (staggered by half); ${VALUE_BYTES}-byte values; ` +
    `reps: ${REPS} (100,000 entries: 1); CPU = this process, both nodes and the network`);
  const rows: Result[][] = [];
  for (const n of SIZES) {
    for (const kind of KINDS) {
      for (const f of kind === 'stale' ? FRACTIONS.filter((x) => x === 1) : FRACTIONS) {
        const reps: Result[] = [];
        for (let r = 0; r < repsFor(n); r++) {
          if (performance.now() - start > DEADLINE_MS) break;
          reps.push(await runCase(n, f, kind, 1 + r));
        }
        if (reps.length === 0) {
          console.log(`# ${fmt(n)} entries, ${f * 100} % ${kind}: skipped (the ${DEADLINE_MS / 1000} s bound was reached)`);
          continue;
        }
        rows.push(reps);
        const m = reps[0]!;
        console.log(`#   ${fmt(n)} x ${f * 100} % ${kind}: ${m.converged ? 'converged' : 'NOT converged'} in ${fmt(m.virtualMs)} virtual ms, ` +
          `cpu ${fmt(median(reps.map((x) => x.cpuMs)))} ms, checksums ${m.checksumsEqual ? 'equal' : 'DIFFER'}`);
      }
    }
  }
  console.log('');
  console.log('## Repair: one member misses a fraction of N entries (bytes: all datagrams, headers included; KiB)');
  console.log('| N | divergence | converged (virtual ms, ±1) | CPU ms | wall ms | digests KiB | requests KiB | entries KiB (+retx) | core KiB | anti-entropy KiB | ideal KiB | x ideal | full state KiB | x full | entries sent | digest / request datagrams |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const reps of rows) {
    const m = reps[0]!;
    const ae = m.bytes.digest + m.bytes.request + m.bytes.entries + m.bytes.retransmit;
    console.log(`| ${fmt(m.n)} | ${fmt(m.missing)} ${m.kind} (${m.fraction * 100} %) | ${m.converged ? fmt(m.virtualMs) : `no (${fmt(m.virtualMs)})`} | ` +
      `${fmt(median(reps.map((x) => x.cpuMs)))} | ${fmt(median(reps.map((x) => x.wallMs)))} | ${kb(m.bytes.digest)} | ${kb(m.bytes.request)} | ` +
      `${kb(m.bytes.entries)} (+${kb(m.bytes.retransmit)}) | ${kb(m.bytes.core)} | **${kb(ae)}** | ${kb(m.idealBytes)} | ${fmt(ae / m.idealBytes, 1)} | ` +
      `${kb(m.fullBytes)} | ${fmt(ae / m.fullBytes, 2)} | ${fmt(m.entriesSent)} | ${fmt(m.digests)} / ${fmt(m.requests)} |`);
  }
  console.log('');
  console.log('## Idle: the coherent pair, per pulse period (both nodes pulse once)');
  console.log('| N | anti-entropy bytes | core bytes (heartbeats, acks) | CPU ms |');
  console.log('|---:|---:|---:|---:|');
  for (const n of SIZES) {
    const done = rows.flat().filter((r) => r.n === n && r.converged);
    if (done.length === 0) continue;
    console.log(`| ${fmt(n)} | ${fmt(median(done.map((r) => r.idleBytesPerPulse)))} | ${fmt(median(done.map((r) => r.idleCoreBytesPerPulse)))} | ` +
      `${fmt(median(done.map((r) => r.idleCpuMsPerPulse)), 1)} |`);
  }
  console.log('');
  console.log(`# CPU and wall: median of ${REPS} runs (100,000 entries: 1 run); bytes and virtual time are deterministic per seed. Total ${fmt((performance.now() - start) / 1000, 1)} s.`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
