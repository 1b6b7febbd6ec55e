/** Metrics and events on node:diagnostics_channel (DESIGN.md §5; STYLE.md: `mccache:<area>:<event>`). */
import { expect } from 'chai';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { SimCluster } from './sim-cluster';

describe('diagnostics channels', () => {
  it('publish remote applies, member changes and metrics to subscribers', async () => {
    const seen = { remote: [] as unknown[], up: [] as unknown[], down: [] as unknown[], metrics: [] as unknown[] };
    const subs: Array<[string, (m: unknown) => void]> = [
      ['mccache:cache:remote', (m) => seen.remote.push(m)],
      ['mccache:member:up', (m) => seen.up.push(m)],
      ['mccache:member:down', (m) => seen.down.push(m)],
      ['mccache:node:metrics', (m) => seen.metrics.push(m)],
    ];
    for (const [name, fn] of subs) subscribe(name, fn);
    try {
      const c = await SimCluster.start({ seed: 5, nodes: 3 });
      expect(seen.up, 'member:up, one per member seen by each node').to.have.length(6);
      c.cache(0, 'd').set('k', 'v');
      c.settle();
      expect(seen.remote).to.deep.include.members([{ cache: 'd', op: 'put', key: 'k', from: c.nodes[0]!.nodeId }]);
      expect(seen.remote).to.have.length(2);
      c.nodes[1]!.pulse();
      const m = seen.metrics[0] as { nodeId: string; caches: Array<{ name: string; size: number }> };
      expect(m.caches.find((x) => x.name === 'd')?.size).to.equal(1);
      c.crash(2);
      c.run(3000);
      expect(seen.down.map((d) => (d as { reason: string }).reason)).to.deep.equal(['timeout', 'timeout']);
    } finally {
      for (const [name, fn] of subs) unsubscribe(name, fn);
    }
  });
});
