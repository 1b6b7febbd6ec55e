/**
 * Real sockets (DESIGN.md §8): three node processes on host-local multicast (127.0.0.1, TTL 0,
 * a group and port of this test's own) with McCache's monkey tantrum dropping 10 % of every
 * node's outgoing datagrams. Each node sends 10,000 sequenced messages and must receive every
 * other node's messages exactly once, in order, with the right content, then close and exit 0
 * by itself. Repair (NAK + retransmit) is what makes that possible, so the test also checks
 * that it ran.
 *
 * No packet leaves the machine: MCCACHE_MULTICAST_HOPS=0 means interface 127.0.0.1, TTL 0.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'chai';

const FIXTURE = join(__dirname, '..', 'fixtures', 'udp-node.ts');
const NODES = 3;
const COUNT = 10_000;

interface Result {
  type: 'result';
  index: number;
  nodeId: string;
  timedOut: boolean;
  sent: number;
  received: Record<string, number>;
  gaps: number;
  errors: string[];
  backpressured: number;
  sendMs: number;
  receiveMs: number;
  closeMs: number;
  stats: { tantrumDropped: number; retransmits: number; naksSent: number; datagramsOut: number; sendErrors: number };
}

/** A group in 239.255.0.0/16 (administratively scoped) and a high port, random per run. */
function privateGroup(): { group: string; port: number } {
  const r = (n: number) => Math.floor(Math.random() * n);
  return { group: `239.255.${1 + r(254)}.${1 + r(254)}`, port: 20_000 + r(40_000) };
}

describe('transport/udp: 3 processes on host-local multicast with 10 % outgoing loss', function () {
  this.timeout(60_000);
  const children: ChildProcess[] = [];

  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  it('delivers every message of every other node exactly once, in order, and every node exits 0', async () => {
    const { group, port } = privateGroup();
    const results: Result[] = [];
    const exits: Array<Promise<number | null>> = [];
    let ready = 0;
    for (let index = 0; index < NODES; index++) {
      const child = fork(FIXTURE, [], {
        execArgv: ['-r', require.resolve('ts-node/register')],
        env: {
          ...process.env,
          TS_NODE_TRANSPILE_ONLY: '1', // the mocha run type-checks these files already
          MCCACHE_MULTICAST_IP: `${group}:${port}`,
          MCCACHE_MULTICAST_HOPS: '0',
          MCCACHE_MONKEY_TANTRUM: '10',
          UDP_NODE_CONFIG: JSON.stringify({
            index, peers: NODES, count: COUNT, valueSize: 24, flushTimeout: 8_000, deadlineMs: 45_000,
            // Short intervals keep the run short; a small send window makes backpressure happen.
            coreOptions: { heartbeatInterval: 200, failureTimeout: 5_000, ackInterval: 10, maxUnackedMessages: 1024 },
          }),
        },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      children.push(child);
      exits.push(new Promise((resolve) => child.on('exit', (code) => resolve(code))));
      child.on('message', (m: { type: string }) => {
        if (m.type === 'ready' && ++ready === NODES) for (const c of children) c.send({ type: 'go' });
        if (m.type === 'result') results.push(m as Result);
      });
    }
    const codes = await Promise.all(exits);
    for (const r of results) {
      const { index, sendMs, receiveMs, closeMs, backpressured, stats } = r;
      console.log('      udp-node', JSON.stringify({ index, sendMs: Math.round(sendMs), receiveMs: Math.round(receiveMs), closeMs: Math.round(closeMs), backpressured,
        tantrumDropped: stats.tantrumDropped, retransmits: stats.retransmits, naksSent: stats.naksSent, sendErrors: stats.sendErrors }));
    }

    expect(codes, 'exit codes').to.deep.equal(Array(NODES).fill(0));
    expect(results).to.have.length(NODES);
    let dropped = 0;
    let repaired = 0;
    for (const r of results.sort((a, b) => a.index - b.index)) {
      expect(r.errors, `node ${r.index} errors`).to.deep.equal([]);
      expect(r.timedOut, `node ${r.index} timed out`).to.equal(false);
      expect(r.sent).to.equal(COUNT);
      const others = Object.fromEntries([...Array(NODES).keys()].filter((i) => i !== r.index).map((i) => [String(i), COUNT]));
      expect(r.received, `node ${r.index} received`).to.deep.equal(others);
      expect(r.gaps).to.equal(0);
      dropped += r.stats.tantrumDropped;
      repaired += r.stats.retransmits;
    }
    // 10 % of some 30,000+ datagrams were dropped on purpose, and retransmissions healed them.
    expect(dropped).to.be.greaterThan(1000);
    expect(repaired).to.be.greaterThan(0);
  });
});
