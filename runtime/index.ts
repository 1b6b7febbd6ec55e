/**
 * McCache for TypeScript: the public API.
 *
 *   import { getCache, shutdown } from 'mccache';
 *   const c = getCache<string>('demo');   // one instance per name per process
 *   c.set('k', 'v');                      // local at once; replicated to every member
 *   c.get('k');                           // a local Map lookup
 *   await shutdown();                     // flush, LEAVE, close (also done at process exit)
 *
 * The first call sets up this process's node (socket, node id, clock) from the settings:
 * options > MCCACHE_* environment variables > a "mccache" section in package.json > defaults
 * (runtime/config/settings.ts). Node-wide settings (multicast group, hops, MTU, ...) are fixed
 * by that first call; a later call asking for different ones throws MCCACHE_ERR_INVALID_OPTION.
 */
import { ErrorCode, McCacheError } from './errors';
import { Cache, type CacheOptions } from './cache/cache';
import { resolveSettings, type Settings, type SettingsOptions } from './config/settings';
import { createLogger, type Logger } from './log/logger';
import { McCacheNode, type LocalMetrics } from './node';
import { recvBufferShortfall, UdpDriver } from './transport/udp-driver';

export { Cache, McCacheError, ErrorCode };
export { MalformedPacketError, MessageTooLargeError } from './errors';
export type { CacheOptions, ChangeInfo, EntryMetadata, CacheMetrics, EvictionReason } from './cache/cache';
export type { Version } from './cache/hlc';
export type { Settings, SettingsOptions } from './config/settings';
export type { LocalMetrics } from './node';

/** Options of getCache: settings (see README "Settings") plus per-cache callbacks. */
export type GetCacheOptions<V> = SettingsOptions & Pick<CacheOptions<V>, 'sizeCalculation' | 'callback' | 'tombstoneTtl'>;

/** Settings that belong to the whole process's node, not to one cache. */
const NODE_SETTINGS = ['packetMtu', 'multicastIp', 'multicastPort', 'multicastHops', 'monkeyTantrum', 'daemonSleep',
  'cryptoKey', 'logFilename', 'logFormat', 'debugLevel', 'peers', 'pulse'] as const;

let node: McCacheNode | undefined;
let nodeSettings: Settings | undefined;
let logger: Logger | undefined;
let exiting = false;
/** The node whose metrics summary was logged at shutdown. */
let summarized: McCacheNode | undefined;

/**
 * How long a new node's writes wait for the first peer to be heard (McCacheNode joinGrace):
 * 1.5 heartbeat periods, at most 1.5 s. Peers answer a JOIN within the core's nakDelay (3 ms);
 * if the JOIN or the answer is lost, every live peer still sends a heartbeat and an ACK each
 * period. Only a process with no peer at all pays the full wait, and only for writes made
 * that early (at exit, for instance).
 */
function joinGrace(daemonSleep: number): number {
  return Math.min(1.5 * daemonSleep, 1500);
}

/** The cache named `name` (default 'mccache'), created with `options` on first use. */
export function getCache<V = unknown>(name = 'mccache', options: GetCacheOptions<V> = {}): Cache<V> {
  if (typeof name !== 'string') throw new McCacheError(ErrorCode.INVALID_ARGUMENT, `name: must be a string, got ${typeof name}`);
  if (options === null || typeof options !== 'object') throw new McCacheError(ErrorCode.INVALID_ARGUMENT, 'options: must be an object');
  // The common call, getCache(name) for a cache that exists, reads no file and no environment.
  if (node && Object.keys(options).length === 0) {
    const c = node.caches.get(name);
    if (c && named.has(c)) return c as Cache<V>;
  }
  const settings = resolveSettings(options);
  const n = ensureNode(settings, options);
  const wanted: CacheOptions<V> = {
    ...cacheSettings(settings),
    ...(options.sizeCalculation && { sizeCalculation: options.sizeCalculation }),
    ...(options.callback && { callback: options.callback }),
    ...(options.tombstoneTtl !== undefined && { tombstoneTtl: options.tombstoneTtl }),
  };
  const existing = n.caches.get(name) as Cache<V> | undefined;
  if (existing && named.has(existing as Cache<unknown>)) {
    // Named before: the options of that first call stand; a different one is a mistake.
    const first = named.get(existing as Cache<unknown>) as CacheOptions<V>;
    for (const k of CACHE_OPTIONS) {
      if (options[k] !== undefined && !Object.is(wanted[k], first[k])) {
        throw new McCacheError(ErrorCode.INVALID_OPTION,
          `${k}: cache ${JSON.stringify(name)} exists with ${k}=${show(first[k])}, got ${show(wanted[k])}; a cache's options are fixed by the first getCache(name, options)`);
      }
    }
    return existing;
  }
  let c: Cache<V>;
  if (existing) {
    // Made by a peer's write before this process named it (with the defaults): now it gets
    // the options it is named with, whatever the race between that write and this call.
    existing.reconfigure(wanted);
    c = existing;
  } else {
    c = n.cache<V>(name, wanted);
  }
  named.set(c as Cache<unknown>, wanted as CacheOptions<unknown>);
  return c;
}

/** Caches named by getCache, with the options they were named with. */
const named = new WeakMap<Cache<unknown>, CacheOptions<unknown>>();
const CACHE_OPTIONS = ['ttl', 'max', 'maxSize', 'mode', 'callbackWindow', 'sizeCalculation', 'callback', 'tombstoneTtl'] as const;
function show(v: unknown): string {
  return typeof v === 'function' ? `[function ${v.name || 'anonymous'}]` : JSON.stringify(v) ?? 'undefined';
}

/** Clears the named cache, or every cache, here and on every member (McCache's clear_cache). */
export function clearCache(name?: string): void {
  if (!node) return;
  for (const [n, c] of node.caches) if (name === undefined || n === name) c.clear();
}

/** This process's metrics: per cache, transport and membership. */
export function getLocalMetrics(): LocalMetrics | undefined {
  return node?.localMetrics();
}

/** SHA-256 per cache over its sorted (key, version, value hash) lines; see Cache.checksum. */
export function getLocalChecksum(name?: string): Record<string, string> {
  return node?.localChecksum(name) ?? {};
}

/** Every member's metrics, keyed by node id; each member also logs its own (as McCache does). */
export async function getClusterMetrics(): Promise<Record<string, unknown>> {
  if (!node) return {};
  logger?.info('metrics', { metrics: node.localMetrics() });
  return node.clusterMetrics();
}

/** Every member's checksum of `name` (all caches when omitted), keyed by node id. */
export async function getClusterChecksum(name?: string): Promise<Record<string, Record<string, string>>> {
  if (!node) return {};
  return node.clusterChecksum(name ?? '');
}

/**
 * Flushes pending replication, waits (bounded) until members acknowledged it, announces LEAVE
 * and closes the socket. Caches throw MCCACHE_ERR_CLOSED afterwards. Also runs by itself at
 * process exit, so a script that writes and ends neither hangs nor loses its last writes.
 */
export async function shutdown(): Promise<void> {
  const n = node;
  if (!n) return;
  await n.shutdown();
  // Once per node: a script that calls shutdown() itself runs it again at exit (beforeExit).
  if (summarized !== n && logger?.isLevelEnabled('info')) logger.info('shutdown', { metrics: n.localMetrics() });
  summarized = n;
  logger?.flush();
}

/** The per-cache part of the settings. */
function cacheSettings(s: Settings): CacheOptions<unknown> {
  return { ttl: s.ttl, max: s.max, maxSize: s.maxSize, mode: s.mode, callbackWindow: s.callbackWindow };
}

/** Node-wide settings are equal when they configure the node the same way. */
function sameSetting(a: unknown, b: unknown): boolean {
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    // cryptoKey: its JSON form is "[redacted]" whatever the key, so compare the bytes.
    return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.from(a).equals(Buffer.from(b));
  }
  return JSON.stringify(a) === JSON.stringify(b);
}

function ensureNode(settings: Settings, options: SettingsOptions): McCacheNode {
  if (node) {
    for (const k of NODE_SETTINGS) {
      if (options[k] !== undefined && !sameSetting(settings[k], nodeSettings![k])) {
        throw new McCacheError(ErrorCode.INVALID_OPTION,
          `${k}: this process's node already runs with ${k}=${k === 'cryptoKey' ? '[redacted]' : JSON.stringify(nodeSettings![k])}; node-wide settings are fixed by the first getCache()`);
      }
    }
    return node;
  }
  const log = createLogger(settings);
  const heartbeat = settings.daemonSleep;
  const transport = new UdpDriver({
    group: settings.multicastIp,
    port: settings.multicastPort,
    multicastHops: settings.multicastHops,
    monkeyTantrum: settings.monkeyTantrum,
    cryptoKey: settings.cryptoKey,
    peers: settings.peers, // non-empty: unicast to these peers instead of multicast
    coreOptions: { packetMtu: settings.packetMtu, heartbeatInterval: heartbeat, failureTimeout: 5 * heartbeat },
  });
  const n = new McCacheNode({
    transport,
    // Caches that a remote write creates before getCache() names them get the settings too.
    cacheDefaults: cacheSettings(settings),
    joinGrace: joinGrace(settings.daemonSleep),
    pulse: settings.pulse,
    onMetricsRequest: (m) => log.info('metrics', { metrics: m }),
  });
  n.start().then(() => {
    const short = recvBufferShortfall(transport.options.recvBufferSize, transport.stats().recvBufferSize);
    if (short) log.warn('socket receive buffer smaller than asked: bursts will overflow it and be retransmitted', { ...short });
  }, (err: unknown) => {
    log.error('transport failed to start', { err: String(err) });
  });
  node = n;
  nodeSettings = settings;
  logger = log;
  process.once('beforeExit', onBeforeExit);
  return n;
}

function onBeforeExit(): void {
  if (exiting || !node) return;
  exiting = true;
  // The event loop is empty: nothing of ours holds it (socket and timers are unref'd). Shutting
  // down refs what it needs until the last writes are acknowledged (bounded), then lets go, so
  // a script that writes and ends neither hangs nor loses its last writes.
  shutdown().catch((err: unknown) => logger?.error('shutdown at exit failed', { err: String(err) }));
}
