/**
 * Theory of operation
 * -------------------
 * ReliableCore is one node of the reliable-multicast protocol, as a deterministic object with
 * no I/O (quinn-proto / h11 style). The driver feeds it datagrams and timeouts and drains what
 * it wants sent and what it has to say:
 *
 *   in:  handleDatagram(now, bytes)  every datagram received from the group (own ones too)
 *        handleTimeout(now)          when `pollTimeout()` is reached
 *        start(now) / send(now, message) / sendUnsequenced(now, message, to?) / close(now)
 *   out: pollTransmit()              datagrams to send, in order, until undefined
 *        pollEvent()                 deliveries, membership changes, gaps, writable
 *        pollTimeout()               the next instant `handleTimeout` is due
 *
 * Call pollTransmit/pollEvent/pollTimeout after every input. `now` is milliseconds on a
 * monotonic clock; randomness (NAK back-off) comes from the injected `rng`.
 *
 * Protocol (spec/README.md, DESIGN.md §4):
 * - Sequenced messages are numbered per sender (SendWindow), fragmented into datagrams, kept
 *   until stable, and delivered in order by each receiver's ReceiveWindow for that sender.
 * - Losses are found from sequence gaps and from the high-water mark carried by every
 *   unsequenced datagram (heartbeats, NAKs, ACKs); a short "tail probe" heartbeat after a burst
 *   makes a lost last message visible within `tailProbeDelay` rather than a heartbeat period.
 * - Receivers NAK the sender after a random delay; a NAK seen from another receiver for the same
 *   sender postpones our own (suppression). The sender retransmits by multicast, at most once per
 *   `retransmitSuppress` per datagram and `maxRetransmitPerNak` datagrams per NAK.
 * - ACK digests (per sender, highest delivered without gap) make messages stable; stable
 *   messages are freed. A member silent for `failureTimeout` is removed and holds nothing back.
 * - Membership: JOIN at start, HEARTBEAT every `heartbeatInterval`, LEAVE at close. Departed
 *   members are remembered (bounded) so their late datagrams neither re-add them nor get
 *   delivered twice after a partition heals.
 *
 * Encryption (option `sealer`, spec/README.md "Encryption", DESIGN.md §6): every datagram we
 * send is sealed (AES-256-GCM; a retransmission is the stored sealed datagram with its
 * retransmission bit set, which the seal does not cover). Every datagram we receive must be
 * sealed with a key we hold and must authenticate before anything of it is used; it then takes
 * the plaintext path (reassembly, decodeMessage). Replays: a repeated sequenced message is a
 * duplicate for the receive window; an unsequenced datagram must carry a nonce count not seen
 * from that sender and less than REPLAY_WINDOW below its highest (crypto.ts ReplayWindow). A
 * sequenced datagram whose count was seen or is that old is still used (it may be a
 * retransmission that fills a gap), but it is no sign of life and cannot bring a departed
 * member back. Without a sealer, sealed datagrams are dropped ('encrypted_no_key').
 *
 * Unicast (option `unicast`, for a driver that reaches members one by one from a peer list,
 * README "Networks without multicast"): the protocol and its guarantees are the same; only the
 * addressing of repairs changes. A Transmit's `to` names the one member that needs it: a NAK
 * goes to the sender it asks, a retransmission to the member that asked, a sync request to its
 * target, and `sendUnsequenced(now, m, to)` honours `to` (anti-entropy answers). Everything else
 * (data, heartbeats, ACK digests, JOIN/LEAVE, pulses) still goes to every member. NAK
 * suppression by overheard NAKs cannot happen (nobody overhears), so each receiver asks for
 * what it misses itself, and retransmit suppression holds only against the member the last
 * copy went to. In multicast mode `to` is never set, so a retransmission repairs every receiver
 * that missed the datagram and other receivers' NAKs suppress duplicates.
 *
 * Identity renewal. Each sender numbers its messages with the header's u4 `msg_seq`, and its
 * sealer counts datagrams in the nonce's u4. Neither may wrap (a receiver would take a wrapped
 * number for an old message; GCM must never see a nonce twice), and a long-lived node must keep
 * working. So before either runs out, the core renews its *sending identity*, and only that:
 * - Trigger: `send` finds the next sequence number above 2^32 - 1 - `renewSeqMargin`, or the
 *   sealer's `remaining` less the message's datagrams below `renewNonceMargin`. handleTimeout
 *   checks the sealer too (heartbeats, ACK digests and NAKs use nonce counts as well).
 * - Drain: `send` answers undefined as for a full window (`writable` is false; the layer above
 *   keeps its writes pending) until every member acknowledged every message we sent, or the
 *   members that did not were removed by the failure detector; at most `renewTimeout` ms, after
 *   which it renews anyway and peers repair what they miss by anti-entropy.
 * - Switch: a new node id, a new send window numbered from 1 (as a fresh sender's), and
 *   `sealer.renewed()` (the same keys, a new random nonce id, counts from 0); JOIN from the new
 *   id, then soon an ACK digest and a heartbeat. Events 'renewed' { oldId, newId, reason } and
 *   'writable'; stats().renewals counts renewals.
 * - Retire: the old id says LEAVE (twice, as close() does, with the counts its sealer kept for
 *   that) once every member sent an ACK digest naming the new id, or was removed; at the latest
 *   failureTimeout / 2 after the switch (before peers would time the old id out anyway).
 * - Kept: everything of the receive side (members, their receive and replay windows,
 *   reassembly). Peers see the old id leave cleanly and a new member join; nothing sent before
 *   or after the switch needs repair. The id must change with the numbers: a peer keys its
 *   receive window, replay window, ACK bookkeeping and reassembly on the sender id, so under the
 *   old id it would take a new seq 1 for a duplicate and new nonce counts for replays.
 * - The new id comes from option `renewNodeId` (UdpDriver passes randomNodeId, the generator of
 *   process start); without it, from the injected `rng`, so the core reads no random source of
 *   its own. The new sealer draws its nonce id itself (node:crypto), as every Sealer does: it
 *   is the injected sealer's state, like its count, and must not come from a simulation's rng.
 * Flaws of the plain design, fixed here:
 * - LEAVE before JOIN loses messages. A peer frees a message once every member it knows
 *   acknowledged it; between the old id's LEAVE and the new id's first datagram it knows
 *   neither, so it frees what it sent meanwhile, also what this node has not received yet (a
 *   property run found the gap). So the new id joins first, and the old one leaves only when
 *   each member's ACK digest shows it knows the new id: from then on the new id's ACKs (our
 *   receive windows, unchanged) hold the peer's window. A peer acknowledges a JOIN at once for
 *   this (ackInterval), not at its next periodic digest.
 * - Our own datagrams sent under a former id (looped back late by the driver's socket) would
 *   look like a new member, whose acknowledgements would then hold our send window for a
 *   failure timeout: the last MAX_FORMER_IDS former ids are dropped like our own.
 * - Once all is acknowledged a heartbeat's low_seq is the highest + 1, which must fit a u4 as
 *   well: the last sequence number usable is 2^32 - 2, so `renewSeqMargin` is at least 1.
 * - The old sealer must still seal the LEAVEs: any other datagram that would leave it fewer
 *   than LEAVE_COPIES counts renews first, at once, even with messages unacknowledged (only
 *   reachable with a tiny `renewNonceMargin` or a drain that outlasts it).
 * - A LEAVE reason 'renew' would change the wire format; the LEAVE says 'shutdown', which is
 *   what it is for the old id (peers treat every reason alike).
 *
 * A peer's bytes never throw out of here: malformed datagrams are dropped and counted by code.
 */
import { decodeMessage, decodePacket } from '../codec/decode';
import { encodeMessage } from '../codec/encode';
import { ReplayWindow, Sealer } from '../codec/crypto';
import { fragmentMessage, planFragments } from '../codec/fragment';
import { Reassembler } from '../codec/reassembler';
import {
  isSequenced, DEFAULT_MTU, FLAG_ENCRYPTED, FLAG_RETRANSMISSION, HEADER_SIZE, MAX_MTU, MIN_MTU, type Message, type Packet,
  type OutgoingMessage,
} from '../codec/packet';
import { ErrorCode, MalformedPacketError, McCacheError } from '../errors';
import { ReceiveWindow, type Step } from './receive-window';
import { SendWindow, type SentMessage } from './send-window';
import type { CoreEvent, NodeId, RenewReason, Rng, Transmit } from './types';

/** The largest u4 `msg_seq` (spec/mccache_datagram.ksy). */
export const MAX_SEQ = 0xffffffff;
/**
 * Default `renewSeqMargin`. Any margin >= 1 works (no message is numbered while the identity
 * drains, and a heartbeat's low_seq needs the highest + 1 to fit); 1024 leaves room to spare.
 */
export const RENEW_SEQ_MARGIN = 1024;
/**
 * Default `renewNonceMargin`: during a drain only control datagrams are sealed (ACK digests at
 * most every ackInterval, heartbeats, NAKs, anti-entropy digests), far below 2^20 in a
 * renewTimeout, and 2^20 is 1/4096 of the nonce space.
 */
export const RENEW_NONCE_MARGIN = 1 << 20;
/**
 * Default byte bound of the send window. The message bound (2048) alone let a sender put up to
 * the old 64 MiB in flight when its messages were large: after an overload, anti-entropy
 * answers of up to 255 fragments went out back to back, overran every receiver's socket buffer
 * (4 MiB asked for, about 2.6 MB of 1.4 KB datagrams), and the repairs of those losses did the
 * same, so members took 10-30 s to converge. Every member's window, our own looped-back
 * datagrams included, can land on one receiver at once, so a window is kept well below a
 * buffer's share: 3 members x 1 MiB fit. Measured (bench/overload.bench.ts, 3 processes, 1x =
 * 180k writes/s then 2x, 10 s each; 64 MiB in 2 runs -> 1 MiB in 3): at 1x, 344k-349k
 * retransmissions -> 0 and drain 1.0-1.1 s -> 60-148 ms; after 2x, converge 9.8-27 s ->
 * 3.9-6.3 s. It binds before the message bound once ~700 datagram-sized messages are in flight, i.e.
 * only when a sender runs ahead of its ACKs (flat out, overloaded): one writer flat out then
 * delivered 339k-398k puts/s to both readers in 3 runs, against 396k in 1 run with 64 MiB
 * (bench/replication.bench.ts).
 * Not derived from the socket buffer: with Linux's stock net.core.rmem_max (208 KiB, so ~416 KB
 * of buffer), a 64 KiB window (about what such a buffer holds for 3 senders) did cut
 * retransmissions (1x 120k writes/s: 36k -> 0), but one writer flat out then delivered 39k
 * puts/s instead of 317k, ACK-clocked; with 1 MiB there the cluster still kept up and agreed
 * within 0.9 s after 2x, retransmitting more.
 */
export const DEFAULT_MAX_UNACKED_BYTES = 1 << 20;

/** LEAVEs a renewal sends from the old identity (as close() does: a lost LEAVE costs peers a failure timeout). */
const LEAVE_COPIES = 2;
/** Former ids of this node whose looped-back datagrams are still recognised as our own. */
const MAX_FORMER_IDS = 16;

export interface ReliableCoreOptions {
  /** This node's id: random, non-zero, drawn at process start. */
  nodeId: NodeId;
  /** Randomness for back-off, uniform in [0, 1). */
  rng: Rng;
  /** Largest datagram, bytes of UDP payload. @default 1472 */
  packetMtu?: number;
  /** ms between heartbeats. @default 1000 */
  heartbeatInterval?: number;
  /** ms of silence after which a member is removed. @default 5000 */
  failureTimeout?: number;
  /**
   * ms between ACK digests while deliveries progress. Short, because the send window frees only
   * as ACKs arrive: throughput <= window / (ackInterval + RTT). @default 10
   */
  ackInterval?: number;
  /**
   * Upper bound of the random delay before a first NAK, ms (the delay is 0.5-1x this). The
   * delay lets a late or reordered datagram arrive and lets one receiver's NAK, seen by the
   * others, spare theirs; Aeron's guidance is 4-6 round trips (research/anchors.md §3.3). A LAN
   * round trip is well under a millisecond and Node's timers have millisecond resolution, so
   * 3 ms. (It was 10 ms: with 1 % loss, every value of 10 KB or more waited ~30 ms at p50 for
   * repairs, bench/large-values.bench.ts.) @default 3
   */
  nakDelay?: number;
  /**
   * ms between NAKs while a gap persists: a retransmission lost too is asked for again after
   * this. Several round trips and a busy sender's turn. (It was 40 ms.) @default 12
   */
  nakRetryInterval?: number;
  /** NAK rounds without progress before the missing messages are given up. @default 50 */
  maxNakAttempts?: number;
  /** ms after a send before a tail-probe heartbeat. @default 10 */
  tailProbeDelay?: number;
  /**
   * Unacknowledged messages kept for retransmission before send() pushes back. Also the most a
   * sender can have in flight: larger windows overrun receivers' socket buffers under load and
   * turn losses into retransmit storms (measured: bench/core.bench.ts). @default 2048
   */
  maxUnackedMessages?: number;
  /**
   * Bytes of unacknowledged datagrams kept before send() pushes back: the most a sender puts in
   * flight, whatever its messages' sizes. @default 1 MiB (DEFAULT_MAX_UNACKED_BYTES)
   */
  maxUnackedBytes?: number;
  /** Complete messages buffered per sender beyond a gap. @default 8192 */
  maxOutOfOrder?: number;
  /** Reassembly bounds. @default 1024 messages, 64 MiB, 5000 ms */
  reassemblyMaxMessages?: number;
  reassemblyMaxBytes?: number;
  reassemblyTimeout?: number;
  /** Datagrams retransmitted for one NAK at most. @default 512 */
  maxRetransmitPerNak?: number;
  /**
   * A datagram is not retransmitted again within this many ms: a repeat NAK that arrives while
   * the last retransmission may still sit in the receiver's socket buffer is not a new loss.
   * @default 3/4 of nakRetryInterval
   */
  retransmitSuppress?: number;
  /** Departed members remembered. @default 1024 */
  maxDeparted?: number;
  /** For JOIN: shown in captures and member events. */
  host?: string;
  pid?: number;
  /**
   * Seal every datagram sent and accept only sealed datagrams that open with one of its keys
   * (spec/README.md "Encryption"). Its nonce count is its own state: one sealer per core.
   * @default undefined (plaintext; sealed datagrams are dropped)
   */
  sealer?: Sealer;
  /**
   * The first sequence number of this node's first identity, for tests of renewal (a sender
   * near the end of its numbers). A renewed identity starts at 1. @default 1
   */
  firstSeq?: number;
  /**
   * Renew the sending identity (see the theory of operation) once the next sequence number is
   * above 2^32 - 1 - this. @default 1024 (RENEW_SEQ_MARGIN)
   */
  renewSeqMargin?: number;
  /**
   * Renew the sending identity once the sealer could seal fewer than this many more datagrams.
   * Only with a sealer. @default 2^20 (RENEW_NONCE_MARGIN)
   */
  renewNonceMargin?: number;
  /**
   * Longest a renewal waits for every member to acknowledge what the old identity sent, ms;
   * then it renews anyway and peers repair by anti-entropy. @default 2 x failureTimeout
   */
  renewTimeout?: number;
  /**
   * Draws the node id of a renewed identity: random, non-zero, not an id in use.
   * @default 64 bits from `rng` (the UdpDriver passes randomNodeId)
   */
  renewNodeId?: () => NodeId;
  /**
   * The driver reaches members one by one (a unicast peer list), not by multicast: NAKs,
   * retransmissions, sync requests and `sendUnsequenced(now, m, to)` are addressed to the one
   * member that needs them (see the theory of operation). @default false (multicast)
   */
  unicast?: boolean;
}

/**
 * Drop reasons of the encryption layer, as counted in `CoreStats.dropped` (besides the
 * MCCACHE_ERR_* codes of malformed datagrams).
 */
export const CryptoDrop = {
  /** We hold a key and the datagram is not sealed. */
  PLAINTEXT_REJECTED: 'plaintext_rejected',
  /** The datagram is sealed and we hold no key. */
  ENCRYPTED_NO_KEY: 'encrypted_no_key',
  /** Sealed with a key id we do not hold. */
  UNKNOWN_KEY_ID: 'unknown_key_id',
  /** Does not authenticate: forged, tampered with, or sealed with another key. */
  AUTH_FAILED: 'auth_failed',
  /** Authenticates, but its nonce count was seen already or is too old (a replay). */
  REPLAYED: 'replayed',
} as const;

interface Member {
  lastHeardAt: number;
  host: string | undefined;
  window: ReceiveWindow;
  /** Nonce counts seen from this sender; only with a sealer. */
  replay: ReplayWindow | undefined;
}

interface Departed {
  at: number;
  window: ReceiveWindow;
  left: boolean;
  replay: ReplayWindow | undefined;
}

export interface CoreStats {
  datagramsIn: number;
  datagramsOut: number;
  bytesIn: number;
  bytesOut: number;
  messagesSent: number;
  messagesDelivered: number;
  duplicates: number;
  naksSent: number;
  naksReceived: number;
  retransmits: number;
  acksSent: number;
  heartbeatsSent: number;
  gaps: number;
  messagesGivenUp: number;
  outOfOrderDropped: number;
  /** Dropped datagrams by MCCACHE_ERR_* code or reason. */
  dropped: Record<string, number>;
  members: number;
  unackedMessages: number;
  unackedBytes: number;
  outOfOrderBuffered: number;
  reassembling: number;
  transmitQueue: number;
  /** Sending identities renewed (sequence numbers or nonce counts ran low). */
  renewals: number;
}


export class ReliableCore {
  /** The current sending identity (changes on renewal). */
  #nodeId: NodeId;
  readonly #o: Required<Omit<ReliableCoreOptions, 'nodeId' | 'rng' | 'host' | 'pid' | 'sealer' | 'unicast' | 'renewNodeId'>>;
  readonly #unicast: boolean;
  /** Unicast: the member each fragment was last retransmitted to (retransmit suppression). */
  readonly #resentTo = new WeakMap<SentMessage, NodeId[]>();
  #sealer: Sealer | undefined;
  /** fragmentMessage's sealing option: `{ sealer }` or nothing. */
  #sealing: { sealer?: Sealer };
  readonly #rng: Rng;
  readonly #host: string;
  readonly #pid: number;
  #send: SendWindow;
  readonly #renewNodeId: (() => NodeId) | undefined;
  /** Ids this node sent as before its renewals, newest last (see the theory of operation). */
  readonly #formerIds: NodeId[] = [];
  /** A renewal waiting for the send window to drain. */
  #renewal: { reason: RenewReason; deadlineAt: number } | undefined;
  /** Did the current identity send its JOIN? (Else a renewal owes nobody a LEAVE.) */
  #announced = false;
  /**
   * The identity a renewal left, until it says LEAVE: once every member in `waiting` sent an
   * ACK digest naming the new id (so it knows the new member), or at `deadlineAt`.
   */
  #retiring: { id: NodeId; sealing: { sealer?: Sealer }; highest: number; waiting: Set<NodeId>; deadlineAt: number } | undefined;
  /** The latest `now` given to an input, for a renewal forced deep inside one. */
  #now = 0;
  readonly #reasm: Reassembler;
  readonly #members = new Map<NodeId, Member>();
  readonly #departed = new Map<NodeId, Departed>();
  readonly #transmits: Transmit[] = [];
  readonly #events: CoreEvent[] = [];
  readonly #maxRanges: number;
  readonly #maxPartials: number;
  #state: 'new' | 'open' | 'closed' = 'new';
  #nextHeartbeatAt = Infinity;
  #nextAckAt = Infinity;
  #nextSweepAt = Infinity;
  #ackDirty = false;
  #lastAckAt = -Infinity;
  #blocked = false;
  readonly #stats = {
    datagramsIn: 0, datagramsOut: 0, bytesIn: 0, bytesOut: 0, messagesSent: 0, messagesDelivered: 0,
    duplicates: 0, naksSent: 0, naksReceived: 0, retransmits: 0, acksSent: 0, heartbeatsSent: 0, gaps: 0,
    messagesGivenUp: 0, outOfOrderDropped: 0, dropped: {} as Record<string, number>, renewals: 0,
  };

  constructor(options: ReliableCoreOptions) {
    const o = options;
    if (typeof o.nodeId !== 'bigint' || o.nodeId <= 0n || o.nodeId >= 1n << 64n) {
      throw new McCacheError(ErrorCode.INVALID_OPTION, 'nodeId: must be a bigint in 1..2^64-1');
    }
    if (typeof o.rng !== 'function') throw new McCacheError(ErrorCode.INVALID_OPTION, 'rng: must be a function returning [0, 1)');
    this.#nodeId = o.nodeId;
    this.#rng = o.rng;
    this.#host = o.host ?? '';
    this.#pid = o.pid ?? 0;
    if (o.sealer !== undefined && !(o.sealer instanceof Sealer)) throw new McCacheError(ErrorCode.INVALID_OPTION, 'sealer: must be a Sealer');
    this.#sealer = o.sealer;
    this.#sealing = o.sealer === undefined ? {} : { sealer: o.sealer };
    if (o.unicast !== undefined && typeof o.unicast !== 'boolean') throw new McCacheError(ErrorCode.INVALID_OPTION, 'unicast: must be a boolean');
    this.#unicast = o.unicast ?? false;
    this.#o = {
      packetMtu: int('packetMtu', o.packetMtu, DEFAULT_MTU, MIN_MTU, MAX_MTU),
      heartbeatInterval: num('heartbeatInterval', o.heartbeatInterval, 1000, 1, 3_600_000),
      failureTimeout: num('failureTimeout', o.failureTimeout, 5000, 1, 86_400_000),
      ackInterval: num('ackInterval', o.ackInterval, 10, 0.1, 60_000),
      nakDelay: num('nakDelay', o.nakDelay, 3, 0, 60_000),
      nakRetryInterval: num('nakRetryInterval', o.nakRetryInterval, 12, 0.1, 60_000),
      maxNakAttempts: int('maxNakAttempts', o.maxNakAttempts, 50, 1, 1_000_000),
      tailProbeDelay: num('tailProbeDelay', o.tailProbeDelay, 10, 0, 60_000),
      maxUnackedMessages: int('maxUnackedMessages', o.maxUnackedMessages, 2048, 1, 1 << 24),
      maxUnackedBytes: int('maxUnackedBytes', o.maxUnackedBytes, DEFAULT_MAX_UNACKED_BYTES, MAX_MTU, 2 ** 40),
      maxOutOfOrder: int('maxOutOfOrder', o.maxOutOfOrder, 8192, 1, 1 << 24),
      reassemblyMaxMessages: int('reassemblyMaxMessages', o.reassemblyMaxMessages, 1024, 1, 1 << 20),
      reassemblyMaxBytes: int('reassemblyMaxBytes', o.reassemblyMaxBytes, 64 << 20, MAX_MTU, 2 ** 40),
      reassemblyTimeout: num('reassemblyTimeout', o.reassemblyTimeout, 5000, 1, 86_400_000),
      maxRetransmitPerNak: int('maxRetransmitPerNak', o.maxRetransmitPerNak, 512, 1, 1 << 20),
      retransmitSuppress: num('retransmitSuppress', o.retransmitSuppress, 0.75 * (o.nakRetryInterval ?? 12), 0, 60_000),
      maxDeparted: int('maxDeparted', o.maxDeparted, 1024, 0, 1 << 20),
      firstSeq: int('firstSeq', o.firstSeq, 1, 1, MAX_SEQ),
      renewSeqMargin: int('renewSeqMargin', o.renewSeqMargin, RENEW_SEQ_MARGIN, 1, 2 ** 31),
      renewNonceMargin: int('renewNonceMargin', o.renewNonceMargin, RENEW_NONCE_MARGIN, LEAVE_COPIES + 1, 2 ** 31),
      renewTimeout: num('renewTimeout', o.renewTimeout, 2 * (o.failureTimeout ?? 5000), 0, 2 * 86_400_000),
    };
    if (o.renewNodeId !== undefined && typeof o.renewNodeId !== 'function') {
      throw new McCacheError(ErrorCode.INVALID_OPTION, 'renewNodeId: must be a function returning a node id');
    }
    this.#renewNodeId = o.renewNodeId;
    if (this.#o.failureTimeout <= this.#o.heartbeatInterval) {
      throw new McCacheError(ErrorCode.INVALID_OPTION,
        `failureTimeout: must exceed heartbeatInterval (${this.#o.heartbeatInterval} ms), got ${this.#o.failureTimeout}`);
    }
    this.#send = new SendWindow(this.#o.maxUnackedMessages, this.#o.maxUnackedBytes, this.#o.firstSeq);
    this.#reasm = new Reassembler({
      maxMessages: this.#o.reassemblyMaxMessages, maxBytes: this.#o.reassemblyMaxBytes, timeout: this.#o.reassemblyTimeout,
    });
    // One NAK must fit one datagram: 8 + 1 + 8r + 1 + 37p bytes of body (spec nak type).
    const room = this.#o.packetMtu - 28 - 28 /* room for a seal later */ - 10;
    this.#maxPartials = Math.max(1, Math.min(16, Math.floor(room / 4 / 37)));
    this.#maxRanges = Math.max(1, Math.min(255, Math.floor((room - this.#maxPartials * 37) / 8)));
  }

  /** This node's current id (a renewal changes it: see the theory of operation). */
  get nodeId(): NodeId {
    return this.#nodeId;
  }

  /** Announces this node (JOIN) and starts heartbeats. Call once, before anything else. */
  start(now: number): void {
    if (this.#state !== 'new') throw new McCacheError(ErrorCode.INVALID_ARGUMENT, 'start: already started');
    this.#state = 'open';
    this.#now = now;
    this.#nextHeartbeatAt = now + this.#o.heartbeatInterval;
    this.#nextSweepAt = now + this.#o.heartbeatInterval;
    // A sealer handed over nearly spent: renew before announcing anything (no LEAVE owed).
    if (this.#sealer !== undefined && this.#sealer.remaining < this.#o.renewNonceMargin) this.#renew(now, 'nonce');
    else this.#announce();
  }

  /**
   * Sends a sequenced message reliably to every member. Returns its sequence number, or
   * undefined when the send window is full or a renewal of the identity drains it
   * (backpressure: nothing was queued; a `writable` event follows when there is room). Throws
   * MCCACHE_ERR_MESSAGE_TOO_LARGE for a message that cannot fit in 255 fragments, with nothing
   * sent.
   */
  send(now: number, message: OutgoingMessage): number | undefined {
    this.#assertOpen('send');
    this.#now = now;
    if (!isSequenced(message.op)) throw new McCacheError(ErrorCode.INVALID_ARGUMENT, `send: ${message.op} is unsequenced; use sendUnsequenced`);
    if (this.#renewal === undefined && this.#send.nextSeq() > MAX_SEQ - this.#o.renewSeqMargin) this.#beginRenewal(now, 'sequence');
    if (this.#renewal !== undefined && !this.#renewIfDrained(now)) {
      this.#blocked = true;
      return undefined;
    }
    if (this.#send.isFull) {
      this.#blocked = true;
      return undefined;
    }
    const body = encodeMessage(message);
    if (this.#sealer !== undefined) {
      // Throws MCCACHE_ERR_MESSAGE_TOO_LARGE (nothing sent) before any renewal starts.
      const n = planFragments(body.length, this.#o.packetMtu, { encrypted: true }).numFrags;
      if (this.#sealer.remaining - n < this.#o.renewNonceMargin) {
        this.#beginRenewal(now, 'nonce');
        if (!this.#renewIfDrained(now)) {
          this.#blocked = true;
          return undefined;
        }
      }
    }
    const seq = this.#send.nextSeq();
    const datagrams = fragmentMessage(message.op, body, { senderId: this.#nodeId, msgSeq: seq, mtu: this.#o.packetMtu, ...this.#sealing });
    this.#send.add(now, seq, datagrams);
    for (const d of datagrams) this.#emit(d);
    this.#stats.messagesSent++;
    if (this.#members.size === 0) this.#send.trim([]);
    // Tail probe: tell receivers our new high-water mark soon, in case the last datagram is lost.
    this.#nextHeartbeatAt = Math.min(this.#nextHeartbeatAt, now + this.#o.tailProbeDelay);
    return seq;
  }

  /** Can `send` take a message now? (Not while a renewal drains the send window.) */
  get writable(): boolean {
    return this.#state === 'open' && !this.#send.isFull && this.#renewal === undefined;
  }

  /** Largest message body `send` accepts at this MTU: 255 x (mtu - 28), or 255 x (mtu - 56) sealed. */
  get maxMessageSize(): number {
    return planFragments(0, this.#o.packetMtu, { encrypted: this.#sealer !== undefined }).capacity * 255;
  }

  /** Does this core seal what it sends (and accept only sealed datagrams)? */
  get encrypted(): boolean {
    return this.#sealer !== undefined;
  }

  /**
   * Sends an unsequenced message (one datagram, best effort), e.g. an anti-entropy digest. With
   * `unicast`, `to` (or else a sync request's target) limits it to that member; multicast
   * ignores `to`, every member hears everything.
   */
  sendUnsequenced(now: number, message: Message, to?: NodeId): void {
    this.#assertOpen('sendUnsequenced');
    this.#now = now;
    let dest: NodeId | undefined;
    if (this.#unicast) dest = to ?? (message.op === 'sync_request' && message.target !== 0n ? message.target : undefined);
    this.#unsequenced(message, dest);
  }

  /** Are repairs addressed to single members (option `unicast`)? */
  get unicast(): boolean {
    return this.#unicast;
  }

  /** True when every member has acknowledged everything we sent. */
  get flushed(): boolean {
    return this.#send.size === 0;
  }

  /** Announces an orderly exit (LEAVE) and stops. Further input is ignored. */
  close(now: number): void {
    this.#now = now;
    if (this.#state !== 'open') {
      this.#state = 'closed';
      return;
    }
    // A last ACK lets senders free what we received; LEAVE goes twice because a lost LEAVE
    // costs every peer a failure timeout of held-back buffers.
    if (this.#members.size > 0) this.#ack(now);
    if (this.#retiring !== undefined) this.#retire();
    this.#leave();
    this.#state = 'closed';
  }

  get members(): NodeId[] {
    return [...this.#members.keys()];
  }

  /** Feeds one received datagram. Never throws for a peer's bytes. */
  handleDatagram(now: number, bytes: Uint8Array): void {
    if (this.#state !== 'open') return;
    this.#now = now;
    this.#receive(now, bytes);
    // An ACK or a member's departure may have drained the window a renewal waits for, or told
    // the last member of our new id.
    if (this.#renewal !== undefined) this.#renewIfDrained(now);
    if (this.#retiring !== undefined && this.#retiring.waiting.size === 0) this.#retire();
  }

  #receive(now: number, bytes: Uint8Array): void {
    this.#stats.datagramsIn++;
    this.#stats.bytesIn += bytes.length;
    // Cheap first look: foreign traffic (McCache-for-Python's 0xF9, anything else) is dropped
    // without building errors, so a flood of it costs little.
    if (bytes.length < 2 || bytes[0] !== 0x4d || bytes[1] !== 0x43) {
      this.#drop(bytes.length > 0 && bytes[0] === 0xf9 ? 'python_v0' : ErrorCode.BAD_MAGIC);
      return;
    }
    // With a key, plaintext is refused before its body is even decoded.
    if (this.#sealer !== undefined && bytes.length > 4 && (bytes[4]! & FLAG_ENCRYPTED) === 0) {
      this.#drop(CryptoDrop.PLAINTEXT_REJECTED);
      return;
    }
    let packet: Packet;
    try {
      packet = decodePacket(bytes);
    } catch (err) {
      this.#drop(err instanceof MalformedPacketError ? err.code : ErrorCode.MALFORMED);
      return;
    }
    const h = packet.header;
    // Our own datagram looped back, also one sent under a former id (theory of operation).
    if (h.senderId === this.#nodeId || (this.#formerIds.length > 0 && this.#formerIds.includes(h.senderId))) return;
    let replay: ReplayWindow | undefined;
    let counter = 0;
    let repeat = false;
    if ((h.flags & FLAG_ENCRYPTED) !== 0) {
      if (this.#sealer === undefined) {
        this.#drop(CryptoDrop.ENCRYPTED_NO_KEY);
        return;
      }
      const opened = this.#sealer.open(bytes.subarray(0, HEADER_SIZE), packet.fragment);
      if (!opened.ok) {
        this.#drop(opened.reason);
        return;
      }
      counter = opened.counter;
      replay = (this.#members.get(h.senderId) ?? this.#departed.get(h.senderId))?.replay;
      if (replay !== undefined) {
        if (!isSequenced(h.op)) {
          if (!replay.accept(counter)) {
            this.#drop(CryptoDrop.REPLAYED);
            return;
          }
        } else {
          // A count seen before, or too old to tell: a retransmission or a replay. It may still
          // fill a gap, but it is no sign of life and cannot bring a departed member back.
          repeat = replay.isStale(counter) || replay.seen(counter);
          if (repeat && !this.#members.has(h.senderId)) {
            this.#drop(CryptoDrop.REPLAYED);
            return;
          }
          replay.record(counter);
        }
      }
      packet = { header: h, fragment: opened.plaintext };
      if (h.numFrags === 1) {
        try {
          packet.message = decodeMessage(h.op, opened.plaintext);
        } catch (err) {
          this.#drop(err instanceof MalformedPacketError ? err.code : ErrorCode.MALFORMED);
          return;
        }
      }
    }
    const member = this.#memberFor(now, h.senderId, packet);
    if (!member) return;
    if (this.#sealer !== undefined && member.replay === undefined) {
      // First datagram from this sender: its count starts the window.
      member.replay = new ReplayWindow();
      member.replay.record(counter);
    }
    if (!repeat) member.lastHeardAt = now;
    const w = member.window;
    const steps: Step[] = [];
    if (isSequenced(h.op)) {
      w.observeHighest(h.msgSeq);
      if (w.has(h.msgSeq)) {
        this.#stats.duplicates++;
      } else if (packet.message) {
        this.#accept(w, h.msgSeq, packet.message, steps);
      } else {
        const r = this.#reasm.push(now, packet);
        if (r.kind === 'complete') {
          let message: Message | undefined;
          try {
            message = decodeMessage(h.op, r.message);
          } catch (err) {
            this.#drop(err instanceof MalformedPacketError ? err.code : ErrorCode.MALFORMED);
          }
          this.#accept(w, h.msgSeq, message, steps);
        } else if (r.kind === 'duplicate') {
          this.#stats.duplicates++;
        } else if (r.kind === 'dropped') {
          this.#drop(`reassembly_${r.reason}`);
        }
      }
    } else {
      // Unsequenced: msg_seq is the sender's high-water mark.
      w.observeHighest(h.msgSeq);
      const m = packet.message!;
      switch (m.op) {
        case 'join':
          w.start(h.msgSeq + 1, steps);
          // Let the newcomer learn our window start and high-water mark soon, and our ACK
          // digest, which names it: a renewed member waits for that before its old id leaves.
          this.#nextHeartbeatAt = Math.min(this.#nextHeartbeatAt, now + this.#o.nakDelay * this.#rng());
          this.#ackDirty = true;
          break;
        case 'heartbeat':
          if (!w.initialized) w.start(m.lowSeq, steps);
          else if (m.lowSeq > (w.next ?? 0)) w.skipTo(m.lowSeq, steps);
          break;
        case 'leave':
          this.#remove(now, h.senderId, 'leave');
          return;
        case 'nak':
          this.#onNak(now, h.senderId, m);
          break;
        case 'ack':
          for (const e of m.entries) {
            if (e.senderId !== this.#nodeId) continue;
            this.#retiring?.waiting.delete(h.senderId); // it knows our new id
            if (this.#send.ack(h.senderId, e.deliveredSeq, this.#members.keys())) this.#maybeWritable();
          }
          break;
        default:
          this.#events.push({ type: 'receive', from: h.senderId, message: m });
      }
    }
    this.#afterSteps(now, h.senderId, w, steps);
  }

  /** Runs timers: heartbeats, ACKs, NAKs, failure detection, reassembly expiry. */
  handleTimeout(now: number): void {
    if (this.#state !== 'open') return;
    this.#now = now;
    if (now >= this.#nextHeartbeatAt) {
      this.#unsequenced({ op: 'heartbeat', heartbeatInterval: this.#o.heartbeatInterval, numMembers: this.#members.size + 1, lowSeq: this.#send.low });
      this.#stats.heartbeatsSent++;
      this.#nextHeartbeatAt = now + this.#o.heartbeatInterval;
    }
    if (now >= this.#nextSweepAt) {
      this.#nextSweepAt = now + Math.min(this.#o.heartbeatInterval, this.#o.failureTimeout / 4);
      for (const [id, m] of [...this.#members]) {
        if (now - m.lastHeardAt >= this.#o.failureTimeout) this.#remove(now, id, 'timeout');
      }
    }
    const reasmDue = this.#reasm.pollTimeout();
    if (reasmDue !== undefined && now >= reasmDue) this.#reasm.expire(now);
    for (const [id, m] of this.#members) {
      const w = m.window;
      if (w.nakDueAt !== undefined && now >= w.nakDueAt) this.#nak(now, id, w);
    }
    const ackDue = this.#ackDirty ? Math.max(this.#nextAckAt, this.#lastAckAt + this.#o.ackInterval)
      : this.#lastAckAt + this.#o.heartbeatInterval;
    if (now >= ackDue && this.#members.size > 0) this.#ack(now);
    if (this.#renewal === undefined && this.#sealer !== undefined && this.#sealer.remaining < this.#o.renewNonceMargin) {
      this.#beginRenewal(now, 'nonce');
    }
    if (this.#renewal !== undefined) this.#renewIfDrained(now);
    if (this.#retiring !== undefined && (now >= this.#retiring.deadlineAt || this.#retiring.waiting.size === 0)) this.#retire();
  }

  /** The next instant handleTimeout must run, or undefined when closed. */
  pollTimeout(): number | undefined {
    if (this.#state !== 'open') return undefined;
    let t = Math.min(this.#nextHeartbeatAt, this.#nextSweepAt);
    for (const m of this.#members.values()) if (m.window.nakDueAt !== undefined && m.window.nakDueAt < t) t = m.window.nakDueAt;
    if (this.#members.size > 0) {
      const ackDue = this.#ackDirty ? Math.max(this.#nextAckAt, this.#lastAckAt + this.#o.ackInterval)
        : this.#lastAckAt + this.#o.heartbeatInterval;
      t = Math.min(t, ackDue);
    }
    const r = this.#reasm.pollTimeout();
    if (r !== undefined) t = Math.min(t, r);
    if (this.#renewal !== undefined) t = Math.min(t, this.#renewal.deadlineAt);
    if (this.#retiring !== undefined) t = Math.min(t, this.#retiring.deadlineAt);
    return t;
  }

  pollTransmit(): Transmit | undefined {
    return this.#transmits.shift();
  }

  pollEvent(): CoreEvent | undefined {
    return this.#events.shift();
  }

  stats(): CoreStats {
    let ooo = 0;
    for (const m of this.#members.values()) ooo += m.window.buffered;
    return {
      ...this.#stats, dropped: { ...this.#stats.dropped }, members: this.#members.size,
      unackedMessages: this.#send.size, unackedBytes: this.#send.bytes, outOfOrderBuffered: ooo,
      reassembling: this.#reasm.stats().messages, transmitQueue: this.#transmits.length,
    };
  }

  /** Is a renewal of the sending identity waiting for the send window to drain? */
  get renewing(): boolean {
    return this.#renewal !== undefined;
  }

  // -------------------------------------------------------------------------------------------

  #assertOpen(what: string): void {
    if (this.#state !== 'open') throw new McCacheError(ErrorCode.CLOSED, `${what}: the core is ${this.#state === 'new' ? 'not started' : 'closed'}`);
  }

  #emit(bytes: Uint8Array, to?: NodeId): void {
    this.#transmits.push(to === undefined ? { bytes } : { bytes, to });
    this.#stats.datagramsOut++;
    this.#stats.bytesOut += bytes.length;
  }

  #unsequenced(message: Message, to?: NodeId): void {
    // The sealer keeps LEAVE_COPIES counts for this identity's LEAVEs; a datagram that would
    // take them renews first (theory of operation) and goes out under the new identity.
    if (this.#sealer !== undefined && this.#sealer.remaining <= LEAVE_COPIES) {
      this.#renew(this.#now, 'nonce');
    }
    this.#emit(this.#datagram(message, this.#nodeId, this.#send.highest, this.#sealing), to);
  }

  /** One unsequenced datagram from `senderId`, whose high-water mark is `highest`. */
  #datagram(message: Message, senderId: NodeId, highest: number, sealing: { sealer?: Sealer }): Uint8Array {
    return fragmentMessage(message.op, encodeMessage(message), { senderId, msgSeq: highest, mtu: this.#o.packetMtu, ...sealing })[0]!;
  }

  #announce(): void {
    this.#unsequenced({ op: 'join', heartbeatInterval: this.#o.heartbeatInterval, packetMtu: this.#o.packetMtu, pid: this.#pid, host: this.#host });
    this.#announced = true;
  }

  /** This identity's LEAVE, LEAVE_COPIES times, with the counts the sealer kept for them. */
  #leave(): void {
    this.#sayLeave(this.#nodeId, this.#send.highest, this.#sealing);
  }

  #beginRenewal(now: number, reason: RenewReason): void {
    this.#renewal = { reason, deadlineAt: now + this.#o.renewTimeout };
  }

  /** Renews now if the send window is empty or the renewal timed out; true when it did. */
  #renewIfDrained(now: number): boolean {
    const r = this.#renewal!;
    if (this.#send.size > 0 && now < r.deadlineAt) return false;
    this.#renew(now, r.reason);
    return true;
  }

  /** The switch to a new sending identity (theory of operation, "Identity renewal"). */
  #renew(now: number, reason: RenewReason): void {
    const oldId = this.#nodeId;
    const newId = this.#drawNodeId(); // first: a renewNodeId that throws leaves everything as it was
    if (this.#retiring !== undefined) this.#retire();
    if (this.#announced) {
      this.#retiring = {
        id: oldId, sealing: this.#sealing, highest: this.#send.highest, waiting: new Set(this.#members.keys()),
        deadlineAt: now + this.#o.failureTimeout / 2,
      };
    }
    this.#formerIds.push(oldId);
    if (this.#formerIds.length > MAX_FORMER_IDS) this.#formerIds.shift();
    this.#nodeId = newId;
    if (this.#sealer !== undefined) {
      this.#sealer = this.#sealer.renewed();
      this.#sealing = { sealer: this.#sealer };
    }
    this.#send = new SendWindow(this.#o.maxUnackedMessages, this.#o.maxUnackedBytes);
    this.#renewal = undefined;
    this.#stats.renewals++;
    this.#announce();
    // Peers' send windows now wait for the new id's acknowledgements: an ACK digest at the next
    // timeout; a heartbeat soon carries our low_seq in case the JOIN is lost.
    this.#ackDirty = true;
    this.#nextAckAt = now;
    this.#nextHeartbeatAt = Math.min(this.#nextHeartbeatAt, now + this.#o.tailProbeDelay);
    this.#events.push({ type: 'renewed', oldId, newId: this.#nodeId, reason });
    this.#blocked = false;
    this.#events.push({ type: 'writable' });
    if (this.#retiring?.waiting.size === 0) this.#retire(); // nobody to tell first
  }

  /** The retiring identity's LEAVEs, sealed with its own sealer's last counts. */
  #retire(): void {
    const r = this.#retiring!;
    this.#retiring = undefined;
    this.#sayLeave(r.id, r.highest, r.sealing);
  }

  /**
   * LEAVE_COPIES LEAVEs from identity `id` (sealed with `sealing`'s sealer, which kept counts
   * for them): straight to the transmit queue, not through #unsequenced, whose renewal check
   * they must not trigger.
   */
  #sayLeave(id: NodeId, highest: number, sealing: { sealer?: Sealer }): void {
    for (let i = 0; i < LEAVE_COPIES; i++) {
      if (sealing.sealer === undefined || sealing.sealer.remaining > 0) {
        this.#emit(this.#datagram({ op: 'leave', reason: 'shutdown' }, id, highest, sealing));
      }
    }
  }

  /** A node id for a renewed identity: non-zero and not one this node or a peer used. */
  #drawNodeId(): NodeId {
    const taken = (id: NodeId): boolean => id === this.#nodeId || this.#formerIds.includes(id) || this.#members.has(id) || this.#departed.has(id);
    if (this.#renewNodeId !== undefined) {
      const id = this.#renewNodeId();
      if (typeof id !== 'bigint' || id <= 0n || id >= 1n << 64n || taken(id)) {
        throw new McCacheError(ErrorCode.INVALID_OPTION, `renewNodeId: must return an unused bigint in 1..2^64-1, got ${String(id)}`);
      }
      return id;
    }
    let id = (BigInt(Math.floor(this.#rng() * 2 ** 32)) << 32n) | BigInt(Math.floor(this.#rng() * 2 ** 32));
    // A degenerate rng (a constant, in a test) must still give a new id: step an LCG (Knuth's
    // MMIX constants) until it does.
    while (id === 0n || taken(id)) id = (id * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
    return id;
  }

  #drop(reason: string): void {
    this.#stats.dropped[reason] = (this.#stats.dropped[reason] ?? 0) + 1;
  }

  #memberFor(now: number, id: NodeId, packet: Packet): Member | undefined {
    const known = this.#members.get(id);
    if (known) return known;
    const gone = this.#departed.get(id);
    if (gone?.left) return undefined; // it said goodbye; late datagrams change nothing
    if (packet.message?.op === 'leave') return undefined;
    this.#departed.delete(id);
    const host = packet.message?.op === 'join' ? packet.message.host : undefined;
    const m: Member = { lastHeardAt: now, host, window: gone?.window ?? new ReceiveWindow(this.#o.maxOutOfOrder), replay: gone?.replay };
    this.#members.set(id, m);
    this.#events.push({ type: 'member-up', nodeId: id, host });
    // Tell the newcomer our own start point soon (it needs a heartbeat to open its window for us).
    this.#nextHeartbeatAt = Math.min(this.#nextHeartbeatAt, now + this.#o.nakDelay * this.#rng());
    return m;
  }

  #remove(now: number, id: NodeId, reason: 'leave' | 'timeout'): void {
    const m = this.#members.get(id);
    if (!m) return;
    this.#members.delete(id);
    this.#retiring?.waiting.delete(id);
    m.window.nakDueAt = undefined;
    this.#departed.set(id, { at: now, window: m.window, left: reason === 'leave', replay: m.replay });
    while (this.#departed.size > this.#o.maxDeparted) this.#departed.delete(this.#departed.keys().next().value!);
    this.#events.push({ type: 'member-down', nodeId: id, reason });
    if (this.#send.forget(id, this.#members.keys())) this.#maybeWritable();
  }

  #accept(w: ReceiveWindow, seq: number, message: Message | undefined, steps: Step[]): void {
    if (!w.add(seq, { message }, steps)) {
      if (w.has(seq)) this.#stats.duplicates++;
      else this.#stats.outOfOrderDropped++;
    }
  }

  #afterSteps(now: number, from: NodeId, w: ReceiveWindow, steps: Step[]): void {
    for (const s of steps) {
      if (s.kind === 'deliver') {
        this.#ackDirty = true;
        if (s.message) {
          this.#stats.messagesDelivered++;
          this.#events.push({ type: 'deliver', from, seq: s.seq, message: s.message });
        }
      } else {
        this.#stats.gaps++;
        this.#stats.messagesGivenUp += s.last - s.first + 1;
        this.#ackDirty = true;
        this.#events.push({ type: 'gap', from, first: s.first, last: s.last });
      }
    }
    if (this.#ackDirty && this.#nextAckAt === Infinity) this.#nextAckAt = now + this.#o.ackInterval;
    if (w.isMissing) {
      if (w.nakDueAt === undefined) w.nakDueAt = now + this.#o.nakDelay * (0.5 + 0.5 * this.#rng());
    } else {
      w.nakDueAt = undefined;
      w.nakAttempts = 0;
    }
  }

  #nak(now: number, target: NodeId, w: ReceiveWindow): void {
    if (w.nakAttempts >= this.#o.maxNakAttempts) {
      const steps: Step[] = [];
      w.giveUp(steps);
      this.#afterSteps(now, target, w, steps);
      return;
    }
    const req = w.missing(this.#maxRanges, this.#maxPartials * 4);
    if (req.ranges.length === 0) {
      w.nakDueAt = undefined;
      return;
    }
    const partials: Array<{ msgSeq: number; numFrags: number; missing: number[] }> = [];
    const partialSeqs = new Set<number>();
    for (const seq of req.partialCandidates) {
      if (partials.length >= this.#maxPartials) break;
      const p = this.#reasm.partial(target, seq);
      if (p && p.numFrags >= 2 && p.missing.length > 0) {
        partials.push({ msgSeq: seq, numFrags: p.numFrags, missing: p.missing });
        partialSeqs.add(seq);
      }
    }
    // Whole-message ranges exclude the partly received messages we describe precisely.
    const ranges: Array<{ first: number; last: number }> = [];
    for (const r of req.ranges) {
      let from = r.first;
      for (let s = r.first; s <= r.last && s <= r.first + 4096; s++) {
        if (partialSeqs.has(s)) {
          if (s > from) ranges.push({ first: from, last: s - 1 });
          from = s + 1;
        }
      }
      if (from <= r.last) ranges.push({ first: from, last: r.last });
    }
    this.#unsequenced({ op: 'nak', target, ranges: ranges.slice(0, this.#maxRanges), partials }, this.#unicast ? target : undefined);
    this.#stats.naksSent++;
    w.nakAttempts++;
    // Gentle back-off, capped at a heartbeat period: a long partition costs a few NAKs per
    // period, and the retry limit spans many failure timeouts (a sender that is alive answers
    // or advances low_seq; one that is dead is removed long before we give up).
    const backoff = Math.min(this.#o.nakRetryInterval * (1 + w.nakAttempts / 4), this.#o.heartbeatInterval);
    w.nakDueAt = now + backoff * (0.75 + 0.5 * this.#rng());
  }

  #onNak(now: number, from: NodeId, m: Extract<Message, { op: 'nak' }>): void {
    if (m.target !== this.#nodeId) {
      // Another receiver asked that sender; its retransmission is multicast and will reach us too.
      const other = this.#members.get(m.target)?.window;
      if (other && other.nakDueAt !== undefined) {
        other.nakDueAt = Math.max(other.nakDueAt, now + this.#o.nakRetryInterval * (0.5 + 0.5 * this.#rng()));
      }
      return;
    }
    this.#stats.naksReceived++;
    let budget = this.#o.maxRetransmitPerNak;
    let belowLow = false;
    const resend = (seq: number, idx: number): void => {
      const sent = this.#send.get(seq);
      if (!sent) {
        if (seq < this.#send.low) belowLow = true;
        return;
      }
      const d = sent.datagrams[idx];
      if (d === undefined) return;
      // The last copy may still be on its way. Multicast: it went to everyone. Unicast: the
      // first copy went to everyone, a retransmission only to the member that asked for it.
      const lastTo = this.#unicast ? this.#resentTo.get(sent)?.[idx] : undefined;
      if (now - sent.lastSentAt[idx]! < this.#o.retransmitSuppress && (lastTo === undefined || lastTo === from)) return;
      const copy = d.slice();
      copy[4] = copy[4]! | FLAG_RETRANSMISSION;
      sent.lastSentAt[idx] = now;
      if (this.#unicast) {
        let to = this.#resentTo.get(sent);
        if (!to) this.#resentTo.set(sent, (to = []));
        to[idx] = from;
      }
      this.#emit(copy, this.#unicast ? from : undefined);
      this.#stats.retransmits++;
      budget--;
    };
    for (const p of m.partials) {
      for (const idx of p.missing) {
        if (budget <= 0) break;
        resend(p.msgSeq, idx);
      }
    }
    for (const r of m.ranges) {
      const first = Math.max(r.first, 1);
      const last = Math.min(r.last, this.#send.highest);
      for (let seq = first; seq <= last && budget > 0; seq++) {
        const sent = this.#send.get(seq);
        if (!sent) {
          if (seq < this.#send.low) {
            belowLow = true;
            seq = this.#send.low - 1; // jump over what is gone
          }
          continue;
        }
        for (let idx = 0; idx < sent.datagrams.length && budget > 0; idx++) resend(seq, idx);
      }
    }
    // Asked for what we no longer hold: a prompt heartbeat carries low_seq so the asker skips.
    if (belowLow) this.#nextHeartbeatAt = Math.min(this.#nextHeartbeatAt, now);
  }

  #ack(now: number): void {
    const entries: Array<{ senderId: NodeId; deliveredSeq: number }> = [];
    for (const [id, m] of this.#members) {
      if (m.window.initialized) entries.push({ senderId: id, deliveredSeq: m.window.delivered });
    }
    // One ACK datagram holds (mtu - 28 - 1) / 12 entries; chunk when the cluster is larger.
    const per = Math.max(1, Math.min(255, Math.floor((this.#o.packetMtu - 28 - 28 - 1) / 12)));
    for (let i = 0; i < entries.length || i === 0; i += per) {
      this.#unsequenced({ op: 'ack', entries: entries.slice(i, i + per) });
      this.#stats.acksSent++;
      if (entries.length === 0) break;
    }
    this.#ackDirty = false;
    this.#lastAckAt = now;
    this.#nextAckAt = Infinity;
  }

  #maybeWritable(): void {
    // While a renewal drains, room is no use: the switch itself announces 'writable'.
    if (this.#blocked && this.#send.hasRoom && this.#renewal === undefined) {
      this.#blocked = false;
      this.#events.push({ type: 'writable' });
    }
  }
}

function num(name: string, v: number | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new McCacheError(ErrorCode.INVALID_OPTION, `${name}: must be a number in ${min}..${max}, got ${String(v)}`);
  }
  return v;
}
function int(name: string, v: number | undefined, dflt: number, min: number, max: number): number {
  const n = num(name, v, dflt, min, max);
  if (!Number.isInteger(n)) throw new McCacheError(ErrorCode.INVALID_OPTION, `${name}: must be an integer in ${min}..${max}, got ${n}`);
  return n;
}

