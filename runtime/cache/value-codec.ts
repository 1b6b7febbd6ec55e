/**
 * Cache values <-> bytes on the wire, with the codec tag of `entry_value.value_codec`
 * (spec/mccache_common.ksy; DESIGN.md §3: a standard cross-language format, never
 * `v8.serialize` or anything that runs code).
 *
 *   Uint8Array (and Buffer)  -> 'bytes'    the bytes as they are
 *   string                   -> 'utf8'     UTF-8
 *   anything else            -> 'msgpack'  MessagePack (@msgpack/msgpack), see below
 *
 * Why MessagePack through @msgpack/msgpack: bench/value-codec.bench.ts, one run on the project's
 * 2-core x64 machine, Node 20.20.2 (V8 11.3); encode+decode round trips per second, encoded
 * size; "lossy" = the decoded value differs from the input:
 *
 *   value               JSON            encodeValue     bare lib       msgpackr       cbor-x         cbor2
 *   small object        589k/s 115 B    317k/s  91 B    488k/s  91 B   845k/s  93 B   719k/s  93 B   3.8k/s  91 B
 *   10 KB object        10.5k/s 9760 B  6.9k/s 6631 B   9.8k/s 6631 B  12.2k/s 6933 B 11.6k/s 7036 B 43/s  6734 B
 *   1000 numbers        38.6k/s 4451 B  29.2k/s 2583 B  39.6k/s 2583 B 58.2k/s 2583 B 31.9k/s 2697 B 3.8k/s 2697 B
 *   100 short strings   118k/s 1791 B   38.1k/s 1593 B  42.5k/s 1593 B 113k/s 1593 B  47.4k/s 1592 B 6.9k/s 1592 B
 *   Date                734k/s lossy    759k/s  10 B    848k/s  10 B   1.9M/s  10 B   1.9M/s  10 B   13k/s  10 B
 *   {bigint, bigint}    unsupported     860k/s  23 B    1.14M/s 23 B   1.64M/s 25 B   740k/s  25 B   7.8k/s lossy
 *   Map of 100 entries  lossy ({})      29.9k/s 497 B   lossy ({})     lossy (object) 29.6k/s 571 B  lossy
 *
 * ("bare lib" is @msgpack/msgpack without our checks, limits and Map/Set exts: those cost
 * 10-35%, i.e. 1-25 us on these values, next to a network round trip.)
 * - msgpackr and cbor-x are up to 2x faster, but their decoders build object readers with
 *   `new Function` from keys found in the input (record structures): code generated from a
 *   peer's bytes, which DESIGN.md §3 rules out; they also pull in native add-ons.
 * - cbor2 is careful and standard but about 100x slower here.
 * - @msgpack/msgpack is the MessagePack organisation's own TypeScript implementation: pure
 *   JavaScript, a non-recursive decoder, documented length limits, fuzzed upstream, and the
 *   codec STYLE.md names as a model. It is within 1.5x of JSON with 25-40% fewer bytes, and
 *   the wire tag is already 'msgpack' (VALUE_CODECS.msgpack = 3).
 *
 * MessagePack mapping (what a port in another language must do; ext type numbers are ours):
 *   null, boolean, number (float 64 unless a safe integer in int32/uint32 range), string (str),
 *   Uint8Array (bin), Array (array), plain object (map with str keys), Date (timestamp ext -1,
 *   millisecond precision), bigint (int 64 / uint 64; always a bigint on decode, so a bigint
 *   and a number never swap types), Map (ext 1: an array k0, v0, k1, v1, ...), Set (ext 2: an
 *   array of the members).
 *
 * Decisions:
 * - `undefined` as a whole value is refused (MCCACHE_ERR_INVALID_ARGUMENT): lru-cache, whose
 *   semantics the cache follows, treats `set(key, undefined)` as `delete(key)`, so the cache
 *   layer never encodes it. Nested `undefined` follows JSON: an object property whose value is
 *   undefined is left out; in an array, Map or Set it becomes null.
 * - Refused with MCCACHE_ERR_INVALID_ARGUMENT, naming the path of the bad part: functions,
 *   symbols, class instances other than Date/Map/Set/Uint8Array (a peer would get a plain
 *   object, so its copy would differ from the writer's), typed arrays other than Uint8Array,
 *   invalid Dates, bigints outside int64/uint64, strings with lone surrogates (UTF-8 cannot
 *   carry them), an own property named `__proto__` (MessagePack decoders refuse it), cycles and
 *   nesting deeper than MAX_VALUE_DEPTH. A shared (non-cyclic) sub-object is encoded twice.
 * - -0 is encoded as the integer 0, as JSON and other MessagePack encoders do.
 * - 'bytes' decode to a fresh Uint8Array (not a Buffer: the wire value is the same for every
 *   language, and a Buffer user wraps it for free with Buffer.from(u.buffer, u.byteOffset,
 *   u.length)). Byte arrays nested in a msgpack value are views of one private copy of the
 *   message, never of the caller's (possibly reused) receive buffer.
 * - Decoding a peer's bytes throws only MalformedPacketError MCCACHE_ERR_INVALID_FIELD (field
 *   `entry_value.value`), whatever is wrong, and never anything else (fuzzed in
 *   conformance/cache/value-codec.test.ts). Before the library sees the bytes, `scan` walks
 *   the structure once to enforce the limits: nesting at most MAX_VALUE_DEPTH, every length or
 *   count within the bytes that remain, only the ext types above.
 * - @msgpack/msgpack 3.1.3 decodes strings with `new TextDecoder()`, which drops a leading
 *   U+FEFF, for strings over 200 bytes (and object keys). When `scan` sees any string that
 *   starts with U+FEFF it decodes on a slower path that keeps it (see `decodeKeepingBom`).
 */
import {
  Decoder,
  type DecoderOptions,
  Encoder,
  ExtensionCodec,
  decodeTimestampToTimeSpec,
  encodeTimestampExtension,
} from '@msgpack/msgpack';
import { ErrorCode, MalformedPacketError, McCacheError } from '../errors';
import { isScalar, scalarLength, writeScalar, type Scalar } from '../codec/msgpack-scalar';
import { isWellFormed } from '../codec/utf8';

declare global {
  /**
   * The DOM's BufferSource, which @msgpack/msgpack 3.1.3's .d.ts files name but neither lib
   * ES2022 nor @types/node 20 declares (skipLibCheck is off). Drop this if "DOM" joins `lib`.
   */
  type BufferSource = ArrayBufferView | ArrayBuffer;
}

/** The codecs this module writes. */
export type EncodedCodec = 'bytes' | 'utf8' | 'msgpack';

export interface EncodedValue {
  codec: EncodedCodec;
  bytes: Uint8Array;
}

/**
 * Deepest nesting of containers (arrays, objects, Maps, Sets) in a value, on encode and on
 * decode: the top-level container is depth 1. 100 is @msgpack/msgpack's own encoder default;
 * a cached value nested deeper is almost surely a mistake, and the bound keeps recursive
 * consumers of decoded values (ours and the application's) far from the stack limit.
 */
export const MAX_VALUE_DEPTH = 100;

/** MessagePack ext type of a JavaScript Map: payload = array [k0, v0, k1, v1, ...]. */
export const EXT_MAP = 1;
/** MessagePack ext type of a JavaScript Set: payload = array of the members. */
export const EXT_SET = 2;
/** MessagePack's predefined timestamp ext type. */
const EXT_TIMESTAMP = -1;

const FIELD = 'entry_value.value';
const MIN_INT64 = -(2n ** 63n);
const MAX_UINT64 = 2n ** 64n - 1n;
/** Dates are milliseconds within +-8.64e15 (ECMA-262 §21.4.1.1). */
const MAX_DATE_MS = 8.64e15;

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const lenientUtf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true });

// ---------------------------------------------------------------------------------------------
// Encode

/**
 * UTF-8 of a well-formed string. Short ASCII strings, the usual cache value, are copied by a
 * loop: measured with callgrind, Buffer.from costs ~1,400 instructions for a 12-character
 * string, about three times a whole lru-cache set.
 */
export function encodeUtf8(s: string): Uint8Array {
  const n = s.length;
  if (n <= 64) {
    const b = new Uint8Array(n);
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      b[i] = c;
    }
    if (i === n) return b;
  }
  return Buffer.from(s, 'utf8');
}

// ---------------------------------------------------------------------------------------------
// Scalars: null, booleans and numbers, without the MessagePack library

// null, booleans and numbers: runtime/codec/msgpack-scalar.ts (the wire encoder writes them too).
// Imported from there, not re-exported: with a re-export (TypeScript compiles it to a getter
// on this module's exports) every cache `set` measured slower, 0.28-0.33x lru-cache against 0.35x.
const f64 = new DataView(new ArrayBuffer(8));

/** The MessagePack encoding of `v`: a fresh Uint8Array equal to encodeValue(v).bytes. */
export function encodeScalar(v: Scalar): Uint8Array {
  const out = new Uint8Array(scalarLength(v));
  writeScalar(v, out, 0);
  return out;
}

/** Are `bytes` exactly encodeValue(v).bytes? (Without allocating.) */
export function isScalarEncoding(v: Scalar, bytes: Uint8Array): boolean {
  const n = scalarLength(v);
  if (bytes.length !== n) return false;
  const t = scratch9;
  writeScalar(v, t, 0);
  for (let i = 0; i < n; i++) if (t[i] !== bytes[i]) return false;
  return true;
}
const scratch9 = new Uint8Array(9);

/** decodeScalar's answer for bytes that are not one whole scalar token. */
export const NOT_SCALAR: unique symbol = Symbol('not a scalar');

/**
 * The scalar that `bytes` encode when they are exactly one nil, boolean, fixint, uint/int
 * 8/16/32 or float 32/64 token, as the library decodes it; NOT_SCALAR otherwise (anything else
 * goes through the library, which also judges malformed input).
 */
export function decodeScalar(bytes: Uint8Array): Scalar | typeof NOT_SCALAR {
  const n = bytes.length;
  if (n === 0) return NOT_SCALAR;
  const b = bytes[0]!;
  if (n === 1) {
    if (b < 0x80) return b;
    if (b >= 0xe0) return b - 0x100;
    return b === 0xc0 ? null : b === 0xc2 ? false : b === 0xc3 ? true : NOT_SCALAR;
  }
  switch (b) {
    case 0xcc: return n === 2 ? bytes[1]! : NOT_SCALAR;
    case 0xcd: return n === 3 ? (bytes[1]! << 8) | bytes[2]! : NOT_SCALAR;
    case 0xce: return n === 5 ? ((bytes[1]! << 24) | (bytes[2]! << 16) | (bytes[3]! << 8) | bytes[4]!) >>> 0 : NOT_SCALAR;
    case 0xd0: return n === 2 ? (bytes[1]! << 24) >> 24 : NOT_SCALAR;
    case 0xd1: return n === 3 ? (((bytes[1]! << 8) | bytes[2]!) << 16) >> 16 : NOT_SCALAR;
    case 0xd2: return n === 5 ? (bytes[1]! << 24) | (bytes[2]! << 16) | (bytes[3]! << 8) | bytes[4]! : NOT_SCALAR;
    case 0xca:
      if (n !== 5) return NOT_SCALAR;
      for (let i = 0; i < 4; i++) f64.setUint8(i, bytes[1 + i]!);
      return f64.getFloat32(0);
    case 0xcb:
      if (n !== 9) return NOT_SCALAR;
      for (let i = 0; i < 8; i++) f64.setUint8(i, bytes[1 + i]!);
      return f64.getFloat64(0);
    default:
      return NOT_SCALAR;
  }
}

/** Throws what encodeValue throws for a string UTF-8 cannot carry. */
export function checkString(value: string): void {
  if (!isWellFormed(value)) throw invalidArgument('value', 'is a string with a lone surrogate, which UTF-8 cannot carry');
}

/**
 * Encodes a cache value. Throws McCacheError MCCACHE_ERR_INVALID_ARGUMENT (nothing else) for a
 * value it cannot carry faithfully; see the module comment for the rules.
 */
export function encodeValue(value: unknown): EncodedValue {
  if (isScalar(value)) return { codec: 'msgpack', bytes: encodeScalar(value) };
  if (value instanceof Uint8Array) return { codec: 'bytes', bytes: new Uint8Array(value) }; // a snapshot, like every other value
  if (typeof value === 'string') {
    checkString(value);
    return { codec: 'utf8', bytes: encodeUtf8(value) };
  }
  if (value === undefined) {
    throw invalidArgument('value', 'is undefined: the cache treats set(key, undefined) as delete(key), as lru-cache does');
  }
  try {
    sawUndefinedProperty = false;
    checkEncodable(value, 0, [], []);
    return { codec: 'msgpack', bytes: (sawUndefinedProperty ? undefinedDroppingEncoder : encoder).encode(value) };
  } catch (cause) {
    if (cause instanceof McCacheError) throw cause;
    // The application's own code failed inside the value: a getter or a Proxy trap that throws.
    throw new McCacheError(ErrorCode.INVALID_ARGUMENT, `value cannot be read: ${String(cause)}`, { cause });
  }
}

/** A step of the path to a part of a value: an array index, a property name, or a Map/Set slot. */
type Step = number | string | { slot: string };

function pathText(path: Step[]): string {
  let text = 'value';
  for (const s of path) text += typeof s === 'number' ? `[${s}]` : typeof s === 'string' ? `.${s}` : `<${s.slot}>`;
  return text;
}

/**
 * Walks `v` once and throws on anything the MessagePack mapping cannot round-trip. `ancestors`
 * holds the containers on the path (cycle detection); `path` names the part for the error
 * (kept as raw steps: text is only built for an error).
 */
function checkEncodable(v: unknown, depth: number, ancestors: object[], path: Step[]): void {
  switch (typeof v) {
    case 'undefined':
    case 'boolean':
    case 'number':
      return;
    case 'string':
      if (!isWellFormed(v)) throw invalidArgument(pathText(path), 'is a string with a lone surrogate, which UTF-8 cannot carry');
      return;
    case 'bigint':
      if (v < MIN_INT64 || v > MAX_UINT64) {
        throw invalidArgument(pathText(path), 'is a bigint outside -(2^63)..2^64-1 (MessagePack int 64 / uint 64)');
      }
      return;
    case 'symbol':
    case 'function':
      throw invalidArgument(pathText(path), `is a ${typeof v}, which has no portable encoding`);
    default:
      break;
  }
  if (v === null) return;
  const o = v as object;
  // Plain objects and arrays first: they are most of what is cached.
  const proto: unknown = Object.getPrototypeOf(o);
  let isArray = false;
  let isMap = false;
  let isSet = false;
  if (proto !== Object.prototype && proto !== null) {
    if (Array.isArray(o)) {
      isArray = true;
    } else if (o instanceof Uint8Array) {
      return;
    } else if (o instanceof Date) {
      if (Number.isNaN(o.getTime())) throw invalidArgument(pathText(path), 'is an invalid Date');
      return;
    } else if (ArrayBuffer.isView(o) || o instanceof ArrayBuffer) {
      throw invalidArgument(pathText(path), `is a typed array or buffer (${o.constructor.name}); only Uint8Array travels as bytes`);
    } else if (o instanceof Map) {
      isMap = true;
    } else if (o instanceof Set) {
      isSet = true;
    } else {
      const name = (o as { constructor?: { name?: unknown } }).constructor?.name;
      throw invalidArgument(pathText(path),
        `is an instance of ${typeof name === 'string' && name ? name : 'a class'}; peers would get a plain object, so store a plain object, array, Map, Set, Date or Uint8Array`);
    }
  }
  if (ancestors.includes(o)) throw invalidArgument(pathText(path), 'refers back to one of its containers (a cycle)');
  if (depth + 1 > MAX_VALUE_DEPTH) throw invalidArgument(pathText(path), `nests containers deeper than ${MAX_VALUE_DEPTH}`);
  ancestors.push(o); // a stack, not a Set: at most MAX_VALUE_DEPTH long and cheaper to keep
  if (isArray) {
    const a = o as unknown[];
    for (let i = 0; i < a.length; i++) {
      const x = a[i];
      if (isPlainScalar(x)) continue; // the common case, without a call
      path.push(i);
      checkEncodable(x, depth + 1, ancestors, path);
      path.pop();
    }
  } else if (isMap) {
    let i = 0;
    for (const [k, val] of o as Map<unknown, unknown>) {
      path.push({ slot: `key ${i}` });
      checkEncodable(k, depth + 1, ancestors, path);
      path.pop();
      path.push({ slot: `value ${i}` });
      checkEncodable(val, depth + 1, ancestors, path);
      path.pop();
      i++;
    }
  } else if (isSet) {
    let i = 0;
    for (const m of o as Set<unknown>) {
      path.push({ slot: `member ${i++}` });
      checkEncodable(m, depth + 1, ancestors, path);
      path.pop();
    }
  } else {
    const rec = o as Record<string, unknown>;
    for (const k of Object.keys(rec)) {
      if (k === '__proto__') throw invalidArgument(pathText(path), 'has an own property named __proto__, which MessagePack decoders refuse');
      if (!isWellFormed(k)) throw invalidArgument(pathText(path), 'has a property name with a lone surrogate, which UTF-8 cannot carry');
      const x = rec[k];
      if (x === undefined) sawUndefinedProperty = true;
      if (isPlainScalar(x)) continue;
      path.push(k);
      checkEncodable(x, depth + 1, ancestors, path);
      path.pop();
    }
  }
  ancestors.pop();
}

/**
 * Set by checkEncodable when an object property holds undefined: only then is the encoder that
 * drops such properties needed (it counts every object's keys twice, about 6% slower).
 */
let sawUndefinedProperty = false;

/** Values that need no check: numbers, booleans, null, undefined. */
function isPlainScalar(x: unknown): boolean {
  const t = typeof x;
  return t === 'number' || t === 'boolean' || x == null;
}

function invalidArgument(where: string, problem: string): McCacheError {
  return new McCacheError(ErrorCode.INVALID_ARGUMENT, `${where} ${problem}`);
}

// ---------------------------------------------------------------------------------------------
// The MessagePack codec: one extension table for both directions. The context carries the
// Decoder to use for ext payloads, so the BOM-keeping path decodes nested values the same way.

interface CodecContext {
  decode(bytes: Uint8Array): unknown;
}

const extensions = new ExtensionCodec<CodecContext>();
extensions.register({
  type: EXT_TIMESTAMP,
  encode: (input) => encodeTimestampExtension(input),
  decode: (data) => {
    // The library's own decoder accepts nanoseconds >= 1e9 and times no Date can hold.
    const { sec, nsec } = decodeTimestampToTimeSpec(data);
    const ms = sec * 1e3 + nsec / 1e6;
    if (nsec > 999_999_999 || !(Math.abs(ms) <= MAX_DATE_MS)) throw new RangeError('timestamp out of range');
    return new Date(ms);
  },
});
extensions.register({
  type: EXT_MAP,
  encode: (input) => {
    if (!(input instanceof Map)) return null;
    const flat: unknown[] = [];
    for (const [k, v] of input) flat.push(k, v);
    return encodePayload(flat);
  },
  decode: (data, _type, ctx) => {
    const flat = ctx.decode(data);
    if (!Array.isArray(flat) || flat.length % 2 !== 0) throw new RangeError('Map ext payload is not an even-length array');
    const m = new Map<unknown, unknown>();
    for (let i = 0; i < flat.length; i += 2) m.set(flat[i], flat[i + 1]);
    return m;
  },
});
extensions.register({
  type: EXT_SET,
  encode: (input) => (input instanceof Set ? encodePayload([...input]) : null),
  decode: (data, _type, ctx) => {
    const members = ctx.decode(data);
    if (!Array.isArray(members)) throw new RangeError('Set ext payload is not an array');
    return new Set(members);
  },
});

const encoderOptions = {
  extensionCodec: extensions,
  context: { decode: () => undefined },
  useBigInt64: true,
  ignoreUndefined: true, // JSON's rule for object properties; see sawUndefinedProperty
  // checkEncodable enforces MAX_VALUE_DEPTH; Map and Set payloads restart the library's count.
  maxDepth: MAX_VALUE_DEPTH + 1,
};
const undefinedDroppingEncoder = new Encoder<CodecContext>(encoderOptions);
const encoder = new Encoder<CodecContext>({ ...encoderOptions, ignoreUndefined: false });

// The library's encoders and decoders are re-entrant by cloning themselves (a new instance and
// buffer per nested Map or Set); one instance per nesting level, reused, is about 3x faster
// for a Map. `encode`/`decode` return fresh values, so reuse shares nothing.
const payloadEncoders: Encoder<CodecContext>[] = [];
let payloadLevel = 0;
function encodePayload(items: unknown[]): Uint8Array {
  const enc = (payloadEncoders[payloadLevel] ??= new Encoder<CodecContext>(encoderOptions));
  payloadLevel++;
  try {
    return enc.encode(items);
  } finally {
    payloadLevel--;
  }
}

/** A context whose `decode` takes a decoder with `options` per nesting level. */
function pooledContext(options: Omit<DecoderOptions<CodecContext>, 'context'>): CodecContext {
  const pool: Decoder<CodecContext>[] = [];
  let level = 0;
  const context: CodecContext = {
    decode: (b) => {
      const dec = (pool[level] ??= new Decoder<CodecContext>({ ...options, context }));
      level++;
      try {
        return dec.decode(b);
      } finally {
        level--;
      }
    },
  };
  return context;
}

// The max*Length bounds are a second line behind `scan`, which already holds every length to
// the bytes that remain.
const MAX_LEN = 0xffff_ffff;
const decoderOptions = {
  extensionCodec: extensions,
  useBigInt64: true,
  maxStrLength: MAX_LEN,
  maxBinLength: MAX_LEN,
  maxArrayLength: MAX_LEN,
  maxMapLength: MAX_LEN,
  maxExtLength: MAX_LEN,
} as const;

const fastDecoder = pooledContext(decoderOptions);

// ---------------------------------------------------------------------------------------------
// Decode

/**
 * Decodes a value a peer sent with `codec`. Throws only MalformedPacketError
 * MCCACHE_ERR_INVALID_FIELD (field `entry_value.value`): an unknown or unsupported codec
 * ('none' and 'json' included: this node never writes them), invalid UTF-8, or any MessagePack
 * that is malformed, exceeds the limits or uses an ext type other than timestamp, Map and Set.
 */
export function decodeValue(codec: string, bytes: Uint8Array): unknown {
  switch (codec) {
    case 'bytes':
      return new Uint8Array(bytes);
    case 'utf8':
      try {
        return utf8Decoder.decode(bytes);
      } catch (cause) {
        throw malformed('utf8 value is not valid UTF-8', cause);
      }
    case 'msgpack': {
      const v = decodeScalar(bytes);
      return v !== NOT_SCALAR ? v : decodeMsgpack(bytes);
    }
    default:
      throw malformed(`value codec ${JSON.stringify(String(codec)).slice(0, 40)} is not one this node decodes (bytes, utf8, msgpack)`);
  }
}

function decodeMsgpack(input: Uint8Array): unknown {
  // A private copy: decoded byte arrays are views of it, so they never alias the caller's buffer.
  const bytes = new Uint8Array(input);
  const found: ScanResult = { bomString: false, strOffsets: undefined };
  try {
    scan(bytes, 0, bytes.length, 0, false, found);
  } catch (cause) {
    if (cause instanceof MalformedPacketError) throw cause;
    throw malformed(`msgpack value is malformed: ${String(cause)}`, cause);
  }
  try {
    return found.bomString ? decodeKeepingBom(bytes) : fastDecoder.decode(bytes);
  } catch (cause) {
    throw malformed(`msgpack value is malformed: ${String(cause)}`, cause);
  }
}

function malformed(message: string, cause?: unknown): MalformedPacketError {
  return new MalformedPacketError(ErrorCode.INVALID_FIELD, message, { field: FIELD, cause });
}

interface ScanResult {
  /** Some str starts with EF BB BF (U+FEFF). */
  bomString: boolean;
  /** When set, collects the byte offset of every str payload. */
  strOffsets: Set<number> | undefined;
}

class ScanError extends Error {}
function fail(why: string, at: number): never {
  throw new ScanError(`${why} at byte ${at}`);
}

/**
 * Checks that bytes[start, end) hold exactly one MessagePack object within our limits, without
 * building it: containers nest at most MAX_VALUE_DEPTH (counting `depth` already open around
 * it), each length fits in the bytes that remain, each container count is at most the bytes
 * that remain (every item takes a byte at least), ext types are timestamp (4, 8 or 12 bytes),
 * Map or Set, whose payloads (`mustBeArray`) are scanned the same way. Iterative except for ext
 * payloads, whose recursion the depth bound limits.
 */
function scan(b: Uint8Array, start: number, end: number, depth: number, mustBeArray: boolean, out: ScanResult): void {
  const open: number[] = []; // items still due in each open container
  let pos = start;
  for (;;) {
    if (pos >= end) fail('truncated', pos);
    const h = b[pos]!;
    let head = 1; // bytes of the header
    let len = 0; // bytes of payload after the header
    let items = -1; // >= 0: a container with this many items
    let ext: number | undefined;
    let isStr = false;
    if (h <= 0x7f || h >= 0xe0) {
      // fixint
    } else if (h <= 0x8f) {
      items = (h & 0x0f) * 2;
    } else if (h <= 0x9f) {
      items = h & 0x0f;
    } else if (h <= 0xbf) {
      len = h & 0x1f;
      isStr = true;
    } else {
      switch (h) {
        case 0xc0: case 0xc2: case 0xc3: break;
        case 0xc1: fail('never-used byte 0xc1', pos);
        case 0xc4: head = 2; len = uint(b, pos + 1, 1, end); break;
        case 0xc5: head = 3; len = uint(b, pos + 1, 2, end); break;
        case 0xc6: head = 5; len = uint(b, pos + 1, 4, end); break;
        case 0xc7: head = 3; len = uint(b, pos + 1, 1, end); ext = int8(b, pos + 2, end); break;
        case 0xc8: head = 4; len = uint(b, pos + 1, 2, end); ext = int8(b, pos + 3, end); break;
        case 0xc9: head = 6; len = uint(b, pos + 1, 4, end); ext = int8(b, pos + 5, end); break;
        case 0xca: len = 4; break;
        case 0xcb: len = 8; break;
        case 0xcc: case 0xd0: len = 1; break;
        case 0xcd: case 0xd1: len = 2; break;
        case 0xce: case 0xd2: len = 4; break;
        case 0xcf: case 0xd3: len = 8; break;
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
          head = 2; len = 1 << (h - 0xd4); ext = int8(b, pos + 1, end); break;
        case 0xd9: head = 2; len = uint(b, pos + 1, 1, end); isStr = true; break;
        case 0xda: head = 3; len = uint(b, pos + 1, 2, end); isStr = true; break;
        case 0xdb: head = 5; len = uint(b, pos + 1, 4, end); isStr = true; break;
        case 0xdc: head = 3; items = uint(b, pos + 1, 2, end); break;
        case 0xdd: head = 5; items = uint(b, pos + 1, 4, end); break;
        case 0xde: head = 3; items = uint(b, pos + 1, 2, end) * 2; break;
        case 0xdf: head = 5; items = uint(b, pos + 1, 4, end) * 2; break;
        default: fail(`unknown type byte 0x${h.toString(16)}`, pos); // unreachable: every byte is covered
      }
    }
    if (mustBeArray && pos === start && !((h >= 0x90 && h <= 0x9f) || h === 0xdc || h === 0xdd)) {
      fail('ext payload is not an array', pos);
    }
    const body = pos + head;
    if (items >= 0) {
      if (depth + open.length + 1 > MAX_VALUE_DEPTH) fail(`containers nest deeper than ${MAX_VALUE_DEPTH}`, pos);
      if (items > end - body) fail(`container of ${items} items in ${end - body} bytes`, pos);
      pos = body;
      if (items > 0) {
        open.push(items);
        continue;
      }
    } else {
      if (len > end - body) fail(`length ${len} exceeds the ${end - body} bytes left`, pos);
      if (isStr) {
        if (len >= 3 && b[body] === 0xef && b[body + 1] === 0xbb && b[body + 2] === 0xbf) out.bomString = true;
        out.strOffsets?.add(body);
      } else if (ext !== undefined) {
        if (ext === EXT_TIMESTAMP) {
          if (len !== 4 && len !== 8 && len !== 12) fail(`timestamp of ${len} bytes`, pos);
        } else if (ext === EXT_MAP || ext === EXT_SET) {
          scan(b, body, body + len, depth + open.length, true, out);
        } else {
          fail(`unknown ext type ${ext}`, pos);
        }
      }
      pos = body + len;
    }
    // One item is complete: close every container it completes.
    while (open.length > 0) {
      const top = open.length - 1;
      if (--open[top]! > 0) break;
      open.pop();
    }
    if (open.length === 0) {
      if (pos !== end) fail(`${end - pos} trailing bytes`, pos);
      return;
    }
  }
}

function uint(b: Uint8Array, at: number, n: 1 | 2 | 4, end: number): number {
  if (at + n > end) fail('truncated header', at);
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 256 + b[at + i]!;
  return v;
}

function int8(b: Uint8Array, at: number, end: number): number {
  if (at >= end) fail('truncated ext header', at);
  return (b[at]! << 24) >> 24;
}

type KeyDecoder = NonNullable<DecoderOptions['keyDecoder']>;
const bomKeepingKeyDecoder: KeyDecoder = {
  canBeCached: () => true,
  decode: (bytes, offset, length) => lenientUtf8Decoder.decode(bytes.subarray(offset, offset + length)),
};

/**
 * The slow path for values with a string that starts with U+FEFF (see the module comment):
 * the library returns every str that is not an object key as a raw view of `bytes`
 * (`rawStrings`), object keys go through a key decoder that keeps the BOM, and a walk turns
 * each view that starts at a str payload (found by `scan`) into a string. Bin payloads are
 * views too but never start where a str payload does.
 */
function decodeKeepingBom(bytes: Uint8Array): unknown {
  const found: ScanResult = { bomString: true, strOffsets: new Set() };
  scan(bytes, 0, bytes.length, 0, false, found);
  const strOffsets = found.strOffsets!;
  const rawDecoder = pooledContext({ ...decoderOptions, rawStrings: true, keyDecoder: bomKeepingKeyDecoder });
  const fix = (v: unknown): unknown => {
    if (v instanceof Uint8Array) {
      return v.buffer === bytes.buffer && strOffsets.has(v.byteOffset) ? lenientUtf8Decoder.decode(v) : v;
    }
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) v[i] = fix(v[i]);
    } else if (v instanceof Map) {
      const entries = [...v].map(([k, x]) => [fix(k), fix(x)] as const);
      v.clear();
      for (const [k, x] of entries) v.set(k, x);
    } else if (v instanceof Set) {
      const members = [...v].map(fix);
      v.clear();
      for (const m of members) v.add(m);
    } else if (v !== null && typeof v === 'object' && !(v instanceof Date)) {
      const rec = v as Record<string, unknown>;
      for (const k of Object.keys(rec)) rec[k] = fix(rec[k]);
    }
    return v;
  };
  return fix(rawDecoder.decode(bytes));
}
