/**
 * `mccache decode FILE` on a real capture: tcpdump (pcap) and, when present, tshark (pcapng)
 * record the loopback interface while two UdpDriver nodes on a host-local group of this test's
 * own (TTL 0 on 127.0.0.1: no packet leaves the machine) exchange known PUTs; the decoder must
 * find exactly those PUTs and per-sender summaries that match what was sent.
 *
 * Needs root and tcpdump (CI has both: `make test` apt-installs tcpdump and tshark); otherwise
 * the test says why and is skipped.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { main } from '../../runtime/cli/main';
import { readCapture } from '../../runtime/cli/pcap';
import type { Message } from '../../runtime/codec/packet';
import { UdpDriver } from '../../runtime/transport/udp-driver';
import { FAST, until } from '../transport/udp-helpers';

function has(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}
/** Datagrams to `port` in the capture so far (0 while the file is still empty or unreadable). */
function countTo(file: string, port: number): number {
  try {
    return readCapture(fs.readFileSync(file)).datagrams.filter((d) => d.dstPort === port).length;
  } catch {
    return 0;
  }
}
async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGINT');
  const t = setTimeout(() => p.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

const put = (key: string, value: string): Message => ({ op: 'put', cache: 'c', key, hlc: 1n, ttl: 0, codec: 'utf8', value: Buffer.from(value) });
const text = (hex: string) => Buffer.from(hex, 'hex').toString('utf8');

describe('cli/decode FILE: a real loopback capture of two nodes', function () {
  this.timeout(30_000);
  let dir: string;
  const procs: ChildProcess[] = [];
  const drivers: UdpDriver[] = [];
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mccache-capture-')); });
  after(async () => {
    await Promise.all(drivers.splice(0).map((d) => d.close()));
    await Promise.all(procs.splice(0).map(stop));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('finds exactly the PUTs sent, and each sender\'s summary matches', async function () {
    const why = process.getuid?.() !== 0 ? 'not running as root' : !has('tcpdump') ? 'tcpdump is not installed' : undefined;
    if (why !== undefined) {
      console.log(`      skipped: ${why} (CI runs make test as root, which installs tcpdump and tshark)`);
      this.skip();
    }
    const r = (n: number) => Math.floor(Math.random() * n);
    const group = `239.255.${1 + r(254)}.${1 + r(254)}`;
    const port = 20_000 + r(40_000);
    const probePort = port + 1;
    const filter = `udp port ${port} or udp port ${probePort}`;
    const files: Array<{ tool: string; file: string }> = [{ tool: 'tcpdump', file: path.join(dir, 'lo.pcap') }];
    const spawnOpts = { stdio: ['ignore', 'ignore', 'pipe'] as ['ignore', 'ignore', 'pipe'] };
    const stderr: Record<string, string> = {};
    const watch = (tool: string, p: ChildProcess) => {
      stderr[tool] = '';
      p.stderr?.on('data', (b: Buffer) => { stderr[tool] += b.toString(); });
      procs.push(p);
    };
    watch('tcpdump', spawn('tcpdump', ['-i', 'lo', '-n', '-U', '-w', files[0]!.file, filter], spawnOpts));
    if (has('tshark')) {
      files.push({ tool: 'tshark', file: path.join(dir, 'lo.pcapng') });
      watch('tshark', spawn('tshark', ['-i', 'lo', '-n', '-q', '-w', files[1]!.file, '-f', filter], spawnOpts));
    } else {
      console.log('      tshark is not installed: pcapng capture skipped');
    }

    // Ready when a probe datagram (unicast to 127.0.0.1, never a node's port) shows up in every file.
    const probe = dgram.createSocket('udp4');
    try {
      await until(`${files.map((f) => f.tool).join(' and ')} to capture a probe (${JSON.stringify(stderr)})`, () => {
        probe.send('probe', probePort, '127.0.0.1');
        return files.every((f) => countTo(f.file, probePort) > 0);
      }, 15_000);
    } finally {
      probe.close();
    }

    const opts = { group, port, multicastHops: 0, env: {}, coreOptions: FAST, flushTimeout: 2000 };
    const a = new UdpDriver(opts);
    const b = new UdpDriver(opts);
    drivers.push(a, b);
    const gotA: string[] = [];
    const gotB: string[] = [];
    a.on('deliver', (e) => { if (e.message.op === 'put') gotA.push(e.message.key); });
    b.on('deliver', (e) => { if (e.message.op === 'put') gotB.push(e.message.key); });
    await a.start();
    await b.start();
    await until('membership', () => a.core.members.length === 1 && b.core.members.length === 1);
    const big = 'x'.repeat(3000); // three fragments at the default MTU
    const fromA: Array<[string, string]> = [['k1', 'v1'], ['k2', 'v2'], ['big', big], ['k3', 'v3']];
    const fromB: Array<[string, string]> = [['b1', 'w1']];
    for (const [k, v] of fromA) expect(a.send(put(k, v))).to.be.a('number');
    for (const [k, v] of fromB) expect(b.send(put(k, v))).to.be.a('number');
    await until('deliveries', () => gotB.length === fromA.length && gotA.length === fromB.length);
    // every PUT datagram (1 + 1 + 3 + 1 + 1) is in every file before the capture stops
    await until('the PUTs in the captures', () => files.every((f) => {
      try {
        return readCapture(fs.readFileSync(f.file)).datagrams.filter((d) => d.dstPort === port && d.payload[3] === 0x01).length >= 7;
      } catch {
        return false;
      }
    }), 10_000);
    await Promise.all(drivers.splice(0).map((d) => d.close()));
    await Promise.all(procs.splice(0).map(stop));

    for (const { tool, file } of files) {
      const lines: string[] = [];
      const code = main(['decode', file, '--json', '--port', String(port)], (s) => lines.push(...s.split('\n')));
      const recs = lines.map((l) => JSON.parse(l) as Record<string, any>); // eslint-disable-line @typescript-eslint/no-explicit-any
      expect(recs.filter((x) => x.type === 'error'), tool).to.deep.equal([]);
      expect(recs.filter((x) => x.type === 'datagram' && x.ok !== true), tool).to.deep.equal([]);
      expect(code, tool).to.equal(0);
      // The PUTs: whole ones from their datagram, fragmented ones when reassembled; copies once.
      const puts = new Map<string, { key: string; value: string }>();
      for (const x of recs.filter((y) => y.type === 'datagram')) {
        const body = x.value.datagram.op_code === 'put'
          ? (x.value.message?.body ?? x.reassembled?.message?.body) : undefined;
        if (body) puts.set(`${x.value.datagram.sender_id}/${x.value.datagram.msg_seq}`, { key: text(body.key.key), value: text(body.value.value) });
      }
      const sent = [...fromA, ...fromB].map(([key, value]) => ({ key, value }));
      const byKey = (p: { key: string }, q: { key: string }) => p.key.localeCompare(q.key);
      expect([...puts.values()].sort(byKey), tool).to.deep.equal(sent.sort(byKey));
      // Summaries
      const summaries = recs.filter((x) => x.type === 'summary');
      const sa = summaries.find((s) => s.senderId === a.nodeId.toString())!;
      const sb = summaries.find((s) => s.senderId === b.nodeId.toString())!;
      expect(summaries, tool).to.have.length(2);
      expect(sa, tool).to.not.equal(undefined);
      expect(sb, tool).to.not.equal(undefined);
      expect(sa.messages.PUT, tool).to.equal(fromA.length);
      expect(sb.messages.PUT, tool).to.equal(fromB.length);
      expect(sa.keys.map((k: { key: string }) => k.key), tool).to.deep.equal(fromA.map(([k]) => k));
      expect(sb.keys.map((k: { key: string }) => k.key), tool).to.deep.equal(fromB.map(([k]) => k));
      expect(sa.reassembled, tool).to.equal(1);
      expect(sb.reassembled, tool).to.equal(0);
      expect(sa.gaps, tool).to.deep.equal([]);
      expect(sb.gaps, tool).to.deep.equal([]);
      for (const s of [sa, sb]) {
        expect(s.messages.NEW, tool).to.be.at.least(1); // each node announced itself
        expect(s.sources, tool).to.have.length(1);
        expect(s.sources[0], tool).to.match(/^127\.0\.0\.1:\d+$/);
      }
      // the probe was filtered out by --port
      expect(recs.some((x) => x.type === 'datagram' && x.destination.endsWith(`:${probePort}`)), tool).to.equal(false);
    }
  });
});
