/**
 * Encryption in the reliable core (issue "Encryption with MCCACHE_CRYPTO_KEY"), on the
 * simulated network: sealed delivery works end to end (multi-fragment messages, retransmissions
 * under loss), and forged, tampered, truncated, replayed, wrong-key, unknown-key-id and
 * plaintext datagrams are dropped, counted by reason, and cause no event at all. A fuzz of
 * mutated real sealed datagrams never throws out of handleDatagram.
 *
 * FC_NUM_RUNS scales the delivery scenarios (default 150) and FUZZ_RUNS the fuzz (default
 * 20,000); FC_SEED replays a run.
 */
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import fc from 'fast-check';
import { Sealer } from '../../runtime/codec/crypto';
import { encodeMessage } from '../../runtime/codec/encode';
import { fragmentMessage } from '../../runtime/codec/fragment';
import { FLAG_RETRANSMISSION, HEADER_SIZE, type Message } from '../../runtime/codec/packet';
import { CryptoDrop, type ReliableCore } from '../../runtime/core/reliable-core';
import type { NodeId } from '../../runtime/core/types';
import { ErrorCode } from '../../runtime/errors';
import { SIM_CORE_OPTIONS } from '../core/sim-harness';
import { KEY, OTHER_KEY, SecureSim, sealedPutOfFrags, simId, totalDropped, type Captured } from './secure-sim';

const NUM_RUNS = Number(process.env.FC_NUM_RUNS ?? 150);
const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 20_000);
const SEED = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED);
const fcParams = (numRuns: number) => ({ numRuns, ...(SEED !== undefined && { seed: SEED }) });

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex').slice(0, 16);
const isSequencedDatagram = (d: Uint8Array): boolean => d[3]! < 0x40;
const senderOf = (d: Uint8Array): bigint => Buffer.from(d).readBigUInt64BE(8);
/** The crypto layer's drop reasons other than 'replayed', which network duplicates also cause. */
const HOSTILE = [CryptoDrop.AUTH_FAILED, CryptoDrop.UNKNOWN_KEY_ID, CryptoDrop.PLAINTEXT_REJECTED, CryptoDrop.ENCRYPTED_NO_KEY];

const MALFORMED: string[] = Object.values(ErrorCode).filter((c) => c.startsWith('MCCACHE_ERR_'));

/** Runs `fn` and returns the one drop reason it added to the core's counters (fails otherwise). */
function dropReasonOf(core: ReliableCore, fn: () => void): string {
  const before = core.stats().dropped;
  fn();
  const after = core.stats().dropped;
  const grew = Object.keys(after).filter((k) => after[k] !== before[k]);
  expect(grew, 'exactly one drop counter grew').to.have.length(1);
  expect(after[grew[0]!]! - (before[grew[0]!] ?? 0)).to.equal(1);
  return grew[0]!;
}

/** Everything of a core's state an attacker must not change, and its event count. */
function snapshot(sim: SecureSim, i: number): unknown {
  const c = sim.core(i);
  const st = c.stats();
  return {
    events: sim.events.get(sim.ids[i]!)!.length, members: c.members, delivered: st.messagesDelivered,
    unacked: st.unackedMessages, ooo: st.outOfOrderBuffered, reassembling: st.reassembling, gaps: st.gaps,
  };
}

/**
 * A (0) and B (1) share KEY; A has sent single- and multi-fragment messages that B delivered.
 * `fromA`: every datagram of A that B received (A's JOIN is not among them: B started after it).
 */
function formedPair(seed = 1): { sim: SecureSim; fromA: Captured[]; joinOfA: Uint8Array } {
  const sim = new SecureSim(seed, [{ key: KEY }, { key: KEY }]);
  sim.form([[0, 1]]);
  sim.send(0, sealedPutOfFrags('one', 1));
  sim.send(0, sealedPutOfFrags('three', 3));
  sim.send(0, { op: 'delete', cache: 'c', key: 'one', hlc: 2n });
  sim.send(0, sealedPutOfFrags('twelve', 12));
  sim.run(1000);
  expect(sim.delivered(1).map((e) => e.seq)).to.deep.equal([1, 2, 3, 4]);
  const joinOfA = sim.captured.find((c) => c.from === sim.ids[0] && c.bytes[3] === 0x40)!.bytes;
  return { sim, fromA: sim.receivedFrom(1, 0).map((bytes) => ({ from: sim.ids[0]!, at: 0, bytes })), joinOfA };
}

describe('security/sealed-core: the reliable core with a key', function () {
  this.timeout(0);

  describe('delivery', () => {
    const frags = fc.oneof(
      { weight: 20, arbitrary: fc.constant(1) },
      { weight: 6, arbitrary: fc.integer({ min: 2, max: 12 }) },
      { weight: 1, arbitrary: fc.constantFrom(254, 255) },
    );
    const scenario = fc.record({
      seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      nodes: fc.integer({ min: 2, max: 5 }),
      loss: fc.double({ min: 0, max: 0.3, noNaN: true }),
      duplicate: fc.double({ min: 0, max: 0.1, noNaN: true }),
      reorder: fc.double({ min: 0, max: 0.2, noNaN: true }),
      sends: fc.array(fc.record({ from: fc.nat(4), at: fc.integer({ min: 0, max: 800 }), frags }), { minLength: 1, maxLength: 15 }),
    });

    it('every sealed message arrives exactly once, in order and intact, at every member, then goes quiet', () => {
      let retransmits = 0;
      let multi = 0;
      fc.assert(fc.property(scenario, (s) => {
        const sim = new SecureSim(s.seed, Array.from({ length: s.nodes }, () => ({ key: KEY })),
          { loss: s.loss, duplicate: s.duplicate, reorder: s.reorder });
        sim.form([[...Array(s.nodes).keys()]], 20_000);
        const base = sim.net.now;
        const sent = new Map<NodeId, string[]>();
        s.sends.forEach((snd, k) => {
          const from = snd.from % s.nodes;
          sim.net.at(base + snd.at, () => {
            const m = sealedPutOfFrags(`k${k}`, snd.frags, k);
            expect(sim.send(from, m)).to.not.equal(undefined);
            const list = sent.get(sim.ids[from]!) ?? [];
            list.push(`k${k}:${sha(m.value)}`);
            sent.set(sim.ids[from]!, list);
            if (snd.frags > 1) multi++;
          });
        });
        sim.net.run(base + 800 + 6000);
        for (let r = 0; r < s.nodes; r++) {
          const got = sim.delivered(r);
          for (let f = 0; f < s.nodes; f++) {
            if (f === r) continue;
            const have = got.filter((e) => e.from === sim.ids[f]).map((e) => {
              const m = e.message as Extract<Message, { op: 'put' }>;
              return `${m.key}:${sha(m.value)}`;
            });
            expect(have, `node ${r} from ${f}`).to.deep.equal(sent.get(sim.ids[f]!) ?? []);
          }
          const st = sim.core(r).stats();
          retransmits += st.retransmits;
          expect(st.unackedMessages).to.equal(0);
          expect(st.reassembling).to.equal(0);
          for (const reason of HOSTILE) expect(st.dropped[reason] ?? 0, reason).to.equal(0);
          if (s.duplicate === 0 && s.reorder === 0) expect(st.dropped).to.deep.equal({});
        }
      }), fcParams(NUM_RUNS));
      expect(retransmits, 'retransmissions happened').to.be.greaterThan(0);
      expect(multi, 'multi-fragment messages were sent').to.be.greaterThan(0);
    });

    it('repairs a 255-fragment sealed message at 30 % loss between 5 members (retransmissions open)', () => {
      const sim = new SecureSim(7, Array.from({ length: 5 }, () => ({ key: KEY })), { loss: 0.3, duplicate: 0.05, reorder: 0.1 });
      sim.form([[0, 1, 2, 3, 4]], 20_000);
      const m = sealedPutOfFrags('big', 255);
      expect(encodeMessage(m).length).to.equal(255 * (SIM_CORE_OPTIONS.packetMtu - 56));
      expect(sim.core(0).maxMessageSize).to.equal(255 * (SIM_CORE_OPTIONS.packetMtu - 56));
      sim.send(0, m);
      sim.run(10_000);
      for (let r = 1; r < 5; r++) {
        const [e] = sim.delivered(r);
        expect((e!.message as typeof m).value).to.deep.equal(m.value);
        for (const reason of HOSTILE) expect(sim.core(r).stats().dropped[reason] ?? 0).to.equal(0);
      }
      expect(sim.core(0).stats().retransmits).to.be.greaterThan(0);
      expect(sim.captured.some((c) => (c.bytes[4]! & FLAG_RETRANSMISSION) !== 0)).to.equal(true);
    });

    it('a message one byte over 255 x (mtu - 56) is refused (MESSAGE_TOO_LARGE) and nothing is sent', () => {
      const sim = new SecureSim(2, [{ key: KEY }, { key: KEY }]);
      sim.form([[0, 1]]);
      const m = sealedPutOfFrags('big', 255);
      const over = { ...m, value: new Uint8Array(m.value.length + 1) };
      const before = sim.captured.length;
      let code: string | undefined;
      sim.net.poke(sim.ids[0]!, (c, now) => {
        try { (c as ReliableCore).send(now, over); } catch (err) { code = (err as { code: string }).code; }
      });
      expect(code).to.equal('MCCACHE_ERR_MESSAGE_TOO_LARGE');
      expect(sim.captured.length).to.equal(before);
    });
  });

  describe('hostile datagrams are dropped, counted by reason, and change nothing', () => {
    it('forged: random fragments behind a real header, or a header sealed with another key', () => {
      const { sim, fromA } = formedPair();
      const before = snapshot(sim, 1);
      const rng = fc.sample(fc.uint8Array({ minLength: 2000, maxLength: 2000 }), { numRuns: 1, seed: 5 })[0]!;
      let n = 0;
      for (const c of fromA) {
        const forged = c.bytes.slice();
        forged.set(rng.subarray(0, forged.length - HEADER_SIZE), HEADER_SIZE);
        sim.inject(1, forged);
        n++;
      }
      // An attacker with its own key, claiming to be A, or a newcomer.
      const mallory = new Sealer({ id: 1, key: OTHER_KEY });
      for (const sender of [sim.ids[0]!, 0x1234n]) {
        for (const seq of [5, 6, 1000]) {
          for (const d of fragmentMessage('put', encodeMessage(sealedPutOfFrags('evil', 2)), { senderId: sender, msgSeq: seq, mtu: 548, sealer: mallory })) {
            sim.inject(1, d);
            n++;
          }
        }
        sim.inject(1, fragmentMessage('leave', encodeMessage({ op: 'leave', reason: 'shutdown' }), { senderId: sender, msgSeq: 4, mtu: 548, sealer: mallory })[0]!);
        n++;
      }
      expect(sim.core(1).stats().dropped).to.deep.equal({ [CryptoDrop.AUTH_FAILED]: n });
      expect(snapshot(sim, 1)).to.deep.equal(before);
    });

    it('tampered: any bit of header, ciphertext or tag (but the retransmission bit)', () => {
      const { sim, fromA } = formedPair();
      const before = snapshot(sim, 1);
      const reasons = new Map<string, number>();
      let n = 0;
      for (const c of fromA) {
        const d = c.bytes;
        for (let byte = 0; byte < d.length; byte++) {
          // Every bit of the header; one bit per byte of the fragment.
          const bits = byte < HEADER_SIZE ? [0, 1, 2, 3, 4, 5, 6, 7] : [(byte * 5 + d.length) & 7];
          for (const bit of bits) {
            if (byte === 4 && bit === 1) continue;
            const t = d.slice();
            t[byte] = t[byte]! ^ (1 << bit);
            const reason = dropReasonOf(sim.core(1), () => sim.inject(1, t));
            n++;
            // Where the header stays well-formed, the reason is certain; elsewhere the header's
            // own rules (MCCACHE_ERR_*) may catch the change before authentication does.
            const want = byte >= HEADER_SIZE || (byte >= 8 && byte < 20) ? [CryptoDrop.AUTH_FAILED]
              : byte === 5 ? [CryptoDrop.UNKNOWN_KEY_ID] : byte === 4 && bit === 0 ? [CryptoDrop.PLAINTEXT_REJECTED]
                : [CryptoDrop.AUTH_FAILED, ...MALFORMED];
            expect(want, `byte ${byte} bit ${bit}: ${reason}`).to.include(reason);
            reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
          }
        }
      }
      expect(n).to.be.greaterThan(5000);
      expect(reasons.get(CryptoDrop.AUTH_FAILED)).to.be.greaterThan(n / 2);
      expect(snapshot(sim, 1)).to.deep.equal(before);
    });

    it('truncated: cut anywhere, or cut with its lengths edited to match', () => {
      const { sim, fromA } = formedPair();
      const before = snapshot(sim, 1);
      let edited = 0;
      for (const c of fromA) {
        for (let len = 0; len < c.bytes.length; len++) {
          const dropped = totalDropped(sim.core(1));
          sim.inject(1, c.bytes.slice(0, len));
          expect(totalDropped(sim.core(1)), `cut at ${len}`).to.equal(dropped + 1);
        }
        // Shorter by 1..16 bytes, with len_fragment (and len_message when single) saying so.
        for (const cut of [1, 5, 16]) {
          const t = Buffer.from(c.bytes.slice(0, c.bytes.length - cut));
          const lenFragment = t.readUInt16BE(24) - cut;
          if (lenFragment < 28 + 1) continue; // the header rules would catch it first
          t.writeUInt16BE(lenFragment, 24);
          if (t[7] === 1) t.writeUInt32BE(t.readUInt32BE(20) - cut, 20);
          sim.inject(1, t);
          edited++;
        }
      }
      expect(sim.core(1).stats().dropped[CryptoDrop.AUTH_FAILED]).to.equal(edited);
      expect(snapshot(sim, 1)).to.deep.equal(before);
    });

    it('replayed sequenced datagrams are duplicates: nothing is delivered twice', () => {
      const { sim, fromA } = formedPair();
      const seq = fromA.filter((c) => isSequencedDatagram(c.bytes));
      expect(seq.length).to.be.greaterThanOrEqual(17); // 1 + 3 + 1 + 12 fragments
      const before = snapshot(sim, 1);
      const dup0 = sim.core(1).stats().duplicates;
      for (const c of seq) {
        sim.inject(1, c.bytes);
        const re = c.bytes.slice();
        re[4] = re[4]! | FLAG_RETRANSMISSION; // as a retransmission
        sim.inject(1, re);
      }
      sim.run(500); // and later still
      for (const c of seq) sim.inject(1, c.bytes);
      expect(sim.core(1).stats().duplicates - dup0).to.equal(3 * seq.length);
      expect(sim.core(1).stats().dropped).to.deep.equal({});
      const after = snapshot(sim, 1) as { events: number };
      // Only the 500 ms of normal traffic in between (no event there either: no new members, no deliveries).
      expect(after).to.deep.equal(before);
    });

    it('replayed unsequenced datagrams (heartbeat, ACK, JOIN) are dropped as replayed: each is taken at most once', () => {
      const { sim, fromA, joinOfA } = formedPair();
      const ctl = fromA.filter((c) => !isSequencedDatagram(c.bytes));
      expect(ctl.map((c) => c.bytes[3])).to.include.members([0x42, 0x44]);
      const before = snapshot(sim, 1);
      for (const c of ctl) sim.inject(1, c.bytes);
      expect(sim.core(1).stats().dropped).to.deep.equal({ [CryptoDrop.REPLAYED]: ctl.length });
      // A's JOIN went out before B started: authentic and never seen, it is taken once (it
      // changes nothing for a known member), then refused.
      sim.inject(1, joinOfA);
      expect(sim.core(1).stats().dropped).to.deep.equal({ [CryptoDrop.REPLAYED]: ctl.length });
      sim.run(300);
      for (const c of ctl) sim.inject(1, c.bytes);
      sim.inject(1, joinOfA);
      expect(sim.core(1).stats().dropped).to.deep.equal({ [CryptoDrop.REPLAYED]: 2 * ctl.length + 1 });
      expect(snapshot(sim, 1)).to.deep.equal(before);
    });

    it('replays neither keep a crashed member alive nor bring a departed one back', () => {
      const { sim, fromA } = formedPair();
      const a = sim.ids[0]!;
      sim.net.crash(a);
      const crashedAt = sim.net.now;
      let downAt: number | undefined;
      const stop = crashedAt + 3 * SIM_CORE_OPTIONS.failureTimeout;
      for (let t = crashedAt + 50; t < stop; t += 50) {
        sim.net.at(t, () => {
          for (const c of fromA) sim.inject(1, c.bytes);
          if (downAt === undefined && !sim.core(1).members.includes(a)) downAt = sim.net.now;
        });
      }
      sim.net.run(stop);
      expect(downAt, 'A removed').to.not.equal(undefined);
      expect(downAt! - crashedAt).to.be.at.most(SIM_CORE_OPTIONS.failureTimeout + SIM_CORE_OPTIONS.heartbeatInterval + 50);
      const ev = sim.events.get(sim.ids[1]!)!;
      const downs = ev.filter((e) => e.type === 'member-down');
      expect(downs).to.deep.equal([{ type: 'member-down', nodeId: a, reason: 'timeout' }]);
      expect(ev.filter((e) => e.type === 'member-up' && e.nodeId === a)).to.have.length(1); // at formation only
      expect(sim.core(1).members).to.deep.equal([]);
      expect(sim.core(1).stats().dropped[CryptoDrop.REPLAYED]).to.be.greaterThan(0);
    });

    it('a wrong key, an unknown key id, or no key: nothing gets through in either direction', () => {
      // 0, 1: KEY; 2: OTHER_KEY; 3: KEY under key id 2; 4: no key.
      const sim = new SecureSim(3, [{ key: KEY }, { key: KEY }, { key: OTHER_KEY }, { key: KEY, id: 2 }, undefined]);
      sim.form([[0, 1], [2], [3], [4]]);
      sim.send(0, sealedPutOfFrags('x', 1));
      sim.send(0, sealedPutOfFrags('y', 4));
      sim.net.poke(sim.ids[4]!, (c, now) => (c as ReliableCore).send(now, sealedPutOfFrags('plain', 1)));
      sim.net.poke(sim.ids[2]!, (c, now) => (c as ReliableCore).send(now, sealedPutOfFrags('wrong', 2)));
      sim.run(2000);
      expect(sim.delivered(1).map((e) => (e.message as { key: string }).key)).to.deep.equal(['x', 'y']);
      for (const i of [2, 3, 4]) {
        expect(sim.delivered(i), `node ${i}`).to.deep.equal([]);
        expect(sim.core(i).members, `node ${i}`).to.deep.equal([]);
        expect(sim.events.get(sim.ids[i]!)!.filter((e) => e.type !== 'writable'), `node ${i}`).to.deep.equal([]);
      }
      const d = (i: number) => sim.core(i).stats().dropped;
      expect(d(1)[CryptoDrop.AUTH_FAILED]).to.be.greaterThan(0); // from 2
      expect(d(1)[CryptoDrop.UNKNOWN_KEY_ID]).to.be.greaterThan(0); // from 3
      expect(d(1)[CryptoDrop.PLAINTEXT_REJECTED]).to.be.greaterThan(0); // from 4
      expect(Object.keys(d(2))).to.have.members([CryptoDrop.AUTH_FAILED, CryptoDrop.UNKNOWN_KEY_ID, CryptoDrop.PLAINTEXT_REJECTED]);
      expect(Object.keys(d(3))).to.have.members([CryptoDrop.UNKNOWN_KEY_ID, CryptoDrop.PLAINTEXT_REJECTED]);
      expect(Object.keys(d(4))).to.have.members([CryptoDrop.ENCRYPTED_NO_KEY]);
      expect(sim.core(1).members).to.deep.equal([sim.ids[0]]);
    });
  });

  describe('fuzz', () => {
    it(`${FUZZ_RUNS} mutations of real sealed datagrams never throw, and each is dropped or a duplicate`, () => {
      const { sim, fromA } = formedPair(9);
      const originals = fromA.map((c) => c.bytes);
      const b = sim.core(1);
      const bId = sim.ids[1]!;
      const before = snapshot(sim, 1);
      const op = fc.oneof(
        fc.record({ t: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
        fc.record({ t: fc.constant('set' as const), at: fc.nat(), v: fc.nat(255) }),
        fc.record({ t: fc.constant('truncate' as const), len: fc.nat() }),
        fc.record({ t: fc.constant('extend' as const), bytes: fc.uint8Array({ maxLength: 64 }) }),
        fc.record({ t: fc.constant('splice' as const), other: fc.nat(), from: fc.nat(), len: fc.nat(64) }),
        fc.record({ t: fc.constant('random' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 32 }) }),
      );
      const mutation = fc.record({ base: fc.nat(), ops: fc.array(op, { minLength: 1, maxLength: 4 }) });
      fc.assert(fc.property(mutation, ({ base, ops }) => {
        let d: Uint8Array = originals[base % originals.length]!.slice();
        for (const o of ops) {
          if (o.t === 'flip' && d.length > 0) d[o.at % d.length] = d[o.at % d.length]! ^ (1 << o.bit);
          else if (o.t === 'set' && d.length > 0) d[o.at % d.length] = o.v;
          else if (o.t === 'truncate') d = d.slice(0, o.len % (d.length + 1));
          else if (o.t === 'extend') d = Buffer.concat([d, o.bytes]);
          else if (o.t === 'splice' && d.length > 0) {
            const src = originals[o.other % originals.length]!;
            const at = o.from % d.length;
            d.set(src.subarray(at, Math.min(src.length, at + o.len, d.length)), at);
          } else if (o.t === 'random' && d.length > 0) {
            const at = o.at % d.length;
            d.set(o.bytes.subarray(0, d.length - at), at);
          }
        }
        const seen = totalDropped(b) + b.stats().duplicates;
        sim.inject(1, d); // throws out of the property if handleDatagram throws
        if (d.length >= 16 && senderOf(d) === bId) return; // claims to be B itself: ignored
        expect(totalDropped(b) + b.stats().duplicates).to.equal(seen + 1);
      }), fcParams(FUZZ_RUNS));
      expect(snapshot(sim, 1)).to.deep.equal(before);
      for (const reason of [CryptoDrop.AUTH_FAILED, CryptoDrop.PLAINTEXT_REJECTED, CryptoDrop.REPLAYED]) {
        expect(b.stats().dropped[reason] ?? 0, reason).to.be.greaterThan(0);
      }
      // Still works afterwards.
      sim.send(0, sealedPutOfFrags('after', 2));
      sim.run(500);
      expect(sim.delivered(1).map((e) => e.seq)).to.deep.equal([1, 2, 3, 4, 5]);
    });
  });

  describe('without a key', () => {
    it('plaintext still works and sealed datagrams are dropped as encrypted_no_key', () => {
      const sim = new SecureSim(4, [undefined, undefined, { key: KEY }]);
      sim.form([[0, 1], [2]]);
      sim.send(0, sealedPutOfFrags('p', 3));
      sim.run(500);
      expect(sim.delivered(1)).to.have.length(1);
      expect(sim.core(1).maxMessageSize).to.equal(255 * (SIM_CORE_OPTIONS.packetMtu - 28));
      expect(sim.core(1).encrypted).to.equal(false);
      expect(sim.core(2).encrypted).to.equal(true);
      expect(sim.core(1).stats().dropped[CryptoDrop.ENCRYPTED_NO_KEY]).to.be.greaterThan(0);
      expect(simId(1)).to.equal(sim.ids[1]);
    });
  });
});
