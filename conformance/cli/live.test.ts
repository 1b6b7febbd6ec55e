/**
 * `mccache decode --live` (runtime/cli/live.ts): two UdpDriver nodes exchange puts on a
 * host-local group of this test's own (TTL 0 on 127.0.0.1: no packet leaves the machine) while
 * the CLI listens passively in the same process. It reports the puts and per-sender summaries,
 * and never becomes a member: the nodes see only each other.
 */
import { expect } from 'chai';
import type { Message } from '../../runtime/codec/packet';
import { mainAsync, main } from '../../runtime/cli/main';
import { decodeLive } from '../../runtime/cli/live';
import { UdpDriver } from '../../runtime/transport/udp-driver';
import { FAST, put, until } from '../transport/udp-helpers';
import { privateGroup } from '../cluster/cluster-processes';

const fmtStub = { jsonRecord: () => ({}), reassembledRecord: () => ({}), reassembledLine: () => '' };

describe('cli/decode --live', function () {
  this.timeout(15_000);
  const open: UdpDriver[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((d) => d.close()));
  });

  async function twoNodes(addr: { group: string; port: number }): Promise<[UdpDriver, UdpDriver]> {
    const [a, b] = [0, 1].map(() => new UdpDriver({ ...addr, multicastHops: 0, env: {}, coreOptions: FAST, flushTimeout: 2000 }));
    open.push(a!, b!);
    await a!.start();
    await b!.start();
    await until('membership', () => a!.core.members.length === 1 && b!.core.members.length === 1);
    return [a!, b!];
  }

  it('reports the puts two nodes exchange, with sources, then per-sender summaries; never a member', async () => {
    const addr = privateGroup();
    const env = { MCCACHE_MULTICAST_IP: `${addr.group}:${addr.port}`, MCCACHE_MULTICAST_HOPS: '0' };
    const lines: string[] = [];
    const stop = new AbortController();
    let listening!: () => void;
    const ready = new Promise<void>((r) => { listening = r; });
    // Through the CLI (mainAsync), with this test's environment and a way to stop early.
    const done = mainAsync(['decode', '--live', '--json', '--count', '100000', '--seconds', '12'], (s) => lines.push(s), { env, onListening: () => listening(), signal: stop.signal });
    await ready;
    const [a, b] = await twoNodes(addr);
    let got = 0;
    b.on('deliver', () => got++);
    for (let n = 1; n <= 5; n++) a.send(put(n));
    await until('5 deliveries', () => got === 5);
    const records = () => lines.map((l) => JSON.parse(l) as Record<string, any>);
    const keysSeen = () => records().filter((r) => r['type'] === 'datagram' && r['ok'] === true && r['value'].datagram.op_code === 'put')
      .map((r) => Buffer.from(r['value'].message.body.key.key as string, 'hex').toString());
    await until('the listener saw the 5 puts', () => new Set(keysSeen()).size === 5);
    stop.abort();
    expect(await done).to.equal(0);
    const recs = records();
    const datagrams = recs.filter((r) => r['type'] === 'datagram');
    for (const r of datagrams) {
      expect(r['source']).to.match(/^127\.0\.0\.1:\d+$/);
      expect(r['destination']).to.equal(`${addr.group}:${addr.port}`);
      expect(r['time']).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    }
    const summaries = recs.filter((r) => r['type'] === 'summary');
    expect(summaries.map((s) => s['senderId']).sort()).to.deep.equal([a.nodeId, b.nodeId].map(String).sort());
    const ofA = summaries.find((s) => s['senderId'] === String(a.nodeId))!;
    expect(ofA['keys'].map((k: { key: string }) => k.key)).to.deep.equal(['k1', 'k2', 'k3', 'k4', 'k5']);
    // The listener sent nothing: each node's members are exactly the other node.
    expect(a.core.members.map(String)).to.deep.equal([String(b.nodeId)]);
    expect(b.core.members.map(String)).to.deep.equal([String(a.nodeId)]);
  });

  it('stops after --count datagrams and prints the tree with a summary (mainAsync, text mode)', async () => {
    const addr = privateGroup();
    const saved = { ...process.env };
    process.env['MCCACHE_MULTICAST_IP'] = `${addr.group}:${addr.port}`;
    process.env['MCCACHE_MULTICAST_HOPS'] = '0';
    const lines: string[] = [];
    let done: Promise<number>;
    try {
      done = mainAsync(['decode', '--live', '--count', '3', '--seconds', '12'], (s) => lines.push(...s.split('\n')));
    } finally {
      for (const k of ['MCCACHE_MULTICAST_IP', 'MCCACHE_MULTICAST_HOPS']) if (saved[k] === undefined) delete process.env[k]; else process.env[k] = saved[k];
    }
    await new Promise((r) => setTimeout(r, 100)); // the bind is quick; heartbeats keep coming anyway
    await twoNodes(addr);
    expect(await done).to.equal(0);
    expect(lines.filter((l) => /^packet \d+ {2}\S+ {2}127\.0\.0\.1:\d+ -> /.test(l))).to.have.length(3);
    expect(lines.some((l) => /^3 UDP datagram\(s\) on 239\.255\.\d+\.\d+:\d+, 0 malformed, [12] sender\(s\)$/.test(l))).to.equal(true);
  });

  it('ends after --seconds with nothing received, and rejects bad arguments with exit 2', async () => {
    const addr = privateGroup();
    const env = { MCCACHE_MULTICAST_IP: `${addr.group}:${addr.port}`, MCCACHE_MULTICAST_HOPS: '0' };
    const lines: string[] = [];
    expect(await decodeLive(['--live', '--json', '--seconds', '0.2'], (s) => lines.push(s), fmtStub, { env })).to.equal(0);
    expect(lines).to.deep.equal([]);
    for (const bad of [['--count', '0'], ['--count', 'x'], ['--seconds', '-1'], ['--seconds'], ['--port', '4000'], ['file.pcap']]) {
      expect(await decodeLive(['--live', ...bad], () => {}, fmtStub, { env }), bad.join(' ')).to.equal(2);
    }
    expect(await decodeLive(['--live', '--count', '1'], () => {}, fmtStub, { env: { MCCACHE_MULTICAST_IP: '10.0.0.1' } })).to.equal(2);
    expect(main(['decode', '--live'], () => {})).to.equal(2);
  });
});

