/**
 * Fragmentation (DESIGN.md §3, spec/README.md "Fragmentation"): a message of n bytes is
 * max(1, ceil(n / capacity)) datagrams of at most packetMtu bytes, all full but the last, none
 * empty; 255 x capacity is the limit, and one byte over is refused before anything is built.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { McCacheError, MessageTooLargeError } from '../../runtime/errors';
import { decodePacket } from '../../runtime/codec/decode';
import { fragmentMessage, maxMessageSize, planFragments } from '../../runtime/codec/fragment';
import { Reassembler } from '../../runtime/codec/reassembler';
import { decodeMessage } from '../../runtime/codec/decode';
import { encodeMessage } from '../../runtime/codec/encode';
import { MAX_MTU, MIN_MTU, type Message, type MessageOf, type OpName } from '../../runtime/codec/packet';
import { UNSEQUENCED_OPS, params } from './wire-arbitraries';
import { codeOf } from '../error-code';

const DEFAULT_MTU = 1472;


function patterned(n: number, salt = 0): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8) + salt) & 0xff;
  return b;
}

/** Bytes of a put with an empty cache name and key (`PUT_OVERHEAD` bytes) and a value filling it to n. */
const PUT_OVERHEAD = 1 + 2 + 8 + 4 + 1 + 4;
function putOfSize(n: number, salt = 0): { msg: Message; body: Uint8Array } {
  const msg: Message = { op: 'put', cache: '', key: '', hlc: BigInt(n), ttl: salt, codec: 'bytes', value: patterned(n - PUT_OVERHEAD, salt) };
  const body = encodeMessage(msg);
  expect(body.length).to.equal(n);
  return { msg, body };
}

/** Fragments, checks every datagram, decodes them and reassembles: returns the message. */
function roundTrip(op: OpName, body: Uint8Array, mtu: number): { datagrams: Uint8Array[]; message: Uint8Array } {
  const datagrams = fragmentMessage(op, body, { senderId: 2n ** 64n - 1n, msgSeq: 0xffffffff, mtu });
  const r = new Reassembler({ maxBytes: 32 * 1024 * 1024 });
  let message: Uint8Array | undefined;
  datagrams.forEach((d, i) => {
    expect(d.length).to.be.at.most(mtu);
    const p = decodePacket(d);
    expect(p.header).to.include({ op, fragIndex: i, numFrags: datagrams.length, lenMessage: body.length, msgSeq: 0xffffffff });
    expect(p.header.senderId).to.equal(2n ** 64n - 1n);
    const res = r.push(0, p);
    if (i < datagrams.length - 1) expect(res.kind).to.equal('pending');
    else if (res.kind === 'complete') message = res.message;
  });
  expect(message, 'complete after the last fragment').to.not.equal(undefined);
  return { datagrams, message: message! };
}

describe('fragmentation', function () {
  // Property runs scale with FC_NUM_RUNS; mocha's default 2 s limit would fail a slow machine, not the code.
  this.timeout(600_000);
  it('plans max(1, ceil(n / capacity)) fragments, all full but a non-empty last', () => {
    fc.assert(fc.property(fc.integer({ min: MIN_MTU, max: MAX_MTU }), fc.boolean(), fc.double({ min: 0, max: 1, noNaN: true }),
      (mtu, encrypted, frac) => {
        const capacity = mtu - 28 - (encrypted ? 28 : 0);
        const n = Math.floor(frac * 255 * capacity);
        const plan = planFragments(n, mtu, { encrypted });
        expect(plan.capacity).to.equal(capacity);
        expect(plan.numFrags).to.equal(Math.max(1, Math.ceil(n / capacity)));
        expect((plan.numFrags - 1) * capacity + plan.lastSize).to.equal(n);
        expect(plan.lastSize).to.be.within(n === 0 ? 0 : 1, capacity);
      }), params(500));
  });

  it('sends a message of k x capacity bytes as k full fragments', () => {
    for (const mtu of [MIN_MTU, DEFAULT_MTU, MAX_MTU]) {
      for (const k of [1, 2, 254, 255]) {
        const plan = planFragments(k * (mtu - 28), mtu);
        expect(plan).to.deep.equal({ numFrags: k, capacity: mtu - 28, lastSize: mtu - 28 });
      }
    }
  });

  it('sends an empty message as one datagram with an empty fragment', () => {
    expect(planFragments(0, DEFAULT_MTU)).to.deep.equal({ numFrags: 1, capacity: DEFAULT_MTU - 28, lastSize: 0 });
    const datagrams = fragmentMessage('clear', new Uint8Array(0), { senderId: 1n, msgSeq: 1, mtu: DEFAULT_MTU });
    expect(datagrams).to.have.length(1);
    // num_frags 1, len_message 0, len_fragment 0. (No op has an empty body, so decodePacket would
    // go on to refuse it as a message; the datagram layer itself allows it.)
    expect(Buffer.from(datagrams[0]!).toString('hex')).to.equal('4d430103000000010000000000000001000000010000000000000000');
  });

  it('refuses one byte over 255 x capacity with MCCACHE_ERR_MESSAGE_TOO_LARGE, stating the limit', () => {
    for (const mtu of [MIN_MTU, DEFAULT_MTU, MAX_MTU]) {
      for (const encrypted of [false, true]) {
        const limit = 255 * (mtu - 28 - (encrypted ? 28 : 0));
        expect(maxMessageSize(mtu, { encrypted })).to.equal(limit);
        expect(planFragments(limit, mtu, { encrypted }).numFrags).to.equal(255);
        let err: unknown;
        try {
          planFragments(limit + 1, mtu, { encrypted });
        } catch (e) {
          err = e;
        }
        expect(err).to.be.instanceOf(MessageTooLargeError);
        expect(err).to.include({ code: 'MCCACHE_ERR_MESSAGE_TOO_LARGE', limit, size: limit + 1 });
      }
    }
  });

  it('produces no datagram for a message one byte over the limit', () => {
    const body = new Uint8Array(255 * (MIN_MTU - 28) + 1);
    let out: Uint8Array[] | undefined;
    expect(codeOf(() => { out = fragmentMessage('put', body, { senderId: 1n, msgSeq: 1, mtu: MIN_MTU }); }))
      .to.equal('MCCACHE_ERR_MESSAGE_TOO_LARGE');
    expect(out).to.equal(undefined);
  });

  it('refuses an unsequenced message that needs two fragments with MCCACHE_ERR_MESSAGE_TOO_LARGE', () => {
    for (const op of UNSEQUENCED_OPS) {
      expect(codeOf(() => fragmentMessage(op, new Uint8Array(MIN_MTU - 27), { senderId: 1n, msgSeq: 1, mtu: MIN_MTU })))
        .to.equal('MCCACHE_ERR_MESSAGE_TOO_LARGE');
      expect(fragmentMessage(op, new Uint8Array(MIN_MTU - 28), { senderId: 1n, msgSeq: 1, mtu: MIN_MTU })).to.have.length(1);
    }
  });

  it('refuses an MTU outside 548..65507 or not an integer with MCCACHE_ERR_INVALID_OPTION', () => {
    for (const mtu of [MIN_MTU - 1, MAX_MTU + 1, 1472.5, Number.NaN, Infinity, 0]) {
      expect(codeOf(() => planFragments(10, mtu))).to.equal('MCCACHE_ERR_INVALID_OPTION');
      expect(codeOf(() => fragmentMessage('put', new Uint8Array(10), { senderId: 1n, msgSeq: 1, mtu }))).to.equal('MCCACHE_ERR_INVALID_OPTION');
    }
  });

  it('refuses bad fragmentMessage arguments with MCCACHE_ERR_INVALID_ARGUMENT', () => {
    const ok = { senderId: 1n, msgSeq: 1, mtu: DEFAULT_MTU };
    const body = new Uint8Array(10);
    expect(codeOf(() => fragmentMessage('put', body, { ...ok, flags: 1 }))).to.equal('MCCACHE_ERR_INVALID_ARGUMENT');
    expect(codeOf(() => fragmentMessage('put', body, { ...ok, keyId: 3 }))).to.equal('MCCACHE_ERR_INVALID_ARGUMENT');
    expect(codeOf(() => fragmentMessage('put', body, { ...ok, senderId: -1n }))).to.equal('MCCACHE_ERR_INVALID_ARGUMENT');
    expect(codeOf(() => fragmentMessage('put', body, { ...ok, msgSeq: -1 }))).to.equal('MCCACHE_ERR_INVALID_ARGUMENT');
    expect(codeOf(() => fragmentMessage('nope' as OpName, body, ok))).to.equal('MCCACHE_ERR_INVALID_ARGUMENT');
    expect(codeOf(() => planFragments(-1, DEFAULT_MTU))).to.equal('MCCACHE_ERR_INVALID_ARGUMENT');
  });

  it('marks retransmissions in the flags of every datagram', () => {
    const ds = fragmentMessage('put', putOfSize(3000).body, { senderId: 5n, msgSeq: 9, mtu: DEFAULT_MTU, flags: 2 });
    expect(ds.map((d) => decodePacket(d).header.flags)).to.deep.equal([2, 2, 2]);
  });

  for (const mtu of [MIN_MTU, MAX_MTU]) {
    for (const k of [1, 2, 254, 255]) {
      it(`round-trips a message of ${k} fragment(s) at MTU ${mtu}, exact multiple and one byte short`, () => {
        const capacity = mtu - 28;
        for (const n of [k * capacity, k * capacity - 1]) {
          const { msg, body } = putOfSize(n, k);
          const { datagrams, message } = roundTrip('put', body, mtu);
          expect(datagrams).to.have.length(k);
          expect(datagrams.slice(0, -1).every((d) => d.length === mtu)).to.equal(true);
          expect(datagrams.at(-1)!.length).to.equal(28 + n - (k - 1) * capacity);
          expect(Buffer.from(message).equals(body)).to.equal(true);
          // Compare the (up to 16 MB) value with Buffer.equals: chai's deep equality walks typed
          // arrays element by element and takes minutes.
          const { value, ...rest } = decodeMessage('put', message) as MessageOf<'put'>;
          const { value: sent, ...sentRest } = msg as MessageOf<'put'>;
          expect(rest).to.deep.equal(sentRest);
          expect(Buffer.from(value).equals(sent)).to.equal(true);
        }
      });
    }
  }

  it('round-trips any message length at any MTU, every datagram within the MTU', () => {
    fc.assert(fc.property(fc.integer({ min: MIN_MTU, max: 4096 }), fc.integer({ min: PUT_OVERHEAD, max: 40_000 }),
      (mtu, n) => {
        const { msg, body } = putOfSize(Math.min(n, maxMessageSize(mtu)), n);
        const { datagrams, message } = roundTrip('put', body, mtu);
        expect(datagrams).to.have.length(Math.ceil(body.length / (mtu - 28)));
        expect(decodeMessage('put', message)).to.deep.equal(msg);
      }), params(200));
  });
});
