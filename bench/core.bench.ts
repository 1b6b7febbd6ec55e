/**
 * Reliable multicast through UdpDriver + ReliableCore, beside the raw node:dgram ceiling
 * measured in the same run by the same processes with bare datagrams of the same size
 * (STYLE.md rule 9: a baseline in the same run; never asserts, never gates CI).
 *
 *   TS_NODE_TRANSPILE_ONLY=1 node -r ts-node/register bench/core.bench.ts
 *
 * Three processes on host-local multicast (127.0.0.1, TTL 0, a random 239.255.x.y group and
 * high ports: no packet leaves the machine). Every phase is bounded in count and time; the
 * whole run aborts at 58 s.
 *
 * Throughput (all three processes send, each receives the other two):
 *  - raw ceiling: bare datagrams have no flow control, so sending flat out mostly measures
 *    kernel drops (research/perf-baseline.md §3.2). The ceiling is the highest loss-free rate
 *    of a short paced sweep (each step RAW_STEP_SECONDS, stop at the first step that loses
 *    more than RAW_LOSS_LIMIT), as baseline §3.3 did.
 *  - core: each process sends flat out, pushed back by the core (`send` returns undefined,
 *    wait for 'writable'), up to BLAST_COUNT messages or BLAST_SECONDS; msgs/s = messages
 *    sent by all / time until the last one was delivered everywhere. Run with the core's
 *    defaults and with a small, fast-acknowledged window.
 * Latency: the sender embeds performance.timeOrigin + performance.now() (one clock for every
 * process on a host) and the receiver subtracts it on delivery; also paced at 1,000 msgs/s
 * from one sender to the two others, the baseline's latency set-up.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { cpus } from 'node:os';
import { encodeMessage } from '../runtime/codec/encode';
import { HEADER_SIZE, type Message } from '../runtime/codec/packet';
import type { ReliableCoreOptions } from '../runtime/core/reliable-core';
import { UdpDriver } from '../runtime/transport/udp-driver';

const NODES = 3;
const VALUE_SIZE = 64;
const BLAST_COUNT = 60_000;
const BLAST_SECONDS = 3;
const RAW_RATES = [10_000, 20_000, 30_000, 40_000, 50_000, 60_000]; // per sender, msgs/s
const RAW_STEP_SECONDS = 1;
const RAW_LOSS_LIMIT = 0.001;
const PACED_RATE = 1000;
const PACED_SECONDS = 3;
const PHASE_DEADLINE_MS = 12_000;
const SEND_BURST = 64;
const TUNED: Partial<ReliableCoreOptions> = { maxUnackedMessages: 512, ackInterval: 5 };

interface PhaseSpec {
  kind: 'raw' | 'core';
  /** msgs/s per sender; 0 = as fast as allowed. */
  rate: number;
  seconds: number;
  senders: number[];
  group: string;
  port: number;
  /** Wall-clock ms (timeOrigin + now) at which the senders start. */
  goAt: number;
  coreOptions: Partial<ReliableCoreOptions>;
}
interface PhaseReport {
  index: number;
  sent: number;
  received: number;
  lastAt: number;
  sendDoneAt: number;
  cpuMs: number;
  /** µs: p50, p99, p99.9, max. */
  latencies: number[];
  retransmits: number;
  sendErrors: number;
}

const wallNow = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// child: one node; runs the phases the parent asks for
// ---------------------------------------------------------------------------------------------

function putFor(index: number, n: number): Message {
  return { op: 'put', cache: 'bench', key: `${index}:${n}`, hlc: BigInt(n), ttl: 0, codec: 'bytes', value: new Uint8Array(VALUE_SIZE) };
}
/** Both paths send datagrams of this size: the core's one-fragment PUT. */
const DATAGRAM_SIZE = HEADER_SIZE + encodeMessage(putFor(0, 1)).length;

interface Endpoint {
  send(n: number): boolean; // false: pushed back, try later
  waitWritable(): Promise<void>;
  close(): Promise<void>;
  counters(): { retransmits: number; sendErrors: number };
}

async function rawEndpoint(index: number, spec: PhaseSpec, onArrival: (sentAt: number) => void): Promise<Endpoint> {
  const sock: Socket = createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((r) => sock.bind({ port: spec.port, address: spec.group }, () => r()));
  sock.setRecvBufferSize(4 << 20);
  sock.setMulticastInterface('127.0.0.1');
  sock.setMulticastTTL(0);
  sock.setMulticastLoopback(true);
  sock.addMembership(spec.group, '127.0.0.1');
  let sendErrors = 0;
  const onSent = (err: Error | null): void => { if (err) sendErrors++; };
  sock.on('message', (msg) => {
    if (msg[0] !== index) onArrival(msg.readDoubleBE(5)); // else our own, looped back
  });
  return {
    send(n) {
      if (sock.getSendQueueCount() >= 1000) return false;
      const b = Buffer.alloc(DATAGRAM_SIZE);
      b[0] = index;
      b.writeUInt32BE(n, 1);
      b.writeDoubleBE(wallNow(), 5);
      sock.send(b, spec.port, spec.group, onSent);
      return true;
    },
    waitWritable: () => new Promise((r) => setImmediate(r)),
    close: () => new Promise((r) => sock.close(() => r())),
    counters: () => ({ retransmits: 0, sendErrors }),
  };
}

async function coreEndpoint(index: number, spec: PhaseSpec, onArrival: (sentAt: number) => void): Promise<Endpoint> {
  const d = new UdpDriver({
    group: spec.group, port: spec.port, multicastHops: 0, env: {}, flushTimeout: 3000,
    coreOptions: { heartbeatInterval: 250, failureTimeout: 10_000, ...spec.coreOptions },
  });
  d.on('deliver', (e) => {
    if (e.message.op !== 'put') return;
    const v = e.message.value;
    onArrival(new DataView(v.buffer, v.byteOffset, v.byteLength).getFloat64(0));
  });
  let writable: (() => void) | undefined;
  d.on('writable', () => writable?.());
  await d.start();
  await new Promise<void>((r) => {
    const check = (): void => {
      if (d.core.members.length < NODES - 1) return;
      d.off('member-up', check);
      r();
    };
    d.on('member-up', check);
    check();
  });
  return {
    send(n) {
      const m = putFor(index, n) as Extract<Message, { op: 'put' }>;
      new DataView(m.value.buffer).setFloat64(0, wallNow());
      return d.send(m) !== undefined;
    },
    waitWritable: () => new Promise((r) => { writable = r; }),
    close: () => d.close(),
    counters: () => {
      const s = d.stats();
      return { retransmits: s.retransmits, sendErrors: s.sendErrors };
    },
  };
}

async function runPhase(index: number, spec: PhaseSpec, expected: Promise<Record<number, number>>, sendDone: (sent: number) => void): Promise<PhaseReport> {
  const lat = new Float64Array(BLAST_COUNT * NODES);
  let nLat = 0;
  let received = 0;
  let lastAt = 0;
  const onArrival = (sentAt: number): void => {
    lastAt = wallNow();
    received++;
    if (nLat < lat.length) lat[nLat++] = (lastAt - sentAt) * 1000;
  };
  const ep = spec.kind === 'raw' ? await rawEndpoint(index, spec, onArrival) : await coreEndpoint(index, spec, onArrival);

  await sleep(Math.max(0, spec.goAt - wallNow()));
  const cpu0 = process.cpuUsage();
  let sent = 0;
  let sendDoneAt = wallNow();
  if (spec.senders.includes(index)) {
    const start = wallNow();
    const stopAt = start + spec.seconds * 1000;
    const total = spec.rate === 0 ? BLAST_COUNT : Math.min(BLAST_COUNT, Math.round(spec.rate * spec.seconds));
    while (sent < total && wallNow() < stopAt + (spec.rate === 0 ? 0 : 1000)) {
      if (spec.rate === 0) {
        let burst = 0;
        while (burst < SEND_BURST && sent < total && ep.send(sent + 1)) { sent++; burst++; }
        if (burst < SEND_BURST && sent < total) await Promise.race([ep.waitWritable(), sleep(50)]);
        else await new Promise((r) => setImmediate(r));
      } else {
        // Each ~1 ms tick sends what is owed (research/perf-baseline.md §3.1).
        const owed = Math.min(total, Math.floor(((wallNow() - start) * spec.rate) / 1000));
        while (sent < owed && ep.send(sent + 1)) sent++;
        await sleep(1);
      }
    }
    sendDoneAt = wallNow();
  }
  sendDone(sent);
  const want = await expected;
  let total = 0;
  for (const [i, c] of Object.entries(want)) if (Number(i) !== index) total += c;
  const deadline = spec.goAt + PHASE_DEADLINE_MS;
  let seen = -1;
  let quietSince = wallNow();
  while (received < total && wallNow() < deadline) {
    await sleep(10);
    if (received !== seen) {
      seen = received;
      quietSince = wallNow();
    }
    if (spec.kind === 'raw' && wallNow() - quietSince > 300) break; // lost for good: nothing repairs raw
  }
  const cpu = process.cpuUsage(cpu0);
  const counters = ep.counters();
  await ep.close();
  const sorted = lat.subarray(0, nLat).sort();
  const q = (p: number): number => (nLat ? sorted[Math.min(nLat - 1, Math.floor(p * nLat))]! : NaN);
  return {
    index, sent, received, lastAt, sendDoneAt, cpuMs: (cpu.user + cpu.system) / 1000,
    latencies: [q(0.5), q(0.99), q(0.999), nLat ? sorted[nLat - 1]! : NaN], ...counters,
  };
}

function child(): void {
  const index = Number(process.env['BENCH_INDEX']);
  let resolveExpected: (v: Record<number, number>) => void = () => {};
  process.on('message', (m: { type: string; spec?: PhaseSpec; counts?: Record<number, number> }) => {
    if (m.type === 'phase') {
      const expected = new Promise<Record<number, number>>((r) => { resolveExpected = r; });
      runPhase(index, m.spec!, expected, (sent) => process.send!({ type: 'sent', index, sent }))
        .then((report) => process.send!({ type: 'report', report }))
        .catch((err: unknown) => {
          console.error(err);
          process.exit(1);
        });
    } else if (m.type === 'expected') {
      resolveExpected(m.counts!);
    } else if (m.type === 'exit') {
      process.disconnect();
    }
  });
  process.send!({ type: 'hello', index });
}

// ---------------------------------------------------------------------------------------------
// parent: starts the processes, runs the phases, prints the tables
// ---------------------------------------------------------------------------------------------

interface Summary {
  msgsPerSec: number;
  loss: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  cpuPct: number;
  retransmits: number;
  sendErrors: number;
}

function summarize(spec: PhaseSpec, reports: PhaseReport[]): Summary {
  const senders = reports.filter((x) => spec.senders.includes(x.index));
  const sentAll = senders.reduce((n, x) => n + x.sent, 0);
  const expected = reports.reduce((n, x) => n + senders.filter((s) => s.index !== x.index).reduce((m, s) => m + s.sent, 0), 0);
  const received = reports.reduce((n, x) => n + x.received, 0);
  // Flat out: until the last delivery. Paced: the offered rate the senders actually kept up.
  const end = spec.rate === 0 ? Math.max(...reports.map((x) => x.lastAt)) : Math.max(...senders.map((x) => x.sendDoneAt));
  const seconds = (end - spec.goAt) / 1000;
  const worst = (i: number): number => Math.max(...reports.filter((x) => x.received > 0).map((x) => x.latencies[i]!));
  return {
    msgsPerSec: sentAll / seconds, loss: expected ? 1 - received / expected : 0,
    p50: worst(0), p99: worst(1), p999: worst(2), max: worst(3),
    cpuPct: Math.max(...reports.map((x) => x.cpuMs)) / 10 / seconds,
    retransmits: reports.reduce((n, x) => n + x.retransmits, 0), sendErrors: reports.reduce((n, x) => n + x.sendErrors, 0),
  };
}

async function parent(): Promise<void> {
  const started = Date.now();
  const cpu = cpus();
  const r = (n: number): number => Math.floor(Math.random() * n);
  const group = `239.255.${1 + r(254)}.${1 + r(254)}`;
  const basePort = 20_000 + r(40_000);
  console.log(`# core.bench: UdpDriver + ReliableCore vs raw node:dgram, ${NODES} processes, host-local multicast`);
  console.log(`# Node ${process.version}, V8 ${process.versions.v8}, ${cpu.length} x ${cpu[0]?.model ?? 'unknown CPU'}`);
  console.log(`# group ${group}, ports ${basePort}+, TTL 0 on 127.0.0.1; datagram ${DATAGRAM_SIZE} B (one PUT, ${VALUE_SIZE} B value)`);

  const kids: ChildProcess[] = [];
  const inbox: Array<Record<string, unknown>> = [];
  let wake: () => void = () => {};
  const next = async (type: string, n: number): Promise<Array<Record<string, unknown>>> => {
    for (;;) {
      if (inbox.some((m) => m['type'] === 'died')) throw new Error('a bench process died');
      const got = inbox.filter((m) => m['type'] === type);
      if (got.length >= n) {
        for (const g of got) inbox.splice(inbox.indexOf(g), 1);
        return got;
      }
      await new Promise<void>((res) => { wake = res; });
    }
  };
  for (let i = 0; i < NODES; i++) {
    const k = fork(__filename, ['child'], { env: { ...process.env, BENCH_INDEX: String(i) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    k.on('message', (m: Record<string, unknown>) => { inbox.push(m); wake(); });
    k.on('exit', (code) => { if (code) { inbox.push({ type: 'died', code }); wake(); } });
    kids.push(k);
  }
  const killer = setTimeout(() => {
    for (const k of kids) k.kill('SIGKILL');
    console.log('# aborted: the 58 s bound was reached');
    process.exit(0);
  }, 58_000);
  killer.unref();
  await next('hello', NODES);

  let port = basePort;
  const phase = async (p: Omit<PhaseSpec, 'group' | 'port' | 'goAt' | 'coreOptions'> & { coreOptions?: Partial<ReliableCoreOptions> }): Promise<Summary> => {
    // The core needs a moment to see every member before sending (heartbeat 250 ms).
    const spec: PhaseSpec = { coreOptions: {}, ...p, group, port: ++port, goAt: wallNow() + (p.kind === 'core' ? 1200 : 250) };
    for (const k of kids) k.send({ type: 'phase', spec });
    const sent = await next('sent', NODES);
    const counts = Object.fromEntries(sent.map((m) => [m['index'], m['sent']]));
    for (const k of kids) k.send({ type: 'expected', counts });
    const reports = (await next('report', NODES)).map((m) => m['report'] as PhaseReport).sort((a, b) => a.index - b.index);
    return summarize(spec, reports);
  };
  const all = [...Array(NODES).keys()];

  // Raw ceiling: paced sweep, highest loss-free step.
  const sweep: Array<[number, Summary]> = [];
  for (const rate of RAW_RATES) {
    const s = await phase({ kind: 'raw', rate, seconds: RAW_STEP_SECONDS, senders: all });
    sweep.push([rate, s]);
    if (s.loss > RAW_LOSS_LIMIT) break;
  }
  const lossFree = sweep.filter(([, s]) => s.loss <= RAW_LOSS_LIMIT);
  const ceiling = lossFree.length ? lossFree[lossFree.length - 1]! : sweep[0]!;
  const coreDefault = await phase({ kind: 'core', rate: 0, seconds: BLAST_SECONDS, senders: all });
  const coreTuned = await phase({ kind: 'core', rate: 0, seconds: BLAST_SECONDS, senders: all, coreOptions: TUNED });
  const pacedRaw = await phase({ kind: 'raw', rate: PACED_RATE, seconds: PACED_SECONDS, senders: [0] });
  const pacedCore = await phase({ kind: 'core', rate: PACED_RATE, seconds: PACED_SECONDS, senders: [0] });
  for (const k of kids) k.send({ type: 'exit' });

  const f = (n: number, d = 0): string => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : '-');
  const lat = (s: Summary): string => `${f(s.p50)} / ${f(s.p99)} / ${f(s.p999)} / ${f(s.max)}`;
  console.log('');
  console.log(`## raw node:dgram sweep: all ${NODES} send, ${RAW_STEP_SECONDS} s per step (cluster msgs/s = sum over senders)`);
  console.log('| offered per sender | cluster msgs/s | loss | latency p50 / p99 / p99.9 / max (µs) | max CPU per process |');
  console.log('|---:|---:|---:|---|---:|');
  for (const [rate, s] of sweep) console.log(`| ${f(rate)} | ${f(s.msgsPerSec)} | ${f(s.loss * 100, 2)} % | ${lat(s)} | ${f(s.cpuPct)} % |`);
  console.log('');
  console.log(`## throughput: all ${NODES} send; core flat out with backpressure (<= ${f(BLAST_COUNT)} msgs or ${BLAST_SECONDS} s each)`);
  console.log('| path | cluster msgs/s | ratio to raw ceiling | loss | latency p50 / p99 / p99.9 / max (µs) | max CPU per process | retransmits |');
  console.log('|---|---:|---:|---:|---|---:|---:|');
  const c = ceiling[1];
  console.log(`| raw ceiling (highest loss-free step, ${f(ceiling[0])}/s per sender) | ${f(c.msgsPerSec)} | 1.00 | ${f(c.loss * 100, 2)} % | ${lat(c)} | ${f(c.cpuPct)} % | - |`);
  for (const [name, s] of [['core, default options', coreDefault], [`core, ${JSON.stringify(TUNED).replace(/"/g, '')}`, coreTuned]] as const) {
    console.log(`| ${name} | ${f(s.msgsPerSec)} | ${f(s.msgsPerSec / c.msgsPerSec, 2)} | ${f(s.loss * 100, 2)} % | ${lat(s)} | ${f(s.cpuPct)} % | ${f(s.retransmits)} |`);
  }
  console.log('');
  console.log(`## latency: 1 sender at ${f(PACED_RATE)} msgs/s for ${PACED_SECONDS} s to ${NODES - 1} receivers (worst receiver, µs)`);
  console.log('| path | p50 | p99 | p99.9 | max | loss |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const [name, s] of [['raw node:dgram', pacedRaw], ['core, default options', pacedCore]] as const) {
    console.log(`| ${name} | ${f(s.p50)} | ${f(s.p99)} | ${f(s.p999)} | ${f(s.max)} | ${f(s.loss * 100, 2)} % |`);
  }
  console.log(`| ratio core / raw | ${f(pacedCore.p50 / pacedRaw.p50, 2)} | ${f(pacedCore.p99 / pacedRaw.p99, 2)} | ${f(pacedCore.p999 / pacedRaw.p999, 2)} | | |`);
  console.log(`\n# ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

if (process.argv[2] === 'child') child();
else parent().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
