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

const MASK64 = (1n << 64n) - 1n;
export const MAX_BUCKETS = 16384;

export function keyBucket(key: string, numBuckets: number): number {
  const d = createHash('sha256').update(key, 'utf8').digest();
  return d.readUInt32BE(0) % numBuckets;
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

export function digestOf(target: SyncTarget, numBuckets: number): Digest {
  const hashes = new Array<bigint>(numBuckets).fill(0n);
  let n = 0;
  for (const r of target.syncRecords()) {
    const b = numBuckets === 1 ? 0 : keyBucket(r.key, numBuckets);
    hashes[b] = (hashes[b]! + recordHash(r)) & MASK64;
    n++;
  }
  return { numEntries: n, clear: target.clearVersion(), hashes };
}

export interface AntiEntropyOptions {
  /** Largest encoded message body (the core's maxMessageSize). */
  maxMessageSize: number;
  /** Hashes per sync_digest datagram and ids per sync_request (one datagram each). */
  maxPerDatagram: number;
}

/** Per-process anti-entropy state: turns pulses, digests and requests into replies. */
export class AntiEntropy {
  readonly #o: AntiEntropyOptions;
  readonly #nodeId: bigint;
  /** (peer, cache) -> instant of our last digest request, so one difference asks once per pulse. */
  readonly #asked = new Map<string, number>();
  /** (peer, cache) -> bucket count of the full digest we asked that peer for. */
  readonly #awaiting = new Map<string, number>();
  readonly stats = { pulses: 0, digestsSent: 0, requestsSent: 0, entriesSent: 0, entriesApplied: 0, clearsLearnt: 0 };

  constructor(nodeId: bigint, options: AntiEntropyOptions) {
    this.#nodeId = nodeId;
    this.#o = options;
  }

  /** The root digests to multicast for a pulse. */
  pulse(targets: Iterable<SyncTarget>): Message[] {
    this.stats.pulses++;
    const out: Message[] = [];
    for (const t of targets) {
      if (t.mode !== 1) continue; // mode 0 members hold different key sets by design
      const d = digestOf(t, 1);
      out.push(digestMessage(t.name, d, 1, 0, d.hashes));
    }
    this.stats.digestsSent += out.length;
    return out;
  }

  /**
   * A digest chunk from `from`. Returns what to send: a request for its full digest (root
   * differs), or for the buckets that differ (a chunk of the full digest). `now` and
   * `minInterval` keep one difference from asking more than once per interval.
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
      const key = `${from}/${m.cache}`;
      const last = this.#asked.get(key);
      if (last !== undefined && now - last < minInterval) return [];
      this.#asked.set(key, now);
      if (this.#asked.size > 4096) this.#asked.delete(this.#asked.keys().next().value!);
      if (this.#awaiting.size > 4096) this.#awaiting.delete(this.#awaiting.keys().next().value!);
      const b = bucketsFor(Math.max(m.numEntries, mine.numEntries));
      this.stats.requestsSent++;
      // A small cache is one bucket: ask for its entries at once.
      if (b === 1) return [{ op: 'sync_request', target: from, cache: m.cache, numBuckets: 1, bucketIds: [0] }];
      this.#awaiting.set(key, b);
      return [{ op: 'sync_request', target: from, cache: m.cache, numBuckets: b, bucketIds: [] }];
    }
    // Full-digest chunks are multicast; only the member that asked for them acts on them, or
    // every member would request the same buckets.
    if (m.numBuckets > MAX_BUCKETS || this.#awaiting.get(`${from}/${m.cache}`) !== m.numBuckets) return [];
    const mine = digestOf(target, m.numBuckets);
    const differ: number[] = [];
    m.hashes.forEach((h, i) => {
      const b = m.firstBucket + i;
      if (mine.hashes[b] !== h) differ.push(b);
    });
    const out: Message[] = [];
    for (let i = 0; i < differ.length; i += this.#o.maxPerDatagram) {
      out.push({ op: 'sync_request', target: from, cache: m.cache, numBuckets: m.numBuckets, bucketIds: differ.slice(i, i + this.#o.maxPerDatagram) });
    }
    this.stats.requestsSent += out.length;
    return out;
  }

  /** A request addressed to us: our digest chunks, or our entries of the requested buckets. */
  handleRequest(from: bigint, m: MessageOf<'sync_request'>, target: SyncTarget | undefined): Message[] {
    if (m.target !== this.#nodeId || !target || m.numBuckets < 1 || m.numBuckets > MAX_BUCKETS) return [];
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
    for (const r of target.syncRecords()) {
      if (wanted.has(keyBucket(r.key, m.numBuckets))) {
        entries.push({ key: r.key, hlc: r.hlc, originId: r.origin, kind: r.kind, ttl: r.ttl, codec: r.codec, value: r.value });
      }
    }
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
