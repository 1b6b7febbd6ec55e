/**
 * fast-check arbitraries for every wire type (spec/*.ksy), shared by the wire tests, and the
 * run parameters every property uses.
 *
 * FC_NUM_RUNS scales every property: a property written for `base` runs gets
 * `base * FC_NUM_RUNS / 100` (fast-check's own default is 100 runs), so FC_NUM_RUNS=1000 runs
 * everything ten times longer. FC_SEED fixes the seed, to replay a failure fast-check reported.
 */
import fc from 'fast-check';
import { encodeMessage } from '../../runtime/codec/encode';
import {
  ENTRY_KINDS, FLAG_ENCRYPTED, LEAVE_REASONS, MAX_MESSAGE_SIZE, MAX_MTU, MIN_MTU, OP_CODES, SEAL_OVERHEAD, VALUE_CODECS,
  type EntryKind, type LeaveReason, type Message, type OpName, type Packet, type PacketHeader, type ValueCodec,
} from '../../runtime/codec/packet';

const scale = process.env.FC_NUM_RUNS === undefined ? 1 : Number(process.env.FC_NUM_RUNS) / 100;
const seed = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED);

/** Run count for a property designed for `base` runs, scaled by FC_NUM_RUNS. */
export function runs(base: number): number {
  return Math.max(1, Math.round(base * scale));
}

/** fast-check parameters: `runs(base)` runs, FC_SEED when given. */
export function params<T>(base: number): fc.Parameters<T> {
  return seed === undefined ? { numRuns: runs(base) } : { numRuns: runs(base), seed };
}

export const OPS = Object.keys(OP_CODES) as OpName[];
export const SEQUENCED_OPS = OPS.filter((op) => OP_CODES[op] < 0x40);
export const UNSEQUENCED_OPS = OPS.filter((op) => OP_CODES[op] >= 0x40);

const U8_MAX = 2n ** 64n - 1n;

/**
 * u8 values biased to the edges a double cannot hold: a u8 read as a number is exact only to
 * 2^53, so values just above it and near 2^64-1 catch a lost bigint.
 */
export const u8 = (): fc.Arbitrary<bigint> => fc.oneof(
  fc.bigInt({ min: 0n, max: U8_MAX }),
  fc.bigInt({ min: U8_MAX - 1024n, max: U8_MAX }),
  fc.bigInt({ min: 2n ** 53n - 2n, max: 2n ** 53n + 1024n }),
  fc.constantFrom(0n, 1n, U8_MAX),
);
export const u4 = (): fc.Arbitrary<number> => fc.oneof(
  fc.integer({ min: 0, max: 0xffffffff }),
  fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xffffffff),
);
export const u2 = (): fc.Arbitrary<number> => fc.integer({ min: 0, max: 0xffff });
export const u1 = (): fc.Arbitrary<number> => fc.integer({ min: 0, max: 0xff });

/** Any Unicode text without lone surrogates (those cannot be UTF-8). */
const text = (maxLength: number): fc.Arbitrary<string> => fc.string({ unit: 'binary', maxLength });

/** `mccache_common::name`: at most 255 UTF-8 bytes (63 code points x 4 bytes, or 255 ASCII). */
export const cacheName = (): fc.Arbitrary<string> => fc.oneof(
  { arbitrary: text(63), weight: 8 },
  { arbitrary: fc.constantFrom('', 'a'.repeat(255), '\u00e9'.repeat(127) + 'a', '\u{1F600}'.repeat(63) + 'abc'), weight: 1 },
);

/** `mccache_common::key`: at most 65535 UTF-8 bytes; the long ones are rare, they cost time. */
export const cacheKey = (): fc.Arbitrary<string> => fc.oneof(
  { arbitrary: text(40), weight: 20 },
  { arbitrary: fc.constantFrom('k'.repeat(65535), '\u00e9'.repeat(32767) + 'k', '\u{10FFFF}'.repeat(16383) + 'abc'), weight: 1 },
);

export const bytes = (maxLength = 64): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength });
const valueCodec = (): fc.Arbitrary<ValueCodec> => fc.constantFrom(...(Object.keys(VALUE_CODECS) as ValueCodec[]));

/** An arbitrary message of the given op (every field within its .ksy rules). */
export function messageOf(op: OpName): fc.Arbitrary<Message> {
  switch (op) {
    case 'put':
      return fc.record({ op: fc.constant(op), cache: cacheName(), key: cacheKey(), hlc: u8(), ttl: u4(), codec: valueCodec(), value: bytes(256) });
    case 'delete':
      return fc.record({ op: fc.constant(op), cache: cacheName(), key: cacheKey(), hlc: u8() });
    case 'clear':
      return fc.record({ op: fc.constant(op), cache: cacheName(), hlc: u8() });
    case 'sync_entries':
      return fc.record({
        op: fc.constant(op), cache: cacheName(), replyTo: u8(),
        entries: fc.array(fc.record({
          key: text(40), hlc: u8(), originId: u8(), kind: fc.constantFrom(...(Object.keys(ENTRY_KINDS) as EntryKind[])),
          ttl: u4(), codec: valueCodec(), value: bytes(),
        }), { maxLength: 12 }),
      });
    case 'batch':
      return fc.record({
        op: fc.constant(op), cache: cacheName(),
        writes: fc.array(fc.oneof(
          fc.record({ kind: fc.constant<EntryKind>('value'), key: text(40), hlc: u8(), ttl: u4(), codec: valueCodec(), value: bytes() }),
          fc.record({ kind: fc.constant<EntryKind>('tombstone'), key: text(40), hlc: u8(), ttl: u4(), codec: fc.constant<ValueCodec>('none'), value: fc.constant(new Uint8Array(0)) }),
        ), { minLength: 1, maxLength: 12 }),
      });
    case 'metrics_request':
      return fc.record({ op: fc.constant(op), target: u8() });
    case 'metrics_reply':
      return fc.record({ op: fc.constant(op), requestSender: u8(), requestSeq: u4(), codec: valueCodec(), report: bytes(128) });
    case 'checksum_request':
      return fc.record({ op: fc.constant(op), target: u8(), cache: cacheName() });
    case 'checksum_reply':
      return fc.record({
        op: fc.constant(op), requestSender: u8(), requestSeq: u4(), cache: cacheName(), numEntries: u4(),
        checksum: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      });
    case 'join':
      return fc.record({
        op: fc.constant(op), heartbeatInterval: u4(), packetMtu: fc.integer({ min: MIN_MTU, max: MAX_MTU }), pid: u4(), host: cacheName(),
      });
    case 'leave':
      return fc.record({ op: fc.constant(op), reason: fc.constantFrom(...(Object.keys(LEAVE_REASONS) as LeaveReason[])) });
    case 'heartbeat':
      return fc.record({ op: fc.constant(op), heartbeatInterval: u4(), numMembers: u2(), lowSeq: u4() });
    case 'nak':
      return fc.record({
        op: fc.constant(op), target: u8(),
        ranges: fc.array(fc.tuple(u4(), u4()).map(([a, b]) => ({ first: Math.min(a, b), last: Math.max(a, b) })),
          { maxLength: 255 }),
        partials: fc.array(fc.integer({ min: 2, max: 255 }).chain((numFrags) => fc.record({
          msgSeq: u4(), numFrags: fc.constant(numFrags),
          missing: fc.uniqueArray(fc.integer({ min: 0, max: numFrags - 1 }), { maxLength: numFrags }).map((m) => m.sort((x, y) => x - y)),
        })), { maxLength: 255 }),
      });
    case 'ack':
      return fc.record({ op: fc.constant(op), entries: fc.array(fc.record({ senderId: u8(), deliveredSeq: u4() }), { maxLength: 255 }) });
    case 'sync_digest':
      return fc.integer({ min: 1, max: 0xffff }).chain((numBuckets) => fc.integer({ min: 0, max: numBuckets }).chain((firstBucket) =>
        fc.record({
          op: fc.constant(op), cache: cacheName(), numEntries: u4(), clearHlc: u8(), clearOrigin: u8(), numBuckets: fc.constant(numBuckets),
          firstBucket: fc.constant(firstBucket), hashes: fc.array(u8(), { maxLength: Math.min(64, numBuckets - firstBucket) }),
        })));
    case 'sync_request':
      return fc.record({ op: fc.constant(op), target: u8(), cache: cacheName(), numBuckets: fc.integer({ min: 1, max: 0xffff }),
        bucketIds: fc.array(u2(), { maxLength: 64 }) });
  }
}

export const anyMessage = (): fc.Arbitrary<Message> => fc.constantFrom(...OPS).chain(messageOf);

/**
 * A packet as `decodePacket` returns it: every header field within the datagram's rules, and
 * for a one-fragment plaintext datagram a real message body (decodePacket decodes it too), so
 * `decodePacket(encodePacket(p))` must deep-equal `p`.
 */
export function anyPacket(): fc.Arbitrary<Packet> {
  return fc.record({
    op: fc.constantFrom(...OPS),
    retransmission: fc.boolean(),
    encrypted: fc.boolean(),
    keyId: u1(),
    senderId: u8(),
    msgSeq: u4(),
    frags: fc.integer({ min: 1, max: 255 }),
    fragPick: fc.nat(),
  }).chain((h) => {
    const numFrags = OP_CODES[h.op] >= 0x40 ? 1 : h.frags;
    const base: PacketHeader = {
      op: h.op,
      flags: (h.encrypted ? FLAG_ENCRYPTED : 0) | (h.retransmission ? 0x02 : 0),
      keyId: h.encrypted ? h.keyId : 0,
      fragIndex: h.fragPick % numFrags,
      numFrags,
      senderId: h.senderId,
      msgSeq: h.msgSeq,
      lenMessage: 0,
    };
    const seal = h.encrypted ? SEAL_OVERHEAD : 0;
    if (numFrags === 1 && !h.encrypted) {
      // A body over 65535 bytes (a long key) cannot be one fragment: len_fragment is a u2.
      return messageOf(h.op).map((message): Packet => {
        const fragment = encodeMessage(message);
        return { header: { ...base, lenMessage: fragment.length }, fragment, message };
      }).filter((p) => p.fragment.length <= 0xffff);
    }
    if (numFrags === 1) {
      return bytes(200).map((plain): Packet => ({
        header: { ...base, lenMessage: plain.length },
        fragment: concat(new Uint8Array(seal), plain),
      }));
    }
    // Several fragments: a non-empty slice of a longer message (its length up to the spec's bound).
    return fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.oneof(fc.nat(5000), fc.constant(MAX_MESSAGE_SIZE)))
      .map(([plain, extra]): Packet => ({
        header: { ...base, lenMessage: Math.min(MAX_MESSAGE_SIZE, plain.length + extra) },
        fragment: concat(new Uint8Array(seal), plain),
      }));
  });
}

/** A change to encoded bytes; each fuzz test draws its own mix of them. */
export type ByteMutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'extend'; tail: Uint8Array }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'byte'; at: number; value: number };

/** `input` with `m` applied (positions taken modulo the length); `input` itself is left as it is. */
export function mutateBytes(input: Uint8Array, m: ByteMutation): Uint8Array {
  const n = input.length;
  switch (m.kind) {
    case 'flip': {
      if (n === 0) return input;
      const out = input.slice();
      out[m.at % n]! ^= 1 << m.bit;
      return out;
    }
    case 'truncate':
      return input.slice(0, m.at % (n + 1));
    case 'extend':
      return Buffer.concat([input, m.tail]);
    case 'insert': {
      const at = m.at % (n + 1);
      return Buffer.concat([input.subarray(0, at), m.bytes, input.subarray(at)]);
    }
    case 'byte': {
      if (n === 0) return input;
      const out = input.slice();
      out[m.at % n] = m.value;
      return out;
    }
  }
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * The packets of one message split at `capacity` bytes (as decodePacket would return them,
 * without the decoded message, which the reassembler does not read).
 */
export function packetsOf(senderId: bigint, msgSeq: number, message: Uint8Array, capacity: number, op: OpName = 'put'): Packet[] {
  const numFrags = Math.max(1, Math.ceil(message.length / capacity));
  return Array.from({ length: numFrags }, (_, i) => ({
    header: { op, flags: 0, keyId: 0, fragIndex: i, numFrags, senderId, msgSeq, lenMessage: message.length },
    fragment: message.subarray(i * capacity, (i + 1) * capacity),
  }));
}
