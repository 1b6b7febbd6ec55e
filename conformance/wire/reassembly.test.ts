/**
 * Reassembly delivers each message whole, once, with its bytes intact, whatever the order,
 * repetition and interleaving of its fragments; a message with fragments missing stays pending
 * and says which ones are missing.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { Reassembler, type PushResult } from '../../runtime/codec/reassembler';
import type { Packet } from '../../runtime/codec/packet';
import { packetsOf, params } from './wire-arbitraries';

const keyOf = (senderId: bigint, msgSeq: number) => `${senderId}/${msgSeq}`;

/** Messages from a few senders (ids at the u8 edges too), with unique (sender, seq). */
const messages = () => fc.uniqueArray(fc.record({
  senderId: fc.constantFrom(1n, 2n, 2n ** 53n + 1n, 2n ** 64n - 1n),
  msgSeq: fc.integer({ min: 1, max: 20 }),
  body: fc.uint8Array({ minLength: 1, maxLength: 3000 }),
  capacity: fc.integer({ min: 1, max: 700 }),
  /** Per fragment: 0 = drop, 1 = once, 2..3 = duplicated. */
  copies: fc.array(fc.constantFrom(0, 1, 1, 1, 1, 2, 3), { minLength: 255, maxLength: 255 }),
}), { selector: (m) => keyOf(m.senderId, m.msgSeq), minLength: 1, maxLength: 8 });

describe('reassembly', function () {
  // Property runs scale with FC_NUM_RUNS; mocha's default 2 s limit would fail a slow machine, not the code.
  this.timeout(600_000);
  it('completes a one-fragment message at once, with a copy of its bytes', () => {
    const r = new Reassembler();
    const body = new Uint8Array([1, 2, 3]);
    const res = r.push(0, packetsOf(7n, 1, body, 10)[0]!);
    expect(res).to.deep.equal({ kind: 'complete', senderId: 7n, msgSeq: 1, op: 'put', message: new Uint8Array([1, 2, 3]) });
    body[0] = 99;
    expect((res as { message: Uint8Array }).message[0]).to.equal(1);
    expect(r.stats()).to.include({ messages: 0, bytes: 0, completed: 1 });
  });

  it('copies fragments, so a caller may reuse its receive buffer', () => {
    const r = new Reassembler();
    const buffer = new Uint8Array(4);
    const header = { op: 'put' as const, flags: 0, keyId: 0, numFrags: 2, senderId: 1n, msgSeq: 1, lenMessage: 8 };
    buffer.set([1, 2, 3, 4]);
    expect(r.push(0, { header: { ...header, fragIndex: 0 }, fragment: buffer }).kind).to.equal('pending');
    buffer.set([5, 6, 7, 8]);
    const res = r.push(0, { header: { ...header, fragIndex: 1 }, fragment: buffer });
    expect(res).to.deep.include({ kind: 'complete', message: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]) });
  });

  it('reports a repeated fragment of a message in progress as a duplicate', () => {
    const r = new Reassembler();
    const [p0, p1, p2] = packetsOf(1n, 1, new Uint8Array(30).fill(5), 10);
    expect(r.push(0, p0!).kind).to.equal('pending');
    expect(r.push(0, p0!).kind).to.equal('duplicate');
    expect(r.push(0, p2!).kind).to.equal('pending');
    expect(r.missing(1n, 1)).to.deep.equal([1]);
    expect(r.partial(1n, 1)).to.deep.equal({ numFrags: 3, missing: [1] });
    expect(r.push(0, p1!).kind).to.equal('complete');
    expect(r.stats()).to.include({ duplicates: 1, completed: 1, messages: 0, bytes: 0 });
    expect(r.missing(1n, 1)).to.equal(undefined);
    expect(r.partial(1n, 1)).to.equal(undefined);
  });

  it('delivers every whole message exactly once, intact, from shuffled, duplicated and interleaved fragments of many senders', () => {
    fc.assert(fc.property(messages(), fc.infiniteStream(fc.nat()), (msgs, rand) => {
      const sent = new Map(msgs.map((m) => [keyOf(m.senderId, m.msgSeq), m.body]));
      const stream: { key: string; packet: Packet }[] = [];
      const dropped = new Map<string, number[]>();
      const fragCount = new Map<string, number>();
      for (const m of msgs) {
        const key = keyOf(m.senderId, m.msgSeq);
        // At least 1/255 of the body per fragment: a message has at most 255 fragments.
        const packets = packetsOf(m.senderId, m.msgSeq, m.body, Math.max(m.capacity, Math.ceil(m.body.length / 255)));
        fragCount.set(key, packets.length);
        const lost = packets.map((_, i) => i).filter((i) => m.copies[i] === 0);
        if (packets.length > 1 && lost.length > 0) dropped.set(key, lost);
        packets.forEach((packet, i) => {
          // A one-fragment message is never lost here: it would not be in progress to check.
          const copies = packets.length === 1 ? 1 : m.copies[i]!;
          for (let c = 0; c < copies; c++) stream.push({ key, packet });
        });
      }
      // Fisher-Yates with the stream's randomness: fast-check shrinks it like any input.
      const it = rand[Symbol.iterator]();
      for (let i = stream.length - 1; i > 0; i--) {
        const j = it.next().value! % (i + 1);
        [stream[i], stream[j]] = [stream[j]!, stream[i]!];
      }

      const r = new Reassembler({ maxMessages: 64, maxBytes: 1 << 20, timeout: 1000 });
      const delivered = new Map<string, Uint8Array>();
      let duplicates = 0;
      for (const { key, packet } of stream) {
        // The reliable core drops datagrams of messages it already delivered.
        if (delivered.has(key)) continue;
        const res: PushResult = r.push(0, packet);
        if (res.kind === 'complete') delivered.set(keyOf(res.senderId, res.msgSeq), res.message);
        else if (res.kind === 'duplicate') duplicates++;
        else expect(res.kind).to.equal('pending');
      }
      for (const [key, body] of sent) {
        if (dropped.has(key)) {
          expect(delivered.has(key), key).to.equal(false);
        } else {
          expect(Buffer.from(delivered.get(key)!).equals(body), key).to.equal(true);
        }
      }
      let inProgress = 0;
      for (const m of msgs) {
        const key = keyOf(m.senderId, m.msgSeq);
        const lost = dropped.get(key);
        // A message none of whose fragments arrived is unknown, not in progress.
        const seen = lost !== undefined && lost.length < fragCount.get(key)!;
        if (seen) inProgress++;
        expect(r.missing(m.senderId, m.msgSeq)).to.deep.equal(seen ? lost : undefined);
      }
      expect(r.stats()).to.include({ messages: inProgress, duplicates, completed: delivered.size });
      expect(r.expire(999)).to.equal(0);
      expect(r.expire(1000)).to.equal(inProgress);
      expect(r.stats()).to.include({ messages: 0, bytes: 0 });
    }), params(300));
  });
});
