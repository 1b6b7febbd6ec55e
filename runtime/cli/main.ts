#!/usr/bin/env node
/**
 * The `mccache` command.
 *
 *   mccache decode --hex HEX [--json]     one datagram given as hex (spaces allowed)
 *   mccache decode [--json] < FILE        hex datagrams on stdin, one per line or paragraph
 *   mccache testee decode|plan FILE...    the conformance testee (conformance/README.md)
 *   mccache demo                          three local processes sharing a cache
 *   mccache --version | --help
 *
 * Exit codes: 0 every datagram decoded; 1 at least one was malformed (each is still shown);
 * 2 usage error.
 */
import * as fs from 'node:fs';
import { datagramTree } from './tree';
import { main as testeeMain } from './testee';
import { canonicalTree } from '../codec/canonical';
import { decodePacket, sniffProtocol } from '../codec/decode';
import { MalformedPacketError } from '../errors';

const USAGE = `usage: mccache <command>

  decode --hex HEX [--json]   decode one datagram given as hex
  decode [--json] < FILE      decode hex datagrams from stdin (one per line or paragraph; # comments)
  testee decode|plan FILE...  conformance testee (see conformance/README.md)
  demo                        three local processes sharing a cache (host-local multicast)

Exit codes: 0 all decoded, 1 some datagram was malformed, 2 usage error.`;

export function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s + '\n')): number {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'decode':
      return decodeCommand(rest, out);
    case 'testee':
      return testeeMain(rest);
    case 'demo':
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require('./demo');
      return 0;
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

function decodeCommand(args: string[], out: (s: string) => void): number {
  let json = false;
  let hex: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--json') json = true;
    else if (a === '--hex') {
      hex = args[++i];
      if (hex === undefined) {
        out('mccache decode: --hex needs a value');
        return 2;
      }
    } else {
      out(`mccache decode: unknown argument ${JSON.stringify(a)} (pcap input and --live come with a later release)`);
      return 2;
    }
  }
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

/** Paragraphs (blank-line separated, as in conformance vectors) when there are any, else lines. */
function splitHex(text: string): string[] {
  const parts = /\n[ \t]*\r?\n/.test(text.trim()) ? text.split(/\n[ \t]*\r?\n/) : text.split(/\r?\n/);
  return parts.filter((s) => s.replace(/#.*$/gm, '').trim() !== '');
}

if (require.main === module) {
  const code = main(process.argv.slice(2));
  if (process.argv[2] !== 'demo') process.exitCode = code;
}
