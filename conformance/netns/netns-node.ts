/**
 * One McCache process on one simulated host of conformance/netns/netns-faults.test.ts, run in
 * that host's network namespace (`ip netns exec`) with IPC to the test. It uses only the public
 * API, configured by the environment as an application would be: the default multicast group
 * and port with TTL 1 (MCCACHE_PEERS unset), or MCCACHE_PEERS (unicast), plus
 * MCCACHE_DAEMON_SLEEP, MCCACHE_CACHE_PULSE and MCCACHE_CACHE_MAX.
 *
 * NETNS_NODE_CONFIG (JSON): { index, tag, members, cache } — it reports { type: 'ready', nodeId }
 * once it sees `members` other members.
 *
 * Every value names its writer and key (`tag|key|n`, at the head of byte values too), so the
 * test can tell where any entry came from, even one written by a process it killed.
 *
 * Commands (parent -> child), each answered with { type: <cmd>, ... }:
 *   write { seed, until, maxOps, rate, shared, own, pre }  (fixtures/child-node.ts pacedWrites) first sets pre<index>-0..<pre-1>
 *        (never written again), then random sets (75 %) and deletes (25 %) at `rate` ops/s
 *        until the wall instant `until` or maxOps; keys s0..s<shared-1> (every writer) and
 *        <tag>0..<tag><own-1>. Streams { type: 'written', sets } every 50 ms (so the writes of
 *        a process killed mid-run are known up to its last batch); answers with the counts and,
 *        per key, this process's LAST operation: [key, hlc, 'set' | 'delete', value checksum].
 *        A delete's version is the tombstone's (Cache.versionOf), so a lost delete shows too.
 *   quiet { timeoutMs }    waits until nothing is pending and every member acknowledged all
 *   report { keys }        entries (key, version, value checksum, value tag), Cache.checksum(),
 *                          the version of each of `keys` (entry or tombstone), members, the
 *                          membership events seen (mccache:member:up/down, wall ms), stats
 *   exit                   drops the IPC channel and simply ends: it must exit by itself
 *
 * If the test process dies, the IPC channel closes and this process exits (code 2) instead of
 * living on in a namespace nobody owns.
 */
import { subscribe } from 'node:diagnostics_channel';
import { getCache, getLocalChecksum, getLocalMetrics } from '../../runtime/index';
import { announceReady, pacedWrites, quiet, send, serve, stats, tagOf, type WriteCommand } from '../fixtures/child-node';

interface Config {
  index: number;
  tag: string;
  members: number;
  cache: string;
}

type Command =
  | ({ cmd: 'write' } & WriteCommand)
  | { cmd: 'quiet'; timeoutMs: number }
  | { cmd: 'report'; keys: string[] }
  | { cmd: 'exit' };

const cfg = JSON.parse(process.env['NETNS_NODE_CONFIG'] ?? '{}') as Config;
const cache = getCache<unknown>(cfg.cache);
const wallNow = (): number => performance.timeOrigin + performance.now();
const hex = (id: bigint): string => id.toString(16).padStart(16, '0');

const memberEvents: Array<{ type: 'up' | 'down'; nodeId: string; reason?: string; at: number }> = [];
subscribe('mccache:member:up', (m) => memberEvents.push({ type: 'up', nodeId: hex((m as { nodeId: bigint }).nodeId), at: wallNow() }));
subscribe('mccache:member:down', (m) => {
  const e = m as { nodeId: bigint; reason: string };
  memberEvents.push({ type: 'down', nodeId: hex(e.nodeId), reason: e.reason, at: wallNow() });
});

let exiting = false;
process.on('message', (c: Command) => {
  if (c.cmd === 'exit') exiting = true;
});
process.on('disconnect', () => {
  if (!exiting) process.exit(2);
});

async function handle(c: Command): Promise<object> {
  switch (c.cmd) {
    case 'write':
      return pacedWrites(cache, cfg.tag, cfg.index, c);
    case 'quiet':
      return quiet(c.timeoutMs);
    case 'report': {
      const entries: Array<{ key: string; hlc: string; origin: string; checksum: string; tag: string }> = [];
      for (const [key, value] of cache.entries()) {
        const md = cache.metadata(key)!;
        entries.push({ key, hlc: md.version.hlc.toString(), origin: hex(md.version.node), checksum: md.checksum, tag: tagOf(value) });
      }
      entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      const versions: Record<string, [string, string]> = {};
      for (const key of c.keys) {
        const v = cache.versionOf(key);
        if (v) versions[key] = [v.hlc.toString(), hex(v.node)];
      }
      const m = getLocalMetrics()!;
      return { nodeId: m.nodeId, entries, versions, checksum: getLocalChecksum(cfg.cache)[cfg.cache], members: m.members,
        memberEvents, stats: stats(), transport: m.transport };
    }
    case 'exit':
      return {};
  }
}

serve<Command>(cfg.index, handle);

announceReady(cfg.index, cfg.members);
