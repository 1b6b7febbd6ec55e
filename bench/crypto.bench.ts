/**
 * What encryption costs (runtime/codec/crypto.ts): messages per second from one ReliableCore's
 * `send` through the receiving core's `handleDatagram` to its 'deliver' event, with the ACKs
 * flowing back, plaintext and sealed in the same run (STYLE.md rule 9: a baseline in the same
 * run; never asserts, never gates CI). No sockets: the two cores are pumped directly on a
 * virtual clock, so this is the CPU cost of the protocol path, the upper bound a socket sees.
 * Also seal and open alone per datagram, beside a plain copy of the same bytes.
 *
 *   node bench/run.mjs crypto      or   TS_NODE_TRANSPILE_ONLY=1 node -r ts-node/register bench/crypto.bench.ts
 *
 * Bounded: each cell stops at its message count or BENCH_MS (default 1500) ms, whichever first;
 * the rounds alternate plaintext and sealed and the best round is kept.
 */
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { Sealer } from '../runtime/codec/crypto';
import { encodeMessage } from '../runtime/codec/encode';
import { fragmentMessage } from '../runtime/codec/fragment';
import { HEADER_SIZE, type Message } from '../runtime/codec/packet';
import { ReliableCore } from '../runtime/core/reliable-core';

const BENCH_MS = Number(process.env['BENCH_MS'] ?? 1500);
const ROUNDS = 3;
const MTU = 1472;
const KEY = randomBytes(32);
let sink = 0;

function put(n: number, size: number): Message {
  return { op: 'put', cache: 'bench', key: `k${n}`, hlc: BigInt(n), ttl: 0, codec: 'bytes', value: new Uint8Array(size).fill(n & 0xff) };
}

/** Messages/s delivered from a to b, at most `count` messages or BENCH_MS of wall time. */
function throughput(sealed: boolean, size: number, count: number): { rate: number; delivered: number; datagrams: number } {
  let now = 0;
  const opts = (id: bigint) => ({ nodeId: id, rng: Math.random, packetMtu: MTU, ...(sealed && { sealer: new Sealer({ id: 1, key: KEY }) }) });
  const a = new ReliableCore(opts(1n));
  const b = new ReliableCore(opts(2n));
  let delivered = 0;
  let datagrams = 0;
  const pump = (): void => {
    for (;;) {
      let moved = false;
      for (let t = a.pollTransmit(); t; t = a.pollTransmit()) { b.handleDatagram(now, t.bytes); moved = true; datagrams++; }
      for (let t = b.pollTransmit(); t; t = b.pollTransmit()) { a.handleDatagram(now, t.bytes); moved = true; }
      for (let e = b.pollEvent(); e; e = b.pollEvent()) if (e.type === 'deliver') delivered++;
      while (a.pollEvent()) { /* writable, member-up */ }
      if (!moved) return;
    }
  };
  const tick = (dt: number): void => {
    now += dt;
    for (const c of [a, b]) if ((c.pollTimeout() ?? Infinity) <= now) c.handleTimeout(now);
    pump();
  };
  a.start(now);
  b.start(now);
  pump();
  while (a.members.length === 0 || b.members.length === 0) tick(1);
  const messages = Array.from({ length: Math.min(count, 4096) }, (_, i) => put(i, size));
  const start = performance.now();
  const stopAt = start + BENCH_MS;
  let sent = 0;
  while (sent < count && performance.now() < stopAt) {
    const seq = a.send(now, messages[sent % messages.length]!);
    if (seq === undefined) tick(1); // window full: let time pass so ACKs flow
    else {
      sent++;
      if ((sent & 63) === 0) tick(0.01);
    }
  }
  while (delivered < sent) tick(1);
  const ms = performance.now() - start;
  sink += b.stats().messagesDelivered;
  return { rate: (delivered * 1000) / ms, delivered, datagrams };
}

/** Operations/s of fn for BENCH_MS / 3. */
function rate(fn: () => number): number {
  for (let i = 0; i < 200; i++) sink += fn();
  let ops = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < BENCH_MS / 3) {
    for (let i = 0; i < 64; i++) sink += fn();
    ops += 64;
    elapsed = performance.now() - start;
  }
  return (ops * 1000) / elapsed;
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US').padStart(11);

const cpu = cpus();
console.log(`# Node ${process.version}, V8 ${process.versions.v8}, ${process.platform}/${process.arch}, ${cpu.length} x ${cpu[0]?.model ?? 'unknown'}`);
console.log(`# MTU ${MTU}; best of ${ROUNDS} rounds of at most ${BENCH_MS} ms each`);

console.log('\ncore.send -> handleDatagram -> deliver (two cores, in process)');
console.log(`${'value'.padEnd(10)} ${'datagrams'.padStart(9)} ${'plain msg/s'.padStart(11)} ${'sealed msg/s'.padStart(12)} ${'ratio'.padStart(6)}`);
for (const [size, count] of [[64, 200_000], [1024, 200_000], [16 * 1024, 20_000], [300 * 1024, 400]] as const) {
  let plain = 0;
  let sealed = 0;
  let perMessage = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const p = throughput(false, size, count);
    const s = throughput(true, size, count);
    plain = Math.max(plain, p.rate);
    sealed = Math.max(sealed, s.rate);
    perMessage = s.datagrams / Math.max(1, s.delivered);
  }
  console.log(`${`${size} B`.padEnd(10)} ${perMessage.toFixed(1).padStart(9)} ${fmt(plain)} ${fmt(sealed).padStart(12)} ${(sealed / plain).toFixed(2).padStart(6)}`);
}

console.log('\nper datagram (full 1472-byte datagram: 1416 bytes of plaintext sealed)');
const sealer = new Sealer({ id: 1, key: KEY });
const body = encodeMessage(put(1, 1416 - 30));
const plainDatagram = fragmentMessage('put', body, { senderId: 1n, msgSeq: 1, mtu: MTU })[0]!;
const sealedDatagram = fragmentMessage('put', body, { senderId: 1n, msgSeq: 1, mtu: MTU, sealer })[0]!;
const copy = rate(() => Buffer.from(plainDatagram).length);
const seal = rate(() => fragmentMessage('put', body, { senderId: 1n, msgSeq: 1, mtu: MTU, sealer })[0]!.length);
const frag = rate(() => fragmentMessage('put', body, { senderId: 1n, msgSeq: 1, mtu: MTU })[0]!.length);
const open = rate(() => {
  const o = sealer.open(sealedDatagram.subarray(0, HEADER_SIZE), sealedDatagram.subarray(HEADER_SIZE));
  return o.ok ? o.plaintext.length : 0;
});
console.log(`copy (baseline)       ${fmt(copy)} /s`);
console.log(`fragment, plaintext   ${fmt(frag)} /s`);
console.log(`fragment + seal       ${fmt(seal)} /s   ${((seal * 1416) / 2 ** 20).toFixed(0)} MiB/s`);
console.log(`open                  ${fmt(open)} /s   ${((open * 1416) / 2 ** 20).toFixed(0)} MiB/s`);
if (sink === 42) console.log('');
