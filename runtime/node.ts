/**
 * Theory of operation
 * -------------------
 * One McCacheNode per process (DESIGN.md §2): it owns the node id, the hybrid logical clock,
 * the transport (UDP multicast driver around the reliable core) and the named caches. It is
 * the caches' Replicator:
 *
 * - `publish` never blocks a cache: mutations go into a pending map keyed by (cache, key), and a
 *   microtask hands them to the transport in order. When the send window is full the map keeps
 *   only the newest mutation per key (last writer wins anyway, by version), and the rest go
 *   out on the transport's 'writable' event. So bounded memory never loses a write.
 *   Consecutive puts and deletes of one cache go out together as one `batch` message as long
 *   as it fits one datagram: a loop of 1,000 small sets costs a few dozen datagrams, not 1,000.
 * - Join grace: right after start nobody has answered our JOIN yet, and the reliable core keeps
 *   a message for retransmission only until every *known* member acknowledged it; with no member
 *   known it frees it at once. So writes wait (in the pending map) until the first member is
 *   heard or `joinGrace` ms have passed: a script that starts, writes and ends gets its writes
 *   repaired if a datagram is lost, instead of sending them into the void unprotected.
 * - Delivered put/del/clear messages go to the cache of that name, created on demand (with
 *   `cacheDefaults`) so a member that has not called getCache yet still holds the data when it
 *   does. Deletes and clears create it too: the cache keeps their versions (tombstone, clear
 *   version), without which an older put delivered later by another sender would resurrect
 *   the key here and nowhere else.
 * - Metrics and checksum requests are answered with replies that carry the request's sequence
 *   number (`requestSeq`); `clusterMetrics`/`clusterChecksum` collect the replies to their own
 *   request until every member answered (at most `replyWindow` ms), so concurrent requests
 *   never see each other's replies and a member hashing a large cache is waited for.
 * - `shutdown` stops the caches taking writes, hands every pending write to the transport
 *   (bounded by `flushTimeout`), and closes the transport, which waits (bounded) until every
 *   member acknowledged them, announces LEAVE and closes the socket.
 * - The node id is the transport's current one (`nodeId` is a getter). Before its sequence
 *   numbers or nonce counts run out the transport renews its sending identity
 *   (reliable-core.ts, "Identity renewal"): writes wait in the pending map meanwhile (the
 *   transport answers as for a full window) and go out under the new id; request targets,
 *   replies (collected by asker id and seq), anti-entropy and metrics follow the new id.
 *   A write made before the switch and sent after it was stamped with the old id here, while
 *   peers version it with the sender's id, the new one: on 'renewed' the caches re-stamp what
 *   is still pending (Cache.restamp), so every member holds the same version.
 *
 * Nothing here keeps a process alive on its own: the only timer outside an awaited call (the
 * join grace) is unref'd, and so are the UDP driver's socket and timer. Awaited calls
 * (shutdown, clusterMetrics, clusterChecksum) hold the process only until they resolve.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { ErrorCode, McCacheError } from './errors';
import type { Message, MessageOf, OutgoingBatchWrite, OutgoingMessage } from './codec/packet';
import type { CoreEvent, NodeId } from './core/types';
import { Cache, type CacheMetrics, type CacheOptions, type Mutation, type PublishedDelete, type PublishedPut, type Replicator } from './cache/cache';
import { HybridClock } from './cache/hlc';
import { utf8Length } from './codec/utf8';
import { scalarLength } from './codec/msgpack-scalar';
import { coarseWallNow } from './cache/coarse-clock';
import { AntiEntropy } from './cache/anti-entropy';
import { channel } from 'node:diagnostics_channel';

/** What the node needs from a transport (UdpDriver; SimTransport in tests). */
export interface NodeTransport {
  /** The current node id: a renewal of the sending identity changes it (reliable-core.ts). */
  readonly nodeId: NodeId;
  readonly writable: boolean;
  readonly core: { readonly maxMessageSize: number; readonly flushed: boolean; readonly members: NodeId[] };
  start(): Promise<void>;
  send(message: OutgoingMessage): number | undefined;
  /** `to`: only that member needs it (a unicast transport sends it to that member alone). */
  sendUnsequenced(message: Message, to?: NodeId): void;
  on(event: 'deliver', fn: (e: Extract<CoreEvent, { type: 'deliver' }>) => void): unknown;
  on(event: 'receive', fn: (e: Extract<CoreEvent, { type: 'receive' }>) => void): unknown;
  on(event: 'member-up', fn: (e: Extract<CoreEvent, { type: 'member-up' }>) => void): unknown;
  on(event: 'member-down', fn: (e: Extract<CoreEvent, { type: 'member-down' }>) => void): unknown;
  on(event: 'gap', fn: (e: Extract<CoreEvent, { type: 'gap' }>) => void): unknown;
  on(event: 'writable', fn: () => void): unknown;
  on(event: 'renewed', fn: (e: Extract<CoreEvent, { type: 'renewed' }>) => void): unknown;
  close(): Promise<void>;
  stats(): object;
}

export interface NodeOptions {
  transport: NodeTransport;
  /** Unix ms for the hybrid logical clock. @default Date.now read at most once per ms (coarseWallNow) */
  wallNow?: () => number;
  /** Options for caches created by remote writes before getCache is called. @default {} */
  cacheDefaults?: CacheOptions<unknown>;
  /**
   * Longest wait for the replies of clusterMetrics/clusterChecksum, ms; they return as soon as
   * every member answered. @default 3000
   */
  replyWindow?: number;
  /** Called with each member's metrics when a metrics request arrives (McCache logs them). */
  onMetricsRequest?: (metrics: LocalMetrics) => void;
  /** Flush pending writes synchronously in publish (simulated networks). @default false */
  syncFlush?: boolean;
  /**
   * ms after start during which writes wait for the first member to be heard (see the module
   * comment). 0 = send at once. A peer answers a JOIN within the core's nakDelay (3 ms), so
   * the wait is short whenever there is a peer. @default 0
   */
  joinGrace?: number;
  /** Longest shutdown waits for room in the send window for pending writes, ms. @default 2000 */
  flushTimeout?: number;
  /**
   * Anti-entropy pulse period, ms (runtime/cache/anti-entropy.ts). 0 = no timer: the owner calls
   * pulse() itself (simulated networks run it in virtual time). @default 0
   */
  pulse?: number;
  /**
   * Most writes waiting for room in the send window as messages. Beyond it the oldest pending
   * put that the cache still holds is spilled: only its key is kept, and it is sent from the
   * cache when there is room; beyond 8 times as many spilled keys, the oldest is shed and
   * anti-entropy repairs peers. Writes of evicted entries stay queued up to twice this bound.
   * @default 65536
   */
  maxPending?: number;
}

export interface LocalMetrics {
  nodeId: string;
  host: string;
  pid: number;
  caches: CacheMetrics[];
  transport: object;
  /** Writes not yet handed to the transport. */
  pending: number;
  /** Pending writes dropped because the transport refused them (MCCACHE_ERR_MESSAGE_TOO_LARGE). */
  dropped: number;
  /**
   * Pending puts taken out of the queue under overload and kept as keys, to be sent later from
   * the cache as it then stands (a count since start; those still waiting are in `pending`).
   */
  spilled: number;
  /**
   * Puts given up under overload: spilled ones beyond the spill bound (ever-new keys), repaired
   * by anti-entropy; and queued ones of entries evicted here beyond twice maxPending (lost).
   */
  shed: number;
  members: string[];
}

/** Node ids as McCache shows them: 16 hex digits. */
export function formatNodeId(id: NodeId): string {
  return id.toString(16).padStart(16, '0');
}

const REPLY_POLL_MS = 5;
const REPLY_QUIET_MS = 20;
/** How long bucket requests from one member are gathered before one walk answers them all. */
const SYNC_COALESCE_MS = 5;
/** Follow-up pulses after a shed backlog cleared (ms after it cleared). */
const REPAIR_PULSES_MS = [1_000, 2_000, 4_000, 8_000, 16_000, 32_000];
/**
 * Spilled writes kept, as a multiple of maxPending. A spilled write costs a key in a set (the
 * key string is the cache's own), not a message with its value, so many more fit; beyond this,
 * with ever-new keys, writes are shed and anti-entropy repairs peers.
 */
const SPILL_FACTOR = 8;
/** Queued puts #spillOne looks at for one it can spill (one the cache still holds). */
const SPILL_SCAN = 64;
/** Spilled writes turned back into messages per pass of #flush (bounds what is built at once). */
const SPILL_CHUNK = 1024;
/** ms between a `gap` and the digest requests that repair it (#repairGap). */
const GAP_REPAIR_DELAY_MS = 1000;
/** SHA-256 of nothing: Cache.checksum() of an empty cache. */
const EMPTY_CHECKSUM = createHash('sha256').digest('hex');

export class McCacheNode implements Replicator {
  /**
   * This node's current id, read from the transport: a renewal of its sending identity
   * (reliable-core.ts, "Identity renewal") changes it, and requests, replies, anti-entropy and
   * metrics follow.
   */
  get nodeId(): NodeId {
    return this.#t.nodeId;
  }
  readonly clock: HybridClock;
  readonly #t: NodeTransport;
  readonly #caches = new Map<string, Cache<unknown>>();
  /** Pending puts and deletes: per cache, per key, the newest only (see `publish`). */
  readonly #writes = new Map<string, Map<string, PublishedPut | PublishedDelete>>();
  #writesCount = 0;
  /**
   * Spilled writes: puts taken out of #writes beyond maxPending, kept as their keys only, per
   * cache, oldest first. #flush sends each from the cache as it then stands (Cache.currentPut).
   */
  readonly #spilled = new Map<string, Set<string>>();
  #spilledCount = 0;
  #spills = 0;
  readonly #maxSpilled: number;
  #maxMessageSize: number | undefined;
  /** Bucket requests being gathered (see #onReceive), by asker, bucket count and cache. */
  readonly #syncAsks = new Map<string, { from: NodeId; m: MessageOf<'sync_request'>; ids: Set<number> }>();
  #syncAskTimer: NodeJS.Timeout | undefined;
  #repairTimers: NodeJS.Timeout[] = [];
  /** Members whose messages were given up, waiting for #requestGapRepairs. */
  readonly #gapPeers = new Set<NodeId>();
  #gapTimer: NodeJS.Timeout | undefined;
  /** Other pending messages (clears, replies, sync entries), by a key that coalesces repeats. */
  readonly #pending = new Map<string, Message>();
  readonly #cacheDefaults: CacheOptions<unknown>;
  readonly #replyWindow: number;
  readonly #onMetricsRequest: ((m: LocalMetrics) => void) | undefined;
  readonly #syncFlush: boolean;
  readonly #joinGrace: number;
  readonly #flushTimeout: number;
  /**
   * Reply collectors by `asker id:request seq`: a renewed identity numbers its messages from 1
   * again, so a seq alone could name a request of the old identity.
   */
  readonly #replies = new Map<string, (from: NodeId, m: Message) => void>();
  #flushScheduled = false;
  #flushing = false;
  #state: 'new' | 'open' | 'closing' | 'closed' = 'new';
  #started: Promise<void> | undefined;
  #startFailed = false;
  #shutdown: Promise<void> | undefined;
  /** True once a member was heard or the join grace ran out: writes may go out. */
  #joined = false;
  #graceTimer: NodeJS.Timeout | undefined;
  #gaps = 0;
  #dropped = 0;
  readonly #pulse: number;
  #pulseTimer: NodeJS.Timeout | undefined;
  #ae: AntiEntropy | undefined;
  #syncSeq = 0;
  #shed = 0;
  #shedUnrepaired = false;
  readonly #maxPending: number;
  /** Writes #flush is gathering into one message (reused: no allocation per flush). */
  readonly #group = { cache: '', size: 0, keys: [] as string[], writes: [] as OutgoingBatchWrite[], writesOfCache: new Map<string, PublishedPut | PublishedDelete>() };

  constructor(options: NodeOptions) {
    this.#t = options.transport;
    this.clock = new HybridClock(options.wallNow ?? coarseWallNow);
    this.#cacheDefaults = options.cacheDefaults ?? {};
    this.#replyWindow = nonNegative('replyWindow', options.replyWindow, 3000);
    this.#onMetricsRequest = options.onMetricsRequest;
    this.#syncFlush = options.syncFlush ?? false;
    this.#joinGrace = nonNegative('joinGrace', options.joinGrace, 0);
    this.#flushTimeout = nonNegative('flushTimeout', options.flushTimeout, 2000);
    this.#joined = this.#joinGrace === 0;
    this.#pulse = nonNegative('pulse', options.pulse, 0);
    this.#maxPending = nonNegative('maxPending', options.maxPending, 65536);
    this.#maxSpilled = SPILL_FACTOR * this.#maxPending;
    this.#t.on('deliver', (e) => this.#onDeliver(e.from, e.seq, e.message));
    this.#t.on('receive', (e) => this.#onReceive(e.from, e.message));
    this.#t.on('member-up', (e) => {
      this.#join();
      publish(CH.memberUp, () => ({ nodeId: e.nodeId, host: e.host }));
      // A newcomer learns the cluster's entries from digests: offer ours soon (bootstrap).
      if (this.#pulse > 0) setTimeout(() => this.pulse(), 20 + Math.random() * 80).unref();
    });
    this.#t.on('member-down', (e) => publish(CH.memberDown, () => ({ nodeId: e.nodeId, reason: e.reason })));
    this.#t.on('gap', (e) => {
      this.#gaps++;
      publish(CH.gap, () => ({ from: e.from, first: e.first, last: e.last }));
      this.#repairGap(e.from);
    });
    this.#t.on('writable', () => this.#flush());
    // `nodeId` reads the transport, so it follows by itself; what waits to be sent was stamped
    // with the old id and goes out under the new one: re-stamped, as the peers will version it.
    this.#t.on('renewed', (e) => {
      for (const [name, writes] of this.#writes) {
        const c = this.#caches.get(name);
        if (c) for (const w of writes.values()) c.restamp(w.key, w.hlc, e.oldId, e.newId);
      }
      // Spilled writes are unsent writes too: their entries' current versions, if still ours.
      for (const [name, keys] of this.#spilled) {
        const c = this.#caches.get(name);
        if (!c) continue;
        for (const k of keys) {
          const v = c.versionOf(k);
          if (v) c.restamp(k, v.hlc, e.oldId, e.newId);
        }
      }
      for (const m of this.#pending.values()) {
        if (m.op === 'clear') this.#caches.get(m.cache)?.restamp(undefined, m.hlc, e.oldId, e.newId);
      }
      publish(CH.renewed, () => ({ oldId: e.oldId, newId: e.newId, reason: e.reason }));
    });
  }

  /** Opens the transport (socket, JOIN). Writes before it finishes are queued, not lost. */
  start(): Promise<void> {
    this.#started ??= (async () => {
      try {
        await this.#t.start();
      } catch (err) {
        this.#startFailed = true;
        throw err;
      }
      if (this.#state !== 'new') return; // shutdown() came first
      this.#state = 'open';
      if (!this.#joined) {
        this.#graceTimer = setTimeout(() => this.#join(), this.#joinGrace);
        this.#graceTimer.unref();
      }
      this.#flush();
      if (this.#pulse > 0) {
        this.#pulseTimer = setInterval(() => this.pulse(), this.#pulse);
        this.#pulseTimer.unref();
      }
    })();
    return this.#started;
  }

  /**
   * One anti-entropy pulse: multicasts a root digest per cache (mode 1); members that differ
   * pull what they miss. Runs every `pulse` ms; also callable directly (tests, virtual time).
   * Publishes this node's metrics on the `mccache:metrics` diagnostics channel.
   */
  pulse(): void {
    if (this.#state !== 'open') return;
    for (const m of this.#antiEntropy().pulse(this.#caches.values())) this.#sendControl(m);
    publish(CH.metrics, () => this.localMetrics());
  }

  /** Anti-entropy counters (pulses, digests, requests, entries sent and applied, clears learnt). */
  get antiEntropyStats(): AntiEntropy['stats'] {
    return { ...this.#antiEntropy().stats };
  }

  #antiEntropy(): AntiEntropy {
    if (!this.#ae) {
      const max = this.#t.core.maxMessageSize;
      // One unsequenced datagram: room for the header, a sealed fragment and a 255-byte name.
      const perDatagram = Math.max(1, Math.min(1024, Math.floor((max / 255 - 28 - 300) / 8)));
      // The id as a function: a renewal changes it, and sync requests are addressed to the new one.
      this.#ae = new AntiEntropy(() => this.nodeId, { maxMessageSize: max, maxPerDatagram: perDatagram });
    }
    return this.#ae;
  }

  #sendControl(m: Message, to?: NodeId): void {
    try {
      this.#t.sendUnsequenced(m, to);
    } catch {
      this.#dropped++; // best effort: the next pulse asks again
    }
  }

  get maxMessageSize(): number {
    // Fixed by the core's packetMtu and sealer; every set asks.
    return this.#maxMessageSize ??= this.#t.core.maxMessageSize;
  }

  get members(): NodeId[] {
    return this.#t.core.members;
  }

  /** The cache of that name, created with `options` the first time. */
  cache<V>(name: string, options?: CacheOptions<V>): Cache<V> {
    let c = this.#caches.get(name);
    if (!c) {
      if (this.#state === 'closing' || this.#state === 'closed') throw new McCacheError(ErrorCode.CLOSED, 'getCache: shutdown() was called');
      c = new Cache<unknown>(name, { ...this.#cacheDefaults, ...(options as CacheOptions<unknown>) },
        { clock: this.clock, replicator: this, nodeId: this.nodeId });
      this.#caches.set(name, c);
    }
    return c as Cache<V>;
  }

  get caches(): ReadonlyMap<string, Cache<unknown>> {
    return this.#caches;
  }

  publish(message: Mutation): void {
    if (message.op === 'put' || message.op === 'delete') {
      // Per cache, keyed by the key itself: no composite key string to build per write.
      let writes = this.#writes.get(message.cache);
      if (!writes) this.#writes.set(message.cache, writes = new Map());
      // Re-inserting moves a key behind the others: the newest mutation of a key goes out last.
      if (!writes.delete(message.key)) this.#writesCount++;
      writes.set(message.key, message);
      if (this.#spilledCount > 0 && this.#spilled.get(message.cache)?.delete(message.key)) this.#spilledCount--;
      if (this.#writesCount + this.#pending.size > this.#maxPending) this.#spillOne();
      this.#scheduleFlush();
    } else {
      this.#enqueue(`c${(message as { cache: string }).cache}`, message);
    }
  }

  /**
   * The cache evicts `key` for room: if its write was spilled (kept as the key only), it is
   * queued now, from the entry as it still stands, so that the local eviction does not take the
   * write away from the peers as well. (It may take the queue beyond maxPending: by at most the
   * spilled writes, which are bounded.)
   */
  evicting(cache: string, key: string): void {
    if (this.#spilledCount === 0 || !this.#spilled.get(cache)?.delete(key)) return;
    this.#spilledCount--;
    // Nothing to queue when the entry is not ours any more: the newer version's writer sends it.
    // Not flushed from here, in the middle of the cache's write: spilled writes exist only while
    // the send window is full, and its next room flushes the queue (as the write that made this
    // eviction does when it is published).
    this.#queueFromCache(cache, key);
  }

  /**
   * Queues the put of a spilled `key`, read back from its cache as it stands; false when the
   * cache holds nothing of ours to send for it. (A key is never queued and spilled at once:
   * publish takes it out of the spilled set, #spillOne out of the queue.)
   */
  #queueFromCache(cache: string, key: string): boolean {
    const put = this.#caches.get(cache)?.currentPut(key);
    if (!put) return false;
    let writes = this.#writes.get(cache);
    if (!writes) this.#writes.set(cache, writes = new Map());
    if (!writes.has(key)) {
      writes.set(key, put);
      this.#writesCount++;
    }
    return true;
  }

  /** Writes not yet handed to the transport (join grace, or waiting for room in the send window). */
  get pending(): number {
    return this.#writesCount + this.#spilledCount + this.#pending.size;
  }

  /** True when nothing is pending and every member acknowledged everything sent. */
  get quiescent(): boolean {
    return this.pending === 0 && this.#t.core.flushed;
  }

  localMetrics(): LocalMetrics {
    return {
      nodeId: formatNodeId(this.nodeId), host: hostname(), pid: process.pid,
      caches: [...this.#caches.values()].map((c) => c.metrics()),
      transport: { ...this.#t.stats(), gapsReported: this.#gaps }, pending: this.pending, spilled: this.#spills, shed: this.#shed, dropped: this.#dropped,
      members: this.#t.core.members.map(formatNodeId),
    };
  }

  /** Local checksum per cache (Cache.checksum). */
  localChecksum(name?: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [n, c] of this.#caches) if (name === undefined || n === name) out[n] = c.checksum();
    return out;
  }

  /** Asks every member for its metrics (they log them, as McCache does) and collects replies. */
  async clusterMetrics(): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = { [formatNodeId(this.nodeId)]: this.localMetrics() };
    await this.#ask({ op: 'metrics_request', target: 0n }, (from, m) => {
      if (m.op !== 'metrics_reply') return;
      try {
        out[formatNodeId(from)] = JSON.parse(new TextDecoder().decode(m.report));
      } catch {
        // a member's unreadable report is skipped
      }
    });
    return out;
  }

  /**
   * Every member's checksum of `name` (all caches when empty), keyed by node id. A member that
   * holds no cache of that name answers the checksum of an empty cache (it holds no entry).
   */
  async clusterChecksum(name = ''): Promise<Record<string, Record<string, string>>> {
    const out: Record<string, Record<string, string>> = { [formatNodeId(this.nodeId)]: this.localChecksum(name || undefined) };
    if (name !== '') out[formatNodeId(this.nodeId)]![name] ??= EMPTY_CHECKSUM;
    await this.#ask({ op: 'checksum_request', target: 0n, cache: name }, (from, m) => {
      if (m.op !== 'checksum_reply') return;
      (out[formatNodeId(from)] ??= {})[m.cache] = Buffer.from(m.checksum).toString('hex');
    });
    return out;
  }

  /**
   * Stops the caches taking writes (MCCACHE_ERR_CLOSED; reads still work), hands every pending
   * write to the transport, and closes it: it waits (bounded) until members acknowledged them,
   * announces LEAVE and closes the socket. Idempotent.
   */
  shutdown(): Promise<void> {
    this.#shutdown ??= (async () => {
      const started = this.#started !== undefined && await this.#started.then(() => true, () => false);
      this.#state = 'closing';
      for (const c of this.#caches.values()) c.close();
      if (started) {
        // Ref'd sleeps: at process exit nothing else keeps the loop alive while we finish.
        const deadline = performance.now() + this.#flushTimeout;
        // Pending writes deserve a peer to protect them (join grace); no writes, no wait.
        while (!this.#joined && this.pending > 0 && performance.now() < deadline) await sleep(REPLY_POLL_MS);
        this.#join();
        while (this.pending > 0 && performance.now() < deadline) {
          this.#flush();
          if (this.pending > 0) await sleep(REPLY_POLL_MS);
        }
      }
      clearTimeout(this.#graceTimer);
      clearInterval(this.#pulseTimer);
      clearTimeout(this.#syncAskTimer);
      clearTimeout(this.#gapTimer);
      for (const t of this.#repairTimers) clearTimeout(t);
      await this.#t.close();
      this.#state = 'closed';
    })();
    return this.#shutdown;
  }

  // -------------------------------------------------------------------------------------------

  /** Queues a message other than a put or delete (clear, replies, sync entries) under `key`. */
  #enqueue(key: string, message: Message): void {
    this.#pending.delete(key);
    this.#pending.set(key, message);
    this.#scheduleFlush();
  }

  /**
   * Bounded memory under sustained overload: takes the oldest pending put (of the cache written
   * longest ago) out of the queue and keeps only its key, to be sent from the cache when there is
   * room (#flush). Beyond the spill bound (ever-new keys), the oldest spilled write is shed: its
   * value stays in the local cache and peers pull it at the next anti-entropy pulse. A delete is
   * never taken out: keeping it costs no more than one entry per key.
   */
  #spillOne(): void {
    // Only a put the cache still holds can be spilled: a key is all that is kept, and the put
    // is read back from the cache when it is sent. One whose entry was evicted (or replaced)
    // stays queued, unless the queue has reached twice its bound: then the oldest goes anyway,
    // given up (counted as shed; anti-entropy cannot bring back what no member holds).
    const force = this.#writesCount + this.#pending.size >= 2 * this.#maxPending;
    let scanned = 0;
    for (const [cache, writes] of this.#writes) {
      const c = this.#caches.get(cache);
      for (const [k, m] of writes) {
        if (m.op !== 'put') continue;
        const held = c?.holds(k, m.hlc) ?? false;
        if (!held && !force) {
          if (++scanned >= SPILL_SCAN) return;
          continue;
        }
        writes.delete(k);
        this.#writesCount--;
        if (!held) {
          this.#shed++;
          this.#shedUnrepaired = true;
          return;
        }
        let keys = this.#spilled.get(cache);
        if (!keys) this.#spilled.set(cache, keys = new Set());
        if (!keys.has(k)) {
          keys.add(k);
          this.#spilledCount++;
        }
        this.#spills++;
        if (this.#spilledCount > this.#maxSpilled) this.#shedOne();
        return;
      }
    }
  }

  /** Drops the oldest spilled write: anti-entropy repairs it (see #flush). */
  #shedOne(): void {
    for (const [cache, keys] of this.#spilled) {
      for (const k of keys) {
        keys.delete(k);
        if (keys.size === 0) this.#spilled.delete(cache);
        this.#spilledCount--;
        this.#shed++;
        this.#shedUnrepaired = true;
        return;
      }
    }
  }

  /**
   * Turns up to SPILL_CHUNK spilled writes back into queued puts, from the cache as it stands;
   * true when any was taken (a key with nothing of ours to send any more is just forgotten).
   */
  #unspill(): boolean {
    let budget = SPILL_CHUNK;
    let taken = false;
    for (const [cache, keys] of this.#spilled) {
      for (const k of keys) {
        if (budget-- <= 0) return taken;
        keys.delete(k);
        this.#spilledCount--;
        taken = true;
        // Nothing to send: usually deleted, expired, evicted or overwritten meanwhile; but a
        // renewed identity also leaves older entries under its former id: let anti-entropy
        // check (#flush).
        if (!this.#queueFromCache(cache, k)) this.#shedUnrepaired = true;
      }
      this.#spilled.delete(cache);
    }
    return taken;
  }

  /**
   * Messages of `from` were given up (a `gap`): ask it for its digests a moment later, so what
   * they carried comes by anti-entropy now rather than at the next periodic pulse (5 minutes by
   * default). Measured before: after 30 s at twice the sustainable rate, in 1 of 3 runs the
   * members still differed 60 s after the stop (bench/overload.bench.ts). The delay lets an
   * overloaded sender catch up first; gaps of one burst share one request per cache.
   */
  #repairGap(from: NodeId): void {
    if (this.#state !== 'open') return;
    this.#gapPeers.add(from);
    if (this.#syncFlush) {
      this.#requestGapRepairs();
    } else if (this.#gapTimer === undefined) {
      this.#gapTimer = setTimeout(() => this.#requestGapRepairs(), GAP_REPAIR_DELAY_MS);
      this.#gapTimer.unref();
    }
  }

  #requestGapRepairs(): void {
    this.#gapTimer = undefined;
    if (this.#state !== 'open') return;
    const members = new Set(this.#t.core.members);
    const ae = this.#antiEntropy();
    for (const peer of this.#gapPeers) {
      if (!members.has(peer)) continue; // gone: it can no longer answer (it is repaired when it returns)
      for (const c of this.#caches.values()) {
        for (const m of ae.requestDigest(peer, c, performance.now())) this.#sendControl(m, peer);
      }
    }
    this.#gapPeers.clear();
  }

  #scheduleFlush(): void {
    if (this.#syncFlush) {
      this.#flush();
    } else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(this.#scheduledFlush);
    }
  }

  /**
   * Made once: an arrow function inside #scheduleFlush would make V8 allocate that call's
   * context on every call (every write), scheduled or not.
   */
  readonly #scheduledFlush = (): void => {
    this.#flushScheduled = false;
    this.#flush();
  };

  #join(): void {
    if (this.#joined) return;
    this.#joined = true;
    clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
    this.#flush();
  }

  #flush(): void {
    if ((this.#state !== 'open' && this.#state !== 'closing') || !this.#joined || this.#startFailed) return;
    // A send can pump the transport's events (the simulated one does), and a 'writable' among
    // them would re-enter here and send the head of the map a second time.
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      // Consecutive puts and deletes of one cache share a `batch` message as long as it fits one
      // datagram: a burst of small writes costs a few datagrams instead of one each (the
      // receivers' per-datagram work, not the bytes, is what limits throughput and latency).
      // Writes first, cache by cache, then the rest (clears, replies, sync entries): replies
      // then reflect the writes made before them. Order across caches, and between a clear and
      // the writes of its cache, does not matter: receivers apply by version.
      const room = Math.floor(this.maxMessageSize / 255);
      const group = this.#group;
      // Spilled writes follow the queued ones, a chunk at a time, while the window has room.
      do {
        for (const [cache, writes] of this.#writes) {
          group.writesOfCache = writes;
          group.cache = cache;
          const header = 3 + Buffer.byteLength(cache, 'utf8');
          group.size = header;
          for (const [key, message] of writes) {
            // A string or scalar value set by the cache goes as it is: the encoder writes it
            // straight into the message (no byte array per write).
            const size = writeSize(message);
            if (group.keys.length > 0 && (group.size + size > room || group.keys.length === 0xffff)) {
              if (!this.#sendGroup()) return;
              group.size = header;
            }
            group.keys.push(key);
            group.writes.push(message);
            group.size += size;
          }
          if (!this.#sendGroup()) return;
          if (writes.size === 0) this.#writes.delete(cache);
        }
      } while (this.#spilledCount > 0 && this.#unspill());
      for (const [key, message] of this.#pending) {
        if (!this.#sendPending(key, message)) return;
      }
    } finally {
      this.#group.keys.length = 0;
      this.#group.writes.length = 0;
      this.#flushing = false;
    }
    // Backlog cleared after shedding: offer our digest now, so peers pull the shed writes at
    // once instead of at the next periodic pulse (5 minutes by default); and again a few times
    // over the next half minute, because a large repair made while every member is busy (all of
    // them shed under a long overload) leaves differences a single round does not settle
    // (bench/overload.bench.ts: at twice the sustainable rate for 30 s, members still differed
    // 60 s after the load stopped).
    if (this.pending === 0 && this.#shedUnrepaired && this.#state === 'open') {
      this.#shedUnrepaired = false;
      queueMicrotask(() => this.pulse());
      if (!this.#syncFlush && this.#pulse > 0) {
        for (const t of this.#repairTimers) clearTimeout(t);
        this.#repairTimers = REPAIR_PULSES_MS.filter((ms) => ms < this.#pulse).map((ms) => {
          const t = setTimeout(() => this.pulse(), ms);
          t.unref();
          return t;
        });
      }
    }
  }

  /** Sends the writes gathered by #flush (one alone as itself, several as a `batch`). */
  #sendGroup(): boolean {
    const g = this.#group;
    if (g.keys.length === 0) return true;
    // The published writes are put/delete messages and batch writes at once (cache.ts
    // PublishedPut): a lone one goes as itself, several as they are in a batch.
    const message: OutgoingMessage = g.writes.length === 1 ? g.writes[0] as unknown as OutgoingMessage : { op: 'batch', cache: g.cache, writes: g.writes.slice() };
    const sent = this.#send(message);
    if (sent === 'full') return false;
    // Usually every pending write of the cache went out: one clear, not a delete (and a rehash
    // of the shrinking map now and then) per write.
    if (g.keys.length === g.writesOfCache.size) g.writesOfCache.clear();
    else for (const k of g.keys) g.writesOfCache.delete(k);
    this.#writesCount -= g.keys.length;
    g.keys.length = 0;
    g.writes.length = 0;
    return true;
  }

  /** Sends one pending message; false when the window is full or the transport closed. */
  #sendPending(key: string, message: Message): boolean {
    if (this.#send(message) === 'full') return false;
    this.#pending.delete(key);
    return true;
  }

  /** 'sent'; 'dropped' (the transport can never take it: counted); 'full' (window or closed). */
  #send(message: OutgoingMessage): 'sent' | 'dropped' | 'full' {
    // No `writable` check first: the core announces 'writable' only after a send it had to
    // refuse, so a full window must be met by an actual send attempt, or we would wait for
    // an event that never comes.
    try {
      return this.#t.send(message) === undefined ? 'full' : 'sent';
    } catch (err) {
      if (!(err instanceof McCacheError)) throw err;
      if (err.code === ErrorCode.CLOSED) return 'full';
      // A message the transport can never take (too large for 255 fragments): the cache
      // checks sizes before publishing, so this is a last resort. Dropping beats throwing
      // out of a microtask, which would crash the process.
      if (err.code !== ErrorCode.MESSAGE_TOO_LARGE) throw err;
      this.#dropped++;
      return 'dropped';
    }
  }

  #onDeliver(from: NodeId, seq: number, m: Message): void {
    switch (m.op) {
      case 'put':
      case 'delete':
      case 'clear': {
        const c = this.#cacheFor(m.cache);
        if (!c) return;
        c.applyRemote(m, from);
        publish(CH.remote, () => ({ cache: m.cache, op: m.op, key: (m as { key?: string }).key, from }));
        break;
      }
      case 'batch': {
        const c = this.#cacheFor(m.cache);
        if (!c) return;
        for (const w of m.writes) {
          c.applyRemoteWrite(w, from);
          // Tested first: a closure per write would be garbage even with nobody subscribed.
          if (CH.remote.hasSubscribers) CH.remote.publish({ cache: m.cache, op: w.kind === 'value' ? 'put' : 'delete', key: w.key, from });
        }
        break;
      }
      case 'metrics_request': {
        if (m.target !== 0n && m.target !== this.nodeId) return;
        const metrics = this.localMetrics();
        this.#onMetricsRequest?.(metrics);
        const report = new TextEncoder().encode(JSON.stringify(metrics, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
        this.#reply(`${from}:${seq}`, { op: 'metrics_reply', requestSender: from, requestSeq: seq, codec: 'json', report });
        break;
      }
      case 'checksum_request': {
        if (m.target !== 0n && m.target !== this.nodeId) return;
        // Every cache, or the one named; a cache not held here holds no entry, so it is answered
        // with an empty cache's checksum (the asker then need not wait out its reply window).
        const asked: Array<[string, Cache<unknown> | undefined]> = m.cache === '' ? [...this.#caches] : [[m.cache, this.#caches.get(m.cache)]];
        for (const [name, c] of asked) {
          this.#reply(`${from}:${seq}:${name.length}:${name}`, { op: 'checksum_reply', requestSender: from, requestSeq: seq, cache: name,
            numEntries: c?.size ?? 0, checksum: Buffer.from(c?.checksum() ?? EMPTY_CHECKSUM, 'hex') });
        }
        break;
      }
      case 'sync_entries': {
        this.#antiEntropy().handleEntries(m, this.#cacheFor(m.cache));
        break;
      }
      case 'metrics_reply':
      case 'checksum_reply':
        // Only our own requests are collected, under the id that asked (current or former).
        this.#replies.get(`${m.requestSender}:${m.requestSeq}`)?.(from, m);
        break;
      default:
        break;
    }
  }

  #onReceive(from: NodeId, m: Message): void {
    if (this.#state !== 'open') return;
    const ae = this.#antiEntropy();
    if (m.op === 'sync_digest') {
      // A member that has not called getCache yet still bootstraps the cache (mode 1 default).
      const c = this.#caches.get(m.cache) ?? (m.numEntries > 0 || m.clearHlc > 0n ? this.cache(m.cache) : undefined);
      // A difference with one peer is acted on at most once a second: often enough for the
      // follow-up pulses after shedding (1, 2, 4, ... s), rarely enough that a repair still in
      // flight is not asked for again and again. (It was half the pulse: 150 s by default,
      // which made every follow-up pulse fall on deaf ears.)
      const interval = this.#pulse > 0 ? Math.min(this.#pulse / 2, 1000) : 0;
      for (const out of ae.handleDigest(from, m, c, performance.now(), interval)) this.#sendControl(out);
    } else if (m.op === 'sync_request') {
      if (m.bucketIds.length === 0 || m.target !== this.nodeId || this.#syncFlush) {
        this.#answerSyncRequest(from, m);
        return;
      }
      // Every bucket request walks the whole cache: the requests a member sends in one burst
      // (a large difference asks for many buckets, in many datagrams) are answered together,
      // with one walk, instead of one walk each (which stalled the event loop for seconds after
      // an overload, bench/overload.bench.ts).
      const id = `${from}:${m.numBuckets}:${m.cache}`;
      const held = this.#syncAsks.get(id);
      if (held) for (const b of m.bucketIds) held.ids.add(b);
      else this.#syncAsks.set(id, { from, m, ids: new Set(m.bucketIds) });
      if (this.#syncAskTimer === undefined) {
        this.#syncAskTimer = setTimeout(() => {
          this.#syncAskTimer = undefined;
          const asks = [...this.#syncAsks.values()];
          this.#syncAsks.clear();
          for (const a of asks) this.#answerSyncRequest(a.from, { ...a.m, bucketIds: [...a.ids] });
        }, SYNC_COALESCE_MS);
        this.#syncAskTimer.unref();
      }
    }
  }

  /**
   * The cache a peer's message is for, created (with `cacheDefaults`) when this process has not
   * named it yet; undefined once shutdown began.
   */
  #cacheFor(name: string): Cache<unknown> | undefined {
    return this.#caches.get(name) ?? (this.#state === 'open' ? this.cache(name) : undefined);
  }

  #answerSyncRequest(from: NodeId, m: MessageOf<'sync_request'>): void {
    if (this.#state !== 'open') return;
    for (const out of this.#antiEntropy().handleRequest(from, m, this.#caches.get(m.cache))) {
      if (out.op === 'sync_entries') this.#enqueue(`s${++this.#syncSeq}`, out);
      else this.#sendControl(out, from); // digest chunks: only the asker acts on them
    }
  }

  /** Replies queue behind pending writes (so they reflect them) and wait for room like them. */
  #reply(id: string, m: Message): void {
    if (this.#state !== 'open') return;
    this.#enqueue(`r${id}`, m);
  }

  async #ask(request: Message, onReply: (from: NodeId, m: Message) => void): Promise<void> {
    await this.start();
    if (this.#state !== 'open') throw new McCacheError(ErrorCode.CLOSED, `${request.op}: shutdown() was called`);
    const deadline = performance.now() + this.#replyWindow;
    // Our own pending writes go first, so the members' answers already include them.
    let seq: number | undefined;
    for (;;) {
      if (this.pending === 0 && this.#joined) seq = this.#t.send(request);
      if (seq !== undefined || performance.now() >= deadline) break;
      await sleep(REPLY_POLL_MS);
    }
    if (seq === undefined) return; // no room in the window during the whole reply window
    // Done when every member of the moment answered and no further reply (a member answers a
    // checksum request once per cache) came for REPLY_QUIET_MS; at the latest at the deadline.
    // A member hashing a large cache takes a while: the window is a bound, not a fixed wait.
    const waitFor = new Set(this.#t.core.members);
    let lastReplyAt = performance.now();
    const replyKey = `${this.nodeId}:${seq}`;
    this.#replies.set(replyKey, (from, m) => {
      waitFor.delete(from);
      lastReplyAt = performance.now();
      onReply(from, m);
    });
    try {
      while (performance.now() < deadline) {
        if (waitFor.size === 0 && performance.now() - lastReplyAt >= REPLY_QUIET_MS) break;
        await sleep(Math.min(REPLY_POLL_MS, Math.max(1, deadline - performance.now())));
      }
    } finally {
      this.#replies.delete(replyKey);
    }
  }
}

/** Bytes a put or delete takes in a `batch` (spec/mccache_message.ksy `batch_write`). */
function writeSize(w: OutgoingBatchWrite): number {
  // kind 1, len_key 2, hlc 8, ttl 4, value_codec 1, len_value 4
  const v = w.value;
  const len = v instanceof Uint8Array ? v.length : typeof v === 'string' ? utf8Length(v) : scalarLength(v);
  return 20 + Buffer.byteLength(w.key, 'utf8') + len;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function nonNegative(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new McCacheError(ErrorCode.INVALID_OPTION, `${name}: must be a non-negative number of ms, got ${String(v)}`);
  }
  return v;
}

/**
 * diagnostics_channel names (`mccache:<area>:<event>`, STYLE.md); a message is built only when
 * someone subscribes, so an unobserved node pays nothing.
 */
export const CH = {
  metrics: channel('mccache:node:metrics'),
  remote: channel('mccache:cache:remote'),
  memberUp: channel('mccache:member:up'),
  memberDown: channel('mccache:member:down'),
  gap: channel('mccache:transport:gap'),
  renewed: channel('mccache:transport:renewed'),
};

function publish(ch: ReturnType<typeof channel>, make: () => unknown): void {
  if (ch.hasSubscribers) ch.publish(make());
}
