/**
 * Coherence under faults (issue 5): concurrent writers to overlapping keys with clocks skewed by
 * up to 2 s, loss, duplication, reordering, a partition longer than the failure timeout (so the
 * reliable core gives messages up and only anti-entropy can repair), a member that joins late
 * and a member that crashes and restarts as a new member. After healing, pulses and
 * quiescence: every live member holds identical entries (keys, versions, values), each key the
 * highest-versioned write, and no deleted key comes back.
 *
 * FC_NUM_RUNS scales the number of scenarios; FC_SEED replays one.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { SimCluster, entriesOf, expectedState } from './sim-cluster';
import { params } from '../wire/wire-arbitraries';

const CACHE = 'ae';
const KEYS = 40;

interface Scenario {
  seed: number;
  nodes: number;
  loss: number;
  duplicate: number;
  reorder: number;
  skews: number[];
  ops: Array<{ node: number; at: number; kind: 'set' | 'delete' | 'clear'; key: number; value: number }>;
  partition: { at: number; duration: number; mask: number } | null;
  lateJoin: boolean;
  crashRestart: { at: number; after: number } | null;
}

export const scenario: fc.Arbitrary<Scenario> = fc.integer({ min: 3, max: 7 }).chain((nodes) => fc.record({
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  nodes: fc.constant(nodes),
  loss: fc.double({ min: 0, max: 0.2, noNaN: true }),
  duplicate: fc.double({ min: 0, max: 0.05, noNaN: true }),
  reorder: fc.double({ min: 0, max: 0.1, noNaN: true }),
  skews: fc.array(fc.integer({ min: -2000, max: 2000 }), { minLength: nodes + 2, maxLength: nodes + 2 }),
  ops: fc.array(fc.record({
    // The last node only reads: it is the one that crashes and restarts.
    node: fc.integer({ min: 0, max: nodes - 2 }),
    at: fc.integer({ min: 0, max: 3000 }),
    kind: fc.oneof({ weight: 12, arbitrary: fc.constant('set' as const) }, { weight: 5, arbitrary: fc.constant('delete' as const) },
      { weight: 1, arbitrary: fc.constant('clear' as const) }),
    key: fc.integer({ min: 0, max: KEYS - 1 }),
    value: fc.integer(),
  }), { minLength: 1, maxLength: 60 }),
  // Longer than the failure timeout (1500 ms): members are removed and messages given up.
  partition: fc.option(fc.record({ at: fc.integer({ min: 0, max: 2000 }), duration: fc.integer({ min: 1600, max: 4000 }),
    mask: fc.integer({ min: 1, max: 2 ** nodes - 2 }) }), { freq: 2 }),
  lateJoin: fc.boolean(),
  crashRestart: fc.option(fc.record({ at: fc.integer({ min: 0, max: 2500 }), after: fc.integer({ min: 100, max: 3000 }) }), { freq: 2 }),
}));

export async function run(s: Scenario): Promise<void> {
  const c = await SimCluster.start({ seed: s.seed, nodes: s.nodes, faults: { loss: s.loss, duplicate: s.duplicate, reorder: s.reorder }, skews: s.skews });
  const base = c.net.now;
  const dead = new Set<number>();
  for (let i = 0; i < s.nodes; i++) c.cache(i, CACHE);
  for (const op of s.ops) {
    c.net.at(base + op.at, () => {
      if (dead.has(op.node)) return;
      const cache = c.cache<number>(op.node, CACHE);
      if (op.kind === 'set') cache.set(`k${op.key}`, op.value);
      else if (op.kind === 'delete') cache.delete(`k${op.key}`);
      else cache.clear();
    });
  }
  if (s.partition) {
    const p = s.partition;
    const side = c.nodes.filter((_, i) => (p.mask >> i) & 1).map((n) => n.nodeId);
    c.net.at(base + p.at, () => c.net.partition(side));
    c.net.at(base + p.at + p.duration, () => c.net.heal());
  }
  // Nodes start asynchronously: the run stops at each join so the new node can open.
  const joins: Array<{ at: number; id: bigint; skew: number }> = [];
  if (s.crashRestart) {
    const victim = s.nodes - 1;
    c.net.at(base + s.crashRestart.at, () => {
      dead.add(victim);
      c.crash(victim);
    });
    joins.push({ at: base + s.crashRestart.at + s.crashRestart.after, id: 0x7e57000000000001n, skew: s.skews[s.nodes]! });
  }
  // Joins after most writes: it must receive the cluster's entries (bootstrap).
  if (s.lateJoin) joins.push({ at: base + 3500, id: 0x7e57000000000002n, skew: s.skews[s.nodes + 1]! });
  const end = base + 3000 + (s.partition ? s.partition.at + s.partition.duration : 0) + 4000;
  c.pulses(300, end);
  for (const j of joins.sort((a, b) => a.at - b.at)) {
    c.net.run(j.at);
    const i = await c.addNode(j.id, j.skew);
    c.nodes[i]!.pulse();
  }
  c.net.run(end);
  // Quiescence of the live members: nothing pending, everything acknowledged.
  const live = c.nodes.filter((n, i) => !dead.has(i) && c.net.node(n.nodeId));
  for (let t = 0; !live.every((n) => n.quiescent); t += 10) {
    if (t > 30_000) throw new Error(`not quiescent: ${c.describe()}`);
    c.run(10);
  }
  const want = expectedState(c, CACHE);
  const views = live.map((n) => entriesOf(n.caches.get(CACHE)));
  for (const [i, v] of views.entries()) {
    expect(v.map((e) => `${e.key}@${e.hlc}`), `member ${i} vs expected`).to.deep.equal(
      [...want.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, w]) => `${k}@${w.version.hlc}`));
    expect(v, `member ${i} vs member 0`).to.deep.equal(views[0]);
  }
}

describe('anti-entropy on the simulated network', function () {
  this.timeout(0);

  it('brings every live member to the same highest-versioned entries after faults heal', async () => {
    await fc.assert(fc.asyncProperty(scenario, run), params(60));
  });

  it('repairs what the reliable core gave up (a gap) at once, without waiting for a pulse', async () => {
    // One NAK round only: at 40 % loss the core gives messages up and reports gaps; no pulse runs.
    const c = await SimCluster.start({ seed: 4, nodes: 2, faults: { loss: 0.4, duplicate: 0, reorder: 0 }, core: { maxNakAttempts: 1 } });
    const writer = c.cache(0, CACHE);
    const reader = c.cache(1, CACHE);
    for (let k = 0; k < 200; k++) writer.set(`k${k}`, k);
    c.settle();
    const gaps = (c.nodes[1]!.localMetrics().transport as { gapsReported: number }).gapsReported;
    expect(gaps, 'the scenario must make the core give messages up').to.be.greaterThan(0);
    expect(c.nodes[1]!.antiEntropyStats.pulses, 'no pulse ran').to.equal(0);
    expect(c.nodes[1]!.antiEntropyStats.entriesApplied, 'repaired by anti-entropy').to.be.greaterThan(0);
    expect(entriesOf(reader)).to.deep.equal(entriesOf(writer));
  });

  it('bootstraps a member that joins after the writes', async () => {
    const c = await SimCluster.start({ seed: 1, nodes: 3 });
    for (let k = 0; k < 200; k++) c.cache(k % 3, CACHE).set(`k${k}`, k);
    c.cache(0, CACHE).delete('k7');
    c.settle();
    const late = await c.addNode(0x7e57000000000003n);
    c.pulses(300, c.net.now + 3000);
    c.run(3000);
    c.settle();
    expect(entriesOf(c.nodes[late]!.caches.get(CACHE))).to.deep.equal(entriesOf(c.nodes[0]!.caches.get(CACHE)));
    expect(c.nodes[late]!.caches.get(CACHE)!.size).to.equal(199);
  });

  it('repairs a member that missed a clear and deletes, without resurrecting deleted keys', async () => {
    const c = await SimCluster.start({ seed: 2, nodes: 3 });
    for (let k = 0; k < 50; k++) c.cache(0, CACHE).set(`k${k}`, k);
    c.settle();
    // Node 2 is cut off longer than the failure timeout while node 0 deletes and clears.
    c.net.partition([c.nodes[2]!.nodeId]);
    c.cache(0, CACHE).delete('k1');
    c.cache(1, CACHE).clear();
    c.cache(0, CACHE).set('after', 1);
    c.run(3000);
    c.net.heal();
    c.pulses(300, c.net.now + 3000);
    c.run(3000);
    c.settle();
    const views = [0, 1, 2].map((i) => entriesOf(c.nodes[i]!.caches.get(CACHE)));
    expect(views[2]!.map((e) => e.key)).to.deep.equal(['after']);
    expect(views[2]).to.deep.equal(views[0]);
    expect(views[1]).to.deep.equal(views[0]);
  });
});
