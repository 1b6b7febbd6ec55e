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
 * - Values are encoded once, at `set`, by the value codec: the size check (a value that cannot
 *   fit in 255 fragments throws MCCACHE_ERR_VALUE_TOO_LARGE and changes nothing) and the
 *   replicated bytes come from the same encoding.
 *
 * Recency is a doubly linked list threaded through the entries (exact LRU, O(1) per touch).
 * Expiry is lazy: reads check the entry; `size` and iteration first purge what is due, which
 * costs nothing until the earliest expiry instant has passed.
 */
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import { ErrorCode, McCacheError } from '../errors';
import type { Message, ValueCodec } from '../codec/packet';
import { compareVersions, type HybridClock, type Version } from './hlc';
import { decodeValue, encodeValue } from './value-codec';

export type EvictionReason = 'ttl' | 'lru' | 'size';

/** What the cache needs from the process's node (runtime/node.ts). */
export interface Replicator {
  readonly nodeId: bigint;
  /** Queues a replicated mutation (never blocks; coalesces under backpressure). */
  publish(message: Message): void;
  /** Largest encoded message body the transport accepts. */
  readonly maxMessageSize: number;
}

export interface CacheOptions<V> {
  /** Most entries kept; the least recently used is evicted beyond it (local only). 0 = no bound. @default 256 */
  max?: number;
  /** Most total entry size kept, in units of `sizeCalculation` (bytes of the encoded value and key by default). 0 = no bound. @default 8 MiB */
  maxSize?: number;
  /** Size of an entry for `maxSize`. @default encoded value bytes + key bytes */
  sizeCalculation?: (value: V, key: string) => number;
  /** Time to live of an entry in ms, 0 = forever; per `set` too. Expiry is local. @default 0 */
  ttl?: number;
  /** 1: every member holds every key; 0: apply a remote write only to keys held here. @default 1 */
  mode?: 0 | 1;
  /** ms after a local read during which a remote change to that key calls `callback`. @default 0 (off) */
  callbackWindow?: number;
  /** McCache's change callback: a remote update changed an entry read here within the window. */
  callback?: (change: ChangeInfo<V>) => void;
  /** ms a delete's tombstone is kept, so late or replayed older writes cannot resurrect the key. @default 600000 */
  tombstoneTtl?: number;
  /** Monotonic clock in ms for TTLs (lru-cache's `perf`). @default performance.now */
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
  /** Monotonic ms of creation here, last update here, last read here. */
  createdAt: number;
  updatedAt: number;
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

interface Entry<V> {
  key: string;
  value: V;
  codec: ValueCodec;
  bytes: Uint8Array;
  hlc: bigint;
  origin: bigint;
  size: number;
  ttl: number;
  expiresAt: number;
  createdAt: number;
  updatedAt: number;
  lastLookupAt: number;
  prev: Entry<V> | undefined;
  next: Entry<V> | undefined;
}

interface Tombstone {
  hlc: bigint;
  origin: bigint;
  expiresAt: number;
}

const DEFAULTS = { max: 256, maxSize: 8 * 1024 * 1024, ttl: 0, mode: 1 as 0 | 1, callbackWindow: 0, tombstoneTtl: 600_000 };
const NEVER = Infinity;
const utf8 = new TextEncoder();

export class Cache<V = unknown> {
  readonly name: string;
  readonly #max: number;
  readonly #maxSize: number;
  readonly #sizeOf: ((value: V, key: string) => number) | undefined;
  readonly #ttl: number;
  readonly #mode: 0 | 1;
  readonly #callbackWindow: number;
  readonly #callback: ((c: ChangeInfo<V>) => void) | undefined;
  readonly #tombstoneTtl: number;
  readonly #now: () => number;
  readonly #clock: HybridClock;
  readonly #replicator: Replicator | undefined;
  readonly #nodeId: bigint;
  readonly #map = new Map<string, Entry<V>>();
  readonly #tombstones = new Map<string, Tombstone>();
  readonly #events = new EventEmitter();
  #head: Entry<V> | undefined; // least recently used
  #tail: Entry<V> | undefined; // most recently used
  #calculatedSize = 0;
  #nextExpiry = NEVER;
  #cleared: Version = { hlc: 0n, node: 0n };
  #closed = false;
  readonly #m = {
    hits: 0, misses: 0, sets: 0, deletes: 0, clears: 0, remoteApplies: 0, remoteIgnored: 0, conflicts: 0, callbacks: 0,
    evictions: { ttl: 0, lru: 0, size: 0 } as Record<EvictionReason, number>,
  };

  constructor(name: string, options: CacheOptions<V>, deps: { clock: HybridClock; replicator?: Replicator; nodeId: bigint }) {
    if (typeof name !== 'string' || utf8.encode(name).length > 255) {
      throw new McCacheError(ErrorCode.INVALID_ARGUMENT, 'name: must be a string of at most 255 UTF-8 bytes');
    }
    this.name = name;
    const o = options ?? {};
    this.#max = intOpt('max', o.max, DEFAULTS.max);
    this.#maxSize = intOpt('maxSize', o.maxSize, DEFAULTS.maxSize);
    if (o.sizeCalculation !== undefined && typeof o.sizeCalculation !== 'function') {
      throw new McCacheError(ErrorCode.INVALID_OPTION, 'sizeCalculation: must be a function (value, key) => number');
    }
    this.#sizeOf = o.sizeCalculation;
    this.#ttl = intOpt('ttl', o.ttl, DEFAULTS.ttl);
    if (o.mode !== undefined && o.mode !== 0 && o.mode !== 1) throw new McCacheError(ErrorCode.INVALID_OPTION, `mode: must be 0 or 1, got ${String(o.mode)}`);
    this.#mode = o.mode ?? DEFAULTS.mode;
    this.#callbackWindow = intOpt('callbackWindow', o.callbackWindow, DEFAULTS.callbackWindow);
    if (o.callback !== undefined && typeof o.callback !== 'function') throw new McCacheError(ErrorCode.INVALID_OPTION, 'callback: must be a function');
    this.#callback = o.callback;
    this.#tombstoneTtl = intOpt('tombstoneTtl', o.tombstoneTtl, DEFAULTS.tombstoneTtl);
    if (o.now !== undefined && typeof o.now !== 'function') throw new McCacheError(ErrorCode.INVALID_OPTION, 'now: must be a function returning ms');
    this.#now = o.now ?? (() => performance.now());
    this.#clock = deps.clock;
    this.#replicator = deps.replicator;
    this.#nodeId = deps.nodeId;
  }

  // --- Map-like API ---------------------------------------------------------------------------

  get size(): number {
    this.#purgeStale();
    return this.#map.size;
  }

  get(key: string): V | undefined {
    const e = this.#map.get(key);
    if (e === undefined) {
      this.#m.misses++;
      return undefined;
    }
    const now = this.#now();
    if (e.expiresAt <= now) {
      this.#evict(e, 'ttl');
      this.#m.misses++;
      return undefined;
    }
    this.#m.hits++;
    e.lastLookupAt = now;
    if (e !== this.#tail) this.#moveToTail(e);
    return e.value;
  }

  /** Like get, without touching recency or lookup time. */
  peek(key: string): V | undefined {
    const e = this.#map.get(key);
    if (e === undefined || e.expiresAt <= this.#now()) return undefined;
    return e.value;
  }

  has(key: string): boolean {
    const e = this.#map.get(key);
    if (e === undefined) return false;
    if (e.expiresAt <= this.#now()) {
      this.#evict(e, 'ttl');
      return false;
    }
    return true;
  }

  /**
   * Stores `value` and replicates it. Throws (and changes nothing) for a non-string key, an
   * unencodable value, or one too large for 255 fragments (MCCACHE_ERR_VALUE_TOO_LARGE).
   * Setting `undefined` deletes the key, as in lru-cache.
   */
  set(key: string, value: V, options?: { ttl?: number }): this {
    this.#assertOpen();
    checkKey(key);
    if (value === undefined) {
      this.delete(key);
      return this;
    }
    const ttl = options?.ttl === undefined ? this.#ttl : intOpt('ttl', options.ttl, 0);
    const { codec, bytes } = encodeValue(value);
    if (this.#replicator) {
      // Body = name(1+n) + key(2+k) + hlc 8 + ttl 4 + codec 1 + len 4 + value.
      const body = 20 + utf8.encode(this.name).length + utf8.encode(key).length + bytes.length;
      const limit = this.#replicator.maxMessageSize;
      if (body > limit) {
        throw new McCacheError(ErrorCode.VALUE_TOO_LARGE,
          `set(${JSON.stringify(key)}): the encoded value is ${bytes.length} bytes; with its key it needs ${body} bytes, and a message holds at most ${limit} bytes (255 fragments at this packetMtu)`);
      }
    }
    const size = this.#sizeFor(value, key, bytes);
    const hlc = this.#clock.now();
    this.#store(key, value, codec, bytes, hlc, this.#nodeId, ttl, size);
    this.#m.sets++;
    this.#replicator?.publish({ op: 'put', cache: this.name, key, hlc, ttl, codec, value: bytes });
    return this;
  }

  /** Removes `key` here and on every member; returns whether it was present here. */
  delete(key: string): boolean {
    this.#assertOpen();
    checkKey(key);
    const e = this.#map.get(key);
    const present = e !== undefined && e.expiresAt > this.#now();
    if (e) this.#unlink(e);
    const hlc = this.#clock.now();
    this.#tombstones.set(key, { hlc, origin: this.#nodeId, expiresAt: this.#now() + this.#tombstoneTtl });
    this.#m.deletes++;
    this.#replicator?.publish({ op: 'delete', cache: this.name, key, hlc });
    return present;
  }

  /** Empties this cache here and on every member. */
  clear(): void {
    this.#assertOpen();
    const hlc = this.#clock.now();
    this.#clearOlderThan({ hlc, node: this.#nodeId });
    this.#m.clears++;
    this.#replicator?.publish({ op: 'clear', cache: this.name, hlc });
  }

  *keys(): IterableIterator<string> {
    for (const e of this.#live()) yield e.key;
  }
  *values(): IterableIterator<V> {
    for (const e of this.#live()) yield e.value;
  }
  *entries(): IterableIterator<[string, V]> {
    for (const e of this.#live()) yield [e.key, e.value];
  }
  [Symbol.iterator](): IterableIterator<[string, V]> {
    return this.entries();
  }
  forEach(fn: (value: V, key: string, cache: this) => void, thisArg?: unknown): void {
    for (const e of this.#live()) fn.call(thisArg, e.value, e.key, this);
  }
  get [Symbol.toStringTag](): string {
    return 'McCache';
  }

  // --- McCache extras ---------------------------------------------------------------------------

  metadata(key: string): EntryMetadata | undefined {
    const e = this.#map.get(key);
    if (e === undefined || e.expiresAt <= this.#now()) return undefined;
    return {
      version: { hlc: e.hlc, node: e.origin }, origin: e.origin, writtenAt: Number(e.hlc >> 16n),
      createdAt: e.createdAt, updatedAt: e.updatedAt, lastLookupAt: e.lastLookupAt < 0 ? undefined : e.lastLookupAt,
      expiresAt: e.expiresAt === NEVER ? undefined : e.expiresAt, size: e.size, codec: e.codec,
      checksum: createHash('sha256').update(e.bytes).digest('hex'),
    };
  }

  metrics(): CacheMetrics {
    this.#purgeStale();
    return { name: this.name, size: this.#map.size, calculatedSize: this.#calculatedSize, tombstones: this.#tombstones.size,
      ...this.#m, evictions: { ...this.#m.evictions } };
  }

  /**
   * SHA-256 (hex) over the live entries sorted by key, each as the UTF-8 line
   * `key \t hlc \t origin \t sha256(value bytes) \n` (decimal numbers): language-neutral, equal
   * on members holding the same entries.
   */
  checksum(): string {
    const lines = [...this.#live()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .map((e) => `${e.key}\t${e.hlc}\t${e.origin}\t${createHash('sha256').update(e.bytes).digest('hex')}\n`);
    return createHash('sha256').update(lines.join('')).digest('hex');
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

  /** Applies a replicated put/del/clear written by node `from`. Never throws for a peer's content. */
  applyRemote(message: Message, from: bigint): void {
    if (this.#closed) return;
    switch (message.op) {
      case 'put': {
        this.#clock.observe(message.hlc);
        const v: Version = { hlc: message.hlc, node: from };
        this.#applyPut(message.key, v, message.codec, message.value, message.ttl);
        break;
      }
      case 'delete': {
        this.#clock.observe(message.hlc);
        this.#applyDelete(message.key, { hlc: message.hlc, node: from });
        break;
      }
      case 'clear': {
        this.#clock.observe(message.hlc);
        const v = { hlc: message.hlc, node: from };
        if (compareVersions(v, this.#cleared) > 0) {
          this.#clearOlderThan(v);
          this.#m.remoteApplies++;
          this.#events.emit('remote-clear', { cache: this.name, version: v });
        } else {
          this.#m.conflicts++;
        }
        break;
      }
      default:
        break;
    }
  }

  /** The newest version this cache knows for `key` (entry or tombstone), for anti-entropy. */
  versionOf(key: string): Version | undefined {
    const e = this.#map.get(key);
    if (e) return { hlc: e.hlc, node: e.origin };
    const t = this.#tombstones.get(key);
    return t ? { hlc: t.hlc, node: t.origin } : undefined;
  }

  close(): void {
    this.#closed = true;
  }

  // --- internals --------------------------------------------------------------------------------

  #applyPut(key: string, v: Version, codec: ValueCodec, bytes: Uint8Array, ttl: number): void {
    const mine = this.versionOf(key);
    if (compareVersions(v, this.#cleared) <= 0 || (mine && compareVersions(v, mine) <= 0)) {
      this.#m.conflicts++;
      return;
    }
    const e = this.#map.get(key);
    const live = e !== undefined && e.expiresAt > this.#now();
    if (this.#mode === 0 && !live) {
      this.#m.remoteIgnored++;
      return;
    }
    let value: V;
    try {
      value = decodeValue(codec, bytes) as V;
    } catch {
      this.#m.remoteIgnored++;
      return;
    }
    const lastLookupAt = e?.lastLookupAt ?? -1;
    this.#tombstones.delete(key);
    this.#store(key, value, codec, bytes.slice(), v.hlc, v.node, ttl > 0 ? ttl : this.#ttl, this.#sizeFor(value, key, bytes));
    const stored = this.#map.get(key);
    if (stored) stored.lastLookupAt = lastLookupAt;
    this.#m.remoteApplies++;
    this.#events.emit('remote-set', { cache: this.name, key, version: v });
    this.#maybeCallback(key, 'set', value, v, lastLookupAt);
  }

  #applyDelete(key: string, v: Version): void {
    const mine = this.versionOf(key);
    if (compareVersions(v, this.#cleared) <= 0 || (mine && compareVersions(v, mine) <= 0)) {
      this.#m.conflicts++;
      return;
    }
    const e = this.#map.get(key);
    const lastLookupAt = e?.lastLookupAt ?? -1;
    if (e) this.#unlink(e);
    this.#tombstones.set(key, { hlc: v.hlc, origin: v.node, expiresAt: this.#now() + this.#tombstoneTtl });
    this.#m.remoteApplies++;
    this.#events.emit('remote-delete', { cache: this.name, key, version: v });
    if (e) this.#maybeCallback(key, 'delete', undefined, v, lastLookupAt);
  }

  #maybeCallback(key: string, op: 'set' | 'delete', value: V | undefined, version: Version, lastLookupAt: number): void {
    if (!this.#callback || this.#callbackWindow <= 0 || lastLookupAt < 0) return;
    if (this.#now() - lastLookupAt > this.#callbackWindow) return;
    this.#m.callbacks++;
    try {
      this.#callback({ cache: this.name, key, op, value, version, lastLookupAt });
    } catch {
      // A throwing user callback must not break replication.
    }
  }

  #store(key: string, value: V, codec: ValueCodec, bytes: Uint8Array, hlc: bigint, origin: bigint, ttl: number, size: number): void {
    const now = this.#now();
    const expiresAt = ttl > 0 ? now + ttl : NEVER;
    let e = this.#map.get(key);
    if (e) {
      this.#calculatedSize += size - e.size;
      Object.assign(e, { value, codec, bytes, hlc, origin, size, ttl, expiresAt, updatedAt: now });
      if (e !== this.#tail) this.#moveToTail(e);
    } else {
      e = { key, value, codec, bytes, hlc, origin, size, ttl, expiresAt, createdAt: now, updatedAt: now, lastLookupAt: -1, prev: undefined, next: undefined };
      this.#map.set(key, e);
      this.#calculatedSize += size;
      this.#linkTail(e);
    }
    this.#tombstones.delete(key);
    if (expiresAt < this.#nextExpiry) this.#nextExpiry = expiresAt;
    // Capacity eviction: least recently used first; the entry just written goes last.
    while (this.#max > 0 && this.#map.size > this.#max && this.#head && this.#head !== e) this.#evict(this.#head, 'lru');
    while (this.#maxSize > 0 && this.#calculatedSize > this.#maxSize && this.#head) this.#evict(this.#head, 'size');
  }

  #sizeFor(value: V, key: string, bytes: Uint8Array): number {
    if (!this.#sizeOf) return bytes.length + key.length;
    const n = this.#sizeOf(value, key);
    if (!Number.isInteger(n) || n < 0) throw new McCacheError(ErrorCode.INVALID_ARGUMENT, `sizeCalculation: must return a non-negative integer, got ${String(n)}`);
    if (this.#maxSize > 0 && n > this.#maxSize) {
      throw new McCacheError(ErrorCode.VALUE_TOO_LARGE, `set(${JSON.stringify(key)}): size ${n} exceeds maxSize ${this.#maxSize}`);
    }
    return n;
  }

  #clearOlderThan(v: Version): void {
    this.#cleared = v;
    for (const e of [...this.#map.values()]) if (compareVersions({ hlc: e.hlc, node: e.origin }, v) < 0) this.#unlink(e);
    for (const [k, t] of [...this.#tombstones]) if (compareVersions({ hlc: t.hlc, node: t.origin }, v) < 0) this.#tombstones.delete(k);
  }

  #evict(e: Entry<V>, reason: EvictionReason): void {
    this.#unlink(e);
    this.#m.evictions[reason]++;
    if (this.#events.listenerCount('evict') > 0) this.#events.emit('evict', { cache: this.name, key: e.key, reason });
  }

  #purgeStale(): void {
    const now = this.#now();
    if (now >= this.#nextExpiry) {
      let next = NEVER;
      for (const e of [...this.#map.values()]) {
        if (e.expiresAt <= now) this.#evict(e, 'ttl');
        else if (e.expiresAt < next) next = e.expiresAt;
      }
      this.#nextExpiry = next;
    }
    if (this.#tombstones.size > 0) {
      for (const [k, t] of this.#tombstones) if (t.expiresAt <= now) this.#tombstones.delete(k);
    }
  }

  *#live(): IterableIterator<Entry<V>> {
    this.#purgeStale();
    for (let e = this.#head; e !== undefined; e = e.next) yield e;
  }

  #unlink(e: Entry<V>): void {
    if (this.#map.get(e.key) !== e) return;
    this.#map.delete(e.key);
    this.#calculatedSize -= e.size;
    if (e.prev) e.prev.next = e.next;
    else this.#head = e.next;
    if (e.next) e.next.prev = e.prev;
    else this.#tail = e.prev;
    e.prev = e.next = undefined;
  }

  #linkTail(e: Entry<V>): void {
    e.prev = this.#tail;
    e.next = undefined;
    if (this.#tail) this.#tail.next = e;
    else this.#head = e;
    this.#tail = e;
  }

  #moveToTail(e: Entry<V>): void {
    if (e.prev) e.prev.next = e.next;
    else this.#head = e.next;
    if (e.next) e.next.prev = e.prev;
    e.prev = this.#tail;
    e.next = undefined;
    this.#tail!.next = e;
    this.#tail = e;
  }

  #assertOpen(): void {
    if (this.#closed) throw new McCacheError(ErrorCode.CLOSED, `cache ${JSON.stringify(this.name)} is closed (after shutdown())`);
  }
}

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw new McCacheError(ErrorCode.INVALID_ARGUMENT, `key: must be a string, got ${typeof key}`);
  if (key.length > 21845 && utf8.encode(key).length > 65535) {
    throw new McCacheError(ErrorCode.INVALID_ARGUMENT, 'key: at most 65535 UTF-8 bytes');
  }
}

function intOpt(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new McCacheError(ErrorCode.INVALID_OPTION, `${name}: must be a non-negative integer, got ${String(v)}`);
  }
  return v;
}
