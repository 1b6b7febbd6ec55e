/**
 * Sealing of datagrams (runtime/codec/crypto.ts, spec/README.md "Encryption"): AES-256-GCM with
 * the header (retransmission bit cleared) as associated data, nonces of a random 8-byte id and
 * a 4-byte count, key ids for rotation, and the replay window. Here on the codec alone; the
 * core's use of it is in sealed-core.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import fc from 'fast-check';
import { MAX_SEALED, REPLAY_WINDOW, ReplayWindow, Sealer } from '../../runtime/codec/crypto';
import { decodeMessage, decodePacket } from '../../runtime/codec/decode';
import { encodeMessage } from '../../runtime/codec/encode';
import { fragmentMessage, maxMessageSize, planFragments } from '../../runtime/codec/fragment';
import { Reassembler } from '../../runtime/codec/reassembler';
import { FLAG_ENCRYPTED, FLAG_RETRANSMISSION, HEADER_SIZE, MAX_MTU, MIN_MTU, type Message } from '../../runtime/codec/packet';
import { ReliableCore } from '../../runtime/core/reliable-core';
import { ErrorCode, McCacheError } from '../../runtime/errors';
import { codeOf } from '../error-code';

const K1 = new Uint8Array(32).fill(0x11);
const K2 = new Uint8Array(32).fill(0x22);


function patterned(n: number, salt = 0): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8) + salt) & 0xff;
  return b;
}

const putOf = (n: number): Message => ({ op: 'put', cache: 'c', key: 'k', hlc: 7n, ttl: 0, codec: 'bytes', value: patterned(n) });
const header = (d: Uint8Array): Uint8Array => d.subarray(0, HEADER_SIZE);
const sealed = (d: Uint8Array): Uint8Array => d.subarray(HEADER_SIZE);
function opens(s: Sealer, d: Uint8Array): string {
  const r = s.open(header(d), sealed(d));
  return r.ok ? 'ok' : r.reason;
}

describe('security/sealer: AES-256-GCM sealing of datagrams', () => {
  describe('sealed fragmentation', () => {
    it('every fragment carries mtu - 56 bytes of message; the limit is 255 x (mtu - 56)', () => {
      for (const mtu of [MIN_MTU, 1472, 9000, MAX_MTU]) {
        expect(planFragments(0, mtu, { encrypted: true }).capacity).to.equal(mtu - 56);
        expect(maxMessageSize(mtu, { encrypted: true })).to.equal(255 * (mtu - 56));
      }
      const s = new Sealer({ id: 1, key: K1 });
      for (const n of [0, 1, 1416, 1417, 2 * 1416, 255 * 1416]) {
        const ds = fragmentMessage('put', patterned(n), { senderId: 5n, msgSeq: 3, mtu: 1472, sealer: s });
        expect(ds.length, `${n} bytes`).to.equal(Math.max(1, Math.ceil(n / 1416)));
        for (const d of ds) expect(d.length).to.be.at.most(1472);
      }
      expect(codeOf(() => fragmentMessage('put', patterned(255 * 1416 + 1), { senderId: 5n, msgSeq: 3, mtu: 1472, sealer: s })))
        .to.equal(ErrorCode.MESSAGE_TOO_LARGE);
    });

    it('headers say encrypted, the key id and len_fragment = plaintext + 28; fragments open and reassemble', () => {
      const s = new Sealer([{ id: 9, key: K1 }]);
      const body = encodeMessage(putOf(5000));
      const ds = fragmentMessage('put', body, { senderId: 0xfedcba9876543210n, msgSeq: 77, mtu: MIN_MTU, sealer: s });
      const r = new Reassembler();
      let done: Uint8Array | undefined;
      ds.forEach((d, i) => {
        const p = decodePacket(d);
        expect(p.header).to.include({ op: 'put', flags: FLAG_ENCRYPTED, keyId: 9, fragIndex: i, numFrags: ds.length, msgSeq: 77, lenMessage: body.length });
        expect(p.message).to.equal(undefined);
        const o = s.open(header(d), p.fragment);
        if (!o.ok) throw new Error(o.reason);
        expect(p.fragment.length).to.equal(o.plaintext.length + 28);
        expect(o.keyId).to.equal(9);
        const res = r.push(0, { header: p.header, fragment: o.plaintext });
        if (res.kind === 'complete') done = res.message;
      });
      expect(Buffer.from(done!).equals(Buffer.from(body))).to.equal(true);
      expect(decodeMessage('put', done!)).to.deep.equal(putOf(5000));
    });

    it('the ciphertext hides the plaintext (no fragment bytes appear in clear)', () => {
      const s = new Sealer({ id: 1, key: K1 });
      const body = new TextEncoder().encode('a secret value that must not be readable on the wire');
      const [d] = fragmentMessage('put', body, { senderId: 5n, msgSeq: 1, mtu: 1472, sealer: s });
      expect(Buffer.from(d!).includes(Buffer.from('secret'))).to.equal(false);
    });

    it('an empty message seals to exactly 28 bytes of fragment and opens to nothing', () => {
      const s = new Sealer({ id: 1, key: K1 });
      const [d] = fragmentMessage('heartbeat', new Uint8Array(0), { senderId: 5n, msgSeq: 0, mtu: 1472, sealer: s });
      expect(d!.length).to.equal(56);
      const o = s.open(header(d!), sealed(d!));
      expect(o.ok && o.plaintext.length).to.equal(0);
    });
  });

  describe('nonces', () => {
    it('are the sealer\'s 8-byte id and a count from 1, never repeated; each sealer draws its own id', () => {
      const s = new Sealer({ id: 1, key: K1 });
      const nonces = new Set<string>();
      const ds = fragmentMessage('put', patterned(200 * 1416), { senderId: 5n, msgSeq: 1, mtu: 1472, sealer: s });
      for (let i = 0; i < 300; i++) ds.push(...fragmentMessage('ack', new Uint8Array(0), { senderId: 5n, msgSeq: 1, mtu: 1472, sealer: s }));
      ds.forEach((d, i) => {
        const nonce = sealed(d).subarray(0, 12);
        expect(Buffer.from(nonce.subarray(0, 8)).equals(Buffer.from(s.nonceId))).to.equal(true);
        expect(Buffer.from(nonce).readUInt32BE(8)).to.equal(i + 1);
        nonces.add(Buffer.from(nonce).toString('hex'));
      });
      expect(nonces.size).to.equal(ds.length);
      expect(s.sealed).to.equal(ds.length);
      const ids = new Set(Array.from({ length: 50 }, () => Buffer.from(new Sealer({ id: 1, key: K1 }).nonceId).toString('hex')));
      expect(ids.size).to.equal(50);
    });

    it('past 2^32 - 1 datagrams the sealer refuses (NONCE_EXHAUSTED), a message whole or not at all', () => {
      const s = new Sealer({ id: 1, key: K1 }, { startCount: MAX_SEALED - 2 });
      const three = patterned(3 * 1416);
      expect(codeOf(() => fragmentMessage('put', three, { senderId: 5n, msgSeq: 1, mtu: 1472, sealer: s }))).to.equal(ErrorCode.NONCE_EXHAUSTED);
      expect(s.sealed).to.equal(MAX_SEALED - 2);
      const two = fragmentMessage('put', patterned(2 * 1416), { senderId: 5n, msgSeq: 1, mtu: 1472, sealer: s });
      expect(Buffer.from(sealed(two[1]!)).readUInt32BE(8)).to.equal(MAX_SEALED);
      expect(s.remaining).to.equal(0);
      expect(codeOf(() => fragmentMessage('ack', new Uint8Array(0), { senderId: 5n, msgSeq: 1, mtu: 1472, sealer: s }))).to.equal(ErrorCode.NONCE_EXHAUSTED);
      expect(codeOf(() => s.seal(header(two[0]!), new Uint8Array(1416)))).to.equal(ErrorCode.NONCE_EXHAUSTED);
    });

    it('renewed(): the same keyring and current key, a new nonce id, counts from 1 again', () => {
      const s = new Sealer([{ id: 1, key: K1 }, { id: 2, key: K2 }], { currentKeyId: 2, startCount: MAX_SEALED - 5 });
      const r = s.renewed();
      expect(r.keyId).to.equal(2);
      expect(r.keyIds).to.deep.equal([1, 2]);
      expect(r.sealed).to.equal(0);
      expect(r.remaining).to.equal(MAX_SEALED);
      expect(Buffer.from(r.nonceId).equals(Buffer.from(s.nonceId))).to.equal(false);
      expect(s.sealed).to.equal(MAX_SEALED - 5);
      const [d] = fragmentMessage('put', encodeMessage(putOf(40)), { senderId: 9n, msgSeq: 1, mtu: 1472, sealer: r });
      expect(Buffer.from(sealed(d!)).readUInt32BE(8)).to.equal(1);
      expect(opens(s, d!)).to.equal('ok'); // the old sealer opens it: same keys
      const fixed = new Uint8Array(8).fill(0xab);
      expect(Buffer.from(s.renewed({ nonceId: fixed }).nonceId).equals(Buffer.from(fixed))).to.equal(true);
      expect(codeOf(() => s.renewed({ nonceId: new Uint8Array(3) }))).to.equal(ErrorCode.INVALID_OPTION);
    });

    it('a core handed a nearly spent sealer renews its identity at start instead of failing', () => {
      // It used to throw NONCE_EXHAUSTED from send (and, with heartbeats, from every timeout).
      const spent = new Sealer({ id: 1, key: K1 }, { startCount: MAX_SEALED - 1 });
      const core = new ReliableCore({ nodeId: 3n, rng: () => 0.5, sealer: spent });
      core.start(0);
      expect(core.nodeId).to.not.equal(3n);
      const join = core.pollTransmit()!.bytes;
      expect(decodePacket(join).header.senderId).to.equal(core.nodeId);
      expect(Buffer.from(sealed(join).subarray(0, 8)).equals(Buffer.from(spent.nonceId))).to.equal(false);
      expect(Buffer.from(sealed(join)).readUInt32BE(8)).to.equal(1);
      expect(core.pollTransmit()).to.equal(undefined); // no LEAVE: the old id never announced itself
      expect(spent.sealed).to.equal(MAX_SEALED - 1);
      expect(core.send(1, putOf(10))).to.equal(1);
      expect(core.stats()).to.include({ messagesSent: 1, renewals: 1 });
      const events = [core.pollEvent(), core.pollEvent()];
      expect(events).to.deep.equal([{ type: 'renewed', oldId: 3n, newId: core.nodeId, reason: 'nonce' }, { type: 'writable' }]);
    });

    it('a core renews before its sealer runs out: LEAVE from the old id, the rest under a new one, nothing throws', () => {
      const s = new Sealer({ id: 1, key: K1 }, { startCount: MAX_SEALED - 7 });
      const core = new ReliableCore({ nodeId: 3n, rng: () => 0.5, sealer: s, renewNonceMargin: 3 });
      core.start(0); // JOIN: 6 left
      const out: Uint8Array[] = [];
      const drain = (): void => { for (let t = core.pollTransmit(); t; t = core.pollTransmit()) out.push(t.bytes); };
      for (let i = 1; i <= 5; i++) {
        expect(core.send(i, putOf(10)), `send ${i}`).to.be.a('number');
        drain();
      }
      // 6 - 3 sends = 3 left; the 4th would leave 2 < 3: LEAVE twice, then JOIN and the message
      // under the new id. (No member: the window is empty, nothing to wait for.)
      const oldDatagrams = out.filter((d) => decodePacket(d).header.senderId === 3n);
      expect(oldDatagrams.map((d) => decodePacket(d).header.op)).to.deep.equal(['join', 'put', 'put', 'put', 'leave', 'leave']);
      expect(oldDatagrams.map((d) => Buffer.from(sealed(d)).readUInt32BE(8))).to.deep.equal([6, 5, 4, 3, 2, 1].map((k) => MAX_SEALED - k));
      expect(s.remaining).to.equal(1);
      const fresh = out.filter((d) => decodePacket(d).header.senderId === core.nodeId);
      expect(fresh.map((d) => [decodePacket(d).header.op, decodePacket(d).header.msgSeq])).to.deep.equal([['join', 0], ['put', 1], ['put', 2]]);
      for (const d of out) expect(opens(s, d)).to.equal('ok');
      for (let t = 10; t < 5000; t += 50) core.handleTimeout(t); // heartbeats keep going
      expect(core.stats().renewals).to.equal(1);
    });
  });

  describe('authentication', () => {
    const s = new Sealer({ id: 1, key: K1 });
    const [d] = fragmentMessage('put', encodeMessage(putOf(40)), { senderId: 0x1234n, msgSeq: 9, mtu: 1472, sealer: s });
    const datagram = d!;

    it('opens as sent, and with the retransmission bit set (a retransmission is the stored datagram)', () => {
      expect(opens(s, datagram)).to.equal('ok');
      const re = datagram.slice();
      re[4] = re[4]! | FLAG_RETRANSMISSION;
      expect(opens(s, re)).to.equal('ok');
      expect(decodePacket(re).header.flags).to.equal(FLAG_ENCRYPTED | FLAG_RETRANSMISSION);
    });

    it('any other bit flipped, in the header or the fragment, fails (key id bits: unknown key id)', () => {
      for (let byte = 0; byte < datagram.length; byte++) {
        for (let bit = 0; bit < 8; bit++) {
          if (byte === 4 && bit === 1) continue;
          const t = datagram.slice();
          t[byte] = t[byte]! ^ (1 << bit);
          expect(opens(s, t), `byte ${byte} bit ${bit}`).to.equal(byte === 5 ? 'unknown_key_id' : 'auth_failed');
        }
      }
    });

    it('another key fails; an unknown key id is told apart; too short is truncated', () => {
      expect(opens(new Sealer({ id: 1, key: K2 }), datagram)).to.equal('auth_failed');
      expect(opens(new Sealer({ id: 2, key: K1 }), datagram)).to.equal('unknown_key_id');
      expect(s.open(header(datagram), sealed(datagram).subarray(0, 27))).to.deep.equal({ ok: false, reason: 'truncated' });
      expect(s.open(header(datagram).subarray(0, 27), sealed(datagram))).to.deep.equal({ ok: false, reason: 'truncated' });
      for (let cut = 28; cut < sealed(datagram).length; cut++) {
        expect(s.open(header(datagram), sealed(datagram).subarray(0, cut)).ok, `cut at ${cut}`).to.equal(false);
      }
    });

    it('random bytes with a valid-looking header never open', () => {
      fc.assert(fc.property(fc.uint8Array({ minLength: 28, maxLength: 200 }), (junk) => {
        const o = s.open(header(datagram), junk);
        expect(o.ok).to.equal(false);
      }), { numRuns: 2000 });
    });
  });

  describe('key ids and rotation', () => {
    it('seals with the current key and opens with any key of the keyring', () => {
      const old = new Sealer({ id: 1, key: K1 });
      const both = new Sealer([{ id: 1, key: K1 }, { id: 2, key: K2 }], { currentKeyId: 2 });
      const next = new Sealer({ id: 2, key: K2 });
      expect(both.keyId).to.equal(2);
      expect(both.keyIds).to.have.members([1, 2]);
      const fromOld = fragmentMessage('ack', new Uint8Array(3), { senderId: 1n, msgSeq: 1, mtu: 1472, sealer: old })[0]!;
      const fromBoth = fragmentMessage('ack', new Uint8Array(3), { senderId: 1n, msgSeq: 1, mtu: 1472, sealer: both })[0]!;
      expect(fromBoth[5]).to.equal(2);
      expect(opens(both, fromOld)).to.equal('ok');
      expect(opens(next, fromBoth)).to.equal('ok');
      expect(opens(old, fromBoth)).to.equal('unknown_key_id');
      expect(opens(next, fromOld)).to.equal('unknown_key_id');
    });

    it('refuses bad keyrings (INVALID_OPTION) and misuse of seal (INVALID_ARGUMENT)', () => {
      for (const bad of [[], [{ id: 0, key: K1 }], [{ id: 256, key: K1 }], [{ id: 1.5, key: K1 }], [{ id: 1, key: new Uint8Array(16) }],
        [{ id: 1, key: K1 }, { id: 1, key: K2 }], [null]]) {
        expect(codeOf(() => new Sealer(bad as never)), JSON.stringify(bad)).to.equal(ErrorCode.INVALID_OPTION);
      }
      expect(codeOf(() => new Sealer({ id: 1, key: K1 }, { currentKeyId: 2 }))).to.equal(ErrorCode.INVALID_OPTION);
      expect(codeOf(() => new Sealer({ id: 1, key: K1 }, { nonceId: new Uint8Array(7) }))).to.equal(ErrorCode.INVALID_OPTION);
      expect(codeOf(() => new Sealer({ id: 1, key: K1 }, { startCount: -1 }))).to.equal(ErrorCode.INVALID_OPTION);
      const s = new Sealer({ id: 1, key: K1 });
      const [d] = fragmentMessage('ack', new Uint8Array(4), { senderId: 1n, msgSeq: 1, mtu: 1472, sealer: s });
      const h = header(d!).slice();
      expect(codeOf(() => s.seal(h.subarray(0, 20), new Uint8Array(4)))).to.equal(ErrorCode.INVALID_ARGUMENT);
      expect(codeOf(() => s.seal(h, new Uint8Array(5)))).to.equal(ErrorCode.INVALID_ARGUMENT); // len_fragment disagrees
      h[5] = 2;
      expect(codeOf(() => s.seal(h, new Uint8Array(4)))).to.equal(ErrorCode.INVALID_ARGUMENT); // not the current key id
      h[5] = 1;
      h[4] = 0;
      expect(codeOf(() => s.seal(h, new Uint8Array(4)))).to.equal(ErrorCode.INVALID_ARGUMENT); // encrypted flag clear
      expect(codeOf(() => fragmentMessage('ack', new Uint8Array(4), { senderId: 1n, msgSeq: 1, mtu: 1472, sealer: s, keyId: 3 })))
        .to.equal(ErrorCode.INVALID_ARGUMENT);
      expect(codeOf(() => fragmentMessage('ack', new Uint8Array(4), { senderId: 1n, msgSeq: 1, mtu: 1472, flags: FLAG_ENCRYPTED })))
        .to.equal(ErrorCode.INVALID_ARGUMENT);
      expect(codeOf(() => new ReliableCore({ nodeId: 1n, rng: Math.random, sealer: {} as Sealer }))).to.equal(ErrorCode.INVALID_OPTION);
    });

    it('the key is copied: changing the caller\'s bytes afterwards changes nothing', () => {
      const key = randomBytes(32);
      const s = new Sealer({ id: 1, key });
      const [d] = fragmentMessage('ack', new Uint8Array(4), { senderId: 1n, msgSeq: 1, mtu: 1472, sealer: s });
      const copy = new Sealer({ id: 1, key: Buffer.from(key) });
      key.fill(0);
      expect(opens(copy, d!)).to.equal('ok');
      expect(opens(s, d!)).to.equal('ok');
    });
  });

  describe('replay window', () => {
    it('accepts a count once, within REPLAY_WINDOW below the highest, as a full history would', () => {
      const op = fc.oneof(
        fc.record({ kind: fc.constant('accept' as const), delta: fc.integer({ min: -2 * REPLAY_WINDOW, max: 40 }) }),
        fc.record({ kind: fc.constant('record' as const), delta: fc.integer({ min: -2 * REPLAY_WINDOW, max: 3 * REPLAY_WINDOW }) }),
      );
      fc.assert(fc.property(fc.array(op, { minLength: 1, maxLength: 300 }), (ops) => {
        const w = new ReplayWindow();
        const history = new Set<number>();
        let highest = 0;
        for (const o of ops) {
          const c = Math.max(0, highest + o.delta);
          if (o.kind === 'accept') {
            const want = c + REPLAY_WINDOW > highest && !history.has(c);
            expect(w.accept(c), `accept ${c} (highest ${highest})`).to.equal(want);
            if (want) {
              history.add(c);
              highest = Math.max(highest, c);
            }
          } else {
            w.record(c);
            history.add(c);
            highest = Math.max(highest, c);
          }
          expect(w.highest).to.equal(highest);
        }
      }), { numRuns: 1000 });
    });
  });
});
