/**
 * UdpDriver's unicast mode (option `peers`, MCCACHE_PEERS; README "Networks without multicast"):
 * drivers in one process on loopback unicast, 127.0.0.1, 127.0.0.2 and 127.0.0.3 with ports of
 * this run's own, all given the same peer list. Each must find its own entry, meet the others,
 * deliver in order through loss, address repairs and answers to the one member that needs
 * them, ignore senders that are not listed, and name `peers` (or MCCACHE_PEERS) in its errors.
 *
 * No packet leaves the machine: every address is on lo. (Host names other than `localhost`,
 * which /etc/hosts answers, are not tried: resolving them could send a DNS query.)
 */
import { createSocket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { expect } from 'chai';
import type { Message } from '../../runtime/codec/packet';
import type { CoreEvent } from '../../runtime/core/types';
import { ErrorCode, McCacheError } from '../../runtime/errors';
import { UdpDriver, type UdpDriverOptions } from '../../runtime/transport/udp-driver';
import { resolveTransportOptions } from '../../runtime/transport/udp-options';
import { FAST, put, until } from './udp-helpers';

/** Three loopback entries on consecutive high ports, random per call. */
function loopbackPeers(): string[] {
  const base = 20_000 + Math.floor(Math.random() * 40_000);
  return [`127.0.0.1:${base}`, `127.0.0.2:${base + 1}`, `127.0.0.3:${base + 2}`];
}

function errorOf(fn: () => unknown): McCacheError {
  try {
    fn();
  } catch (err) {
    return err as McCacheError;
  }
  throw new Error('expected an error');
}

async function rejectionOf(p: Promise<unknown>): Promise<McCacheError> {
  try {
    await p;
  } catch (err) {
    return err as McCacheError;
  }
  throw new Error('expected a rejection');
}

const request = (target: bigint): Message => ({ op: 'sync_request', target, cache: 'c', numBuckets: 1, bucketIds: [0] });
const digest: Message = { op: 'sync_digest', cache: 'c', numEntries: 0, clearHlc: 0n, clearOrigin: 0n, numBuckets: 1, firstBucket: 0, hashes: [0n] };

describe('transport/udp-driver: unicast peer list on 127.0.0.x', function () {
  this.timeout(20_000);
  const open: UdpDriver[] = [];
  const make = (peers: readonly string[], extra: Partial<UdpDriverOptions> = {}): UdpDriver => {
    const d = new UdpDriver({ peers, env: {}, coreOptions: FAST, flushTimeout: 2000, ...extra });
    open.push(d);
    return d;
  };
  /** Starts drivers one after the other (each takes the first free local entry) and waits until all met. */
  const cluster = async (ds: UdpDriver[]): Promise<void> => {
    for (const d of ds) await d.start();
    await until('membership', () => ds.every((d) => d.core.members.length === ds.length - 1));
  };
  afterEach(async () => {
    await Promise.all(open.splice(0).map((d) => d.close()));
  });

  it('one list for all: each driver binds its own entry, and every message arrives once and in order', async () => {
    const peers = loopbackPeers();
    const ds = [make(peers), make(peers), make(peers)];
    const got = ds.map(() => [] as Array<Extract<CoreEvent, { type: 'deliver' }>>);
    ds.forEach((d, i) => d.on('deliver', (e) => got[i]!.push(e)));
    await cluster(ds);
    expect(ds.map((d) => d.stats().localPeer)).to.deep.equal(peers);
    expect(ds.map((d) => d.core.unicast)).to.deep.equal([true, true, true]);
    for (const d of ds) expect(d.stats().peers).to.equal(2);
    for (let n = 1; n <= 300; n++) for (const d of ds) expect(d.send(put(n))).to.equal(n);
    await until('600 deliveries each', () => got.every((g) => g.length === 600));
    for (const [i, g] of got.entries()) {
      for (const [j, from] of ds.entries()) {
        if (i === j) continue;
        expect(g.filter((e) => e.from === from.nodeId).map((e) => e.seq), `driver ${i} from ${j}`).to.deep.equal([...Array(300).keys()].map((k) => k + 1));
      }
    }
    for (const d of ds) {
      expect(d.stats().notPeerDropped).to.equal(0);
      expect(d.stats().loopbackSkipped, 'no datagram comes back to its sender').to.equal(0);
    }
  });

  it('repairs 20 % loss per copy with NAKs and retransmissions addressed to one member each', async () => {
    const peers = loopbackPeers();
    const ds = [make(peers, { monkeyTantrum: 20 }), make(peers, { monkeyTantrum: 20 }), make(peers, { monkeyTantrum: 20 })];
    const got = ds.map(() => new Map<bigint, number[]>());
    ds.forEach((d, i) => d.on('deliver', (e) => {
      const list = got[i]!.get(e.from) ?? [];
      list.push(e.seq);
      got[i]!.set(e.from, list);
    }));
    await cluster(ds);
    for (let n = 1; n <= 200; n++) for (const d of ds) d.send(put(n));
    await until('every message everywhere', () => got.every((g) => g.size === 2 && [...g.values()].every((l) => l.length === 200)), 15_000);
    for (const g of got) for (const l of g.values()) expect(l).to.deep.equal([...Array(200).keys()].map((k) => k + 1));
    const s = ds.map((d) => d.stats());
    expect(s.reduce((a, x) => a + x.tantrumDropped, 0)).to.be.greaterThan(50);
    expect(s.reduce((a, x) => a + x.retransmits, 0)).to.be.greaterThan(0);
    // Every NAK and every retransmission went to one peer, and nothing else did.
    for (const x of s) expect(x.targetedSent, JSON.stringify(x)).to.equal(x.naksSent + x.retransmits);
  });

  it('seals every datagram with cryptoKey, as multicast does', async () => {
    const peers = loopbackPeers();
    const key = new Uint8Array(32).fill(7);
    const ds = [make(peers, { cryptoKey: key }), make(peers, { cryptoKey: key })];
    const seqs: number[] = [];
    ds[1]!.on('deliver', (e) => seqs.push(e.seq));
    await cluster(ds);
    for (let n = 1; n <= 50; n++) ds[0]!.send(put(n));
    await until('50 deliveries', () => seqs.length === 50);
    expect(seqs).to.deep.equal([...Array(50).keys()].map((k) => k + 1));
    expect(ds[0]!.core.encrypted).to.equal(true);
    expect(ds[1]!.stats().dropped).to.deep.equal({});
  });

  it('sends a datagram with `to` (or a sync request) to that member alone, and the rest to everyone', async () => {
    const peers = loopbackPeers();
    const [a, b, c] = [make(peers), make(peers), make(peers)];
    const heard = new Map<string, string[]>([['b', []], ['c', []]]);
    b.on('receive', (e) => heard.get('b')!.push(e.message.op));
    c.on('receive', (e) => heard.get('c')!.push(e.message.op));
    await cluster([a, b, c]);
    a.sendUnsequenced(request(b.nodeId)); // addressed by its target
    a.sendUnsequenced(digest, c.nodeId); // addressed by `to`
    a.sendUnsequenced(digest); // everyone
    await until('the broadcast digest at b', () => heard.get('b')!.includes('sync_digest'));
    await until('both digests at c', () => heard.get('c')!.filter((op) => op === 'sync_digest').length === 2);
    expect(heard.get('b')).to.deep.equal(['sync_request', 'sync_digest']);
    expect(heard.get('c')).to.deep.equal(['sync_digest', 'sync_digest']);
    expect(a.stats().targetedSent).to.equal(2);
  });

  it('drops datagrams from an address:port that is not in the list, undecoded', async () => {
    const peers = loopbackPeers();
    const [a, b] = [make(peers), make(peers)];
    await cluster([a, b]);
    const stranger = createSocket('udp4');
    await new Promise<void>((resolve) => stranger.bind({ address: '127.0.0.9', port: 0 }, resolve));
    const [host, port] = peers[0]!.split(':');
    for (let i = 0; i < 5; i++) stranger.send(Buffer.from('4d43010a', 'hex'), Number(port), host);
    await until('5 strangers dropped', () => a.stats().notPeerDropped === 5);
    await new Promise<void>((resolve) => stranger.close(() => resolve()));
    expect(a.core.members).to.deep.equal([b.nodeId]);
  });

  it('binds `localPeer` when given; takes `localhost` and the next free local entry', async () => {
    const peers = loopbackPeers();
    const a = make(peers, { localPeer: peers[2]! });
    const b = make(peers);
    await cluster([a, b]);
    expect(a.stats().localPeer).to.equal(peers[2]);
    expect(b.stats().localPeer).to.equal(peers[0]);

    const port = 20_000 + Math.floor(Math.random() * 40_000);
    const named = [`localhost:${port}`, `127.0.0.2:${port}`];
    const c = make(named);
    const d = make(named);
    await cluster([c, d]);
    expect([c.stats().localPeer, d.stats().localPeer]).to.deep.equal([`127.0.0.1:${port}`, `127.0.0.2:${port}`]);
  });

  it('errors name the setting: peers, localPeer or MCCACHE_PEERS', async () => {
    const bad: Array<[unknown, RegExp]> = [
      [['127.0.0.1'], /^peers: must be host:port/],
      [['127.0.0.1:0'], /^peers: must be host:port/],
      [['127.0.0.1:70000'], /^peers: must be host:port/],
      [['[::1]:4000'], /^peers: IPv6 peers are not supported/],
      [['127.0.0.1:4000', '127.0.0.1:4000'], /^peers: lists a peer twice/],
      [[{ host: '127.0.0.1', port: '4000' }], /^peers: must be host:port/],
      [42, /^peers: must be host:port entries/],
    ];
    for (const [peers, message] of bad) {
      const err = errorOf(() => new UdpDriver({ peers: peers as string[], env: {} }));
      expect(err, JSON.stringify(peers)).to.be.instanceOf(McCacheError).with.property('code', ErrorCode.INVALID_OPTION);
      expect(err.message).to.match(message);
    }
    expect(errorOf(() => new UdpDriver({ localPeer: 'x', env: {} })).message).to.match(/^localPeer: must be host:port/);
    const env = errorOf(() => new UdpDriver({ env: { MCCACHE_PEERS: '127.0.0.1:1,oops' } }));
    expect(env.code).to.equal(ErrorCode.INVALID_OPTION);
    expect(env.message).to.match(/^MCCACHE_PEERS: must be host:port/);
    // The environment and the option take the same syntax; the option wins.
    expect(resolveTransportOptions({}, { MCCACHE_PEERS: ' 127.0.0.1:5, localhost:6 ' }).peers)
      .to.deep.equal([{ host: '127.0.0.1', port: 5 }, { host: 'localhost', port: 6 }]);
    expect(resolveTransportOptions({ peers: '127.0.0.2:7' }, { MCCACHE_PEERS: '127.0.0.1:5' }).peers).to.deep.equal([{ host: '127.0.0.2', port: 7 }]);

    // No entry of this host: start fails, and nothing was sent anywhere.
    const local = new Set(Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((x) => x.address)));
    const notOurs = ['192.0.2.', '198.51.100.', '203.0.113.'].flatMap((net) => [`${net}7`, `${net}8`]).filter((x) => !local.has(x)).slice(0, 2);
    const far = make(notOurs.map((x) => `${x}:4000`));
    const e1 = await rejectionOf(far.start());
    expect(e1.code).to.equal(ErrorCode.INVALID_OPTION);
    expect(e1.message).to.match(/^peers: no entry is a free address of this host/);
    expect(far.stats().datagramsOut).to.equal(0);
    // Every local entry taken by another node: the same error.
    const one = loopbackPeers().slice(0, 1);
    await make(one).start();
    const e2 = await rejectionOf(make(one).start());
    expect(e2.message).to.match(/^peers: no entry is a free address of this host/);
  });
});
