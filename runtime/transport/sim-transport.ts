/**
 * A NodeTransport over the simulated network: lets whole McCacheNodes (caches included) run on
 * a SimNetwork with a virtual clock, for deterministic multi-node cache tests. The network's
 * event hook must be routed to `dispatch` (conformance/cluster/sim-cluster.ts does this).
 *
 * It behaves like UdpDriver where the node can tell: `send` throws MCCACHE_ERR_CLOSED before
 * start and after close, `writable` is false while closing, and `close` first waits (in virtual
 * time, bounded by `flushTimeout`) until every member acknowledged what was sent, then sends
 * LEAVE. Closing at once would make the peers drop this member, and with it their repair of
 * its last messages.
 */
import { EventEmitter } from 'node:events';
import type { Message, OutgoingMessage } from '../codec/packet';
import { ReliableCore, type ReliableCoreOptions } from '../core/reliable-core';
import type { CoreEvent, NodeId } from '../core/types';
import { ErrorCode, McCacheError } from '../errors';
import type { SimNetwork } from './sim-network';

export interface SimTransportOptions extends Omit<ReliableCoreOptions, 'rng'> {
  /** Longest close() waits for every member to acknowledge what we sent, virtual ms. @default 2000 */
  flushTimeout?: number;
}

/** Virtual ms between checks of the send window while closing. */
const CLOSE_POLL_MS = 5;

export class SimTransport extends EventEmitter {
  readonly core: ReliableCore;
  readonly #net: SimNetwork;
  readonly #flushTimeout: number;
  #state: 'new' | 'open' | 'closing' | 'closed' = 'new';
  #closing: Promise<void> | undefined;

  constructor(net: SimNetwork, options: SimTransportOptions) {
    super();
    const { flushTimeout, ...core } = options;
    this.#net = net;
    this.#flushTimeout = flushTimeout ?? 2000;
    this.core = new ReliableCore({ ...core, rng: net.rng() });
  }

  get nodeId(): NodeId {
    return this.core.nodeId;
  }

  get writable(): boolean {
    return this.#state === 'open' && this.core.writable && this.#net.node(this.nodeId) !== undefined;
  }

  start(): Promise<void> {
    if (this.#state !== 'new') return Promise.reject(new McCacheError(ErrorCode.INVALID_ARGUMENT, 'start: already started'));
    this.#state = 'open';
    this.#net.add(this.core);
    return Promise.resolve();
  }

  /** As UdpDriver.send; a crashed node's sends go nowhere (undefined, as a full window). */
  send(message: OutgoingMessage): number | undefined {
    this.#assertOpen('send');
    let seq: number | undefined;
    this.#net.poke(this.nodeId, (_c, now) => {
      seq = this.core.send(now, message);
    });
    return seq;
  }

  sendUnsequenced(message: Message): void {
    this.#assertOpen('sendUnsequenced');
    this.#net.poke(this.nodeId, (_c, now) => this.core.sendUnsequenced(now, message));
  }

  /** Called by the network's event hook for this node's core events. */
  dispatch(e: CoreEvent): void {
    this.emit(e.type, e);
  }

  /**
   * Resolves once LEAVE is sent: after every member acknowledged what we sent, or after
   * `flushTimeout` virtual ms. The caller must keep the network running meanwhile.
   */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      const was = this.#state;
      this.#state = 'closing';
      const finish = (): void => {
        this.#net.poke(this.nodeId, (_c, now) => this.core.close(now));
        this.#state = 'closed';
        this.emit('close');
        resolve();
      };
      if (was !== 'open') {
        this.#state = 'closed';
        resolve();
        return;
      }
      const deadline = this.#net.now + this.#flushTimeout;
      const check = (): void => {
        if (this.core.flushed || this.#net.now >= deadline || this.#net.node(this.nodeId) === undefined) finish();
        else this.#net.at(this.#net.now + CLOSE_POLL_MS, check);
      };
      check();
    });
    return this.#closing;
  }

  stats(): Record<string, unknown> {
    return { ...this.core.stats() };
  }

  #assertOpen(what: string): void {
    if (this.#state !== 'open') {
      throw new McCacheError(ErrorCode.CLOSED, `${what}: the transport is ${this.#state === 'new' ? 'not started' : 'closed'}`);
    }
  }
}
