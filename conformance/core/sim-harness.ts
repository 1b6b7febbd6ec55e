/**
 * Scenario runner for the reliable core on the simulated network: N cores, a schedule of sends,
 * faults, an optional partition and an optional crash (with restart as a new member). Records
 * what every node delivered and everything the protocol sent, for the properties to check.
 */
import { encodeMessage } from '../../runtime/codec/encode';
import { ReliableCore, type ReliableCoreOptions } from '../../runtime/core/reliable-core';
import type { Message } from '../../runtime/codec/packet';
import type { NodeId } from '../../runtime/core/types';
import { SimNetwork } from '../../runtime/transport/sim-network';

export interface Scenario {
  seed: number;
  nodes: number;
  loss: number;
  duplicate: number;
  reorder: number;
  /** Sends: sender index (mod nodes), virtual time, message size in fragments. */
  sends: Array<{ from: number; at: number; frags: number }>;
  partition?: { at: number; duration: number; mask: number } | null;
  crash?: { node: number; at: number; restartAfter: number | null } | null;
  /** Small send windows exercise backpressure. */
  maxUnackedMessages?: number | undefined;
  /** Small byte bounds on the send window (messages of up to 255 fragments). */
  maxUnackedBytes?: number | undefined;
  /** The cores' unicast mode: repairs addressed to one member (the network honours `to`). */
  unicast?: boolean | undefined;
}

export const SIM_CORE_OPTIONS = {
  packetMtu: 548,
  heartbeatInterval: 100,
  failureTimeout: 1500,
  ackInterval: 20,
  nakDelay: 5,
  nakRetryInterval: 20,
  tailProbeDelay: 5,
  reassemblyTimeout: 1000,
} satisfies Partial<ReliableCoreOptions>;

export interface Delivered {
  from: NodeId;
  seq: number;
  key: string;
  size: number;
}

export interface Outcome {
  ids: NodeId[];
  /** Nodes alive from start to end. */
  survivors: Set<NodeId>;
  sent: Map<NodeId, Array<{ seq: number; key: string; size: number }>>;
  delivered: Map<NodeId, Delivered[]>;
  gaps: Array<{ at: NodeId; from: NodeId; first: number; last: number }>;
  /** NAKs and retransmissions sent, with their instants. */
  repairs: number[];
  end: number;
  lastSendAt: number;
  cores: Map<NodeId, ReliableCore>;
  net: SimNetwork;
  maxOutOfOrder: number;
  maxUnacked: number;
  /** Most unacknowledged bytes any sender held at a send or a sample. */
  maxUnackedBytes: number;
}

const CAPACITY = SIM_CORE_OPTIONS.packetMtu - 28;

/** A put whose body is exactly `frags` full fragments (an exact multiple of the capacity). */
export function putOfFrags(key: string, frags: number): Message {
  const base = encodeMessage({ op: 'put', cache: 'c', key, hlc: 1n, ttl: 0, codec: 'bytes', value: new Uint8Array(0) }).length;
  const size = Math.max(0, frags * CAPACITY - base);
  const value = new Uint8Array(size);
  for (let i = 0; i < size; i++) value[i] = (i * 31 + key.length) & 0xff;
  return { op: 'put', cache: 'c', key, hlc: 1n, ttl: 0, codec: 'bytes', value };
}

export function runScenario(s: Scenario, settle = 6000): Outcome {
  const net = new SimNetwork(s.seed, { loss: s.loss, duplicate: s.duplicate, reorder: s.reorder });
  const cores = new Map<NodeId, ReliableCore>();
  const make = (id: NodeId) => {
    const c = new ReliableCore({ nodeId: id, rng: net.rng(), ...SIM_CORE_OPTIONS,
      ...(s.maxUnackedMessages !== undefined && { maxUnackedMessages: s.maxUnackedMessages }),
      ...(s.maxUnackedBytes !== undefined && { maxUnackedBytes: s.maxUnackedBytes }),
      ...(s.unicast !== undefined && { unicast: s.unicast }) });
    cores.set(id, c);
    net.add(c);
    return c;
  };
  const ids: NodeId[] = [];
  for (let i = 0; i < s.nodes; i++) ids.push(BigInt(i + 1) * 0x0101010101010101n + 0x8000000000000000n);
  const survivors = new Set(ids);
  const sent = new Map<NodeId, Array<{ seq: number; key: string; size: number }>>();
  const delivered = new Map<NodeId, Delivered[]>();
  const gaps: Outcome['gaps'] = [];
  const repairs: number[] = [];
  const backlog = new Map<NodeId, Message[]>();
  let maxOutOfOrder = 0;
  let maxUnacked = 0;
  let maxUnackedBytes = 0;

  const trySend = (id: NodeId) => {
    net.poke(id, (core, now) => {
      const c = core as ReliableCore;
      const q = backlog.get(id) ?? [];
      while (q.length > 0) {
        const m = q[0]!;
        const seq = c.send(now, m);
        if (seq === undefined) break;
        q.shift();
        const list = sent.get(id) ?? [];
        list.push({ seq, key: (m as { key: string }).key, size: (m as { value: Uint8Array }).value.length });
        sent.set(id, list);
      }
      const st = c.stats();
      maxUnacked = Math.max(maxUnacked, st.unackedMessages);
      maxUnackedBytes = Math.max(maxUnackedBytes, st.unackedBytes);
    });
  };

  net.onEvent = (node, e) => {
    if (e.type === 'deliver') {
      const m = e.message as Extract<Message, { op: 'put' }>;
      const list = delivered.get(node) ?? [];
      list.push({ from: e.from, seq: e.seq, key: m.key, size: m.value.length });
      delivered.set(node, list);
    } else if (e.type === 'gap') {
      gaps.push({ at: node, from: e.from, first: e.first, last: e.last });
    } else if (e.type === 'writable') {
      net.at(net.now, () => trySend(node));
    }
  };
  net.onTransmit = (_node, bytes, now) => {
    if (bytes[3] === 0x43 || (bytes[4]! & 0x02) !== 0) repairs.push(now);
  };

  for (const id of ids) make(id);
  // The guarantee is about a formed cluster: every member knows every other one. Messages sent
  // before that are the anti-entropy layer's job (a sender cannot wait for a member it has never
  // heard of). So the schedule starts once all have met.
  let formedAt = 0;
  while (![...cores.values()].every((c) => c.members.length === s.nodes - 1)) {
    if (formedAt > 20_000) throw new Error(`sim: cluster of ${s.nodes} did not form in 20 s`);
    formedAt += 10;
    net.run(formedAt);
  }
  const base = formedAt;
  let lastSendAt = 0;
  s.sends.forEach((snd, i) => {
    const from = ids[snd.from % ids.length]!;
    lastSendAt = Math.max(lastSendAt, base + snd.at);
    net.at(base + snd.at, () => {
      if (!cores.has(from) || !net.node(from)) return;
      const q = backlog.get(from) ?? [];
      q.push(putOfFrags(`k${i}`, snd.frags));
      backlog.set(from, q);
      trySend(from);
    });
  });
  if (s.partition) {
    const p = s.partition;
    const side = ids.filter((_, i) => (p.mask >> i) & 1);
    net.at(base + p.at, () => net.partition(side));
    net.at(base + p.at + p.duration, () => net.heal());
  }
  if (s.crash) {
    const victim = ids[s.crash.node % ids.length]!;
    survivors.delete(victim);
    net.at(base + s.crash.at, () => net.crash(victim));
    if (s.crash.restartAfter !== null) {
      // A restarted process is a new member with a new id.
      net.at(base + s.crash.at + s.crash.restartAfter, () => make(victim ^ 0x00ff00ff00ff00ffn));
    }
  }
  // Sample buffer depths while running.
  const end = base + Math.max(lastSendAt - base, (s.partition?.at ?? 0) + (s.partition?.duration ?? 0),
    (s.crash?.at ?? 0) + (s.crash?.restartAfter ?? 0)) + settle;
  for (let t = base; t < end; t += 50) {
    net.at(t, () => {
      for (const c of cores.values()) {
        const st = c.stats();
        maxOutOfOrder = Math.max(maxOutOfOrder, st.outOfOrderBuffered);
        maxUnacked = Math.max(maxUnacked, st.unackedMessages);
        maxUnackedBytes = Math.max(maxUnackedBytes, st.unackedBytes);
      }
    });
  }
  net.run(end);
  return { ids, survivors, sent, delivered, gaps, repairs, end, lastSendAt, cores, net, maxOutOfOrder, maxUnacked, maxUnackedBytes };
}
