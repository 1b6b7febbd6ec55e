/**
 * UdpDriver in one process (runtime/transport/udp-driver.ts): two drivers on a host-local group
 * of this test's own. Lifecycle, delivery, backpressure, loss repair, close, and that the
 * library never holds a process open. No packet leaves the machine (TTL 0 on 127.0.0.1).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'chai';
import type { Message } from '../../runtime/codec/packet';
import type { CoreEvent } from '../../runtime/core/types';
import { ErrorCode, McCacheError } from '../../runtime/errors';
import { recvBufferShortfall, UdpDriver, type UdpDriverOptions } from '../../runtime/transport/udp-driver';
import { FAST, put, until } from './udp-helpers';
import { privateGroup } from '../cluster/cluster-processes';


describe('transport/udp-driver: two drivers in one process', function () {
  this.timeout(20_000);
  const open: UdpDriver[] = [];
  const make = (extra: Partial<UdpDriverOptions> = {}, addr = privateGroup()): UdpDriver => {
    const d = new UdpDriver({ ...addr, multicastHops: 0, env: {}, coreOptions: FAST, flushTimeout: 2000, ...extra });
    open.push(d);
    return d;
  };
  afterEach(async () => {
    await Promise.all(open.splice(0).map((d) => d.close()));
  });

  it('joins, delivers in order, reports its receive buffer, and closes with a LEAVE', async () => {
    const addr = privateGroup();
    const a = make({}, addr);
    const b = make({}, addr);
    const got: Array<Extract<CoreEvent, { type: 'deliver' }>> = [];
    const downs: Array<Extract<CoreEvent, { type: 'member-down' }>> = [];
    b.on('deliver', (e) => got.push(e));
    b.on('member-down', (e) => downs.push(e));
    await a.start();
    await b.start();
    await until('membership', () => a.core.members.length === 1 && b.core.members.length === 1);
    for (let n = 1; n <= 500; n++) expect(a.send(put(n))).to.equal(n);
    await until('500 deliveries', () => got.length === 500);
    expect(got.map((e) => e.seq)).to.deep.equal([...Array(500).keys()].map((i) => i + 1));
    expect(got.every((e) => e.from === a.nodeId && e.message.op === 'put' && e.message.key === `k${e.seq}`)).to.equal(true);
    expect(a.stats().recvBufferSize).to.be.greaterThan(0);
    expect(a.stats().loopbackSkipped).to.be.greaterThan(0);
    await a.close();
    expect(a.core.flushed).to.equal(true);
    await until('member-down', () => downs.length === 1);
    expect(downs[0]).to.deep.include({ nodeId: a.nodeId, reason: 'leave' });
  });

  it('repairs a 30 % monkey tantrum: every message arrives once and in order', async () => {
    const addr = privateGroup();
    const a = make({ monkeyTantrum: 30 }, addr);
    const b = make({ monkeyTantrum: 30 }, addr);
    const seqs: number[] = [];
    b.on('deliver', (e) => seqs.push(e.seq));
    await a.start();
    await b.start();
    await until('membership', () => a.core.members.length === 1 && b.core.members.length === 1);
    for (let n = 1; n <= 300; n++) a.send(put(n));
    await until('300 deliveries', () => seqs.length === 300, 10_000);
    expect(seqs).to.deep.equal([...Array(300).keys()].map((i) => i + 1));
    expect(a.stats().tantrumDropped).to.be.greaterThan(0);
    expect(a.stats().retransmits).to.be.greaterThan(0);
  });

  it('applies backpressure: send returns undefined when the window is full, then writable follows', async () => {
    const addr = privateGroup();
    const a = make({ coreOptions: { ...FAST, maxUnackedMessages: 16 } }, addr);
    const b = make({}, addr);
    let delivered = 0;
    b.on('deliver', () => delivered++);
    await a.start();
    await b.start();
    await until('membership', () => a.core.members.length === 1 && b.core.members.length === 1);
    let n = 0;
    while (a.send(put(n + 1)) !== undefined) n++;
    expect(n).to.equal(16);
    expect(a.writable).to.equal(false);
    await new Promise<void>((resolve) => a.once('writable', () => resolve()));
    expect(a.writable).to.equal(true);
    expect(a.send(put(n + 1))).to.equal(n + 1);
    await until('17 deliveries', () => delivered === 17);
  });

  it('refuses use before start and after close with MCCACHE_ERR_CLOSED; close is idempotent', async () => {
    const a = make();
    for (const fn of [() => a.send(put(1)), () => a.sendUnsequenced({ op: 'heartbeat', heartbeatInterval: 1, numMembers: 1, lowSeq: 1 })]) {
      expect(fn).to.throw(McCacheError).with.property('code', ErrorCode.CLOSED);
    }
    await a.start();
    let closed = 0;
    a.on('close', () => closed++);
    const p1 = a.close();
    expect(a.close()).to.equal(p1);
    expect(() => a.send(put(1))).to.throw(McCacheError).with.property('code', ErrorCode.CLOSED);
    await p1;
    expect(closed).to.equal(1);
    let again: unknown;
    try {
      await a.start();
    } catch (err) {
      again = err;
    }
    expect(again).to.be.instanceOf(McCacheError).with.property('code', ErrorCode.CLOSED);
  });

  it('a receive buffer larger than the kernel allows is granted smaller, and reported as a shortfall', async () => {
    // 1 GiB is above any rmem_max this suite meets; the driver starts with what it gets.
    const d = make({ recvBufferSize: 1 << 30 });
    await d.start();
    const reported = d.stats().recvBufferSize;
    expect(reported).to.be.greaterThan(0).and.below(2 ** 31);
    const short = recvBufferShortfall(d.options.recvBufferSize, reported);
    expect(short).to.not.equal(undefined);
    expect(short!.requested).to.equal(1 << 30);
    expect(short!.granted).to.be.below(1 << 30);
    // As much as was granted is no shortfall.
    expect(recvBufferShortfall(short!.granted, reported)).to.equal(undefined);
  });

  it('recvBufferShortfall: Linux reports twice the usable size; nothing asked or not started is no shortfall', () => {
    expect(recvBufferShortfall(4 << 20, 8 << 20, 'linux')).to.equal(undefined);
    expect(recvBufferShortfall(4 << 20, 425_984, 'linux')).to.deep.equal({
      requested: 4 << 20, granted: 212_992,
      hint: 'raise net.core.rmem_max to at least 4194304 (sysctl -w net.core.rmem_max=4194304, and in /etc/sysctl.d to keep it)',
    });
    expect(recvBufferShortfall(4 << 20, 4 << 20, 'darwin')).to.equal(undefined);
    expect(recvBufferShortfall(4 << 20, 1 << 20, 'darwin')).to.deep.include({ granted: 1 << 20, hint: 'raise kern.ipc.maxsockbuf above 4194304' });
    expect(recvBufferShortfall(4 << 20, 1 << 20, 'win32')!.hint).to.match(/socket receive buffer limit/);
    expect(recvBufferShortfall(0, 425_984, 'linux')).to.equal(undefined);
    expect(recvBufferShortfall(4 << 20, 0, 'linux')).to.equal(undefined);
  });

  it('never holds a process open by itself', () => {
    const { group, port } = privateGroup();
    const r = spawnSync(process.execPath, ['-r', require.resolve('ts-node/register'), join(__dirname, '..', 'fixtures', 'udp-idle.ts')], {
      env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', MCCACHE_MULTICAST_IP: `${group}:${port}`, MCCACHE_MULTICAST_HOPS: '0' },
      encoding: 'utf8', timeout: 15_000,
    });
    expect(r.error, 'the process was killed after 15 s').to.equal(undefined);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^started \d+/);
  });
});
