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
import { UdpDriver } from './transport/udp-driver';

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

/** The cache named `name` (default 'mccache'), created with `options` on first use. */
export function getCache<V = unknown>(name = 'mccache', options: GetCacheOptions<V> = {}): Cache<V> {
  if (typeof name !== 'string') throw new McCacheError(ErrorCode.INVALID_ARGUMENT, `name: must be a string, got ${typeof name}`);
  const settings = resolveSettings(options);
  const n = ensureNode(settings, options);
  const existing = n.caches.get(name);
  if (existing) return existing as Cache<V>;
  return n.cache<V>(name, {
    ttl: settings.ttl, max: settings.max, maxSize: settings.maxSize, mode: settings.mode as 0 | 1,
    callbackWindow: settings.callbackWindow,
    ...(options.sizeCalculation && { sizeCalculation: options.sizeCalculation }),
    ...(options.callback && { callback: options.callback }),
    ...(options.tombstoneTtl !== undefined && { tombstoneTtl: options.tombstoneTtl }),
  });
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
  if (logger?.isLevelEnabled('info')) logger.info('shutdown', { metrics: n.localMetrics() });
  logger?.flush();
}

function ensureNode(settings: Settings, options: SettingsOptions): McCacheNode {
  if (node) {
    for (const k of NODE_SETTINGS) {
      if (options[k] !== undefined && JSON.stringify(settings[k]) !== JSON.stringify(nodeSettings![k])) {
        throw new McCacheError(ErrorCode.INVALID_OPTION,
          `${k}: this process's node already runs with ${k}=${k === 'cryptoKey' ? '[redacted]' : JSON.stringify(nodeSettings![k])}; node-wide settings are fixed by the first getCache()`);
      }
    }
    return node;
  }
  nodeSettings = settings;
  logger = createLogger(settings);
  const heartbeat = settings.daemonSleep;
  const transport = new UdpDriver({
    group: settings.multicastIp,
    port: settings.multicastPort,
    multicastHops: settings.multicastHops,
    monkeyTantrum: settings.monkeyTantrum,
    coreOptions: { packetMtu: settings.packetMtu, heartbeatInterval: heartbeat, failureTimeout: 5 * heartbeat },
  });
  const log = logger;
  node = new McCacheNode({
    transport,
    onMetricsRequest: (m) => log.info('metrics', { metrics: m }),
  });
  node.start().catch((err: unknown) => {
    log.error('transport failed to start', { err: String(err) });
  });
  process.once('beforeExit', onBeforeExit);
  return node;
}

function onBeforeExit(): void {
  if (exiting || !node) return;
  exiting = true;
  // Keeps the event loop alive until the last writes are acknowledged (bounded), then lets go.
  void shutdown();
}
