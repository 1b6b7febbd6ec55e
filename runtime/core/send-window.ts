/**
 * Theory of operation
 * -------------------
 * The send window numbers this node's sequenced messages (1, 2, ...; one window per sending
 * identity, reliable-core.ts "Identity renewal") and keeps the encoded datagrams of every
 * message that some live member may still ask for. A message is *stable*
 * once every current member's ACK digest says it delivered it (DESIGN.md §4, JGroups'
 * STABLE): stable messages are dropped. With no members, everything is stable at once.
 *
 * The window is bounded in messages and bytes. When full, `isFull` is true and the core
 * refuses new messages (backpressure) until ACKs free room; the layer above coalesces its
 * pending writes meanwhile, so a bound never means a lost write.
 *
 * A member's acknowledgement is clamped to what was actually sent, so a confused or hostile
 * peer can make us free nothing it has not seen... except by claiming to have seen it, which
 * only costs that peer its own repairs.
 */
import type { NodeId } from './types';

export interface SentMessage {
  seq: number;
  datagrams: Uint8Array[];
  bytes: number;
  /** When each fragment was last (re)sent, for retransmit suppression. */
  lastSentAt: number[];
}

export class SendWindow {
  readonly #maxMessages: number;
  readonly #maxBytes: number;
  readonly #buffer = new Map<number, SentMessage>();
  /** Highest seq each member acknowledged (delivered without gap). */
  readonly #acked = new Map<NodeId, number>();
  #nextSeq: number;
  #low: number;
  #bytes = 0;

  /** `firstSeq`: the first number to assign (1 for a fresh sender; higher only in tests). */
  constructor(maxMessages: number, maxBytes: number, firstSeq = 1) {
    this.#maxMessages = maxMessages;
    this.#maxBytes = maxBytes;
    this.#nextSeq = firstSeq;
    this.#low = firstSeq;
  }

  /** Highest sequence number assigned so far (0 before the first message). */
  get highest(): number {
    return this.#nextSeq - 1;
  }
  /** Lowest sequence number still retransmittable (= highest + 1 when the buffer is empty). */
  get low(): number {
    return this.#low;
  }
  get size(): number {
    return this.#buffer.size;
  }
  get bytes(): number {
    return this.#bytes;
  }
  get isFull(): boolean {
    return this.#buffer.size >= this.#maxMessages || this.#bytes >= this.#maxBytes;
  }
  /** Below 3/4 of both bounds: room enough to tell a blocked writer to go on. */
  get hasRoom(): boolean {
    return this.#buffer.size * 4 <= this.#maxMessages * 3 && this.#bytes * 4 <= this.#maxBytes * 3;
  }

  nextSeq(): number {
    return this.#nextSeq;
  }

  /** Records message `seq` (must be nextSeq()) as sent at `now`. */
  add(now: number, seq: number, datagrams: Uint8Array[]): void {
    if (seq !== this.#nextSeq) throw new Error(`send window: seq ${seq} out of order (expected ${this.#nextSeq})`);
    const bytes = datagrams.reduce((n, d) => n + d.length, 0);
    this.#buffer.set(seq, { seq, datagrams, bytes, lastSentAt: datagrams.map(() => now) });
    this.#bytes += bytes;
    this.#nextSeq++;
  }

  get(seq: number): SentMessage | undefined {
    return this.#buffer.get(seq);
  }

  /** A member's ACK for us; returns true when messages were freed. */
  ack(member: NodeId, delivered: number, members: Iterable<NodeId>): boolean {
    const clamped = Math.min(delivered, this.highest);
    if ((this.#acked.get(member) ?? -1) >= clamped) return false;
    this.#acked.set(member, clamped);
    return this.trim(members);
  }

  /** A member is gone: its acknowledgements no longer hold anything back. */
  forget(member: NodeId, members: Iterable<NodeId>): boolean {
    this.#acked.delete(member);
    return this.trim(members);
  }

  /** Frees every message that all `members` acknowledged. */
  trim(members: Iterable<NodeId>): boolean {
    let stable = this.highest;
    for (const m of members) stable = Math.min(stable, this.#acked.get(m) ?? 0);
    let freed = false;
    while (this.#low <= stable) {
      const msg = this.#buffer.get(this.#low);
      if (msg) {
        this.#bytes -= msg.bytes;
        this.#buffer.delete(this.#low);
        freed = true;
      }
      this.#low++;
    }
    return freed;
  }
}
