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

  it('after a shed backlog clears, the writer offers its digest again over the following seconds, not only once', async () => {
    // Real-time timers: syncFlush off, a pulse period long enough never to fire by itself here.
    const c = await SimCluster.start({ seed: 10, nodes: 2, core: { maxUnackedMessages: 2 }, node: { maxPending: 10, syncFlush: false, pulse: 600_000 } });
    await new Promise((r) => setTimeout(r, 200)); // the newcomer's bootstrap pulse (20-100 ms) is over
    const writer = c.cache(0, 'shed');
    for (let k = 0; k < 100; k++) writer.set(`k${k}`, k);
    await new Promise((r) => setImmediate(r));
    expect(c.nodes[0]!.localMetrics().shed).to.be.at.least(50);
    for (let i = 0; i < 500 && c.nodes[0]!.pending > 0; i++) {
      c.run(10);
      await Promise.resolve();
    }
    await Promise.resolve(); // the immediate pulse (a microtask)
    const after = c.nodes[0]!.antiEntropyStats.pulses;
    expect(after, 'the pulse as the backlog cleared').to.be.at.least(1);
    await new Promise((r) => setTimeout(r, 1_300));
    expect(c.nodes[0]!.antiEntropyStats.pulses, 'a follow-up pulse about 1 s later').to.equal(after + 1);
    await c.drive(Promise.all(c.nodes.map((n) => n.shutdown())));
  });
});
