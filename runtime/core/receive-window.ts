/**
 * Theory of operation
 * -------------------
 * One ReceiveWindow per remote sender. It turns that sender's sequenced messages, which arrive
 * lost, duplicated and reordered, into a stream delivered exactly once and in order
 * (DESIGN.md §4, after JGroups NAKACK2).
 *
 * - `next` is the next sequence number to deliver. It is unknown until the sender tells us
 *   where to start: its JOIN (start after its highest, i.e. at 1) or a HEARTBEAT (start at its
 *   `low_seq`, the lowest message it still holds, so a member that missed the first messages
 *   still gets them). Messages that arrive before that wait in the out-of-order buffer.
 * - Complete messages above `next` wait in the out-of-order buffer (bounded; beyond the bound
 *   they are dropped and asked for again later).
 * - `highest` is the highest sequence number known to exist: from sequenced datagrams and
 *   from the `msg_seq` high-water mark on every unsequenced datagram (tail-loss detection).
 * - Anything in `next..highest` that is not buffered is missing. The window asks for it with a
 *   NAK after a random delay (so that, when several receivers lose the same datagram, one NAK
 *   and one multicast retransmission usually serve all: suppression), and again every retry
 *   interval while the gap persists. After `maxNakAttempts` rounds without progress it gives
 *   the missing messages up (a `gap` for the layer above, which repairs by anti-entropy).
 * - A heartbeat's `low_seq` above `next` means the sender no longer holds what we miss: skip.
 */
import type { Message } from '../codec/packet';

export type Slot = { message: Message } | { message: undefined }; // undefined: body was malformed

export interface DeliverStep {
  kind: 'deliver';
  seq: number;
  message: Message | undefined;
}
export interface GapStep {
  kind: 'gap';
  first: number;
  last: number;
}
export type Step = DeliverStep | GapStep;

export interface NakRequest {
  ranges: Array<{ first: number; last: number }>;
  /** Sequence numbers that may be partly received (the core asks the reassembler). */
  partialCandidates: number[];
}

export class ReceiveWindow {
  #next: number | undefined;
  #highest = 0;
  readonly #ooo = new Map<number, Slot>();
  readonly #maxBuffered: number;
  /** When the next NAK is due; undefined while nothing is missing. */
  nakDueAt: number | undefined;
  nakAttempts = 0;

  constructor(maxBuffered: number) {
    this.#maxBuffered = maxBuffered;
  }

  get initialized(): boolean {
    return this.#next !== undefined;
  }
  get next(): number | undefined {
    return this.#next;
  }
  get highest(): number {
    return this.#highest;
  }
  get buffered(): number {
    return this.#ooo.size;
  }
  /** Highest sequence delivered with no gap before it (what our ACK digest reports). */
  get delivered(): number {
    return this.#next === undefined ? 0 : this.#next - 1;
  }

  /** Is `seq` already delivered or buffered? (Then its datagrams need no reassembly.) */
  has(seq: number): boolean {
    return (this.#next !== undefined && seq < this.#next) || this.#ooo.has(seq);
  }

  /** The sender's high-water mark, from any datagram. */
  observeHighest(seq: number): void {
    if (seq > this.#highest) this.#highest = seq;
  }

  /**
   * Starts (or moves forward) the window at `start`. Buffered messages below it are given up
   * unless already deliverable in order.
   */
  start(start: number, out: Step[]): void {
    if (this.#next === undefined) {
      this.#next = start;
      for (const seq of [...this.#ooo.keys()]) if (seq < start) this.#ooo.delete(seq);
      this.observeHighest(start - 1);
      this.#drain(out);
    } else if (start > this.#next) {
      this.skipTo(start, out);
    }
  }

  /** Adds a complete message; returns false for a duplicate or when the buffer is full. */
  add(seq: number, slot: Slot, out: Step[]): boolean {
    this.observeHighest(seq);
    if (this.has(seq)) return false;
    if (this.#next === undefined || seq !== this.#next) {
      if (this.#ooo.size >= this.#maxBuffered) return false;
      this.#ooo.set(seq, slot);
      return true;
    }
    this.#ooo.set(seq, slot);
    this.#drain(out);
    return true;
  }

  /** Delivers what is buffered below `start` in order, reports the holes as gaps, moves on. */
  skipTo(start: number, out: Step[]): void {
    if (this.#next === undefined || start <= this.#next) return;
    const below = [...this.#ooo.keys()].filter((s) => s < start).sort((a, b) => a - b);
    let from = this.#next;
    for (const seq of below) {
      if (seq > from) out.push({ kind: 'gap', first: from, last: seq - 1 });
      out.push({ kind: 'deliver', seq, message: this.#ooo.get(seq)!.message });
      this.#ooo.delete(seq);
      from = seq + 1;
    }
    if (from < start) out.push({ kind: 'gap', first: from, last: start - 1 });
    this.#next = start;
    this.observeHighest(start - 1);
    this.nakAttempts = 0;
    this.#drain(out);
  }

  /** Gives up everything missing up to the first buffered message (retry limit reached). */
  giveUp(out: Step[]): void {
    if (this.#next === undefined) return;
    const buffered = [...this.#ooo.keys()].sort((a, b) => a - b);
    const upTo = buffered.length > 0 ? buffered[0]! : this.#highest + 1;
    this.skipTo(upTo, out);
  }

  get isMissing(): boolean {
    return this.#next !== undefined && this.#next <= this.#highest;
  }

  /** What to ask for: up to `maxRanges` ranges of missing sequence numbers, oldest first. */
  missing(maxRanges: number, maxPartials: number): NakRequest {
    const ranges: Array<{ first: number; last: number }> = [];
    const partialCandidates: number[] = [];
    if (this.#next === undefined) return { ranges, partialCandidates };
    const present = [...this.#ooo.keys()].filter((s) => s >= this.#next!).sort((a, b) => a - b);
    let from = this.#next;
    const emit = (first: number, last: number) => {
      // A missing message may be partly here: the core asks the reassembler about the first few.
      for (let s = first; s <= last && partialCandidates.length < maxPartials; s++) partialCandidates.push(s);
      if (ranges.length < maxRanges) ranges.push({ first, last });
    };
    for (const seq of present) {
      if (seq > from) emit(from, seq - 1);
      from = seq + 1;
      if (ranges.length >= maxRanges) break;
    }
    if (ranges.length < maxRanges && from <= this.#highest) emit(from, this.#highest);
    return { ranges, partialCandidates };
  }

  #drain(out: Step[]): void {
    while (this.#next !== undefined) {
      const slot = this.#ooo.get(this.#next);
      if (!slot) break;
      this.#ooo.delete(this.#next);
      out.push({ kind: 'deliver', seq: this.#next, message: slot.message });
      this.#next++;
      this.nakAttempts = 0;
    }
  }
}
