/**
 * `mccache decode FILE` on captures built here from the conformance vectors
 * (runtime/cli/pcap.ts, runtime/cli/summary.ts): pcap and pcapng in both byte orders with every
 * supported link type decode to the vectors' trees and canonical values; skipped frames, garbage
 * and truncated files give clean errors with the documented exit codes.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { main } from '../../runtime/cli/main';
import { readCapture, CaptureError } from '../../runtime/cli/pcap';
import { datagramTree } from '../../runtime/cli/tree';
import { encodeMessage } from '../../runtime/codec/encode';
import { fragmentMessage } from '../../runtime/codec/fragment';
import { ErrorCode } from '../../runtime/errors';
import {
  LINK_TYPES, captureOf, ipv4Udp, ipv6Packet, linkFrame, loadVectors, pcapFile, pcapngFile, type LinkName,
} from './decode-pcap-build';

const datagrams = loadVectors('datagram');
const accepted = datagrams.filter((v) => v.name.startsWith('y_'));
const rejected = datagrams.filter((v) => v.name.startsWith('n_'));

let dir: string | undefined;
let fileNo = 0;
function tmp(): string {
  dir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'mccache-decode-'));
  return dir;
}
function cleanUp(): void {
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  dir = undefined;
}

function run(bytes: Buffer, ...args: string[]): { code: number; lines: string[] } {
  const file = path.join(tmp(), `c${fileNo++}.cap`);
  fs.writeFileSync(file, bytes);
  const lines: string[] = [];
  const code = main(['decode', file, ...args], (s) => lines.push(...s.split('\n')));
  return { code, lines };
}
function records(lines: string[]): Array<Record<string, unknown>> {
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('cli/decode FILE: synthesized captures', function () {
  this.timeout(20_000);
  after(cleanUp);

  const variants: Array<{ format: 'pcap' | 'pcapng'; le: boolean; nano: boolean }> = [
    { format: 'pcap', le: true, nano: false },
    { format: 'pcap', le: false, nano: true },
    { format: 'pcapng', le: true, nano: true },
    { format: 'pcapng', le: false, nano: false },
  ];
  for (const v of variants) {
    for (const link of Object.keys(LINK_TYPES) as LinkName[]) {
      it(`${v.format} ${v.le ? 'little' : 'big'}-endian ${v.nano ? 'ns' : 'us'}, link ${link}: every accepted vector's canonical value`, () => {
        const { code, lines } = run(captureOf(accepted.map((x) => x.bytes), v.format, link, v.le, v.nano), '--json');
        expect(code).to.equal(0);
        const recs = records(lines);
        const dgrams = recs.filter((r) => r.type === 'datagram');
        expect(dgrams).to.have.length(accepted.length);
        dgrams.forEach((r, i) => {
          expect(r.packet, accepted[i]!.name).to.equal(i + 1);
          expect(r.ok, accepted[i]!.name).to.equal(true);
          expect(r.value, accepted[i]!.name).to.deep.equal(accepted[i]!.expected);
          expect(r.source).to.equal('127.0.0.1:40000');
          expect(r.destination).to.equal('239.255.0.1:4000');
          expect(r.time).to.equal(new Date((1_700_000_000 + i) * 1000).toISOString().slice(0, 19) + (v.nano ? '.123456789Z' : '.123456000Z'));
        });
        expect(recs.filter((r) => r.type === 'summary').length).to.be.greaterThan(0);
      });
    }
  }

  it('prints the same tree as for the hex datagram, under a packet line', () => {
    const some = [...accepted.slice(0, 5), ...rejected.slice(0, 5)];
    const { code, lines } = run(captureOf(some.map((x) => x.bytes), 'pcapng', 'ethernet', true, true));
    expect(code).to.equal(1);
    const text = lines.join('\n');
    some.forEach((x, i) => {
      const head = `packet ${i + 1}  ${new Date((1_700_000_000 + i) * 1000).toISOString().slice(0, 19)}.123456789Z  127.0.0.1:40000 -> 239.255.0.1:4000`;
      expect(text, x.name).to.include(`${head}\n${datagramTree(x.bytes).lines.join('\n')}\n`);
    });
  });

  it('shows every rejected vector with its error code and keeps going (exit 1)', () => {
    const { code, lines } = run(captureOf([...rejected, ...accepted].map((x) => x.bytes), 'pcap', 'sll2', true, false), '--json');
    expect(code).to.equal(1);
    const dgrams = records(lines).filter((r) => r.type === 'datagram');
    expect(dgrams).to.have.length(rejected.length + accepted.length);
    rejected.forEach((x, i) => {
      const r = dgrams[i]!;
      if (x.bytes[0] === 0xf9) {
        // starts like McCache-for-Python traffic: recognised as such, as for --hex
        expect(r.protocol, x.name).to.equal('python-v0');
        return;
      }
      // a rejected v1 vector carries the code its .json names
      expect(r.ok, x.name).to.equal(false);
      expect((r.error as { code: string }).code, x.name).to.equal((x.expected as { error: string }).error);
    });
    accepted.forEach((x, i) => expect(dgrams[rejected.length + i]!.ok, x.name).to.equal(true));
  });

  it('decodes McCache-for-Python v0 headers too', () => {
    const v0 = loadVectors('python_v0').filter((x) => x.name.startsWith('y_'));
    const { code, lines } = run(captureOf(v0.map((x) => x.bytes), 'pcap', 'raw', false, false), '--json');
    expect(code).to.equal(0);
    const dgrams = records(lines).filter((r) => r.type === 'datagram');
    expect(dgrams.map((r) => r.protocol)).to.deep.equal(v0.map(() => 'python-v0'));
    expect(dgrams.map((r) => r.value)).to.deep.equal(v0.map((x) => x.expected));
  });

  it('skips non-UDP, non-IPv4, IPv4 fragments and short snaps with a note naming the packet', () => {
    const payload = accepted[0]!.bytes;
    const le = true;
    const frames = [
      linkFrame('ethernet', ipv4Udp({ payload }), le),
      linkFrame('ethernet', ipv4Udp({ payload }, { proto: 6 }), le),
      linkFrame('ethernet', ipv6Packet(), le, true),
      linkFrame('ethernet', ipv4Udp({ payload }, { moreFragments: true }), le),
      linkFrame('ethernet', ipv4Udp({ payload }, { fragOffset: 1480 }), le),
      linkFrame('ethernet', ipv4Udp({ payload }), le),
    ].map((frame) => ({ frame, seconds: 1, nanos: 0 }));
    const file = pcapFile(1, frames, { le, nano: false });
    // packet 6: record says 10 more bytes were on the wire than captured
    const lastOrig = file.length - frames[5]!.frame.length - 4;
    file.writeUInt32LE(frames[5]!.frame.length + 10, lastOrig);
    const { code, lines } = run(file, '--json');
    expect(code).to.equal(0);
    const recs = records(lines);
    expect(recs.filter((r) => r.type === 'datagram').map((r) => r.packet)).to.deep.equal([1]);
    const notes = recs.filter((r) => r.type === 'note');
    expect(notes.map((r) => r.packet)).to.deep.equal([2, 3, 4, 5, 6]);
    expect(String(notes[0]!.note)).to.match(/not UDP/);
    expect(String(notes[1]!.note)).to.match(/not IPv4/);
    expect(String(notes[2]!.note)).to.match(/fragment/);
    expect(String(notes[3]!.note)).to.match(/fragment/);
    expect(String(notes[4]!.note)).to.match(/captured/);
    // and IPv6 over the other link types
    for (const link of ['null', 'sll', 'sll2', 'raw'] as const) {
      const cap = pcapngFile(LINK_TYPES[link], [{ frame: linkFrame(link, ipv6Packet(), false, true), seconds: 1, nanos: 0 }], { le: false, nano: false });
      expect(readCapture(cap).notes.map((n) => n.packet), link).to.deep.equal([1]);
    }
  });

  it('reads a simple packet block and skips unknown blocks', () => {
    const cap = pcapngFile(1, accepted.slice(0, 3).map((x) => ({ frame: linkFrame('ethernet', ipv4Udp({ payload: x.bytes }), true), seconds: 5, nanos: 0 })),
      { le: true, nano: false, simpleLast: true });
    const c = readCapture(cap);
    expect(c.datagrams.map((d) => Buffer.from(d.payload).toString('hex'))).to.deep.equal(accepted.slice(0, 3).map((x) => Buffer.from(x.bytes).toString('hex')));
    expect(c.notes).to.deep.equal([]);
  });

  it('--port keeps only datagrams from or to that port', () => {
    const frames = [
      { frame: linkFrame('ipv4', ipv4Udp({ payload: accepted[0]!.bytes, dport: 5000 }), true), seconds: 1, nanos: 0 },
      { frame: linkFrame('ipv4', ipv4Udp({ payload: Buffer.from('probe'), dport: 5001 }), true), seconds: 2, nanos: 0 },
      { frame: linkFrame('ipv4', ipv4Udp({ payload: accepted[1]!.bytes, sport: 5000, dport: 6000 }), true), seconds: 3, nanos: 0 },
    ];
    const cap = pcapFile(228, frames, { le: true, nano: false });
    const all = run(cap, '--json');
    expect(all.code).to.equal(1); // "probe" is not McCache
    const only = run(cap, '--json', '--port', '5000');
    expect(only.code).to.equal(0);
    expect(records(only.lines).filter((r) => r.type === 'datagram').map((r) => r.packet)).to.deep.equal([1, 3]);
  });

  it('summarizes each sender: messages by op, gaps, retransmissions, reassembly and keys', () => {
    const sender = 0x0102030405060708n;
    const put = (seq: number, key: string, value = 'v', flags = 0) => fragmentMessage('put',
      encodeMessage({ op: 'put', cache: 'c', key, hlc: BigInt(seq), ttl: 0, codec: 'utf8', value: Buffer.from(value) }),
      { senderId: sender, msgSeq: seq, mtu: 548, flags });
    const del = fragmentMessage('delete', encodeMessage({ op: 'delete', cache: 'c', key: 'k1', hlc: 9n }), { senderId: sender, msgSeq: 5, mtu: 548 });
    const big = put(3, 'big', 'x'.repeat(1200));
    expect(big.length).to.equal(3);
    const payloads = [...put(1, 'k1'), ...big.slice(0, 2), ...put(4, 'k4'), ...big.slice(2), ...put(4, 'k4', 'v', 2), ...del];
    // message 2 is never captured: a gap
    const { code, lines } = run(captureOf(payloads, 'pcap', 'null', true, false), '--json');
    expect(code).to.equal(0);
    const recs = records(lines);
    const reassembled = recs.filter((r) => r.type === 'datagram' && r.reassembled !== undefined);
    expect(reassembled).to.have.length(1);
    expect((reassembled[0]!.reassembled as { msg_seq: number }).msg_seq).to.equal(3);
    const summaries = recs.filter((r) => r.type === 'summary');
    expect(summaries).to.have.length(1);
    expect(summaries[0]).to.deep.include({
      senderId: sender.toString(), sources: ['127.0.0.1:40000'], datagrams: payloads.length, messages: { PUT: 3, DEL: 1 },
      gaps: [{ first: 2, last: 2 }], naks: 0, retransmissions: 1, reassembled: 1, sealed: 0,
    });
    expect(summaries[0]!.keys).to.deep.equal([
      { op: 'put', cache: 'c', key: 'k1', seq: 1 }, { op: 'put', cache: 'c', key: 'k4', seq: 4 },
      { op: 'put', cache: 'c', key: 'big', seq: 3 }, { op: 'delete', cache: 'c', key: 'k1', seq: 5 },
    ]);
    const text = run(captureOf(payloads, 'pcap', 'null', true, false)).lines.join('\n');
    expect(text).to.include('sequence gaps: 2');
    expect(text).to.include('messages: PUT 3, DEL 1');
    expect(text).to.include('reassembled: PUT (put) message 3');
  });
});

describe('cli/decode FILE: bad and truncated files', function () {
  this.timeout(20_000);
  after(cleanUp);

  it('a file that is not a capture: exit 2 and MCCACHE_ERR_INVALID_ARGUMENT at offset 0', () => {
    for (const bytes of [Buffer.from('hello, this is not a capture at all'), Buffer.alloc(0), Buffer.from([0xd4, 0xc3])]) {
      const { code, lines } = run(bytes, '--json');
      expect(code).to.equal(2);
      expect(records(lines)).to.have.length(1);
      expect(records(lines)[0]).to.deep.include({ type: 'error', code: ErrorCode.INVALID_ARGUMENT, offset: 0 });
      const t = run(bytes);
      expect(t.code).to.equal(2);
      expect(t.lines.join('\n')).to.match(/not a pcap or pcapng capture.*offset 0.*MCCACHE_ERR_INVALID_ARGUMENT/);
    }
    expect(() => readCapture(Buffer.from('garbage!'))).to.throw(CaptureError).with.property('code', ErrorCode.INVALID_ARGUMENT);
  });

  it('a cut file header: exit 2', () => {
    const cap = captureOf([accepted[0]!.bytes], 'pcap', 'ethernet', true, false);
    expect(run(cap.subarray(0, 10)).code).to.equal(2);
    const ng = captureOf([accepted[0]!.bytes], 'pcapng', 'ethernet', false, false);
    expect(run(ng.subarray(0, 20)).code).to.equal(2);
  });

  it('a missing file or bad arguments: exit 2', () => {
    const lines: string[] = [];
    expect(main(['decode', path.join(tmp(), 'no-such-file.pcap')], (s) => lines.push(s))).to.equal(2);
    expect(lines.join('\n')).to.match(/no-such-file/);
    expect(main(['decode', 'x.pcap', '--port', 'http'], () => {})).to.equal(2);
    expect(main(['decode', 'x.pcap', '--port', '70000'], () => {})).to.equal(2);
    expect(main(['decode', 'x.pcap', 'y.pcap'], () => {})).to.equal(2);
    expect(main(['decode', '--port', '4000'], () => {})).to.equal(2);
    const help: string[] = [];
    expect(main(['--help'], (s) => help.push(s))).to.equal(0);
    expect(help.join('\n')).to.match(/decode FILE/).and.match(/Exit codes: 0 .*1 .*2 /s);
  });

  for (const format of ['pcap', 'pcapng'] as const) {
    for (const le of [true, false]) {
      it(`a ${format} (${le ? 'little' : 'big'}-endian) cut inside its last packet: earlier packets decode, then the cut is reported (exit 1)`, () => {
        const three = accepted.slice(0, 3);
        const cap = captureOf(three.map((x) => x.bytes), format, 'sll', le, true);
        const full = readCapture(cap);
        expect(full.datagrams).to.have.length(3);
        for (const cut of [cap.length - 1, cap.length - three[2]!.bytes.length, cap.length - three[2]!.bytes.length - 50]) {
          const { code, lines } = run(cap.subarray(0, cut), '--json');
          expect(code).to.equal(1);
          const recs = records(lines);
          expect(recs.filter((r) => r.type === 'datagram').map((r) => r.value)).to.deep.equal(three.slice(0, 2).map((x) => x.expected));
          const err = recs[recs.length - 1]!;
          expect(err).to.deep.include({ type: 'error', code: ErrorCode.TRUNCATED });
          expect(err.offset).to.be.a('number').and.be.lessThan(cut);
          const text = run(cap.subarray(0, cut)).lines.join('\n');
          expect(text).to.match(/capture cut short at byte offset \d+/);
        }
      });
    }
  }

  it('never throws on random corruption of a capture', () => {
    const cap = captureOf(accepted.slice(0, 8).map((x) => x.bytes), 'pcapng', 'ethernet', true, false);
    let seed = 12345;
    const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
    for (let i = 0; i < 300; i++) {
      const b = Buffer.from(cap);
      for (let k = 0; k < 1 + rnd(6); k++) b[8 + rnd(b.length - 8)] = rnd(256);
      const { code } = run(b.subarray(0, rnd(4) === 0 ? rnd(b.length) : b.length), '--json');
      expect([0, 1, 2]).to.include(code);
    }
  });
});
