/**
 * Theory of operation
 * -------------------
 * An in-memory multicast network with a virtual clock, for deterministic protocol tests
 * (DESIGN.md §8; quinn's `Pair`, h11's `ConnectionPair`). It drives any number of sans-I/O
 * cores: every datagram a core transmits is copied to every other live node, each copy
 * independently lost, duplicated, delayed or reordered by a seeded PRNG. Partitions cut the
 * group in two; crashes remove a node without a goodbye.
 *
 * `run(until)` advances virtual time from event to event (a delivery, a core's timeout, or a
 * scheduled action), so a minute of protocol time costs milliseconds and a failing seed replays
 * exactly. No sockets, timers or sleeps.
 *
 * A core may renew its node id (reliable-core.ts, "Identity renewal"): the network notices the
 * change when it next pumps that core and files it under the new id from then on (a partition
 * side too), so `node`, `poke` and `crash` take the current id.
 */
import type { CoreEvent, NodeId, Transmit } from '../core/types';

/** The part of a core the network drives (ReliableCore implements it). */
export interface SimCore {
  /** May change between inputs (a renewed identity); the network follows it. */
  readonly nodeId: NodeId;
  start(now: number): void;
  handleDatagram(now: number, bytes: Uint8Array): void;
  handleTimeout(now: number): void;
  pollTransmit(): Transmit | undefined;
  pollEvent(): CoreEvent | undefined;
  pollTimeout(): number | undefined;
}

export interface SimFaults {
  /** Probability that one copy of a datagram is lost, per receiver. */
  loss?: number;
  /** Probability that a copy is delivered twice. */
  duplicate?: number;
  /** Probability that a copy gets an extra delay of up to 10 x maxDelay (reordering). */
  reorder?: number;
  /** One-way delay range, ms. @default 0.05 .. 0.5 */
  minDelay?: number;
  maxDelay?: number;
}

/** Small, fast, seedable PRNG (xorshift128+ style on 32-bit halves); not for cryptography. */
export function seededRng(seed: number): () => number {
  let a = (seed ^ 0x9e3779b9) >>> 0 || 1;
  let b = (Math.imul(seed, 0x85ebca6b) ^ 0xc2b2ae35) >>> 0 || 2;
  let c = (Math.imul(seed ^ 0x27d4eb2f, 0x165667b1)) >>> 0 || 3;
  let d = 0x6c8e9cf5;
  return () => {
    const t = a ^ (a << 11);
    a = b;
    b = c;
    c = d;
    d = (d ^ (d >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    return d / 4294967296;
  };
}

interface Pending {
  at: number;
  order: number;
  /** The node itself, not its id: a datagram in flight reaches a node that renewed its id. */
  to: SimCore;
  bytes: Uint8Array;
}

interface Action {
  at: number;
  order: number;
  run: () => void;
}

export interface SimStats {
  transmitted: number;
  delivered: number;
  lost: number;
  duplicated: number;
  cut: number;
}

export class SimNetwork {
  now = 0;
  readonly #rng: () => number;
  readonly #f: Required<SimFaults>;
  readonly #nodes = new Map<NodeId, SimCore>();
  /** The id each node is filed under in #nodes, to notice a renewal. */
  readonly #filedAs = new Map<SimCore, NodeId>();
  readonly #queue: Pending[] = [];
  readonly #actions: Action[] = [];
  #order = 0;
  #side: Set<NodeId> | undefined;
  readonly stats: SimStats = { transmitted: 0, delivered: 0, lost: 0, duplicated: 0, cut: 0 };
  /** Called for every event any core emits. */
  onEvent: (node: NodeId, event: CoreEvent, now: number) => void = () => {};
  /** Called for every datagram a core transmits (before faults). */
  onTransmit: (node: NodeId, bytes: Uint8Array, now: number) => void = () => {};

  constructor(seed: number, faults: SimFaults = {}) {
    this.#rng = seededRng(seed);
    this.#f = { loss: 0, duplicate: 0, reorder: 0, minDelay: 0.05, maxDelay: 0.5, ...faults };
  }

  /** A random source derived from the network's seed, for the cores' back-off. */
  rng(): () => number {
    return seededRng(Math.floor(this.#rng() * 2 ** 32));
  }

  get nodes(): NodeId[] {
    return [...this.#nodes.keys()];
  }

  node(id: NodeId): SimCore | undefined {
    return this.#nodes.get(id);
  }

  /** Adds a node and starts it now. */
  add(core: SimCore): void {
    this.#nodes.set(core.nodeId, core);
    this.#filedAs.set(core, core.nodeId);
    core.start(this.now);
    this.#pump(core);
  }

  /** Removes a node at once, without a goodbye; its in-flight datagrams still arrive elsewhere. */
  crash(id: NodeId): void {
    const core = this.#nodes.get(id);
    if (core) this.#filedAs.delete(core);
    this.#nodes.delete(id);
  }

  /** Runs `fn` at virtual time `at` (e.g. a send, a partition, a crash). */
  at(at: number, fn: () => void): void {
    insert(this.#actions, { at, order: this.#order++, run: fn });
  }

  /** Nodes in `side` can talk only to each other, the rest only among themselves. */
  partition(side: Iterable<NodeId>): void {
    this.#side = new Set(side);
  }

  heal(): void {
    this.#side = undefined;
  }

  /** Lets a node act outside the network's own events (e.g. an application send) and pumps it. */
  poke(id: NodeId, fn: (core: SimCore, now: number) => void): void {
    const core = this.#nodes.get(id);
    if (!core) return;
    fn(core, this.now);
    this.#pump(core);
  }

  /** Advances virtual time to `until`, processing everything due on the way. */
  run(until: number, maxSteps = 50_000_000): void {
    for (let steps = 0; ; steps++) {
      if (steps > maxSteps) throw new Error(`sim: more than ${maxSteps} steps before t=${until}`);
      const tNet = this.#queue[0]?.at ?? Infinity;
      const tAct = this.#actions[0]?.at ?? Infinity;
      let tNode = Infinity;
      let due: SimCore | undefined;
      for (const n of this.#nodes.values()) {
        const t = n.pollTimeout();
        if (t !== undefined && t < tNode) {
          tNode = t;
          due = n;
        }
      }
      const t = Math.min(tNet, tAct, tNode);
      if (t > until) {
        this.now = Math.max(this.now, until);
        return;
      }
      this.now = Math.max(this.now, t);
      if (tAct <= tNet && tAct <= tNode) {
        popMin(this.#actions)!.run();
      } else if (tNet <= tNode) {
        const p = popMin(this.#queue)!;
        const n = this.#filedAs.has(p.to) ? p.to : undefined; // undefined: crashed meanwhile
        if (n) {
          this.stats.delivered++;
          n.handleDatagram(this.now, p.bytes);
          this.#pump(n);
        }
      } else {
        due!.handleTimeout(this.now);
        this.#pump(due!);
        // A core that keeps asking for a timeout it does not advance would spin forever.
        if (this.now === this.#lastTimeoutAt && due === this.#lastTimeoutNode) {
          if (++this.#spins > 1000) throw new Error(`sim: node ${due!.nodeId} keeps asking for a timeout at ${this.now}`);
        } else {
          this.#spins = 0;
          this.#lastTimeoutAt = this.now;
          this.#lastTimeoutNode = due;
        }
      }
    }
  }

  /** Files a core whose id changed (a renewal) under its new id. */
  #refile(n: SimCore): void {
    const was = this.#filedAs.get(n);
    if (was === undefined || was === n.nodeId) return;
    this.#nodes.delete(was);
    this.#nodes.set(n.nodeId, n);
    this.#filedAs.set(n, n.nodeId);
    if (this.#side?.delete(was)) this.#side.add(n.nodeId);
  }

  #spins = 0;
  #lastTimeoutAt = -1;
  #lastTimeoutNode: SimCore | undefined;

  #pump(n: SimCore): void {
    this.#refile(n);
    for (let t = n.pollTransmit(); t !== undefined; t = n.pollTransmit()) {
      this.stats.transmitted++;
      this.onTransmit(n.nodeId, t.bytes, this.now);
      for (const [to, node] of this.#nodes) {
        if (to === n.nodeId || (t.to !== undefined && t.to !== to)) continue;
        if (this.#side && this.#side.has(to) !== this.#side.has(n.nodeId)) {
          this.stats.cut++;
          continue;
        }
        if (this.#rng() < this.#f.loss) {
          this.stats.lost++;
          continue;
        }
        const copies = this.#rng() < this.#f.duplicate ? 2 : 1;
        if (copies === 2) this.stats.duplicated++;
        for (let i = 0; i < copies; i++) {
          let delay = this.#f.minDelay + this.#rng() * (this.#f.maxDelay - this.#f.minDelay);
          if (this.#rng() < this.#f.reorder) delay += this.#rng() * 10 * this.#f.maxDelay;
          insert(this.#queue, { at: this.now + delay, order: this.#order++, to: node, bytes: t.bytes });
        }
      }
    }
    for (let e = n.pollEvent(); e !== undefined; e = n.pollEvent()) this.onEvent(n.nodeId, e, this.now);
  }
}

// Binary min-heap on (at, order): equal instants keep insertion order, so runs are deterministic.
function less(a: { at: number; order: number }, b: { at: number; order: number }): boolean {
  return a.at < b.at || (a.at === b.at && a.order < b.order);
}
function insert<T extends { at: number; order: number }>(h: T[], x: T): void {
  h.push(x);
  let i = h.length - 1;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (!less(h[i]!, h[p]!)) break;
    [h[i], h[p]] = [h[p]!, h[i]!];
    i = p;
  }
}
function popMin<T extends { at: number; order: number }>(h: T[]): T | undefined {
  const top = h[0];
  const last = h.pop();
  if (h.length > 0 && last !== undefined) {
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && less(h[l]!, h[m]!)) m = l;
      if (r < h.length && less(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
  return top;
}
