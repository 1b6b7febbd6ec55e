#!/usr/bin/env node
/**
 * The `mccache` command.
 *
 *   mccache decode --hex HEX [--json]     one datagram given as hex (spaces allowed)
 *   mccache decode [--json] < FILE        hex datagrams on stdin, one per line or paragraph
 *   mccache decode ... --key KEY          also open sealed datagrams (or MCCACHE_CRYPTO_KEY)
 *   mccache testee decode|plan FILE...    the conformance testee (conformance/README.md)
 *   mccache demo                          three local processes sharing a cache
 *   mccache stress [options]              N host-local processes, then a coherence verdict
 *   mccache dissector [--port N]          a Wireshark Lua dissector generated from spec/*.ksy
 *   mccache decode --live [--json] [--count N] [--seconds S]   listen passively on the group
 *   mccache netcheck HOST                 path MTU and hops to HOST (tracepath or ping)
 *   mccache --version | --help
 *
 * Exit codes: 0 every datagram decoded; 1 at least one was malformed or, with a key, did not
 * open (each is still shown), or the capture is cut short; 2 usage error, bad key or unreadable
 * file.
 */
import * as fs from 'node:fs';
import { datagramTree } from './tree';
import { CaptureError, formatTime, readCapture, type UdpDatagram } from './pcap';
import { Summarizer, summaryLines, type Reassembled } from './summary';
import { main as testeeMain } from './testee';
import { dissectorCommand } from './dissector';
import { decodeLive, type LiveOptions } from './live';
import { netcheckCommand } from './netcheck';
import { decodeKeyOption, summaryPacket, unseal } from './unseal';
import type { Sealer } from '../codec/crypto';
import { canonicalTree } from '../codec/canonical';
import { decodePacket, sniffProtocol } from '../codec/decode';
import { FLAG_ENCRYPTED, MNEMONICS, OP_CODES } from '../codec/packet';
import { MalformedPacketError } from '../errors';

const USAGE = `usage: mccache <command>

  decode --hex HEX [--json]   decode one datagram given as hex
  decode [--json] < FILE      decode hex datagrams from stdin (one per line or paragraph; # comments)
  decode FILE [--json] [--port N]
                              decode every UDP datagram of a pcap or pcapng capture (only those
                              from or to port N with --port), then a summary per sender; --json
                              prints one JSON record per line (type datagram, note, summary, error)
  testee decode|plan FILE...  conformance testee (see conformance/README.md)
  demo                        three local processes sharing a cache (host-local multicast)
  stress [--nodes N] [--keys K] [--aperture S | --rate R] [--duration S] [--drop P]
                              [--size-mix 1|2|3] [--seed N] [--settle S] [--report FILE.html]:
                              N host-local processes write at random, then a strict coherence
                              verdict (exit 0 coherent, 1 incoherent; see mccache stress --help)
  dissector [--port N]        print a Wireshark Lua dissector for UDP port N (default 4000)
  decode --live [--json] [--count N] [--seconds S]
                              join the group of MCCACHE_MULTICAST_IP / MCCACHE_MULTICAST_HOPS
                              passively (never sends) and decode what arrives, until N datagrams
                              or S seconds (default 10 s), then a summary per sender
  decode ... --key KEY        with any decode above: open sealed (encrypted) datagrams with KEY,
                              the base64 of 32 bytes as in MCCACHE_CRYPTO_KEY (which is used
                              when --key is absent; it keeps the key out of the process list);
                              a datagram the key does not open is shown with its error code
                              (MCCACHE_ERR_AUTH_FAILED, MCCACHE_ERR_UNKNOWN_KEY_ID)
  netcheck HOST               path MTU and hop count to HOST (tracepath, else ping) and the
                              suggested MCCACHE_PACKET_MTU / MCCACHE_MULTICAST_HOPS; exit 3 when
                              neither tool is installed, 1 when the probe fails, 2 bad HOST

Exit codes: 0 all decoded, 1 some datagram was malformed or did not open with the key, or the
capture is cut short (the packets before the cut are still decoded), 2 usage error, bad key or
unreadable file (not a capture).`;

type Env = Readonly<Record<string, string | undefined>>;

/** `env` is read for MCCACHE_CRYPTO_KEY by `decode`. */
export function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s + '\n'), env: Env = process.env): number {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'decode':
      if (rest.includes('--live')) {
        out('mccache decode --live is asynchronous: call mainAsync()');
        return 2;
      }
      return decodeCommand(rest, out, env);
    case 'netcheck':
      return netcheckCommand(rest, out);
    case 'testee':
      return testeeMain(rest);
    case 'dissector':
      return dissectorCommand(rest, out);
    case 'demo':
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require('./demo');
      return 0;
    case 'stress':
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      return (require('./stress') as typeof import('./stress')).stressCommand(rest, out);
    case '--version':
    case '-v': {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      out(String(require('../../package.json').version));
      return 0;
    }
    case '--help':
    case '-h':
    case undefined:
      out(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      out(`mccache: unknown command ${JSON.stringify(cmd)}\n\n${USAGE}`);
      return 2;
  }
}

/** main() for every command, including the asynchronous ones (`decode --live`). */
export async function mainAsync(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s + '\n'), live: LiveOptions = {}): Promise<number> {
  if (argv[0] === 'decode' && argv.includes('--live')) {
    return decodeLive(argv.slice(1), out, { jsonRecord, reassembledRecord, reassembledLine }, live);
  }
  return main(argv, out, live.env);
}

function decodeCommand(args: string[], out: (s: string) => void, env: Env): number {
  let json = false;
  let key: string | undefined;
  let hex: string | undefined;
  let file: string | undefined;
  let port: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--json') json = true;
    else if (a === '--hex') {
      hex = args[++i];
      if (hex === undefined) {
        out('mccache decode: --hex needs a value');
        return 2;
      }
    } else if (a === '--key') {
      key = args[++i];
      if (key === undefined) {
        out('mccache decode: --key needs a value: the base64 of 32 bytes, as in MCCACHE_CRYPTO_KEY');
        return 2;
      }
    } else if (a === '--port') {
      const v = args[++i];
      port = v !== undefined && /^[0-9]{1,5}$/.test(v) ? Number(v) : NaN;
      if (!(port >= 1 && port <= 65535)) {
        out('mccache decode: --port needs a port number 1..65535');
        return 2;
      }
    } else if (!a.startsWith('-') && file === undefined) {
      file = a;
    } else {
      out(`mccache decode: unknown argument ${JSON.stringify(a)}\n\n${USAGE}`);
      return 2;
    }
  }
  if (file !== undefined && hex !== undefined) {
    out('mccache decode: give a capture FILE or --hex, not both');
    return 2;
  }
  if (port !== undefined && file === undefined) {
    out('mccache decode: --port applies to a capture FILE only');
    return 2;
  }
  const opened = decodeKeyOption(key, env, json, out);
  if (opened === undefined) return 2;
  const { sealer } = opened;
  if (file !== undefined) return decodeCapture(file, json, port, out, sealer);
  const inputs = hex !== undefined ? [hex] : splitHex(fs.readFileSync(0, 'utf8'));
  let bad = 0;
  inputs.forEach((h, i) => {
    const clean = h.replace(/#.*$/gm, '').replace(/\s+/g, '');
    if (!/^([0-9a-fA-F]{2})*$/.test(clean)) {
      out(`mccache decode: datagram ${i + 1} is not hex`);
      bad++;
      return;
    }
    const bytes = Uint8Array.from(Buffer.from(clean, 'hex'));
    if (json) {
      const rec = jsonRecord(bytes, i, sealer);
      out(JSON.stringify(rec));
      if (rec['ok'] !== true && rec['protocol'] !== 'python-v0') bad++;
    } else {
      const t = datagramTree(bytes, sealer);
      if (!t.ok) bad++;
      out(t.lines.join('\n'));
    }
  });
  return bad > 0 ? 1 : 0;
}

/**
 * The canonical record of one datagram. With `sealer`, a sealed datagram that opens carries
 * `decrypted: { key_id, nonce_count }` and its decrypted message under `value.message`; one that
 * does not open is `ok: false` with its code (the header still under `value.datagram`).
 */
function jsonRecord(bytes: Uint8Array, index: number, sealer?: Sealer): Record<string, unknown> {
  const proto = sniffProtocol(bytes);
  if (proto === 'python-v0') {
    try {
      return { index, protocol: 'python-v0', ok: true, value: canonicalTree('python_v0', bytes) };
    } catch (err) {
      return { index, protocol: 'python-v0', ok: false, error: { message: String((err as Error).message) } };
    }
  }
  try {
    const p = decodePacket(bytes);
    const datagram = canonicalTree('datagram', bytes);
    if (sealer !== undefined && (p.header.flags & FLAG_ENCRYPTED) !== 0) {
      const u = unseal(bytes, p, sealer);
      if (!u.ok) return { index, protocol: 'v1', ok: false, value: { datagram, message: null }, error: { code: u.code, offset: u.offset ?? null, field: u.field ?? null } };
      const message = u.packet.message ? canonicalTree('message', u.plaintext, bytes[3]) : null;
      return { index, protocol: 'v1', ok: true, decrypted: { key_id: u.keyId, nonce_count: u.nonceCount }, value: { datagram, message } };
    }
    const message = p.message ? canonicalTree('message', p.fragment, bytes[3]) : null;
    return { index, protocol: 'v1', ok: true, value: { datagram, message } };
  } catch (err) {
    const e = err instanceof MalformedPacketError ? err : undefined;
    return { index, protocol: proto, ok: false, error: { code: e?.code ?? 'MCCACHE_ERR_MALFORMED', offset: e?.offset ?? null, field: e?.field ?? null } };
  }
}

/** `mccache decode FILE`: every UDP datagram of a capture, then the per-sender summaries. */
function decodeCapture(file: string, json: boolean, port: number | undefined, out: (s: string) => void, sealer: Sealer | undefined): number {
  let capture;
  try {
    capture = readCapture(fs.readFileSync(file));
  } catch (err) {
    const code = err instanceof CaptureError ? err.code : String((err as { code?: unknown }).code ?? 'MCCACHE_ERR_INVALID_ARGUMENT');
    const message = `${file}: ${(err as Error).message}`;
    out(json ? JSON.stringify({ type: 'error', code, offset: err instanceof CaptureError ? err.offset : null, message })
      : `mccache decode: ${message} [${code}]`);
    return 2;
  }
  const events: Array<{ packet: number; note?: string; datagram?: UdpDatagram }> = [
    ...capture.notes.map((n) => ({ packet: n.packet, note: n.note })),
    ...capture.datagrams.filter((d) => port === undefined || d.srcPort === port || d.dstPort === port).map((d) => ({ packet: d.packet, datagram: d })),
  ].sort((a, b) => a.packet - b.packet);
  const summarizer = new Summarizer();
  let bad = 0;
  let shown = 0;
  for (const ev of events) {
    const d = ev.datagram;
    if (d === undefined) {
      out(json ? JSON.stringify({ type: 'note', packet: ev.packet, note: ev.note }) : `packet ${ev.packet}: ${ev.note}`);
      continue;
    }
    shown++;
    const time = formatTime(d.seconds, d.nanos);
    const source = `${d.src}:${d.srcPort}`;
    const destination = `${d.dst}:${d.dstPort}`;
    const s = summaryPacket(d.payload, sealer);
    const done: Reassembled | undefined = s && summarizer.add(s.packet, source, d.seconds * 1000 + d.nanos / 1e6, s.opened);
    if (json) {
      const { index: _index, ...rec } = jsonRecord(d.payload, 0, sealer);
      if (rec.ok !== true) bad++;
      const extra = done ? { reassembled: reassembledRecord(done) } : {};
      out(JSON.stringify({ type: 'datagram', packet: d.packet, time, source, destination, ...rec, ...extra }));
    } else {
      const t = datagramTree(d.payload, sealer);
      if (!t.ok) bad++;
      out(`packet ${d.packet}  ${time}  ${source} -> ${destination}`);
      out(t.lines.join('\n'));
      if (done) out(reassembledLine(done));
    }
  }
  const summaries = summarizer.summaries();
  if (json) {
    for (const s of summaries) out(JSON.stringify({ type: 'summary', ...s }));
  } else {
    out('');
    const unopened = summaries.reduce((n, x) => n + x.notOpened, 0);
    out(`${shown} UDP datagram(s)${port !== undefined ? ` on port ${port}` : ''}, ${bad - unopened} malformed`
      + `${sealer !== undefined ? `, ${unopened} not opened with the key` : ''}, ${capture.notes.length} frame(s) skipped, ${summaries.length} sender(s)`);
    for (const s of summaries) out(summaryLines(s).join('\n'));
  }
  if (capture.truncated) {
    const t = capture.truncated;
    out(json ? JSON.stringify({ type: 'error', code: 'MCCACHE_ERR_TRUNCATED', offset: t.offset, message: `${file}: capture cut short: ${t.message}` })
      : `mccache decode: ${file}: capture cut short at byte offset ${t.offset}: ${t.message} [MCCACHE_ERR_TRUNCATED]`);
    return 1;
  }
  return bad > 0 ? 1 : 0;
}

function reassembledRecord(r: Reassembled): Record<string, unknown> {
  if (r.error !== undefined) return { sender_id: r.senderId.toString(), msg_seq: r.msgSeq, ok: false, error: r.error };
  return { sender_id: r.senderId.toString(), msg_seq: r.msgSeq, ok: true, message: canonicalTree('message', r.bytes, OP_CODES[r.op]) };
}

function reassembledLine(r: Reassembled): string {
  const head = `  reassembled: ${MNEMONICS[r.op]} (${r.op}) message ${r.msgSeq} of sender ${r.senderId}, ${r.bytes.length} bytes`;
  if (r.error !== undefined) return `${head}: !! malformed: ${r.error}`;
  const m = r.message;
  if (m?.op === 'batch') return `${head}: cache ${JSON.stringify(m.cache)}, ${m.writes.length} writes, keys ${m.writes.map((w) => JSON.stringify(w.key)).join(' ')}`;
  return m && (m.op === 'put' || m.op === 'delete') ? `${head}: cache ${JSON.stringify(m.cache)} key ${JSON.stringify(m.key)}` : head;
}

/** Paragraphs (blank-line separated, as in conformance vectors) when there are any, else lines. */
function splitHex(text: string): string[] {
  const parts = /\n[ \t]*\r?\n/.test(text.trim()) ? text.split(/\n[ \t]*\r?\n/) : text.split(/\r?\n/);
  return parts.filter((s) => s.replace(/#.*$/gm, '').trim() !== '');
}

if (require.main === module) {
  void mainAsync(process.argv.slice(2)).then((code) => {
    if (process.argv[2] !== 'demo') process.exitCode = code;
  });
}
