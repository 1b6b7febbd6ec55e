/**
 * Wireshark-style field tree of one datagram, for `mccache decode`: every field with its byte
 * range, .ksy name, value (enum names, hex for bytes) and raw bytes, nested as in the spec; the
 * message body under the header when the datagram holds a whole plaintext message. A malformed
 * datagram is shown up to the field that failed, then the error code and offset.
 *
 * With a key (`mccache decode --key`), a sealed datagram's message is decrypted and shown the
 * same way, headed "decrypted"; its byte ranges are those of the ciphertext on the wire and its
 * raw bytes the plaintext (runtime/cli/unseal.ts). One that does not open is shown with its code.
 *
 * Field names and offsets come from the debug build of the generated parsers (spec/*.ksy), so
 * the tree follows the spec without a hand-written layout.
 */
import { Debug } from '../codec/generated-modules';
import { streamOf } from '../codec/kaitai';
import { decodePacket, decodePythonV0Header, sniffProtocol, snake } from '../codec/decode';
import type { Sealer } from '../codec/crypto';
import { FLAG_ENCRYPTED, MNEMONICS, opName } from '../codec/packet';
import { MalformedPacketError } from '../errors';
import { PLAINTEXT_OFFSET, unseal } from './unseal';

interface DebugEntry { start?: number; end?: number; ioOffset?: number; enumName?: string; arr?: DebugEntry[] }
type DebugObject = Record<string, unknown> & { _debug: Record<string, DebugEntry>; _read(): void };

const ENUMS: Record<string, Record<number, string>> = {
  'MccacheCommon.OpCode': Debug.MccacheCommon.OpCode as unknown as Record<number, string>,
  'MccacheCommon.ValueCodec': Debug.MccacheCommon.ValueCodec as unknown as Record<number, string>,
  'MccacheCommon.EntryKind': Debug.MccacheCommon.EntryKind as unknown as Record<number, string>,
  'MccacheCommon.LeaveReason': Debug.MccacheCommon.LeaveReason as unknown as Record<number, string>,
};

export interface TreeResult {
  lines: string[];
  ok: boolean;
  error?: { code: string; offset: number | undefined; field: string | undefined; message: string };
}

/**
 * The tree of one datagram (McCache v1, or a McCache-for-Python v0 header). With `sealer`, a
 * sealed datagram is opened and its message shown decrypted.
 */
export function datagramTree(bytes: Uint8Array, sealer?: Sealer): TreeResult {
  const lines: string[] = [];
  const proto = sniffProtocol(bytes);
  if (proto === 'python-v0') {
    lines.push(`McCache-for-Python v0 datagram, ${bytes.length} bytes (recognised; its pickles are never decoded)`);
    walk(parseDebug('v0', bytes), bytes, 0, '  ', lines);
    try {
      decodePythonV0Header(bytes);
      return { lines, ok: true };
    } catch (err) {
      return failed(lines, err);
    }
  }
  let headline = `McCache v1 datagram, ${bytes.length} bytes`;
  if (bytes.length >= 4) {
    const op = opName(bytes[3]!);
    if (op) headline += `, ${MNEMONICS[op]} (${op})`;
  }
  lines.push(headline);
  walk(parseDebug('datagram', bytes), bytes, 0, '  ', lines);
  let packet;
  try {
    packet = decodePacket(bytes);
  } catch (err) {
    if (err instanceof MalformedPacketError && err.offset !== undefined && err.offset >= 28 && bytes.length > 28) {
      // The message body failed: show it up to the failure.
      lines.push('  message:');
      walk(parseDebug('message', bytes.subarray(28), bytes[3]), bytes, 28, '    ', lines);
    }
    return failed(lines, err);
  }
  const h = packet.header;
  if (packet.message) {
    lines.push(`  message: ${MNEMONICS[h.op]} (${h.op}), ${h.lenMessage} bytes`);
    walk(parseDebug('message', packet.fragment, bytes[3]), bytes, 28, '    ', lines);
  } else if ((h.flags & FLAG_ENCRYPTED) !== 0) {
    if (sealer === undefined) {
      lines.push(`  message: sealed (AES-256-GCM, key id ${h.keyId}); give --key to open it`);
      return { lines, ok: true };
    }
    const u = unseal(bytes, packet, sealer);
    if (!u.ok) {
      const error = { code: u.code, offset: u.offset, field: u.field, message: u.message };
      if (u.view === undefined) {
        lines.push(`  !! not opened: ${u.code}: ${u.message}`);
        return { lines, ok: false, error };
      }
      // Opened, but the message inside breaks the spec: shown up to the failure, as in the clear.
      lines.push(`  message (decrypted; offsets of the ciphertext): ${MNEMONICS[h.op]} (${h.op}), ${h.lenMessage} bytes`);
      walk(parseDebug('message', u.view.subarray(PLAINTEXT_OFFSET, PLAINTEXT_OFFSET + h.lenMessage), bytes[3]), u.view, PLAINTEXT_OFFSET, '    ', lines);
      lines.push(`  !! malformed: ${u.code}${u.field ? ` in ${u.field}` : ''}${u.offset !== undefined ? ` at offset ${u.offset}` : ''}`);
      return { lines, ok: false, error };
    }
    const how = `key id ${u.keyId}, nonce count ${u.nonceCount}`;
    if (u.packet.message) {
      lines.push(`  message (decrypted: ${how}; offsets of the ciphertext): ${MNEMONICS[h.op]} (${h.op}), ${h.lenMessage} bytes`);
      walk(parseDebug('message', u.plaintext, bytes[3]), u.view, PLAINTEXT_OFFSET, '    ', lines);
    } else {
      const at = `${String(PLAINTEXT_OFFSET).padStart(5)}..${String(PLAINTEXT_OFFSET + u.plaintext.length).padEnd(5)}`;
      lines.push(`  message (decrypted: ${how}): fragment ${h.fragIndex + 1} of ${h.numFrags} of message ${h.msgSeq} (${h.lenMessage} bytes in all)`);
      const raw = hex(u.plaintext.subarray(0, 8)) + (u.plaintext.length > 8 ? ' …' : '');
      lines.push(`${at}     ${'plaintext'.padEnd(18)} ${`[${u.plaintext.length} bytes]`.padEnd(34)} ${raw}`);
    }
    return { lines, ok: true };
  } else {
    lines.push(`  message: fragment ${h.fragIndex + 1} of ${h.numFrags} of message ${h.msgSeq} (${h.lenMessage} bytes in all)`);
  }
  return { lines, ok: true };
}

function failed(lines: string[], err: unknown): TreeResult {
  const e = err instanceof MalformedPacketError ? err : undefined;
  const code = e?.code ?? 'MCCACHE_ERR_MALFORMED';
  lines.push(`  !! malformed: ${code}${e?.field ? ` in ${e.field}` : ''}${e?.offset !== undefined ? ` at offset ${e.offset}` : ''}`);
  return { lines, ok: false, error: { code, offset: e?.offset, field: e?.field, message: String((err as Error)?.message ?? err) } };
}

function parseDebug(kind: 'datagram' | 'message' | 'v0', bytes: Uint8Array, op?: number): DebugObject {
  const io = streamOf(bytes);
  const root = (kind === 'datagram' ? new Debug.MccacheDatagram(io)
    : kind === 'message' ? new Debug.MccacheMessage(io, null, null, op ?? 0)
      : new Debug.MccacheV0Header(io)) as unknown as DebugObject;
  try {
    root._read();
  } catch {
    // shown up to the failure; the error itself comes from the real decoder
  }
  return root;
}

function walk(obj: DebugObject, all: Uint8Array, base: number, indent: string, out: string[]): void {
  const origin = all.byteOffset;
  for (const [field, entry] of Object.entries(obj._debug)) {
    if (field.startsWith('_m_')) continue;
    const v = obj[field];
    // Offsets in the datagram: every stream is a view on the datagram's buffer.
    const start = (entry.ioOffset ?? origin + base) - origin + (entry.start ?? 0);
    const end = entry.end === undefined ? undefined : start + (entry.end - (entry.start ?? 0));
    const range = `${String(start).padStart(5)}..${end === undefined ? '?    ' : String(end).padEnd(5)}`;
    const name = snake(field);
    if (Array.isArray(v)) {
      out.push(`${range} ${indent}${name}: [${v.length}]`);
      v.forEach((item, i) => {
        if (isDebug(item)) {
          out.push(`${' '.repeat(12)} ${indent}  [${i}]`);
          walk(item, all, base, indent + '    ', out);
        } else {
          out.push(`${' '.repeat(12)} ${indent}  [${i}] ${fmt(item, entry.enumName)}`);
        }
      });
    } else if (isDebug(v)) {
      out.push(`${range} ${indent}${name}:`);
      walk(v, all, base, indent + '  ', out);
    } else if (v !== undefined) {
      const raw = end === undefined ? '' : hex(all.subarray(start, Math.min(end, start + 8))) + (end - start > 8 ? ' …' : '');
      out.push(`${range} ${indent}${name.padEnd(22 - indent.length)} ${fmt(v, entry.enumName).padEnd(34)} ${raw}`);
    } else {
      out.push(`${range} ${indent}${name}: <not read>`);
    }
  }
}

function isDebug(v: unknown): v is DebugObject {
  return typeof v === 'object' && v !== null && '_debug' in v;
}

function fmt(v: unknown, enumName: string | undefined): string {
  if (v instanceof Uint8Array) {
    const text = printable(v);
    return `[${v.length} bytes]${text ? ` "${text}"` : ''}`;
  }
  if (typeof v === 'bigint') return `${v} (0x${v.toString(16).padStart(16, '0')})`;
  if (typeof v === 'number') {
    if (enumName && ENUMS[enumName]) return `${ENUMS[enumName]![v]?.toLowerCase() ?? '?'} (${v})`;
    return v > 9 ? `${v} (0x${v.toString(16)})` : String(v);
  }
  return String(v);
}

function printable(b: Uint8Array): string {
  if (b.length === 0 || b.length > 64) return '';
  const s = Buffer.from(b).toString('utf8');
  return /^[\x20-\x7e\u00a0-\uffff]*$/.test(s) && !s.includes('\ufffd') ? s : '';
}

function hex(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');
}
