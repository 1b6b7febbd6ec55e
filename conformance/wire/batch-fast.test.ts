/**
 * The `batch` fast path (runtime/codec/decode.ts `decodeBatchFast`) is the generated parser's
 * answer, read without it: on every input it either gives exactly what the generated parser
 * (plus the codec's UTF-8 rule) gives, or declines, and it declines exactly when the generated
 * path refuses the bytes. So decodeMessage's result and errors stay the spec's.
 *
 * Inputs: valid batches from our encoder, and mutations of them aimed at every rule of
 * `batch`/`batch_write`/`key`/`entry_value` (byte overwrites with boundary values, bit flips,
 * truncation, extension, insertion).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { MalformedPacketError } from '../../runtime/errors';
import { decodeBatchFast, decodeMessage, decodeMessageGenerated } from '../../runtime/codec/decode';
import { encodeMessage } from '../../runtime/codec/encode';
import type { Message } from '../../runtime/codec/packet';
import { messageOf, mutateBytes, params, type ByteMutation } from './wire-arbitraries';

type Outcome = { ok: Message } | { code: string };
function generated(bytes: Uint8Array): Outcome {
  try {
    return { ok: decodeMessageGenerated('batch', bytes) };
  } catch (err) {
    expect(err).to.be.instanceOf(MalformedPacketError);
    return { code: (err as MalformedPacketError).code };
  }
}

const mutation: fc.Arbitrary<ByteMutation> = fc.oneof(
  // Boundary values of the rules: kinds 1/2, codecs 0..4, lengths, the UTF-8 lead and continuation bytes.
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), value: fc.constantFrom(0, 1, 2, 3, 4, 5, 0x7f, 0x80, 0xbf, 0xc0, 0xc3, 0xe0, 0xed, 0xf0, 0xf4, 0xf5, 0xfe, 0xff) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('extend' as const), tail: fc.uint8Array({ minLength: 1, maxLength: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 4 }) }) },
);
/** The mutations one after another. */
const mutate = (b: Uint8Array, ms: ByteMutation[]): Uint8Array => ms.reduce((out, m) => mutateBytes(out, m), b);

describe('wire: the batch fast path agrees with the generated parser', () => {
  it('takes every valid batch, with the generated result', () => {
    fc.assert(fc.property(messageOf('batch'), (m) => {
      const bytes = encodeMessage(m);
      const fast = decodeBatchFast(bytes);
      expect(fast, 'declined a valid batch').to.not.equal(undefined);
      expect(fast).to.deep.equal(decodeMessageGenerated('batch', bytes));
      expect(fast).to.deep.equal(m);
    }), params(300));
  });

  it('on mutated batches: declines exactly what the generated path refuses, else gives its result', () => {
    let declined = 0;
    let agreed = 0;
    fc.assert(fc.property(messageOf('batch'), fc.array(mutation, { minLength: 1, maxLength: 3 }), (m, ms) => {
      const bytes = mutate(encodeMessage(m), ms);
      const fast = decodeBatchFast(bytes);
      const gen = generated(bytes);
      if (fast === undefined) {
        expect(gen, 'declined bytes the generated parser accepts').to.have.property('code');
        declined++;
        // decodeMessage then reports the generated parser's error.
        expect(() => decodeMessage('batch', bytes)).to.throw(MalformedPacketError).with.property('code', (gen as { code: string }).code);
      } else {
        expect(gen, 'accepted bytes the generated parser refuses').to.have.property('ok');
        expect(fast).to.deep.equal((gen as { ok: Message }).ok);
        agreed++;
      }
    }), params(3000));
    // Both branches must be exercised, or the property says little.
    expect(declined).to.be.greaterThan(0);
    expect(agreed).to.be.greaterThan(0);
  });

  it('declines invalid UTF-8 in a key and in the cache name, as the codec refuses them', () => {
    const bytes = encodeMessage({ op: 'batch', cache: 'c', writes: [{ kind: 'value', key: 'k\u00e9', hlc: 1n, ttl: 0, codec: 'utf8', value: new Uint8Array([0x61]) }] });
    // key bytes: after name (1 + 1), count (2), kind (1), key length (2): 'k', 0xc3, 0xa9
    const badKey = bytes.slice();
    badKey[8] = 0xff;
    expect(decodeBatchFast(badKey)).to.equal(undefined);
    expect(() => decodeMessage('batch', badKey)).to.throw(MalformedPacketError).with.property('field', 'mccache_common.key');
    const badName = bytes.slice();
    badName[1] = 0x80;
    expect(decodeBatchFast(badName)).to.equal(undefined);
    expect(() => decodeMessage('batch', badName)).to.throw(MalformedPacketError).with.property('field', 'mccache_common.name');
  });
});
