/**
 * Cache values on the wire (runtime/cache/value-codec.ts): round trips for every supported
 * kind, refusals of what cannot travel faithfully (MCCACHE_ERR_INVALID_ARGUMENT), hard limits
 * on a peer's bytes, and the fuzz contract: decoding any bytes yields a value or a
 * MalformedPacketError MCCACHE_ERR_INVALID_FIELD, never another error, and the decoder still
 * decodes a valid value afterwards (STYLE.md, msgpack-javascript's contract).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { Decoder, Encoder } from '@msgpack/msgpack';
import {
  decodeScalar, decodeValue, encodeScalar, encodeUtf8, encodeValue, isScalarEncoding, MAX_VALUE_DEPTH, NOT_SCALAR,
} from '../../runtime/cache/value-codec';
import { utf8Length } from '../../runtime/codec/utf8';
import { scalarLength } from '../../runtime/codec/msgpack-scalar';
import { ErrorCode, MalformedPacketError } from '../../runtime/errors';
import { errorCode } from '../error-code';

function roundTrip(v: unknown): unknown {
  const { codec, bytes } = encodeValue(v);
  return decodeValue(codec, bytes);
}


function malformed(bytes: Uint8Array, codec = 'msgpack'): MalformedPacketError {
  try {
    decodeValue(codec, bytes);
  } catch (err) {
    expect(err).to.be.instanceOf(MalformedPacketError);
    expect((err as MalformedPacketError).code).to.equal(ErrorCode.INVALID_FIELD);
    expect((err as MalformedPacketError).field).to.equal('entry_value.value');
    return err as MalformedPacketError;
  }
  return expect.fail(`expected MalformedPacketError for ${Buffer.from(bytes).toString('hex')}`);
}

const hex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));

/** JSON cannot hold -0 and MessagePack integers cannot either: both come back as 0. */
function withoutNegativeZero(v: unknown): unknown {
  if (Object.is(v, -0)) return 0;
  if (Array.isArray(v)) return v.map(withoutNegativeZero);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withoutNegativeZero(x)]));
  }
  return v;
}

function hasProtoKey(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(hasProtoKey);
  if (v !== null && typeof v === 'object') {
    return Object.prototype.hasOwnProperty.call(v, '__proto__') || Object.values(v).some(hasProtoKey);
  }
  return false;
}

describe('cache/value-codec: round trips', () => {
  it('round-trips JSON-like values through msgpack (property)', () => {
    fc.assert(fc.property(fc.jsonValue({ stringUnit: 'binary' }), (v) => {
      fc.pre(typeof v !== 'string' && !hasProtoKey(v));
      const e = encodeValue(v);
      expect(e.codec).to.equal('msgpack');
      expect(decodeValue(e.codec, e.bytes)).to.deep.equal(withoutNegativeZero(v));
    }), { numRuns: 1000 });
  });

  it('round-trips every string through utf8, including a leading U+FEFF (property)', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), fc.boolean(), (s, bom) => {
      const v = bom ? `\uFEFF${s}` : s;
      const e = encodeValue(v);
      expect(e.codec).to.equal('utf8');
      expect(e.bytes).to.deep.equal(new Uint8Array(Buffer.from(v, 'utf8')));
      expect(decodeValue('utf8', e.bytes)).to.equal(v);
    }), { numRuns: 500 });
  });

  it('keeps a leading U+FEFF in strings nested in msgpack, short or long, keys too', () => {
    const long = `\uFEFF${'x'.repeat(300)}`;
    const v = { [long]: [long, '\uFEFFa'], m: new Map([[long, new Set([long])]]), bin: new Uint8Array([0xef, 0xbb, 0xbf, 1]), n: 1 };
    expect(roundTrip(v)).to.deep.equal(v);
    fc.assert(fc.property(fc.string({ unit: 'binary', minLength: 190, maxLength: 260 }), (s) => {
      const w = { a: [`\uFEFF${s}`], [`\uFEFF${s}`]: s };
      expect(roundTrip(w)).to.deep.equal(w);
    }), { numRuns: 100 });
  });

  it('round-trips bytes as a fresh Uint8Array, a Buffer included (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2000 }), fc.boolean(), (u, asBuffer) => {
      const input = asBuffer ? Buffer.from(u) : u;
      const e = encodeValue(input);
      expect(e.codec).to.equal('bytes');
      const out = decodeValue('bytes', e.bytes) as Uint8Array;
      expect(Object.getPrototypeOf(out)).to.equal(Uint8Array.prototype);
      expect(out).to.deep.equal(new Uint8Array(u));
      expect(out.buffer).to.not.equal(e.bytes.buffer);
    }), { numRuns: 300 });
  });

  it('encodes a snapshot: changing the input afterwards changes nothing encoded', () => {
    const u = new Uint8Array([1, 2, 3]);
    const e = encodeValue(u);
    u[0] = 9;
    expect(decodeValue(e.codec, e.bytes)).to.deep.equal(new Uint8Array([1, 2, 3]));
  });

  it('round-trips bigints in int64/uint64 as bigints, and numbers stay numbers (property)', () => {
    fc.assert(fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }), fc.integer(), (b, n) => {
      expect(roundTrip(b)).to.equal(b);
      expect(roundTrip({ b, n, list: [b, n] })).to.deep.equal({ b, n, list: [b, n] });
    }), { numRuns: 500 });
    expect(roundTrip(5n)).to.equal(5n);
    expect(roundTrip(5)).to.equal(5);
    for (const n of [2 ** 32, 2 ** 40, -(2 ** 40), Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 60, 0.1, NaN, Infinity, -Infinity]) {
      expect(Object.is(roundTrip(n), n), String(n)).to.equal(true);
    }
  });

  it('round-trips Dates to the millisecond (property)', () => {
    fc.assert(fc.property(fc.date({ noInvalidDate: true }), (d) => {
      const out = roundTrip(d) as Date;
      expect(out).to.be.instanceOf(Date);
      expect(out.getTime()).to.equal(d.getTime());
    }), { numRuns: 500 });
  });

  it('round-trips Maps (any keys) and Sets, nested in anything (property)', () => {
    const leaf = fc.oneof(fc.jsonValue({ maxDepth: 2 }).filter((v) => !hasProtoKey(v)).map(withoutNegativeZero), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.date({ noInvalidDate: true }), fc.uint8Array({ maxLength: 8 }));
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, leaf, tie('map'), tie('set'), fc.array(tie('value'), { maxLength: 4 }), fc.dictionary(fc.string().filter((k) => k !== '__proto__'), tie('value'), { maxKeys: 4, noNullPrototype: true })),
      map: fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 4 }).map((entries) => new Map(entries)),
      set: fc.array(tie('value'), { maxLength: 4 }).map((members) => new Set(members)),
    }));
    fc.assert(fc.property(value, (v) => {
      fc.pre(typeof v !== 'string' && !(v instanceof Uint8Array));
      expect(isDeepStrictEqual(roundTrip(v), v)).to.equal(true);
    }), { numRuns: 500 });
  });

  it('follows JSON for nested undefined: left out of objects, null in arrays, Maps and Sets', () => {
    expect(roundTrip({ a: undefined, b: 1 })).to.deep.equal({ b: 1 });
    expect(roundTrip([undefined, 1])).to.deep.equal([null, 1]);
    expect(roundTrip(new Map([['k', undefined]]))).to.deep.equal(new Map([['k', null]]));
    // eslint-disable-next-line no-sparse-arrays
    expect(roundTrip([1, , 3])).to.deep.equal([1, null, 3]);
  });

  it('encodes null, booleans and numbers as msgpack, and -0 as 0', () => {
    for (const v of [null, true, false, 0, 1.5]) expect(roundTrip(v)).to.equal(v);
    expect(Object.is(roundTrip(-0), 0)).to.equal(true);
  });

  it('accepts nesting up to MAX_VALUE_DEPTH containers', () => {
    let v: unknown = 1;
    for (let i = 0; i < MAX_VALUE_DEPTH; i++) v = [v];
    expect(roundTrip(v)).to.deep.equal(v);
    let m: unknown = 'x';
    for (let i = 0; i < MAX_VALUE_DEPTH; i++) m = i % 2 ? new Map([['k', m]]) : { k: m };
    expect(roundTrip(m)).to.deep.equal(m);
  });

  it('encodes a shared (non-cyclic) sub-object twice', () => {
    const shared = { x: 1 };
    expect(roundTrip({ a: shared, b: shared })).to.deep.equal({ a: { x: 1 }, b: { x: 1 } });
  });
});

describe('cache/value-codec: refused values', () => {
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic['self'] = cyclic;
  const cyclicMap = new Map<string, unknown>();
  cyclicMap.set('me', [cyclicMap]);
  let tooDeep: unknown = 1;
  for (let i = 0; i < MAX_VALUE_DEPTH + 1; i++) tooDeep = [tooDeep];
  class Point {
    constructor(readonly x: number) {}
  }
  const protoKey = JSON.parse('{"__proto__": 1}') as unknown;
  const refused: [string, unknown][] = [
    ['undefined', undefined],
    ['a function', () => 1],
    ['a symbol', Symbol('s')],
    ['a nested function', { f: () => 1 }],
    ['a nested symbol', [Symbol('s')]],
    ['a class instance', new Point(1)],
    ['a nested class instance', { p: new Point(1) }],
    ['a RegExp', /x/],
    ['an Error', new Error('x')],
    ['a boxed string', Object('s')],
    ['a cycle through an object', cyclic],
    ['a cycle through a Map', cyclicMap],
    ['nesting deeper than MAX_VALUE_DEPTH', tooDeep],
    ['an Int16Array', new Int16Array(2)],
    ['a nested Float64Array', { f: new Float64Array(1) }],
    ['an ArrayBuffer', new ArrayBuffer(4)],
    ['a DataView', new DataView(new ArrayBuffer(4))],
    ['an invalid Date', new Date(NaN)],
    ['a bigint above 2^64-1', 2n ** 64n],
    ['a bigint below -(2^63)', -(2n ** 63n) - 1n],
    ['a string with a lone surrogate', 'a\uD800b'],
    ['a nested string with a lone surrogate', { s: '\uDC00' }],
    ['a property name with a lone surrogate', { '\uD800': 1 }],
    ['an own __proto__ property', protoKey],
    ['a throwing getter', { get boom(): number { throw new Error('boom'); } }],
  ];
  for (const [what, v] of refused) {
    it(`refuses ${what} with MCCACHE_ERR_INVALID_ARGUMENT`, () => {
      expect(errorCode(() => encodeValue(v))).to.equal(ErrorCode.INVALID_ARGUMENT);
    });
  }
});

describe('cache/value-codec: a peer\'s bytes', () => {
  it('refuses codecs this node does not decode', () => {
    for (const c of ['none', 'json', 'cbor', '']) malformed(hex('c0'), c);
  });

  it('refuses invalid UTF-8 in a utf8 value', () => {
    for (const h of ['ff', 'c3', 'eda080', 'f4908080', 'c0af']) malformed(hex(h), 'utf8');
  });

  // Each a hex msgpack value that must be refused.
  const vectors: [string, string][] = [
    ['empty input', ''],
    ['the never-used byte 0xc1', 'c1'],
    ['trailing bytes', 'c0 c0'],
    ['a truncated str', 'a5 6162'],
    ['a truncated uint 32', 'ce 0102'],
    ['array 32 claiming 2^32-1 items', 'dd ffffffff'],
    ['map 32 claiming 2^32-1 entries', 'df ffffffff c0'],
    ['str 32 claiming 4 GiB', 'db ffffffff 61'],
    ['bin 32 claiming 4 GiB', 'c6 ffffffff 00'],
    ['ext 32 claiming 4 GiB', 'c9 ffffffff 01'],
    ['an unknown ext type', 'd4 05 00'],
    ['a negative ext type other than timestamp', 'd4 fe 00'],
    ['a timestamp of 3 bytes', 'c7 03 ff 000000'],
    ['a timestamp 64 with nanoseconds >= 1e9', `d7 ff ${((1_000_000_000 * 4) >>> 0).toString(16).padStart(8, '0')} 00000000`],
    ['a timestamp 96 past the Date range', 'c7 0c ff 00000000 7fffffffffffffff'],
    ['a Map ext whose payload is not an array', 'd4 01 c0'],
    ['a Map ext with an odd number of items', 'd5 01 91 c0'],
    ['a Set ext whose payload is not an array', 'd4 02 01'],
    ['a Map ext with trailing bytes in its payload', 'd6 01 90 c0 c0 c0'],
    [`nesting of ${MAX_VALUE_DEPTH + 1} arrays`, `${'91'.repeat(MAX_VALUE_DEPTH + 1)}c0`],
    [`nesting of ${MAX_VALUE_DEPTH + 1} Maps`, deepMapExt(MAX_VALUE_DEPTH + 1)],
    ['a __proto__ key', '81 a9 5f5f70726f746f5f5f c0'],
    ['an array as a map key', '81 90 c0'],
    ['a nil map key', '81 c0 c0'],
  ];
  for (const [what, h] of vectors) {
    it(`refuses ${what}`, () => {
      malformed(hex(h));
    });
  }

  it('accepts the same structures within the limits', () => {
    expect(decodeValue('msgpack', hex(`${'91'.repeat(MAX_VALUE_DEPTH)}c0`))).to.be.an('array');
    expect(decodeValue('msgpack', hex(deepMapExt(MAX_VALUE_DEPTH)))).to.be.instanceOf(Map);
    expect(decodeValue('msgpack', hex('d7 ff 00000000 00000001'))).to.deep.equal(new Date(1000));
    expect(decodeValue('msgpack', hex('81 01 a1 61'))).to.deep.equal({ 1: 'a' }); // an integer key, from another language
    expect(decodeValue('msgpack', hex('d3 0000000000000005'))).to.equal(5n); // int 64 is a bigint
  });

  it('returns byte arrays that do not alias the caller\'s buffer', () => {
    const { bytes } = encodeValue({ b: new Uint8Array([1, 2, 3]) });
    const wire = new Uint8Array(bytes);
    const out = decodeValue('msgpack', wire) as { b: Uint8Array };
    wire.fill(0);
    expect(out.b).to.deep.equal(new Uint8Array([1, 2, 3]));
  });

  it('throws only MalformedPacketError MCCACHE_ERR_INVALID_FIELD for 20,000 random buffers, and still decodes afterwards', () => {
    const valid = encodeValue({ ok: [1, 'two', 3n, new Date(4), new Map([[5, new Set([6])]])] });
    const expected = decodeValue('msgpack', valid.bytes);
    let accepted = 0;
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), fc.constantFrom('msgpack', 'utf8', 'bytes'), (b, c) => {
      try {
        decodeValue(c, b);
        accepted++;
      } catch (err) {
        if (!(err instanceof MalformedPacketError) || err.code !== ErrorCode.INVALID_FIELD) throw err;
      }
    }), { numRuns: 20_000 });
    expect(accepted).to.be.greaterThan(0);
    expect(decodeValue('msgpack', valid.bytes)).to.deep.equal(expected);
  });

  it('throws only MalformedPacketError for mutated valid encodings (property)', () => {
    const sample = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.date({ noInvalidDate: true }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      fc.array(fc.tuple(fc.string(), fc.integer())).map((e) => new Map(e)), fc.array(fc.integer()).map((a) => new Set(a)),
      // the slow path that keeps a leading U+FEFF
      fc.string({ unit: 'binary', minLength: 200, maxLength: 220 }).map((t) => ({ [`\uFEFF${t}`]: [`\uFEFF${t}`, new Uint8Array(3)] })));
    fc.assert(fc.property(sample, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat(), (v, edits, cut) => {
      fc.pre(!hasProtoKey(v) && typeof v !== 'string');
      const bytes = new Uint8Array(encodeValue(v).bytes);
      for (const [at, byte] of edits) bytes[at % bytes.length] = byte;
      const input = cut % 3 === 0 ? bytes.subarray(0, cut % (bytes.length + 1)) : bytes;
      try {
        decodeValue('msgpack', input);
      } catch (err) {
        if (!(err instanceof MalformedPacketError) || err.code !== ErrorCode.INVALID_FIELD) throw err;
      }
    }), { numRuns: 5000 });
  });
});

/** `levels` Map exts nested: each is ext 1 holding [nil, <inner>], the innermost [nil, nil]. */
function deepMapExt(levels: number): string {
  let inner = hex('92 c0 c0');
  for (let i = 0; i < levels; i++) {
    const payload = i === 0 ? inner : new Uint8Array([0x92, 0xc0, ...inner]);
    const header = payload.length < 256 ? [0xc7, payload.length, 0x01] : payload.length < 65536
      ? [0xc8, payload.length >> 8, payload.length & 0xff, 0x01] : [0xc9, 0, payload.length >> 16, (payload.length >> 8) & 0xff, payload.length & 0xff, 0x01];
    inner = new Uint8Array([...header, ...payload]);
  }
  return Buffer.from(inner).toString('hex');
}

describe('cache/value-codec: the string fast paths', () => {
  it('utf8Length and encodeUtf8 agree with Buffer for any well-formed string, short or long', () => {
    const strings = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 80 }),
      fc.string({ unit: 'grapheme-ascii', maxLength: 80 }),
      fc.constantFrom('', 'a'.repeat(64), 'a'.repeat(63) + 'é', '😀'.repeat(40), 'ascii then ✓'),
    );
    fc.assert(fc.property(strings, (s) => {
      expect(utf8Length(s)).to.equal(Buffer.byteLength(s, 'utf8'));
      expect(Buffer.from(encodeUtf8(s)).equals(Buffer.from(s, 'utf8'))).to.equal(true);
    }), { numRuns: 2000 });
  });
});

// The scalar fast paths must be byte for byte what @msgpack/msgpack makes and reads with the
// options the codec uses for them (useBigInt64): the library is the oracle here.
describe('cache/value-codec: the scalar fast paths (null, booleans, numbers)', () => {
  const library = new Encoder({ useBigInt64: true });
  const libraryDecoder = new Decoder({ useBigInt64: true });
  const edges = [0, -0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, -1, -32, -33, -128, -129, -32768, -32769,
    -(2 ** 31), -(2 ** 31) - 1, 2 ** 53 - 1, 2 ** 53, -(2 ** 53) + 1, -(2 ** 53), 0.5, -0.5, Math.PI, 1e300, -1e-300,
    Number.MIN_VALUE, Number.MAX_VALUE, Infinity, -Infinity, Number.NaN];
  const scalars = fc.oneof(
    fc.double(), fc.integer(), fc.integer({ min: -(2 ** 33), max: 2 ** 33 }), fc.maxSafeInteger(),
    fc.integer({ min: -300, max: 300 }), fc.constantFrom<unknown>(null, true, false, ...edges),
  ) as fc.Arbitrary<null | boolean | number>;

  it('encode exactly as the library does, and scalarLength is the encoding\'s length (property + edges)', () => {
    fc.assert(fc.property(scalars, (v) => {
      const expected = library.encode(v);
      expect(Buffer.from(encodeScalar(v)).toString('hex'), String(v)).to.equal(Buffer.from(expected).toString('hex'));
      expect(Buffer.from(encodeValue(v).bytes).equals(Buffer.from(expected))).to.equal(true);
      expect(scalarLength(v)).to.equal(expected.length);
      expect(isScalarEncoding(v, expected)).to.equal(true);
    }), { numRuns: 5000 });
  });

  it('isScalarEncoding refuses any other bytes for the same value (another encoder\'s float for an integer, say)', () => {
    expect(isScalarEncoding(1, hex('cb 3ff0000000000000'))).to.equal(false); // 1 as a float 64
    expect(isScalarEncoding(1, hex('cc 01'))).to.equal(false); // 1 as a uint 8
    expect(isScalarEncoding(100, hex('d0 64'))).to.equal(false); // 100 as an int 8: same length, other token
    expect(isScalarEncoding(Number.NaN, hex('cb 7ff8000000000001'))).to.equal(false); // another NaN
    expect(isScalarEncoding(null, hex('c2'))).to.equal(false);
  });

  it('decode every whole scalar token as the library does; anything else is left to it (property)', () => {
    const tokens = fc.oneof(
      scalars.map((v) => library.encode(v)),
      fc.tuple(fc.constantFrom(0xc0, 0xc2, 0xc3, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0x00, 0x7f, 0xe0, 0xff, 0x90, 0xa1),
        fc.uint8Array({ maxLength: 10 })).map(([b, rest]) => new Uint8Array([b, ...rest])),
      fc.uint8Array({ maxLength: 10 }),
    );
    let fast = 0;
    fc.assert(fc.property(tokens, (bytes) => {
      const v = decodeScalar(bytes);
      if (v === NOT_SCALAR) return;
      fast++;
      const expected = libraryDecoder.decode(bytes);
      expect(Object.is(v, expected) || (Number.isNaN(v) && Number.isNaN(expected)), Buffer.from(bytes).toString('hex')).to.equal(true);
      expect(Object.is(decodeValue('msgpack', bytes), v) || Number.isNaN(v)).to.equal(true);
    }), { numRuns: 5000 });
    expect(fast).to.be.greaterThan(1000); // the fast path was taken, not just skipped
  });

  it('does not take the fast path for 64-bit integers (bigints), truncated tokens or trailing bytes', () => {
    for (const h of ['cf 0000000000000001', 'd3 ffffffffffffffff', 'cd 01', 'cb 00', '01 02', 'c0 c0', 'ca 000000', '']) {
      expect(decodeScalar(hex(h)), h).to.equal(NOT_SCALAR);
    }
    expect(decodeValue('msgpack', hex('cf 0000000000000001'))).to.equal(1n);
  });
});
