/**
 * A NodeTransport over the simulated network: lets whole McCacheNodes (caches included) run on
 * a SimNetwork with a virtual clock, for deterministic multi-node cache tests. The network's
 * event hook must be routed to `dispatch` (SimCluster in the tests does this).
 */
import { EventEmitter } from 'node:events';
import type { Message } from '../codec/packet';
import { ReliableCore, type ReliableCoreOptions } from '../core/reliable-core';
import type { CoreEvent, NodeId } from '../core/types';
import type { SimNetwork } from './sim-network';

export class SimTransport extends EventEmitter {
  readonly core: ReliableCore;
  readonly #net: SimNetwork;
  #open = false;

  constructor(net: SimNetwork, options: Omit<ReliableCoreOptions, 'rng'>) {
    super();
    this.#net = net;
    this.core = new ReliableCore({ ...options, rng: net.rng() });
  }

  get nodeId(): NodeId {
    return this.core.nodeId;
  }

  get writable(): boolean {
    return this.#open && this.core.writable;
  }

  start(): Promise<void> {
    this.#net.add(this.core);
    this.#open = true;
    return Promise.resolve();
  }

  send(message: Message): number | undefined {
    let seq: number | undefined;
    this.#net.poke(this.nodeId, (_c, now) => {
      seq = this.core.send(now, message);
    });
    return seq;
  }

  sendUnsequenced(message: Message): void {
    this.#net.poke(this.nodeId, (_c, now) => this.core.sendUnsequenced(now, message));
  }

  /** Called by the network's event hook for this node's core events. */
  dispatch(e: CoreEvent): void {
    this.emit(e.type, e);
  }

  close(): Promise<void> {
    this.#net.poke(this.nodeId, (_c, now) => this.core.close(now));
    this.#open = false;
    return Promise.resolve();
  }

  stats(): Record<string, unknown> {
    return { ...this.core.stats() };
  }
}
