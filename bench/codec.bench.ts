/**
 * Wire codec: datagrams per second for encode and decode of a full 1472-byte data fragment, a
 * NAK with many ranges and partials, and a heartbeat, each beside baselines measured in the same
 * run (STYLE.md rule 9; never asserts, never gates CI):
 *
 *   - copy: `Buffer.from(datagram)`, the floor any codec that allocates pays;
 *   - hand: the same fields read (or written) by hand with one DataView, no validation, no
 *     Kaitai: what the generated-parser design costs over the fastest plausible code.
 *
 * Ratios are ours / baseline (1.00 = as fast; 0.10 = ten times slower). Also the error path
 * (a truncated datagram) and fragment + reassemble of a 64 KiB message.
 *
 *   node bench/run.mjs codec        or   node -r ts-node/register bench/codec.bench.ts
 *
 * Each cell runs in batches for BENCH_MS (default 300) ms after a short warm-up.
 */
import { decodePacket } from '../runtime/codec/decode';
import { encodeMessage, encodePacket } from '../runtime/codec/encode';
import { fragmentMessage } from '../runtime/codec/fragment';
import { Reassembler } from '../runtime/codec/reassembler';
import { HEADER_SIZE, type Message, type Packet, type PacketHeader } from '../runtime/codec/packet';

const BENCH_MS = Number(process.env['BENCH_MS'] ?? 300);
const MTU = 1472;
let sink = 0; // keeps results observable so V8 cannot drop the work

/** Operations per second of `fn`, run in batches until BENCH_MS have passed. */
function rate(fn: () => number): number {
  const warmUntil = performance.now() + Math.min(100, BENCH_MS / 3);
  while (performance.now() < warmUntil) sink += fn();
  let batch = 64;
  let ops = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < BENCH_MS) {
    for (let i = 0; i < batch; i++) sink += fn();
    ops += batch;
    elapsed = performance.now() - start;
    if (elapsed < BENCH_MS / 20) batch *= 2;
  }
  return (ops * 1000) / elapsed;
}

// ------------------------------------------------------------------------------------------
// Inputs

const dataHeader: PacketHeader = {
  op: 'put', flags: 0, keyId: 0, fragIndex: 3, numFrags: 10, senderId: 0xfedcba9876543210n, msgSeq: 123456, lenMessage: 10 * (MTU - HEADER_SIZE),
};
const dataFragment = new Uint8Array(MTU - HEADER_SIZE).map((_, i) => i & 0xff);
const dataDatagram = encodePacket({ header: dataHeader, fragment: dataFragment });

const nak: Message = {
  op: 'nak', target: 0x1122334455667788n,
  ranges: Array.from({ length: 100 }, (_, i) => ({ first: 1000 + i * 10, last: 1003 + i * 10 })),
  partials: Array.from({ length: 20 }, (_, i) => ({ msgSeq: 5000 + i, numFrags: 255, missing: Array.from({ length: 255 }, (_, j) => j).filter((j) => (j + i) % 3 === 0) })),
};
const heartbeat: Message = { op: 'heartbeat', heartbeatInterval: 1000, numMembers: 12, lowSeq: 4000 };

function single(message: Message): { header: PacketHeader; datagram: Uint8Array } {
  const fragment = encodeMessage(message);
  const header: PacketHeader = { op: message.op, flags: 0, keyId: 0, fragIndex: 0, numFrags: 1, senderId: 0x0102030405060708n, msgSeq: 99, lenMessage: fragment.length };
  return { header, datagram: encodePacket({ header, fragment }) };
}
const nakIn = single(nak);
const hbIn = single(heartbeat);

// ------------------------------------------------------------------------------------------
// Baselines: hand-written DataView code for the same fields, without validation

function handReadHeader(b: Uint8Array): Packet {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const lenFragment = v.getUint16(24);
  return {
    header: {
      op: 'put', flags: v.getUint8(4), keyId: v.getUint8(5), fragIndex: v.getUint8(6), numFrags: v.getUint8(7),
      senderId: v.getBigUint64(8), msgSeq: v.getUint32(16), lenMessage: v.getUint32(20),
    },
    fragment: b.subarray(28, 28 + lenFragment),
  };
}

function handWriteHeader(h: PacketHeader, fragment: Uint8Array, body?: (v: DataView, at: number) => void, bodySize = fragment.length): Uint8Array {
  const out = new Uint8Array(28 + bodySize);
  const v = new DataView(out.buffer);
  v.setUint16(0, 0x4d43);
  v.setUint8(2, 1);
  v.setUint8(3, 0x01);
  v.setUint8(4, h.flags);
  v.setUint8(5, h.keyId);
  v.setUint8(6, h.fragIndex);
  v.setUint8(7, h.numFrags);
  v.setBigUint64(8, h.senderId);
  v.setUint32(16, h.msgSeq);
  v.setUint32(20, h.lenMessage);
  v.setUint16(24, bodySize);
  if (body) body(v, 28);
  else out.set(fragment, 28);
  return out;
}

function handReadNak(b: Uint8Array): number {
  const p = handReadHeader(b);
  const v = new DataView(b.buffer, b.byteOffset + 28, p.fragment.length);
  let at = 8;
  const target = v.getBigUint64(0);
  const ranges: { first: number; last: number }[] = [];
  for (let i = v.getUint8(at++); i > 0; i--, at += 8) ranges.push({ first: v.getUint32(at), last: v.getUint32(at + 4) });
  const partials: { msgSeq: number; numFrags: number; missing: number[] }[] = [];
  for (let i = v.getUint8(at++); i > 0; i--) {
    const msgSeq = v.getUint32(at);
    const numFrags = v.getUint8(at + 4);
    at += 5;
    const missing: number[] = [];
    for (let j = 0; j < numFrags; j++) if ((v.getUint8(at + (j >> 3)) >> (7 - (j & 7))) & 1) missing.push(j);
    at += (numFrags + 7) >> 3;
    partials.push({ msgSeq, numFrags, missing });
  }
  return ranges.length + partials.length + Number(target & 1n);
}

function handWriteNak(): Uint8Array {
  const m = nak as Extract<Message, { op: 'nak' }>;
  let size = 8 + 1 + 8 * m.ranges.length + 1;
  for (const p of m.partials) size += 5 + ((p.numFrags + 7) >> 3);
  return handWriteHeader(nakIn.header, dataFragment, (v, at) => {
    v.setBigUint64(at, m.target);
    at += 8;
    v.setUint8(at++, m.ranges.length);
    for (const r of m.ranges) {
      v.setUint32(at, r.first);
      v.setUint32(at + 4, r.last);
      at += 8;
    }
    v.setUint8(at++, m.partials.length);
    for (const p of m.partials) {
      v.setUint32(at, p.msgSeq);
      v.setUint8(at + 4, p.numFrags);
      at += 5;
      for (const i of p.missing) v.setUint8(at + (i >> 3), v.getUint8(at + (i >> 3)) | (0x80 >> (i & 7)));
      at += (p.numFrags + 7) >> 3;
    }
  }, size);
}

function handReadHeartbeat(b: Uint8Array): number {
  const p = handReadHeader(b);
  const v = new DataView(b.buffer, b.byteOffset + 28, p.fragment.length);
  const m = { op: 'heartbeat', heartbeatInterval: v.getUint32(0), numMembers: v.getUint16(4), lowSeq: v.getUint32(6) };
  return m.numMembers;
}

function handWriteHeartbeat(): Uint8Array {
  const m = heartbeat as Extract<Message, { op: 'heartbeat' }>;
  return handWriteHeader(hbIn.header, dataFragment, (v, at) => {
    v.setUint32(at, m.heartbeatInterval);
    v.setUint16(at + 4, m.numMembers);
    v.setUint32(at + 6, m.lowSeq);
  }, 10);
}

// ------------------------------------------------------------------------------------------
// Cells

interface Cell { what: string; ours: () => number; hand: () => number; copy: () => number }
const copyOf = (b: Uint8Array) => () => Buffer.from(b).length;

const cells: Cell[] = [
  {
    what: `data fragment ${dataDatagram.length} B, encode`,
    ours: () => encodePacket({ header: dataHeader, fragment: dataFragment }).length,
    hand: () => handWriteHeader(dataHeader, dataFragment).length,
    copy: copyOf(dataDatagram),
  },
  {
    what: `data fragment ${dataDatagram.length} B, decode`,
    ours: () => decodePacket(dataDatagram).fragment.length,
    hand: () => handReadHeader(dataDatagram).fragment.length,
    copy: copyOf(dataDatagram),
  },
  {
    what: `NAK 100 ranges + 20 partials ${nakIn.datagram.length} B, encode`,
    ours: () => encodePacket({ header: nakIn.header, fragment: encodeMessage(nak) }).length,
    hand: () => handWriteNak().length,
    copy: copyOf(nakIn.datagram),
  },
  {
    what: `NAK 100 ranges + 20 partials ${nakIn.datagram.length} B, decode`,
    ours: () => (decodePacket(nakIn.datagram).message as Extract<Message, { op: 'nak' }>).ranges.length,
    hand: () => handReadNak(nakIn.datagram),
    copy: copyOf(nakIn.datagram),
  },
  {
    what: `heartbeat ${hbIn.datagram.length} B, encode`,
    ours: () => encodePacket({ header: hbIn.header, fragment: encodeMessage(heartbeat) }).length,
    hand: () => handWriteHeartbeat().length,
    copy: copyOf(hbIn.datagram),
  },
  {
    what: `heartbeat ${hbIn.datagram.length} B, decode`,
    ours: () => (decodePacket(hbIn.datagram).message as Extract<Message, { op: 'heartbeat' }>).numMembers,
    hand: () => handReadHeartbeat(hbIn.datagram),
    copy: copyOf(hbIn.datagram),
  },
  {
    what: 'truncated heartbeat (20 B), decode -> MalformedPacketError',
    ours: () => {
      try {
        decodePacket(hbIn.datagram.subarray(0, 20));
        return 0;
      } catch {
        return 1;
      }
    },
    hand: () => (hbIn.datagram.subarray(0, 20).length < 28 ? 1 : handReadHeartbeat(hbIn.datagram)),
    copy: copyOf(hbIn.datagram.subarray(0, 20)),
  },
];

const pad = (s: string, n: number) => s.padEnd(n);
const num = (x: number) => Math.round(x).toLocaleString('en-US').padStart(12);
const ratio = (x: number) => x.toFixed(2).padStart(9);
console.log(`${pad('datagrams/s', 58)}${'ours'.padStart(12)}${'hand'.padStart(12)}${'copy'.padStart(12)}${'ours/hand'.padStart(10)}${'ours/copy'.padStart(10)}`);
for (const c of cells) {
  const ours = rate(c.ours);
  const hand = rate(c.hand);
  const copy = rate(c.copy);
  console.log(`${pad(c.what, 58)}${num(ours)}${num(hand)}${num(copy)}${ratio(ours / hand)} ${ratio(ours / copy)}`);
}

// Fragment + reassemble: bytes of message per second through both ends, beside a plain copy
// of the same bytes.
const big = new Uint8Array(64 * 1024).map((_, i) => (i * 7) & 0xff);
const decoded = fragmentMessage('put', big, { senderId: 1n, msgSeq: 1, mtu: MTU }).map(decodePacket);
const r = new Reassembler();
let seq = 0;
const fragRate = rate(() => fragmentMessage('put', big, { senderId: 1n, msgSeq: 1, mtu: MTU }).length);
const reasmRate = rate(() => {
  seq++;
  let n = 0;
  for (const p of decoded) {
    const res = r.push(0, { header: { ...p.header, msgSeq: seq }, fragment: p.fragment });
    if (res.kind === 'complete') n = res.message.length;
  }
  return n;
});
const copyRate = rate(() => Buffer.from(big).length);
const mb = (perSecond: number) => `${((perSecond * big.length) / 2 ** 20).toFixed(0).padStart(8)} MiB/s`;
console.log(`\n64 KiB message at MTU ${MTU} (${decoded.length} fragments)`);
console.log(`  fragmentMessage        ${mb(fragRate)}   copy ${mb(copyRate)}   ratio ${(fragRate / copyRate).toFixed(2)}`);
console.log(`  Reassembler.push x${decoded.length}   ${mb(reasmRate)}   copy ${mb(copyRate)}   ratio ${(reasmRate / copyRate).toFixed(2)}`);
if (sink === 42) console.log('');
