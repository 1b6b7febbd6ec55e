/**
 * Reliable delivery on the simulated network (issue 3): with loss up to 30 %, duplication,
 * reordering, a partition that heals and a crash, every message sent by a member that stays
 * alive is delivered exactly once, in order, to every member alive throughout; buffers stay
 * within bounds; and after delivery the network goes quiet.
 *
 * FC_NUM_RUNS scales the number of scenarios (default 1000); FC_SEED replays a run.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { DEFAULT_MAX_UNACKED_BYTES } from '../../runtime/core/reliable-core';
import { runScenario, SIM_CORE_OPTIONS, type Outcome, type Scenario } from './sim-harness';

const NUM_RUNS = Number(process.env.FC_NUM_RUNS ?? 1000);
const SEED = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED);
const fcParams = { numRuns: NUM_RUNS, ...(SEED !== undefined && { seed: SEED }) };

const frags = fc.oneof(
  { weight: 30, arbitrary: fc.constant(1) },
  { weight: 6, arbitrary: fc.integer({ min: 2, max: 12 }) },
  { weight: 1, arbitrary: fc.constantFrom(254, 255) },
);

const scenario: fc.Arbitrary<Scenario> = fc.record({
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  nodes: fc.integer({ min: 2, max: 9 }),
  loss: fc.double({ min: 0, max: 0.3, noNaN: true }),
  duplicate: fc.double({ min: 0, max: 0.1, noNaN: true }),
  reorder: fc.double({ min: 0, max: 0.2, noNaN: true }),
  sends: fc.array(fc.record({ from: fc.nat(8), at: fc.integer({ min: 20, max: 1500 }), frags }), { minLength: 1, maxLength: 25 }),
  // Shorter than the failure timeout, so nobody is declared dead: exact delivery must hold.
  partition: fc.option(fc.record({ at: fc.integer({ min: 0, max: 1500 }), duration: fc.integer({ min: 10, max: 600 }), mask: fc.nat(511) }), { freq: 3 }),
  crash: fc.option(fc.record({ node: fc.nat(8), at: fc.integer({ min: 0, max: 1500 }), restartAfter: fc.option(fc.integer({ min: 10, max: 2000 })) }), { freq: 4 }),
  maxUnackedMessages: fc.option(fc.integer({ min: 1, max: 64 }), { nil: undefined, freq: 3 }),
}, { requiredKeys: ['seed', 'nodes', 'loss', 'duplicate', 'reorder', 'sends'] });

function checkExactDelivery(o: Outcome): void {
  for (const r of o.survivors) {
    const got = o.delivered.get(r) ?? [];
    for (const s of o.survivors) {
      if (s === r) continue;
      const want = o.sent.get(s) ?? [];
      const have = got.filter((d) => d.from === s);
      expect(have.map((d) => d.seq), `node ${r} from ${s}: sequence`).to.deep.equal(want.map((w) => w.seq));
      expect(have.map((d) => `${d.key}/${d.size}`), `node ${r} from ${s}: content`).to.deep.equal(want.map((w) => `${w.key}/${w.size}`));
    }
    const gaps = o.gaps.filter((g) => g.at === r && o.survivors.has(g.from));
    expect(gaps, `node ${r}: gaps between live members`).to.deep.equal([]);
  }
}

/**
 * The send window takes a message while it holds fewer bytes than its bound, so it never holds
 * more than the bound plus one message (here at most 255 datagrams of packetMtu bytes).
 */
function checkByteBound(o: Outcome, s: Scenario): void {
  const bound = s.maxUnackedBytes ?? DEFAULT_MAX_UNACKED_BYTES;
  const largest = Math.max(...s.sends.map((x) => x.frags)) * SIM_CORE_OPTIONS.packetMtu;
  expect(o.maxUnackedBytes, 'unacknowledged bytes held by a sender').to.be.below(bound + largest);
}

function checkQuiet(o: Outcome): void {
  // The last 2 s: no NAK and no retransmission (no repair storm), nothing left to acknowledge.
  const late = o.repairs.filter((t) => t > o.end - 2000);
  expect(late.length, 'repairs in the last 2 s').to.equal(0);
  for (const id of o.survivors) {
    const st = o.cores.get(id)!.stats();
    expect(st.unackedMessages, `node ${id} unacked`).to.equal(0);
    expect(st.outOfOrderBuffered, `node ${id} out-of-order`).to.equal(0);
    expect(st.reassembling, `node ${id} reassembling`).to.equal(0);
    expect(st.members, `node ${id} members`).to.equal(o.net.nodes.length - 1);
  }
}

describe('reliable core on the simulated network', function () {
  this.timeout(0);

  it('delivers every message exactly once and in order to every live member, then goes quiet', () => {
    fc.assert(fc.property(scenario, (s) => {
      const o = runScenario(s);
      checkExactDelivery(o);
      checkQuiet(o);
      expect(o.maxOutOfOrder).to.be.at.most(8192);
      if (s.maxUnackedMessages !== undefined) expect(o.maxUnacked).to.be.at.most(s.maxUnackedMessages);
      checkByteBound(o, s);
    }), fcParams);
  });

  it('unicast mode (NAKs and retransmissions to one member each): the same guarantees', () => {
    // The simulated network delivers a datagram with `to` to that node only, as the unicast
    // driver does (README "Networks without multicast").
    fc.assert(fc.property(scenario, (s) => {
      const o = runScenario({ ...s, unicast: true });
      checkExactDelivery(o);
      checkQuiet(o);
      if (s.maxUnackedMessages !== undefined) expect(o.maxUnacked).to.be.at.most(s.maxUnackedMessages);
    }), { ...fcParams, numRuns: Math.max(1, Math.ceil(NUM_RUNS / 4)) });
  });

  it('repairs a 255-fragment message at 30 % loss between 9 members', () => {
    const o = runScenario({ seed: 7, nodes: 9, loss: 0.3, duplicate: 0.05, reorder: 0.1, sends: [{ from: 0, at: 100, frags: 255 }, { from: 3, at: 100, frags: 254 }] });
    checkExactDelivery(o);
    checkQuiet(o);
    expect(o.sent.get(o.ids[0]!)).to.have.length(1);
    const u = runScenario({ seed: 7, nodes: 9, loss: 0.3, duplicate: 0.05, reorder: 0.1, unicast: true, sends: [{ from: 0, at: 100, frags: 255 }, { from: 3, at: 100, frags: 254 }] });
    checkExactDelivery(u);
    checkQuiet(u);
  });

  it('a burst of 255-fragment messages puts at most the default byte bound in flight, and all arrive', () => {
    // 20 messages of ~137 KB at once (2.7 MB): the window takes them as ACKs free room.
    const sends = Array.from({ length: 20 }, () => ({ from: 0, at: 100, frags: 255 }));
    const s: Scenario = { seed: 11, nodes: 3, loss: 0.02, duplicate: 0, reorder: 0, sends };
    const o = runScenario(s);
    checkExactDelivery(o);
    checkQuiet(o);
    expect(o.sent.get(o.ids[0]!)).to.have.length(20);
    checkByteBound(o, s);
    expect(o.maxUnackedBytes, 'the bound was reached').to.be.at.least(DEFAULT_MAX_UNACKED_BYTES);
  });

  it('removes a crashed member within the failure timeout and frees what it held back', () => {
    const o = runScenario({ seed: 3, nodes: 3, loss: 0.1, duplicate: 0, reorder: 0, sends: [{ from: 0, at: 300, frags: 1 }], crash: { node: 2, at: 200, restartAfter: null } });
    checkExactDelivery(o);
    for (const id of o.survivors) {
      expect(o.cores.get(id)!.members).to.have.length(1);
      expect(o.cores.get(id)!.stats().unackedMessages).to.equal(0);
    }
    expect(SIM_CORE_OPTIONS.failureTimeout).to.be.below(o.end - 200);
  });

  it('after a partition longer than the failure timeout, skips what the other side freed and goes on', () => {
    // Two sides write while cut off; each side removes the other, frees its buffers, and after
    // healing reports the messages it can no longer get as gaps (anti-entropy's job), then
    // delivers new messages again.
    const o = runScenario({
      seed: 11, nodes: 4, loss: 0.05, duplicate: 0, reorder: 0,
      partition: { at: 100, duration: 3000, mask: 0b0011 },
      sends: [{ from: 0, at: 500, frags: 1 }, { from: 2, at: 600, frags: 3 }, { from: 0, at: 4000, frags: 2 }, { from: 2, at: 4100, frags: 1 }],
    });
    const a = o.ids[0]!;
    const c = o.ids[2]!;
    const atC = (o.delivered.get(c) ?? []).filter((d) => d.from === a).map((d) => d.seq);
    const atA = (o.delivered.get(a) ?? []).filter((d) => d.from === c).map((d) => d.seq);
    expect(atC).to.deep.equal([2]);
    expect(atA).to.deep.equal([2]);
    expect(o.gaps.some((g) => g.at === c && g.from === a && g.first === 1)).to.equal(true);
    checkQuiet(o);
  });
});
