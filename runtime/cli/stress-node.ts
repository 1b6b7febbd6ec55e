/**
 * One node process of `mccache stress` (runtime/cli/stress.ts), forked with an IPC channel.
 *
 * It uses only the public API (runtime/index.ts), configured by the environment the parent
 * gives it: host-local multicast (MCCACHE_MULTICAST_HOPS=0, a 239.255.x.y group and high port
 * chosen by the parent), MCCACHE_MONKEY_TANTRUM, MCCACHE_CACHE_PULSE, MCCACHE_DAEMON_SLEEP.
 * STRESS_NODE_CONFIG (JSON) holds the workload: { index, members, cache, keys, apertureMs,
 * sizeMix, seed, fakeDivergence }.
 *
 * Messages to the parent: { type: 'ready' } once it sees the other members; while writing,
 * { type: 'tick', ops, stats } once a second; and one reply per command, { type: <cmd>, ... }:
 *   write { startAt, until, maxOps }
 *                            random sets (80 %) and deletes (20 %) of keys k0..k<keys-1>, a mean
 *                            pause of apertureMs between ops, until the wall instant `until`
 *                            (performance.timeOrigin + performance.now(): one clock on a host)
 *                            or maxOps; replies with the ops done in each second since the
 *                            wall instant `startAt` (opsPerSecond)
 *   report                   entries (key, version, value checksum), Cache.checksum(), the
 *                            put-to-visible latencies seen here (from 'remote-set' events) and
 *                            transport figures
 *   exit                     drops the IPC channel and ends by itself
 */
import { getCache, getLocalMetrics } from '../index';
import { rng32 } from './rng32';

interface Config {
  index: number;
  members: number;
  cache: string;
  keys: number;
  apertureMs: number;
  sizeMix: 1 | 2 | 3;
  seed: number;
  fakeDivergence: boolean;
}

type Command = { cmd: 'write'; startAt: number; until: number; maxOps: number } | { cmd: 'report' } | { cmd: 'exit' };

interface Value { w: number; n: number; at: number; pad: string }

const BIG = 10 * 1024;
/** Latencies kept per node at most (a bounded sample: the first ones). */
const MAX_LATENCIES = 200_000;

const cfg = JSON.parse(process.env['STRESS_NODE_CONFIG'] ?? '{}') as Config;
const cache = getCache<Value>(cfg.cache);
const wallNow = (): number => performance.timeOrigin + performance.now();
const send = (m: object): void => { process.send?.({ index: cfg.index, ...m }); };

function transport(): { unackedMessages: number; retransmits: number; naksSent: number; tantrumDropped: number } {
  const m = getLocalMetrics();
  const t = (m?.transport ?? {}) as Record<string, number>;
  return { unackedMessages: t['unackedMessages'] ?? 0, retransmits: t['retransmits'] ?? 0, naksSent: t['naksSent'] ?? 0,
    tantrumDropped: t['tantrumDropped'] ?? 0 };
}
function stats(): object {
  const m = getLocalMetrics();
  return { pending: m?.pending ?? 0, members: m?.members.length ?? 0, ...transport() };
}

const latencies: number[] = [];
cache.on('remote-set', (e) => {
  const v = cache.get(String(e['key']));
  if (v && typeof v.at === 'number' && latencies.length < MAX_LATENCIES) latencies.push(Math.max(0, wallNow() - v.at));
});

let ops = 0;
async function write(c: Extract<Command, { cmd: 'write' }>): Promise<object> {
  const rng = rng32(cfg.seed * 1000 + cfg.index);
  const rate = 1000 / Math.max(cfg.apertureMs, 0.001); // ops per second
  const t0 = performance.now();
  let nextTick = t0 + 1000;
  const counts = { set: 0, delete: 0 };
  // Bounded: one slot per second from startAt to until (at most an hour, as --duration).
  const opsPerSecond = new Array<number>(Math.min(3600, Math.max(1, Math.ceil((c.until - c.startAt) / 1000)))).fill(0);
  while (ops < c.maxOps && wallNow() < c.until) {
    // Paced: the ops owed by now at `rate` (at most 50 per turn of the event loop), then a pause.
    const owed = Math.min(50, Math.floor(((performance.now() - t0) * rate) / 1000) - ops);
    if (owed > 0) {
      const second = Math.min(opsPerSecond.length - 1, Math.max(0, Math.floor((wallNow() - c.startAt) / 1000)));
      opsPerSecond[second]! += Math.min(owed, c.maxOps - ops);
    }
    for (let b = 0; b < owed && ops < c.maxOps; b++, ops++) {
      const key = `k${Math.floor(rng() * cfg.keys)}`;
      if (rng() < 0.8) {
        const big = cfg.sizeMix === 2 || (cfg.sizeMix === 3 && rng() < 0.2);
        const pad = big ? String.fromCharCode(97 + Math.floor(rng() * 26)).repeat(BIG) : '';
        cache.set(key, { w: cfg.index, n: ops, at: wallNow(), pad });
        counts.set++;
      } else {
        cache.delete(key);
        counts.delete++;
      }
    }
    if (performance.now() >= nextTick) {
      send({ type: 'tick', ops, stats: stats() });
      nextTick += 1000;
    }
    const pause = Math.min(cfg.apertureMs, 50) * rng() * 2;
    await new Promise((r) => setTimeout(r, Math.max(1, pause)));
  }
  return { ops, counts, opsPerSecond };
}

function report(): object {
  const entries: Array<[string, string, string, string]> = [];
  for (const [key] of cache.entries()) {
    const md = cache.metadata(key);
    if (md) entries.push([key, md.version.hlc.toString(), md.version.node.toString(16), md.checksum]);
  }
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  if (cfg.fakeDivergence && cfg.index === 0) {
    // Test-only (--fake-divergence): this node reports one entry nobody else has, so the
    // verdict must find the cluster incoherent.
    entries.push(['zz-fake-divergence', '1', '0', 'ffffffff']);
  }
  return { entries, checksum: cache.checksum(), latencies, stats: stats() };
}

process.on('message', (c: Command) => {
  const run = c.cmd === 'write' ? write(c) : Promise.resolve(c.cmd === 'report' ? report() : {});
  run.then((r) => {
    send({ type: c.cmd, ...r });
    if (c.cmd === 'exit') process.disconnect();
  }, (err: unknown) => send({ type: 'error', cmd: c.cmd, error: String(err) }));
});

// Ready once this node sees every other member (30 s at most).
const readyStart = performance.now();
const poll = setInterval(() => {
  const m = getLocalMetrics();
  if (m && m.members.length >= cfg.members - 1) {
    clearInterval(poll);
    send({ type: 'ready', nodeId: m.nodeId });
  } else if (performance.now() - readyStart > 30_000) {
    clearInterval(poll);
    send({ type: 'error', cmd: 'ready', error: 'the cluster did not form' });
  }
}, 10);
