/**
 * Unencoded values (codec/packet.ts OutgoingValue): a `put` or `batch` write may carry a string
 * (codec utf8) or a MessagePack scalar (codec msgpack) instead of bytes, and the encoder writes
 * it straight into the message. The bytes must be exactly those of the same message with the
 * value encoded first (encodeUtf8 / encodeScalar, themselves checked against TextEncoder and
 * @msgpack/msgpack in conformance/cache/value-codec.test.ts); anything else is our misuse and
 * throws MCCACHE_ERR_INVALID_ARGUMENT naming the field, as for any other bad field.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { McCacheError } from '../../runtime/errors';
import { decodeMessage } from '../../runtime/codec/decode';
import { encodeMessage, encodedMessageSize } from '../../runtime/codec/encode';
import type { OutgoingBatchWrite, OutgoingMessage, OutgoingValue } from '../../runtime/codec/packet';
import { encodeLazyValue } from '../../runtime/cache/cache';
import { params } from './wire-arbitraries';

const scalar = fc.oneof(
  fc.constant(null), fc.boolean(), fc.double(), fc.integer(),
  fc.constantFrom(0, -0, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x1_0000, 0xffff_ffff, 0x1_0000_0000, -0x20, -0x21, -0x80, -0x81, -0x8000, -0x8001, -0x8000_0000, -0x8000_0001, Number.MAX_SAFE_INTEGER, NaN, Infinity, -Infinity, 0.5),
);
/** A lazy value and its codec. */
const lazy: fc.Arbitrary<{ codec: 'utf8' | 'msgpack'; value: string | number | boolean | null }> = fc.oneof(
  fc.record({ codec: fc.constant('utf8' as const), value: fc.oneof(fc.string({ unit: 'grapheme', maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => (s as unknown as { isWellFormed(): boolean }).isWellFormed())) }),
  fc.record({ codec: fc.constant('msgpack' as const), value: scalar }),
);

function encoded<T extends { value: OutgoingValue }>(x: T): T & { value: Uint8Array } {
  return { ...x, value: encodeLazyValue(x.value as Exclude<OutgoingValue, Uint8Array | null> | null) };
}

function code(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(McCacheError);
    return { code: (err as McCacheError).code, message: (err as Error).message };
  }
  throw new Error('did not throw');
}

describe('wire: unencoded put and batch values', () => {
  it('a put encodes to the bytes of the same put with its value encoded first', () => {
    fc.assert(fc.property(lazy, fc.string({ maxLength: 20 }), (v, key) => {
      const m: OutgoingMessage = { op: 'put', cache: 'c', key, hlc: 7n, ttl: 0, codec: v.codec, value: v.value };
      const bytes = encodeMessage(m);
      const want = encodeMessage(encoded(m as Extract<OutgoingMessage, { op: 'put' }>));
      expect(bytes).to.deep.equal(want);
      expect(encodedMessageSize(m)).to.equal(want.length);
    }), params(500));
  });

  it('a batch of mixed lazy, byte and delete writes encodes as with every value encoded first, and decodes back', () => {
    const write: fc.Arbitrary<OutgoingBatchWrite> = fc.oneof(
      lazy.map((v) => ({ kind: 'value' as const, key: 'k', hlc: 1n, ttl: 5, codec: v.codec, value: v.value })),
      fc.uint8Array({ maxLength: 20 }).map((b) => ({ kind: 'value' as const, key: 'b', hlc: 2n, ttl: 0, codec: 'bytes' as const, value: b })),
      fc.constant({ kind: 'tombstone' as const, key: 'd', hlc: 3n, ttl: 0, codec: 'none' as const, value: new Uint8Array(0) }),
    );
    fc.assert(fc.property(fc.array(write, { minLength: 1, maxLength: 30 }), (writes) => {
      const m: OutgoingMessage = { op: 'batch', cache: 'cache', writes };
      const plain = { op: 'batch' as const, cache: 'cache', writes: writes.map((w) => encoded(w)) };
      const bytes = encodeMessage(m);
      expect(bytes).to.deep.equal(encodeMessage(plain));
      expect(decodeMessage('batch', bytes)).to.deep.equal(plain);
    }), params(300));
  });

  it('long multi-byte string values encode as when encoded first', () => {
    for (const value of ['\u00e9'.repeat(100), '\u{1F600}'.repeat(40) + 'abc', 'a'.repeat(70_000), '\u20ac'.repeat(33)]) {
      const m: OutgoingMessage = { op: 'put', cache: 'c', key: 'k', hlc: 1n, ttl: 0, codec: 'utf8', value };
      expect(encodeMessage(m)).to.deep.equal(encodeMessage(encoded(m as Extract<OutgoingMessage, { op: 'put' }>)));
    }
  });

  it('refuses a value whose type does not fit its codec, naming the field', () => {
    const put = (codec: string, value: unknown) => (): unknown => encodeMessage({ op: 'put', cache: 'c', key: 'k', hlc: 1n, ttl: 0, codec, value } as unknown as OutgoingMessage);
    for (const [codec, value] of [['msgpack', 'text'], ['utf8', 42], ['bytes', 'text'], ['json', null], ['utf8', { a: 1 }], ['msgpack', 1n], ['msgpack', undefined]] as const) {
      const e = code(put(codec, value));
      expect(e.code, `${codec} ${String(value)}`).to.equal('MCCACHE_ERR_INVALID_ARGUMENT');
      expect(e.message).to.contain('put.value');
    }
    const batch = (): unknown => encodeMessage({ op: 'batch', cache: 'c', writes: [{ kind: 'value', key: 'k', hlc: 1n, ttl: 0, codec: 'msgpack', value: 'x' }] });
    expect(code(batch).message).to.contain('batch.writes[0]');
    // A delete carries no value: an unencoded one is refused too.
    const del = (): unknown => encodeMessage({ op: 'batch', cache: 'c', writes: [{ kind: 'tombstone', key: 'k', hlc: 1n, ttl: 0, codec: 'none', value: null }] });
    expect(code(del).code).to.equal('MCCACHE_ERR_INVALID_ARGUMENT');
    // A lone surrogate would reach the peer as U+FFFD: refused, as in keys.
    expect(code(put('utf8', 'a\ud800b')).message).to.contain('lone surrogate');
    // Long values are measured natively, and still refused with the index.
    expect(code(put('utf8', `${'x'.repeat(100)}\udc00`)).message).to.contain('lone surrogate at index 100');
  });

  it('sync entries and metrics replies still take bytes only', () => {
    const e = code(() => encodeMessage({ op: 'sync_entries', cache: 'c', replyTo: 1n, entries: [{ key: 'k', hlc: 1n, originId: 1n, kind: 'value', ttl: 0, codec: 'utf8', value: 'x' }] } as unknown as OutgoingMessage));
    expect(e.message).to.contain('must be a Uint8Array');
  });
});
