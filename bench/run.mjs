#!/usr/bin/env node
// Runs every bench/*.bench.{mjs,js,ts} file in turn (or those whose name contains an argument),
// after printing the machine: Node and V8 versions, CPU model and count (STYLE.md: benchmarks
// are headed with the versions they ran on). Benchmarks never assert; a bench that crashes
// makes the exit code non-zero.
//
//   node bench/run.mjs            all benches
//   node bench/run.mjs core       only files whose name contains "core"
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const require = createRequire(import.meta.url);
const filters = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => /\.bench\.(mjs|js|ts)$/.test(f))
  .filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)))
  .sort();

const cpu = cpus();
console.log(`# Node ${process.version}, V8 ${process.versions.v8}, ${process.platform}/${process.arch}`);
console.log(`# CPU: ${cpu.length} x ${cpu[0]?.model ?? 'unknown'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB`);
console.log(`# ${new Date().toISOString()}; benches: ${files.join(', ') || '(none)'}`);

let failed = 0;
for (const f of files) {
  console.log(`\n=== ${f}`);
  const ts = f.endsWith('.ts');
  const args = ts ? ['-r', require.resolve('ts-node/register'), join(here, f)] : [join(here, f)];
  const r = spawnSync(process.execPath, args, {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, ...(ts && { TS_NODE_PROJECT: join(root, 'tsconfig.test.json'), TS_NODE_TRANSPILE_ONLY: '1' }) },
  });
  if (r.status !== 0) {
    failed++;
    console.log(`=== ${f}: exited with ${r.status ?? r.signal}`);
  }
}
process.exitCode = failed ? 1 : 0;
