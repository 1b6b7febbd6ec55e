/**
 * The README's first command, `make demo` (runtime/cli/demo.ts): three processes on host-local
 * multicast show a write, an update and a delete visible everywhere, agree on their views and
 * cluster checksums, and all exit by themselves. Run twice: from the TypeScript source with
 * `--json` (its summary line is checked in detail) and as the README says, `make demo` (which
 * builds dist/ first when a source is newer than it).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'chai';
import { hostLocalEnv, privateGroup, runScript } from './cluster-processes';

const ROOT = join(__dirname, '..', '..');
const DEMO = join(ROOT, 'runtime', 'cli', 'demo.ts');

interface Summary {
  ok: boolean;
  steps: Array<{ by: number; op: 'set' | 'delete'; latencyMs: Record<string, number | null> }>;
  views: Array<Record<string, unknown>>;
  checksums: Record<string, Record<string, string>>;
  exitCodes: number[];
  failures: string[];
}

/** The human lines every successful run prints (what a reader of the README looks for). */
function checkLines(stdout: string): void {
  const lines = stdout.split('\n');
  expect(lines.filter((l) => / visible on node \d after [\d.]+ ms, node \d after [\d.]+ ms$/.test(l)), 'write and update lines').to.have.length(3);
  expect(lines.filter((l) => / gone on node \d after [\d.]+ ms, node \d after [\d.]+ ms$/.test(l)), 'delete line').to.have.length(1);
  expect(lines.filter((l) => /^ {2}node \d {2}\{"greeting":"hello again"\}$/.test(l)), 'views').to.have.length(3);
  expect(lines.some((l) => /all 3 members agree$/.test(l)), 'checksums agree').to.equal(true);
  expect(lines.some((l) => /^every node exited by itself with code 0/.test(l)), 'clean exits').to.equal(true);
}

describe('cluster/demo: make demo', function () {
  this.timeout(120_000);

  it('shows a write, an update and a delete everywhere, equal views and checksums, and exits 0', async () => {
    const { group, port } = privateGroup();
    // The demo picks its own group and port and passes them as options; these only keep a
    // stray MCCACHE_* of the caller's environment out.
    const run = await runScript(DEMO, hostLocalEnv(group, port), 60_000, ['--json']);
    expect(run.code, run.stdout + run.stderr).to.equal(0);
    checkLines(run.stdout);
    const summary = JSON.parse(run.stdout.trim().split('\n').pop()!) as Summary;
    expect(summary.ok).to.equal(true);
    expect(summary.failures).to.deep.equal([]);
    expect(summary.steps.map((s) => [s.by, s.op])).to.deep.equal([[0, 'set'], [0, 'set'], [1, 'set'], [2, 'delete']]);
    for (const s of summary.steps) {
      const ms = Object.values(s.latencyMs);
      expect(ms).to.have.length(2);
      for (const v of ms) expect(v).to.be.a('number').and.to.be.at.least(0).and.below(5000);
    }
    expect(summary.views).to.deep.equal(Array(3).fill({ greeting: 'hello again' }));
    const sums = Object.values(summary.checksums).map((s) => s['demo']);
    expect(sums).to.have.length(3);
    expect(new Set(sums).size).to.equal(1);
    expect(summary.exitCodes).to.deep.equal([0, 0, 0]);
  });

  it('runs as the README says: make demo', async () => {
    const { group, port } = privateGroup();
    const env = hostLocalEnv(group, port);
    delete env['MAKEFLAGS'];
    delete env['MAKELEVEL'];
    const run = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = spawn('make', ['-s', '--no-print-directory', 'demo'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
      child.on('close', (code) => resolve({ code, stdout }));
    });
    expect(run.code, run.stdout).to.equal(0);
    checkLines(run.stdout);
  });
});
