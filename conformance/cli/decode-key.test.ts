/**
 * `mccache decode --key` (runtime/cli/unseal.ts): real sealed traffic. Two UdpDriver nodes with
 * a crypto key of this run exchange known PUTs (one of three fragments) on a host-local group of
 * this test's own (TTL 0 on 127.0.0.1: no packet leaves the machine); `decode --live --key`
 * listens passively, and a passive socket records every datagram, which becomes a pcap file.
 *
 *   - the right key (--key, or MCCACHE_CRYPTO_KEY) shows every key and value sent, labelled
 *     decrypted, and exits 0; --key beats the variable;
 *   - a wrong key gives MCCACHE_ERR_AUTH_FAILED for every datagram, decodes on to the summary,
 *     and exits 1; a tampered datagram or another key id fails alone (the others still open);
 *     one that opens but holds a malformed message gets the decoder's code;
 *   - no key shows them sealed, as before, and exits 0;
 *   - a bad key exits 2 with a message naming --key or MCCACHE_CRYPTO_KEY, never the key.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { main, mainAsync } from '../../runtime/cli/main';
import { fragmentMessage } from '../../runtime/codec/fragment';
import type { Message } from '../../runtime/codec/packet';
import { decoderSealer } from '../../runtime/cli/unseal';
import { UdpDriver } from '../../runtime/transport/udp-driver';
import { privateGroup } from '../cluster/cluster-processes';
import { FAST, until } from '../transport/udp-helpers';
import { LINK_TYPES, ipv4Udp, linkFrame, pcapFile } from './decode-pcap-build';

type Rec = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ROOT = path.join(__dirname, '..', '..');
const KEY = randomBytes(32);
const KEY64 = KEY.toString('base64');
const WRONG64 = randomBytes(32).toString('base64');
const text = (hex: string): string => Buffer.from(hex, 'hex').toString('utf8');
const put = (key: string, value: string): Message => ({ op: 'put', cache: 'c', key, hlc: 1n, ttl: 0, codec: 'utf8', value: Buffer.from(value) });

interface Captured { payload: Uint8Array; sport: number }

function decode(args: string[], env: Record<string, string> = {}): { code: number; lines: string[] } {
  const lines: string[] = [];
  const code = main(['decode', ...args], (s) => lines.push(...s.split('\n')), env);
  return { code, lines };
}
const records = (lines: string[]): Rec[] => lines.map((l) => JSON.parse(l) as Rec);

/** key -> value of every PUT in the records: whole ones from their datagram, fragmented ones when reassembled. */
function putsOf(recs: Rec[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of recs.filter((x) => x.type === 'datagram' && x.value?.datagram.op_code === 'put')) {
    const body = r.value.message?.body ?? r.reassembled?.message?.body;
    if (body) out.set(text(body.key.key), text(body.value.value));
  }
  return out;
}

describe('cli/decode --key: sealed traffic of two nodes', function () {
  this.timeout(30_000);
  const addr = privateGroup();
  const sent = new Map<string, string>([['k1', 'v1'], ['k2', 'v2'], ['big', 'x'.repeat(3000)], ['k3', 'v3'], ['b1', 'w1']]);
  const captured: Captured[] = [];
  const liveLines: string[] = [];
  let liveCode: number;
  let ids: { a: string; b: string };
  let dir: string;
  let file: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mccache-decode-key-'));
    file = path.join(dir, 'sealed.pcap');
    // The recorder: passive (never sends), as decode --live is; bounded to 10,000 datagrams.
    const recorder = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    recorder.on('message', (m, rinfo) => {
      if (captured.length < 10_000) captured.push({ payload: Uint8Array.from(m), sport: rinfo.port });
    });
    await new Promise<void>((resolve) => recorder.bind({ port: addr.port, address: addr.group }, () => {
      recorder.addMembership(addr.group, '127.0.0.1');
      resolve();
    }));
    const env = { MCCACHE_MULTICAST_IP: `${addr.group}:${addr.port}`, MCCACHE_MULTICAST_HOPS: '0' };
    const stop = new AbortController();
    let listening!: () => void;
    const ready = new Promise<void>((r) => { listening = r; });
    const live = mainAsync(['decode', '--live', '--json', '--key', KEY64, '--count', '10000', '--seconds', '20'],
      (s) => liveLines.push(s), { env, onListening: () => listening(), signal: stop.signal });
    await ready;
    const opts = { ...addr, multicastHops: 0, env: {}, coreOptions: FAST, flushTimeout: 2000, cryptoKey: KEY };
    const a = new UdpDriver(opts);
    const b = new UdpDriver(opts);
    try {
      const got: string[] = [];
      b.on('deliver', (e) => { if (e.message.op === 'put') got.push(e.message.key); });
      a.on('deliver', (e) => { if (e.message.op === 'put') got.push(e.message.key); });
      await a.start();
      await b.start();
      await until('membership', () => a.core.members.length === 1 && b.core.members.length === 1);
      for (const [k, v] of sent) expect((k.startsWith('b1') ? b : a).send(put(k, v))).to.be.a('number');
      await until('deliveries', () => got.length === sent.size);
      // Every PUT datagram (1 + 1 + 3 + 1 + 1) recorded, and seen by the listener.
      await until('the PUTs recorded', () => captured.filter((c) => c.payload[3] === 0x01).length >= 7);
      await until('the PUTs heard by decode --live', () => putsOf(records(liveLines)).size === sent.size);
      ids = { a: String(a.nodeId), b: String(b.nodeId) };
    } finally {
      await Promise.all([a.close(), b.close()]);
      stop.abort();
      liveCode = await live;
      recorder.close();
    }
    const frames = captured.map((c, i) => ({
      frame: linkFrame('raw', ipv4Udp({ payload: c.payload, src: '127.0.0.1', sport: c.sport, dst: addr.group, dport: addr.port }), true),
      seconds: 1_700_000_000 + i, nanos: 0,
    }));
    fs.writeFileSync(file, pcapFile(LINK_TYPES.raw, frames, { le: true, nano: false }));
  });
  after(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  it('the traffic is sealed: without a key every datagram shows sealed, exit 0', () => {
    expect(captured.every((c) => (c.payload[4]! & 0x01) === 1 && c.payload[5] === 1), 'flags encrypted, key id 1').to.equal(true);
    const t = decode([file]);
    expect(t.code, t.lines.join('\n')).to.equal(0);
    expect(t.lines.filter((l) => l === '  message: sealed (AES-256-GCM, key id 1); give --key to open it')).to.have.length(captured.length);
    expect(t.lines.join('\n')).to.not.include('decrypted');
    const j = decode([file, '--json']);
    const recs = records(j.lines);
    expect(putsOf(recs).size).to.equal(0);
    const datagrams = recs.filter((r) => r.type === 'datagram');
    expect(datagrams.every((r) => r.ok === true && r.decrypted === undefined && r.value.message === null)).to.equal(true);
    const summaries = recs.filter((r) => r.type === 'summary');
    expect(summaries.find((s) => s.senderId === ids.a)?.sealed).to.be.at.least(4);
    expect(summaries.every((s) => s.decrypted === 0 && s.keys.length === 0)).to.equal(true);
  });

  it('--key shows every key and value sent, labelled decrypted, with summaries; exit 0', () => {
    const j = decode([file, '--json', '--key', KEY64]);
    expect(j.code, j.lines.join('\n')).to.equal(0);
    const recs = records(j.lines);
    expect(recs.filter((r) => r.type === 'error')).to.deep.equal([]);
    const datagrams = recs.filter((r) => r.type === 'datagram');
    expect(datagrams).to.have.length(captured.length);
    for (const r of datagrams) {
      expect(r.ok, JSON.stringify(r)).to.equal(true);
      expect(r.decrypted.key_id).to.equal(1);
      expect(r.decrypted.nonce_count).to.be.a('number').and.at.least(1);
    }
    expect(putsOf(recs)).to.deep.equal(sent);
    const summaries = recs.filter((r) => r.type === 'summary');
    const sa = summaries.find((s) => s.senderId === ids.a)!;
    const sb = summaries.find((s) => s.senderId === ids.b)!;
    expect(sa.keys.map((k: { key: string }) => k.key)).to.deep.equal(['k1', 'k2', 'big', 'k3']);
    expect(sb.keys.map((k: { key: string }) => k.key)).to.deep.equal(['b1']);
    expect(sa.reassembled).to.equal(1);
    for (const s of [sa, sb]) {
      expect(s.sealed).to.equal(0);
      expect(s.notOpened).to.equal(0);
      expect(s.decrypted).to.equal(s.datagrams);
      expect(s.messages.NEW).to.be.at.least(1);
    }
    // The tree: the decrypted message of every whole PUT, with its key and value.
    const t = decode([file, '--key', KEY64]);
    expect(t.code).to.equal(0);
    const tree = t.lines.join('\n');
    expect(t.lines.filter((l) => /^ {2}message \(decrypted: key id 1, nonce count \d+; offsets of the ciphertext\): PUT \(put\), \d+ bytes$/.test(l)))
      .to.have.length(4);
    expect(t.lines.filter((l) => /^ {2}message \(decrypted: key id 1, nonce count \d+\): fragment [123] of 3 of message \d+ \(\d+ bytes in all\)$/.test(l)))
      .to.have.length(3);
    for (const [k, v] of sent) {
      if (v.length > 60) continue; // the fragmented one: in the reassembled line below
      expect(tree).to.match(new RegExp(`^ +\\d+\\.\\.\\d+ +key +\\[${k.length} bytes\\] "${k}"`, 'm'));
      expect(tree).to.match(new RegExp(`^ +\\d+\\.\\.\\d+ +value +\\[${v.length} bytes\\] "${v}"`, 'm'));
    }
    expect(tree).to.match(/reassembled: PUT \(put\) message \d+ of sender \d+, \d+ bytes: cache "c" key "big"/);
    expect(tree).to.match(/datagrams: \d+, decrypted: \d+\n/);
    expect(tree).to.not.include('!!');
  });

  it('MCCACHE_CRYPTO_KEY gives the same output as --key; --key beats it', () => {
    const withFlag = decode([file, '--json', '--key', KEY64]);
    expect(decode([file, '--json'], { MCCACHE_CRYPTO_KEY: KEY64 })).to.deep.equal(withFlag);
    expect(decode([file, '--json', '--key', KEY64], { MCCACHE_CRYPTO_KEY: WRONG64 })).to.deep.equal(withFlag);
    const blank = records(decode([file, '--json'], { MCCACHE_CRYPTO_KEY: '  ' }).lines); // blank: no key, as for the nodes
    expect(blank.filter((r) => r.type === 'datagram').every((r) => r.ok === true && r.decrypted === undefined)).to.equal(true);
  });

  it('a wrong key: MCCACHE_ERR_AUTH_FAILED for every datagram, decoding goes on to the summary, exit 1', () => {
    const j = decode([file, '--json', '--key', WRONG64]);
    expect(j.code).to.equal(1);
    const recs = records(j.lines);
    const datagrams = recs.filter((r) => r.type === 'datagram');
    expect(datagrams).to.have.length(captured.length);
    for (const r of datagrams) {
      expect(r.ok).to.equal(false);
      expect(r.error).to.deep.equal({ code: 'MCCACHE_ERR_AUTH_FAILED', offset: 28, field: 'mccache_datagram.fragment' });
      expect(r.value.datagram.key_id).to.equal(1); // the header is still shown
    }
    const summaries = recs.filter((r) => r.type === 'summary');
    expect(summaries).to.have.length(2);
    expect(summaries.reduce((n, s) => n + s.notOpened, 0)).to.equal(captured.length);
    const t = decode([file, '--key', WRONG64]);
    expect(t.code).to.equal(1);
    expect(t.lines.filter((l) => l.startsWith('  !! not opened: MCCACHE_ERR_AUTH_FAILED'))).to.have.length(captured.length);
    expect(t.lines).to.include(`${captured.length} UDP datagram(s), 0 malformed, ${captured.length} not opened with the key, 0 frame(s) skipped, 2 sender(s)`);
  });

  it('a tampered datagram or another key id fails alone; the others still open (exit 1)', () => {
    const puts = captured.filter((c) => c.payload[3] === 0x01 && c.payload[7] === 1);
    const tampered = Uint8Array.from(puts[0]!.payload);
    tampered[tampered.length - 20]! ^= 0x01; // a ciphertext byte
    const otherId = Uint8Array.from(puts[1]!.payload);
    otherId[5] = 2; // key_id: authenticated, and not the key's id
    for (const [bytes, code] of [[tampered, 'MCCACHE_ERR_AUTH_FAILED'], [otherId, 'MCCACHE_ERR_UNKNOWN_KEY_ID']] as const) {
      const hex = Buffer.from(bytes).toString('hex');
      const r = records(decode(['--hex', hex, '--json', '--key', KEY64]).lines)[0]!;
      expect(r.ok).to.equal(false);
      expect(r.error.code).to.equal(code);
      const t = decode(['--hex', hex, '--key', KEY64]);
      expect(t.code).to.equal(1);
      expect(t.lines.at(-1)).to.match(new RegExp(`^ {2}!! not opened: ${code}: `));
    }
    const intact = Buffer.from(puts[2]!.payload).toString('hex');
    expect(decode(['--hex', intact, '--key', KEY64]).code).to.equal(0);
    // In a capture: only the two bad ones fail.
    const frames = [tampered, puts[2]!.payload, otherId, puts[3]!.payload].map((p, i) => ({
      frame: linkFrame('raw', ipv4Udp({ payload: p, dst: addr.group, dport: addr.port }), true), seconds: 1_700_000_000 + i, nanos: 0,
    }));
    const mixed = path.join(dir, 'mixed.pcap');
    fs.writeFileSync(mixed, pcapFile(LINK_TYPES.raw, frames, { le: true, nano: false }));
    const recs = records(decode([mixed, '--json', '--key', KEY64]).lines).filter((r) => r.type === 'datagram');
    expect(recs.map((r) => r.ok)).to.deep.equal([false, true, false, true]);
    expect(recs.map((r) => r.error?.code ?? null)).to.deep.equal(['MCCACHE_ERR_AUTH_FAILED', null, 'MCCACHE_ERR_UNKNOWN_KEY_ID', null]);
  });

  it('a datagram that opens but holds a malformed message gets the decoder\'s code (exit 1)', () => {
    const sealed = fragmentMessage('put', Uint8Array.from([5, 0x75, 0x73]), { mtu: 1472, senderId: 7n, msgSeq: 3, sealer: decoderSealer(KEY) });
    const hex = Buffer.from(sealed[0]!).toString('hex');
    const r = records(decode(['--hex', hex, '--json', '--key', KEY64]).lines)[0]!;
    expect(r.ok).to.equal(false);
    expect(r.error).to.deep.include({ code: 'MCCACHE_ERR_TRUNCATED', offset: 41 }); // byte 1 of the message, 40 into the datagram
    const t = decode(['--hex', hex, '--key', KEY64]);
    expect(t.code).to.equal(1);
    expect(t.lines).to.include('  message (decrypted; offsets of the ciphertext): PUT (put), 3 bytes');
    expect(t.lines.at(-1)).to.match(/^ {2}!! malformed: MCCACHE_ERR_TRUNCATED in \S+ at offset 41$/);
  });

  it('decode --live --key showed the same puts while the nodes ran (exit 0)', () => {
    expect(liveCode).to.equal(0);
    const recs = records(liveLines);
    expect(putsOf(recs)).to.deep.equal(sent);
    const datagrams = recs.filter((r) => r.type === 'datagram');
    expect(datagrams.length).to.be.at.least(7);
    expect(datagrams.every((r) => r.ok === true && r.decrypted?.key_id === 1)).to.equal(true);
  });

  it('a bad key exits 2 naming --key or MCCACHE_CRYPTO_KEY, never echoing the key', () => {
    const secretish = 'not-base64-at-all-but-secret';
    let r = decode([file, '--key', secretish]);
    expect(r.code).to.equal(2);
    expect(r.lines.join('\n')).to.include('(--key)').and.include('32 bytes').and.not.include(secretish);
    r = decode(['--hex', '00', '--key', Buffer.alloc(31).toString('base64')]);
    expect(r.code).to.equal(2);
    r = decode([file, '--json'], { MCCACHE_CRYPTO_KEY: secretish });
    expect(r.code).to.equal(2);
    const rec = JSON.parse(r.lines[0]!) as Rec;
    expect(rec).to.include({ type: 'error', code: 'MCCACHE_ERR_INVALID_OPTION' });
    expect(rec.message).to.include('MCCACHE_CRYPTO_KEY').and.not.include(secretish);
    r = decode([file, '--key']);
    expect(r.code).to.equal(2);
    expect(r.lines.join('\n')).to.include('--key needs a value');
  });

  it('the command itself (a process): MCCACHE_CRYPTO_KEY opens, a wrong --key exits 1', () => {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MCCACHE_')) env[k] = v;
    Object.assign(env, { TS_NODE_TRANSPILE_ONLY: '1', TS_NODE_PROJECT: path.join(ROOT, 'tsconfig.test.json'), MCCACHE_CRYPTO_KEY: KEY64 });
    const cli = (...args: string[]) => spawnSync(process.execPath, ['-r', require.resolve('ts-node/register'), path.join(ROOT, 'runtime', 'cli', 'main.ts'), 'decode', file, ...args],
      { env, encoding: 'utf8', timeout: 20_000 });
    const ok = cli();
    expect(ok.status, ok.stderr).to.equal(0);
    expect(ok.stdout).to.match(/key +\[2 bytes\] "k1"/);
    expect(cli('--key', WRONG64).status).to.equal(1);
  });
});
