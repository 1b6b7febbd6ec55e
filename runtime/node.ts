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
 * - Delivered put/del/clear messages go to the cache of that name (created on demand in mode 1
 *   so a member that has not called getCache yet still holds the data when it does).
 * - Metrics and checksum requests are answered with replies; `clusterMetrics`/`clusterChecksum`
 *   ask every member and collect replies for a short window.
 * - `shutdown` flushes pending writes, waits (bounded) until every member acknowledged them,
 *   announces LEAVE and closes the socket. At process exit (`beforeExit`) a node that still
 *   has unacknowledged writes shuts down by itself, so a script that writes and ends neither
 *   hangs nor drops its last writes. Nothing here keeps a process alive on its own.
 */
import { hostname } from 'node:os';
import { ErrorCode, McCacheError } from './errors';
import type { Message } from './codec/packet';
import type { CoreEvent, NodeId } from './core/types';
import { Cache, type CacheMetrics, type CacheOptions, type Replicator } from './cache/cache';
import { HybridClock } from './cache/hlc';

/** What the node needs from a transport (UdpDriver; a simulated one in tests). */
export interface NodeTransport {
  readonly nodeId: NodeId;
  readonly writable: boolean;
  readonly core: { readonly maxMessageSize: number; readonly flushed: boolean; readonly members: NodeId[] };
  start(): Promise<void>;
  send(message: Message): number | undefined;
  sendUnsequenced(message: Message): void;
  on(event: 'deliver', fn: (e: Extract<CoreEvent, { type: 'deliver' }>) => void): unknown;
  on(event: 'receive', fn: (e: Extract<CoreEvent, { type: 'receive' }>) => void): unknown;
  on(event: 'member-up', fn: (e: Extract<CoreEvent, { type: 'member-up' }>) => void): unknown;
  on(event: 'member-down', fn: (e: Extract<CoreEvent, { type: 'member-down' }>) => void): unknown;
  on(event: 'gap', fn: (e: Extract<CoreEvent, { type: 'gap' }>) => void): unknown;
  on(event: 'writable', fn: () => void): unknown;
  close(): Promise<void>;
  stats(): object;
}

export interface NodeOptions {
  transport: NodeTransport;
  /** Unix ms for the hybrid logical clock. @default Date.now */
  wallNow?: () => number;
  /** Default options for caches created by remote writes before getCache is called. */
  cacheDefaults?: CacheOptions<unknown>;
  /** ms to collect replies of clusterMetrics/clusterChecksum. @default 300 */
  replyWindow?: number;
  /** Called with each member's metrics when a metrics request arrives (McCache logs them). */
  onMetricsRequest?: (metrics: LocalMetrics) => void;
  /** Flush pending writes synchronously in publish (simulated networks). @default false */
  syncFlush?: boolean;
}

export interface LocalMetrics {
  nodeId: string;
  host: string;
  pid: number;
  caches: CacheMetrics[];
  transport: object;
  pending: number;
  members: string[];
}

export class McCacheNode implements Replicator {
  readonly nodeId: NodeId;
  readonly clock: HybridClock;
  readonly #t: NodeTransport;
  readonly #caches = new Map<string, Cache<unknown>>();
  readonly #pending = new Map<string, Message>();
  readonly #cacheDefaults: CacheOptions<unknown>;
  readonly #replyWindow: number;
  readonly #onMetricsRequest: ((m: LocalMetrics) => void) | undefined;
  readonly #syncFlush: boolean;
  readonly #replies = new Map<number, (from: NodeId, m: Message) => void>();
  #flushScheduled = false;
  #state: 'new' | 'open' | 'closing' | 'closed' = 'new';
  #started: Promise<void> | undefined;
  #shutdown: Promise<void> | undefined;
  #gaps = 0;

  constructor(options: NodeOptions) {
    this.#t = options.transport;
    this.nodeId = this.#t.nodeId;
    this.clock = new HybridClock(options.wallNow ?? Date.now);
    this.#cacheDefaults = options.cacheDefaults ?? {};
    this.#replyWindow = options.replyWindow ?? 300;
    this.#onMetricsRequest = options.onMetricsRequest;
    this.#syncFlush = options.syncFlush ?? false;
    this.#t.on('deliver', (e) => this.#onDeliver(e.from, e.message));
    this.#t.on('receive', (e) => this.#onReceive(e.from, e.message));
    this.#t.on('gap', () => { this.#gaps++; });
    this.#t.on('writable', () => this.#flush());
  }

  /** Opens the transport (socket, JOIN). Writes before it finishes are queued, not lost. */
  start(): Promise<void> {
    this.#started ??= (async () => {
      await this.#t.start();
      this.#state = 'open';
      this.#flush();
    })();
    return this.#started;
  }

  get maxMessageSize(): number {
    return this.#t.core.maxMessageSize;
  }

  get members(): NodeId[] {
    return this.#t.core.members;
  }

  /** The cache of that name, created with `options` the first time. */
  cache<V>(name: string, options?: CacheOptions<V>): Cache<V> {
    if (this.#state === 'closing' || this.#state === 'closed') throw new McCacheError(ErrorCode.CLOSED, 'getCache: shutdown() was called');
    let c = this.#caches.get(name);
    if (!c) {
      c = new Cache<unknown>(name, { ...this.#cacheDefaults, ...(options as CacheOptions<unknown>) },
        { clock: this.clock, replicator: this, nodeId: this.nodeId });
      this.#caches.set(name, c);
    }
    return c as Cache<V>;
  }

  get caches(): ReadonlyMap<string, Cache<unknown>> {
    return this.#caches;
  }

  publish(message: Message): void {
    const m = message as { cache: string; key?: string };
    const key = m.key === undefined ? `${m.cache}\u0001` : `${m.cache}\u0000${m.key}`;
    // Re-inserting moves a key behind the others: the newest mutation of a key goes out last.
    this.#pending.delete(key);
    this.#pending.set(key, message);
    if (this.#syncFlush) {
      this.#flush();
    } else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => {
        this.#flushScheduled = false;
        this.#flush();
      });
    }
  }

  /** Writes not yet handed to the transport (waiting for room in the send window). */
  get pending(): number {
    return this.#pending.size;
  }

  /** True when nothing is pending and every member acknowledged everything sent. */
  get quiescent(): boolean {
    return this.#pending.size === 0 && this.#t.core.flushed;
  }

  localMetrics(): LocalMetrics {
    return {
      nodeId: this.nodeId.toString(16).padStart(16, '0'), host: hostname(), pid: process.pid,
      caches: [...this.#caches.values()].map((c) => c.metrics()),
      transport: { ...this.#t.stats(), gapsReported: this.#gaps }, pending: this.#pending.size,
      members: this.#t.core.members.map((m) => m.toString(16).padStart(16, '0')),
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
    const out: Record<string, unknown> = { [this.localMetrics().nodeId]: this.localMetrics() };
    await this.#ask({ op: 'metrics_request', target: 0n }, (from, m) => {
      if (m.op !== 'metrics_reply') return;
      try {
        out[from.toString(16).padStart(16, '0')] = JSON.parse(new TextDecoder().decode(m.report));
      } catch {
        // a member's unreadable report is skipped
      }
    });
    return out;
  }

  /** Every member's checksum of `name` (all caches when omitted), keyed by node id. */
  async clusterChecksum(name = ''): Promise<Record<string, Record<string, string>>> {
    const me = this.nodeId.toString(16).padStart(16, '0');
    const out: Record<string, Record<string, string>> = { [me]: this.localChecksum(name || undefined) };
    await this.#ask({ op: 'checksum_request', target: 0n, cache: name }, (from, m) => {
      if (m.op !== 'checksum_reply') return;
      const id = from.toString(16).padStart(16, '0');
      (out[id] ??= {})[m.cache] = Buffer.from(m.checksum).toString('hex');
    });
    return out;
  }

  /**
   * Flushes pending writes, waits until members acknowledged them (bounded by the transport's
   * flush timeout), announces LEAVE, closes the socket. Idempotent.
   */
  shutdown(): Promise<void> {
    this.#shutdown ??= (async () => {
      if (this.#started) await this.#started.catch(() => undefined);
      this.#state = 'closing';
      // Hand over everything still pending; the window frees as ACKs arrive.
      for (let i = 0; i < 2000 && this.#pending.size > 0; i++) {
        this.#flush();
        if (this.#pending.size > 0) await new Promise((r) => setTimeout(r, 1));
      }
      await this.#t.close();
      for (const c of this.#caches.values()) c.close();
      this.#state = 'closed';
    })();
    return this.#shutdown;
  }

  // -------------------------------------------------------------------------------------------

  #flush(): void {
    if (this.#state !== 'open' && this.#state !== 'closing') return;
    for (const [key, message] of this.#pending) {
      if (!this.#t.writable) return;
      const seq = this.#t.send(message);
      if (seq === undefined) return;
      this.#pending.delete(key);
    }
  }

  #onDeliver(from: NodeId, m: Message): void {
    switch (m.op) {
      case 'put':
      case 'delete':
      case 'clear': {
        let c = this.#caches.get(m.cache);
        if (!c) {
          if (m.op !== 'put' || this.#state !== 'open') return;
          c = this.cache(m.cache);
        }
        c.applyRemote(m, from);
        break;
      }
      case 'metrics_request': {
        if (m.target !== 0n && m.target !== this.nodeId) return;
        const metrics = this.localMetrics();
        this.#onMetricsRequest?.(metrics);
        const report = new TextEncoder().encode(JSON.stringify(metrics, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
        this.#reply({ op: 'metrics_reply', requestSender: from, requestSeq: 0, codec: 'json', report });
        break;
      }
      case 'checksum_request': {
        if (m.target !== 0n && m.target !== this.nodeId) return;
        for (const [name, c] of this.#caches) {
          if (m.cache !== '' && m.cache !== name) continue;
          const sum = c.checksum();
          this.#reply({ op: 'checksum_reply', requestSender: from, requestSeq: 0, cache: name, numEntries: c.size,
            checksum: Buffer.from(sum, 'hex') });
        }
        break;
      }
      case 'metrics_reply':
      case 'checksum_reply':
        if (m.requestSender !== this.nodeId) return;
        for (const fn of this.#replies.values()) fn(from, m);
        break;
      default:
        break;
    }
  }

  #onReceive(_from: NodeId, _m: Message): void {
    // Anti-entropy digests and requests (issue 5) arrive here.
  }

  #reply(m: Message): void {
    if (this.#state !== 'open') return;
    if (this.#t.send(m) === undefined) {
      // Window full: replies are diagnostics; drop rather than displace writes.
    }
  }

  async #ask(request: Message, onReply: (from: NodeId, m: Message) => void): Promise<void> {
    await this.start();
    const id = this.#replies.size + Date.now();
    this.#replies.set(id, onReply);
    this.#t.send(request);
    await new Promise((r) => setTimeout(r, this.#replyWindow));
    this.#replies.delete(id);
  }
}
