/**
 * Test fixture: builds pcap and pcapng captures in memory (either byte order, any link type the
 * reader supports) around given UDP payloads, for conformance/cli/decode*.test.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Frame { payload: Uint8Array; seconds?: number; nanos?: number; src?: string; dst?: string; sport?: number; dport?: number }

const VECTORS = path.join(__dirname, '..', 'vectors');

export interface Vector { kind: 'datagram' | 'python_v0'; name: string; bytes: Uint8Array; expected: unknown }

/** Every vector of `kind`, with its bytes and expected canonical JSON (or `{error}`). */
export function loadVectors(kind: 'datagram' | 'python_v0'): Vector[] {
  const dir = path.join(VECTORS, kind);
  return fs.readdirSync(dir).filter((f) => f.endsWith('.hex')).sort().map((f) => {
    const hex = fs.readFileSync(path.join(dir, f), 'utf8').replace(/#.*$/gm, '').replace(/\s+/g, '');
    const expected = JSON.parse(fs.readFileSync(path.join(dir, f.replace(/\.hex$/, '.json')), 'utf8')) as unknown;
    return { kind, name: f.replace(/\.hex$/, ''), bytes: Uint8Array.from(Buffer.from(hex, 'hex')), expected };
  });
}

function ip4(a: string): number[] {
  return a.split('.').map(Number);
}

/** An IPv4 + UDP packet. `proto` other than 17 makes a non-UDP packet; `fragOffset` a fragment. */
export function ipv4Udp(f: Frame, opts: { proto?: number; moreFragments?: boolean; fragOffset?: number } = {}): Buffer {
  const udpLen = 8 + f.payload.length;
  const total = 20 + udpLen;
  const b = Buffer.alloc(total);
  b[0] = 0x45;
  b.writeUInt16BE(total, 2);
  b.writeUInt16BE((opts.moreFragments ? 0x2000 : 0) | ((opts.fragOffset ?? 0) >> 3), 6);
  b[8] = 1;
  b[9] = opts.proto ?? 17;
  Buffer.from(ip4(f.src ?? '127.0.0.1')).copy(b, 12);
  Buffer.from(ip4(f.dst ?? '239.255.0.1')).copy(b, 16);
  b.writeUInt16BE(f.sport ?? 40000, 20);
  b.writeUInt16BE(f.dport ?? 4000, 22);
  b.writeUInt16BE(udpLen, 24);
  Buffer.from(f.payload).copy(b, 28);
  return b;
}

/** An IPv6 header (version nibble 6) with some bytes: never decoded, only skipped. */
export function ipv6Packet(): Buffer {
  const b = Buffer.alloc(48);
  b[0] = 0x60;
  return b;
}

export const LINK_TYPES = { null: 0, ethernet: 1, raw: 101, sll: 113, ipv4: 228, sll2: 276 } as const;
export type LinkName = keyof typeof LINK_TYPES;

/** Wraps an IP packet in the link-layer header of `link`; `ipv6` marks the packet's protocol. */
export function linkFrame(link: LinkName, ip: Buffer, le: boolean, ipv6 = false): Buffer {
  switch (link) {
    case 'null': {
      const h = Buffer.alloc(4);
      if (le) h.writeUInt32LE(ipv6 ? 30 : 2); else h.writeUInt32BE(ipv6 ? 30 : 2);
      return Buffer.concat([h, ip]);
    }
    case 'ethernet': {
      const h = Buffer.alloc(14, 0x11);
      h.writeUInt16BE(ipv6 ? 0x86dd : 0x0800, 12);
      return Buffer.concat([h, ip]);
    }
    case 'raw':
    case 'ipv4':
      return ip;
    case 'sll': {
      const h = Buffer.alloc(16);
      h.writeUInt16BE(4, 0); // sent by us
      h.writeUInt16BE(772, 2); // ARPHRD_LOOPBACK
      h.writeUInt16BE(ipv6 ? 0x86dd : 0x0800, 14);
      return Buffer.concat([h, ip]);
    }
    case 'sll2': {
      const h = Buffer.alloc(20);
      h.writeUInt16BE(ipv6 ? 0x86dd : 0x0800, 0);
      h.writeUInt32BE(1, 4); // interface index
      h.writeUInt16BE(772, 8);
      return Buffer.concat([h, ip]);
    }
  }
}

function u16(v: number, le: boolean): Buffer {
  const b = Buffer.alloc(2);
  if (le) b.writeUInt16LE(v); else b.writeUInt16BE(v);
  return b;
}
function u32(v: number, le: boolean): Buffer {
  const b = Buffer.alloc(4);
  if (le) b.writeUInt32LE(v); else b.writeUInt32BE(v);
  return b;
}

/** A classic pcap file. Frames are link-layer frames with their times. */
export function pcapFile(linkType: number, frames: Array<{ frame: Buffer; seconds: number; nanos: number }>, o: { le: boolean; nano: boolean }): Buffer {
  const parts = [u32(o.nano ? 0xa1b23c4d : 0xa1b2c3d4, o.le), u16(2, o.le), u16(4, o.le), u32(0, o.le), u32(0, o.le), u32(262144, o.le), u32(linkType, o.le)];
  for (const f of frames) {
    parts.push(u32(f.seconds, o.le), u32(o.nano ? f.nanos : Math.floor(f.nanos / 1000), o.le), u32(f.frame.length, o.le), u32(f.frame.length, o.le), f.frame);
  }
  return Buffer.concat(parts);
}

function block(type: number, body: Buffer, le: boolean): Buffer {
  const pad = Buffer.alloc((4 - (body.length % 4)) % 4);
  const len = 12 + body.length + pad.length;
  return Buffer.concat([u32(type, le), u32(len, le), body, pad, u32(len, le)]);
}

/**
 * A pcapng file: section header, an interface of `linkType` (with if_tsresol 10^-9 when
 * `nano`), a name resolution block (skipped by the reader), then an enhanced packet block per
 * frame; the last frame goes in a simple packet block when `simpleLast`.
 */
export function pcapngFile(linkType: number, frames: Array<{ frame: Buffer; seconds: number; nanos: number }>, o: { le: boolean; nano: boolean; simpleLast?: boolean }): Buffer {
  const le = o.le;
  const shb = block(0x0a0d0d0a, Buffer.concat([u32(0x1a2b3c4d, le), u16(1, le), u16(0, le), u32(0xffffffff, le), u32(0xffffffff, le)]), le);
  const opts = o.nano ? Buffer.concat([u16(9, le), u16(1, le), Buffer.from([9, 0, 0, 0]), u16(0, le), u16(0, le)]) : Buffer.alloc(0);
  const idb = block(1, Buffer.concat([u16(linkType, le), u16(0, le), u32(262144, le), opts]), le);
  const nrb = block(4, Buffer.concat([u16(0, le), u16(0, le)]), le);
  const parts = [shb, idb, nrb];
  frames.forEach((f, i) => {
    if (o.simpleLast && i === frames.length - 1) {
      parts.push(block(3, Buffer.concat([u32(f.frame.length, le), f.frame]), le));
      return;
    }
    const units = BigInt(f.seconds) * (o.nano ? 1_000_000_000n : 1_000_000n) + BigInt(o.nano ? f.nanos : Math.floor(f.nanos / 1000));
    parts.push(block(6, Buffer.concat([u32(0, le), u32(Number(units >> 32n), le), u32(Number(units & 0xffffffffn), le),
      u32(f.frame.length, le), u32(f.frame.length, le), f.frame]), le));
  });
  return Buffer.concat(parts);
}

/** A capture of `payloads` as UDP datagrams, in the given format, link type and byte order. */
export function captureOf(payloads: Uint8Array[], format: 'pcap' | 'pcapng', link: LinkName, le: boolean, nano: boolean, base = 1_700_000_000): Buffer {
  const frames = payloads.map((p, i) => ({ frame: linkFrame(link, ipv4Udp({ payload: p }), le), seconds: base + i, nanos: 123_456_789 }));
  return format === 'pcap' ? pcapFile(LINK_TYPES[link], frames, { le, nano }) : pcapngFile(LINK_TYPES[link], frames, { le, nano });
}
