/**
 * Encoders mirror the .ksy: whatever `encodeMessage`/`encodePacket` produce, the generated
 * parsers (through decodeMessage/decodePacket) read back as the same value (STYLE.md rule 1).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { decodeMessage, decodePacket } from '../../runtime/codec/decode';
import { encodeMessage, encodePacket, encodedMessageSize, indexesToBitmap } from '../../runtime/codec/encode';
import type { Message } from '../../runtime/codec/packet';
import { OPS, anyPacket, messageOf, params } from './wire-arbitraries';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('wire round trip', function () {
  // Property runs scale with FC_NUM_RUNS; mocha's default 2 s limit would fail a slow machine, not the code.
  this.timeout(600_000);
  for (const op of OPS) {
    it(`decodes every encoded ${op} message to an equal message`, () => {
      fc.assert(fc.property(messageOf(op), (m) => {
        const bytes = encodeMessage(m);
        expect(bytes.length).to.equal(encodedMessageSize(m));
        expect(decodeMessage(op, bytes)).to.deep.equal(m);
      }), params(150));
    });
  }

  it('decodes every encoded packet to an equal packet, header and fragment and message', () => {
    fc.assert(fc.property(anyPacket(), (p) => {
      expect(decodePacket(encodePacket(p))).to.deep.equal(p);
    }), params(1500));
  });

  it('keeps u8 fields exact at 2^64-1, where a double would round', () => {
    const max = 2n ** 64n - 1n;
    const m: Message = { op: 'ack', entries: [{ senderId: max, deliveredSeq: 0xffffffff }, { senderId: 2n ** 53n + 1n, deliveredSeq: 0 }] };
    expect(decodeMessage('ack', encodeMessage(m))).to.deep.equal(m);
    const fragment = encodeMessage({ op: 'heartbeat', heartbeatInterval: 1000, numMembers: 3, lowSeq: 1 });
    const header = { op: 'heartbeat' as const, flags: 0, keyId: 0, fragIndex: 0, numFrags: 1, senderId: max - 1n, msgSeq: 7, lenMessage: fragment.length };
    expect(decodePacket(encodePacket({ header, fragment })).header.senderId).to.equal(max - 1n);
  });

  it('writes the header big-endian, field by field as in mccache_datagram.ksy', () => {
    const fragment = encodeMessage({ op: 'heartbeat', heartbeatInterval: 0x01020304, numMembers: 0x0506, lowSeq: 0x31323334 });
    const bytes = encodePacket({
      header: { op: 'heartbeat', flags: 2, keyId: 0, fragIndex: 0, numFrags: 1, senderId: 0x1112131415161718n, msgSeq: 0x21222324, lenMessage: 10 },
      fragment,
    });
    expect(hex(bytes)).to.equal('4d43' + '01' + '42' + '02' + '00' + '00' + '01' + '1112131415161718' + '21222324'
      + '0000000a' + '000a' + '0000' + '01020304' + '0506' + '31323334');
  });

  it('sets bit 7 of the first bitmap byte for fragment 0 of a NAK partial', () => {
    const m: Message = { op: 'nak', target: 1n, ranges: [], partials: [{ msgSeq: 9, numFrags: 10, missing: [0, 9] }] };
    expect(hex(encodeMessage(m))).to.equal('0000000000000001' + '00' + '01' + '00000009' + '0a' + '8040');
    expect(hex(indexesToBitmap([0, 9], 10))).to.equal('8040');
    expect(decodeMessage('nak', encodeMessage(m))).to.deep.equal(m);
  });

  it('round-trips every count field at its maximum', () => {
    const all = Array.from({ length: 255 }, (_, i) => i);
    const cases: Message[] = [
      { op: 'nak', target: 2n, ranges: all.map((i) => ({ first: i, last: i + 1 })),
        partials: all.map((i) => ({ msgSeq: i, numFrags: 255, missing: all })) },
      { op: 'ack', entries: all.map((i) => ({ senderId: BigInt(i), deliveredSeq: i })) },
      { op: 'sync_digest', cache: 'c', numEntries: 0xffffffff, clearHlc: (1n << 64n) - 1n, clearOrigin: 1n, numBuckets: 0xffff, firstBucket: 0,
        hashes: Array.from({ length: 0xffff }, (_, i) => BigInt(i) * 0x1_0000_0001n) },
      { op: 'sync_request', target: 3n, cache: 'c', numBuckets: 0xffff, bucketIds: Array.from({ length: 0xffff }, (_, i) => i) },
      { op: 'sync_entries', cache: 'c', replyTo: 0n, entries: Array.from({ length: 0xffff }, (_, i) => ({
        key: String(i), hlc: BigInt(i), originId: 1n, kind: 'tombstone' as const, ttl: 0, codec: 'none' as const, value: new Uint8Array(0) })) },
    ];
    for (const m of cases) expect(decodeMessage(m.op, encodeMessage(m))).to.deep.equal(m);
  });
});
