/**
 * The cache users import, on the simulated network (issue "The cache users import"): whole
 * McCacheNodes replicate their caches through the reliable core over a network that loses,
 * duplicates and reorders datagrams, with skewed wall clocks, all in virtual time.
 *
 * - Mode 1 (full replication): 3-5 nodes, 100 keys, random set/delete/clear from random nodes
 *   at random instants. After quiescence every node holds exactly the entries last-writer-wins
 *   predicts from what was written (same keys, versions and value bytes; equal checksums).
 * - Mode 0 (update-if-present): a node applies a remote write only to a key it holds; deletes
 *   and clears apply everywhere.
 * - Diagnostics: concurrent cluster checksum requests each get their own replies; a node that
 *   shuts down right after writing still has its writes repaired at every peer.
 *
 * FC_NUM_RUNS scales the number of scenarios (default 500, a few seconds); FC_SEED replays a run.
 */
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import fc from 'fast-check';
import type { Cache } from '../../runtime/cache/cache';
import { ErrorCode } from '../../runtime/errors';
import { formatNodeId } from '../../runtime/node';
import { keyBucket } from '../../runtime/cache/anti-entropy';
import { entriesOf, expectedState, SimCluster, type EntryView } from './sim-cluster';

const NUM_RUNS = Number(process.env.FC_NUM_RUNS ?? 500);
const SEED = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED);
const fcParams = { numRuns: NUM_RUNS, ...(SEED !== undefined && { seed: SEED }) };
const KEYS = 100;
const NAME = 'c';

type Op = { node: number; at: number; kind: 'set' | 'delete' | 'clear'; key: number; value: unknown };

const value: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 24 }) },
  { weight: 3, arbitrary: fc.integer() },
  { weight: 2, arbitrary: fc.record({ n: fc.integer(), tags: fc.array(fc.string({ maxLength: 6 }), { maxLength: 4 }), ok: fc.boolean() }) },
  // Up to 3 KB: several fragments at the simulation's 548-byte MTU.
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 400, maxLength: 3000 }) },
);

const op: fc.Arbitrary<Op> = fc.record({
  node: fc.nat(4),
  at: fc.integer({ min: 0, max: 3000 }),
  kind: fc.oneof(
    { weight: 14, arbitrary: fc.constant('set' as const) },
    { weight: 5, arbitrary: fc.constant('delete' as const) },
    { weight: 1, arbitrary: fc.constant('clear' as const) },
  ),
  key: fc.nat(KEYS - 1),
  value,
});

const faults = {
  loss: fc.double({ min: 0, max: 0.1, noNaN: true }),
  duplicate: fc.double({ min: 0, max: 0.1, noNaN: true }),
  reorder: fc.double({ min: 0, max: 0.2, noNaN: true }),
};

const scenario = fc.record({
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  nodes: fc.integer({ min: 3, max: 5 }),
  ...faults,
  skews: fc.array(fc.integer({ min: -250, max: 250 }), { minLength: 5, maxLength: 5 }),
  // Nodes (bit i) that name the cache only at their first own write, if ever: until then
  // remote writes create it for them (McCacheNode's on-demand caches).
  lazy: fc.nat(31),
  // A small send window makes the node coalesce pending writes and wait for 'writable'.
  window: fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined, freq: 3 }),
  ops: fc.array(op, { minLength: 1, maxLength: 120 }),
});

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function apply(c: Cache<unknown>, o: Op): void {
  const key = `k${o.key}`;
  if (o.kind === 'set') c.set(key, o.value);
  else if (o.kind === 'delete') c.delete(key);
  else c.clear();
}

describe('cluster/sim: whole nodes on the simulated network', function () {
  this.timeout(0);

  it('mode 1: after quiescence every node holds exactly the last-writer-wins entries', async () => {
    await fc.assert(fc.asyncProperty(scenario, async (s) => {
      const cluster = await SimCluster.start({
        seed: s.seed, nodes: s.nodes, skews: s.skews,
        faults: { loss: s.loss, duplicate: s.duplicate, reorder: s.reorder },
        ...(s.window !== undefined && { core: { maxUnackedMessages: s.window } }),
      });
      for (let i = 0; i < s.nodes; i++) if (((s.lazy >> i) & 1) === 0) cluster.cache(i, NAME);
      const base = cluster.net.now;
      let last = base;
      for (const o of s.ops) {
        const i = o.node % s.nodes;
        last = Math.max(last, base + o.at);
        cluster.net.at(base + o.at, () => apply(cluster.cache(i, NAME), o));
      }
      cluster.run(last - cluster.net.now);
      cluster.settle();

      const want = expectedState(cluster, NAME);
      const wantView = [...want].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, w]) => ({
        key, hlc: w.version.hlc.toString(), origin: w.version.node.toString(16), checksum: sha256(w.value.value),
      }));
      const views: EntryView[][] = cluster.nodes.map((n) => entriesOf(n.caches.get(NAME)));
      const sums = new Set<string>();
      views.forEach((v, i) => {
        const got = v.map(({ key, hlc, origin, checksum }) => ({ key, hlc, origin, checksum }));
        expect(got, `node ${i} entries`).to.deep.equal(wantView);
        const c = cluster.nodes[i]!.caches.get(NAME);
        if (c) sums.add(c.checksum());
      });
      expect(sums.size, 'distinct checksums').to.be.at.most(1);
      // Decoded values agree too (the writer holds the original, the others a decoded copy).
      for (const v of views.slice(1)) expect(v.map((e) => e.value)).to.deep.equal(views[0]!.map((e) => e.value));
      for (const n of cluster.nodes) expect(n.localMetrics().dropped).to.equal(0);
    }), fcParams);
  });

  it('a write that meets a full send window goes out when the window frees (pinned: window 1)', async () => {
    // Found by the property above: the node checked `writable` before sending, but the core
    // announces 'writable' only after a refused send, so the second write waited forever.
    const cluster = await SimCluster.start({ seed: 0, nodes: 3, core: { maxUnackedMessages: 1 } });
    for (let i = 0; i < 3; i++) cluster.cache(i, NAME);
    cluster.cache(0, NAME).set('k0', '');
    cluster.cache(0, NAME).set('k0', 0);
    cluster.cache(0, NAME).set('k1', 1);
    cluster.settle();
    for (let i = 1; i < 3; i++) expect(Object.fromEntries(cluster.cache(i, NAME).entries())).to.deep.equal({ k0: 0, k1: 1 });
  });

  it('mode 0: a remote write updates only nodes holding the key; deletes and clears apply everywhere', async () => {
    const stepOp = fc.record({
      node: fc.nat(3),
      kind: fc.oneof(
        { weight: 10, arbitrary: fc.constant('set' as const) },
        { weight: 4, arbitrary: fc.constant('delete' as const) },
        { weight: 1, arbitrary: fc.constant('clear' as const) },
      ),
      key: fc.nat(7),
      value: fc.integer(),
    });
    await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.double({ min: 0, max: 0.1, noNaN: true }),
      fc.array(stepOp, { minLength: 1, maxLength: 30 }), async (seed, loss, steps) => {
        const N = 4;
        const cluster = await SimCluster.start({ seed, nodes: N, faults: { loss, duplicate: 0.05, reorder: 0.05 }, cacheDefaults: { mode: 0 } });
        const caches = cluster.nodes.map((_, i) => cluster.cache(i, NAME, { mode: 0 }));
        // Exact model: one step at a time, quiescent in between, so delivery order cannot matter.
        const model = cluster.nodes.map(() => new Map<string, number>());
        for (const st of steps) {
          const key = `k${st.key}`;
          if (st.kind === 'set') {
            caches[st.node]!.set(key, st.value);
            model.forEach((m, i) => { if (i === st.node || m.has(key)) m.set(key, st.value); });
          } else if (st.kind === 'delete') {
            caches[st.node]!.delete(key);
            for (const m of model) m.delete(key);
          } else {
            caches[st.node]!.clear();
            for (const m of model) m.clear();
          }
          cluster.settle();
          caches.forEach((c, i) => {
            expect(Object.fromEntries(c.entries()), `node ${i} after ${st.kind} ${key} at node ${st.node}`)
              .to.deep.equal(Object.fromEntries(model[i]!));
          });
        }
      }), { ...fcParams, numRuns: Math.max(1, Math.ceil(NUM_RUNS / 2)) });
  });

  it('mode 0: a node that never held a key does not get it; a delete removes it everywhere', async () => {
    const cluster = await SimCluster.start({ seed: 11, nodes: 3, faults: { loss: 0.1 }, cacheDefaults: { mode: 0 } });
    const [a, b, c] = [0, 1, 2].map((i) => cluster.cache<string>(i, NAME, { mode: 0 }));
    a!.set('x', 'from a');
    cluster.settle();
    expect([a!.get('x'), b!.has('x'), c!.has('x')]).to.deep.equal(['from a', false, false]);
    expect(b!.metrics().remoteIgnored).to.equal(1);
    b!.set('x', 'from b'); // now a and b hold x; c still does not
    cluster.settle();
    expect([a!.get('x'), b!.get('x'), c!.has('x')]).to.deep.equal(['from b', 'from b', false]);
    c!.delete('x');
    cluster.settle();
    expect([a!.has('x'), b!.has('x'), c!.has('x')]).to.deep.equal([false, false, false]);
    // The tombstone keeps an older write out: a's stale copy of x cannot come back.
    expect(a!.metadata('x')).to.equal(undefined);
  });

  it('a node that never named the cache holds it once a remote write arrives, deletes and clears included', async () => {
    // Node 0's clock runs 100 ms behind, so its put is older than node 1's delete; a partition
    // makes node 2 receive the delete first and the older put afterwards.
    const cluster = await SimCluster.start({ seed: 5, nodes: 3, skews: [-100, 0, 0], faults: { loss: 0.05 } });
    const a = cluster.cache(0, NAME);
    const b = cluster.cache(1, NAME);
    cluster.net.partition([cluster.nodes[0]!.nodeId]);
    b.delete('k');
    a.set('k', 'old');
    cluster.run(200);
    cluster.net.heal();
    cluster.settle();
    // Node 2 first heard of the cache through the delete: it must have kept the delete's
    // version, or the older put arriving later would have resurrected the key there alone.
    const lazy = cluster.nodes[2]!.caches.get(NAME);
    expect(lazy, 'cache created by a remote delete').to.not.equal(undefined);
    expect(entriesOf(lazy)).to.deep.equal([]);
    expect(entriesOf(a)).to.deep.equal([]);
    expect(entriesOf(b)).to.deep.equal([]);
    expect(lazy!.versionOf('k')).to.deep.equal(b.versionOf('k'));
  });

  it('concurrent cluster checksum requests each collect only the replies to their own request', async () => {
    const cluster = await SimCluster.start({ seed: 3, nodes: 3, replyWindow: 40 });
    for (let i = 0; i < 3; i++) {
      cluster.cache(i, 'a').set('k', 1);
      cluster.cache(i, 'b').set('k', 2);
    }
    cluster.settle();
    const n0 = cluster.nodes[0]!;
    const [onlyA, onlyB, all] = await cluster.drive(Promise.all([n0.clusterChecksum('a'), n0.clusterChecksum('b'), n0.clusterChecksum()]));
    const ids = cluster.nodes.map((n) => formatNodeId(n.nodeId)).sort();
    expect(Object.keys(onlyA).sort()).to.deep.equal(ids);
    expect(Object.keys(onlyB).sort()).to.deep.equal(ids);
    expect(Object.keys(all).sort()).to.deep.equal(ids);
    for (const id of ids) {
      expect(Object.keys(onlyA[id]!), `member ${id}, request for a`).to.deep.equal(['a']);
      expect(Object.keys(onlyB[id]!), `member ${id}, request for b`).to.deep.equal(['b']);
      expect(Object.keys(all[id]!).sort(), `member ${id}, request for all`).to.deep.equal(['a', 'b']);
    }
    expect(new Set(ids.map((id) => onlyA[id]!['a'])).size).to.equal(1);
    expect(onlyA[ids[0]!]!['a']).to.not.equal(onlyB[ids[0]!]!['b']);
  });

  it('a cluster checksum returns once every member answered, well before its reply window; a member without the cache answers an empty one', async () => {
    const cluster = await SimCluster.start({ seed: 4, nodes: 3, replyWindow: 20_000 });
    cluster.cache(0, 'x').set('k', 1);
    cluster.settle();
    expect(cluster.nodes.map((n) => n.caches.has('nowhere'))).to.deep.equal([false, false, false]);
    const n0 = cluster.nodes[0]!;
    const started = performance.now();
    const sums = await cluster.drive(n0.clusterChecksum('nowhere'), 5, 30_000);
    expect(performance.now() - started, 'ms: returned when all had answered, not at the 20 s window').to.be.below(10_000);
    const ids = cluster.nodes.map((n) => formatNodeId(n.nodeId)).sort();
    expect(Object.keys(sums).sort()).to.deep.equal(ids);
    const empty = createHash('sha256').digest('hex');
    for (const id of ids) expect(sums[id], `member ${id}`).to.deep.equal({ nowhere: empty });
  });

  it('shutdown right after writing: every peer still gets every write, and the caches refuse writes after', async () => {
    // Lossy enough that some of the last datagrams need repair after shutdown() was called.
    const cluster = await SimCluster.start({ seed: 21, nodes: 3, faults: { loss: 0.2, duplicate: 0.05, reorder: 0.1 } });
    const caches = [0, 1, 2].map((i) => cluster.cache<number>(i, NAME));
    const downs: string[] = [];
    cluster.transports[1]!.on('member-down', (e: { reason: string }) => downs.push(e.reason));
    for (let k = 0; k < 50; k++) caches[0]!.set(`k${k}`, k);
    await cluster.drive(cluster.nodes[0]!.shutdown());
    cluster.settle();
    for (const i of [1, 2]) expect(caches[i]!.size, `node ${i} size`).to.equal(50);
    expect(caches[1]!.checksum()).to.equal(caches[0]!.checksum());
    expect(() => caches[0]!.set('late', 1)).to.throw().with.property('code', ErrorCode.CLOSED);
    expect(caches[0]!.get('k7'), 'reads still work').to.equal(7);
    // It left with LEAVE (after its writes were acknowledged), not by timing out.
    cluster.run(100);
    expect(downs).to.deep.equal(['leave']);
  });

  it('the writes of one turn go out as a few batch messages; every peer applies each write, in order, with its version', async () => {
    // syncFlush off, as in a real process: the writes of one synchronous block reach the node's
    // flush together (a microtask) and share `batch` messages, one cache at a time.
    const cluster = await SimCluster.start({ seed: 5, nodes: 3, node: { syncFlush: false }, faults: { loss: 0.1, duplicate: 0.05, reorder: 0.1 } });
    const names = ['a', 'b'];
    const seen = [1, 2].map((i) => {
      const log: string[] = [];
      for (const n of names) {
        const c = cluster.cache(i, n, { max: 10_000 });
        c.on('remote-set', (e) => log.push(`${n} set ${String(e['key'])}`));
        c.on('remote-delete', (e) => log.push(`${n} delete ${String(e['key'])}`));
      }
      return log;
    });
    const [a, b] = names.map((n) => cluster.cache(0, n, { max: 10_000 }));
    for (let k = 0; k < 40; k++) a!.set(`old${k}`, k); // an earlier turn: these keys exist everywhere
    await new Promise((r) => setImmediate(r));
    cluster.settle();
    seen.forEach((log) => log.splice(0));

    const core = cluster.transports[0]!.core;
    const sentBefore = core.stats().messagesSent;
    const want: string[] = [];
    for (let k = 0; k < 400; k++) {
      a!.set(`k${k}`, { k, pad: 'x'.repeat(k % 50) });
      want.push(`a set k${k}`);
      if (k % 10 === 0) {
        b!.set(`k${k}`, k);
        want.push(`b set k${k}`);
      }
      if (k % 10 === 5) {
        a!.delete(`old${k / 10 - 0.5}`);
        want.push(`a delete old${k / 10 - 0.5}`);
      }
    }
    await new Promise((r) => setImmediate(r));
    cluster.settle();
    const sent = core.stats().messagesSent - sentBefore;
    // 480 writes of 30..100 bytes at the simulation's 548-byte MTU: several per datagram.
    expect(sent, 'messages sent for 480 writes').to.be.within(2, 480 / 4);
    const ofCache = (log: string[], n: string): string[] => log.filter((x) => x.startsWith(`${n} `));
    for (const [i, log] of seen.entries()) {
      for (const n of names) {
        expect(ofCache(log, n), `node ${i + 1} applied each write of ${n} once, in the order made`).to.deep.equal(ofCache(want, n));
      }
      expect(log.length).to.equal(want.length);
      for (const n of names) expect(entriesOf(cluster.cache(i + 1, n)), `node ${i + 1} ${n}`).to.deep.equal(entriesOf(cluster.cache(0, n)));
    }
    expect(cluster.cache(1, 'a').size).to.equal(400);
  });

  it('a burst of bucket requests from one member is answered with one walk of the cache, covering every bucket asked', async () => {
    const cluster = await SimCluster.start({ seed: 9, nodes: 2, node: { syncFlush: false } });
    const a = cluster.cache(0, NAME, { max: 0 });
    // Entries node 0 holds and node 1 does not: applied as if from a third writer, so nothing
    // replicates them (only the sync entries can bring them to node 1).
    const hlc0 = cluster.nodes[0]!.clock.now();
    for (let k = 0; k < 400; k++) {
      a.applyRemote({ op: 'put', cache: NAME, key: `k${k}`, hlc: hlc0 + BigInt(k), ttl: 0, codec: 'utf8', value: Buffer.from(String(k)) }, 7n);
    }
    let walks = 0;
    const walk = a.syncRecords.bind(a);
    a.syncRecords = () => {
      walks++;
      return walk();
    };
    // Node 1 asks node 0 for 32 buckets (of 64) in 8 requests sent together, as a large
    // difference does.
    const b = cluster.cache(1, NAME, { max: 0 });
    expect(b.size).to.equal(0);
    const buckets = Array.from({ length: 32 }, (_, i) => i * 2);
    for (let r = 0; r < 8; r++) {
      cluster.transports[1]!.sendUnsequenced({ op: 'sync_request', target: cluster.nodes[0]!.nodeId, cache: NAME, numBuckets: 64,
        bucketIds: buckets.slice(r * 4, r * 4 + 4) });
    }
    cluster.run(5);
    await new Promise((r) => setTimeout(r, 30)); // the gathering window is real time
    cluster.settle();
    expect(walks, 'walks of the cache for 8 requests').to.equal(1);
    const want = [...a.keys()].filter((k) => keyBucket(k, 64) % 2 === 0).sort();
    expect(want.length).to.be.above(100);
    expect([...b.keys()].filter((k) => keyBucket(k, 64) % 2 === 0).sort(), 'every key of the buckets asked').to.deep.equal(want);
  });
});
