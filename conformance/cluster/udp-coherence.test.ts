/**
 * Real sockets, coherence through membership changes (DESIGN.md §5 anti-entropy, §8): three
 * processes on host-local multicast use the public API, with McCache's monkey tantrum dropping
 * 10 % of every process's outgoing datagrams, a 300 ms anti-entropy pulse and a 100 ms
 * heartbeat (failure timeout 500 ms).
 *
 *   - processes 1 and 2 write random keys (sets and deletes; most keys shared, some their own)
 *     at a paced rate for a bounded time and count, after first setting PRE_KEYS keys of their
 *     own that nobody writes again;
 *   - process 3 starts late, after the writes began: it must get the earlier entries (bootstrap:
 *     the reliable core has long freed those messages, so only anti-entropy can bring them);
 *   - process 2 is killed with SIGKILL mid-run, with messages in flight that some members got
 *     and others did not; it restarts as a new process (a new member, a new node id) and keeps
 *     writing the same keys.
 *
 * After the writes stop and a few pulses, every live process must report identical entries
 * (key, version hlc/node, value checksum, value) and the same Cache.checksum(), locally and
 * through getClusterChecksum. Every entry must be a write some process really made (the killed
 * process's too, up to its last report), the PRE_KEYS keys of processes 1 and 2 (the killed one's
 * included) must be everywhere, no live writer's last set may have been replaced by an older
 * version, and each process must exit by itself with code 0. About 10 s here.
 *
 * What it cannot see through the public API: how much of the repair anti-entropy did
 * (McCacheNode.antiEntropyStats is not in getLocalMetrics).
 *
 * No packet leaves the machine: MCCACHE_MULTICAST_HOPS=0 (interface 127.0.0.1, TTL 0) and a
 * 239.255.x.y group and high port of this run's own.
 */
import { expect } from 'chai';
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { FIXTURES, TS_NODE, hostLocalEnv, privateGroup } from './cluster-processes';
import { compareVersion, MemberProcess, within, type Reply } from './member-process';

const CACHE = 'coherence';
const SHARED_KEYS = 240;
const OWN_KEYS = 60;
/** From the start of the writes: when process 3 joins, when process 2 is killed, when writes end. */
const LATE_JOIN_AT = 1_200;
const KILL_AT = 2_600;
const WRITES_END_AT = 6_500;
const RATE = 800;
const MAX_OPS = 8_000;
const RESTART_WRITES_MS = 1_000;
const PRE_KEYS = 40;
const PULSE_MS = 300;
const CONVERGE_LIMIT_MS = 15_000;

interface Entry { key: string; hlc: string; origin: string; checksum: string; tag: string }
interface Stats { tantrumDropped: number; retransmits: number; gapsReported: number; datagramsOut: number; shed: number; writesDropped: number }

const wallNow = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One coherence-node.ts child. */
class Member extends MemberProcess {
  constructor(readonly index: number, readonly tag: string, members: number, env: NodeJS.ProcessEnv) {
    super(fork(join(FIXTURES, 'coherence-node.ts'), [], {
      execArgv: TS_NODE,
      env: { ...env, COHERENCE_NODE_CONFIG: JSON.stringify({ index, tag, members, cache: CACHE }) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }), `process ${tag}`);
  }
}

describe('cluster/udp: coherence with a late joiner and a SIGKILLed, restarted writer, 10 % outgoing loss', function () {
  this.timeout(60_000);
  const all: Member[] = [];

  after(() => {
    for (const m of all) m.kill();
  });

  it('every live process ends with identical entries and checksums, and exits by itself with code 0', async () => {
    const t0 = performance.now();
    const { group, port } = privateGroup();
    const env = hostLocalEnv(group, port, {
      MCCACHE_MONKEY_TANTRUM: '10',
      MCCACHE_CACHE_PULSE: `${PULSE_MS}ms`,
      MCCACHE_DAEMON_SLEEP: '100ms',
      // Room for every key: an LRU eviction is local by design and would make members differ.
      MCCACHE_CACHE_MAX: '10000',
    });
    const start = (index: number, tag: string, members: number): Member => {
      const m = new Member(index, tag, members, env);
      all.push(m);
      return m;
    };
    const readyOf = async (m: Member): Promise<void> => {
      const r = await within(m.ready, 20_000, `process ${m.tag} ready`);
      expect(r.type, `process ${m.tag} ready: ${JSON.stringify(m.errors)}`).to.equal('ready');
    };

    // Processes 1 and 2 form the cluster and write.
    const p1 = start(1, 'a', 1);
    const p2 = start(2, 'b', 1);
    await Promise.all([readyOf(p1), readyOf(p2)]);
    const w0 = wallNow();
    const until = w0 + WRITES_END_AT;
    const writeArgs = { until, maxOps: MAX_OPS, rate: RATE, shared: SHARED_KEYS, own: OWN_KEYS, pre: PRE_KEYS };
    const w1 = p1.ask('write', { seed: 101, ...writeArgs }, WRITES_END_AT + 10_000);
    p2.child.send({ cmd: 'write', seed: 202, ...writeArgs }); // killed before it answers

    // Process 3 joins late (it only reads).
    await sleep(Math.max(0, w0 + LATE_JOIN_AT - wallNow()));
    const p3 = start(3, 'c', 2);
    await readyOf(p3);

    // Process 2 dies mid-write without a goodbye, and comes back as a new member (same keys).
    await sleep(Math.max(0, w0 + KILL_AT - wallNow()));
    const killedAt = wallNow() - w0;
    p2.kill();
    const p2r = start(4, 'b', 2);
    await readyOf(p2r);
    const restartedAt = wallNow() - w0;
    // On a slow machine the restart may come late: it still writes for at least RESTART_WRITES_MS.
    const w2 = p2r.ask('write', { seed: 303, ...writeArgs, until: Math.max(until, wallNow() + RESTART_WRITES_MS) }, WRITES_END_AT + 20_000);
    const [r1, r2] = await Promise.all([w1, w2]);
    const killed = await within(p2.exited, 5_000, 'killed process exit');
    expect(killed.signal, 'process 2 was killed').to.equal('SIGKILL');
    const tWrites = performance.now();

    // Quiescence, then pulses until every live process holds the same entries (bounded).
    const live = [p1, p3, p2r];
    const quiet = await Promise.all(live.map((m) => m.ask('quiet', { timeoutMs: 10_000 })));
    for (const [i, q] of quiet.entries()) expect(q['ok'], `process ${live[i]!.tag}${live[i]!.index} quiescent: ${JSON.stringify(q)}`).to.equal(true);
    const tQuiet = performance.now();
    let reports: Reply[] = [];
    let rounds = 0;
    for (;;) {
      reports = await Promise.all(live.map((m) => m.ask('report')));
      rounds++;
      if (new Set(reports.map((r) => r['checksum'])).size === 1 || performance.now() - tQuiet > CONVERGE_LIMIT_MS) break;
      await sleep(PULSE_MS);
    }
    const tConverged = performance.now();
    // A few more pulses: a coherent cluster stays coherent.
    await sleep(3 * PULSE_MS);
    reports = await Promise.all(live.map((m) => m.ask('report')));
    const cluster = await p1.ask('clusterChecksum');

    const exits = live.map((m) => m.exited);
    await Promise.all(live.map((m) => m.ask('exit')));
    const codes = await within(Promise.all(exits), 10_000, 'processes exiting by themselves');

    const entries = reports.map((r) => r['entries'] as Entry[]);
    const stats = reports.map((r) => r['stats'] as Stats);
    const caches = reports.map((r) => r['cache'] as { remoteApplies: number; conflicts: number });
    console.log('      udp-coherence', JSON.stringify({
      ops: { a: r1['ops'], bSetsBeforeKill: p2.written.size, bRestarted: r2['ops'] }, killedAtMs: Math.round(killedAt), restartedAtMs: Math.round(restartedAt),
      quietMs: Math.round(tQuiet - tWrites), convergedMs: Math.round(tConverged - tQuiet), rounds, entries: entries[0]!.length,
      tantrumDropped: stats.map((s) => s.tantrumDropped), retransmits: stats.map((s) => s.retransmits), gaps: stats.map((s) => s.gapsReported),
      shed: stats.map((s) => s.shed), remoteApplies: caches.map((c) => c.remoteApplies), totalMs: Math.round(performance.now() - t0),
    }));

    for (const m of all) expect(m.errors, `errors reported by process ${m.tag}${m.index}`).to.deep.equal([]);
    expect(Number(r1['ops'])).to.be.greaterThan(1000);
    expect(p2.written.size, 'sets by process 2 before it was killed').to.be.greaterThan(100);
    expect(Number(r2['ops']), 'ops by the restarted process 2').to.be.greaterThan(300);

    // Identical entries everywhere; the same checksum locally and cluster-wide.
    for (let i = 1; i < live.length; i++) expect(entries[i], `process ${live[i]!.tag}${live[i]!.index} vs process a1`).to.deep.equal(entries[0]);
    expect(entries[0]!.length, 'entries left after the run').to.be.greaterThan(100);
    const sums = reports.map((r) => r['checksum'] as string);
    expect(new Set(sums).size, 'distinct local checksums').to.equal(1);
    const clusterSums = cluster['sums'] as Record<string, Record<string, string>>;
    expect(Object.keys(clusterSums).sort(), 'members answering getClusterChecksum').to.deep.equal(live.map((m) => m.nodeId).sort());
    for (const [id, s] of Object.entries(clusterSums)) expect(s[CACHE], `cluster checksum of ${id}`).to.equal(sums[0]);

    // Every entry is a set its writer really made, with that value.
    const writers = new Map([p1, p2, p2r].map((m) => [m.nodeId, m]));
    for (const e of entries[0]!) {
      const w = writers.get(e.origin);
      expect(w, `entry ${e.key}: origin ${e.origin} is a writer`).to.not.equal(undefined);
      expect(e.tag.startsWith(`${w!.tag}|${e.key}|`), `entry ${e.key}: value ${e.tag} by ${w!.tag}`).to.equal(true);
      const sum = w!.written.get(`${e.key}/${e.hlc}`);
      // The killed process's last sets (after its last report) are unknown, but must be newer.
      if (sum === undefined && w === p2) expect(BigInt(e.hlc) > p2.lastReportedHlc, `entry ${e.key} by the killed process`).to.equal(true);
      else expect(sum, `entry ${e.key}@${e.hlc} by ${w!.tag}`).to.equal(e.checksum);
    }

    const final = new Map(entries[0]!.map((e) => [e.key, e]));
    // Bootstrap: keys set once at the start, before process 3 joined and (for process 2's)
    // before its restarted self existed, are everywhere; only anti-entropy could bring them.
    for (const w of [p1, p2]) {
      for (let i = 0; i < PRE_KEYS; i++) {
        const e = final.get(`pre${w.index}-${i}`);
        expect(e?.origin, `pre${w.index}-${i} written first by ${w.tag}${w.index}`).to.equal(w.nodeId);
      }
    }

    // No live writer's last set lost to an older version.
    for (const [w, r] of [[p1, r1], [p2r, r2]] as const) {
      for (const [key, hlc] of r['last'] as Array<[string, string, string]>) {
        const e = final.get(key);
        if (e) expect(compareVersion(e, { hlc, origin: w.nodeId }), `key ${key}: last set by ${w.tag}${w.index}`).to.be.at.least(0);
      }
    }

    // The loss was real, and every process exited by itself.
    expect(stats.reduce((a, s) => a + s.tantrumDropped, 0)).to.be.greaterThan(100);
    expect(codes.map((c) => c.code), 'exit codes').to.deep.equal([0, 0, 0]);
  });
});
