/**
 * Builds a classic pcap (link type 101, raw IPv4) around UDP payloads, for the dissector tests.
 * Nothing is sent anywhere: the IPv4/UDP headers (to 239.255.1.1) exist only inside the file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const VECTOR_DIR = path.join(__dirname, '..', 'vectors', 'datagram');

/** The bytes of a conformance vector .hex file (comments after `#` ignored). */
export function readVectorHex(file: string): Buffer {
  const hex = fs.readFileSync(file, 'utf8').replace(/#.*$/gm, '').replace(/\s+/g, '');
  return Buffer.from(hex, 'hex');
}

function ipChecksum(h: Buffer): number {
  let sum = 0;
  for (let i = 0; i < h.length; i += 2) sum += h.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function pcapOf(payloads: Buffer[], dstPort: number): Buffer {
  const global = Buffer.alloc(24);
  global.writeUInt32LE(0xa1b2c3d4, 0);
  global.writeUInt16LE(2, 4);
  global.writeUInt16LE(4, 6);
  global.writeUInt32LE(262144, 16);
  global.writeUInt32LE(101, 20); // LINKTYPE_RAW: the packet starts with the IPv4 header
  const parts: Buffer[] = [global];
  payloads.forEach((p, i) => {
    const ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + 8 + p.length, 2);
    ip.writeUInt16BE(i & 0xffff, 4);
    ip[8] = 1; // TTL
    ip[9] = 17; // UDP
    Buffer.from([192, 0, 2, 1]).copy(ip, 12); // TEST-NET-1 source
    Buffer.from([239, 255, 1, 1]).copy(ip, 16);
    ip.writeUInt16BE(ipChecksum(ip), 10);
    const udp = Buffer.alloc(8);
    udp.writeUInt16BE(40000, 0);
    udp.writeUInt16BE(dstPort, 2);
    udp.writeUInt16BE(8 + p.length, 4); // checksum 0: none
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(1700000000 + i, 0);
    rec.writeUInt32LE(28 + p.length, 8);
    rec.writeUInt32LE(28 + p.length, 12);
    parts.push(rec, ip, udp, p);
  });
  return Buffer.concat(parts);
}
