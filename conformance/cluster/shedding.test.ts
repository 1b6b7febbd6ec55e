/**
 * Bounded memory under overload never loses a write (issue 4, DESIGN.md §4): with a tiny send
 * window and a tiny pending bound, most writes are shed from the send queue, yet every member
 * ends up with every write, because the writer offers its digest as soon as its backlog clears
 * and anti-entropy pulls what was shed.
 */
import { expect } from 'chai';
import { SimCluster, entriesOf } from './sim-cluster';

describe('pending-write shedding', () => {
  it('sheds beyond maxPending and still delivers every write through anti-entropy', async () => {
    const c = await SimCluster.start({ seed: 9, nodes: 3, core: { maxUnackedMessages: 2 }, node: { maxPending: 10 } });
    const writer = c.cache(0, 'shed');
    for (let k = 0; k < 300; k++) writer.set(`k${k}`, k);
    const m = c.nodes[0]!.localMetrics();
    expect(m.pending).to.be.at.most(10);
    expect(m.shed).to.be.at.least(250);
    // Let the backlog drain (virtual time) and the follow-up pulse run (a microtask).
    for (let i = 0; i < 200; i++) {
      c.run(10);
      await Promise.resolve();
    }
    c.settle();
    for (const i of [1, 2]) expect(entriesOf(c.nodes[i]!.caches.get('shed'))).to.deep.equal(entriesOf(writer));
    expect(writer.size).to.equal(256); // the cache's own max (LRU), not the network, bounds it
  });
});
