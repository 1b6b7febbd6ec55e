/**
 * Bounded memory under overload never loses a write (issue 4, DESIGN.md §4): with a tiny send
 * window and a tiny pending bound, most writes leave the send queue. Up to 8 x maxPending of
 * them are spilled (kept as keys, sent from the cache when there is room), so they reach every
 * member without anti-entropy; beyond that they are shed, and every member still ends up with
 * every write, because the writer offers its digest as soon as its backlog clears and
 * anti-entropy pulls what was shed.
 */
import { expect } from 'chai';
import { SimCluster, entriesOf } from './sim-cluster';

describe('pending-write shedding', () => {
  it('spills beyond maxPending: the writes reach every member from the cache, latest values, no anti-entropy', async () => {
    const c = await SimCluster.start({ seed: 8, nodes: 3, core: { maxUnackedMessages: 2 }, node: { maxPending: 10 } });
    const writer = c.cache(0, 'spill');
    for (let k = 0; k < 80; k++) writer.set(`k${k}`, k);
    for (let k = 0; k < 40; k++) writer.set(`k${k}`, 1000 + k); // spilled keys written again
    for (let k = 40; k < 50; k++) writer.delete(`k${k}`); // spilled, then deleted
    const m = c.nodes[0]!.localMetrics();
    expect(m.spilled).to.be.at.least(50);
    expect(m.shed).to.equal(0);
    expect(m.pending).to.be.at.most(10 + 80);
    c.settle(); // no pulse runs here: only the spilled writes themselves can bring the peers up
    for (const i of [1, 2]) {
      expect(entriesOf(c.nodes[i]!.caches.get('spill'))).to.deep.equal(entriesOf(writer));
      expect(c.nodes[i]!.antiEntropyStats.entriesApplied).to.equal(0);
    }
    expect(writer.get('k3')).to.equal(1003);
    expect(c.nodes[1]!.caches.get('spill')!.get('k3')).to.equal(1003);
    expect(c.nodes[2]!.caches.get('spill')!.has('k45')).to.equal(false);
    expect(c.nodes[0]!.localMetrics().pending).to.equal(0);
  });

  it('a spilled write whose entry the writer evicts for room still reaches every member', async () => {
    const c = await SimCluster.start({ seed: 11, nodes: 3, core: { maxUnackedMessages: 2 }, node: { maxPending: 40 } });
    const writer = c.cache(0, 'evict', { max: 20 });
    for (const i of [1, 2]) c.cache(i, 'evict', { max: 1000 });
    for (let k = 0; k < 80; k++) writer.set(`k${k}`, k);
    const m = c.nodes[0]!.localMetrics();
    expect(m.spilled).to.be.at.least(10);
    expect(m.shed).to.equal(0);
    expect(writer.size).to.equal(20); // k60..k79: the rest was evicted here, most of it unsent
    c.settle(); // no pulse: the writes themselves must bring the peers up
    const all = Array.from({ length: 80 }, (_, k) => [`k${k}`, k]);
    for (const i of [1, 2]) {
      const peer = c.nodes[i]!.caches.get('evict')!;
      expect([...peer.keys()].map((k) => [k, peer.peek(k)]).sort((a, b) => Number(String(a[0]).slice(1)) - Number(String(b[0]).slice(1)))).to.deep.equal(all);
      expect(c.nodes[i]!.antiEntropyStats.entriesApplied).to.equal(0);
    }
    expect(c.nodes[0]!.localMetrics().pending).to.equal(0);
  });

  it('queued writes whose entries were evicted are bounded: beyond 2 x maxPending the oldest is given up, and counted', async () => {
    const c = await SimCluster.start({ seed: 12, nodes: 2, core: { maxUnackedMessages: 2 }, node: { maxPending: 10 } });
    const writer = c.cache(0, 'bounded', { max: 20 });
    for (let k = 0; k < 200; k++) writer.set(`k${k}`, k);
    const m = c.nodes[0]!.localMetrics();
    expect(m.pending).to.be.at.most(2 * 10 + 8 * 10);
    expect(m.shed).to.be.at.least(100);
    c.settle();
    expect(c.nodes[0]!.localMetrics().pending).to.equal(0);
    const peer = c.nodes[1]!.caches.get('bounded')!;
    for (let k = 180; k < 200; k++) expect(peer.peek(`k${k}`)).to.equal(k); // what the writer still holds
  });

  it('sheds beyond 8 x maxPending spilled writes and still delivers every write through anti-entropy', async () => {
    const c = await SimCluster.start({ seed: 9, nodes: 3, core: { maxUnackedMessages: 2 }, node: { maxPending: 10 } });
    const writer = c.cache(0, 'shed');
    for (let k = 0; k < 300; k++) writer.set(`k${k}`, k);
    const m = c.nodes[0]!.localMetrics();
    expect(m.pending).to.be.at.most(10 + 80);
    expect(m.shed).to.be.at.least(150);
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
    for (let k = 0; k < 200; k++) writer.set(`k${k}`, k);
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
