/**
 * Decoding: bytes from a peer -> typed packets, through the generated Kaitai parsers. One
 * exception, for speed: valid `batch` bodies are read by `decodeBatchFast`, which declines
 * anything the generated parser would refuse (that parser then decodes it and names the error)
 * and is held to the generated parser's results by conformance/wire/batch-fast.test.ts.
 *
 * Contract (msgpack-javascript's fuzz contract): for any input, `decodePacket` and
 * `decodeMessage` return a value or throw `MalformedPacketError`; nothing else escapes, and the
 * decoder holds no state, so a bad input never affects the next one.
 *
 * Which code a failure gets is decided by the spec, not here: every `valid` rule in spec/*.ksy
 * names its code (`-mccache-error`), collected into generated/error-codes.json. The Kaitai JS
 * runtime 0.11 drops the failing rule's path from its errors, so on failure we re-parse with the
 * debug build (same spec, records per-field offsets) to find which field failed. That costs a
 * second parse on malformed input only.
 */
import { ErrorCode, MalformedPacketError, type MalformedCode } from '../errors';
import { KaitaiStream, streamOf } from './kaitai';
import { Debug, ERROR_RULES, FIELD_TYPES, MccacheDatagram, MccacheMessage, MccacheV0Header, MccacheCommon } from './generated-modules';
import {
  ENTRY_KINDS, FLAG_ENCRYPTED, LEAVE_REASONS, VALUE_CODEC_NAMES, opName,
  type BatchWrite, type EntryKind, type LeaveReason, type Message, type OpName, type Packet, type PacketHeader, type ValueCodec,
} from './packet';

const RULES = new Map(ERROR_RULES.map((r) => [`${r.class}.${r.field}`, r]));
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes one datagram; the message too when the datagram carries a whole plaintext message. */
export function decodePacket(bytes: Uint8Array): Packet {
  let d: MccacheDatagram;
  const io = streamOf(bytes);
  try {
    d = new MccacheDatagram(io);
  } catch (err) {
    throw fastExplain(err, io.pos) ?? explain(err, 'datagram', bytes);
  }
  const op = opName(d.opCode) as OpName; // the spec's `valid` admits only known op codes
  const header: PacketHeader = {
    op,
    flags: d.flags,
    keyId: d.keyId,
    fragIndex: d.fragIndex,
    numFrags: d.numFrags,
    senderId: d.senderId,
    msgSeq: d.msgSeq,
    lenMessage: d.lenMessage,
  };
  // The unencrypted fragment is a view on `bytes` (Kaitai's readBytes does not copy).
  const fragment = (d.flags & FLAG_ENCRYPTED) === 0
    ? (d.fragment as Uint8Array)
    : bytes.subarray(28, 28 + d.lenFragment);
  const packet: Packet = { header, fragment };
  if (header.numFrags === 1 && (header.flags & FLAG_ENCRYPTED) === 0) {
    try {
      packet.message = decodeMessage(op, fragment);
    } catch (err) {
      const e = err as MalformedPacketError;
      throw new MalformedPacketError(e.code, e.message, {
        ...(e.field !== undefined && { field: e.field }),
        ...(e.offset !== undefined && { offset: e.offset + 28 }),
        cause: e.cause,
      });
    }
  }
  return packet;
}

/** Decodes a whole (reassembled, decrypted) message body for `op`. */
export function decodeMessage(op: OpName | number, bytes: Uint8Array): Message {
  const code = typeof op === 'number' ? op : undefined;
  const name = typeof op === 'number' ? opName(op) : op;
  if (name === undefined) {
    throw new MalformedPacketError(ErrorCode.UNKNOWN_OP, `unknown op code ${code}`, { field: 'mccache_datagram.op_code' });
  }
  if (name === 'batch') {
    const fast = decodeBatchFast(bytes);
    if (fast !== undefined) return fast;
  }
  return decodeMessageGenerated(name, bytes);
}

/**
 * decodeMessage through the generated parser alone (no fast path): what `decodeBatchFast` must agree
 * with (conformance/wire/batch-fast.test.ts), and what decides every error.
 */
export function decodeMessageGenerated(name: OpName, bytes: Uint8Array): Message {
  let m: MccacheMessage;
  try {
    m = new MccacheMessage(streamOf(bytes), null, null, opCodeOf(name));
  } catch (err) {
    throw explain(err, 'message', bytes, opCodeOf(name));
  }
  return toMessage(name, m.body as unknown as Body);
}

/**
 * The `batch` body (spec/mccache_message.ksy `batch`, `batch_write`; mccache_common.ksy `name`,
 * `key`, `entry_value`) read directly, for valid input only: anything the spec or the codec
 * would refuse (a short read, a rule broken, invalid UTF-8, trailing bytes) returns undefined,
 * and the generated parser then decodes the same bytes and names the error. So the result is
 * always the generated parser's (a property test holds it to that on valid and mutated batches).
 *
 * Why: batches carry almost every replicated write, and the generated parser builds ~6 objects
 * per write (a write, its key and value types, two byte views, the stream's bigint) plus our
 * typed copy: ~0.9 KB of garbage per write on every receiver. Receivers' young-generation
 * collections are then frequent enough to stand behind most put-to-visible latencies above
 * 1 ms while a cache grows (bench/replication.bench.ts; BENCHMARKS.md). This reads a write
 * into the one object the cache needs, with the key decoded straight from the datagram.
 */
export function decodeBatchFast(bytes: Uint8Array): Message | undefined {
  const end = bytes.length;
  if (end < 3) return undefined;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, end);
  // DataView's getBigUint64 makes one bigint; Buffer's readBigUInt64BE makes four on the way.
  const view = new DataView(bytes.buffer, bytes.byteOffset, end);
  const lenName = buf[0]!;
  let pos = 1 + lenName;
  if (pos + 2 > end) return undefined;
  const cache = utf8At(buf, 1, pos);
  if (cache === undefined) return undefined;
  const n = view.getUint16(pos);
  pos += 2;
  if (n === 0) return undefined;
  const writes: BatchWrite[] = new Array(n);
  for (let i = 0; i < n; i++) {
    // kind u1, key (u2 length + bytes), hlc u8, ttl u4, codec u1, value length u4, value
    if (pos + 3 > end) return undefined;
    const kindNum = buf[pos]!;
    if (kindNum !== 1 && kindNum !== 2) return undefined;
    const lenKey = view.getUint16(pos + 1);
    const keyAt = pos + 3;
    pos = keyAt + lenKey;
    if (pos + 17 > end) return undefined;
    const key = utf8At(buf, keyAt, pos);
    if (key === undefined) return undefined;
    const hlc = view.getBigUint64(pos);
    const ttl = view.getUint32(pos + 8);
    const codecNum = buf[pos + 12]!;
    const lenValue = view.getUint32(pos + 13);
    pos += 17;
    // `valid: expr: _.to_i <= 4` admits exactly the codecs of VALUE_CODEC_NAMES.
    if (codecNum > 4 || lenValue > MAX_VALUE_LENGTH || pos + lenValue > end) return undefined;
    if (kindNum === 2 && (codecNum !== 0 || lenValue !== 0)) return undefined;
    writes[i] = {
      kind: kindNum === 1 ? 'value' : 'tombstone', key, hlc, ttl,
      codec: VALUE_CODEC_NAMES[codecNum]!, value: bytes.subarray(pos, pos + lenValue),
    };
    pos += lenValue;
  }
  if (pos !== end) return undefined;
  return { op: 'batch', cache, writes };
}
/** `entry_value.len_value`'s `valid: max` in spec/mccache_common.ksy. */
const MAX_VALUE_LENGTH = 16704285;

/** UTF-8 text of buf[from, to), or undefined if it is not valid UTF-8 (as `text` would throw). */
function utf8At(buf: Buffer, from: number, to: number): string | undefined {
  let ascii = true;
  for (let i = from; i < to; i++) {
    if (buf[i]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return buf.toString('latin1', from, to);
  try {
    return utf8.decode(buf.subarray(from, to));
  } catch {
    return undefined;
  }
}

export interface PythonV0Header {
  fragIndex: number;
  numFrags: number;
  lenKey: number;
  lenValue: number;
  /** time.time_ns() of the writer. */
  tsm: bigint;
  rcv: number;
  payload: Uint8Array;
}

/** Decodes the 18-byte McCache-for-Python v0 header (recognised only; pickles are never read). */
export function decodePythonV0Header(bytes: Uint8Array): PythonV0Header {
  try {
    const h = new MccacheV0Header(littleEndianStream(bytes));
    return { fragIndex: h.fragIndex, numFrags: h.numFrags, lenKey: h.lenKey, lenValue: h.lenValue, tsm: h.tsm, rcv: h.rcv, payload: h.payload };
  } catch (err) {
    throw explain(err, 'v0', bytes);
  }
}

/** Which protocol a datagram claims to speak, from its first bytes only. */
export function sniffProtocol(bytes: Uint8Array): 'v1' | 'python-v0' | 'unknown' {
  if (bytes.length >= 2 && bytes[0] === 0x4d && bytes[1] === 0x43) return 'v1';
  if (bytes.length >= 1 && bytes[0] === 0xf9) return 'python-v0';
  return 'unknown';
}

function littleEndianStream(bytes: Uint8Array): KaitaiStream {
  return streamOf(bytes); // BigIntKaitaiStream reads u8le as bigint too
}

// ---------------------------------------------------------------------------------------------
// Kaitai tree -> typed message

type Body = Record<string, unknown>;
interface KName { name: Uint8Array }
interface KKey { key: Uint8Array }
interface KValue { valueCodec: number; value: Uint8Array }

const OP_NUM: Record<OpName, number> = {
  put: 0x01, delete: 0x02, clear: 0x03, sync_entries: 0x04, metrics_request: 0x05, metrics_reply: 0x06,
  checksum_request: 0x07, checksum_reply: 0x08, batch: 0x09, join: 0x40, leave: 0x41, heartbeat: 0x42, nak: 0x43,
  ack: 0x44, sync_digest: 0x45, sync_request: 0x46,
};
function opCodeOf(name: OpName): number {
  return OP_NUM[name];
}

const KIND_BY_NUM = invert(ENTRY_KINDS);
const REASON_BY_NUM = invert(LEAVE_REASONS);
function invert<K extends string>(o: Record<K, number>): Map<number, K> {
  return new Map(Object.entries(o).map(([k, v]) => [v as number, k as K]));
}

function text(bytes: Uint8Array, field: string): string {
  try {
    return utf8.decode(bytes);
  } catch (cause) {
    throw new MalformedPacketError(ErrorCode.INVALID_FIELD, `${field} is not valid UTF-8`, { field, cause });
  }
}
const nameOf = (n: unknown) => text((n as KName).name, 'mccache_common.name');
const keyOf = (k: unknown) => text((k as KKey).key, 'mccache_common.key');
const codecOf = (v: unknown) => VALUE_CODEC_NAMES[(v as KValue).valueCodec] as ValueCodec;

function toMessage(op: OpName, b: Body): Message {
  switch (op) {
    case 'put':
      return { op, cache: nameOf(b.cache), key: keyOf(b.key), hlc: b.hlc as bigint, ttl: b.ttl as number,
        codec: codecOf(b.value), value: (b.value as KValue).value };
    case 'delete':
      return { op, cache: nameOf(b.cache), key: keyOf(b.key), hlc: b.hlc as bigint };
    case 'clear':
      return { op, cache: nameOf(b.cache), hlc: b.hlc as bigint };
    case 'sync_entries':
      return {
        op, cache: nameOf(b.cache), replyTo: b.replyTo as bigint,
        entries: (b.entries as Body[]).map((e) => ({
          key: keyOf(e.key), hlc: e.hlc as bigint, originId: e.originId as bigint,
          kind: KIND_BY_NUM.get(e.kind as number) as EntryKind, ttl: e.ttl as number,
          codec: codecOf(e.value), value: (e.value as KValue).value,
        })),
      };
    case 'batch':
      return {
        op, cache: nameOf(b.cache),
        writes: (b.writes as Body[]).map((w) => ({
          kind: KIND_BY_NUM.get(w.kind as number) as EntryKind, key: keyOf(w.key), hlc: w.hlc as bigint,
          ttl: w.ttl as number, codec: codecOf(w.value), value: (w.value as KValue).value,
        })),
      };
    case 'metrics_request':
      return { op, target: b.target as bigint };
    case 'metrics_reply':
      return { op, requestSender: b.requestSender as bigint, requestSeq: b.requestSeq as number,
        codec: codecOf(b.report), report: (b.report as KValue).value };
    case 'checksum_request':
      return { op, target: b.target as bigint, cache: nameOf(b.cache) };
    case 'checksum_reply':
      return { op, requestSender: b.requestSender as bigint, requestSeq: b.requestSeq as number,
        cache: nameOf(b.cache), numEntries: b.numEntries as number, checksum: b.checksum as Uint8Array };
    case 'join':
      return { op, heartbeatInterval: b.heartbeatInterval as number, packetMtu: b.packetMtu as number,
        pid: b.pid as number, host: nameOf(b.host) };
    case 'leave':
      return { op, reason: REASON_BY_NUM.get(b.reason as number) as LeaveReason };
    case 'heartbeat':
      return { op, heartbeatInterval: b.heartbeatInterval as number, numMembers: b.numMembers as number, lowSeq: b.lowSeq as number };
    case 'nak':
      return {
        op, target: b.target as bigint,
        ranges: (b.ranges as Body[]).map((r) => ({ first: r.first as number, last: r.last as number })),
        partials: (b.partials as Body[]).map((p) => ({
          msgSeq: p.msgSeq as number, numFrags: p.numFrags as number,
          missing: bitmapToIndexes(p.missing as Uint8Array, p.numFrags as number),
        })),
      };
    case 'ack':
      return { op, entries: (b.entries as Body[]).map((e) => ({ senderId: e.senderId as bigint, deliveredSeq: e.deliveredSeq as number })) };
    case 'sync_digest':
      return { op, cache: nameOf(b.cache), numEntries: b.numEntries as number, clearHlc: b.clearHlc as bigint, clearOrigin: b.clearOrigin as bigint, numBuckets: b.numBuckets as number,
        firstBucket: b.firstBucket as number, hashes: b.hashes as bigint[] };
    case 'sync_request':
      return { op, target: b.target as bigint, cache: nameOf(b.cache), numBuckets: b.numBuckets as number,
        bucketIds: b.bucketIds as number[] };
  }
}

/** Bit 7 of byte 0 is fragment 0 (spec/mccache_message.ksy `partial.missing`). */
export function bitmapToIndexes(bitmap: Uint8Array, numFrags: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < numFrags; i++) {
    if ((bitmap[i >> 3]! >> (7 - (i & 7))) & 1) out.push(i);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Failure -> stable code

/**
 * Fast path for the header, where garbage fails: the header's leading fields have fixed sizes
 * (generated/fields.json), and a `valid` rule is checked right after its field is read, so the
 * stream position at the throw names the field. A flood of garbage then costs about as much as
 * valid traffic instead of a debug re-parse per datagram. Anything else takes the slow path.
 */
const HEADER_RULE_AT_END = headerRules();
function headerRules(): Map<number, { field: string; start: number; code: string }> {
  const sizes: Record<string, number> = { u1: 1, u2: 2, u4: 4, u8: 8 };
  const out = new Map<number, { field: string; start: number; code: string }>();
  const t = FIELD_TYPES.find((x) => x.spec === 'mccache_datagram' && x.type === 'mccache_datagram');
  let pos = 0;
  for (const f of t?.seq ?? []) {
    const n = sizes[f.type];
    if (n === undefined) break;
    const rule = RULES.get(`MccacheDatagram.${f.id}`);
    if (rule) out.set(pos + n, { field: f.id, start: pos, code: rule.code });
    pos += n;
  }
  return out;
}
function fastExplain(err: unknown, pos: number): MalformedPacketError | undefined {
  if (err instanceof KaitaiStream.EOFError) {
    if (pos >= 28) return undefined; // inside the fragment: let the slow path name the field
    return new MalformedPacketError(ErrorCode.TRUNCATED, `truncated: the 28-byte header ends after ${pos} byte(s)`, { cause: err });
  }
  const name = (err as { name?: unknown } | null)?.name;
  if (typeof name !== 'string' || !name.startsWith('Validation')) return undefined;
  const rule = HEADER_RULE_AT_END.get(pos);
  if (!rule) return undefined;
  return new MalformedPacketError(rule.code as MalformedCode,
    `mccache_datagram.${rule.field} at offset ${rule.start}: value ${describe((err as { actual?: unknown }).actual)} breaks its rule`,
    { field: `mccache_datagram.${rule.field}`, offset: rule.start, cause: err });
}

type TreeKind = 'datagram' | 'message' | 'v0';
interface Failure { path: string[]; className: string; field: string; offset: number | undefined }

function explain(err: unknown, kind: TreeKind, bytes: Uint8Array, op?: number): MalformedPacketError {
  const failure = locateFailure(kind, bytes, op);
  const where = failure ? `${failure.path.join('.')} at offset ${failure.offset ?? '?'}` : 'unknown field';
  const details = {
    cause: err,
    ...(failure && { field: `${snake(failure.className)}.${snake(failure.field)}` }),
    ...(failure?.offset !== undefined && { offset: failure.offset }),
  };
  if (err instanceof KaitaiStream.EOFError) {
    return new MalformedPacketError(ErrorCode.TRUNCATED, `truncated: ${where} needs more bytes than the ${bytes.length} given`, details);
  }
  const name = (err as { name?: unknown } | null)?.name;
  if (typeof name === 'string' && name.startsWith('Validation') && failure) {
    const rule = RULES.get(`${failure.className}.${snake(failure.field)}`);
    if (rule) {
      const actual = (err as { actual?: unknown }).actual;
      return new MalformedPacketError(rule.code as MalformedCode,
        `${where}: value ${describe(actual)} breaks the rule of ${rule.spec} ${rule.srcPath}`, details);
    }
  }
  return new MalformedPacketError(ErrorCode.MALFORMED, `malformed: ${where}: ${String((err as Error)?.message ?? err)}`, details);
}

interface DebugEntry { start?: number; end?: number; validationError?: unknown; arr?: DebugEntry[] }
type DebugObject = Record<string, unknown> & { _debug: Record<string, DebugEntry> };

/** Re-parses with the debug build and walks to the field being read when parsing stopped. */
function locateFailure(kind: TreeKind, bytes: Uint8Array, op?: number): Failure | undefined {
  let rootObj: DebugObject;
  try {
    const io = kind === 'v0' ? littleEndianStream(bytes) : streamOf(bytes);
    rootObj = (kind === 'datagram' ? new Debug.MccacheDatagram(io)
      : kind === 'message' ? new Debug.MccacheMessage(io, null, null, op as number)
        : new Debug.MccacheV0Header(io)) as unknown as DebugObject;
  } catch {
    return undefined;
  }
  try {
    (rootObj as unknown as { _read(): void })._read();
    return undefined; // the debug build accepted it: cannot explain
  } catch {
    // expected: walk below
  }
  const path: string[] = [snake(rootObj.constructor.name)];
  let obj: DebugObject = rootObj;
  for (let depth = 0; depth < 64; depth++) {
    const keys = Object.keys(obj._debug).filter((k) => !k.startsWith('_m_')); // skip lazily read instances
    const field = keys[keys.length - 1];
    if (field === undefined) return undefined;
    const entry = obj._debug[field]!;
    path.push(snake(field));
    const base = ((entry as { ioOffset?: number }).ioOffset ?? bytes.byteOffset) - bytes.byteOffset;
    const here = entry.start === undefined ? undefined : base + entry.start;
    if (entry.validationError !== undefined || entry.end === undefined && !isDebugObject(obj[field]) && !Array.isArray(obj[field])) {
      return { path, className: obj.constructor.name, field, offset: here };
    }
    let next: unknown = obj[field];
    if (Array.isArray(next)) {
      path.push(String(next.length - 1));
      next = next[next.length - 1];
    }
    if (!isDebugObject(next) || entry.end !== undefined) return { path, className: obj.constructor.name, field, offset: here };
    obj = next;
  }
  return undefined;
}

function isDebugObject(v: unknown): v is DebugObject {
  return typeof v === 'object' && v !== null && '_debug' in v;
}

/** `numFrags` -> `num_frags`, `MccacheDatagram` -> `mccache_datagram` (the .ksy ids). */
export function snake(camel: string): string {
  return camel.replace(/^[A-Z]/, (c) => c.toLowerCase()).replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

function describe(v: unknown): string {
  if (v instanceof Uint8Array) return `${v.length} byte(s)`;
  return typeof v === 'bigint' ? `${v}n` : String(v);
}

// Keep the generated namespace referenced so its typings are checked with the codec.
export type { MccacheCommon };
