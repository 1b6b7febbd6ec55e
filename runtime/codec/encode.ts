/**
 * Encoding: typed packets and messages -> bytes, written by hand to mirror spec/*.ksy field by
 * field (big-endian throughout). The generated Kaitai parsers only read, so these encoders are
 * the other half of the contract, and conformance/wire round-trips every message kind through
 * both (STYLE.md rule 1).
 *
 * Theory of operation: one sizing pass validates the input and computes the exact byte length
 * (remembering each string's UTF-8 length), then one `Uint8Array` of that length is filled
 * through a single `DataView`. No intermediate buffers, no growth, no copies but the payloads.
 *
 * Every input is our own (STYLE.md rule 3: our misuse fails loudly and at once): a value the
 * wire cannot carry, or one the decoder would reject (a `valid` rule of the .ksy), throws
 * `McCacheError` with code MCCACHE_ERR_INVALID_ARGUMENT naming the field, before anything is
 * allocated. So whatever these functions return, `decodePacket`/`decodeMessage` accept, and
 * decode to the same value.
 */
import { ErrorCode, McCacheError, MessageTooLargeError } from '../errors';
import {
  ENTRY_KINDS, FLAG_ENCRYPTED, HEADER_SIZE, LEAVE_REASONS, MAGIC, MAX_MESSAGE_SIZE, MAX_MTU, MIN_MTU,
  OP_CODES, PROTOCOL_VERSION, SEAL_OVERHEAD, VALUE_CODECS,
  type OutgoingBatchWrite, type OutgoingMessage, type PacketHeader, type PartialMessage, type SyncEntry,
} from './packet';
import { isScalar, scalarLength, writeScalar } from './msgpack-scalar';
import { isWellFormed, utf8Length } from './utf8';

const U2_MAX = 0xffff;
const U4_MAX = 0xffffffff;
const U8_MAX = 0xffffffffffffffffn;
/** spec/mccache_common.ksy `entry_value.len_value` `valid: max`. */
const MAX_VALUE_SIZE = MAX_MESSAGE_SIZE;
/** spec/mccache_message.ksy `checksum_reply.checksum` (`size: 32`, SHA-256). */
const CHECKSUM_SIZE = 32;
/** Strings up to this many ASCII characters are copied by a loop: cheaper than encodeInto's call. */
const SHORT_ASCII = 32;
/** Flag bits the datagram spec defines; the rest are reserved and must be 0. */
const KNOWN_FLAGS = 0x03;

const utf8 = new TextEncoder();

/** The whole datagram: the 28-byte header of spec/mccache_datagram.ksy, then the fragment as given. */
export function encodePacket(packet: { header: PacketHeader; fragment: Uint8Array }): Uint8Array {
  const { header, fragment } = packet;
  if (!(fragment instanceof Uint8Array)) throw invalid('fragment', 'must be a Uint8Array');
  checkHeader(header, fragment.length);
  const out = new Uint8Array(HEADER_SIZE + fragment.length);
  writeHeader(new DataView(out.buffer, out.byteOffset, out.byteLength), 0, header, fragment.length);
  out.set(fragment, HEADER_SIZE);
  return out;
}

/** A message body (spec/mccache_message.ksy, the type chosen by `msg.op`). */
export function encodeMessage(msg: OutgoingMessage): Uint8Array {
  const w = new Writer(sizeMessage(msg, scratch));
  writeMessage(w, msg);
  return w.bytes;
}

/**
 * Bytes `encodeMessage(msg)` would produce, with the same validation, without encoding
 * (a cache checks a value against the MTU's limit before it changes anything).
 */
export function encodedMessageSize(msg: OutgoingMessage): number {
  return sizeMessage(msg, scratch);
}

/** Bit 7 of byte 0 is fragment 0 (spec/mccache_message.ksy `partial.missing`); the inverse of decode's. */
export function indexesToBitmap(missing: readonly number[], numFrags: number): Uint8Array {
  u1(numFrags, 'numFrags');
  const bitmap = new Uint8Array((numFrags + 7) >> 3);
  for (const i of missing) {
    if (!Number.isInteger(i) || i < 0 || i >= numFrags) throw invalid('missing', `index ${i} outside 0..${numFrags - 1}`);
    bitmap[i >> 3]! |= 0x80 >> (i & 7);
  }
  return bitmap;
}

// ---------------------------------------------------------------------------------------------
// Datagram header (shared with fragment.ts, which writes headers straight into its datagrams)

/**
 * Checks a header against every `valid` rule of spec/mccache_datagram.ksy, for a fragment of
 * `lenFragment` bytes (sealed length when encrypted).
 */
export function checkHeader(h: PacketHeader, lenFragment: number): void {
  if (h === null || typeof h !== 'object') throw invalid('header', 'must be an object');
  const code = (OP_CODES as Record<string, number>)[h.op];
  if (code === undefined || !Object.hasOwn(OP_CODES, h.op)) throw invalid('header.op', `unknown op ${String(h.op)}`);
  u1(h.flags, 'header.flags');
  if ((h.flags & ~KNOWN_FLAGS) !== 0) throw invalid('header.flags', 'reserved bits must be 0');
  const encrypted = (h.flags & FLAG_ENCRYPTED) !== 0;
  u1(h.keyId, 'header.keyId');
  if (!encrypted && h.keyId !== 0) throw invalid('header.keyId', 'must be 0 when the encrypted flag is clear');
  u1(h.fragIndex, 'header.fragIndex');
  u1(h.numFrags, 'header.numFrags');
  if (h.numFrags < 1) throw invalid('header.numFrags', 'must be at least 1');
  if (h.fragIndex >= h.numFrags) throw invalid('header.fragIndex', 'must be less than numFrags');
  if (code >= 0x40 && h.numFrags !== 1) throw invalid('header.numFrags', 'unsequenced ops have exactly 1 fragment');
  u8(h.senderId, 'header.senderId');
  u4(h.msgSeq, 'header.msgSeq');
  if (!Number.isInteger(h.lenMessage) || h.lenMessage < 0 || h.lenMessage > MAX_MESSAGE_SIZE) {
    throw invalid('header.lenMessage', `must be an integer in 0..${MAX_MESSAGE_SIZE}`);
  }
  // The `len_fragment` rule, term by term.
  const seal = encrypted ? SEAL_OVERHEAD : 0;
  if (lenFragment > U2_MAX) throw invalid('fragment', `longer than ${U2_MAX} bytes`);
  if (lenFragment < seal) throw invalid('fragment', `an encrypted fragment has at least ${SEAL_OVERHEAD} bytes`);
  const plain = lenFragment - seal;
  if (plain > h.lenMessage) throw invalid('fragment', 'longer than header.lenMessage');
  if (h.numFrags === 1 && plain !== h.lenMessage) throw invalid('fragment', 'a single fragment must hold the whole message');
  if (h.numFrags > 1 && plain === 0) throw invalid('fragment', 'empty fragment of a multi-fragment message');
}

/** Writes the 28 header bytes at `offset`; `h` must have passed `checkHeader`. */
export function writeHeader(view: DataView, offset: number, h: PacketHeader, lenFragment: number): void {
  view.setUint16(offset, MAGIC);
  view.setUint8(offset + 2, PROTOCOL_VERSION);
  view.setUint8(offset + 3, OP_CODES[h.op]);
  view.setUint8(offset + 4, h.flags);
  view.setUint8(offset + 5, h.keyId);
  view.setUint8(offset + 6, h.fragIndex);
  view.setUint8(offset + 7, h.numFrags);
  view.setBigUint64(offset + 8, h.senderId);
  view.setUint32(offset + 16, h.msgSeq);
  view.setUint32(offset + 20, h.lenMessage);
  view.setUint16(offset + 24, lenFragment);
  view.setUint16(offset + 26, 0); // reserved
}

// ---------------------------------------------------------------------------------------------
// Message bodies: size (and validate), then write

/**
 * UTF-8 lengths of the message's strings in the order they are written, so the write pass
 * need not measure them again. Module-level: encoding is synchronous and not re-entrant.
 */
const scratch: number[] = [];

class Writer {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  pos = 0;
  #str = 0;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer, 0, size);
  }

  u1(v: number): void {
    this.view.setUint8(this.pos, v);
    this.pos += 1;
  }

  u2(v: number): void {
    this.view.setUint16(this.pos, v);
    this.pos += 2;
  }

  u4(v: number): void {
    this.view.setUint32(this.pos, v);
    this.pos += 4;
  }

  u8(v: bigint): void {
    this.view.setBigUint64(this.pos, v);
    this.pos += 8;
  }

  raw(b: Uint8Array): void {
    this.bytes.set(b, this.pos);
    this.pos += b.length;
  }

  /** The next measured string, after a `lenBytes`-byte length prefix. */
  str(s: string, lenBytes: 1 | 2 | 4): void {
    const n = scratch[this.#str++]!;
    if (lenBytes === 1) this.u1(n);
    else if (lenBytes === 2) this.u2(n);
    else this.u4(n);
    if (n === s.length && n <= SHORT_ASCII) {
      for (let i = 0; i < n; i++) this.bytes[this.pos + i] = s.charCodeAt(i);
    } else {
      utf8.encodeInto(s, this.bytes.subarray(this.pos, this.pos + n));
    }
    this.pos += n;
  }

  /** An entry_value; `v` as valueSize admitted it (a string was measured in its turn). */
  value(codec: string, v: Uint8Array | string | number | boolean | null): void {
    this.u1(VALUE_CODECS[codec as keyof typeof VALUE_CODECS]);
    if (v instanceof Uint8Array) {
      this.u4(v.length);
      this.raw(v);
    } else if (typeof v === 'string') {
      this.str(v, 4);
    } else {
      const n = scalarLength(v);
      this.u4(n);
      writeScalar(v, this.bytes, this.pos);
      this.pos += n;
    }
  }
}

function sizeMessage(msg: OutgoingMessage, lens: number[]): number {
  if (msg === null || typeof msg !== 'object') throw invalid('message', 'must be an object');
  lens.length = 0;
  const op = msg.op;
  let n: number;
  switch (msg.op) {
    case 'put':
      n = nameSize(msg.cache, 'put.cache', lens) + keySize(msg.key, 'put.key', lens) + 8 + 4
        + valueSize(msg.codec, msg.value, 'put.value', lens);
      u8(msg.hlc, 'put.hlc');
      u4(msg.ttl, 'put.ttl');
      break;
    case 'delete':
      n = nameSize(msg.cache, 'del.cache', lens) + keySize(msg.key, 'del.key', lens) + 8;
      u8(msg.hlc, 'del.hlc');
      break;
    case 'clear':
      n = nameSize(msg.cache, 'clear.cache', lens) + 8;
      u8(msg.hlc, 'clear.hlc');
      break;
    case 'sync_entries': {
      n = nameSize(msg.cache, 'sync_entries.cache', lens) + 8 + 2;
      u8(msg.replyTo, 'sync_entries.replyTo');
      const entries = list(msg.entries, U2_MAX, 'sync_entries.entries');
      for (let i = 0; i < entries.length; i++) {
        try {
          n += syncEntrySize(entries[i]!, lens);
        } catch (err) {
          throw within(err, `sync_entries.entries[${i}]`);
        }
      }
      break;
    }
    case 'batch': {
      n = nameSize(msg.cache, 'batch.cache', lens) + 2;
      const writes = list(msg.writes, U2_MAX, 'batch.writes');
      if (writes.length === 0) throw invalid('batch.writes', 'must hold at least one write');
      for (let i = 0; i < writes.length; i++) {
        try {
          n += batchWriteSize(writes[i]!, lens);
        } catch (err) {
          throw within(err, `batch.writes[${i}]`);
        }
      }
      break;
    }
    case 'metrics_request':
      n = 8;
      u8(msg.target, 'metrics_request.target');
      break;
    case 'metrics_reply':
      n = 8 + 4 + valueSize(msg.codec, msg.report, 'metrics_reply.report');
      u8(msg.requestSender, 'metrics_reply.requestSender');
      u4(msg.requestSeq, 'metrics_reply.requestSeq');
      break;
    case 'checksum_request':
      n = 8 + nameSize(msg.cache, 'checksum_request.cache', lens);
      u8(msg.target, 'checksum_request.target');
      break;
    case 'checksum_reply':
      n = 8 + 4 + nameSize(msg.cache, 'checksum_reply.cache', lens) + 4 + CHECKSUM_SIZE;
      u8(msg.requestSender, 'checksum_reply.requestSender');
      u4(msg.requestSeq, 'checksum_reply.requestSeq');
      u4(msg.numEntries, 'checksum_reply.numEntries');
      if (!(msg.checksum instanceof Uint8Array) || msg.checksum.length !== CHECKSUM_SIZE) {
        throw invalid('checksum_reply.checksum', `must be a Uint8Array of ${CHECKSUM_SIZE} bytes`);
      }
      break;
    case 'join':
      n = 4 + 2 + 4 + nameSize(msg.host, 'join.host', lens);
      u4(msg.heartbeatInterval, 'join.heartbeatInterval');
      // Mirrors the .ksy's rule (548..65507), so every join we send decodes.
      u2(msg.packetMtu, 'join.packetMtu');
      if (msg.packetMtu < MIN_MTU || msg.packetMtu > MAX_MTU) throw invalid('join.packetMtu', `must be in ${MIN_MTU}..${MAX_MTU}`);
      u4(msg.pid, 'join.pid');
      break;
    case 'leave':
      n = 1;
      if (!Object.hasOwn(LEAVE_REASONS, msg.reason)) throw invalid('leave.reason', `unknown reason ${String(msg.reason)}`);
      break;
    case 'heartbeat':
      n = 4 + 2 + 4;
      u4(msg.heartbeatInterval, 'heartbeat.heartbeatInterval');
      u2(msg.numMembers, 'heartbeat.numMembers');
      u4(msg.lowSeq, 'heartbeat.lowSeq');
      break;
    case 'nak': {
      u8(msg.target, 'nak.target');
      const ranges = list(msg.ranges, 0xff, 'nak.ranges');
      const partials = list(msg.partials, 0xff, 'nak.partials');
      n = 8 + 1 + 8 * ranges.length + 1;
      for (let i = 0; i < ranges.length; i++) {
        const r = ranges[i]!;
        if (r === null || typeof r !== 'object' || !isU4(r.first) || !isU4(r.last) || r.last < r.first) {
          throw invalid(`nak.ranges[${i}]`, 'must be { first, last } with integers 0 <= first <= last < 2^32');
        }
      }
      for (let i = 0; i < partials.length; i++) {
        try {
          n += partialSize(partials[i]!);
        } catch (err) {
          throw within(err, `nak.partials[${i}]`);
        }
      }
      break;
    }
    case 'ack': {
      const entries = list(msg.entries, 0xff, 'ack.entries');
      n = 1 + 12 * entries.length;
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i]!;
        if (e === null || typeof e !== 'object' || !isU8(e.senderId) || !isU4(e.deliveredSeq)) {
          throw invalid(`ack.entries[${i}]`, 'must be { senderId: bigint u8, deliveredSeq: u4 }');
        }
      }
      break;
    }
    case 'sync_digest': {
      n = nameSize(msg.cache, 'sync_digest.cache', lens) + 4 + 8 + 8 + 2 + 2 + 2;
      u4(msg.numEntries, 'sync_digest.numEntries');
      if (!isU8(msg.clearHlc)) throw invalid('sync_digest.clearHlc', 'must be a bigint in 0..2^64-1');
      if (!isU8(msg.clearOrigin)) throw invalid('sync_digest.clearOrigin', 'must be a bigint in 0..2^64-1');
      u2(msg.numBuckets, 'sync_digest.numBuckets');
      if (msg.numBuckets < 1) throw invalid('sync_digest.numBuckets', 'must be at least 1');
      u2(msg.firstBucket, 'sync_digest.firstBucket');
      const hashes = list(msg.hashes, U2_MAX, 'sync_digest.hashes');
      if (msg.firstBucket + hashes.length > msg.numBuckets) {
        throw invalid('sync_digest.hashes', 'firstBucket + hashes.length must not exceed numBuckets');
      }
      for (let i = 0; i < hashes.length; i++) if (!isU8(hashes[i])) throw invalid(`sync_digest.hashes[${i}]`, 'must be a bigint in 0..2^64-1');
      n += 8 * hashes.length;
      break;
    }
    case 'sync_request': {
      u8(msg.target, 'sync_request.target');
      n = 8 + nameSize(msg.cache, 'sync_request.cache', lens) + 2 + 2;
      u2(msg.numBuckets, 'sync_request.numBuckets');
      if (msg.numBuckets < 1) throw invalid('sync_request.numBuckets', 'must be at least 1');
      const ids = list(msg.bucketIds, U2_MAX, 'sync_request.bucketIds');
      for (let i = 0; i < ids.length; i++) if (!isU2(ids[i])) throw invalid(`sync_request.bucketIds[${i}]`, `must be an integer in 0..${U2_MAX}`);
      n += 2 * ids.length;
      break;
    }
    default:
      throw invalid('op', `unknown op ${String(op)}`);
  }
  if (n > MAX_MESSAGE_SIZE) {
    throw new MessageTooLargeError(ErrorCode.MESSAGE_TOO_LARGE,
      `a ${op} message of ${n} bytes exceeds the protocol's ${MAX_MESSAGE_SIZE}-byte limit (255 x ${MAX_MTU})`,
      n, MAX_MESSAGE_SIZE);
  }
  return n;
}

function writeMessage(w: Writer, msg: OutgoingMessage): void {
  switch (msg.op) {
    case 'put':
      w.str(msg.cache, 1);
      w.str(msg.key, 2);
      w.u8(msg.hlc);
      w.u4(msg.ttl);
      w.value(msg.codec, msg.value);
      break;
    case 'delete':
      w.str(msg.cache, 1);
      w.str(msg.key, 2);
      w.u8(msg.hlc);
      break;
    case 'clear':
      w.str(msg.cache, 1);
      w.u8(msg.hlc);
      break;
    case 'sync_entries':
      w.str(msg.cache, 1);
      w.u8(msg.replyTo);
      w.u2(msg.entries.length);
      for (const e of msg.entries) {
        w.str(e.key, 2);
        w.u8(e.hlc);
        w.u8(e.originId);
        w.u1(ENTRY_KINDS[e.kind]);
        w.u4(e.ttl);
        w.value(e.codec, e.value);
      }
      break;
    case 'batch':
      w.str(msg.cache, 1);
      w.u2(msg.writes.length);
      for (const x of msg.writes) {
        w.u1(ENTRY_KINDS[x.kind]);
        w.str(x.key, 2);
        w.u8(x.hlc);
        w.u4(x.ttl);
        w.value(x.codec, x.value);
      }
      break;
    case 'metrics_request':
      w.u8(msg.target);
      break;
    case 'metrics_reply':
      w.u8(msg.requestSender);
      w.u4(msg.requestSeq);
      w.value(msg.codec, msg.report);
      break;
    case 'checksum_request':
      w.u8(msg.target);
      w.str(msg.cache, 1);
      break;
    case 'checksum_reply':
      w.u8(msg.requestSender);
      w.u4(msg.requestSeq);
      w.str(msg.cache, 1);
      w.u4(msg.numEntries);
      w.raw(msg.checksum);
      break;
    case 'join':
      w.u4(msg.heartbeatInterval);
      w.u2(msg.packetMtu);
      w.u4(msg.pid);
      w.str(msg.host, 1);
      break;
    case 'leave':
      w.u1(LEAVE_REASONS[msg.reason]);
      break;
    case 'heartbeat':
      w.u4(msg.heartbeatInterval);
      w.u2(msg.numMembers);
      w.u4(msg.lowSeq);
      break;
    case 'nak':
      w.u8(msg.target);
      w.u1(msg.ranges.length);
      for (const r of msg.ranges) {
        w.u4(r.first);
        w.u4(r.last);
      }
      w.u1(msg.partials.length);
      for (const p of msg.partials) {
        w.u4(p.msgSeq);
        w.u1(p.numFrags);
        // The buffer is zeroed: set only the missing bits in place.
        for (const i of p.missing) w.bytes[w.pos + (i >> 3)]! |= 0x80 >> (i & 7);
        w.pos += (p.numFrags + 7) >> 3;
      }
      break;
    case 'ack':
      w.u1(msg.entries.length);
      for (const e of msg.entries) {
        w.u8(e.senderId);
        w.u4(e.deliveredSeq);
      }
      break;
    case 'sync_digest':
      w.str(msg.cache, 1);
      w.u4(msg.numEntries);
      w.u8(msg.clearHlc);
      w.u8(msg.clearOrigin);
      w.u2(msg.numBuckets);
      w.u2(msg.firstBucket);
      w.u2(msg.hashes.length);
      for (const h of msg.hashes) w.u8(h);
      break;
    case 'sync_request':
      w.u8(msg.target);
      w.str(msg.cache, 1);
      w.u2(msg.numBuckets);
      w.u2(msg.bucketIds.length);
      for (const id of msg.bucketIds) w.u2(id);
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// Field checks

// Field names are built only on failure: element loops (NAK partials, sync entries) would
// otherwise pay a template string per field per element.

function invalid(field: string, why: string): McCacheError {
  return new McCacheError(ErrorCode.INVALID_ARGUMENT, `${field}: ${why}`);
}

/** The same error with its field placed inside `owner` (e.g. `nak.partials[3]` + `.numFrags`). */
function within(err: unknown, owner: string): unknown {
  return err instanceof McCacheError ? new McCacheError(err.code, `${owner}.${err.message}`) : err;
}

const isInt = (v: unknown, max: number): boolean => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max;
const isU2 = (v: unknown): boolean => isInt(v, U2_MAX);
const isU4 = (v: unknown): boolean => isInt(v, U4_MAX);
/** u8 fields are bigint (STYLE.md rule 5): a number would already have lost precision above 2^53. */
const isU8 = (v: unknown): boolean => typeof v === 'bigint' && v >= 0n && v <= U8_MAX;

function u1(v: unknown, field: string): void {
  if (!isInt(v, 0xff)) throw invalid(field, 'must be an integer in 0..255');
}

function u2(v: unknown, field: string): void {
  if (!isU2(v)) throw invalid(field, `must be an integer in 0..${U2_MAX}`);
}

function u4(v: unknown, field: string): void {
  if (!isU4(v)) throw invalid(field, `must be an integer in 0..${U4_MAX}`);
}

function u8(v: unknown, field: string): void {
  if (!isU8(v)) throw invalid(field, 'must be a bigint in 0..2^64-1');
}

/** One `sync_entry`; field names relative to it. */
function syncEntrySize(e: SyncEntry, lens: number[]): number {
  if (e === null || typeof e !== 'object') throw invalid('entry', 'must be an object');
  const n = keySize(e.key, 'key', lens) + 8 + 8 + 1 + 4 + valueSize(e.codec, e.value, 'value');
  u8(e.hlc, 'hlc');
  u8(e.originId, 'originId');
  if (!Object.hasOwn(ENTRY_KINDS, e.kind)) throw invalid('kind', `unknown entry kind ${String(e.kind)}`);
  u4(e.ttl, 'ttl');
  return n;
}

/** One `batch_write`; field names relative to it. */
function batchWriteSize(x: OutgoingBatchWrite, lens: number[]): number {
  if (x === null || typeof x !== 'object') throw invalid('write', 'must be an object');
  if (!Object.hasOwn(ENTRY_KINDS, x.kind)) throw invalid('kind', `unknown entry kind ${String(x.kind)}`);
  const n = 1 + keySize(x.key, 'key', lens) + 8 + 4 + valueSize(x.codec, x.value, 'value', lens);
  u8(x.hlc, 'hlc');
  u4(x.ttl, 'ttl');
  if (x.kind === 'tombstone' && (x.codec !== 'none' || !(x.value instanceof Uint8Array) || x.value.length !== 0)) {
    throw invalid('value', "a delete (kind 'tombstone') carries no value: codec 'none', 0 bytes");
  }
  return n;
}

/** One NAK `partial`; field names relative to it. */
function partialSize(p: PartialMessage): number {
  if (p === null || typeof p !== 'object') throw invalid('partial', 'must be an object');
  u4(p.msgSeq, 'msgSeq');
  u1(p.numFrags, 'numFrags');
  if (p.numFrags < 2) throw invalid('numFrags', 'a partial message has at least 2 fragments');
  const missing = list(p.missing, p.numFrags, 'missing');
  // Ascending and distinct, as decode returns them: otherwise the round trip would not hold.
  let prev = -1;
  for (let j = 0; j < missing.length; j++) {
    const m = missing[j]!;
    if (!Number.isInteger(m) || m <= prev || m >= p.numFrags) {
      throw invalid(`missing[${j}]`, `indexes must be ascending, distinct and below numFrags (${p.numFrags})`);
    }
    prev = m;
  }
  return 4 + 1 + ((p.numFrags + 7) >> 3);
}

function list<T>(v: readonly T[], max: number, field: string): readonly T[] {
  if (!Array.isArray(v)) throw invalid(field, 'must be an array');
  if (v.length > max) throw invalid(field, `at most ${max} items (the count field's limit)`);
  return v;
}

/** `mccache_common::name`: u1 length, UTF-8. */
function nameSize(s: string, field: string, lens: number[]): number {
  const n = measure(s, field);
  if (n > 0xff) throw invalid(field, `${n} UTF-8 bytes, at most 255`);
  lens.push(n);
  return 1 + n;
}

/** `mccache_common::key`: u2 length, UTF-8. */
function keySize(s: string, field: string, lens: number[]): number {
  const n = measure(s, field);
  if (n > U2_MAX) throw invalid(field, `${n} UTF-8 bytes, at most ${U2_MAX}`);
  lens.push(n);
  return 2 + n;
}

/**
 * `mccache_common::entry_value`: codec u1, u4 length, bytes. `field` names the bytes; the codec
 * is its sibling `codec`. With `lens` (put and batch writes: OutgoingValue), the value may also
 * be a string for codec utf8 (its UTF-8 length is remembered in `lens`, as a key's) or a
 * MessagePack scalar for codec msgpack.
 */
function valueSize(codec: unknown, v: unknown, field: string, lens?: number[]): number {
  if (typeof codec !== 'string' || !Object.hasOwn(VALUE_CODECS, codec)) {
    throw invalid(field.replace(/[^.]*$/, 'codec'), `unknown codec ${String(codec)}`);
  }
  let n: number;
  if (v instanceof Uint8Array) {
    n = v.length;
  } else if (lens !== undefined && typeof v === 'string' && codec === 'utf8') {
    // Values can be long: checked and measured natively past a few dozen characters (a lone
    // surrogate still fails, with its index, through `measure`).
    n = isWellFormed(v) ? utf8Length(v) : measure(v, field);
    lens.push(n);
  } else if (lens !== undefined && isScalar(v) && codec === 'msgpack') {
    n = scalarLength(v);
  } else {
    throw invalid(field, lens === undefined ? 'must be a Uint8Array'
      : 'must be a Uint8Array, a string with codec utf8, or null, a boolean or a number with codec msgpack');
  }
  if (n > MAX_VALUE_SIZE) throw invalid(field, `${n} bytes, at most ${MAX_VALUE_SIZE}`);
  return 1 + 4 + n;
}

/**
 * UTF-8 byte length of `s`. A lone surrogate is refused rather than replaced by U+FFFD (as
 * TextEncoder would): the peer would store a different key than the one we hold.
 */
function measure(s: unknown, field: string): number {
  if (typeof s !== 'string') throw invalid(field, 'must be a string');
  const len = s.length;
  let n = len;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      n += 1;
    } else if (c < 0xd800 || c > 0xdfff) {
      n += 2;
    } else {
      const d = c <= 0xdbff && i + 1 < len ? s.charCodeAt(i + 1) : 0;
      if (d < 0xdc00 || d > 0xdfff) throw invalid(field, `lone surrogate at index ${i}`);
      n += 2; // 4 bytes for 2 UTF-16 units, already counted 1 each
      i++;
    }
  }
  return n;
}
