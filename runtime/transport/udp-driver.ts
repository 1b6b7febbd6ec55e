/**
 * Theory of operation
 * -------------------
 * UdpDriver runs one sans-I/O ReliableCore (runtime/core/reliable-core.ts) over UDP multicast.
 * It is the only module that imports node:dgram. It owns exactly one socket and one timer:
 *
 *   socket 'message'  -> core.handleDatagram(clock.now(), bytes)  -> flush
 *   timer fires       -> core.handleTimeout(clock.now())          -> flush
 *   send(message)     -> core.send(clock.now(), message)          -> flush
 *   flush: drain core.pollTransmit() into socket.send (to group:port), re-arm the timer at
 *          core.pollTimeout(), then drain core.pollEvent() into this EventEmitter.
 *
 * The socket binds the group port with SO_REUSEADDR (several nodes per host are normal) and
 * joins the group on the chosen interface; the same socket sends, with the configured TTL,
 * interface and loopback. Our own datagrams come back through loopback; they are recognised
 * by their sender id and skipped before the core decodes them. With `cryptoKey` the core gets
 * a Sealer (drawn here, once per process start) and seals and opens every datagram
 * (spec/README.md "Encryption").
 *
 * Identity renewal (reliable-core.ts): before its sequence numbers or its sealer's nonce counts
 * run out, the core switches to a new node id and a renewed sealer. The driver supplies the new
 * id (`renewNodeId`: randomNodeId, the generator of process start), follows it on 'renewed' for
 * the loopback check, and `nodeId` reads the current id. The socket and the peers' addresses
 * stay as they are; the core drops what still loops back under a former id.
 *
 * Events: 'deliver', 'receive', 'member-up', 'member-down', 'gap', 'writable', 'renewed' (each
 * with the core's event object, runtime/core/types.ts), and 'close'. A peer's bytes never cause an
 * 'error' event: the core drops and counts what it cannot use. Socket errors are counted too
 * (stats()); a failed send loses nothing for good, because the core keeps every sequenced
 * datagram until it is acknowledged and receivers NAK the hole (DESIGN.md §4).
 *
 * The socket and the timer are unref'd: the library never holds a process open by itself.
 * Only close(), which the application awaits, refs them until it has finished (bounded by
 * `flushTimeout`).
 *
 * Unicast (option `peers`, MCCACHE_PEERS; README "Networks without multicast"). For networks
 * that carry no multicast (clouds, Kubernetes), the same driver runs the same protocol over a
 * static peer list instead of a group. Decision: a mode of this driver rather than a sibling
 * class, because everything but addressing (core, timers, close, stats, crypto) is the same.
 *   - Which entry is this node: `localPeer` when given; otherwise the first entry whose address
 *     is this host's (an interface address, or 127.0.0.0/8) and whose port is free. The socket
 *     binds it without SO_REUSEADDR, so a second node on the same host takes the next entry of
 *     this host. Hence one MCCACHE_PEERS value serves every host.
 *   - Sending: a datagram without `to` goes to every other entry (N-1 sends: data, heartbeats,
 *     ACK digests, JOIN/LEAVE, anti-entropy pulses). The core runs in its `unicast` mode and
 *     addresses repairs: a NAK to the sender it asks, a retransmission to the member that asked,
 *     a sync request or an anti-entropy digest answer to the member it concerns. The driver
 *     maps a node id to the address it last heard that id from; an id it has not heard from
 *     gets the datagram by fan-out.
 *   - Receiving: only datagrams from a listed address:port are used (others are counted in
 *     `notPeerDropped`): a member that is not in our list would never hear our fan-out, and
 *     would hold our send window open with acknowledgements it can never give.
 *   - Host names resolve to IPv4 at start; names that do not resolve yet are retried every
 *     `PEER_RESOLVE_RETRY_MS` and get nothing meanwhile (a pod that is not up yet).
 * Settings that apply: packetMtu, daemonSleep (heartbeat, failure timeout), cryptoKey,
 * monkeyTantrum (per copy sent to one peer), recvBufferSize; the multicast group, port, hops,
 * interface and loopback do not.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type BindOptions, type RemoteInfo, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { EventEmitter } from 'node:events';
import { isIPv4 } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import type { Message, OutgoingMessage } from '../codec/packet';
import { KEY_SIZE, Sealer } from '../codec/crypto';
import { MAGIC } from '../codec/packet';
import { ReliableCore, type CoreStats, type ReliableCoreOptions } from '../core/reliable-core';
import type { CoreEvent, NodeId, Rng } from '../core/types';
import { ErrorCode, McCacheError } from '../errors';
import { resolveTransportOptions, type PeerAddress, type TransportOptions, type TransportOptionsInput } from './udp-options';

/** A monotonic clock in milliseconds. */
export interface Clock {
  now(): number;
}

export interface UdpDriverOptions extends TransportOptionsInput {
  /** The core to run. When absent one is built from `coreOptions`. */
  core?: ReliableCore;
  /**
   * Options for the core built here; `nodeId` defaults to 64 random bits, `rng` to Math.random,
   * `renewNodeId` to randomNodeId, `unicast` to whether `peers` are configured.
   */
  coreOptions?: Partial<ReliableCoreOptions>;
  /**
   * 32-byte AES-256-GCM key (Settings.cryptoKey, MCCACHE_CRYPTO_KEY): the core built here seals
   * every datagram with it as key id 1 and accepts only datagrams sealed with it
   * (spec/README.md "Encryption"). @default undefined (plaintext)
   */
  cryptoKey?: Uint8Array | undefined;
  /** Time source for the core, ms. @default performance */
  clock?: Clock;
  /** Longest close() waits for every member to acknowledge what we sent, ms. @default 2000 */
  flushTimeout?: number;
  /** Randomness for monkeyTantrum drops. @default Math.random */
  rng?: Rng;
  /** Environment read for MCCACHE_MULTICAST_IP / _HOPS / MONKEY_TANTRUM. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
}

export interface UdpDriverStats extends CoreStats {
  /** socket.send calls that failed (EAGAIN, ENOBUFS, ...); the core repairs them by NAK. */
  sendErrors: number;
  sendErrorsByCode: Record<string, number>;
  /** Outgoing datagrams dropped on purpose (monkeyTantrum). */
  tantrumDropped: number;
  /** Our own datagrams received back through multicast loopback, skipped undecoded. */
  loopbackSkipped: number;
  /** 'error' events of the socket after start. */
  socketErrors: number;
  /** Sends handed to the socket and not yet completed. */
  sendsInFlight: number;
  /** SO_RCVBUF as the kernel reports it (Linux reports twice the usable size), 0 before start. */
  recvBufferSize: number;
  /** Unicast: the address:port this node bound ('' for multicast or before start). */
  localPeer: string;
  /** Unicast: peers datagrams go to (resolved entries other than this node). */
  peers: number;
  /** Unicast: datagrams sent to one peer only (repairs, anti-entropy answers). */
  targetedSent: number;
  /** Unicast: datagrams from an address:port not in `peers`, dropped undecoded. */
  notPeerDropped: number;
}

/** A unicast peer as the driver sends to it. */
interface PeerTarget {
  host: string;
  port: number;
  /** IPv4 address; undefined while a host name does not resolve. */
  address: string | undefined;
  /** The node id last heard from this address (both halves; -1 = none yet). */
  idHi: number;
  idLo: number;
  nodeId: NodeId | undefined;
}

export type UdpDriverEvents = {
  [K in CoreEvent['type']]: [Extract<CoreEvent, { type: K }>];
} & { close: [] };

/** Offset of sender_id in the datagram header (spec/mccache_datagram.ksy: 2+1+1+1+1+1+1). */
const SENDER_ID_OFFSET = 8;
const FLUSH_POLL_MS = 5;
/** How often unicast peers whose host name did not resolve are looked up again, ms. */
export const PEER_RESOLVE_RETRY_MS = 5000;

export class UdpDriver extends EventEmitter<UdpDriverEvents> {
  readonly core: ReliableCore;
  readonly options: Readonly<TransportOptions>;
  readonly #clock: Clock;
  readonly #rng: Rng;
  readonly #flushTimeout: number;
  readonly #tantrum: number;
  /** The core's current id in two halves, for the loopback check (updated on 'renewed'). */
  #idHi: number;
  #idLo: number;
  #socket: Socket | undefined;
  #state: 'new' | 'starting' | 'open' | 'closing' | 'closed' = 'new';
  #timer: NodeJS.Timeout | undefined;
  #armedAt = Infinity;
  #closing: Promise<void> | undefined;
  #onIdle: (() => void) | undefined;
  #recvBufferSize = 0;
  readonly #unicast: boolean;
  /** Unicast: every other peer; by source address:port; by the node id heard from it. */
  #peers: PeerTarget[] = [];
  readonly #peerBySource = new Map<string, PeerTarget>();
  readonly #peerByNode = new Map<NodeId, PeerTarget>();
  #localPeer = '';
  #resolveTimer: NodeJS.Timeout | undefined;
  readonly #t = {
    sendErrors: 0, sendErrorsByCode: {} as Record<string, number>, tantrumDropped: 0, loopbackSkipped: 0,
    socketErrors: 0, sendsInFlight: 0, targetedSent: 0, notPeerDropped: 0,
  };

  constructor(options: UdpDriverOptions = {}) {
    super();
    const { core, coreOptions, cryptoKey, clock, flushTimeout, rng, env, ...transport } = options;
    this.options = Object.freeze(resolveTransportOptions(transport, env ?? process.env));
    if (clock !== undefined && typeof clock?.now !== 'function') throw invalid('clock', 'must have a now() method returning ms');
    if (rng !== undefined && typeof rng !== 'function') throw invalid('rng', 'must be a function returning [0, 1)');
    if (flushTimeout !== undefined && (typeof flushTimeout !== 'number' || !(flushTimeout >= 0 && flushTimeout <= 3_600_000))) {
      throw invalid('flushTimeout', `must be a number of ms in 0..3600000, got ${String(flushTimeout)}`);
    }
    if (core !== undefined && coreOptions !== undefined) throw invalid('coreOptions', 'give either core or coreOptions, not both');
    if (cryptoKey !== undefined) {
      if (core !== undefined) throw invalid('cryptoKey', 'give the core its sealer, or cryptoKey without a core');
      if (coreOptions?.sealer !== undefined) throw invalid('cryptoKey', 'give either cryptoKey or coreOptions.sealer, not both');
      if (!(cryptoKey instanceof Uint8Array) || cryptoKey.length !== KEY_SIZE) throw invalid('cryptoKey', `must be ${KEY_SIZE} bytes`);
    }
    this.#clock = clock ?? performance;
    this.#rng = rng ?? Math.random;
    this.#flushTimeout = flushTimeout ?? 2000;
    this.#tantrum = this.options.monkeyTantrum;
    this.#unicast = this.options.peers.length > 0 || this.options.localPeer !== undefined;
    this.core = core ?? new ReliableCore({
      host: hostname(), pid: process.pid, unicast: this.#unicast, ...coreOptions,
      nodeId: coreOptions?.nodeId ?? randomNodeId(), rng: coreOptions?.rng ?? Math.random,
      renewNodeId: coreOptions?.renewNodeId ?? randomNodeId,
      // One sealer per core: it draws its random nonce id here, at process start.
      ...(cryptoKey !== undefined && { sealer: new Sealer({ id: 1, key: cryptoKey }) }),
    });
    this.#idHi = Number(this.core.nodeId >> 32n);
    this.#idLo = Number(this.core.nodeId & 0xffffffffn);
  }

  /** The core's current node id (a renewal changes it). */
  get nodeId(): NodeId {
    return this.core.nodeId;
  }

  /** Can send() take a message now? */
  get writable(): boolean {
    return this.#state === 'open' && this.core.writable;
  }

  /**
   * Binds the socket, joins the group (unicast: binds this node's entry of `peers`), and starts
   * the core (JOIN). Rejects with the socket's error (EADDRINUSE, EADDRNOTAVAIL, ...), or with
   * MCCACHE_ERR_INVALID_OPTION naming `peers` when no entry is a free address of this host, and
   * leaves nothing open.
   */
  async start(): Promise<void> {
    if (this.#state !== 'new') {
      throw this.#closing ? new McCacheError(ErrorCode.CLOSED, 'start: the transport is closed')
        : new McCacheError(ErrorCode.INVALID_ARGUMENT, 'start: already started');
    }
    this.#state = 'starting';
    let socket: Socket;
    try {
      socket = this.#unicast ? await this.#openUnicast() : await this.#openMulticast();
    } catch (err) {
      this.#state = 'closed';
      throw err;
    }
    if (this.#state !== 'starting') { // close() was called while we were binding
      clearInterval(this.#resolveTimer);
      socket.close();
      throw new McCacheError(ErrorCode.CLOSED, 'start: closed before the socket was ready');
    }
    socket.on('error', () => { this.#t.socketErrors++; });
    socket.on('message', this.#onMessage);
    socket.unref();
    this.#socket = socket;
    this.#state = 'open';
    this.core.start(this.#clock.now());
    this.#flush();
  }

  /**
   * Sends a sequenced message to the group. Returns its sequence number, or undefined when the
   * send window is full: nothing was queued; wait for 'writable'. Throws MCCACHE_ERR_CLOSED
   * before start() or after close(), MCCACHE_ERR_MESSAGE_TOO_LARGE as the core does.
   */
  send(message: OutgoingMessage): number | undefined {
    this.#assertOpen('send');
    const seq = this.core.send(this.#clock.now(), message);
    this.#flush();
    return seq;
  }

  /**
   * Sends an unsequenced message (one datagram, best effort). Unicast: `to` limits it to that
   * member (an answer only it needs); multicast: everyone hears it anyway.
   */
  sendUnsequenced(message: Message, to?: NodeId): void {
    this.#assertOpen('sendUnsequenced');
    this.core.sendUnsequenced(this.#clock.now(), message, to);
    this.#flush();
  }

  stats(): UdpDriverStats {
    let peers = 0;
    for (const p of this.#peers) if (p.address !== undefined) peers++;
    return {
      ...this.core.stats(), ...this.#t, sendErrorsByCode: { ...this.#t.sendErrorsByCode },
      recvBufferSize: this.#recvBufferSize, localPeer: this.#localPeer, peers,
    };
  }

  /**
   * Waits until every member acknowledged what we sent (or `flushTimeout` ms passed), then
   * announces LEAVE, waits for the socket to hand it over, and closes the socket. Resolves when
   * done; calling it again returns the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const was = this.#state;
    this.#state = 'closing';
    const socket = this.#socket;
    if (was !== 'open' || !socket) { // never started, or still binding (start() then rejects)
      this.#state = 'closed';
      this.emit('close');
      return;
    }
    socket.ref(); // the application awaits us: stay alive until done, bounded below
    const deadline = this.#clock.now() + this.#flushTimeout;
    while (!this.core.flushed && this.#clock.now() < deadline) {
      await sleep(Math.min(FLUSH_POLL_MS, Math.max(1, deadline - this.#clock.now())));
    }
    this.core.close(this.#clock.now());
    this.#flush();
    // A closed socket cancels queued sends: let the LEAVE go first (bounded).
    if (this.#t.sendsInFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#onIdle = resolve;
        timer = setTimeout(resolve, Math.max(50, this.#flushTimeout / 4));
      });
      clearTimeout(timer);
      this.#onIdle = undefined;
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    clearInterval(this.#resolveTimer);
    socket.off('message', this.#onMessage);
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    this.#state = 'closed';
    this.emit('close');
  }

  // -------------------------------------------------------------------------------------------

  #assertOpen(what: string): void {
    if (this.#state !== 'open') {
      throw new McCacheError(ErrorCode.CLOSED, `${what}: the transport is ${this.#state === 'new' || this.#state === 'starting' ? 'not started' : 'closed'}`);
    }
  }

  async #openMulticast(): Promise<Socket> {
    const o = this.options;
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    try {
      // Binding the group address (not 0.0.0.0) keeps other groups on the same port out;
      // Windows cannot bind a multicast address.
      await bind(socket, { port: o.port, ...(process.platform !== 'win32' && { address: o.group }) });
      this.#recvBufferSize = setLargestRecvBuffer(socket, o.recvBufferSize);
      if (o.interfaceAddress !== undefined) socket.setMulticastInterface(o.interfaceAddress);
      socket.setMulticastTTL(o.multicastHops);
      socket.setMulticastLoopback(o.loopback);
      socket.addMembership(o.group, o.interfaceAddress);
    } catch (err) {
      discard(socket);
      throw err;
    }
    return socket;
  }

  /** Unicast: binds this node's entry (see the theory of operation) and sets up the peers. */
  async #openUnicast(): Promise<Socket> {
    const o = this.options;
    const peers: PeerTarget[] = await Promise.all(o.peers.map(async (p) => ({
      host: p.host, port: p.port, address: await resolve4(p.host), idHi: -1, idLo: -1, nodeId: undefined,
    })));
    const given = o.localPeer;
    const candidates = given ? [{ port: given.port, address: await resolve4(given.host) }]
      : peers.filter((p) => p.address !== undefined && isLocalAddress(p.address));
    for (const c of candidates) {
      if (c.address === undefined) throw invalid('localPeer', `${given!.host} does not resolve to an IPv4 address`);
      // No SO_REUSEADDR: a port in use means another node of this host holds that entry.
      const socket = createSocket({ type: 'udp4' });
      try {
        await bind(socket, { address: c.address, port: c.port });
        this.#recvBufferSize = setLargestRecvBuffer(socket, o.recvBufferSize);
      } catch (err) {
        discard(socket);
        if (given || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
        continue;
      }
      this.#localPeer = `${c.address}:${c.port}`;
      this.#peers = peers.filter((p) => !(p.address === c.address && p.port === c.port));
      for (const p of this.#peers) if (p.address !== undefined) this.#peerBySource.set(`${p.address}:${p.port}`, p);
      if (this.#peers.some((p) => p.address === undefined)) {
        this.#resolveTimer = setInterval(() => void this.#resolveLate(), PEER_RESOLVE_RETRY_MS);
        this.#resolveTimer.unref();
      }
      return socket;
    }
    const listed = o.peers.map((p) => `${p.host}:${p.port}`).join(',');
    throw invalid('peers', `no entry is a free address of this host (${listed}); list this host's address:port, or give localPeer`);
  }

  /** Looks up again the peers whose host name did not resolve; stops once all have. */
  async #resolveLate(): Promise<void> {
    for (const p of this.#peers) {
      if (p.address !== undefined) continue;
      const address = await resolve4(p.host);
      if (address === undefined || this.#state === 'closed' || `${address}:${p.port}` === this.#localPeer) continue;
      p.address = address;
      this.#peerBySource.set(`${address}:${p.port}`, p);
    }
    if (this.#peers.every((p) => p.address !== undefined)) clearInterval(this.#resolveTimer);
  }

  readonly #onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    if (this.#unicast) {
      const p = this.#peerBySource.get(`${rinfo.address}:${rinfo.port}`);
      if (!p) {
        this.#t.notPeerDropped++;
        return;
      }
      // Learn which node speaks from this address, for the datagrams addressed to it.
      if (msg.length >= SENDER_ID_OFFSET + 8 && msg.readUInt16BE(0) === MAGIC) {
        const hi = msg.readUInt32BE(SENDER_ID_OFFSET);
        const lo = msg.readUInt32BE(SENDER_ID_OFFSET + 4);
        if (hi !== p.idHi || lo !== p.idLo) {
          if (p.nodeId !== undefined) this.#peerByNode.delete(p.nodeId);
          p.idHi = hi;
          p.idLo = lo;
          p.nodeId = (BigInt(hi) << 32n) | BigInt(lo);
          this.#peerByNode.set(p.nodeId, p);
        }
      }
    }
    // Our own datagram, looped back: the core would decode it only to drop it.
    if (msg.length >= SENDER_ID_OFFSET + 8 && msg.readUInt32BE(SENDER_ID_OFFSET + 4) === this.#idLo
      && msg.readUInt32BE(SENDER_ID_OFFSET) === this.#idHi && msg.readUInt16BE(0) === MAGIC) {
      this.#t.loopbackSkipped++;
      return;
    }
    this.core.handleDatagram(this.#clock.now(), msg);
    this.#flush();
  };

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.#armedAt = Infinity;
    this.core.handleTimeout(this.#clock.now());
    this.#flush();
  };

  readonly #onSent = (err: Error | null): void => {
    this.#t.sendsInFlight--;
    if (err) {
      this.#t.sendErrors++;
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
      this.#t.sendErrorsByCode[code] = (this.#t.sendErrorsByCode[code] ?? 0) + 1;
    }
    if (this.#t.sendsInFlight === 0) this.#onIdle?.();
  };

  #flush(): void {
    const core = this.core;
    const socket = this.#socket;
    const { port, group } = this.options;
    for (let t = core.pollTransmit(); t !== undefined; t = core.pollTransmit()) {
      if (!socket || this.#state === 'closed') continue;
      if (this.#unicast) {
        const one = t.to !== undefined ? this.#peerByNode.get(t.to) : undefined;
        if (one !== undefined) {
          this.#t.targetedSent++;
          this.#sendTo(socket, t.bytes, one);
        } else {
          for (const p of this.#peers) this.#sendTo(socket, t.bytes, p);
        }
        continue;
      }
      if (this.#tantrum > 0 && this.#rng() * 100 < this.#tantrum) {
        this.#t.tantrumDropped++;
        continue;
      }
      // Multicast: `t.to` is never set by a multicast core, and the group reaches it anyway.
      this.#t.sendsInFlight++;
      socket.send(t.bytes, port, group, this.#onSent);
    }
    this.#arm();
    for (let e = core.pollEvent(); e !== undefined; e = core.pollEvent()) {
      if (e.type === 'renewed') {
        this.#idHi = Number(e.newId >> 32n);
        this.#idLo = Number(e.newId & 0xffffffffn);
      }
      (this.emit as (type: string, event: CoreEvent) => boolean)(e.type, e);
    }
  }

  /** Unicast: one copy to one peer (monkeyTantrum drops copies independently, like real loss). */
  #sendTo(socket: Socket, bytes: Uint8Array, p: PeerTarget): void {
    if (p.address === undefined) return;
    if (this.#tantrum > 0 && this.#rng() * 100 < this.#tantrum) {
      this.#t.tantrumDropped++;
      return;
    }
    this.#t.sendsInFlight++;
    socket.send(bytes, p.port, p.address, this.#onSent);
  }

  /** One timer, at the core's next deadline. A later deadline keeps the earlier timer, which re-arms. */
  #arm(): void {
    const at = this.#state === 'open' || this.#state === 'closing' ? this.core.pollTimeout() : undefined;
    if (at === undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#armedAt = Infinity;
      return;
    }
    if (this.#timer !== undefined && at >= this.#armedAt) return;
    clearTimeout(this.#timer);
    this.#armedAt = at;
    // Node timers have 1 ms resolution; rounding up avoids waking just before the deadline.
    this.#timer = setTimeout(this.#onTimer, Math.max(0, Math.ceil(at - this.#clock.now())));
    this.#timer.unref();
  }
}

/** A random non-zero 64-bit node id (DESIGN.md §3: drawn at process start). */
export function randomNodeId(): NodeId {
  for (;;) {
    const id = randomBytes(8).readBigUInt64BE(0);
    if (id !== 0n) return id;
  }
}

/** A receive buffer the kernel granted smaller than asked, as `recvBufferShortfall` reports it. */
export interface RecvBufferShortfall {
  /** Bytes asked for (the driver's recvBufferSize). */
  requested: number;
  /** Usable bytes granted (on Linux half of what the kernel reports). */
  granted: number;
  /** How to raise the limit. */
  hint: string;
}

/**
 * Whether the kernel granted less receive buffer than asked, and what to do about it; undefined
 * when it granted enough, when nothing was asked (0: the kernel's default), or before start
 * (`reported` 0). Linux caps SO_RCVBUF at net.core.rmem_max without an error (208 KiB on a
 * stock kernel) and reports twice the usable size. A short buffer overflows in bursts, and the
 * core repairs what it drops by NAK and retransmission: measured with the stock cap, 120k
 * writes/s over 3 processes retransmitted 36k datagrams in 10 s; with 4 MiB, none at 120k or
 * 240k (bench/overload.bench.ts).
 */
export function recvBufferShortfall(requested: number, reported: number, platform: NodeJS.Platform = process.platform): RecvBufferShortfall | undefined {
  if (requested <= 0 || reported <= 0) return undefined;
  const granted = platform === 'linux' ? Math.floor(reported / 2) : reported;
  if (granted >= requested) return undefined;
  const hint = platform === 'linux'
    ? `raise net.core.rmem_max to at least ${requested} (sysctl -w net.core.rmem_max=${requested}, and in /etc/sysctl.d to keep it)`
    : platform === 'darwin' || platform === 'freebsd' || platform === 'openbsd'
      ? `raise kern.ipc.maxsockbuf above ${requested}`
      : `raise the system's socket receive buffer limit to at least ${requested} bytes`;
  return { requested, granted, hint };
}

/**
 * Asks for `requested` bytes of SO_RCVBUF, halving down to 64 KiB when the kernel refuses, and
 * returns what the kernel reports. Linux silently caps at net.core.rmem_max (and reports twice
 * the usable size); other systems throw for sizes they do not allow.
 */
function setLargestRecvBuffer(socket: Socket, requested: number): number {
  for (let size = requested; size >= 64 << 10; size = Math.floor(size / 2)) {
    try {
      socket.setRecvBufferSize(size);
      break;
    } catch {
      /* refused: try smaller */
    }
  }
  try {
    return socket.getRecvBufferSize();
  } catch {
    return 0;
  }
}

function bind(socket: Socket, options: BindOptions): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(options, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

function discard(socket: Socket): void {
  socket.removeAllListeners();
  try { socket.close(); } catch { /* already closed */ }
}

/** An IPv4 literal as is; a host name's first IPv4 address, or undefined when it does not resolve. */
async function resolve4(host: string): Promise<string | undefined> {
  if (isIPv4(host)) return host;
  try {
    return (await lookup(host, { family: 4 })).address;
  } catch {
    return undefined;
  }
}

/**
 * Is `address` one of this host's: an interface address, or loopback (Linux answers the whole
 * 127.0.0.0/8 on lo). Checked before binding, because a host with net.ipv4.ip_nonlocal_bind
 * would let us bind another host's address.
 */
function isLocalAddress(address: string): boolean {
  if (address.startsWith('127.')) return true;
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && a.address === address) return true;
  }
  return false;
}

export type { PeerAddress };

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function invalid(name: string, rule: string): McCacheError {
  return new McCacheError(ErrorCode.INVALID_OPTION, `${name}: ${rule}`);
}
