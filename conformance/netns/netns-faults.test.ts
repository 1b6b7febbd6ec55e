/**
 * Real hosts, real faults (issue 7; DESIGN.md §8): four hosts, each a network namespace with its
 * own address on a bridge (conformance/netns/netns-lab.ts), one McCache process per host using
 * the public API with the production network settings: the default group 224.0.0.3:4000 and
 * TTL 1 (multicast), or MCCACHE_PEERS listing the four hosts' address:4000 (unicast, the same
 * list on every host). Heartbeat 100 ms, so the failure timeout is 500 ms; pulse 300 ms.
 *
 * Each scenario runs for both transports. Every host writes random keys (sets and deletes; most
 * keys shared, some its own; 2.5 KB values among them, two datagrams each) at a paced rate for
 * a bounded time and count, after first setting PRE keys of its own that nobody writes again.
 * One fault per scenario, under that load:
 *   kill       host 2's process is SIGKILLed and restarted at once (a new member, same address)
 *   partition  host 3's switch port is down for 3 s, and up again
 *   loss       every host's kernel drops 10 % of the McCache datagrams it receives (nftables
 *              `numgen random mod 100 < 10 drop`), until the end
 *   slow       host 4's process is stopped (SIGSTOP) 300 ms out of every 500 for 2 s, then
 *              for 1.5 s, then continued (SIGCONT): its receive path stalls, its socket fills
 *
 * After the writes, healing and quiescence, every scenario checks:
 *   - every live host holds identical entries (key, version, value checksum, value) and the
 *     same Cache.checksum();
 *   - every entry is a write some process really made, with that value;
 *   - no returned write is lost: on every host, each key's version (entry or tombstone) is at
 *     least the version of the last set or delete every live writer made of it (no TTL or
 *     capacity bound applies: TTL 1 h, 10,000 entries);
 *   - every host holds the PRE keys of every writer, the killed one's included: a restarted or
 *     reconnected member is brought up to date (only anti-entropy can bring those);
 *   - every live host lists exactly the other live hosts as members;
 *   - kill: every survivor removed the killed process (reason timeout) within the failure
 *     timeout plus SLACK_MS of scheduling on a loaded 2-core machine; partition and slow: the
 *     cut or stopped host was removed the same way and came back (member-up);
 *   - multicast: every host's eth0 joined 224.0.0.3 (IGMP); loss: the kernel did drop, and the
 *     protocol repaired (NAKs, retransmissions);
 *   - every process exits by itself with code 0.
 *
 * Needs root: without it the suite prints why and skips (CI runs as root, and runs it).
 * About 10-15 s per scenario.
 */
import { expect } from 'chai';
import { compareVersion, MemberProcess, within, type Reply } from '../cluster/member-process';
import { LAB_PORT, NetnsLab, compiledFixture, requireTools, skipReason } from './netns-lab';

const HOSTS = 4;
const CACHE = 'netns';
const HEARTBEAT_MS = 100;
/** runtime/index.ts: the core's failure timeout is 5 heartbeats. */
const FAILURE_TIMEOUT_MS = 5 * HEARTBEAT_MS;
/** Scheduling allowance on top of the failure timeout and one sweep period (2 busy cores). */
const SLACK_MS = 1000;
const PULSE_MS = 300;
const SHARED_KEYS = 200;
const OWN_KEYS = 50;
const PRE_KEYS = 20;
const RATE = 250;
const MAX_OPS = 3000;
const WRITES_MS = 4500;
const KILL_AT = 1500;
const RESTART_WRITES_MS = 1000;
const CUT_AT = 1000;
const CUT_MS = 3000;
const SLOW_AT = 1000;
const LOSS_PERCENT = 10;
const CONVERGE_LIMIT_MS = 20_000;
const TAGS = ['', 'a', 'b', 'c', 'd', 'e'];

type Transport = 'multicast' | 'unicast';
type Fault = 'kill' | 'partition' | 'loss' | 'slow';

interface Entry { key: string; hlc: string; origin: string; checksum: string; tag: string }
interface MemberEvent { type: 'up' | 'down'; nodeId: string; reason?: string; at: number }
interface Report {
  nodeId: string;
  entries: Entry[];
  versions: Record<string, [string, string]>;
  checksum: string;
  members: string[];
  memberEvents: MemberEvent[];
  stats: { naksSent: number; retransmits: number; gapsReported: number; shed: number };
  transport: { localPeer?: string; targetedSent?: number; notPeerDropped?: number; sendErrors: number };
}

const wallNow = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const sleepUntil = (at: number): Promise<void> => sleep(Math.max(0, at - wallNow()));

/** One netns-node.ts process on one host. */
class Member extends MemberProcess {
  constructor(lab: NetnsLab, readonly host: number, readonly index: number, readonly tag: string, env: NodeJS.ProcessEnv) {
    super(lab.spawnNode(host, compiledFixture(), [], {
      ...env, NETNS_NODE_CONFIG: JSON.stringify({ index, tag, members: HOSTS - 1, cache: CACHE }),
    }), `host ${host} (${tag}${index})`);
  }
}

/** Environment of a node process: production network settings, fast timers, room for every key. */
function nodeEnv(lab: NetnsLab, transport: Transport): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('MCCACHE_')) delete env[k];
  return {
    ...env,
    MCCACHE_DAEMON_SLEEP: `${HEARTBEAT_MS}ms`,
    MCCACHE_CACHE_PULSE: `${PULSE_MS}ms`,
    MCCACHE_CACHE_MAX: '10000',
    ...(transport === 'unicast' && { MCCACHE_PEERS: lab.hosts.map((h) => `${h.address}:${LAB_PORT}`).join(',') }),
  };
}

/** The first event of `type` about `nodeId` at or after `after` (wall ms) in a report. */
function eventAfter(r: Report, type: 'up' | 'down', nodeId: string, after: number): MemberEvent | undefined {
  return r.memberEvents.find((e) => e.type === type && e.nodeId === nodeId && e.at >= after);
}

async function scenario(transport: Transport, fault: Fault): Promise<void> {
  const t0 = performance.now();
  const lab = new NetnsLab(HOSTS);
  const all: Member[] = [];
  try {
    const env = nodeEnv(lab, transport);
    const start = (host: number, index: number): Member => {
      const m = new Member(lab, host, index, TAGS[host]!, env);
      all.push(m);
      return m;
    };
    const readyOf = async (m: Member): Promise<void> => {
      const r = await within(m.ready, 30_000, `${m.name} ready`);
      expect(r.type, `${m.name} ready: ${JSON.stringify(m.errors)}`).to.equal('ready');
    };
    const byHost: Member[] = [];
    for (let h = 1; h <= HOSTS; h++) byHost[h] = start(h, h);
    await Promise.all(byHost.slice(1).map(readyOf));
    const tReady = performance.now();
    if (transport === 'multicast') {
      for (let h = 1; h <= HOSTS; h++) expect(lab.groups(h), `host ${h} joined the default group on eth0`).to.include('224.0.0.3');
    }
    if (fault === 'loss') for (let h = 1; h <= HOSTS; h++) lab.loss(h, LOSS_PERCENT);

    const w0 = wallNow();
    const until = w0 + WRITES_MS;
    const writeArgs = { until, maxOps: MAX_OPS, rate: RATE, shared: SHARED_KEYS, own: OWN_KEYS, pre: PRE_KEYS };
    const writes = new Map<Member, Promise<Reply>>();
    for (let h = 1; h <= HOSTS; h++) writes.set(byHost[h]!, byHost[h]!.ask('write', { seed: 1000 * h + 7, ...writeArgs }, WRITES_MS + 30_000));

    const marks: Record<string, number> = {};
    let killed: Member | undefined;
    let victimId = '';
    switch (fault) {
      case 'kill': {
        await sleepUntil(w0 + KILL_AT);
        killed = byHost[2]!;
        victimId = killed.nodeId;
        marks['killedAt'] = wallNow();
        killed.signal('SIGKILL');
        writes.delete(killed); // it never answers
        const restarted = start(2, HOSTS + 1);
        byHost[2] = restarted;
        await readyOf(restarted);
        marks['restartedAt'] = wallNow();
        writes.set(restarted, restarted.ask('write', { seed: 9001, ...writeArgs, until: Math.max(until, wallNow() + RESTART_WRITES_MS) }, WRITES_MS + 30_000));
        break;
      }
      case 'partition': {
        victimId = byHost[3]!.nodeId;
        await sleepUntil(w0 + CUT_AT);
        marks['cutAt'] = wallNow();
        lab.cut(3);
        await sleepUntil(w0 + CUT_AT + CUT_MS);
        marks['healedAt'] = wallNow();
        lab.heal(3);
        break;
      }
      case 'slow': {
        const slow = byHost[4]!;
        victimId = slow.nodeId;
        await sleepUntil(w0 + SLOW_AT);
        for (let i = 0; i < 4; i++) {
          slow.signal('SIGSTOP');
          await sleep(300);
          slow.signal('SIGCONT');
          await sleep(200);
        }
        marks['pausedAt'] = wallNow();
        slow.signal('SIGSTOP');
        await sleep(1500);
        marks['resumedAt'] = wallNow();
        slow.signal('SIGCONT');
        break;
      }
      case 'loss':
        break;
    }
    const live = byHost.slice(1);
    const writers = [...writes.keys()];
    const results = new Map<Member, Reply>();
    await Promise.all(writers.map(async (m) => results.set(m, await writes.get(m)!)));
    if (killed) {
      const k = await within(killed.exited, 5_000, 'killed process exit');
      expect(k.signal, 'the killed process died of SIGKILL').to.equal('SIGKILL');
    }
    const tWrites = performance.now();

    // Quiescence, then pulses until every live host holds the same entries (bounded).
    const quiet = await Promise.all(live.map((m) => m.ask('quiet', { timeoutMs: 15_000 }, 20_000)));
    for (const [i, q] of quiet.entries()) expect(q['ok'], `${live[i]!.name} quiescent: ${JSON.stringify(q)}`).to.equal(true);
    const tQuiet = performance.now();
    const keys: string[] = [];
    for (let i = 0; i < SHARED_KEYS; i++) keys.push(`s${i}`);
    for (const t of TAGS.slice(1)) for (let i = 0; i < OWN_KEYS; i++) keys.push(`${t}${i}`);
    for (let x = 1; x <= HOSTS + 1; x++) for (let i = 0; i < PRE_KEYS; i++) keys.push(`pre${x}-${i}`);
    const report = async (): Promise<Report[]> => (await Promise.all(live.map((m) => m.ask('report', { keys })))) as unknown as Report[];
    let reports: Report[] = [];
    let rounds = 0;
    for (;;) {
      reports = await report();
      rounds++;
      const same = new Set(reports.map((r) => r.checksum)).size === 1;
      const formed = reports.every((r) => r.members.length === HOSTS - 1);
      if ((same && formed) || performance.now() - tQuiet > CONVERGE_LIMIT_MS) break;
      await sleep(PULSE_MS);
    }
    const tConverged = performance.now();
    // A few more pulses: a coherent cluster stays coherent.
    await sleep(3 * PULSE_MS);
    reports = await report();
    const lossDropped = fault === 'loss' ? live.map((m) => lab.lossDropped(m.host)) : [];

    const exits = live.map((m) => m.exited);
    await Promise.all(live.map((m) => m.ask('exit')));
    const codes = await within(Promise.all(exits), 15_000, 'processes exiting by themselves');

    const delays: Record<string, number[]> = {};
    const delay = (name: string, ms: number): void => {
      (delays[name] ??= []).push(Math.round(ms));
    };

    console.log(`      netns ${transport}/${fault}`, JSON.stringify({
      ops: writers.map((m) => results.get(m)!['ops']), killedSets: killed?.written.size,
      readyMs: Math.round(tReady - t0), quietMs: Math.round(tQuiet - tWrites), convergedMs: Math.round(tConverged - tQuiet), rounds,
      entries: reports[0]!.entries.length, naks: reports.map((r) => r.stats.naksSent), retransmits: reports.map((r) => r.stats.retransmits),
      gaps: reports.map((r) => r.stats.gapsReported), targeted: reports.map((r) => r.transport.targetedSent ?? 0), lossDropped,
      totalMs: Math.round(performance.now() - t0),
    }));

    for (const m of all) expect(m.errors, `errors reported by ${m.name}`).to.deep.equal([]);
    // The restarted process writes for RESTART_WRITES_MS at least; the stopped one loses its turns.
    const restartedOrSlow = (m: Member): boolean => m.index > HOSTS || (fault === 'slow' && m.host === 4);
    for (const m of writers) expect(Number(results.get(m)!['ops']), `ops by ${m.name}`).to.be.greaterThan(restartedOrSlow(m) ? 100 : 300);

    // Identical entries and checksums on every live host.
    const entries = reports.map((r) => r.entries);
    for (let i = 1; i < live.length; i++) expect(entries[i], `${live[i]!.name} vs ${live[0]!.name}`).to.deep.equal(entries[0]);
    expect(entries[0]!.length, 'entries left after the run').to.be.greaterThan(100);
    expect(new Set(reports.map((r) => r.checksum)).size, 'distinct checksums').to.equal(1);

    // Every entry is a set its writer really made, with that value.
    const writerById = new Map([...all].map((m) => [m.nodeId, m]));
    for (const e of entries[0]!) {
      const w = writerById.get(e.origin);
      expect(w, `entry ${e.key}: origin ${e.origin} is a writer`).to.not.equal(undefined);
      expect(e.tag.startsWith(`${w!.tag}|${e.key}|`), `entry ${e.key}: value ${e.tag} by ${w!.tag}`).to.equal(true);
      const sum = w!.written.get(`${e.key}/${e.hlc}`);
      // The killed process's last sets (after its last report) are unknown, but must be newer.
      if (sum === undefined && w === killed) expect(BigInt(e.hlc) > killed!.lastReportedHlc, `entry ${e.key} by the killed process`).to.equal(true);
      else expect(sum, `entry ${e.key}@${e.hlc} by ${w!.name}`).to.equal(e.checksum);
    }

    // No returned write of a live writer lost: every host holds each key at least at the
    // version of that writer's last set or delete of it.
    for (const w of writers) {
      for (const [key, hlc, kind] of results.get(w)!['last'] as Array<[string, string, string, string]>) {
        for (const [i, r] of reports.entries()) {
          const v = r.versions[key];
          expect(v, `${live[i]!.name}: key ${key} (last ${kind} by ${w.name}) is known`).to.not.equal(undefined);
          expect(compareVersion({ hlc: v![0], origin: v![1] }, { hlc, origin: w.nodeId }), `${live[i]!.name}: key ${key}, last ${kind} by ${w.name}`).to.be.at.least(0);
        }
      }
    }

    // Up to date: every writer's PRE keys (the killed process's too) on every host.
    const final = new Map(entries[0]!.map((e) => [e.key, e]));
    for (const w of all) {
      for (let i = 0; i < PRE_KEYS; i++) expect(final.get(`pre${w.index}-${i}`)?.origin, `pre${w.index}-${i} by ${w.name}`).to.equal(w.nodeId);
    }

    // Membership healed: every live host lists exactly the others.
    for (const [i, r] of reports.entries()) {
      expect([...r.members].sort(), `${live[i]!.name} members`).to.deep.equal(live.filter((_, j) => j !== i).map((m) => m.nodeId).sort());
    }

    if (fault === 'kill') {
      for (const [i, r] of reports.entries()) {
        if (live[i] === byHost[2]) continue; // the restarted process never knew the killed one
        const down = eventAfter(r, 'down', victimId, marks['killedAt']!);
        expect(down, `${live[i]!.name} removed the killed process`).to.not.equal(undefined);
        expect(down!.reason).to.equal('timeout');
        delay('removedAfterKillMs', down!.at - marks['killedAt']!);
      }
    }
    if (fault === 'partition' || fault === 'slow') {
      const from = fault === 'partition' ? marks['cutAt']! : marks['pausedAt']!;
      const back = fault === 'partition' ? marks['healedAt']! : marks['resumedAt']!;
      const victim = fault === 'partition' ? byHost[3]! : byHost[4]!;
      for (const [i, r] of reports.entries()) {
        const others = live[i] === victim ? live.filter((m) => m !== victim).map((m) => m.nodeId) : [victimId];
        for (const id of others) {
          const down = eventAfter(r, 'down', id, from);
          // A stopped process measures nothing while stopped: only its peers' view is timed.
          if (fault === 'slow' && live[i] === victim) continue;
          expect(down, `${live[i]!.name} removed ${id}`).to.not.equal(undefined);
          expect(down!.reason).to.equal('timeout');
          delay('removedAfterFaultMs', down!.at - from);
          expect(eventAfter(r, 'up', id, back), `${live[i]!.name} saw ${id} come back`).to.not.equal(undefined);
        }
      }
    }
    console.log(`      netns ${transport}/${fault} membership`, JSON.stringify(delays));
    for (const [name, ds] of Object.entries(delays)) {
      for (const d of ds) expect(d, `${name}: within the failure timeout (${FAILURE_TIMEOUT_MS} ms) + sweep + ${SLACK_MS} ms`).to.be.at.most(FAILURE_TIMEOUT_MS + HEARTBEAT_MS + SLACK_MS);
    }
    if (fault === 'loss') {
      expect(lossDropped.reduce((a, b) => a + b, 0), 'datagrams the kernel dropped').to.be.greaterThan(100);
      expect(reports.reduce((a, r) => a + r.stats.naksSent, 0), 'NAKs').to.be.greaterThan(0);
      expect(reports.reduce((a, r) => a + r.stats.retransmits, 0), 'retransmissions').to.be.greaterThan(0);
    }
    if (transport === 'unicast') {
      for (const [i, r] of reports.entries()) {
        expect(r.transport.localPeer, `${live[i]!.name} bound its own entry`).to.equal(`${lab.host(live[i]!.host).address}:${LAB_PORT}`);
        expect(r.transport.notPeerDropped, `${live[i]!.name} heard only peers`).to.equal(0);
      }
    }
    expect(codes.map((c) => c.code), 'exit codes').to.deep.equal(live.map(() => 0));
  } finally {
    for (const m of all) m.signal('SIGKILL');
    lab.teardown();
  }
}

describe('netns: 4 hosts on a bridge, real faults, multicast and unicast', function () {
  this.timeout(120_000);

  before(function () {
    const why = skipReason();
    if (why !== undefined) {
      console.log(`      skipped: ${why}`);
      this.skip();
    }
    requireTools();
    compiledFixture();
  });

  for (const transport of ['multicast', 'unicast'] as const) {
    describe(transport, () => {
      it('kill: a host SIGKILLed under load is removed within the failure timeout; restarted, it catches up', () => scenario(transport, 'kill'));
      it('partition: a host cut off for 3 s is removed, comes back and converges', () => scenario(transport, 'partition'));
      it(`loss: ${LOSS_PERCENT} % kernel-level loss on every host (nftables) is repaired`, () => scenario(transport, 'loss'));
      it('slow: a member whose process is repeatedly stopped (SIGSTOP/SIGCONT) converges', () => scenario(transport, 'slow'));
    });
  }
});
