/**
 * Reassembly: datagrams (fragments) -> whole messages, with bounded memory and a timeout
 * (DESIGN.md §4 "Reassembly of fragments with a timeout and bounded memory").
 *
 * Theory of operation. A message in progress (an assembly) is keyed by (sender id, msg seq).
 * `push` copies each new fragment into its assembly; the last missing one goes straight into the
 * message with the buffered ones, in index order (it is never buffered itself, so completing a
 * message never evicts another). A one-fragment message completes at once (copied) and never
 * occupies an assembly. The reassembler is sans-I/O and reads no clock: the
 * driver passes `now` (ms, from a monotonic clock) to `push` and `expire`, and asks
 * `pollTimeout` when `expire` is next due.
 *
 * Bounds. At most `maxMessages` assemblies and `maxBytes` buffered fragment bytes exist at any
 * time; making room evicts the assembly that has waited longest since its last new fragment.
 * Each assembly also holds a slot per fragment (at most 255), so memory stays within
 * `maxBytes` + O(`maxMessages`). A message longer than `maxBytes` could never fit and is dropped
 * at its first fragment.
 *
 * Trust. The fragments of one message must agree on op, fragment count and message length,
 * may not repeat an index with different bytes, and must add up to the message length;
 * otherwise the whole assembly is dropped ('conflict'): one of its senders is broken or lying,
 * and guessing which fragment is right would be unsafe. Nothing here throws for a peer's input;
 * every drop is counted in `stats()`.
 *
 * Not here: remembering completed messages. A late copy of a fragment of a delivered message
 * would start a new assembly (which expires, or delivers the message again if every fragment
 * comes again); the reliable core drops such datagrams first, as it knows each sender's
 * delivered sequence numbers.
 */
import { ErrorCode, McCacheError } from '../errors';
import { MAX_FRAGMENTS, type OpName, type Packet } from './packet';

export interface ReassemblerOptions {
  /**
   * Messages being reassembled at once, across all senders. Starting one more evicts the
   * stalest. Each costs a few hundred bytes besides its fragments. Default 256.
   */
  maxMessages?: number;
  /**
   * Fragment bytes buffered across all assemblies. Must be at least the largest message
   * expected (255 x (packetMtu - 28) bytes: 368,220 at the default MTU of 1472, 16,697,145 at
   * 65507); a longer message is dropped. Default 64 MiB.
   */
  maxBytes?: number;
  /**
   * Ms an assembly waits for its next new fragment before `expire` drops it. Each new fragment
   * (e.g. a NAK-driven retransmission) restarts the wait. Default 5000.
   */
  timeout?: number;
}

export type DropReason =
  /** Fragments of one message disagree (op, count, length, or bytes at one index). */
  | 'conflict'
  /** The message is longer than `maxBytes`. */
  | 'over_limit'
  /** The packet contradicts itself (index >= count, fragment longer than the message, ...); decodePacket never returns one. */
  | 'invalid';

export type PushResult =
  | { kind: 'complete'; senderId: bigint; msgSeq: number; op: OpName; message: Uint8Array }
  | { kind: 'pending' }
  | { kind: 'duplicate' }
  | { kind: 'dropped'; reason: DropReason };

export interface ReassemblerStats {
  /** Assemblies in progress. */
  messages: number;
  /** Fragment bytes buffered now. */
  bytes: number;
  /** Messages returned complete (one-fragment ones included). */
  completed: number;
  /** Fragments already held, ignored. */
  duplicates: number;
  /** Assemblies (or lone fragments) dropped for disagreeing fragments. */
  conflicts: number;
  /** Assemblies dropped to make room under `maxMessages` or `maxBytes`. */
  evicted: number;
  /** Assemblies dropped by `expire`. */
  expired: number;
  /** Fragments of messages longer than `maxBytes`, dropped. */
  overLimit: number;
  /** Self-contradicting packets, dropped. */
  invalid: number;
}

const DEFAULTS = { maxMessages: 256, maxBytes: 64 * 1024 * 1024, timeout: 5000 } as const;

interface Assembly {
  readonly key: string;
  readonly senderId: bigint;
  readonly msgSeq: number;
  readonly op: OpName;
  readonly numFrags: number;
  readonly lenMessage: number;
  readonly fragments: (Uint8Array | undefined)[];
  received: number;
  bytes: number;
  /** Instant of the last new fragment; assemblies sit in the map in the order of this instant. */
  touchedAt: number;
}

const PENDING: PushResult = Object.freeze({ kind: 'pending' });
const DUPLICATE: PushResult = Object.freeze({ kind: 'duplicate' });
const dropped = (reason: DropReason): PushResult => Object.freeze({ kind: 'dropped', reason });
const CONFLICT = dropped('conflict');
const OVER_LIMIT = dropped('over_limit');
const INVALID = dropped('invalid');

export class Reassembler {
  readonly maxMessages: number;
  readonly maxBytes: number;
  readonly timeout: number;
  /** Insertion order is staleness order: an assembly is re-inserted on each new fragment. */
  readonly #assemblies = new Map<string, Assembly>();
  #bytes = 0;
  /** Latest `now` seen; a clock that steps back is held here so the map stays in time order. */
  #now = -Infinity;
  readonly #counters = { completed: 0, duplicates: 0, conflicts: 0, evicted: 0, expired: 0, overLimit: 0, invalid: 0 };

  constructor(options: ReassemblerOptions = {}) {
    this.maxMessages = option(options, 'maxMessages', Number.isSafeInteger);
    this.maxBytes = option(options, 'maxBytes', Number.isSafeInteger);
    this.timeout = option(options, 'timeout', Number.isFinite);
  }

  /**
   * Takes one decoded datagram whose fragment is plaintext (decrypted if it was sealed). Call for
   * every datagram of a sequenced op that is not already delivered. The fragment is copied; the
   * caller may reuse its buffer. `now` is in ms.
   */
  push(now: number, packet: Packet): PushResult {
    const t = this.#tick(now);
    const h = packet.header;
    const fragment = packet.fragment;
    const len = fragment.length;
    const { numFrags, fragIndex, lenMessage } = h;
    if (!(numFrags >= 1 && numFrags <= MAX_FRAGMENTS && fragIndex >= 0 && fragIndex < numFrags
      && Number.isInteger(fragIndex) && Number.isInteger(numFrags) && len <= lenMessage
      && (numFrags === 1 ? len === lenMessage : len > 0))) {
      this.#counters.invalid++;
      return INVALID;
    }
    if (numFrags === 1) {
      this.#counters.completed++;
      return { kind: 'complete', senderId: h.senderId, msgSeq: h.msgSeq, op: h.op, message: fragment.slice() };
    }
    if (lenMessage > this.maxBytes) {
      this.#counters.overLimit++;
      return OVER_LIMIT;
    }
    const key = `${h.senderId}/${h.msgSeq}`;
    let a = this.#assemblies.get(key);
    if (a !== undefined) {
      if (a.op !== h.op || a.numFrags !== numFrags || a.lenMessage !== lenMessage) return this.#conflict(a);
      const held = a.fragments[fragIndex];
      if (held !== undefined) {
        if (!sameBytes(held, fragment)) return this.#conflict(a);
        this.#counters.duplicates++;
        return DUPLICATE;
      }
      // Every fragment still missing after this one needs at least 1 byte.
      if (a.bytes + len + (numFrags - a.received - 1) > lenMessage) return this.#conflict(a);
      this.#assemblies.delete(key); // re-inserted below, as the freshest
    } else {
      if (len + (numFrags - 1) > lenMessage) {
        this.#counters.conflicts++;
        return CONFLICT;
      }
      while (this.#assemblies.size >= this.maxMessages) this.#evictOldest();
      a = {
        key, senderId: h.senderId, msgSeq: h.msgSeq, op: h.op, numFrags, lenMessage,
        fragments: new Array<Uint8Array | undefined>(numFrags).fill(undefined), received: 0, bytes: 0, touchedAt: t,
      };
    }
    a.touchedAt = t;
    if (a.received + 1 < numFrags) {
      // Room for the bytes: evicting the others always suffices, since this assembly's bytes
      // stay within lenMessage <= maxBytes.
      while (this.#bytes + len > this.maxBytes && this.#assemblies.size > 0) this.#evictOldest();
      a.fragments[fragIndex] = fragment.slice();
      a.received++;
      a.bytes += len;
      this.#bytes += len;
      this.#assemblies.set(key, a);
      return PENDING;
    }
    // The last missing fragment: copied straight into the message, never buffered, so
    // completing a message never evicts another.
    this.#bytes -= a.bytes;
    if (a.bytes + len !== lenMessage) {
      this.#counters.conflicts++;
      return CONFLICT;
    }
    a.fragments[fragIndex] = fragment;
    const message = new Uint8Array(lenMessage);
    let at = 0;
    for (const f of a.fragments) {
      message.set(f!, at);
      at += f!.length;
    }
    this.#counters.completed++;
    return { kind: 'complete', senderId: a.senderId, msgSeq: a.msgSeq, op: a.op, message };
  }

  /**
   * Drops the assemblies that got no new fragment for `timeout` ms; returns how many. Call when
   * `pollTimeout()` is reached (calling more often is harmless).
   */
  expire(now: number): number {
    const t = this.#tick(now);
    let n = 0;
    for (const a of this.#assemblies.values()) {
      if (a.touchedAt + this.timeout > t) break; // the rest are fresher
      this.#remove(a);
      n++;
    }
    this.#counters.expired += n;
    return n;
  }

  /** The instant (ms, same clock as `now`) at which `expire` next has work, or undefined if none. */
  pollTimeout(): number | undefined {
    for (const a of this.#assemblies.values()) return a.touchedAt + this.timeout;
    return undefined;
  }

  /**
   * Indexes of the fragments not yet received for a message in progress, ascending (what a NAK's
   * `partials[].missing` carries); undefined when no such message is being reassembled.
   */
  missing(senderId: bigint, msgSeq: number): number[] | undefined {
    return this.partial(senderId, msgSeq)?.missing;
  }

  /** Like `missing`, with the message's fragment count: both make a NAK partial. */
  partial(senderId: bigint, msgSeq: number): { numFrags: number; missing: number[] } | undefined {
    const a = this.#assemblies.get(`${senderId}/${msgSeq}`);
    if (a === undefined) return undefined;
    const missing: number[] = [];
    for (let i = 0; i < a.numFrags; i++) if (a.fragments[i] === undefined) missing.push(i);
    return { numFrags: a.numFrags, missing };
  }

  stats(): ReassemblerStats {
    return { messages: this.#assemblies.size, bytes: this.#bytes, ...this.#counters };
  }

  #tick(now: number): number {
    if (now > this.#now) this.#now = now;
    return this.#now;
  }

  #conflict(a: Assembly): PushResult {
    this.#remove(a);
    this.#counters.conflicts++;
    return CONFLICT;
  }

  #evictOldest(): void {
    for (const a of this.#assemblies.values()) {
      this.#remove(a);
      this.#counters.evicted++;
      return;
    }
  }

  #remove(a: Assembly): void {
    this.#assemblies.delete(a.key);
    this.#bytes -= a.bytes;
  }
}

function option(options: ReassemblerOptions, name: keyof ReassemblerOptions, check: (v: number) => boolean): number {
  const v = options[name] ?? DEFAULTS[name];
  if (typeof v !== 'number' || !check(v) || v <= 0) {
    throw new McCacheError(ErrorCode.INVALID_OPTION, `${name}: must be a positive ${check === Number.isFinite ? 'number' : 'integer'}, got ${String(v)}`);
  }
  return v;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
