/**
 * Nodes with and without keys on the simulated network (runtime/transport/sim-network.ts), for
 * the encryption tests: bare reliable cores (`SecureSim`), or whole McCacheNodes with caches
 * (`SecureCluster`, as conformance/cluster/sim-cluster.ts but with a sealer per node). Every
 * datagram any node transmits is captured, so tests can replay, forge and tamper with real
 * sealed traffic, and inject it into one node.
 */
import { Sealer } from '../../runtime/codec/crypto';
import { encodeMessage } from '../../runtime/codec/encode';
import type { Message } from '../../runtime/codec/packet';
import { ReliableCore, type ReliableCoreOptions } from '../../runtime/core/reliable-core';
import type { CoreEvent, NodeId } from '../../runtime/core/types';
import type { Cache, CacheOptions } from '../../runtime/cache/cache';
import { McCacheNode } from '../../runtime/node';
import { SimNetwork, type SimFaults } from '../../runtime/transport/sim-network';
import { SimTransport } from '../../runtime/transport/sim-transport';
import { SIM_CORE_OPTIONS } from '../core/sim-harness';

export const KEY = new Uint8Array(32).map((_, i) => (i * 7 + 1) & 0xff);
export const OTHER_KEY = new Uint8Array(32).map((_, i) => (i * 13 + 5) & 0xff);

/** A node's keys: undefined = no key (plaintext). */
export type KeySpec = { key: Uint8Array; id?: number } | undefined;

export function sealerFor(spec: KeySpec): Sealer | undefined {
  return spec === undefined ? undefined : new Sealer({ id: spec.id ?? 1, key: spec.key });
}

/** Sealed capacity at the simulation's MTU: 548 - 56. */
export const SEALED_CAPACITY = SIM_CORE_OPTIONS.packetMtu - 56;

/** A put whose sealed body is exactly `frags` full fragments at the simulation's MTU. */
export function sealedPutOfFrags(key: string, frags: number, salt = 0): Extract<Message, { op: 'put' }> {
  const base = encodeMessage({ op: 'put', cache: 'c', key, hlc: 1n, ttl: 0, codec: 'bytes', value: new Uint8Array(0) }).length;
  const size = Math.max(0, frags * SEALED_CAPACITY - base);
  const value = new Uint8Array(size);
  for (let i = 0; i < size; i++) value[i] = (i * 31 + key.length + salt) & 0xff;
  return { op: 'put', cache: 'c', key, hlc: 1n, ttl: 0, codec: 'bytes', value };
}

export interface Captured {
  from: NodeId;
  at: number;
  bytes: Uint8Array;
}

/** Node ids the simulation uses: distinct, with every byte set. */
export function simId(i: number): NodeId {
  return BigInt(i + 1) * 0x0101010101010101n + 0x8000000000000000n;
}

/** Bare cores, one per key spec; node i has id simId(i). */
export class SecureSim {
  readonly net: SimNetwork;
  readonly ids: NodeId[] = [];
  readonly cores = new Map<NodeId, ReliableCore>();
  readonly events = new Map<NodeId, CoreEvent[]>();
  readonly captured: Captured[] = [];
  /** Per node, the datagrams the network delivered to it (not those injected). */
  readonly received = new Map<NodeId, Uint8Array[]>();
  #injecting = false;

  constructor(seed: number, keys: readonly KeySpec[], faults: SimFaults = {}, core: Partial<ReliableCoreOptions> = {}) {
    this.net = new SimNetwork(seed, faults);
    this.net.onEvent = (id, e) => this.events.get(id)!.push(e);
    this.net.onTransmit = (from, bytes, at) => this.captured.push({ from, at, bytes: bytes.slice() });
    keys.forEach((k, i) => this.add(simId(i), k, core));
  }

  add(id: NodeId, key: KeySpec, core: Partial<ReliableCoreOptions> = {}): ReliableCore {
    const sealer = sealerFor(key);
    const c = new ReliableCore({ ...SIM_CORE_OPTIONS, ...core, nodeId: id, rng: this.net.rng(), ...(sealer && { sealer }) });
    this.ids.push(id);
    this.cores.set(id, c);
    this.events.set(id, []);
    const received: Uint8Array[] = [];
    this.received.set(id, received);
    const handle = c.handleDatagram.bind(c);
    c.handleDatagram = (now: number, bytes: Uint8Array): void => {
      if (!this.#injecting) received.push(bytes.slice());
      handle(now, bytes);
    };
    this.net.add(c);
    return c;
  }

  core(i: number): ReliableCore {
    return this.cores.get(this.ids[i]!)!;
  }

  /** Runs until every node in `groups` knows exactly the others of its group. */
  form(groups: number[][], limit = 5000): void {
    const ok = (): boolean => groups.every((g) => g.every((i) => {
      const m = this.core(i).members;
      return m.length === g.length - 1 && g.every((j) => j === i || m.includes(this.ids[j]!));
    }));
    while (!ok()) {
      if (this.net.now > limit) throw new Error('sim: groups did not form');
      this.net.run(this.net.now + 10);
    }
  }

  run(ms: number): void {
    this.net.run(this.net.now + ms);
  }

  /** Feeds `bytes` to node i as if received now (its replies go out on the network). */
  inject(i: number, bytes: Uint8Array): void {
    this.#injecting = true;
    try {
      this.net.poke(this.ids[i]!, (c, now) => c.handleDatagram(now, bytes));
    } finally {
      this.#injecting = false;
    }
  }

  /** Datagrams node `to` received from node `from` through the network. */
  receivedFrom(to: number, from: number): Uint8Array[] {
    const id = this.ids[from]!;
    return this.received.get(this.ids[to]!)!.filter((b) => b.length >= 16 && Buffer.from(b).readBigUInt64BE(8) === id);
  }

  /** Messages node i delivered, in order. */
  delivered(i: number): Array<Extract<CoreEvent, { type: 'deliver' }>> {
    return this.events.get(this.ids[i]!)!.filter((e): e is Extract<CoreEvent, { type: 'deliver' }> => e.type === 'deliver');
  }

  send(i: number, m: Message): number | undefined {
    let seq: number | undefined;
    this.net.poke(this.ids[i]!, (c, now) => { seq = (c as ReliableCore).send(now, m); });
    return seq;
  }
}

/** Sum of a core's drop counters. */
export function totalDropped(c: ReliableCore): number {
  return Object.values(c.stats().dropped).reduce((a, b) => a + b, 0);
}

/** Whole McCacheNodes (caches, replicator, core) with a key spec each; node i has id simId(i). */
export class SecureCluster {
  readonly net: SimNetwork;
  readonly nodes: McCacheNode[] = [];
  readonly transports: SimTransport[] = [];
  readonly captured: Captured[] = [];
  readonly #byId = new Map<NodeId, SimTransport>();

  constructor(seed: number, keys: readonly KeySpec[], faults: SimFaults = {}) {
    this.net = new SimNetwork(seed, faults);
    this.net.onEvent = (id, e) => {
      // A renewed node (reliable-core.ts, "Identity renewal") is found under its new id.
      if (e.type === 'renewed' && this.#byId.has(e.oldId)) {
        this.#byId.set(e.newId, this.#byId.get(e.oldId)!);
        this.#byId.delete(e.oldId);
      }
      this.#byId.get(id)?.dispatch(e);
    };
    this.net.onTransmit = (from, bytes, at) => this.captured.push({ from, at, bytes: bytes.slice() });
    keys.forEach((k, i) => {
      const sealer = sealerFor(k);
      const t = new SimTransport(this.net, { ...SIM_CORE_OPTIONS, nodeId: simId(i), ...(sealer && { sealer }) });
      this.#byId.set(t.nodeId, t);
      this.transports.push(t);
      this.nodes.push(new McCacheNode({ transport: t, wallNow: () => Date.UTC(2025, 0, 1) + this.net.now, cacheDefaults: { now: this.now }, syncFlush: true }));
    });
  }

  readonly now = (): number => this.net.now;

  async start(groups: number[][]): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.start()));
    const ok = (): boolean => groups.every((g) => g.every((i) => this.nodes[i]!.members.length === g.length - 1));
    while (!ok()) {
      if (this.net.now > 5000) throw new Error('sim: groups did not form');
      this.run(10);
    }
  }

  cache<V = unknown>(i: number, name = 'c', options: CacheOptions<V> = {}): Cache<V> {
    return this.nodes[i]!.cache<V>(name, { now: this.now, ...options });
  }

  run(ms: number): void {
    this.net.run(this.net.now + ms);
  }

  /** Runs until every node is quiescent (everything acknowledged), bounded. */
  settle(limit = 20_000): void {
    const until = this.net.now + limit;
    while (!this.nodes.every((n) => n.quiescent)) {
      if (this.net.now >= until) throw new Error('sim: not quiescent');
      this.run(10);
    }
  }

  core(i: number): ReliableCore {
    return this.transports[i]!.core;
  }

  inject(i: number, bytes: Uint8Array): void {
    this.net.poke(this.nodes[i]!.nodeId, (c, now) => c.handleDatagram(now, bytes));
  }
}
