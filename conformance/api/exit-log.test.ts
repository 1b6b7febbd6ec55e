/**
 * With logging on (MCCACHE_LOG_FILENAME), a process that ends writes a metrics summary at exit,
 * as McCache-for-Python does; without it, nothing is written anywhere.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

function runScript(code: string, env: Record<string, string>): Promise<{ code: number; stderr: string; stdout: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mccache-log-'));
  const file = path.join(dir, 'script.ts');
  fs.writeFileSync(file, code.replace(/'mccache'/g, JSON.stringify(path.join(ROOT, 'runtime/index'))));
  const port = 20000 + Math.floor(Math.random() * 40000);
  return new Promise((resolve) => {
    execFile(process.execPath, ['-r', 'ts-node/register', file], {
      cwd: ROOT, timeout: 30_000,
      env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', TS_NODE_PROJECT: path.join(ROOT, 'tsconfig.test.json'),
        MCCACHE_MULTICAST_HOPS: '0', MCCACHE_MULTICAST_IP: `239.255.77.${1 + (port % 250)}:${port}`, ...env },
    }, (err, stdout, stderr) => {
      fs.rmSync(dir, { recursive: true, force: true });
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const SCRIPT = `import { getCache } from 'mccache';
const c = getCache<string>('logged');
c.set('a', '1');
c.set('b', '2');
c.get('a');
`;

describe('logging at exit', function () {
  this.timeout(60_000);

  it('writes a metrics summary to MCCACHE_LOG_FILENAME when the process ends', async () => {
    const log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mccache-logfile-')), 'sub', 'mccache.log');
    const r = await runScript(SCRIPT, { MCCACHE_LOG_FILENAME: log });
    expect(r.code).to.equal(0);
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { msg: string; metrics?: { caches: Array<{ name: string; sets: number; hits: number }> } });
    const summary = lines.find((l) => l.msg === 'shutdown');
    expect(summary, 'a shutdown line').to.not.equal(undefined);
    expect(summary!.metrics!.caches.find((c) => c.name === 'logged')).to.include({ sets: 2, hits: 1 });
  });

  it('writes the summary once when the script calls shutdown() itself before it ends', async () => {
    const log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mccache-logfile-')), 'mccache.log');
    const r = await runScript(`${SCRIPT.replace("import { getCache }", "import { getCache, shutdown }")}void shutdown();\n`, { MCCACHE_LOG_FILENAME: log });
    expect(r.code, r.stderr).to.equal(0);
    const msgs = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(msgs.filter((m) => m === 'shutdown')).to.have.length(1);
  });

  it('writes nothing when logging is off', async () => {
    const r = await runScript(SCRIPT, {});
    expect(r.code).to.equal(0);
    expect(r.stdout + r.stderr).to.equal('');
  });
});
