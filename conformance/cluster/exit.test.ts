/**
 * Exit behaviour (runtime/index.ts, runtime/node.ts): the library never holds a process open
 * by itself, and a script that writes and simply ends (no shutdown() call) neither hangs nor
 * loses its last writes. Real processes on host-local multicast, with 10 % of every process's
 * outgoing datagrams dropped, so the last writes depend on repair after the script's end.
 */
import { join } from 'node:path';
import { expect } from 'chai';
import { CacheNodeProcess, FIXTURES, hostLocalEnv, privateGroup, runScript } from './cluster-processes';

const WRITER = join(FIXTURES, 'cache-writer.ts');
const CACHE = 'exit';
const KEYS = 10;
/** The brief's bound for "exits promptly", measured from the end of the writes. */
const PROMPT_MS = 3000;

describe('cluster/exit: a process that writes and ends', function () {
  this.timeout(60_000);
  const procs: CacheNodeProcess[] = [];

  after(() => {
    for (const p of procs) p.kill();
  });

  it('exits by itself with code 0 within 3 s, and a peer has received its last writes', async () => {
    const { group, port } = privateGroup();
    const env = hostLocalEnv(group, port, { MCCACHE_MONKEY_TANTRUM: '10', MCCACHE_DAEMON_SLEEP: '0.2' });
    const peer = new CacheNodeProcess(0, 0, CACHE, env);
    procs.push(peer);
    expect((await peer.ready).type).to.equal('ready');

    for (let round = 0; round < 2; round++) {
      const keys = Array.from({ length: KEYS }, (_, i) => `w${i}`);
      const run = await runScript(WRITER, { ...env, WRITER_CACHE: CACHE, WRITER_KEYS: String(KEYS) }, 20_000);
      const wrote = run.lines.find((l) => l.line.startsWith('{'));
      expect(run.code, `writer exit code; stderr: ${run.stderr}`).to.equal(0);
      expect(wrote, 'the writer finished its writes').to.not.equal(undefined);
      const afterWritesMs = run.exitedAt - wrote!.at;
      console.log(`      round ${round}: writer exited ${Math.round(afterWritesMs)} ms after its last write`);
      expect(afterWritesMs).to.be.below(PROMPT_MS);
      const got = await peer.ask('waitFor', { keys, timeoutMs: 2000 });
      expect(got['ok'], 'the peer holds every key the writer wrote').to.equal(true);
      const report = await peer.ask('report');
      const values = Object.fromEntries((report['entries'] as Array<{ key: string; value: unknown }>).map((e) => [e.key, e.value]));
      expect(values).to.deep.equal(Object.fromEntries(keys.map((k, i) => [k, `last write ${i}`])));
    }

    await peer.ask('exit', { shutdown: false });
    expect((await peer.exited).code, 'peer exit code').to.equal(0);
    expect(peer.errors).to.deep.equal([]);
  });

  it('a process alone on its group also exits by itself with code 0 within 3 s', async () => {
    const { group, port } = privateGroup();
    const env = hostLocalEnv(group, port, { MCCACHE_DAEMON_SLEEP: '0.2' });
    const run = await runScript(WRITER, { ...env, WRITER_CACHE: CACHE, WRITER_KEYS: '3' }, 20_000);
    const wrote = run.lines.find((l) => l.line.startsWith('{'));
    expect(run.code, `stderr: ${run.stderr}`).to.equal(0);
    expect(wrote).to.not.equal(undefined);
    expect(run.exitedAt - wrote!.at).to.be.below(PROMPT_MS);
  });
});
