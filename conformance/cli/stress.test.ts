/**
 * `mccache stress` (runtime/cli/stress.ts): real node processes on host-local multicast (TTL 0 on
 * 127.0.0.1, a random 239.255.x.y group and high port chosen by the command: no packet leaves
 * the machine).
 *   (a) 3 nodes, 10 % of datagrams dropped, mixed value sizes, ~6 s of writes: exit 0 and the
 *       coherent verdict, with progress lines, latency percentiles and a drain time;
 *   (b) the hidden --fake-divergence (node 1 reports an entry nobody has): exit 1, incoherent;
 *   (c) bad options: exit 2 with a message naming the option (in-process, no node started).
 * About 12 s in all.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { main } from '../../runtime/cli/main';
import { parseStressOptions } from '../../runtime/cli/stress';

const ROOT = join(__dirname, '..', '..');
const MAIN = join(ROOT, 'runtime', 'cli', 'main.ts');

/** Runs `mccache stress ARGS` through ts-node (transpile-only), killed after `limitMs`. */
function runStress(args: string[], limitMs: number): Promise<{ code: number | null; stdout: string }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MCCACHE_') && !k.startsWith('TEST_')) env[k] = v;
  env['TS_NODE_TRANSPILE_ONLY'] = '1';
  env['TS_NODE_PROJECT'] = join(ROOT, 'tsconfig.test.json');
  const p = spawn(process.execPath, ['-r', require.resolve('ts-node/register'), MAIN, 'stress', ...args],
    { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  p.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  const timer = setTimeout(() => p.kill('SIGKILL'), limitMs);
  return new Promise((resolve) => p.on('close', (code) => {
    clearTimeout(timer);
    resolve({ code, stdout });
  }));
}

describe('mccache stress', function () {
  this.timeout(30_000);

  it('3 nodes with 10 % drop end coherent: exit 0', async () => {
    const r = await runStress(['--nodes', '3', '--duration', '6', '--drop', '10', '--rate', '50', '--size-mix', '3',
      '--seed', '7', '--settle', '10'], 25_000);
    expect(r.stdout, r.stdout).to.match(/verdict: COHERENT: 3 nodes hold identical \d+ entries/);
    expect(r.code, r.stdout).to.equal(0);
    expect(r.stdout).to.match(/host-local 239\.255\.\d+\.\d+:\d+ \(TTL 0\)/);
    expect(r.stdout).to.match(/ops\/s +\d+ +pending \d+ +unacked \d+ +NAKs \d+ +retransmits \d+/);
    expect(r.stdout).to.match(/put-to-visible latency \(ms, [1-9]\d* remote sets\): p50 [\d.]+ +p90 [\d.]+ +p99 [\d.]+ +max [\d.]+/);
    expect(r.stdout).to.match(/drain time: [\d.]+ s\n/);
    const dropped = /dropped on purpose (\d+)/.exec(r.stdout);
    expect(Number(dropped?.[1]), 'the 10 % drop was applied').to.be.greaterThan(0);
  });

  it('--fake-divergence makes the verdict fail: exit 1', async () => {
    const r = await runStress(['--duration', '1', '--rate', '50', '--settle', '1', '--fake-divergence'], 20_000);
    expect(r.stdout, r.stdout).to.match(/verdict: INCOHERENT: the 3 nodes do not hold identical entries/);
    expect(r.stdout).to.match(/node \d differs from node 1 on 1 key\(s\): zz-fake-divergence/);
    expect(r.code, r.stdout).to.equal(1);
  });

  it('bad options exit 2 with a message naming the option', () => {
    const cases: Array<[string[], RegExp]> = [
      [['--drop', '150'], /--drop needs an integer in 0\.\.99/],
      [['--nodes', '1'], /--nodes needs an integer in 2\.\.16/],
      [['--size-mix', '4'], /--size-mix/],
      [['--duration'], /--duration needs a value/],
      [['--aperture', '0.1', '--rate', '10'], /--aperture and --rate exclude each other/],
      [['--bogus'], /unknown argument "--bogus"/],
    ];
    for (const [args, message] of cases) {
      const lines: string[] = [];
      expect(main(['stress', ...args], (s) => lines.push(s)), args.join(' ')).to.equal(2);
      expect(lines.join('\n')).to.match(message);
    }
  });

  it("accepts McCache's TEST_* environment names, the options winning", () => {
    const o = parseStressOptions(['--keys', '50'], { TEST_CLUSTER_SIZE: '4', TEST_MAX_ENTRIES: '10', TEST_APERTURE: '0.01',
      TEST_RUN_DURATION: '0.5', TEST_MONKEY_TANTRUM: '5', TEST_DATA_SIZE_MIX: '2', TEST_RANDOM_SEED: '101' });
    expect(o).to.include({ nodes: 4, keys: 50, apertureMs: 10, durationMs: 30_000, drop: 5, sizeMix: 2, seed: 101 });
    expect(() => parseStressOptions([], { TEST_MONKEY_TANTRUM: 'x' })).to.throw(/TEST_MONKEY_TANTRUM/);
  });
});
