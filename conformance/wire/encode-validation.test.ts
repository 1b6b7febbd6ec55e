/**
 * Our own misuse fails loudly and at once (STYLE.md rule 3): an encoder input the wire cannot
 * carry, or one the decoder would reject, throws MCCACHE_ERR_INVALID_ARGUMENT; nothing is
 * produced. Each case changes one field of a valid input, so the valid input is checked too.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { McCacheError } from '../../runtime/errors';
import { encodeMessage, encodePacket, encodedMessageSize, indexesToBitmap } from '../../runtime/codec/encode';
import { MAX_MESSAGE_SIZE, type Message, type PacketHeader } from '../../runtime/codec/packet';
import { anyMessage, params } from './wire-arbitraries';
import { codeOf } from '../error-code';


const put: Message = { op: 'put', cache: 'c', key: 'k', hlc: 1n, ttl: 0, codec: 'bytes', value: new Uint8Array([1]) };
const nak: Message = { op: 'nak', target: 1n, ranges: [{ first: 1, last: 2 }], partials: [{ msgSeq: 3, numFrags: 4, missing: [1, 3] }] };
const digest: Message = { op: 'sync_digest', cache: 'c', numEntries: 0, clearHlc: 0n, clearOrigin: 0n, numBuckets: 4, firstBucket: 1, hashes: [1n, 2n, 3n] };

/** [what, a message that must be refused]; the base messages above encode. */
const badMessages: [string, unknown][] = [
  ['a cache name of 256 UTF-8 bytes', { ...put, cache: '\u00e9'.repeat(128) }],
  ['a key of 65536 UTF-8 bytes', { ...put, key: 'k'.repeat(65535) + '\u00e9' }],
  ['a key with a lone surrogate', { ...put, key: 'a\ud800b' }],
  ['a key that is not a string', { ...put, key: 42 }],
  ['a u8 field at 2^64', { ...put, hlc: 2n ** 64n }],
  ['a negative u8 field', { ...put, hlc: -1n }],
  ['a u8 field given as a number', { ...put, hlc: 1 }],
  ['a u4 field at 2^32', { ...put, ttl: 2 ** 32 }],
  ['a u4 field that is not an integer', { ...put, ttl: 1.5 }],
  ['an unknown value codec', { ...put, codec: 'pickle' }],
  ['a value that is not bytes', { ...put, value: 'text' }],
  ['a value over the spec\'s len_value bound', { ...put, value: new Uint8Array(MAX_MESSAGE_SIZE + 1) }],
  ['an unknown op', { ...put, op: 'upsert' }],
  ['256 NAK ranges (u1 count)', { ...nak, ranges: Array.from({ length: 256 }, () => ({ first: 1, last: 1 })) }],
  ['256 NAK partials (u1 count)', { ...nak, partials: Array.from({ length: 256 }, () => ({ msgSeq: 1, numFrags: 2, missing: [] })) }],
  ['a NAK range whose last is below its first', { ...nak, ranges: [{ first: 5, last: 4 }] }],
  ['a NAK partial of 1 fragment', { ...nak, partials: [{ msgSeq: 3, numFrags: 1, missing: [0] }] }],
  ['a NAK partial of 256 fragments', { ...nak, partials: [{ msgSeq: 3, numFrags: 256, missing: [0] }] }],
  ['a NAK missing index equal to numFrags', { ...nak, partials: [{ msgSeq: 3, numFrags: 4, missing: [4] }] }],
  ['a NAK missing index below 0', { ...nak, partials: [{ msgSeq: 3, numFrags: 4, missing: [-1] }] }],
  ['NAK missing indexes out of order', { ...nak, partials: [{ msgSeq: 3, numFrags: 4, missing: [3, 1] }] }],
  ['a repeated NAK missing index', { ...nak, partials: [{ msgSeq: 3, numFrags: 4, missing: [1, 1] }] }],
  ['256 ACK entries (u1 count)', { op: 'ack', entries: Array.from({ length: 256 }, () => ({ senderId: 1n, deliveredSeq: 1 })) }],
  ['65536 sync entries (u2 count)', { op: 'sync_entries', cache: 'c', replyTo: 0n, entries: new Array(65536).fill(
    { key: 'k', hlc: 1n, originId: 1n, kind: 'value', ttl: 0, codec: 'none', value: new Uint8Array(0) }) }],
  ['an unknown sync entry kind', { op: 'sync_entries', cache: 'c', replyTo: 0n, entries: [
    { key: 'k', hlc: 1n, originId: 1n, kind: 'ghost', ttl: 0, codec: 'none', value: new Uint8Array(0) }] }],
  ['a digest of 0 buckets', { ...digest, numBuckets: 0, firstBucket: 0, hashes: [] }],
  ['digest hashes past numBuckets', { ...digest, firstBucket: 2 }],
  ['a sync request of 0 buckets', { op: 'sync_request', target: 1n, cache: 'c', numBuckets: 0, bucketIds: [] }],
  ['65536 sync request bucket ids (u2 count)', { op: 'sync_request', target: 1n, cache: 'c', numBuckets: 1, bucketIds: new Array(65536).fill(0) }],
  ['a bucket id over u2', { op: 'sync_request', target: 1n, cache: 'c', numBuckets: 1, bucketIds: [65536] }],
  ['a checksum of 31 bytes', { op: 'checksum_reply', requestSender: 1n, requestSeq: 1, cache: 'c', numEntries: 0, checksum: new Uint8Array(31) }],
  ['a join with packetMtu 547', { op: 'join', heartbeatInterval: 1000, packetMtu: 547, pid: 1, host: 'h' }],
  ['a join with packetMtu 65508', { op: 'join', heartbeatInterval: 1000, packetMtu: 65508, pid: 1, host: 'h' }],
  ['a join with packetMtu 65536 (u2)', { op: 'join', heartbeatInterval: 1000, packetMtu: 65536, pid: 1, host: 'h' }],
  ['an unknown leave reason', { op: 'leave', reason: 'bored' }],
  ['a heartbeat member count over u2', { op: 'heartbeat', heartbeatInterval: 1, numMembers: 65536, lowSeq: 0 }],
];

const fragment = encodeMessage({ op: 'heartbeat', heartbeatInterval: 1000, numMembers: 1, lowSeq: 0 });
const header: PacketHeader = { op: 'heartbeat', flags: 0, keyId: 0, fragIndex: 0, numFrags: 1, senderId: 1n, msgSeq: 1, lenMessage: fragment.length };
const putHeader: PacketHeader = { ...header, op: 'put', numFrags: 3, fragIndex: 2, lenMessage: 100 };

/** [what, header, fragment]; `header` with `fragment` encodes. */
const badPackets: [string, unknown, Uint8Array][] = [
  ['an unknown op', { ...header, op: 'nope' }, fragment],
  ['a reserved flag bit', { ...header, flags: 0x04 }, fragment],
  ['a key id without the encrypted flag', { ...header, keyId: 1 }, fragment],
  ['a fragment index equal to the count', { ...putHeader, fragIndex: 3 }, new Uint8Array(10)],
  ['a fragment count of 0', { ...putHeader, numFrags: 0, fragIndex: 0 }, new Uint8Array(10)],
  ['a fragment count of 256', { ...putHeader, numFrags: 256 }, new Uint8Array(10)],
  ['an unsequenced op in 2 fragments', { ...header, numFrags: 2, lenMessage: 20 }, new Uint8Array(10)],
  ['a sender id at 2^64', { ...header, senderId: 2n ** 64n }, fragment],
  ['a sender id given as a number', { ...header, senderId: 1 }, fragment],
  ['a msgSeq at 2^32', { ...header, msgSeq: 2 ** 32 }, fragment],
  ['a lenMessage over 255 x 65507', { ...putHeader, lenMessage: MAX_MESSAGE_SIZE + 1 }, new Uint8Array(10)],
  ['a single fragment shorter than lenMessage', { ...header, lenMessage: fragment.length + 1 }, fragment],
  ['a fragment longer than lenMessage', { ...putHeader, lenMessage: 9 }, new Uint8Array(10)],
  ['an empty fragment of a multi-fragment message', putHeader, new Uint8Array(0)],
  ['an encrypted fragment shorter than the seal', { ...header, flags: 1, lenMessage: 0 }, new Uint8Array(27)],
  ['a fragment longer than 65535 bytes', { ...putHeader, lenMessage: 70000 }, new Uint8Array(65536)],
];

describe('encoder validation', function () {
  // Property runs scale with FC_NUM_RUNS; mocha's default 2 s limit would fail a slow machine, not the code.
  this.timeout(600_000);
  it('accepts the base inputs the refused cases are derived from', () => {
    for (const m of [put, nak, digest]) expect(codeOf(() => encodeMessage(m))).to.equal(undefined);
    expect(codeOf(() => encodePacket({ header, fragment }))).to.equal(undefined);
    expect(codeOf(() => encodePacket({ header: putHeader, fragment: new Uint8Array(10) }))).to.equal(undefined);
  });

  for (const [what, m] of badMessages) {
    it(`refuses ${what} with MCCACHE_ERR_INVALID_ARGUMENT`, () => {
      expect(codeOf(() => encodeMessage(m as Message))).to.equal('MCCACHE_ERR_INVALID_ARGUMENT');
      expect(codeOf(() => encodedMessageSize(m as Message))).to.equal('MCCACHE_ERR_INVALID_ARGUMENT');
    });
  }

  for (const [what, h, f] of badPackets) {
    it(`refuses a header with ${what} with MCCACHE_ERR_INVALID_ARGUMENT`, () => {
      expect(codeOf(() => encodePacket({ header: h as PacketHeader, fragment: f }))).to.equal('MCCACHE_ERR_INVALID_ARGUMENT');
    });
  }

  it('refuses a bitmap index outside 0..numFrags-1 with MCCACHE_ERR_INVALID_ARGUMENT', () => {
    expect(codeOf(() => indexesToBitmap([0, 10], 10))).to.equal('MCCACHE_ERR_INVALID_ARGUMENT');
    expect(codeOf(() => indexesToBitmap([-1], 10))).to.equal('MCCACHE_ERR_INVALID_ARGUMENT');
    expect(codeOf(() => indexesToBitmap([9], 10))).to.equal(undefined);
  });

  it('refuses a message over 255 x 65507 bytes in all with MCCACHE_ERR_MESSAGE_TOO_LARGE', () => {
    const big: Message = { ...put, value: new Uint8Array(MAX_MESSAGE_SIZE) } as Message;
    expect(codeOf(() => encodeMessage(big))).to.equal('MCCACHE_ERR_MESSAGE_TOO_LARGE');
  });

  it('never throws anything but McCacheError for a valid message with one field replaced by junk', () => {
    const junk = fc.oneof(fc.constant(undefined), fc.constant(null), fc.string(), fc.double(), fc.bigInt(), fc.constant([]), fc.constant({}));
    fc.assert(fc.property(anyMessage(), fc.nat(), junk, (m, pick, value) => {
      const fields = Object.keys(m).filter((k) => k !== 'op');
      if (fields.length === 0) return;
      const broken = { ...m, [fields[pick % fields.length]!]: value } as Message;
      codeOf(() => encodeMessage(broken)); // asserts the type of whatever is thrown
    }), params(300));
  });
});
