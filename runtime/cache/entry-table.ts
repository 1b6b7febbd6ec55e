/**
 * The storage under a Cache: entries as columns ("structure of arrays"), not as objects.
 *
 * Why: a cache keeps what it is given, so every entry outlives V8's young generation and is
 * copied by each scavenge it lives through (twice before it is promoted). With one object per
 * entry the collector copied the entry, its four time fields (each a boxed double, since V8 no
 * longer stores doubles inside objects), and its version's bigint: about eight objects per write.
 * Those pauses made the replication p99 (every slow put in bench/replication.bench.ts lined up
 * with a scavenge on the writer or a reader). Here an entry is a slot number: its numbers live
 * in typed arrays (allocated once, never scanned by the collector), its key and value in two
 * plain arrays, and the key -> slot map holds small integers. What a write leaves for the
 * collector is its key and its value, as a `Map<string, V>` does; in an isolated test of 60,000
 * inserts, scavenge time fell from 2.2x a Map's to about a Map's.
 * (lru-cache keeps its recency list in typed arrays for the same reason.)
 *
 * Slots are reused through a free list threaded through `next`; columns grow when full (the
 * first time straight to the `reserve`, the cache's max up to a bound, then by doubling: each
 * growth copies every column) and are given back only when the table empties (`reset`),
 * because live slots cannot be moved without renumbering the index. `gen[slot]` counts how
 * often a slot was freed, so an iterator's snapshot can tell a slot reused by a newer entry
 * from the entry it listed.
 *
 * Recency is a doubly linked list through `prev`/`next` (NONE ends it): `head` is the least
 * recently used entry, `tail` the most recently used.
 *
 * This is an internal module: the Cache keeps every invariant (sizes, tombstones, events).
 */
export const NONE = -1;
const INITIAL = 16;

export class EntryTable<V> {
  /** key -> slot. */
  readonly index = new Map<string, number>();
  keys: Array<string | undefined> = [];
  values: Array<V | undefined> = [];
  /** The encoded value, kept only when needed (see Cache #bytesOf / #keptBytes). */
  bytes: Array<Uint8Array | undefined> = [];
  hlc = new BigUint64Array(INITIAL);
  origin = new BigUint64Array(INITIAL);
  /** Monotonic ms, or Infinity (never). */
  expiresAt = new Float64Array(INITIAL);
  /** Monotonic ms, or -1 when never read (or not tracked). */
  lastLookupAt = new Float64Array(INITIAL);
  createdAt = new Float64Array(INITIAL);
  updatedAt = new Float64Array(INITIAL);
  size = new Float64Array(INITIAL);
  /** UTF-8 bytes of the key. */
  keyLen = new Uint32Array(INITIAL);
  /** VALUE_CODECS number of the value's codec. */
  codec = new Uint8Array(INITIAL);
  prev = new Int32Array(INITIAL);
  next = new Int32Array(INITIAL);
  gen = new Uint32Array(INITIAL);
  head = NONE;
  tail = NONE;
  /** Counts resets: a slot number from before a reset means nothing after it. */
  epoch = 0;
  #capacity = INITIAL;
  /** The capacity `reserve` asked for: the first growth goes straight to it. */
  #reserved = INITIAL;
  /** Slots handed out so far (the rest of the columns is unused). */
  #used = 0;
  #free = NONE;

  get count(): number {
    return this.index.size;
  }

  /**
   * A slot for a new `key` (not in the index), linked as the most recently used. The caller
   * fills in every column but `keys`, `prev`, `next` and `gen`.
   */
  add(key: string): number {
    let s = this.#free;
    if (s !== NONE) {
      this.#free = this.next[s]!;
    } else {
      if (this.#used === this.#capacity) this.#grow();
      s = this.#used++;
    }
    this.index.set(key, s);
    this.keys[s] = key;
    this.prev[s] = this.tail;
    this.next[s] = NONE;
    if (this.tail !== NONE) this.next[this.tail] = s;
    else this.head = s;
    this.tail = s;
    return s;
  }

  /** Removes the entry in `slot` (which must be live): index, recency list, references. */
  remove(slot: number): void {
    this.index.delete(this.keys[slot]!);
    const p = this.prev[slot]!;
    const n = this.next[slot]!;
    if (p !== NONE) this.next[p] = n;
    else this.head = n;
    if (n !== NONE) this.prev[n] = p;
    else this.tail = p;
    this.keys[slot] = undefined;
    this.values[slot] = undefined;
    this.bytes[slot] = undefined;
    this.gen[slot] = (this.gen[slot]! + 1) >>> 0;
    this.prev[slot] = NONE;
    this.next[slot] = this.#free;
    this.#free = slot;
  }

  /** Makes `slot` the most recently used entry. */
  moveToTail(slot: number): void {
    if (slot === this.tail) return;
    const p = this.prev[slot]!;
    const n = this.next[slot]!;
    if (p !== NONE) this.next[p] = n;
    else this.head = n;
    this.prev[n] = p; // n exists: slot is not the tail
    this.prev[slot] = this.tail;
    this.next[slot] = NONE;
    this.next[this.tail] = slot;
    this.tail = slot;
  }

  /**
   * Makes room for `n` slots once the table holds more than its first few, so that it does not
   * grow (copy every column) while it fills up to `n`. Used with the cache's `max`, as
   * lru-cache allocates its arrays for `max` up front; but lazily, so that a cache that stays
   * (nearly) empty, or one emptied by a clear, holds only the smallest columns (V8 counts every
   * column's bytes as external memory, and new external memory brings collections forward).
   * Freshly allocated columns cost address space, not memory, until their slots are used.
   */
  reserve(n: number): void {
    this.#reserved = Math.max(INITIAL, n);
    if (this.#capacity > INITIAL && n > this.#capacity) this.#resize(n);
  }

  /** Gives the columns back when the table is empty (after a clear, say). */
  reset(): void {
    if (this.index.size !== 0 || this.#capacity === INITIAL) return;
    const fresh = new EntryTable<V>();
    this.keys = fresh.keys;
    this.values = fresh.values;
    this.bytes = fresh.bytes;
    this.hlc = fresh.hlc;
    this.origin = fresh.origin;
    this.expiresAt = fresh.expiresAt;
    this.lastLookupAt = fresh.lastLookupAt;
    this.createdAt = fresh.createdAt;
    this.updatedAt = fresh.updatedAt;
    this.size = fresh.size;
    this.keyLen = fresh.keyLen;
    this.codec = fresh.codec;
    this.prev = fresh.prev;
    this.next = fresh.next;
    this.gen = fresh.gen;
    this.head = this.tail = this.#free = NONE;
    this.epoch++;
    this.#capacity = INITIAL;
    this.#used = 0;
  }

  #grow(): void {
    this.#resize(Math.max(this.#capacity * 2, this.#reserved));
  }

  #resize(n: number): void {
    this.hlc = grown(this.hlc, new BigUint64Array(n));
    this.origin = grown(this.origin, new BigUint64Array(n));
    this.expiresAt = grown(this.expiresAt, new Float64Array(n));
    this.lastLookupAt = grown(this.lastLookupAt, new Float64Array(n));
    this.createdAt = grown(this.createdAt, new Float64Array(n));
    this.updatedAt = grown(this.updatedAt, new Float64Array(n));
    this.size = grown(this.size, new Float64Array(n));
    this.keyLen = grown(this.keyLen, new Uint32Array(n));
    this.codec = grown(this.codec, new Uint8Array(n));
    this.prev = grown(this.prev, new Int32Array(n));
    this.next = grown(this.next, new Int32Array(n));
    this.gen = grown(this.gen, new Uint32Array(n));
    this.#capacity = n;
  }
}

function grown<T extends { set(a: T): void }>(old: T, into: T): T {
  into.set(old);
  return into;
}
