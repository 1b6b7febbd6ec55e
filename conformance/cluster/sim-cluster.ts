/**
 * N whole McCacheNodes (caches, replicator, reliable core) on the simulated network
 * (runtime/transport/sim-network.ts) through SimTransport, with one virtual clock for
 * everything: the cores (network time), the caches' TTL clock (`now`) and each node's hybrid
 * logical clock (`wallNow`, with a per-node skew). Writes go to the transport synchronously
 * (`syncFlush`), so a run is a pure function of its seed and schedule and a failing seed replays.
 *
 * `SimCluster.start` returns once the cluster has formed (every node has heard every other):
 * the reliable-delivery guarantee is about a formed cluster; what happens before is the
 * anti-entropy layer's job.
 */
import type { Message } from '../../runtime/codec/packet';
import type { ReliableCoreOptions } from '../../runtime/core/reliable-core';
import { encodedPut, type CacheOptions, type Cache, type Mutation } from '../../runtime/cache/cache';
import { compareVersions, type Version } from '../../runtime/cache/hlc';
import { McCacheNode, type NodeOptions } from '../../runtime/node';
import { SimNetwork, type SimFaults } from '../../runtime/transport/sim-network';
import { SimTransport } from '../../runtime/transport/sim-transport';
import { SIM_CORE_OPTIONS } from '../core/sim-harness';

export interface SimClusterOptions {
  seed: number;
  nodes: number;
  faults?: SimFaults;
  /** Overrides of the cores' options (conformance/core/sim-harness.ts SIM_CORE_OPTIONS). */
  core?: Partial<Omit<ReliableCoreOptions, 'nodeId' | 'rng'>>;
  /** Wall-clock skew of node i, ms (its hybrid logical clock reads epoch + now + skew). */
  skews?: readonly number[];
  /** Options of caches created by remote writes (the virtual `now` is added). */
  cacheDefaults?: CacheOptions<unknown>;
  /** Real ms a clusterMetrics/clusterChecksum collects replies. @default 30 */
  replyWindow?: number;
  /** Further McCacheNode options (e.g. maxPending; syncFlush false: flush in a microtask). */
  node?: Partial<Pick<NodeOptions, 'maxPending' | 'syncFlush' | 'pulse'>>;
}

/** A mutation a node handed to the network layer, with its version (node id = the writer). */
export interface Published {
  node: number;
  message: Message;
}

/** 2025-01-01: any fixed epoch will do; the hybrid clocks need plausible Unix ms. */
const EPOCH = Date.UTC(2025, 0, 1);
const FORM_STEP_MS = 10;
const FORM_LIMIT_MS = 20_000;

export class SimCluster {
  readonly net: SimNetwork;
  readonly nodes: McCacheNode[] = [];
  readonly transports: SimTransport[] = [];
  /** Every mutation published by any node, in the order published. */
  readonly published: Published[] = [];
  /** Virtual instant the cluster had formed. */
  formedAt = 0;

  readonly #o: SimClusterOptions;
  readonly #byId = new Map<bigint, SimTransport>();

  private constructor(o: SimClusterOptions) {
    this.#o = o;
    this.net = new SimNetwork(o.seed, o.faults);
    this.net.onEvent = (id, e) => {
      // A renewed node (reliable-core.ts, "Identity renewal") is found under its new id.
      if (e.type === 'renewed' && this.#byId.has(e.oldId)) {
        this.#byId.set(e.newId, this.#byId.get(e.oldId)!);
        this.#byId.delete(e.oldId);
      }
      this.#byId.get(id)?.dispatch(e);
    };
    for (let i = 0; i < o.nodes; i++) {
      // Distinct, deterministic ids; their order differs from the index order on purpose.
      this.#make(BigInt(o.nodes - i) * 0x0101010101010101n + 0x8000000000000000n, o.skews?.[i] ?? 0);
    }
  }

  #make(nodeId: bigint, skew: number): McCacheNode {
    const o = this.#o;
    const i = this.nodes.length;
    const t = new SimTransport(this.net, { nodeId, ...SIM_CORE_OPTIONS, ...o.core });
    this.#byId.set(nodeId, t);
    const node = new McCacheNode({
      transport: t,
      wallNow: () => EPOCH + this.net.now + skew,
      cacheDefaults: { ...o.cacheDefaults, now: this.now },
      syncFlush: true,
      replyWindow: o.replyWindow ?? 30,
      ...o.node,
    });
    const publish = node.publish.bind(node);
    node.publish = (message: Mutation): void => {
      this.published.push({ node: i, message: message.op === 'put' ? encodedPut(message) : message });
      publish(message);
    };
    this.transports.push(t);
    this.nodes.push(node);
    return node;
  }

  /** Adds and starts a node after the cluster formed (a late joiner or a restarted process). */
  async addNode(nodeId: bigint, skew = 0): Promise<number> {
    const node = this.#make(nodeId, skew);
    await node.start();
    return this.nodes.length - 1;
  }

  /** Node i crashes: it leaves the network at once, without a goodbye. */
  crash(i: number): void {
    this.net.crash(this.nodes[i]!.nodeId);
  }

  /**
   * Schedules an anti-entropy pulse on every live node (also those added later) every `period`
   * virtual ms, until `until`.
   */
  pulses(period: number, until: number): void {
    for (let t = this.net.now + period; t <= until; t += period) {
      this.net.at(t, () => this.nodes.forEach((n) => {
        if (this.net.node(n.nodeId)) n.pulse();
      }));
    }
  }

  /** Builds the cluster, starts every node and runs the network until the cluster has formed. */
  static async start(o: SimClusterOptions): Promise<SimCluster> {
    const c = new SimCluster(o);
    await Promise.all(c.nodes.map((n) => n.start()));
    const want = o.nodes - 1;
    while (!c.nodes.every((n) => n.members.length === want)) {
      if (c.net.now > FORM_LIMIT_MS) throw new Error(`sim: a cluster of ${o.nodes} did not form in ${FORM_LIMIT_MS} ms`);
      c.net.run(c.net.now + FORM_STEP_MS);
    }
    c.formedAt = c.net.now;
    return c;
  }

  /** The virtual clock (ms), for caches' `now`. */
  readonly now = (): number => this.net.now;

  /** Node i's cache `name` (McCacheNode.cache with the virtual clock). */
  cache<V = unknown>(i: number, name: string, options: CacheOptions<V> = {}): Cache<V> {
    return this.nodes[i]!.cache<V>(name, { now: this.now, ...options });
  }

  /** Runs the network `ms` virtual ms further. */
  run(ms: number): void {
    this.net.run(this.net.now + ms);
  }

  /**
   * Runs until every node is quiescent (nothing pending, every message acknowledged by every
   * member, hence delivered everywhere) and returns the instant; throws after `limit` virtual ms.
   */
  settle(limit = 60_000): number {
    const until = this.net.now + limit;
    for (;;) {
      if (this.nodes.every((n) => n.quiescent)) return this.net.now;
      if (this.net.now >= until) throw new Error(`sim: not quiescent after ${limit} ms: ${this.describe()}`);
      this.run(FORM_STEP_MS);
    }
  }

  /**
   * Awaits `p` while running the network (virtual time advances `stepMs` per turn of the real
   * event loop), for node calls that wait on timers: shutdown, clusterChecksum.
   */
  async drive<T>(p: Promise<T>, stepMs = 5, limit = 20_000): Promise<T> {
    let done = false;
    const settled = p.finally(() => { done = true; });
    // The awaited calls wait on real timers (reply windows), which a loaded machine fires
    // late while idle virtual time races ahead: bound the wait in real time, not virtual.
    const until = performance.now() + limit;
    while (!done) {
      await new Promise((r) => setImmediate(r));
      if (done) break;
      if (performance.now() >= until) throw new Error(`sim: still waiting after ${limit} real ms`);
      this.run(stepMs);
    }
    return settled;
  }

  /** Per node: pending writes and unacknowledged messages, for failure messages. */
  describe(): string {
    return this.nodes.map((n, i) => `#${i} pending=${n.pending} unacked=${(this.transports[i]!.core.stats()).unackedMessages}`).join(', ');
  }
}

/** An entry as compared across nodes: key, version, value bytes' checksum, decoded value. */
export interface EntryView {
  key: string;
  hlc: string;
  origin: string;
  checksum: string;
  value: unknown;
}

/** The live entries of `cache` (empty for a node that has none), sorted by key. */
export function entriesOf(cache: Cache<unknown> | undefined): EntryView[] {
  if (!cache) return [];
  const out: EntryView[] = [];
  for (const [key, value] of cache.entries()) {
    const md = cache.metadata(key)!;
    out.push({ key, hlc: md.version.hlc.toString(), origin: md.version.node.toString(16), checksum: md.checksum, value });
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * What every member of a full-replication (mode 1) cluster must hold after quiescence, from
 * the mutations published: per key the highest version among its puts and deletes wins, and a
 * clear removes everything older than itself. (Last writer wins by (hlc, node id), DESIGN.md §5.)
 */
export function expectedState(cluster: SimCluster, cache: string): Map<string, { version: Version; value: Message & { op: 'put' } }> {
  const best = new Map<string, { version: Version; put: (Message & { op: 'put' }) | undefined }>();
  let cleared: Version = { hlc: 0n, node: 0n };
  for (const p of cluster.published) {
    const m = p.message;
    if (!('cache' in m) || m.cache !== cache) continue;
    const version = { hlc: (m as { hlc: bigint }).hlc, node: cluster.nodes[p.node]!.nodeId };
    if (m.op === 'clear') {
      if (compareVersions(version, cleared) > 0) cleared = version;
    } else if (m.op === 'put' || m.op === 'delete') {
      const cur = best.get(m.key);
      if (!cur || compareVersions(version, cur.version) > 0) best.set(m.key, { version, put: m.op === 'put' ? m : undefined });
    }
  }
  const out = new Map<string, { version: Version; value: Message & { op: 'put' } }>();
  for (const [key, b] of best) if (b.put && compareVersions(b.version, cleared) > 0) out.set(key, { version: b.version, value: b.put });
  return out;
}
