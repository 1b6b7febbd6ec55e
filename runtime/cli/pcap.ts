/**
 * A reader for packet captures, for `mccache decode FILE`: classic pcap (either byte order,
 * microsecond or nanosecond timestamps) and pcapng (section header, interface description,
 * enhanced and simple packet blocks, either byte order; other blocks are skipped). It yields the
 * UDP payload of every IPv4 datagram, with its time and addresses.
 *
 * Link types: null/loopback (0), Ethernet (1, with 802.1Q tags), raw IP (101, 228), Linux
 * cooked capture v1 (113) and v2 (276). Frames that are not IPv4/UDP, and IPv4 fragments (which
 * would need IP reassembly), are skipped with a note naming the packet.
 *
 * A file that is not a capture, or whose header is cut short, throws a `CaptureError` (code
 * MCCACHE_ERR_INVALID_ARGUMENT) naming the byte offset. A capture cut short after its header
 * (as when the capturing tool was killed) is not an error: the packets before the cut are
 * returned, and `truncated` says where the cut is. Nothing here throws anything else.
 */
import { ErrorCode, McCacheError } from '../errors';

export class CaptureError extends McCacheError {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(ErrorCode.INVALID_ARGUMENT, `${message} (at byte offset ${offset})`);
    this.name = 'CaptureError';
    this.offset = offset;
  }
}

export interface UdpDatagram {
  /** 1-based number of the frame in the capture (as Wireshark numbers them). */
  packet: number;
  /** Seconds since the Unix epoch, and the nanoseconds within that second. */
  seconds: number;
  nanos: number;
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  payload: Uint8Array;
}

export interface Capture {
  format: 'pcap' | 'pcapng';
  littleEndian: boolean;
  datagrams: UdpDatagram[];
  /** Frames skipped, each with why. */
  notes: Array<{ packet: number; note: string }>;
  /** Set when the file ends inside a block or record: where, and why. */
  truncated?: { offset: number; message: string };
}

const PCAP_MAGIC_US = 0xa1b2c3d4;
const PCAP_MAGIC_NS = 0xa1b23c4d;
const PCAPNG_SHB = 0x0a0d0d0a;
const PCAPNG_BOM = 0x1a2b3c4d;

export const LINKTYPE = { NULL: 0, ETHERNET: 1, RAW: 101, LINUX_SLL: 113, IPV4: 228, LINUX_SLL2: 276 } as const;

/** Reads a whole capture file's bytes. */
export function readCapture(bytes: Uint8Array): Capture {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4) throw new CaptureError(`not a pcap or pcapng capture: only ${bytes.length} byte(s)`, 0);
  const be = dv.getUint32(0, false);
  if (be === PCAPNG_SHB) return readPcapng(bytes, dv);
  const le = dv.getUint32(0, true);
  if (be === PCAP_MAGIC_US || be === PCAP_MAGIC_NS) return readPcap(bytes, dv, false, be === PCAP_MAGIC_NS);
  if (le === PCAP_MAGIC_US || le === PCAP_MAGIC_NS) return readPcap(bytes, dv, true, le === PCAP_MAGIC_NS);
  throw new CaptureError(`not a pcap or pcapng capture: unknown magic number 0x${be.toString(16).padStart(8, '0')}`, 0);
}

function readPcap(bytes: Uint8Array, dv: DataView, le: boolean, nanoRes: boolean): Capture {
  if (bytes.length < 24) throw new CaptureError(`pcap file header truncated: ${bytes.length} of 24 bytes`, 0);
  const linkType = dv.getUint32(20, le) & 0x0fffffff; // upper bits: FCS info
  const cap: Capture = { format: 'pcap', littleEndian: le, datagrams: [], notes: [] };
  let off = 24;
  let n = 0;
  while (off < bytes.length) {
    n++;
    if (off + 16 > bytes.length) {
      cap.truncated = { offset: off, message: `packet ${n}: record header truncated (${bytes.length - off} of 16 bytes)` };
      break;
    }
    const sec = dv.getUint32(off, le);
    const frac = dv.getUint32(off + 4, le);
    const incl = dv.getUint32(off + 8, le);
    const orig = dv.getUint32(off + 12, le);
    if (off + 16 + incl > bytes.length) {
      cap.truncated = { offset: off, message: `packet ${n}: record of ${incl} bytes truncated (${bytes.length - off - 16} present)` };
      break;
    }
    const frame = bytes.subarray(off + 16, off + 16 + incl);
    frameToDatagram(cap, n, linkType, frame, orig, sec, nanoRes ? frac : frac * 1000);
    off += 16 + incl;
  }
  return cap;
}

interface Interface { linkType: number; /** Timestamp units per second, as a bigint. */ unitsPerSec: bigint }

function readPcapng(bytes: Uint8Array, dv: DataView): Capture {
  if (bytes.length < 12) throw new CaptureError(`pcapng section header truncated: ${bytes.length} of at least 12 bytes`, 0);
  const cap: Capture = { format: 'pcapng', littleEndian: true, datagrams: [], notes: [] };
  let le = true;
  let ifaces: Interface[] = [];
  let off = 0;
  let n = 0;
  while (off < bytes.length) {
    if (off + 12 > bytes.length) {
      cap.truncated = { offset: off, message: `block header truncated (${bytes.length - off} of at least 12 bytes)` };
      break;
    }
    const type = dv.getUint32(off, le);
    if (type === PCAPNG_SHB) {
      const bom = dv.getUint32(off + 8, true);
      if (bom === PCAPNG_BOM) le = true;
      else if (dv.getUint32(off + 8, false) === PCAPNG_BOM) le = false;
      else throw new CaptureError(`pcapng section header has a bad byte-order magic 0x${bom.toString(16)}`, off + 8);
      if (off === 0) cap.littleEndian = le;
      ifaces = []; // interface ids are per section
    }
    const len = dv.getUint32(off + 4, le);
    if (len < 12 || len % 4 !== 0) {
      if (off === 0) throw new CaptureError(`pcapng block length ${len} is invalid`, off + 4);
      cap.truncated = { offset: off, message: `block length ${len} is invalid; the rest of the file is unreadable` };
      break;
    }
    if (off + len > bytes.length) {
      if (off === 0) throw new CaptureError(`pcapng section header truncated: ${bytes.length} of ${len} bytes`, 0);
      cap.truncated = { offset: off, message: `${blockName(type)} of ${len} bytes truncated (${bytes.length - off} present)` };
      break;
    }
    if (dv.getUint32(off + len - 4, le) !== len) {
      if (off === 0) throw new CaptureError('pcapng section header: trailing block length does not match', off + len - 4);
      cap.truncated = { offset: off, message: `${blockName(type)}: trailing block length does not match; the rest of the file is unreadable` };
      break;
    }
    const body = off + 8;
    const bodyEnd = off + len - 4;
    if (type === 1) { // interface description
      if (bodyEnd - body < 8) {
        cap.truncated = { offset: off, message: 'interface description block too short' };
        break;
      }
      ifaces.push({ linkType: dv.getUint16(body, le), unitsPerSec: tsresol(bytes, dv, le, body + 8, bodyEnd) });
    } else if (type === 6 || type === 3) { // enhanced / simple packet
      n++;
      const enhanced = type === 6;
      const head = enhanced ? 20 : 4;
      if (bodyEnd - body < head) {
        cap.notes.push({ packet: n, note: `${blockName(type)} too short, skipped` });
      } else {
        const ifId = enhanced ? dv.getUint32(body, le) : 0;
        const iface = ifaces[ifId];
        const caplen = enhanced ? dv.getUint32(body + 12, le) : Math.min(dv.getUint32(body, le), bodyEnd - body - 4);
        const origlen = enhanced ? dv.getUint32(body + 16, le) : dv.getUint32(body, le);
        if (iface === undefined) {
          cap.notes.push({ packet: n, note: `packet on undescribed interface ${ifId}, skipped` });
        } else if (body + head + caplen > bodyEnd) {
          cap.notes.push({ packet: n, note: `captured length ${caplen} overruns its block, skipped` });
        } else {
          let seconds = 0;
          let nanos = 0;
          if (enhanced) {
            const units = (BigInt(dv.getUint32(body + 4, le)) << 32n) | BigInt(dv.getUint32(body + 8, le));
            seconds = Number(units / iface.unitsPerSec);
            nanos = Number(((units % iface.unitsPerSec) * 1_000_000_000n) / iface.unitsPerSec);
          }
          frameToDatagram(cap, n, iface.linkType, bytes.subarray(body + head, body + head + caplen), origlen, seconds, nanos);
        }
      }
    } else if (type === 2) { // obsolete packet block: counted, not read
      n++;
      cap.notes.push({ packet: n, note: 'obsolete pcapng packet block, skipped' });
    }
    off += len;
  }
  return cap;
}

function blockName(type: number): string {
  return type === 6 ? 'enhanced packet block' : type === 3 ? 'simple packet block' : type === 1 ? 'interface description block'
    : type === PCAPNG_SHB ? 'section header block' : `block of type 0x${type.toString(16)}`;
}

/** The if_tsresol option (code 9) of an interface description: units per second (default 10^6). */
function tsresol(bytes: Uint8Array, dv: DataView, le: boolean, at: number, end: number): bigint {
  let resolution = 1_000_000n;
  while (at + 4 <= end) {
    const code = dv.getUint16(at, le);
    const len = dv.getUint16(at + 2, le);
    if (code === 0) break;
    if (code === 9 && len >= 1 && at + 5 <= end) {
      const v = bytes[at + 4]!;
      const exp = BigInt(v & 0x7f);
      resolution = (v & 0x80) !== 0 ? 1n << exp : 10n ** exp;
      if (resolution === 0n || exp > 60n) resolution = 1_000_000n;
    }
    at += 4 + Math.ceil(len / 4) * 4;
  }
  return resolution;
}

/** Link layer -> IPv4 -> UDP payload; anything else becomes a note. */
function frameToDatagram(cap: Capture, packet: number, linkType: number, frame: Uint8Array, origLen: number, seconds: number, nanos: number): void {
  const skip = (note: string): void => { cap.notes.push({ packet, note }); };
  if (frame.length < origLen) return skip(`only ${frame.length} of ${origLen} bytes captured (snap length), skipped`);
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  let ip: number;
  switch (linkType) {
    case LINKTYPE.NULL: {
      if (frame.length < 4) return skip('loopback header truncated, skipped');
      const family = dv.getUint32(0, true) === 2 || dv.getUint32(0, false) === 2;
      if (!family) return skip('not IPv4 (loopback family), skipped');
      ip = 4;
      break;
    }
    case LINKTYPE.ETHERNET: {
      let at = 12;
      if (frame.length < 14) return skip('Ethernet header truncated, skipped');
      let etherType = dv.getUint16(at, false);
      while ((etherType === 0x8100 || etherType === 0x88a8) && frame.length >= at + 6) {
        at += 4;
        etherType = dv.getUint16(at, false);
      }
      if (etherType !== 0x0800) return skip(`not IPv4 (EtherType 0x${etherType.toString(16).padStart(4, '0')}), skipped`);
      ip = at + 2;
      break;
    }
    case LINKTYPE.RAW:
    case LINKTYPE.IPV4:
      ip = 0;
      break;
    case LINKTYPE.LINUX_SLL: {
      if (frame.length < 16) return skip('Linux cooked header truncated, skipped');
      const proto = dv.getUint16(14, false);
      if (proto !== 0x0800) return skip(`not IPv4 (protocol 0x${proto.toString(16).padStart(4, '0')}), skipped`);
      ip = 16;
      break;
    }
    case LINKTYPE.LINUX_SLL2: {
      if (frame.length < 20) return skip('Linux cooked v2 header truncated, skipped');
      const proto = dv.getUint16(0, false);
      if (proto !== 0x0800) return skip(`not IPv4 (protocol 0x${proto.toString(16).padStart(4, '0')}), skipped`);
      ip = 20;
      break;
    }
    default:
      return skip(`link type ${linkType} is not supported, skipped`);
  }
  if (frame.length < ip + 20) return skip('IPv4 header truncated, skipped');
  const vihl = frame[ip]!;
  if (vihl >> 4 !== 4) return skip(`not IPv4 (IP version ${vihl >> 4}), skipped`);
  const ihl = (vihl & 0x0f) * 4;
  const total = dv.getUint16(ip + 2, false);
  if (ihl < 20 || total < ihl || ip + total > frame.length) return skip('IPv4 header inconsistent with the frame, skipped');
  const fragField = dv.getUint16(ip + 6, false);
  if ((fragField & 0x3fff) !== 0) return skip(`IPv4 fragment (offset ${(fragField & 0x1fff) * 8}), not reassembled, skipped`);
  const proto = frame[ip + 9]!;
  if (proto !== 17) return skip(`not UDP (IP protocol ${proto}), skipped`);
  const udp = ip + ihl;
  if (total - ihl < 8) return skip('UDP header truncated, skipped');
  const udpLen = dv.getUint16(udp + 4, false);
  if (udpLen < 8 || udp + udpLen > ip + total) return skip(`UDP length ${udpLen} inconsistent with the IPv4 packet, skipped`);
  cap.datagrams.push({
    packet, seconds, nanos,
    src: addr(frame, ip + 12), srcPort: dv.getUint16(udp, false),
    dst: addr(frame, ip + 16), dstPort: dv.getUint16(udp + 2, false),
    payload: frame.subarray(udp + 8, udp + udpLen),
  });
}

function addr(b: Uint8Array, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/** `2024-05-01T12:00:00.123456789Z`. */
export function formatTime(seconds: number, nanos: number): string {
  const d = new Date(seconds * 1000);
  if (Number.isNaN(d.getTime())) return `${seconds}.${String(nanos).padStart(9, '0')}`;
  const iso = d.toISOString(); // ...T12:00:00.000Z
  return `${iso.slice(0, 19)}.${String(nanos).padStart(9, '0')}Z`;
}
