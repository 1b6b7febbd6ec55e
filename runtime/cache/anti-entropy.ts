/**
 * Theory of operation
 * -------------------
 * Anti-entropy (DESIGN.md §5): the safety net under the reliable core. Whatever a member missed
 * (messages given up after a long partition, writes from before it joined, a restart), the
 * periodic pulse finds and repairs, newest version wins. Pure logic: the node sends what these
 * functions return and feeds them what arrives.
 *
 *   pulse            every member multicasts, per cache, a ROOT digest: one 64-bit hash over
 *                    all its entries and tombstones, the entry count and its clear version.
 *   root differs     the receiver asks that member (sync_request with no bucket ids) for its
 *                    full digest at B buckets, B from the larger entry count (about 8 entries
 *                    per bucket, a power of two, at most 16,384).
 *   digest chunk     the receiver compares bucket by bucket and asks (sync_request with
 *                    bucket ids) for the buckets that differ.
 *   bucket request   the member answers with its entries and tombstones of those buckets
 *                    (sync_entries, sequenced: reliable and fragmentable), which every member
 *                    applies by version.
 *
 * Both directions repair: A's pulse lets B pull from A, B's pulse lets A pull from B. An idle,
 * coherent cluster costs one small datagram per cache per member per pulse; a difference costs
 * a digest (8 bytes per bucket) plus the entries of the differing buckets, so repair traffic
 * follows the difference, not the cache size.
 *
 * Hashes are language-neutral (SHA-256 based; spec/README.md "Anti-entropy"):
 *   bucket(key)  = first 4 bytes of SHA-256(utf8(key)), big-endian, mod B
 *   entry hash   = first 8 bytes of SHA-256(utf8(key) 00 hlc(8) origin(8) kind(1)), big-endian
 *   bucket hash  = sum of its entries' hashes mod 2^64
 * A clear is carried as the digest's clear version (a cleared cache has no entries to send).
 *
 * Cost (bench/anti-entropy.bench.ts): every digest and every bucket request walks the cache.
 *  - A record's hashes depend only on its key and version, so they are computed once per
 *    version and kept per cache (`RecordHashes`), not twice SHA-256 per record per walk: a walk of
 *    100,000 entries costs tens of ms instead of ~280 ms (root) to ~520 ms (16,384 buckets).
 *  - A full digest arrives in up to 118 chunks; the member that asked compares them all with
 *    one digest of its own, computed at the first chunk of that answer (a snapshot: a difference
 *    it misses is found at the next pulse; what it asks for in excess is applied by version,
 *    changing nothing).
 *  - It asks for differing buckets in full requests, not one request per chunk, and a member
 *    with no entries asks for everything in one request (see handleDigest).
 */
import { createHash } from 'node:crypto';
import type { Message, MessageOf, SyncEntry, ValueCodec } from '../codec/packet';
import { compareVersions, type Version } from './hlc';

/** One entry or tombstone as anti-entropy sees it. */
export interface SyncRecord {
  key: string;
  hlc: bigint;
  origin: bigint;
  kind: 'value' | 'tombstone';
  /** Remaining time to live, ms, 0 for none. */
  ttl: number;
  codec: ValueCodec;
  value: Uint8Array;
}

/** What anti-entropy needs from a cache (Cache implements it). */
export interface SyncTarget {
  readonly name: string;
  readonly mode: 0 | 1;
  syncRecords(): Iterable<SyncRecord>;
  clearVersion(): Version;
  /** Applies a repaired entry or tombstone by version; returns whether it changed anything. */
  applySync(entry: SyncEntry): boolean;
  /** Applies a clear learnt from a digest. */
  applyClear(version: Version): void;
}

export const MAX_BUCKETS = 16384;

/** First 4 bytes of SHA-256(utf8(key)), big-endian: the key's bucket at any count is this mod B. */
function keyHash32(key: string): number {
  return createHash('sha256').update(key, 'utf8').digest().readUInt32BE(0);
}

export function keyBucket(key: string, numBuckets: number): number {
  return keyHash32(key) % numBuckets;
}

export function recordHash(r: Pick<SyncRecord, 'key' | 'hlc' | 'origin' | 'kind'>): bigint {
  const tail = Buffer.alloc(18);
  tail.writeBigUInt64BE(r.hlc, 1);
  tail.writeBigUInt64BE(r.origin, 9);
  tail[17] = r.kind === 'value' ? 1 : 2;
  return createHash('sha256').update(r.key, 'utf8').update(tail).digest().readBigUInt64BE(0);
}

/** Buckets for a cache of `n` entries: about 8 per bucket, a power of two in 1..MAX_BUCKETS. */
export function bucketsFor(n: number): number {
  let b = 1;
  while (b < MAX_BUCKETS && b * 8 < n) b *= 2;
  return b;
}

export interface Digest {
  numEntries: number;
  clear: Version;
  hashes: bigint[];
}

/**
 * One cache's record hashes by key, kept from one walk to the next and recomputed only for a key
 * whose version or kind changed; keys gone from the cache are forgotten at the end of a walk.
 * Parallel arrays indexed by a slot per key: about 60 bytes per key (an object per key: 166).
 */
class RecordHashes {
  readonly #slots = new Map<string, number>();
  readonly #free: number[] = [];
  #used = 0;
  #pass = 0;
  #keyHash = new Uint32Array(64);
  /** The entry hash's high and low 32 bits (sums of numbers cost far less than of bigints). */
  #hi = new Uint32Array(64);
  #lo = new Uint32Array(64);
  #seen = new Uint32Array(64);
  #kind = new Uint8Array(64);
  readonly #hlc: bigint[] = [];
  readonly #origin: bigint[] = [];

  /** Calls `fn` with each record and its hashes; returns the record count. */
  forEach(records: Iterable<SyncRecord>, fn: (r: SyncRecord, keyHash: number, hi: number, lo: number) => void): number {
    const pass = ++this.#pass;
    let n = 0;
    for (const r of records) {
      const kind = r.kind === 'value' ? 1 : 2;
      let s = this.#slots.get(r.key);
      if (s === undefined) {
        s = this.#free.pop() ?? this.#alloc();
        this.#slots.set(r.key, s);
        this.#keyHash[s] = keyHash32(r.key);
        this.#set(s, r, kind);
      } else if (this.#hlc[s] !== r.hlc || this.#origin[s] !== r.origin || this.#kind[s] !== kind) {
        this.#set(s, r, kind);
      }
      this.#seen[s] = pass;
      fn(r, this.#keyHash[s]!, this.#hi[s]!, this.#lo[s]!);
      n++;
    }
    if (this.#slots.size > n) {
      for (const [key, s] of this.#slots) {
        if (this.#seen[s] === pass) continue;
        this.#slots.delete(key);
        this.#free.push(s);
      }
    }
    return n;
  }

  #set(s: number, r: SyncRecord, kind: number): void {
    const h = recordHash(r);
    this.#hi[s] = Number(h >> 32n);
    this.#lo[s] = Number(h & 0xffffffffn);
    this.#hlc[s] = r.hlc;
    this.#origin[s] = r.origin;
    this.#kind[s] = kind;
  }

  #alloc(): number {
    const s = this.#used++;
    if (s >= this.#hi.length) {
      const grow = <T extends Uint32Array | Uint8Array>(a: T, make: (n: number) => T): T => {
        const b = make(a.length * 2);
        b.set(a);
        return b;
      };
      this.#keyHash = grow(this.#keyHash, (n) => new Uint32Array(n));
      this.#hi = grow(this.#hi, (n) => new Uint32Array(n));
      this.#lo = grow(this.#lo, (n) => new Uint32Array(n));
      this.#seen = grow(this.#seen, (n) => new Uint32Array(n));
      this.#kind = grow(this.#kind, (n) => new Uint8Array(n));
    }
    return s;
  }
}

/** Per target (cache): its record hashes. */
const recordHashes = new WeakMap<SyncTarget, RecordHashes>();

/** Calls `fn` with each record of `target` and its hashes (see RecordHashes); returns the count. */
function forEachHashed(target: SyncTarget, fn: (r: SyncRecord, keyHash: number, hi: number, lo: number) => void): number {
  let t = recordHashes.get(target);
  if (!t) {
    t = new RecordHashes();
    recordHashes.set(target, t);
  }
  return t.forEach(target.syncRecords(), fn);
}

const TWO32 = 2 ** 32;

export function digestOf(target: SyncTarget, numBuckets: number): Digest {
  // Sums mod 2^64 as two 32-bit halves in doubles, carried at once: exact, and no bigint per record.
  const hi = new Float64Array(numBuckets);
  const lo = new Float64Array(numBuckets);
  const n = forEachHashed(target, (_r, keyHash, h32, l32) => {
    const b = numBuckets === 1 ? 0 : keyHash % numBuckets;
    let l = lo[b]! + l32;
    let h = hi[b]! + h32;
    if (l >= TWO32) {
      l -= TWO32;
      h += 1;
    }
    if (h >= TWO32) h -= TWO32;
    lo[b] = l;
    hi[b] = h;
  });
  const hashes = new Array<bigint>(numBuckets);
  for (let b = 0; b < numBuckets; b++) hashes[b] = (BigInt(hi[b]!) << 32n) | BigInt(lo[b]!);
  return { numEntries: n, clear: target.clearVersion(), hashes };
}

export interface AntiEntropyOptions {
  /** Largest encoded message body (the core's maxMessageSize). */
  maxMessageSize: number;
  /** Hashes per sync_digest datagram and ids per sync_request (one datagram each). */
  maxPerDatagram: number;
}

/** A full digest we asked a peer for, while its chunks arrive. */
interface Awaited {
  peer: bigint;
  cache: string;
  numBuckets: number;
  /** Our digest at numBuckets, from the first chunk on (one walk per answer, not per chunk). */
  mine?: bigint[];
  /** firstBucket of the chunks seen, and how many buckets they covered. */
  chunks: Set<number>;
  covered: number;
  /** Differing buckets not asked for yet. */
  pending: number[];
}

/** Per-process anti-entropy state: turns pulses, digests and requests into replies. */
export class AntiEntropy {
  readonly #o: AntiEntropyOptions;
  /** This node's current id (a renewed identity changes it: reliable-core.ts). */
  readonly #nodeId: () => bigint;
  /** (peer, cache) -> instant of our last digest request, so one difference asks once per pulse. */
  readonly #asked = new Map<string, number>();
  /** (peer, cache) -> the full digest we asked that peer for and how far its answer got. */
  readonly #awaiting = new Map<string, Awaited>();
  readonly stats = { pulses: 0, digestsSent: 0, requestsSent: 0, entriesSent: 0, entriesApplied: 0, clearsLearnt: 0 };

  /** `nodeId`: this node's id, or a function reading its current id. */
  constructor(nodeId: bigint | (() => bigint), options: AntiEntropyOptions) {
    this.#nodeId = typeof nodeId === 'function' ? nodeId : () => nodeId;
    this.#o = options;
  }

  /**
   * The root digests to multicast for a pulse; first, the requests for differing buckets still
   * held back from answers that lost a chunk (see handleDigest).
   */
  pulse(targets: Iterable<SyncTarget>): Message[] {
    this.stats.pulses++;
    const out: Message[] = [];
    for (const a of this.#awaiting.values()) {
      out.push(...this.#requests(a, true));
      delete a.mine; // a chunk arriving this late compares with a fresh digest
    }
    const requests = out.length;
    for (const t of targets) {
      if (t.mode !== 1) continue; // mode 0 members hold different key sets by design
      const d = digestOf(t, 1);
      out.push(digestMessage(t.name, d, 1, 0, d.hashes));
    }
    this.stats.digestsSent += out.length - requests;
    return out;
  }

  /**
   * Asks `peer` for its full digest of `target` (then, as its chunks arrive, for the buckets that
   * differ): what a root-digest difference starts, started without one, when the reliable core
   * gave up messages of that peer (a `gap`) and only anti-entropy can bring them.
   */
  requestDigest(peer: bigint, target: SyncTarget, now: number): Message[] {
    if (target.mode !== 1) return [];
    const mine = digestOf(target, 1).numEntries;
    return this.#askFullDigest(peer, target.name, mine, mine, now);
  }

  /**
   * Starts an exchange with `peer` about `cache`: a request for its full digest at a bucket count
   * for the larger of the two entry counts, after the requests still held back from the previous
   * exchange with it (see handleDigest).
   */
  #askFullDigest(peer: bigint, cache: string, theirEntries: number, myEntries: number, now: number): Message[] {
    const key = `${peer}/${cache}`;
    this.#asked.set(key, now);
    if (this.#asked.size > 4096) this.#asked.delete(this.#asked.keys().next().value!);
    const previous = this.#awaiting.get(key);
    const out = previous ? this.#requests(previous, true) : [];
    this.#awaiting.delete(key);
    if (this.#awaiting.size >= 4096) this.#awaiting.delete(this.#awaiting.keys().next().value!);
    const b = bucketsFor(Math.max(theirEntries, myEntries));
    this.stats.requestsSent++;
    // A small cache is one bucket, and an empty member wants every bucket: ask for all at once.
    if (b === 1 || myEntries === 0) {
      out.push({ op: 'sync_request', target: peer, cache, numBuckets: 1, bucketIds: [0] });
      return out;
    }
    this.#awaiting.set(key, { peer, cache, numBuckets: b, chunks: new Set(), covered: 0, pending: [] });
    out.push({ op: 'sync_request', target: peer, cache, numBuckets: b, bucketIds: [] });
    return out;
  }

  /**
   * A digest chunk from `from`. Returns what to send: a request for its full digest (root
   * differs), or for the buckets that differ (chunks of the full digest). `now` and
   * `minInterval` keep one difference from asking more than once per interval.
   *
   * Differing buckets are asked for in full requests (maxPerDatagram ids) as the chunks come,
   * the rest once the answer is complete: each request costs the peer a walk of its cache, so a
   * few differing buckets per chunk must not make one request per chunk. Ids held back because
   * a chunk was lost go out at our next pulse, or when this peer's next root digest starts a new
   * exchange. A member with no entries at all asks for everything at once (one bucket): it
   * would ask for every bucket anyway.
   */
  handleDigest(from: bigint, m: MessageOf<'sync_digest'>, target: SyncTarget | undefined, now: number, minInterval: number): Message[] {
    if (!target || target.mode !== 1) return [];
    const theirs: Version = { hlc: m.clearHlc, node: m.clearOrigin };
    if (compareVersions(theirs, target.clearVersion()) > 0) {
      target.applyClear(theirs);
      this.stats.clearsLearnt++;
    }
    if (m.numBuckets === 1) {
      const mine = digestOf(target, 1);
      if (m.hashes.length === 1 && mine.hashes[0] === m.hashes[0]) return [];
      const last = this.#asked.get(`${from}/${m.cache}`);
      if (last !== undefined && now - last < minInterval) return [];
      return this.#askFullDigest(from, m.cache, m.numEntries, mine.numEntries, now);
    }
    // Full-digest chunks are multicast; only the member that asked for them acts on them, or
    // every member would request the same buckets.
    const key = `${from}/${m.cache}`;
    const a = this.#awaiting.get(key);
    if (m.numBuckets > MAX_BUCKETS || a?.numBuckets !== m.numBuckets || m.firstBucket >= m.numBuckets || a.chunks.has(m.firstBucket)) return [];
    a.chunks.add(m.firstBucket);
    a.covered += m.hashes.length;
    const mine = (a.mine ??= digestOf(target, m.numBuckets).hashes);
    m.hashes.forEach((h, i) => {
      const b = m.firstBucket + i;
      if (b < m.numBuckets && mine[b] !== h) a.pending.push(b);
    });
    const complete = a.covered >= m.numBuckets;
    if (complete) this.#awaiting.delete(key);
    return this.#requests(a, complete);
  }

  /** Requests for `a`'s held-back buckets: every full one, and with `all` the last partial one. */
  #requests(a: Awaited, all: boolean): Message[] {
    const out: Message[] = [];
    const per = this.#o.maxPerDatagram;
    while (a.pending.length >= per || (all && a.pending.length > 0)) {
      out.push({ op: 'sync_request', target: a.peer, cache: a.cache, numBuckets: a.numBuckets, bucketIds: a.pending.splice(0, per) });
    }
    this.stats.requestsSent += out.length;
    return out;
  }

  /** A request addressed to us: our digest chunks, or our entries of the requested buckets. */
  handleRequest(from: bigint, m: MessageOf<'sync_request'>, target: SyncTarget | undefined): Message[] {
    if (m.target !== this.#nodeId() || !target || m.numBuckets < 1 || m.numBuckets > MAX_BUCKETS) return [];
    if (m.bucketIds.length === 0) {
      const d = digestOf(target, m.numBuckets);
      const out: Message[] = [];
      for (let i = 0; i < d.hashes.length; i += this.#o.maxPerDatagram) {
        out.push(digestMessage(target.name, d, m.numBuckets, i, d.hashes.slice(i, i + this.#o.maxPerDatagram)));
      }
      this.stats.digestsSent += out.length;
      return out;
    }
    const wanted = new Set(m.bucketIds.filter((b) => b < m.numBuckets));
    const entries: SyncEntry[] = [];
    forEachHashed(target, (r, keyHash) => {
      if (wanted.has(keyHash % m.numBuckets)) {
        entries.push({ key: r.key, hlc: r.hlc, originId: r.origin, kind: r.kind, ttl: r.ttl, codec: r.codec, value: r.value });
      }
    });
    this.stats.entriesSent += entries.length;
    return chunkEntries(target.name, from, entries, this.#o.maxMessageSize);
  }

  /** Repaired entries, delivered reliably; applied by version. */
  handleEntries(m: MessageOf<'sync_entries'>, target: SyncTarget | undefined): void {
    if (!target) return;
    for (const e of m.entries) if (target.applySync(e)) this.stats.entriesApplied++;
  }
}

function digestMessage(cache: string, d: Digest, numBuckets: number, first: number, hashes: bigint[]): Message {
  return { op: 'sync_digest', cache, numEntries: d.numEntries, clearHlc: d.clear.hlc, clearOrigin: d.clear.node,
    numBuckets, firstBucket: first, hashes };
}

/** Splits entries into sync_entries messages that each fit `maxMessageSize` and 65535 entries. */
function chunkEntries(cache: string, replyTo: bigint, entries: SyncEntry[], maxMessageSize: number): Message[] {
  const out: Message[] = [];
  const base = 1 + Buffer.byteLength(cache) + 8 + 2;
  let batch: SyncEntry[] = [];
  let size = base;
  for (const e of entries) {
    const n = 2 + Buffer.byteLength(e.key) + 8 + 8 + 1 + 4 + 1 + 4 + e.value.length;
    if (batch.length > 0 && (size + n > maxMessageSize || batch.length === 65535)) {
      out.push({ op: 'sync_entries', cache, replyTo, entries: batch });
      batch = [];
      size = base;
    }
    if (base + n > maxMessageSize) continue; // cannot happen for entries that were writable
    batch.push(e);
    size += n;
  }
  if (batch.length > 0) out.push({ op: 'sync_entries', cache, replyTo, entries: batch });
  return out;
}
