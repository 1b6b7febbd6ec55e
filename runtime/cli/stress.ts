/**
 * `mccache stress`: McCache-for-Python's stress test (tests/stress, docs/TESTING.md) as one
 * command with a strict verdict.
 *
 * It forks N node processes (runtime/cli/stress-node.ts, public API only) that write random
 * sets and deletes to the same keys for a bounded time and count, prints progress once a
 * second, then waits (bounded) for the cluster to go quiet and requires every node to hold
 * identical keys, versions and values (and the same Cache.checksum()). Unlike McCache's
 * pytest, which forgives differences between overlapping writes, any difference fails here.
 *
 * HOST-LOCAL BY DESIGN: every node uses interface 127.0.0.1 with TTL 0 (MCCACHE_MULTICAST_HOPS=0)
 * and a random 239.255.x.y group and high port chosen here; the user's MCCACHE_* settings are
 * not passed on, so no packet leaves the machine and two runs never meet.
 *
 * With --report FILE.html it also writes a self-contained HTML report (runtime/cli/stress-report.ts):
 * the verdict, the parameters, latency percentiles and distribution, throughput per second, and
 * the send queues and NAKs per second. The file is written even when the run fails.
 *
 * Exit codes: 0 coherent, 1 incoherent (or a node failed, or the report could not be written at
 * the end), 2 usage error (a --report file that cannot be written is found before the run).
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { extname, join } from 'node:path';
import { stressReportHtml, type StressReport, type StressSecond } from './stress-report';

export const STRESS_USAGE = `usage: mccache stress [options]

  --nodes N            node processes, 2..16 (default 3; env TEST_CLUSTER_SIZE)
  --keys K             distinct keys written (default 100; env TEST_MAX_ENTRIES, TEST_KEY_ENTRIES)
  --aperture SECONDS   mean pause between two ops of one node (default 0.05; env TEST_APERTURE)
  --rate OPS_PER_S     the same as a rate per node (1/aperture); not with --aperture
  --duration SECONDS   how long the nodes write (default 20; env TEST_RUN_DURATION, in minutes as
                       in McCache)
  --drop PERCENT       outgoing datagrams each node drops on purpose, 0..99 (default 0; env
                       TEST_MONKEY_TANTRUM, MCCACHE_MONKEY_TANTRUM)
  --size-mix 1|2|3     values small, big (~10 KB) or mixed (default 1; env TEST_DATA_SIZE_MIX)
  --seed N             random seed of the workload (default 1; env TEST_RANDOM_SEED)
  --settle SECONDS     longest wait for the cluster to go quiet and agree after the writes
                       (default 20)
  --report FILE.html   also write a self-contained HTML report there (no scripts, fonts or
                       URLs; inline SVG charts): verdict, parameters, latency percentiles and
                       distribution, ops/s per second, send queues and NAKs per second

Host-local by design: the nodes use 127.0.0.1 with TTL 0 and a random 239.255.x.y group and
high port of this run (any MCCACHE_MULTICAST_IP in the environment is ignored), so no packet
leaves this machine. Prints progress once a second, then a verdict: every node must hold
identical keys, versions and values. Exit codes: 0 coherent, 1 incoherent, 2 usage error.`;

export interface StressOptions {
  nodes: number;
  keys: number;
  apertureMs: number;
  durationMs: number;
  drop: number;
  sizeMix: 1 | 2 | 3;
  seed: number;
  settleMs: number;
  /** Where to write the HTML report (--report), or undefined. */
  report: string | undefined;
  fakeDivergence: boolean;
}

const CACHE = 'stress';
const PULSE = '500ms';
const DAEMON_SLEEP = '100ms';
const REPLY_TIMEOUT_MS = 10_000;

class UsageError extends Error {}

function num(name: string, raw: string | undefined, min: number, max: number, integer: boolean): number {
  if (raw === undefined || raw.trim() === '') throw new UsageError(`${name} needs a value`);
  const v = Number(raw);
  if (!Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || v > max) {
    throw new UsageError(`${name} needs ${integer ? 'an integer' : 'a number'} in ${min}..${max}, not ${JSON.stringify(raw)}`);
  }
  return v;
}

/** Options from the command line, then McCache's TEST_* environment names, then defaults. */
export function parseStressOptions(args: string[], env: NodeJS.ProcessEnv = process.env): StressOptions {
  const flags = new Map<string, string | undefined>();
  let fakeDivergence = false;
  const valued = ['--nodes', '--keys', '--aperture', '--rate', '--duration', '--drop', '--size-mix', '--seed', '--settle', '--report'];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.indexOf('=');
    const [name, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    if (name === '--fake-divergence') fakeDivergence = true; // hidden, test-only
    else if (valued.includes(name)) flags.set(name, inline ?? args[++i]);
    else throw new UsageError(`unknown argument ${JSON.stringify(a)}`);
  }
  const pick = (flag: string, ...envNames: string[]): [string, string | undefined] | undefined => {
    if (flags.has(flag)) return [flag, flags.get(flag)];
    for (const e of envNames) if (env[e] !== undefined && env[e] !== '') return [e, env[e]];
    return undefined;
  };
  const get = (flag: string, envNames: string[], def: number, min: number, max: number, integer: boolean): number => {
    const p = pick(flag, ...envNames);
    return p === undefined ? def : num(p[0], p[1], min, max, integer);
  };
  if (flags.has('--aperture') && flags.has('--rate')) throw new UsageError('--aperture and --rate exclude each other');
  const report = flags.get('--report');
  if (flags.has('--report') && (report === undefined || report.trim() === '' || report.startsWith('-'))) {
    throw new UsageError('--report needs a file name (FILE.html)');
  }
  let apertureMs: number;
  if (flags.has('--rate')) apertureMs = 1000 / num('--rate', flags.get('--rate'), 0.01, 100_000, false);
  else apertureMs = 1000 * get('--aperture', ['TEST_APERTURE'], 0.05, 0.00001, 100, false);
  let durationMs: number;
  if (flags.has('--duration')) durationMs = 1000 * num('--duration', flags.get('--duration'), 0.1, 3600, false);
  else if (env['TEST_RUN_DURATION']) durationMs = 60_000 * num('TEST_RUN_DURATION', env['TEST_RUN_DURATION'], 0.01, 60, false);
  else durationMs = 20_000;
  return {
    nodes: get('--nodes', ['TEST_CLUSTER_SIZE'], 3, 2, 16, true),
    keys: get('--keys', ['TEST_MAX_ENTRIES', 'TEST_KEY_ENTRIES'], 100, 1, 100_000, true),
    apertureMs,
    durationMs,
    drop: get('--drop', ['TEST_MONKEY_TANTRUM', 'MCCACHE_MONKEY_TANTRUM'], 0, 0, 99, true),
    sizeMix: get('--size-mix', ['TEST_DATA_SIZE_MIX'], 1, 1, 3, true) as 1 | 2 | 3,
    seed: get('--seed', ['TEST_RANDOM_SEED'], 1, 0, 2 ** 31 - 1, true),
    settleMs: 1000 * get('--settle', [], 20, 0.5, 600, false),
    report,
    fakeDivergence,
  };
}

interface Reply { type: string; index: number; [k: string]: unknown }
interface Stats { pending: number; members: number; unackedMessages: number; retransmits: number; naksSent: number; tantrumDropped: number }
interface Report { entries: Array<[string, string, string, string]>; checksum: string; latencies: number[]; stats: Stats }

const wallNow = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

class StressNode {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  readonly ready: Promise<Reply>;
  tick: { ops: number; stats: Stats } = { ops: 0, stats: { pending: 0, members: 0, unackedMessages: 0, retransmits: 0, naksSent: 0, tantrumDropped: 0 } };
  readonly #waiting = new Map<string, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();

  constructor(readonly index: number, o: StressOptions, env: NodeJS.ProcessEnv) {
    const file = join(__dirname, `stress-node${extname(__filename)}`);
    const config = { index, members: o.nodes, cache: CACHE, keys: o.keys, apertureMs: o.apertureMs, sizeMix: o.sizeMix,
      seed: o.seed, fakeDivergence: o.fakeDivergence };
    this.child = fork(file, [], { execArgv: process.execArgv, env: { ...env, STRESS_NODE_CONFIG: JSON.stringify(config) },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => {
      resolve(code);
      for (const w of this.#waiting.values()) w.reject(new Error(`node ${index + 1} exited (code ${code})`));
      this.#waiting.clear();
    }));
    this.ready = this.#next('ready', 30_000);
    this.child.on('message', (m: Reply) => {
      if (m.type === 'tick') {
        this.tick = m as unknown as StressNode['tick'];
        return;
      }
      const key = m.type === 'error' ? String(m['cmd']) : m.type;
      const w = this.#waiting.get(key);
      this.#waiting.delete(key);
      if (m.type === 'error') w?.reject(new Error(`node ${index + 1}: ${String(m['error'])}`));
      else w?.resolve(m);
    });
  }

  #next(type: string, timeoutMs: number): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(type);
        reject(new Error(`node ${this.index + 1}: no '${type}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(type, { resolve: (r) => { clearTimeout(timer); resolve(r); }, reject: (e) => { clearTimeout(timer); reject(e); } });
    });
  }

  request(cmd: { cmd: string; [k: string]: unknown }, timeoutMs = REPLY_TIMEOUT_MS): Promise<Reply> {
    const p = this.#next(cmd.cmd, timeoutMs);
    this.child.send(cmd);
    return p;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** What differs between the nodes' reports (empty: coherent). */
export function differences(reports: Report[]): string[] {
  const out: string[] = [];
  const base = reports[0]!;
  const baseMap = new Map(base.entries.map((e) => [e[0], e.slice(1).join('/')]));
  reports.forEach((r, i) => {
    if (i === 0) return;
    const m = new Map(r.entries.map((e) => [e[0], e.slice(1).join('/')]));
    const keys = new Set([...baseMap.keys(), ...m.keys()]);
    const bad: string[] = [];
    for (const k of keys) if (baseMap.get(k) !== m.get(k)) bad.push(k);
    if (bad.length > 0) out.push(`node ${i + 1} differs from node 1 on ${bad.length} key(s): ${bad.sort().slice(0, 5).join(', ')}${bad.length > 5 ? ', ...' : ''}`);
    if (r.checksum !== base.checksum) out.push(`node ${i + 1} checksum ${r.checksum} != node 1 checksum ${base.checksum}`);
  });
  return out;
}

export async function runStress(o: StressOptions, out: (s: string) => void): Promise<number> {
  const r = (n: number): number => Math.floor(Math.random() * n);
  const group = `239.255.${1 + r(254)}.${1 + r(254)}`;
  const port = 20_000 + r(40_000);
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MCCACHE_') && !k.startsWith('TEST_')) env[k] = v;
  Object.assign(env, {
    MCCACHE_MULTICAST_IP: `${group}:${port}`,
    MCCACHE_MULTICAST_HOPS: '0',
    MCCACHE_MONKEY_TANTRUM: String(o.drop),
    MCCACHE_CACHE_PULSE: PULSE,
    MCCACHE_DAEMON_SLEEP: DAEMON_SLEEP,
    MCCACHE_CACHE_MAX: String(Math.max(256, o.keys * 2)),
    MCCACHE_CACHE_SIZE: String(Math.max(8_388_608, o.keys * 12 * 1024 * 2)),
  });
  const rate = 1000 / o.apertureMs;
  out(`stress: ${o.nodes} nodes on host-local ${group}:${port} (TTL 0), ${o.keys} keys, ${rate.toFixed(1)} ops/s per node, ` +
    `${(o.durationMs / 1000).toFixed(1)} s, drop ${o.drop} %, size mix ${o.sizeMix}, seed ${o.seed}`);
  // What the report shows; filled as the run goes, written in `finally` whatever happened.
  const report: StressReport = {
    parameters: [
      ['nodes', String(o.nodes)], ['keys', String(o.keys)], ['ops/s per node', rate.toFixed(1)],
      ['duration (s)', (o.durationMs / 1000).toFixed(1)], ['drop (%)', String(o.drop)], ['size mix', String(o.sizeMix)],
      ['seed', String(o.seed)], ['settle (s)', (o.settleMs / 1000).toFixed(1)], ['group', `${group}:${port} (host-local, TTL 0)`],
    ],
    startedAt: new Date().toISOString(),
    node: process.version,
    verdict: { coherent: false, line: 'verdict: INCOHERENT: the run did not complete', details: [] },
    latency: { sortedMs: [], line: '', p50: '-', p90: '-', p99: '-', max: '-' },
    opsPerSecond: [],
    seconds: [],
    totals: { ops: 0, writeSeconds: '-', drain: '-', naks: 0, retransmits: 0, dropped: 0 },
  };
  const nodes = Array.from({ length: o.nodes }, (_v, i) => new StressNode(i, o, env));
  let progress: NodeJS.Timeout | undefined;
  let code = 1;
  try {
    await Promise.all(nodes.map((n) => n.ready));
    out(`stress: cluster formed (${o.nodes} members)`);
    const t0 = wallNow();
    const until = t0 + o.durationMs;
    const maxOps = Math.ceil(rate * (o.durationMs / 1000) * 1.2) + 100;
    let lastOps = 0;
    let sec = 0;
    const last = { naksSent: 0, retransmits: 0, tantrumDropped: 0 };
    progress = setInterval(() => {
      sec++;
      const ops = nodes.reduce((s, n) => s + n.tick.ops, 0);
      const sum = (f: keyof Stats): number => nodes.reduce((s, n) => s + n.tick.stats[f], 0);
      out(`  ${String(sec).padStart(3)} s  ops/s ${String(ops - lastOps).padStart(6)}  pending ${sum('pending')}  unacked ${sum('unackedMessages')}` +
        `  NAKs ${sum('naksSent')}  retransmits ${sum('retransmits')}  dropped ${sum('tantrumDropped')}`);
      lastOps = ops;
      const second: StressSecond = {
        pending: sum('pending'), unacked: sum('unackedMessages'), naks: sum('naksSent') - last.naksSent,
        retransmits: sum('retransmits') - last.retransmits, dropped: sum('tantrumDropped') - last.tantrumDropped,
      };
      for (const f of ['naksSent', 'retransmits', 'tantrumDropped'] as const) last[f] = sum(f);
      report.seconds.push(second);
    }, 1000);
    const writes = await Promise.all(nodes.map((n) => n.request({ cmd: 'write', startAt: t0, until, maxOps }, o.durationMs + REPLY_TIMEOUT_MS)));
    clearInterval(progress);
    const writesEnd = wallNow();
    const totalOps = writes.reduce((s, w) => s + Number(w['ops']), 0);
    const writeSeconds = ((writesEnd - t0) / 1000).toFixed(1);
    for (const w of writes) {
      (w['opsPerSecond'] as number[]).forEach((c, i) => { report.opsPerSecond[i] = (report.opsPerSecond[i] ?? 0) + c; });
    }
    report.totals.ops = totalOps;
    report.totals.writeSeconds = writeSeconds;
    out(`stress: writes done: ${totalOps} ops in ${writeSeconds} s; waiting up to ${(o.settleMs / 1000).toFixed(1)} s for quiescence`);

    // Quiescence: every node quiet (nothing pending or unacknowledged) and every report identical.
    let reports: Report[] = [];
    let diffs: string[] = ['no report'];
    let quiet = false;
    const deadline = writesEnd + o.settleMs;
    for (;;) {
      reports = (await Promise.all(nodes.map((n) => n.request({ cmd: 'report' })))) as unknown as Report[];
      quiet = reports.every((x) => x.stats.pending === 0 && x.stats.unackedMessages === 0);
      diffs = differences(reports);
      if ((quiet && diffs.length === 0) || wallNow() >= deadline) break;
      await sleep(250);
    }
    const drainMs = wallNow() - writesEnd;
    const lat = reports.flatMap((x) => x.latencies).sort((a, b) => a - b);
    const f = (v: number): string => (Number.isNaN(v) ? '-' : v.toFixed(1));
    const latency = { p50: f(percentile(lat, 50)), p90: f(percentile(lat, 90)), p99: f(percentile(lat, 99)), max: f(percentile(lat, 100)) };
    const latencyLine = `put-to-visible latency (ms, ${lat.length} remote sets): p50 ${latency.p50}  p90 ${latency.p90}` +
      `  p99 ${latency.p99}  max ${latency.max}`;
    out(latencyLine);
    report.latency = { sortedMs: lat, line: latencyLine, ...latency };
    const drain = `${(drainMs / 1000).toFixed(2)} s${quiet ? '' : ' (still not quiet)'}`;
    out(`drain time: ${drain}`);
    const retr = reports.reduce((s, x) => s + x.stats.retransmits, 0);
    const naks = reports.reduce((s, x) => s + x.stats.naksSent, 0);
    const dropped = reports.reduce((s, x) => s + x.stats.tantrumDropped, 0);
    out(`totals: NAKs ${naks}, retransmits ${retr}, dropped on purpose ${dropped}`);
    Object.assign(report.totals, { drain, naks, retransmits: retr, dropped });
    if (diffs.length === 0) {
      const line = `verdict: COHERENT: ${o.nodes} nodes hold identical ${reports[0]!.entries.length} entries (keys, versions, values), checksum ${reports[0]!.checksum}`;
      out(line);
      report.verdict = { coherent: true, line, details: [] };
      code = 0;
    } else {
      for (const d of diffs) out(`  ${d}`);
      const line = `verdict: INCOHERENT: the ${o.nodes} nodes do not hold identical entries after ${(drainMs / 1000).toFixed(1)} s`;
      out(line);
      report.verdict = { coherent: false, line, details: diffs };
      code = 1;
    }
  } catch (err) {
    out(`stress: FAILED: ${(err as Error).message}`);
    out(report.verdict.line);
    report.verdict.details = [`stress: FAILED: ${(err as Error).message}`];
    code = 1;
  } finally {
    if (progress) clearInterval(progress);
    for (const n of nodes) {
      if (n.child.connected) n.request({ cmd: 'exit' }, 3000).catch(() => undefined);
    }
    const killer = setTimeout(() => nodes.forEach((n) => n.kill()), 5000);
    await Promise.all(nodes.map((n) => n.exited));
    clearTimeout(killer);
    if (o.report !== undefined) {
      try {
        fs.writeFileSync(o.report, stressReportHtml(report));
        out(`report: ${o.report}`);
      } catch (err) {
        out(`mccache stress: --report ${o.report}: cannot write the report: ${(err as Error).message}`);
        code = 1;
      }
    }
  }
  return code;
}

/** `mccache stress ARGS`: 2 at once on a usage error, else 0 and process.exitCode when done. */
export function stressCommand(args: string[], out: (s: string) => void): number {
  if (args.includes('--help') || args.includes('-h')) {
    out(STRESS_USAGE);
    return 0;
  }
  let o: StressOptions;
  try {
    o = parseStressOptions(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    out(`mccache stress: ${err.message}\n\n${STRESS_USAGE}`);
    return 2;
  }
  if (o.report !== undefined) {
    // Fail before the run, not after it: the file must be writable (created empty if new).
    try {
      fs.closeSync(fs.openSync(o.report, 'a'));
    } catch (err) {
      out(`mccache stress: --report ${o.report}: cannot write: ${(err as Error).message}`);
      return 2;
    }
  }
  runStress(o, out).then((code) => { process.exitCode = code; }, (err: unknown) => {
    out(`mccache stress: ${String(err)}`);
    process.exitCode = 1;
  });
  return 0;
}
