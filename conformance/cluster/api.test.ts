/**
 * The public API's process-wide behaviour (runtime/index.ts), in child processes on host-local
 * multicast: the node-wide settings check of getCache, and settings applying to a cache that
 * remote writes created before this process named it.
 */
import { join } from 'node:path';
import { expect } from 'chai';
import { ErrorCode } from '../../runtime/errors';
import { CacheNodeProcess, FIXTURES, hostLocalEnv, privateGroup, runScript } from './cluster-processes';

describe('cluster/api: getCache settings', function () {
  this.timeout(60_000);
  const procs: CacheNodeProcess[] = [];

  after(() => {
    for (const p of procs) p.kill();
  });

  it('refuses node-wide settings that differ from the running node (crypto key and port), accepts equal ones', async () => {
    const { group, port } = privateGroup();
    const run = await runScript(join(FIXTURES, 'api-settings.ts'), hostLocalEnv(group, port), 20_000);
    expect(run.code, run.stderr).to.equal(0);
    expect(JSON.parse(run.stdout.trim().split('\n').pop()!)).to.deep.equal({
      sameCryptoKey: 'ok',
      // Its JSON form is "[redacted]" whatever the key: comparing that let any key through.
      otherCryptoKey: ErrorCode.INVALID_OPTION,
      samePort: 'ok',
      otherPort: ErrorCode.INVALID_OPTION,
      perCacheSettingOnNewCache: 'ok',
      perCacheSameAgain: 'ok',
      // A cache's options are fixed by the first getCache(name, options): no silent ignoring.
      perCacheOtherMax: ErrorCode.INVALID_OPTION,
      perCacheOtherCallback: ErrorCode.INVALID_OPTION,
      namedKeepsItsOptions: true,
      sameInstance: true,
    });
  });

  /**
   * A peer process holding at most 5 entries per cache (MCCACHE_CACHE_MAX), after another
   * process wrote w0..w9 to cache 'lazy', which the peer has not named.
   */
  async function peerWithLazyCache(): Promise<CacheNodeProcess> {
    const { group, port } = privateGroup();
    const env = hostLocalEnv(group, port, { MCCACHE_DAEMON_SLEEP: '0.2' });
    const peer = new CacheNodeProcess(0, 0, 'own', { ...env, MCCACHE_CACHE_MAX: '5' });
    procs.push(peer);
    expect((await peer.ready).type).to.equal('ready');
    const writer = await runScript(join(FIXTURES, 'cache-writer.ts'), { ...env, WRITER_CACHE: 'lazy', WRITER_KEYS: '10' }, 20_000);
    expect(writer.code, writer.stderr).to.equal(0);
    return peer;
  }

  it('a cache created by remote writes before getCache names it follows this process\'s settings', async () => {
    const peer = await peerWithLazyCache();
    expect((await peer.ask('waitFor', { cache: 'lazy', keys: ['w9'], timeoutMs: 3000 }))['ok']).to.equal(true);
    const report = await peer.ask('report', { cache: 'lazy' });
    const keys = (report['entries'] as Array<{ key: string }>).map((e) => e.key);
    expect(keys, 'the 5 most recent writes, the rest evicted locally').to.deep.equal(['w5', 'w6', 'w7', 'w8', 'w9']);
    await peer.ask('exit', { shutdown: true });
    expect((await peer.exited).code).to.equal(0);
  });

  it('getCache(name, options) on a cache that remote writes created gives it those options (not the defaults it was made with)', async () => {
    const peer = await peerWithLazyCache();
    // Not named yet: the remote writes made it with the settings' max of 5.
    let sizes: Record<string, number> = {};
    for (const end = Date.now() + 3000; Date.now() < end && sizes['lazy'] !== 5;) {
      sizes = (await peer.ask('sizes', {}))['sizes'] as Record<string, number>;
    }
    expect(sizes['lazy'], 'made by remote writes, bounded by MCCACHE_CACHE_MAX').to.equal(5);
    expect((await peer.ask('waitFor', { cache: 'lazy', keys: ['w9'], timeoutMs: 3000, options: { max: 3 } }))['ok']).to.equal(true);
    const report = await peer.ask('report', { cache: 'lazy' });
    expect((report['entries'] as Array<{ key: string }>).map((e) => e.key), 'max 3 now: the LRU entries evicted').to.deep.equal(['w7', 'w8', 'w9']);
    await peer.ask('exit', { shutdown: true });
    expect((await peer.exited).code).to.equal(0);
  });
});
