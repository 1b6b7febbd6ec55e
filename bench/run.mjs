#!/usr/bin/env node
// Runs every bench/*.bench.{mjs,js,ts} file in turn (or those whose name contains an argument),
// after printing the machine: Node and V8 versions, CPU model and count (STYLE.md: benchmarks
// are headed with the versions they ran on). Benchmarks never assert; a bench that crashes
// makes the exit code non-zero.
//
//   node bench/run.mjs            all benches
//   node bench/run.mjs core       only files whose name contains "core"
//
// Each bench's output is also kept in bench/results/<name>.log (BENCH_RESULTS overrides the
// folder), and bench/results/run.json lists what ran, how long each took and how it ended:
// bench/report.mjs builds BENCHMARKS.md and bench/report.html from those files and the JSON
// results the comparison benches write next to them.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const require = createRequire(import.meta.url);
const filters = process.argv.slice(2);
const resultsDir = process.env.BENCH_RESULTS ?? join(here, 'results');
mkdirSync(resultsDir, { recursive: true });
const files = readdirSync(here)
  .filter((f) => /\.bench\.(mjs|js|ts)$/.test(f))
  .filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)))
  .sort();

const cpu = cpus();
console.log(`# Node ${process.version}, V8 ${process.versions.v8}, ${process.platform}/${process.arch}`);
console.log(`# CPU: ${cpu.length} x ${cpu[0]?.model ?? 'unknown'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB`);
console.log(`# ${new Date().toISOString()}; benches: ${files.join(', ') || '(none)'}`);

/** Runs one bench with its stdout copied to `log`; resolves with its exit code or signal. */
function runOne(f, log) {
  const ts = f.endsWith('.ts');
  const args = ts ? ['-r', require.resolve('ts-node/register'), join(here, f)] : [join(here, f)];
  return new Promise((resolve) => {
    const k = spawn(process.execPath, args, {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...(ts && { TS_NODE_PROJECT: join(root, 'tsconfig.test.json'), TS_NODE_TRANSPILE_ONLY: '1' }) },
    });
    k.stdout.on('data', (b) => {
      process.stdout.write(b);
      log.write(b);
    });
    k.on('close', (code, signal) => resolve(code ?? signal));
  });
}

// Ctrl-C reaches the running bench too (same process group): let it stop its processes and its
// redis-server, then run no further bench.
let interrupted = false;
process.on('SIGINT', () => {
  interrupted = true;
});

const run = { startedAt: new Date().toISOString(), node: process.version, v8: process.versions.v8, cpus: cpu.length, cpuModel: cpu[0]?.model, filters, benches: [] };
let failed = 0;
for (const f of files) {
  console.log(`\n=== ${f}`);
  const name = f.replace(/\.bench\.(mjs|js|ts)$/, '');
  const log = createWriteStream(join(resultsDir, `${name}.log`));
  const t0 = Date.now();
  const status = await runOne(f, log);
  await new Promise((r) => log.end(r));
  run.benches.push({ file: f, name, seconds: (Date.now() - t0) / 1000, status });
  if (status !== 0) {
    failed++;
    console.log(`=== ${f}: exited with ${status}`);
  }
  if (interrupted) break;
}
run.seconds = run.benches.reduce((n, b) => n + b.seconds, 0);
// A filtered run records itself separately, so it never hides what the last full run took.
writeFileSync(join(resultsDir, filters.length ? 'run-partial.json' : 'run.json'), `${JSON.stringify(run, null, 1)}\n`);
process.exitCode = interrupted ? 130 : failed ? 1 : 0;
