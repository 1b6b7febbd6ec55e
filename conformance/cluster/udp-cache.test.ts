/**
 * Real sockets (DESIGN.md §8): three processes use the public API (getCache and friends, as an
 * application imports them) on host-local multicast, with McCache's monkey tantrum dropping
 * 10 % of every process's outgoing datagrams. Each writes, deletes and (rarely) clears random
 * keys among 100 for a bounded time and count. After quiescence every process must hold the
 * same entries (keys, versions, value checksums, values), the local and cluster checksums must
 * agree, every entry must be a version some process really wrote, and every process must exit
 * by itself with code 0 (one after an explicit shutdown(), the others by simply ending).
 *
 * No packet leaves the machine: MCCACHE_MULTICAST_HOPS=0 means interface 127.0.0.1, TTL 0.
 */
import { expect } from 'chai';
import { CacheNodeProcess, hostLocalEnv, privateGroup } from './cluster-processes';

const NODES = 3;
const KEYS = 100;
const CACHE = 'stress';

interface Entry { key: string; hlc: string; origin: string; checksum: string; value: unknown }
interface Stats { tantrumDropped: number; retransmits: number; naksSent: number; gapsReported: number; datagramsOut: number }

describe('cluster/udp: 3 processes share a cache over host-local multicast with 10 % outgoing loss', function () {
  this.timeout(60_000);
  const procs: CacheNodeProcess[] = [];

  after(() => {
    for (const p of procs) p.kill();
  });

  it('every process ends with identical entries and checksums, and exits by itself with code 0', async () => {
    const t0 = performance.now();
    const { group, port } = privateGroup();
    // A heartbeat every 0.5 s (failure timeout 2.5 s) forms the cluster quickly despite loss.
    const env = hostLocalEnv(group, port, { MCCACHE_MONKEY_TANTRUM: '10', MCCACHE_DAEMON_SLEEP: '0.5' });
    for (let i = 0; i < NODES; i++) procs.push(new CacheNodeProcess(i, NODES - 1, CACHE, env));
    const ready = await Promise.all(procs.map((p) => p.ready));
    expect(ready.map((r) => r.type), JSON.stringify(procs.map((p) => p.errors))).to.deep.equal(Array(NODES).fill('ready'));
    const tReady = performance.now();

    const ops = await Promise.all(procs.map((p, i) => p.ask('ops', { seed: 1000 + i, durationMs: 3000, maxOps: 6000, keys: KEYS })));
    const tOps = performance.now();
    const quiet = await Promise.all(procs.map((p) => p.ask('quiet', { timeoutMs: 15_000 })));
    const tQuiet = performance.now();
    for (const q of quiet) expect(q['ok'], `process ${q.index} quiescent: ${JSON.stringify(q)}`).to.equal(true);

    const reports = await Promise.all(procs.map((p) => p.ask('report')));
    const cluster = await procs[0]!.ask('clusterChecksum');
    const tExit = performance.now();
    await Promise.all(procs.map((p, i) => p.ask('exit', { shutdown: i === 0 })));
    const exits = await Promise.all(procs.map((p) => p.exited));

    const stats = reports.map((r) => r['stats'] as Stats);
    console.log('      udp-cache', JSON.stringify({
      ops: ops.map((o) => o['ops']), readyMs: Math.round(tReady - t0), opsMs: Math.round(tOps - tReady), quietMs: Math.round(tQuiet - tOps),
      exitMs: exits.map((e) => Math.round(e.at - tExit)), entries: (reports[0]!['entries'] as Entry[]).length,
      tantrumDropped: stats.map((s) => s.tantrumDropped), retransmits: stats.map((s) => s.retransmits), gaps: stats.map((s) => s.gapsReported),
    }));

    expect(exits.map((e) => e.code), 'exit codes').to.deep.equal(Array(NODES).fill(0));
    for (const p of procs) expect(p.errors, 'errors reported by the processes').to.deep.equal([]);

    // Identical entries everywhere, and the same checksum locally and cluster-wide.
    const entries = reports.map((r) => r['entries'] as Entry[]);
    for (let i = 1; i < NODES; i++) expect(entries[i], `process ${i} vs process 0`).to.deep.equal(entries[0]);
    expect(entries[0]!.length, 'entries left after the run').to.be.greaterThan(0);
    const sums = reports.map((r) => r['checksum'] as string);
    expect(new Set(sums).size, 'distinct local checksums').to.equal(1);
    const clusterSums = cluster['sums'] as Record<string, Record<string, string>>;
    expect(Object.keys(clusterSums).sort()).to.deep.equal(reports.map((r) => r['nodeId'] as string).sort());
    for (const [id, s] of Object.entries(clusterSums)) expect(s[CACHE], `cluster checksum of ${id}`).to.equal(sums[0]);

    // Every entry is a version its writer really wrote, with that value.
    const written = new Map<string, string>(); // "origin/key/hlc" -> value checksum
    ops.forEach((o, i) => {
      const origin = (reports[i]!['nodeId'] as string).replace(/^0+/, '');
      for (const [key, hlc, checksum] of o['written'] as Array<[string, string, string]>) written.set(`${origin}/${key}/${hlc}`, checksum);
    });
    for (const e of entries[0]!) expect(written.get(`${e.origin}/${e.key}/${e.hlc}`), `entry ${e.key}`).to.equal(e.checksum);

    // The loss was real and was repaired (not merely absent).
    expect(stats.reduce((a, s) => a + s.tantrumDropped, 0)).to.be.greaterThan(100);
    expect(stats.reduce((a, s) => a + s.retransmits, 0)).to.be.greaterThan(0);
    expect(stats.map((s) => s.gapsReported)).to.deep.equal(Array(NODES).fill(0));
  });
});
