/**
 * Encryption over real sockets (issue "Encryption with MCCACHE_CRYPTO_KEY"), on a host-local
 * multicast group of this test's own (MCCACHE_MULTICAST_HOPS=0: interface 127.0.0.1, TTL 0;
 * a random 239.255.x.y group and high port; never 224.0.0.3:4000):
 *
 * - four UdpDrivers in this process, two with the key, one with another key, one without:
 *   sealed delivery is exact (with losses repaired by sealed retransmissions); the others apply
 *   nothing and count why;
 * - three processes on the public API configured by MCCACHE_CRYPTO_KEY, one with a wrong key:
 *   the two with the key end with the same cache, the third with nothing, counting auth failures.
 */
import { expect } from 'chai';
import type { Message } from '../../runtime/codec/packet';
import { CryptoDrop } from '../../runtime/core/reliable-core';
import { ErrorCode, McCacheError } from '../../runtime/errors';
import { ReliableCore } from '../../runtime/core/reliable-core';
import { UdpDriver, type UdpDriverOptions } from '../../runtime/transport/udp-driver';
import { CacheNodeProcess, hostLocalEnv, privateGroup } from '../cluster/cluster-processes';
import { KEY, OTHER_KEY } from './secure-sim';
import { codeOf } from '../error-code';
import { FAST, until as waitUntil } from '../transport/udp-helpers';

const until = (what: string, cond: () => boolean, ms = 10_000): Promise<void> => waitUntil(what, cond, ms);
const put = (n: number): Message => ({
  op: 'put', cache: 'c', key: `k${n}`, hlc: BigInt(n), ttl: 0, codec: 'bytes',
  // Every tenth value takes three datagrams at the default MTU.
  value: new Uint8Array(n % 10 === 0 ? 3000 : 16).fill(n & 0xff),
});


describe('security/udp: encryption over host-local multicast', function () {
  this.timeout(60_000);

  describe('UdpDrivers in one process', () => {
    const open: UdpDriver[] = [];
    afterEach(async () => {
      await Promise.all(open.splice(0).map((d) => d.close()));
    });
    const make = (addr: { group: string; port: number }, extra: Partial<UdpDriverOptions>): UdpDriver => {
      const d = new UdpDriver({ ...addr, multicastHops: 0, env: {}, coreOptions: FAST, flushTimeout: 2000, ...extra });
      open.push(d);
      return d;
    };

    it('the key holders deliver everything; a wrong-key and a keyless node apply nothing and count why', async () => {
      const addr = privateGroup();
      const a = make(addr, { cryptoKey: KEY, monkeyTantrum: 20 });
      const b = make(addr, { cryptoKey: KEY });
      const c = make(addr, { cryptoKey: OTHER_KEY });
      const d = make(addr, {});
      const got = new Map<UdpDriver, Message[]>([a, b, c, d].map((x) => [x, []]));
      for (const x of [a, b, c, d]) x.on('deliver', (e) => got.get(x)!.push(e.message));
      for (const x of [a, b, c, d]) await x.start();
      await until('a and b meet', () => a.core.members.length === 1 && b.core.members.length === 1);
      const N = 200;
      for (let n = 1; n <= N; n++) expect(a.send(put(n))).to.equal(n);
      await until(`${N} deliveries at b`, () => got.get(b)!.length === N);
      await until('a flushed', () => a.core.flushed);
      expect(got.get(b)!.map((m) => (m as { key: string }).key)).to.deep.equal([...Array(N).keys()].map((i) => `k${i + 1}`));
      expect(got.get(b)![9]).to.deep.equal(put(10));
      expect(a.stats().retransmits, 'losses repaired by sealed retransmissions').to.be.greaterThan(0);

      expect(got.get(c)).to.deep.equal([]);
      expect(got.get(d)).to.deep.equal([]);
      expect(c.core.members).to.deep.equal([]);
      expect(d.core.members).to.deep.equal([]);
      expect(a.core.members).to.deep.equal([b.nodeId]);
      expect(c.stats().dropped[CryptoDrop.AUTH_FAILED]).to.be.greaterThan(N);
      expect(d.stats().dropped[CryptoDrop.ENCRYPTED_NO_KEY]).to.be.greaterThan(N);
      expect(b.stats().dropped[CryptoDrop.AUTH_FAILED]).to.be.greaterThan(0); // c's heartbeats
      expect(b.stats().dropped[CryptoDrop.PLAINTEXT_REJECTED]).to.be.greaterThan(0); // d's
      expect(b.core.maxMessageSize).to.equal(255 * (1472 - 56));
      expect(d.core.maxMessageSize).to.equal(255 * (1472 - 28));
    });

    it('refuses a key of the wrong size, or a key beside a ready-made core or sealer (INVALID_OPTION)', () => {
      expect(codeOf(() => new UdpDriver({ env: {}, multicastHops: 0, cryptoKey: new Uint8Array(16) }))).to.equal(ErrorCode.INVALID_OPTION);
      const core = new ReliableCore({ nodeId: 1n, rng: Math.random });
      expect(codeOf(() => new UdpDriver({ env: {}, multicastHops: 0, cryptoKey: KEY, core }))).to.equal(ErrorCode.INVALID_OPTION);
    });
  });

  describe('the public API in child processes', () => {
    const procs: CacheNodeProcess[] = [];
    after(() => {
      for (const p of procs) p.kill();
    });

    it('MCCACHE_CRYPTO_KEY: two processes share a cache, a third with another key applies nothing', async () => {
      const { group, port } = privateGroup();
      const base = { MCCACHE_DAEMON_SLEEP: '0.2', MCCACHE_MONKEY_TANTRUM: '5' };
      const key = Buffer.from(KEY).toString('base64');
      const wrong = Buffer.from(OTHER_KEY).toString('base64url'); // URL-safe, unpadded: also accepted
      procs.push(new CacheNodeProcess(0, 1, 'sec', hostLocalEnv(group, port, { ...base, MCCACHE_CRYPTO_KEY: key })));
      procs.push(new CacheNodeProcess(1, 1, 'sec', hostLocalEnv(group, port, { ...base, MCCACHE_CRYPTO_KEY: key })));
      procs.push(new CacheNodeProcess(2, 0, 'sec', hostLocalEnv(group, port, { ...base, MCCACHE_CRYPTO_KEY: wrong })));
      const ready = await Promise.all(procs.map((p) => p.ready));
      expect(ready.map((r) => r.type), JSON.stringify(procs.map((p) => p.errors))).to.deep.equal(['ready', 'ready', 'ready']);

      const ops = await Promise.all([0, 1].map((i) => procs[i]!.ask('ops', { seed: 77 + i, durationMs: 1500, maxOps: 1500, keys: 50 })));
      const quiet = await Promise.all(procs.map((p) => p.ask('quiet', { timeoutMs: 15_000 })));
      for (const q of quiet) expect(q['ok'], `process ${q.index} quiescent`).to.equal(true);
      const reports = await Promise.all(procs.map((p) => p.ask('report')));
      await Promise.all(procs.map((p) => p.ask('exit', { shutdown: true })));
      const exits = await Promise.all(procs.map((p) => p.exited));

      expect(exits.map((e) => e.code)).to.deep.equal([0, 0, 0]);
      for (const p of procs) expect(p.errors).to.deep.equal([]);
      expect(ops.every((o) => (o['ops'] as number) > 0)).to.equal(true);
      const entries = reports.map((r) => r['entries'] as unknown[]);
      expect(entries[0]!.length).to.be.greaterThan(0);
      expect(entries[1]).to.deep.equal(entries[0]);
      expect(reports[1]!['checksum']).to.equal(reports[0]!['checksum']);
      expect(entries[2]).to.deep.equal([]);
      const stats = reports.map((r) => r['stats'] as { members: number; retransmits: number; dropped: Record<string, number> });
      expect(stats.map((s) => s.members)).to.deep.equal([1, 1, 0]);
      expect(stats[2]!.dropped[CryptoDrop.AUTH_FAILED]).to.be.greaterThan(100);
      expect(stats[0]!.dropped[CryptoDrop.AUTH_FAILED]).to.be.greaterThan(0);
    });
  });
});
