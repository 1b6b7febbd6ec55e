#!/usr/bin/env node
/**
 * The `mccache` command.
 *
 *   mccache decode --hex HEX [--json]     one datagram given as hex (spaces allowed)
 *   mccache decode [--json] < FILE        hex datagrams on stdin, one per line or paragraph
 *   mccache testee decode|plan FILE...    the conformance testee (conformance/README.md)
 *   mccache demo                          three local processes sharing a cache
 *   mccache stress [options]              N host-local processes, then a coherence verdict
 *   mccache dissector [--port N]          a Wireshark Lua dissector generated from spec/*.ksy
 *   mccache decode --live [--json] [--count N] [--seconds S]   listen passively on the group
 *   mccache netcheck HOST                 path MTU and hops to HOST (tracepath or ping)
 *   mccache --version | --help
 *
 * Exit codes: 0 every datagram decoded; 1 at least one was malformed (each is still shown) or
 * the capture is cut short; 2 usage error or unreadable file.
 */
import * as fs from 'node:fs';
import { datagramTree } from './tree';
import { CaptureError, formatTime, readCapture, type UdpDatagram } from './pcap';
import { Summarizer, summaryLines, type Reassembled } from './summary';
import { main as testeeMain } from './testee';
import { dissectorCommand } from './dissector';
import { decodeLive, type LiveOptions } from './live';
import { netcheckCommand } from './netcheck';
import { canonicalTree } from '../codec/canonical';
import { decodePacket, sniffProtocol } from '../codec/decode';
import { MNEMONICS, OP_CODES, type Packet } from '../codec/packet';
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
                              [--size-mix 1|2|3] [--seed N] [--settle S]: N host-local
                              processes write at random, then a strict coherence verdict
                              (exit 0 coherent, 1 incoherent; see mccache stress --help)
  dissector [--port N]        print a Wireshark Lua dissector for UDP port N (default 4000)
  decode --live [--json] [--count N] [--seconds S]
                              join the group of MCCACHE_MULTICAST_IP / MCCACHE_MULTICAST_HOPS
                              passively (never sends) and decode what arrives, until N datagrams
                              or S seconds (default 10 s), then a summary per sender
  netcheck HOST               path MTU and hop count to HOST (tracepath, else ping) and the
                              suggested MCCACHE_PACKET_MTU / MCCACHE_MULTICAST_HOPS; exit 3 when
                              neither tool is installed, 1 when the probe fails, 2 bad HOST

Exit codes: 0 all decoded, 1 some datagram was malformed or the capture is cut short (the
packets before the cut are still decoded), 2 usage error or unreadable file (not a capture).`;

export function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s + '\n')): number {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'decode':
      if (rest.includes('--live')) {
        out('mccache decode --live is asynchronous: call mainAsync()');
        return 2;
      }
      return decodeCommand(rest, out);
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
  return main(argv, out);
}

function decodeCommand(args: string[], out: (s: string) => void): number {
  let json = false;
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
  if (file !== undefined) return decodeCapture(file, json, port, out);
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
      out(JSON.stringify(jsonRecord(bytes, i)));
      try { decodePacket(bytes); } catch { if (sniffProtocol(bytes) !== 'python-v0') bad++; }
    } else {
      const t = datagramTree(bytes);
      if (!t.ok) bad++;
      out(t.lines.join('\n'));
    }
  });
  return bad > 0 ? 1 : 0;
}

function jsonRecord(bytes: Uint8Array, index: number): Record<string, unknown> {
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
    const message = p.message ? canonicalTree('message', p.fragment, bytes[3]) : null;
    return { index, protocol: 'v1', ok: true, value: { datagram, message } };
  } catch (err) {
    const e = err instanceof MalformedPacketError ? err : undefined;
    return { index, protocol: proto, ok: false, error: { code: e?.code ?? 'MCCACHE_ERR_MALFORMED', offset: e?.offset ?? null, field: e?.field ?? null } };
  }
}

/** `mccache decode FILE`: every UDP datagram of a capture, then the per-sender summaries. */
function decodeCapture(file: string, json: boolean, port: number | undefined, out: (s: string) => void): number {
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
    let packet: Packet | undefined;
    let done: Reassembled | undefined;
    try {
      packet = decodePacket(d.payload);
    } catch {
      // shown below with its error
    }
    if (packet) done = summarizer.add(packet, source, d.seconds * 1000 + d.nanos / 1e6);
    if (json) {
      const { index: _index, ...rec } = jsonRecord(d.payload, 0);
      if (rec.ok !== true) bad++;
      const extra = done ? { reassembled: reassembledRecord(done) } : {};
      out(JSON.stringify({ type: 'datagram', packet: d.packet, time, source, destination, ...rec, ...extra }));
    } else {
      const t = datagramTree(d.payload);
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
    out(`${shown} UDP datagram(s)${port !== undefined ? ` on port ${port}` : ''}, ${bad} malformed, ${capture.notes.length} frame(s) skipped, ${summaries.length} sender(s)`);
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
