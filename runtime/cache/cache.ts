/**
 * Theory of operation
 * -------------------
 * A Cache is a local, synchronous, Map-like store whose every user mutation is handed to a
 * Replicator (the process's node) and whose remote mutations arrive through `applyRemote`.
 * Local reads never touch the network.
 *
 * - Versions (DESIGN.md §5): every write carries (hlc, node id) from the process's hybrid
 *   logical clock; everywhere the highest version wins, so concurrent writers converge without
 *   synchronized clocks. A remote write older than what we hold is dropped (a "conflict").
 * - Deletes leave a tombstone (expiring after `tombstoneTtl`) so a delete that some member
 *   missed is not undone by an older write or by anti-entropy. `clear()` records a clear
 *   version: anything older is gone, anything newer survives.
 * - TTL expiry and LRU/size eviction are local decisions and are never broadcast (McCache-for-
 *   Python broadcasts them and so deletes keys cluster-wide, bug C2).
 * - Modes: 1 (full replication) applies every remote write; 0 (update-if-present) applies a
 *   remote write only to a key this member holds. Deletes and clears always apply.
 * - Values are checked and measured at `set` by the value codec: a value that cannot fit in 255
 *   fragments throws MCCACHE_ERR_VALUE_TOO_LARGE and changes nothing. Objects are encoded
 *   there (the encoding is the check, and the bytes are kept: the application may change the
 *   object afterwards); strings and scalars (null, booleans, numbers) are only measured, and
 *   encoded when their bytes are needed: by the node when it sends the write (not at all when
 *   a newer write of the key replaced it first), for checksums and digests.
 * - A remote write stamped more than the clock's `maxAhead` ahead of our wall clock is ignored
 *   (counted in `remoteIgnored`): applying it without adopting its time would let it outrank
 *   every later local write here while those writes win on the other members (divergence).
 *
 * Entries are slots of an EntryTable (entry-table.ts): columns in typed arrays rather than an
 * object per entry, so that what a write leaves for the garbage collector is its key and value.
 * Recency is a doubly linked list threaded through the slots (exact LRU, O(1) per touch).
 * Expiry is lazy: reads check the entry; `size` and iteration first purge what is due, which
 * costs nothing until the earliest expiry instant has passed. Tombstones sit in a Map in
 * expiry order (re-inserted on every update), so purging them costs O(expired).
 *
 * `get` reads the clock only when it must: for an entry with a TTL, or to record the lookup
 * time when `callbackWindow` > 0; and the default clock is performance.now() cached for about a
 * millisecond (`coarseNow`). A clock read costs about 40 ns, as much as the rest of a `get`
 * (bench/cache.bench.ts: get hits went from 0.36x to about 0.8x lru-cache's, and with a TTL
 * and a callback window from 0.27x to about 0.7x).
 *
 * Iteration walks a snapshot of the recency list, so the cache may change during a loop.
 */
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import { ErrorCode, McCacheError, MessageTooLargeError } from '../errors';
import { VALUE_CODEC_NAMES, VALUE_CODECS, type BatchWrite, type Message, type MessageOf, type SyncEntry, type ValueCodec } from '../codec/packet';
import type { SyncRecord, SyncTarget } from './anti-entropy';
import { compareVersionParts as compare, hlcPhysical, type HybridClock, type Version } from './hlc';
import { checkString, decodeValue, encodeScalar, encodeUtf8, encodeValue, isScalarEncoding } from './value-codec';
import { isWellFormed, utf8Length } from '../codec/utf8';
import { isScalar, scalarLength, type Scalar } from '../codec/msgpack-scalar';
import { coarseNow } from './coarse-clock';
import { EntryTable, NONE } from './entry-table';

/**
 * A cache bounded by `max` entries gets its columns for up to this many entries at once, when
 * it first holds more than a few (about 73 bytes of address space per entry; pages are used
 * only as entries arrive). Growing by doubling instead copies every column at once: 18 ms at
 * 524,288 entries and 36 ms at 1,048,576 on the reference machine, a pause for every read and
 * replicated write behind it. Above this bound (or with max 0) the columns double as before.
 * Bounded because V8 counts the columns as external memory: reserving for 4M entries per cache
 * slowed the cluster-mix bench, which makes a cache per phase (bench/cluster-mix.bench.ts).
 */
export const PREALLOCATE_MAX = 1 << 18;

export type EvictionReason = 'ttl' | 'lru' | 'size';

/**
 * A put whose value may still be what was given to `set`: a string (codec 'utf8') or a scalar
 * (null, boolean, number; codec 'msgpack'). The wire encoder writes it straight into the
 * message when the node sends it (codec/packet.ts OutgoingValue): a write coalesced away is
 * never encoded, and a sent one costs no byte array of its own.
 */
export type LazyPut = Omit<MessageOf<'put'>, 'value'> & { value: Uint8Array | string | Scalar };

/**
 * A put or delete as a cache publishes it: at once a `put` / `delete` message and a `batch`
 * write (BatchWrite: `kind`, `ttl`, `codec`, `value` too), so the node sends it either way
 * without making another object per write.
 */
export type PublishedPut = LazyPut & { kind: 'value' };
export type PublishedDelete = MessageOf<'delete'> & { kind: 'tombstone'; ttl: 0; codec: 'none'; value: Uint8Array };

/** The bytes of a LazyPut's value (for `encodedPut`). */
export function encodeLazyValue(v: Uint8Array | string | Scalar): Uint8Array {
  return v instanceof Uint8Array ? v : typeof v === 'string' ? encodeUtf8(v) : encodeScalar(v);
}
/** What a cache publishes. */
export type Mutation = PublishedPut | PublishedDelete | MessageOf<'clear'>;

/** The put as a plain `put` message, its value encoded. */
export function encodedPut(m: LazyPut): MessageOf<'put'> {
  return { op: 'put', cache: m.cache, key: m.key, hlc: m.hlc, ttl: m.ttl, codec: m.codec, value: encodeLazyValue(m.value) };
}

/** What the cache needs from the process's node (runtime/node.ts). */
export interface Replicator {
  readonly nodeId: bigint;
  /** Queues a replicated mutation (never blocks; coalesces under backpressure). */
  publish(message: Mutation): void;
  /** Largest encoded message body the transport accepts. */
  readonly maxMessageSize: number;
  /**
   * `key` is about to be evicted for room (LRU or size; the entry is still there): a write of
   * it that the replicator kept only as its key must be taken from the cache now (`currentPut`),
   * or it would never reach the peers.
   */
  evicting?(cache: string, key: string): void;
}

export interface CacheOptions<V> {
  /** Most entries kept; the least recently used is evicted beyond it (local only). 0 = no bound. @default 256 */
  max?: number;
  /** Most total entry size kept, in units of `sizeCalculation` (bytes of the encoded value and key by default). 0 = no bound. @default 8 MiB */
  maxSize?: number;
  /** Size of an entry for `maxSize`. @default encoded value bytes + key bytes */
  sizeCalculation?: (value: V, key: string) => number;
  /**
   * Time to live of an entry in ms, 0 = forever; at most 2^32 - 1 (the wire's u4). Per `set`
   * too, where 0 means this default (as a put's ttl 0 does on the wire, so every member agrees).
   * Expiry is local and never broadcast. @default 0
   */
  ttl?: number;
  /** 1: every member holds every key; 0: apply a remote write only to keys held here. @default 1 */
  mode?: 0 | 1;
  /** ms after a local read during which a remote change to that key calls `callback`. @default 0 (off) */
  callbackWindow?: number;
  /** McCache's change callback: a remote update changed an entry read here within the window. */
  callback?: (change: ChangeInfo<V>) => void;
  /** ms a delete's tombstone is kept, so late or replayed older writes cannot resurrect the key. @default 600000 */
  tombstoneTtl?: number;
  /**
   * Monotonic clock in ms for TTLs and lookup times (lru-cache's `perf`). @default
   * performance.now, read at most once per millisecond of event loop turns (see `coarseNow`)
   */
  now?: () => number;
}

export interface ChangeInfo<V> {
  cache: string;
  key: string;
  op: 'set' | 'delete';
  value: V | undefined;
  /** The version that replaced the one read. */
  version: Version;
  /** When the key was last read here (monotonic ms). */
  lastLookupAt: number;
}

export interface EntryMetadata {
  version: Version;
  /** Wall-clock ms (from the hlc) of the write that produced this value. */
  writtenAt: number;
  /** Monotonic ms of creation here and of the last update here. */
  createdAt: number;
  updatedAt: number;
  /**
   * Monotonic ms of the last `get` here (`peek` and `has` do not count), or undefined. Recorded
   * only when `callbackWindow` > 0, the one feature that needs it: reading the clock on every
   * get would halve get's speed.
   */
  lastLookupAt: number | undefined;
  /** Monotonic ms at which the entry expires, or undefined. */
  expiresAt: number | undefined;
  size: number;
  codec: ValueCodec;
  /** SHA-256 (hex) of the encoded value: equal on every member holding the same version. */
  checksum: string;
  /** Node id of the writer. */
  origin: bigint;
}

export interface CacheMetrics {
  name: string;
  size: number;
  calculatedSize: number;
  tombstones: number;
  hits: number;
  misses: number;
  sets: number;
  deletes: number;
  clears: number;
  evictions: Record<EvictionReason, number>;
  remoteApplies: number;
  remoteIgnored: number;
  conflicts: number;
  callbacks: number;
}

interface Tombstone {
  hlc: bigint;
  origin: bigint;
  expiresAt: number;
}

const DEFAULTS = { max: 256, maxSize: 8 * 1024 * 1024, ttl: 0, mode: 1 as 0 | 1, callbackWindow: 0, tombstoneTtl: 600_000 };
const NEVER = Infinity;
/** put.ttl is a u4 on the wire (spec/mccache_message.ksy). */
const MAX_TTL = 0xffff_ffff;
/**
 * Fixed bytes of a put body besides the name and key bytes (spec/mccache_message.ksy `put`):
 * len_name 1 + len_key 2 + hlc 8 + ttl 4 + value_codec 1 + len_value 4.
 */
const PUT_OVERHEAD = 20;
const EMPTY = new Uint8Array(0);


/**
 * A Map<string, V> replicated to every member (see the theory of operation above).
 *
 * Iteration (`keys`, `values`, `entries`, `forEach`, `[...cache]`) runs from the least recently
 * used entry to the most recently used one, the order in which capacity eviction would remove
 * them; `get` and `set` move an entry to the end, `peek` and `has` do not. Expired entries are
 * never yielded. The cache may be changed while iterating: entries deleted or evicted before
 * their turn are skipped, entries added meanwhile are not visited, and a `get` in the loop
 * does not end or reorder the walk.
 */
export class Cache<V = unknown> implements SyncTarget {
  readonly name: string;
  readonly #nameBytes: number;
  #max: number;
  #maxSize: number;
  #sizeOf: ((value: V, key: string) => number) | undefined;
  #ttl: number;
  #mode: 0 | 1;
  #callbackWindow: number;
  /** callbackWindow > 0: `get` records the lookup time. */
  #trackLookups: boolean;
  #callback: ((c: ChangeInfo<V>) => void) | undefined;
  #tombstoneTtl: number;
  readonly #now: () => number;
  readonly #clock: HybridClock;
  readonly #replicator: Replicator | undefined;
  readonly #nodeId: bigint;
  /** The entries (see entry-table.ts: columns, not objects, for the garbage collector's sake). */
  readonly #t = new EntryTable<V>();
  /** In expiry order: every insertion goes to the end (delete, then set). */
  readonly #tombstones = new Map<string, Tombstone>();
  readonly #events = new EventEmitter();
  #calculatedSize = 0;
  #nextExpiry = NEVER;
  #cleared: Version = { hlc: 0n, node: 0n };
  #closed = false;
  // get's counters are plain fields: one load and store fewer on the hot path.
  #hits = 0;
  #misses = 0;
  readonly #m = {
    sets: 0, deletes: 0, clears: 0, remoteApplies: 0, remoteIgnored: 0, conflicts: 0, callbacks: 0,
    evictions: { ttl: 0, lru: 0, size: 0 } as Record<EvictionReason, number>,
  };

  constructor(name: string, options: CacheOptions<V>, deps: { clock: HybridClock; replicator?: Replicator; nodeId: bigint }) {
    if (typeof name !== 'string' || !isWellFormed(name) || Buffer.byteLength(name, 'utf8') > 255) {
      throw new McCacheError(ErrorCode.INVALID_ARGUMENT, 'name: must be a string of at most 255 UTF-8 bytes');
    }
    this.name = name;
    this.#nameBytes = Buffer.byteLength(name, 'utf8');
    const o = options ?? {};
    this.#max = 0;
    this.#maxSize = 0;
    this.#ttl = 0;
    this.#mode = 1;
    this.#callbackWindow = 0;
    this.#trackLookups = false;
    this.#tombstoneTtl = 0;
    this.#applyOptions(o);
    if (o.now !== undefined && typeof o.now !== 'function') throw new McCacheError(ErrorCode.INVALID_OPTION, 'now: must be a function returning ms');
    this.#now = o.now ?? coarseNow;
    this.#clock = deps.clock;
    this.#replicator = deps.replicator;
    this.#nodeId = deps.nodeId;
  }

  /**
   * Replaces the options (those of the constructor but `now`), e.g. when getCache names a cache
   * that a peer's write created with the defaults. Validates everything first (an invalid
   * option throws and changes nothing); new bounds apply at once (evicting by LRU / size), a
   * new `ttl` applies to later writes, a new `sizeCalculation` re-measures every entry.
   */
  reconfigure(options: Omit<CacheOptions<V>, 'now'>): void {
    this.#assertOpen();
    if (options === null || typeof options !== 'object') throw new McCacheError(ErrorCode.INVALID_OPTION, 'options: must be an object');
    if ((options as CacheOptions<V>).now !== undefined) throw new McCacheError(ErrorCode.INVALID_OPTION, 'now: cannot be changed after the cache was made');
    const sizeOf = this.#sizeOf;
    this.#applyOptions(options);
    const t = this.#t;
    if (this.#sizeOf !== sizeOf) {
      this.#calculatedSize = 0;
      for (let s = t.head; s !== NONE; s = t.next[s]!) {
        t.size[s] = this.#sizeOf ? this.#sizeOf(t.values[s] as V, t.keys[s]!) : this.#bytesOf(s).length + t.keyLen[s]!;
        this.#calculatedSize += t.size[s]!;
      }
    }
    while (this.#max > 0 && t.count > this.#max && t.head !== NONE) this.#evict(t.head, 'lru');
    while (this.#maxSize > 0 && this.#calculatedSize > this.#maxSize && t.head !== NONE) this.#evict(t.head, 'size');
  }

  /** Validates every option, then assigns them all (nothing changes when one is invalid). */
  #applyOptions(o: Omit<CacheOptions<V>, 'now'>): void {
    const max = intOpt('max', o.max, DEFAULTS.max);
    const maxSize = intOpt('maxSize', o.maxSize, DEFAULTS.maxSize);
    if (o.sizeCalculation !== undefined && typeof o.sizeCalculation !== 'function') {
      throw new McCacheError(ErrorCode.INVALID_OPTION, 'sizeCalculation: must be a function (value, key) => number');
    }
    const ttl = intOpt('ttl', o.ttl, DEFAULTS.ttl, MAX_TTL);
    if (o.mode !== undefined && o.mode !== 0 && o.mode !== 1) throw new McCacheError(ErrorCode.INVALID_OPTION, `mode: must be 0 or 1, got ${String(o.mode)}`);
    const callbackWindow = intOpt('callbackWindow', o.callbackWindow, DEFAULTS.callbackWindow);
    if (o.callback !== undefined && typeof o.callback !== 'function') throw new McCacheError(ErrorCode.INVALID_OPTION, 'callback: must be a function');
    const tombstoneTtl = intOpt('tombstoneTtl', o.tombstoneTtl, DEFAULTS.tombstoneTtl);
    this.#max = max;
    this.#maxSize = maxSize;
    this.#sizeOf = o.sizeCalculation;
    this.#ttl = ttl;
    this.#mode = o.mode ?? DEFAULTS.mode;
    this.#callbackWindow = callbackWindow;
    this.#trackLookups = callbackWindow > 0;
    this.#callback = o.callback;
    this.#tombstoneTtl = tombstoneTtl;
    // The columns' first growth goes to room for `max` entries (at most PREALLOCATE_MAX) rather
    // than doubling again and again (each time copying every column) as the cache fills.
    if (max > 0) this.#t.reserve(Math.min(max, PREALLOCATE_MAX));
  }

  // --- Map-like API ---------------------------------------------------------------------------

  get size(): number {
    this.#purgeStale();
    return this.#t.count;
  }

  /** The value of `key`, or undefined; makes it the most recently used entry. */
  get(key: string): V | undefined {
    const t = this.#t;
    const s = t.index.get(key);
    if (s === undefined) {
      this.#misses++;
      return undefined;
    }
    // The hot path: no clock read for an entry without TTL unless lookups are tracked.
    const expiresAt = t.expiresAt[s]!;
    if (expiresAt !== NEVER || this.#trackLookups) {
      const now = this.#now();
      if (expiresAt <= now) {
        this.#evict(s, 'ttl');
        this.#misses++;
        return undefined;
      }
      if (this.#trackLookups) t.lastLookupAt[s] = now;
    }
    this.#hits++;
    if (s !== t.tail) t.moveToTail(s);
    return t.values[s] as V;
  }

  /** Like get, without touching recency, lookup time or the hit/miss counts. */
  peek(key: string): V | undefined {
    const s = this.#liveSlot(key);
    return s === undefined ? undefined : this.#t.values[s] as V;
  }

  /** Whether `key` holds a live value; does not touch recency. */
  has(key: string): boolean {
    const s = this.#t.index.get(key);
    if (s === undefined) return false;
    const expiresAt = this.#t.expiresAt[s]!;
    if (expiresAt !== NEVER && expiresAt <= this.#now()) {
      this.#evict(s, 'ttl');
      return false;
    }
    return true;
  }

  /**
   * Stores `value` and replicates it. Throws (and changes nothing, sends nothing) for a
   * non-string key (MCCACHE_ERR_INVALID_ARGUMENT), an unencodable value (INVALID_ARGUMENT), a
   * bad `ttl` (INVALID_OPTION), or a value too large to replicate in 255 fragments or to fit
   * `maxSize` (MCCACHE_ERR_VALUE_TOO_LARGE). Setting `undefined` deletes the key, as in lru-cache.
   */
  set(key: string, value: V, options?: { ttl?: number }): this {
    this.#assertOpen();
    // A key held already passed checkKey when it was stored (the common case: an update).
    const held = typeof key === 'string' ? this.#t.index.get(key) : undefined;
    if (held === undefined) checkKey(key);
    if (value === undefined) {
      this.delete(key);
      return this;
    }
    const perCall = options?.ttl === undefined ? 0 : intOpt('ttl', options.ttl, 0, MAX_TTL);
    const ttl = perCall > 0 ? perCall : this.#ttl;
    // Strings, the usual value, and scalars are checked now and encoded only when their bytes
    // are needed (sending, checksums, digests); anything else is encoded now, which also
    // validates it.
    let codec: ValueCodec;
    let bytes: Uint8Array | undefined;
    let valueLen: number;
    if (typeof value === 'string') {
      checkString(value);
      codec = 'utf8';
      valueLen = utf8Length(value);
    } else if (isScalar(value)) {
      codec = 'msgpack';
      valueLen = scalarLength(value);
    } else {
      ({ codec, bytes } = encodeValue(value));
      valueLen = bytes.length;
    }
    const keyLen = held !== undefined ? this.#t.keyLen[held]! : Buffer.byteLength(key, 'utf8');
    if (this.#replicator) {
      const body = PUT_OVERHEAD + this.#nameBytes + keyLen + valueLen;
      const limit = this.#replicator.maxMessageSize;
      if (body > limit) {
        throw new MessageTooLargeError(ErrorCode.VALUE_TOO_LARGE,
          `set(${JSON.stringify(key)}): the encoded value is ${valueLen} bytes; with its key it needs ${body} bytes, and a message holds at most ${limit} bytes (255 fragments at this packetMtu)`,
          body, limit);
      }
    }
    const size = this.#sizeFor(value, key, valueLen, keyLen);
    const hlc = this.#clock.now();
    // The entry keeps the bytes of a mutable value (an object's, which the application may
    // change after set); a primitive's (number, boolean, bigint, null) come back exactly by
    // encoding it again, so it keeps none: one object fewer per entry for the collector.
    this.#store(key, value, codec, typeof value === 'object' && value !== null ? bytes : undefined, keyLen, hlc, this.#origin(), ttl, size);
    this.#m.sets++;
    this.#replicator?.publish({ op: 'put', kind: 'value', cache: this.name, key, hlc, ttl, codec, value: bytes ?? value as string | Scalar });
    return this;
  }

  /**
   * The put that replicates `key` as it stands, as `set` published it: for a write the node took
   * out of its queue under overload and sends later from the cache (node.ts, spilled writes).
   * Undefined when the key holds no live value written here: deleted (its delete is queued
   * itself), expired or evicted (local events), or overwritten by a peer (that peer replicates
   * its own write).
   */
  currentPut(key: string): PublishedPut | undefined {
    const t = this.#t;
    const s = t.index.get(key);
    if (s === undefined || t.origin[s] !== this.#origin()) return undefined;
    const now = this.#now();
    const expiresAt = t.expiresAt[s]!;
    if (expiresAt <= now) return undefined;
    const ttl = expiresAt === NEVER ? 0 : Math.max(1, Math.ceil(expiresAt - now));
    // An entry keeps the bytes of an object value; a string or a primitive is sent as it is.
    const value = t.bytes[s] ?? (t.values[s] as string | Scalar);
    return { op: 'put', kind: 'value', cache: this.name, key, hlc: t.hlc[s]!, ttl, codec: VALUE_CODEC_NAMES[t.codec[s]!]!, value };
  }

  /** Whether the entry of `key` is the write stamped `hlc`, so `currentPut` can read it back. */
  holds(key: string, hlc: bigint): boolean {
    const s = this.#t.index.get(key);
    return s !== undefined && this.#t.hlc[s] === hlc;
  }

  /** Removes `key` here and on every member; returns whether it held a live value here. */
  delete(key: string): boolean {
    this.#assertOpen();
    checkKey(key);
    const now = this.#now();
    const s = this.#t.index.get(key);
    const present = s !== undefined && this.#t.expiresAt[s]! > now;
    if (s !== undefined) this.#remove(s);
    const hlc = this.#clock.now();
    this.#putTombstone(key, { hlc, origin: this.#origin(), expiresAt: now + this.#tombstoneTtl }, now);
    this.#m.deletes++;
    this.#replicator?.publish({ op: 'delete', kind: 'tombstone', cache: this.name, key, hlc, ttl: 0, codec: 'none', value: EMPTY });
    return present;
  }

  /** Empties this cache here and on every member. */
  clear(): void {
    this.#assertOpen();
    const hlc = this.#clock.now();
    this.#clearOlderThan({ hlc, node: this.#origin() });
    this.#m.clears++;
    this.#replicator?.publish({ op: 'clear', cache: this.name, hlc });
  }

  *keys(): IterableIterator<string> {
    for (const s of this.#live()) yield this.#t.keys[s]!;
  }
  *values(): IterableIterator<V> {
    for (const s of this.#live()) yield this.#t.values[s] as V;
  }
  *entries(): IterableIterator<[string, V]> {
    for (const s of this.#live()) yield [this.#t.keys[s]!, this.#t.values[s] as V];
  }
  [Symbol.iterator](): IterableIterator<[string, V]> {
    return this.entries();
  }
  forEach(fn: (value: V, key: string, cache: this) => void, thisArg?: unknown): void {
    for (const s of this.#live()) fn.call(thisArg, this.#t.values[s] as V, this.#t.keys[s]!, this);
  }
  get [Symbol.toStringTag](): string {
    return 'McCache';
  }

  // --- McCache extras ---------------------------------------------------------------------------

  metadata(key: string): EntryMetadata | undefined {
    const s = this.#liveSlot(key);
    if (s === undefined) return undefined;
    const t = this.#t;
    const hlc = t.hlc[s]!;
    const origin = t.origin[s]!;
    const lastLookupAt = t.lastLookupAt[s]!;
    const expiresAt = t.expiresAt[s]!;
    return {
      version: { hlc, node: origin }, origin, writtenAt: hlcPhysical(hlc),
      createdAt: t.createdAt[s]!, updatedAt: t.updatedAt[s]!, lastLookupAt: lastLookupAt < 0 ? undefined : lastLookupAt,
      expiresAt: expiresAt === NEVER ? undefined : expiresAt, size: t.size[s]!, codec: VALUE_CODEC_NAMES[t.codec[s]!]!,
      checksum: sha256(this.#bytesOf(s)),
    };
  }

  metrics(): CacheMetrics {
    this.#purgeStale();
    return { name: this.name, size: this.#t.count, calculatedSize: this.#calculatedSize, tombstones: this.#tombstones.size,
      hits: this.#hits, misses: this.#misses, ...this.#m, evictions: { ...this.#m.evictions } };
  }

  /**
   * SHA-256 (hex) over the live entries sorted by the UTF-8 bytes of their keys (that is, by
   * code point, the same in every language), each as the UTF-8 line
   * `len(key) : key \t hlc \t origin \t sha256(value bytes) \n` with decimal numbers and the
   * key's UTF-8 length in bytes, so that no key can imitate a line boundary. Equal on members
   * holding the same entries, whatever order they were written in.
   */
  checksum(): string {
    const t = this.#t;
    const rows = [...this.#live()].map((s) => ({ s, k: Buffer.from(t.keys[s]!, 'utf8') }));
    rows.sort((a, b) => Buffer.compare(a.k, b.k));
    const h = createHash('sha256');
    for (const { s, k } of rows) h.update(`${k.length}:${t.keys[s]}\t${t.hlc[s]}\t${t.origin[s]}\t${sha256(this.#bytesOf(s))}\n`, 'utf8');
    return h.digest('hex');
  }

  /** Events: 'remote-set', 'remote-delete', 'remote-clear', 'evict' ({key, reason}). */
  on(event: 'remote-set' | 'remote-delete' | 'remote-clear' | 'evict', listener: (info: Record<string, unknown>) => void): this {
    this.#events.on(event, listener);
    return this;
  }
  off(event: string, listener: (info: Record<string, unknown>) => void): this {
    this.#events.off(event, listener);
    return this;
  }

  // --- replication (called by the node) --------------------------------------------------------

  /**
   * Applies a replicated put/delete/clear written by node `from`. Never throws for a peer's
   * content (the change callback's errors are swallowed too). A version equal to the one held
   * is a duplicate and changes nothing; an older one is dropped and counted in `conflicts`.
   */
  applyRemote(message: Message, from: bigint): void {
    if (this.#closed) return;
    switch (message.op) {
      case 'put':
      case 'delete':
      case 'clear': {
        if (!this.#admit(message.hlc)) return;
        // A put's ttl 0 means the receiving cache's default (spec/mccache_message.ksy `put.ttl`).
        if (message.op === 'put') this.#applyPut(message.key, message.hlc, from, message.codec, message.value, message.ttl > 0 ? message.ttl : this.#ttl);
        else if (message.op === 'delete') this.#applyDelete(message.key, message.hlc, from);
        else this.#applyClear({ hlc: message.hlc, node: from });
        break;
      }
      default:
        break;
    }
  }

  /**
   * Applies one write of a replicated `batch` from node `from`, as `applyRemote` applies the
   * put or delete it stands for (without making that message: this runs per remote write).
   */
  applyRemoteWrite(w: BatchWrite, from: bigint): void {
    if (this.#closed) return;
    if (!this.#admit(w.hlc)) return;
    if (w.kind === 'value') this.#applyPut(w.key, w.hlc, from, w.codec, w.value, w.ttl > 0 ? w.ttl : this.#ttl);
    else this.#applyDelete(w.key, w.hlc, from);
  }

  /**
   * Our node renewed its id (runtime/node.ts) while our write of `key` (undefined: our clear)
   * stamped (hlc, from) was still unsent: it goes out under the new id `to`, which is the
   * origin peers will record, so it becomes ours too. Anything else (a newer write, a remote
   * one) is left alone.
   */
  restamp(key: string | undefined, hlc: bigint, from: bigint, to: bigint): void {
    if (key === undefined) {
      if (this.#cleared.hlc === hlc && this.#cleared.node === from) this.#cleared = { hlc, node: to };
      return;
    }
    const s = this.#t.index.get(key);
    if (s !== undefined) {
      if (this.#t.hlc[s] === hlc && this.#t.origin[s] === from) this.#t.origin[s] = to;
      return;
    }
    const t = this.#tombstones.get(key);
    if (t !== undefined && t.hlc === hlc && t.origin === from) t.origin = to;
  }

  /** The newest version this cache knows for `key` (entry or tombstone), for anti-entropy. */
  versionOf(key: string): Version | undefined {
    const s = this.#t.index.get(key);
    if (s !== undefined) return { hlc: this.#t.hlc[s]!, node: this.#t.origin[s]! };
    const t = this.#tombstones.get(key);
    return t ? { hlc: t.hlc, node: t.origin } : undefined;
  }

  close(): void {
    this.#closed = true;
  }

  // --- anti-entropy (runtime/cache/anti-entropy.ts SyncTarget) ---------------------------------

  /** 1: full replication; 0: update-if-present. */
  get mode(): 0 | 1 {
    return this.#mode;
  }

  /** The version of the newest clear applied here (0/0 when none). */
  clearVersion(): Version {
    return { ...this.#cleared };
  }

  /**
   * Live entries then live tombstones, for digests and repairs. An entry's `ttl` is its
   * remaining life in whole ms (at least 1), 0 when it never expires; a tombstone's is 0 (the
   * receiver keeps it for its own `tombstoneTtl`).
   */
  *syncRecords(): IterableIterator<SyncRecord> {
    const now = this.#now();
    const t = this.#t;
    for (const s of this.#live()) {
      const expiresAt = t.expiresAt[s]!;
      const ttl = expiresAt === NEVER ? 0 : Math.min(MAX_TTL, Math.max(1, Math.ceil(expiresAt - now)));
      yield { key: t.keys[s]!, hlc: t.hlc[s]!, origin: t.origin[s]!, kind: 'value', ttl, codec: VALUE_CODEC_NAMES[t.codec[s]!]!, value: this.#bytesOf(s) };
    }
    for (const [key, t] of [...this.#tombstones]) {
      if (t.expiresAt > now && this.#tombstones.get(key) === t) {
        yield { key, hlc: t.hlc, origin: t.origin, kind: 'tombstone', ttl: 0, codec: 'none', value: EMPTY };
      }
    }
  }

  /**
   * Applies an entry or tombstone repaired by anti-entropy, by version, exactly as a replicated
   * put or delete from its writer (`ttl` 0 = never expires, as the field says). Returns whether
   * it changed anything. Never throws for a peer's content.
   */
  applySync(entry: SyncEntry): boolean {
    if (this.#closed || !this.#admit(entry.hlc)) return false;
    if (entry.kind === 'tombstone') return this.#applyDelete(entry.key, entry.hlc, entry.originId);
    return this.#applyPut(entry.key, entry.hlc, entry.originId, entry.codec, entry.value, entry.ttl);
  }

  /** Applies a clear learnt from a peer's digest, by version. */
  applyClear(version: Version): void {
    if (this.#closed) return;
    if (!this.#admit(version.hlc)) return;
    this.#applyClear({ hlc: version.hlc, node: version.node });
  }

  // --- internals --------------------------------------------------------------------------------

  /**
   * A peer's timestamp, shown to our clock: false (and counted in `remoteIgnored`) when it is
   * beyond the clock's `maxAhead` (see the theory of operation).
   */
  #admit(hlc: bigint): boolean {
    if (this.#clock.observe(hlc)) return true;
    this.#m.remoteIgnored++;
    return false;
  }

  /**
   * Whether `v` is newer than what we hold for `key` (undefined: for the whole cache, a clear).
   * An older version is a conflict, counted here; the very version we hold is a no-op.
   */
  #isNewer(key: string | undefined, hlc: bigint, node: bigint): boolean {
    const fresh = this.#freshness(key, hlc, node);
    if (fresh < 0) this.#m.conflicts++;
    return fresh > 0;
  }

  /**
   * -1: version (hlc, node) is older than what we hold (a conflict); 0: it is what we hold;
   * 1: it is newer. (Two bigints rather than a Version: no object per remote write.)
   */
  #freshness(key: string | undefined, hlc: bigint, node: bigint): -1 | 0 | 1 {
    const c = compare(hlc, node, this.#cleared.hlc, this.#cleared.node);
    if (c < 0) return -1;
    if (c === 0) return 0; // the clear itself, replayed: everything it covers is gone already
    if (key === undefined) return 1;
    const s = this.#t.index.get(key);
    if (s !== undefined) {
      // The origin is read only on a tie (each read of a BigUint64Array makes a bigint).
      const held = this.#t.hlc[s]!;
      if (hlc !== held) return hlc < held ? -1 : 1;
      return compare(hlc, node, held, this.#t.origin[s]!);
    }
    const t = this.#tombstones.get(key);
    return t === undefined ? 1 : compare(hlc, node, t.hlc, t.origin);
  }

  /** `ttl`: ms, 0 = never expires. Returns whether the put was applied. */
  #applyPut(key: string, hlc: bigint, node: bigint, codec: ValueCodec, bytes: Uint8Array, ttl: number): boolean {
    if (!this.#isNewer(key, hlc, node)) return false;
    const now = this.#now();
    const t = this.#t;
    const s = t.index.get(key);
    const live = s !== undefined && t.expiresAt[s]! > now;
    if (this.#mode === 0 && !live) {
      this.#m.remoteIgnored++;
      return false;
    }
    let value: V;
    let size: number;
    let keyLen: number;
    try {
      value = decodeValue(codec, bytes) as V;
      keyLen = s !== undefined ? t.keyLen[s]! : Buffer.byteLength(key, 'utf8');
      size = this.#sizeFor(value, key, bytes.length, keyLen);
    } catch {
      // Undecodable, or too large for maxSize here (or the user's sizeCalculation failed): the
      // value we hold is outdated all the same, so it goes rather than be served as current.
      // (The user's sizeCalculation may have changed the cache: the slot is looked up again.)
      const held = t.index.get(key);
      if (held !== undefined) this.#evict(held, 'size');
      this.#m.remoteIgnored++;
      return held !== undefined;
    }
    const lastLookupAt = s !== undefined ? t.lastLookupAt[s]! : -1;
    // A UTF-8 value is kept as its string only: its bytes come back exactly by encoding it again
    // (#bytesOf), and one object fewer per remote write to keep is one fewer for every
    // young-generation collection to copy (those pauses make the receivers' p99 latency).
    this.#store(key, value, codec, this.#keptBytes(codec, value, bytes), keyLen, hlc, node, ttl, size);
    this.#m.remoteApplies++;
    if (this.#events.listenerCount('remote-set') > 0) this.#events.emit('remote-set', { cache: this.name, key, version: { hlc, node } });
    this.#maybeCallback(key, 'set', value, hlc, node, lastLookupAt);
    return true;
  }

  /** Returns whether the delete was applied (a tombstone is recorded even for an absent key). */
  #applyDelete(key: string, hlc: bigint, node: bigint): boolean {
    if (!this.#isNewer(key, hlc, node)) return false;
    const now = this.#now();
    const s = this.#t.index.get(key);
    const lastLookupAt = s !== undefined ? this.#t.lastLookupAt[s]! : -1;
    if (s !== undefined) this.#remove(s);
    this.#putTombstone(key, { hlc, origin: node, expiresAt: now + this.#tombstoneTtl }, now);
    this.#m.remoteApplies++;
    if (this.#events.listenerCount('remote-delete') > 0) this.#events.emit('remote-delete', { cache: this.name, key, version: { hlc, node } });
    if (s !== undefined) this.#maybeCallback(key, 'delete', undefined, hlc, node, lastLookupAt);
    return true;
  }

  #applyClear(v: Version): void {
    if (!this.#isNewer(undefined, v.hlc, v.node)) return;
    this.#clearOlderThan(v);
    this.#m.remoteApplies++;
    this.#events.emit('remote-clear', { cache: this.name, version: v });
  }

  #maybeCallback(key: string, op: 'set' | 'delete', value: V | undefined, hlc: bigint, node: bigint, lastLookupAt: number): void {
    if (!this.#callback || !this.#trackLookups || lastLookupAt < 0) return;
    if (this.#now() - lastLookupAt > this.#callbackWindow) return;
    this.#m.callbacks++;
    try {
      this.#callback({ cache: this.name, key, op, value, version: { hlc, node }, lastLookupAt });
    } catch {
      // A throwing user callback must not break replication.
    }
  }

  /**
   * The entry's encoded value. An entry without bytes holds a string or a primitive whose
   * encoding is its bytes exactly (see #keptBytes): encoded again on first need.
   */
  #bytesOf(s: number): Uint8Array {
    const t = this.#t;
    const v = t.values[s];
    return t.bytes[s] ??= t.codec[s] === VALUE_CODECS.utf8 ? encodeUtf8(v as string) : isScalar(v) ? encodeScalar(v) : encodeValue(v).bytes;
  }

  /**
   * What an entry applied from a peer keeps of the received bytes: nothing for a UTF-8 string
   * (encoding it again gives the same bytes) or for a primitive whose encoding here is exactly
   * what arrived (another implementation may encode 1 as a float, say: then they are kept);
   * a private copy otherwise (objects are mutable, and foreign encodings must be kept as sent).
   */
  #keptBytes(codec: ValueCodec, value: V, bytes: Uint8Array): Uint8Array | undefined {
    if (codec === 'utf8') return undefined;
    if (codec === 'msgpack' && isScalar(value) && isScalarEncoding(value, bytes)) return undefined;
    if (codec === 'msgpack' && typeof value === 'bigint' && bytes.length === 9) {
      const again = encodeValue(value).bytes;
      if (again.every((b, i) => b === bytes[i])) return undefined;
    }
    return bytes.slice();
  }

  #store(key: string, value: V, codec: ValueCodec, bytes: Uint8Array | undefined, keyLen: number, hlc: bigint, origin: bigint, ttl: number, size: number): void {
    const now = this.#now();
    const expiresAt = ttl > 0 ? now + ttl : NEVER;
    const t = this.#t;
    let s = t.index.get(key);
    if (s !== undefined) {
      this.#calculatedSize += size - t.size[s]!;
      if (t.expiresAt[s]! <= now) {
        // An expired entry is replaced, not updated: it was gone already.
        t.createdAt[s] = now;
        t.lastLookupAt[s] = -1;
      }
      t.moveToTail(s);
    } else {
      s = t.add(key);
      t.keyLen[s] = keyLen;
      t.createdAt[s] = now;
      t.lastLookupAt[s] = -1;
      this.#calculatedSize += size;
    }
    t.values[s] = value;
    t.bytes[s] = bytes;
    t.codec[s] = VALUE_CODECS[codec];
    t.hlc[s] = hlc;
    t.origin[s] = origin;
    t.size[s] = size;
    t.expiresAt[s] = expiresAt;
    t.updatedAt[s] = now;
    if (this.#tombstones.size > 0) this.#tombstones.delete(key);
    if (expiresAt < this.#nextExpiry) this.#nextExpiry = expiresAt;
    // Capacity eviction: expired entries first (a live entry is never evicted while an expired
    // one holds a place), then least recently used first; the entry just written goes last and
    // is never evicted for its own sake (#sizeFor refused a size above maxSize already).
    if (((this.#max > 0 && t.count > this.#max) || (this.#maxSize > 0 && this.#calculatedSize > this.#maxSize))
      && now >= this.#nextExpiry) {
      this.#purgeExpired(now);
    }
    while (this.#max > 0 && t.count > this.#max && t.head !== NONE && t.head !== s) this.#evict(t.head, 'lru');
    while (this.#maxSize > 0 && this.#calculatedSize > this.#maxSize && t.head !== NONE && t.head !== s) this.#evict(t.head, 'size');
  }

  /** The entry's size for maxSize; throws VALUE_TOO_LARGE when it alone exceeds maxSize. */
  #sizeFor(value: V, key: string, valueLen: number, keyLen: number): number {
    let n: number;
    if (this.#sizeOf) {
      n = this.#sizeOf(value, key);
      if (!Number.isSafeInteger(n) || n < 0) {
        throw new McCacheError(ErrorCode.INVALID_ARGUMENT, `sizeCalculation: must return a non-negative integer, got ${String(n)}`);
      }
    } else {
      n = valueLen + keyLen;
    }
    if (this.#maxSize > 0 && n > this.#maxSize) {
      throw new MessageTooLargeError(ErrorCode.VALUE_TOO_LARGE, `set(${JSON.stringify(key)}): size ${n} exceeds maxSize ${this.#maxSize}`, n, this.#maxSize);
    }
    return n;
  }

  #clearOlderThan(v: Version): void {
    this.#cleared = v;
    const t = this.#t;
    for (let s = t.head; s !== NONE;) {
      const next = t.next[s]!;
      if (compare(t.hlc[s]!, t.origin[s]!, v.hlc, v.node) < 0) this.#remove(s);
      s = next;
    }
    t.reset();
    for (const [k, ts] of this.#tombstones) if (compare(ts.hlc, ts.origin, v.hlc, v.node) < 0) this.#tombstones.delete(k);
  }

  #putTombstone(key: string, t: Tombstone, now: number): void {
    // Delete first: a Map keeps a re-set key in its old place, and the purge relies on order.
    this.#tombstones.delete(key);
    this.#tombstones.set(key, t);
    this.#purgeTombstones(now);
  }

  #purgeTombstones(now: number): void {
    for (const [k, t] of this.#tombstones) {
      if (t.expiresAt > now) break;
      this.#tombstones.delete(k);
    }
  }

  #evict(s: number, reason: EvictionReason): void {
    const key = this.#t.keys[s]!;
    // An expired entry is expired on the peers too; one evicted for room may still owe them a write.
    if (reason !== 'ttl') this.#replicator?.evicting?.(this.name, key);
    this.#remove(s);
    this.#m.evictions[reason]++;
    if (this.#events.listenerCount('evict') > 0) this.#events.emit('evict', { cache: this.name, key, reason });
  }

  #purgeStale(): void {
    const now = this.#now();
    if (now >= this.#nextExpiry) this.#purgeExpired(now);
    if (this.#tombstones.size > 0) this.#purgeTombstones(now);
  }

  /** Evicts every expired entry (reason 'ttl'); O(entries), so only when one is due. */
  #purgeExpired(now: number): void {
    const t = this.#t;
    let next = NEVER;
    for (let s = t.head; s !== NONE;) {
      const after = t.next[s]!;
      const expiresAt = t.expiresAt[s]!;
      if (expiresAt <= now) this.#evict(s, 'ttl');
      else if (expiresAt < next) next = expiresAt;
      s = after;
    }
    this.#nextExpiry = next;
  }

  /**
   * The live entries' slots, least recently used first, from a snapshot (see the class doc): a
   * slot is yielded only if it still holds the entry it held when the walk began.
   */
  *#live(): IterableIterator<number> {
    this.#purgeStale();
    const t = this.#t;
    const slots = new Int32Array(t.count);
    const gens = new Uint32Array(t.count);
    let n = 0;
    for (let s = t.head; s !== NONE; s = t.next[s]!) {
      slots[n] = s;
      gens[n++] = t.gen[s]!;
    }
    const epoch = t.epoch;
    for (let i = 0; i < n; i++) {
      // The loop's body may have emptied the table (a clear): nothing listed is left then.
      if (t.epoch !== epoch) return;
      const s = slots[i]!;
      // Read the columns afresh each time: the loop's body may have grown them.
      if (this.#t.gen[s] !== gens[i] || this.#t.keys[s] === undefined) continue; // deleted or evicted meanwhile
      const expiresAt = this.#t.expiresAt[s]!;
      if (expiresAt !== NEVER && expiresAt <= this.#now()) continue;
      yield s;
    }
  }

  /** The slot of `key` when it holds an entry that has not expired (nothing is evicted). */
  #liveSlot(key: string): number | undefined {
    const s = this.#t.index.get(key);
    if (s === undefined) return undefined;
    const expiresAt = this.#t.expiresAt[s]!;
    return expiresAt !== NEVER && expiresAt <= this.#now() ? undefined : s;
  }

  #remove(s: number): void {
    this.#calculatedSize -= this.#t.size[s]!;
    this.#t.remove(s);
  }

  /** Origin of our own writes: the node's current id (it is renewed, see the node). */
  #origin(): bigint {
    return this.#replicator !== undefined ? this.#replicator.nodeId : this.#nodeId;
  }

  #assertOpen(): void {
    if (this.#closed) throw new McCacheError(ErrorCode.CLOSED, `cache ${JSON.stringify(this.name)} is closed (after shutdown())`);
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Keys are strings of well-formed UTF-16 of at most 65535 UTF-8 bytes (the wire's u2 length).
 * A lone surrogate is refused here, at once: the encoder would refuse it later, at send time,
 * after the cache had changed.
 */
function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw new McCacheError(ErrorCode.INVALID_ARGUMENT, `key: must be a string, got ${typeof key}`);
  if (!isWellFormed(key)) throw new McCacheError(ErrorCode.INVALID_ARGUMENT, 'key: has a lone surrogate, which UTF-8 cannot carry');
  // At most 3 UTF-8 bytes per UTF-16 unit, so a key of <= 21845 units always fits.
  if (key.length > 21845 && Buffer.byteLength(key, 'utf8') > 65535) {
    throw new McCacheError(ErrorCode.INVALID_ARGUMENT, 'key: at most 65535 UTF-8 bytes');
  }
}

function intOpt(name: string, v: number | undefined, dflt: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) {
    throw new McCacheError(ErrorCode.INVALID_OPTION, `${name}: must be an integer from 0 to ${max}, got ${String(v)}`);
  }
  return v;
}
