/**
 * The reassembler's bounds, timeout and trust rules: memory stays within maxBytes +
 * O(maxMessages) under any stream of fragments, stale assemblies expire on the injected clock,
 * and fragments that disagree drop their whole assembly. A peer's input never throws.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { McCacheError } from '../../runtime/errors';
import { Reassembler, type ReassemblerOptions } from '../../runtime/codec/reassembler';
import type { OpName, Packet, PacketHeader } from '../../runtime/codec/packet';
import { OPS, SEQUENCED_OPS, packetsOf, params } from './wire-arbitraries';

function packet(h: Partial<PacketHeader>, fragment: Uint8Array): Packet {
  return { header: { op: 'put', flags: 0, keyId: 0, fragIndex: 0, numFrags: 2, senderId: 1n, msgSeq: 1, lenMessage: 20, ...h }, fragment };
}
const bytes = (n: number, fill = 1) => new Uint8Array(n).fill(fill);

describe('reassembly limits', function () {
  // Property runs scale with FC_NUM_RUNS; mocha's default 2 s limit would fail a slow machine, not the code.
  this.timeout(600_000);
  describe('options', () => {
    const bad: [keyof ReassemblerOptions, unknown][] = [
      ['maxMessages', 0], ['maxMessages', -1], ['maxMessages', 1.5], ['maxMessages', Number.NaN], ['maxMessages', '10'],
      ['maxBytes', 0], ['maxBytes', Infinity], ['maxBytes', 2 ** 53],
      ['timeout', 0], ['timeout', -5], ['timeout', Infinity], ['timeout', Number.NaN],
    ];
    for (const [name, value] of bad) {
      it(`refuses ${name}: ${String(value)} with MCCACHE_ERR_INVALID_OPTION`, () => {
        let err: unknown;
        try {
          new Reassembler({ [name]: value } as ReassemblerOptions);
        } catch (e) {
          err = e;
        }
        expect(err).to.be.instanceOf(McCacheError);
        expect((err as McCacheError).code).to.equal('MCCACHE_ERR_INVALID_OPTION');
      });
    }

    it('has documented defaults', () => {
      expect(new Reassembler()).to.include({ maxMessages: 256, maxBytes: 64 * 1024 * 1024, timeout: 5000 });
    });
  });

  describe('conflicts', () => {
    const cases: [string, Packet][] = [
      ['a different fragment count', packet({ fragIndex: 1, numFrags: 3 }, bytes(5))],
      ['a different message length', packet({ fragIndex: 1, lenMessage: 21 }, bytes(10))],
      ['a different op', packet({ fragIndex: 1, op: 'delete' }, bytes(10))],
      ['different bytes at the same index', packet({ fragIndex: 0 }, bytes(10, 2))],
      ['a different length at the same index', packet({ fragIndex: 0 }, bytes(9))],
      ['fragments that add up to less than the message', packet({ fragIndex: 1 }, bytes(9))],
    ];
    for (const [what, second] of cases) {
      it(`drops the whole assembly on ${what}, and counts it`, () => {
        const r = new Reassembler();
        expect(r.push(0, packet({ fragIndex: 0 }, bytes(10))).kind).to.equal('pending');
        expect(r.push(0, second)).to.deep.equal({ kind: 'dropped', reason: 'conflict' });
        expect(r.missing(1n, 1)).to.equal(undefined);
        expect(r.stats()).to.include({ messages: 0, bytes: 0, conflicts: 1 });
      });
    }

    it('drops an assembly as soon as its fragments leave no byte for each missing one', () => {
      const r = new Reassembler();
      expect(r.push(0, packet({ numFrags: 3, lenMessage: 20 }, bytes(10))).kind).to.equal('pending');
      expect(r.push(0, packet({ numFrags: 3, lenMessage: 20, fragIndex: 2 }, bytes(10)))).to.deep.equal({ kind: 'dropped', reason: 'conflict' });
      expect(r.stats()).to.include({ messages: 0, bytes: 0, conflicts: 1 });
    });

    it('drops a first fragment that leaves no byte for each other fragment', () => {
      const r = new Reassembler();
      expect(r.push(0, packet({ numFrags: 3, lenMessage: 11 }, bytes(10)))).to.deep.equal({ kind: 'dropped', reason: 'conflict' });
      expect(r.stats()).to.include({ messages: 0, bytes: 0, conflicts: 1 });
    });

    it('drops packets that contradict themselves as invalid', () => {
      const r = new Reassembler();
      for (const p of [
        packet({ fragIndex: 2 }, bytes(5)),
        packet({ numFrags: 256, fragIndex: 0 }, bytes(5)),
        packet({ numFrags: 1, lenMessage: 6 }, bytes(5)),
        packet({ lenMessage: 4 }, bytes(5)),
        packet({}, bytes(0)),
      ]) expect(r.push(0, p)).to.deep.equal({ kind: 'dropped', reason: 'invalid' });
      expect(r.stats()).to.include({ messages: 0, bytes: 0, invalid: 5 });
    });
  });

  describe('bounds', () => {
    it('drops a message longer than maxBytes at its first fragment', () => {
      const r = new Reassembler({ maxBytes: 100 });
      expect(r.push(0, packet({ lenMessage: 101 }, bytes(50)))).to.deep.equal({ kind: 'dropped', reason: 'over_limit' });
      expect(r.push(0, packet({ lenMessage: 100 }, bytes(50))).kind).to.equal('pending');
      expect(r.stats()).to.include({ messages: 1, bytes: 50, overLimit: 1 });
    });

    it('evicts the assembly that waited longest since its last new fragment when maxMessages is reached', () => {
      const r = new Reassembler({ maxMessages: 2 });
      r.push(0, packet({ msgSeq: 1, numFrags: 3, lenMessage: 30 }, bytes(10)));
      r.push(1, packet({ msgSeq: 2, numFrags: 3, lenMessage: 30 }, bytes(10)));
      r.push(2, packet({ msgSeq: 1, numFrags: 3, fragIndex: 1, lenMessage: 30 }, bytes(10))); // 1 is fresher than 2 now
      r.push(3, packet({ msgSeq: 3, numFrags: 3, lenMessage: 30 }, bytes(10)));
      expect(r.missing(1n, 2)).to.equal(undefined);
      expect(r.missing(1n, 1)).to.deep.equal([2]);
      expect(r.missing(1n, 3)).to.deep.equal([1, 2]);
      expect(r.stats()).to.include({ messages: 2, bytes: 30, evicted: 1 });
    });

    it('evicts the stalest assemblies to keep buffered bytes within maxBytes', () => {
      const r = new Reassembler({ maxBytes: 100 });
      r.push(0, packet({ msgSeq: 1, lenMessage: 80 }, bytes(40)));
      r.push(1, packet({ msgSeq: 2, lenMessage: 80 }, bytes(40)));
      r.push(2, packet({ msgSeq: 3, lenMessage: 80 }, bytes(40)));
      expect(r.missing(1n, 1)).to.equal(undefined);
      expect(r.stats()).to.include({ messages: 2, bytes: 80, evicted: 1 });
      // The fragment that completes message 3 is never buffered, so it evicts nothing.
      expect(r.push(3, packet({ msgSeq: 3, fragIndex: 1, lenMessage: 80 }, bytes(40))).kind).to.equal('complete');
      expect(r.stats()).to.include({ messages: 1, bytes: 40, evicted: 1 });
    });

    it('stays within maxMessages and maxBytes, never throws, and never completes a wrong message, under any stream of fragments', () => {
      const honest = fc.record({
        senderId: fc.constantFrom(1n, 2n, 2n ** 64n - 1n), msgSeq: fc.integer({ min: 1, max: 30 }),
        body: fc.uint8Array({ maxLength: 2000 }), capacity: fc.integer({ min: 1, max: 500 }),
      });
      const hostile = fc.record({
        op: fc.constantFrom<OpName>(...OPS), fragIndex: fc.integer({ min: 0, max: 255 }), numFrags: fc.integer({ min: 0, max: 256 }),
        senderId: fc.constantFrom(1n, 2n, 3n), msgSeq: fc.integer({ min: 1, max: 30 }), lenMessage: fc.integer({ min: 0, max: 5000 }),
        fragment: fc.uint8Array({ maxLength: 600 }),
      }).map(({ fragment, ...h }) => packet(h, fragment));
      const limits = fc.record({ maxMessages: fc.integer({ min: 1, max: 6 }), maxBytes: fc.integer({ min: 1, max: 6000 }), timeout: fc.integer({ min: 1, max: 500 }) });
      fc.assert(fc.property(limits, fc.array(honest, { maxLength: 10 }), fc.array(hostile, { maxLength: 60 }),
        fc.array(fc.tuple(fc.nat(), fc.nat(50)), { minLength: 1, maxLength: 400 }),
        (opts, messages, noise, schedule) => {
          const bodies = new Map<string, Uint8Array>();
          const honestPackets: Packet[] = [];
          for (const m of messages) {
            const key = `${m.senderId}/${m.msgSeq}`;
            if (bodies.has(key)) continue;
            bodies.set(key, m.body);
            honestPackets.push(...packetsOf(m.senderId, m.msgSeq, m.body, Math.max(m.capacity, Math.ceil(m.body.length / 255))));
          }
          const noisy = new Set(noise.map((p) => `${p.header.senderId}/${p.header.msgSeq}`));
          const pool = [...honestPackets, ...noise];
          if (pool.length === 0) return;
          const r = new Reassembler(opts);
          let now = 0;
          for (const [pick, step] of schedule) {
            now += step;
            const res = r.push(now, pool[pick % pool.length]!);
            if (res.kind === 'complete') {
              // Hostile fragments may complete messages of their own or spoil honest ones; a
              // message no hostile fragment touched must be the one that was sent.
              const key = `${res.senderId}/${res.msgSeq}`;
              expect(bodies.has(key) || noisy.has(key), key).to.equal(true);
              if (!noisy.has(key)) expect(Buffer.from(res.message).equals(bodies.get(key)!), key).to.equal(true);
            }
            const s = r.stats();
            expect(s.messages).to.be.at.most(opts.maxMessages);
            expect(s.bytes).to.be.within(0, opts.maxBytes);
            const due = r.pollTimeout();
            if (due !== undefined && due <= now) {
              r.expire(now);
              const next = r.pollTimeout();
              expect(next === undefined || next > now).to.equal(true);
            }
          }
          r.expire(now + opts.timeout);
          expect(r.stats()).to.include({ messages: 0, bytes: 0 });
          expect(r.pollTimeout()).to.equal(undefined);
        }), params(300));
    });
  });

  describe('timeout', () => {
    it('expires an assembly timeout ms after its last new fragment, on the injected clock', () => {
      const r = new Reassembler({ timeout: 100 });
      expect(r.pollTimeout()).to.equal(undefined);
      r.push(1000, packet({ numFrags: 3, lenMessage: 30 }, bytes(10)));
      expect(r.pollTimeout()).to.equal(1100);
      r.push(1050, packet({ numFrags: 3, fragIndex: 1, lenMessage: 30 }, bytes(10)));
      expect(r.pollTimeout()).to.equal(1150);
      expect(r.expire(1100)).to.equal(0);
      r.push(1120, packet({ numFrags: 3, fragIndex: 1, lenMessage: 30 }, bytes(10))); // a duplicate does not refresh
      expect(r.pollTimeout()).to.equal(1150);
      expect(r.expire(1149)).to.equal(0);
      expect(r.expire(1150)).to.equal(1);
      expect(r.missing(1n, 1)).to.equal(undefined);
      expect(r.stats()).to.include({ messages: 0, bytes: 0, expired: 1, duplicates: 1 });
      expect(r.pollTimeout()).to.equal(undefined);
    });

    it('expires in order of staleness and stops at the first fresh assembly', () => {
      const r = new Reassembler({ timeout: 10 });
      for (let seq = 1; seq <= 5; seq++) r.push(seq, packet({ msgSeq: seq }, bytes(10)));
      expect(r.expire(13)).to.equal(3);
      expect([1, 2, 3, 4, 5].map((s) => r.missing(1n, s) !== undefined)).to.deep.equal([false, false, false, true, true]);
      expect(r.pollTimeout()).to.equal(14);
    });

    it('treats a clock that steps back as standing still', () => {
      const r = new Reassembler({ timeout: 10 });
      r.push(100, packet({ msgSeq: 1 }, bytes(10)));
      r.push(50, packet({ msgSeq: 2 }, bytes(10)));
      expect(r.pollTimeout()).to.equal(110);
      expect(r.expire(110)).to.equal(2);
    });

    it('completes every sequenced op, not only put', () => {
      for (const op of SEQUENCED_OPS) {
        const r = new Reassembler();
        const results = packetsOf(9n, 4, bytes(25, 7), 10, op).map((p) => r.push(0, p));
        expect(results.at(-1)).to.deep.include({ kind: 'complete', op, senderId: 9n, msgSeq: 4 });
      }
    });
  });
});
