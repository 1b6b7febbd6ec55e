#!/usr/bin/env node
/**
 * The TypeScript testee of the conformance suite: the whole contract between a port and
 * conformance/run.mjs is this program's input and output (conformance/README.md "Testee
 * contract").
 *
 *   testee decode FILE...   one NDJSON line per vector file:
 *                           {"file": "datagram/y_put.hex", "ok": true, "value": <canonical>}
 *                           {"file": "datagram/n_bad_magic.hex", "ok": false, "error": "MCCACHE_ERR_BAD_MAGIC"}
 *   testee plan FILE        the fragmentation cases of FILE (conformance/vectors/fragmentation.json)
 *                           as one JSON array of results, in order
 *
 * Acceptance is decided by the real codec (`decodePacket`, `decodeMessage`,
 * `decodePythonV0Header`), so the suite tests what a node runs; the printed value is the
 * canonical tree of the same bytes (`canonicalTree`). The exit status is 0 unless the testee
 * itself failed (bad arguments, unreadable file).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { McCacheError, MalformedPacketError, ErrorCode } from '../errors';
import { decodeMessage, decodePacket, decodePythonV0Header } from '../codec/decode';
import { canonicalTree, type CanonicalJson } from '../codec/canonical';
import { planFragments } from '../codec/fragment';
import { FLAG_ENCRYPTED, OP_CODES, type Packet } from '../codec/packet';

type Kind = 'datagram' | 'message' | 'python_v0';
const KINDS: readonly string[] = ['datagram', 'message', 'python_v0'];

type Outcome = { ok: true; value: CanonicalJson } | { ok: false; error: string; detail?: string };

/**
 * A .hex vector (conformance/README.md "Vector files"): `#` starts a comment; the rest is hex
 * digits in whitespace-separated tokens of whole bytes. A run of lines holding bytes, ended by a
 * blank line or the end of the file, is one datagram.
 */
export function parseHexFile(text: string): Uint8Array[] {
  const datagrams: Uint8Array[] = [];
  let current: string[] = [];
  const flush = () => {
    if (current.length > 0) datagrams.push(Uint8Array.from(Buffer.from(current.join(''), 'hex')));
    current = [];
  };
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return flush();
    const data = line.replace(/#.*$/, '');
    for (const token of data.split(/\s+/).filter((t) => t !== '')) {
      if (!/^(?:[0-9a-fA-F]{2})+$/.test(token)) throw new Error(`line ${i + 1}: "${token}" is not whole bytes of hex`);
      current.push(token);
    }
  });
  flush();
  return datagrams;
}

function decodeVector(kind: Kind, datagrams: Uint8Array[]): Outcome {
  try {
    switch (kind) {
      case 'datagram':
        return { ok: true, value: datagramVector(concat(datagrams)) };
      case 'message':
        return { ok: true, value: messageVector(datagrams) };
      case 'python_v0': {
        const bytes = concat(datagrams);
        decodePythonV0Header(bytes);
        return { ok: true, value: canonicalTree('python_v0', bytes) };
      }
    }
  } catch (err) {
    if (err instanceof MalformedPacketError) return { ok: false, error: err.code };
    // The codec lets nothing else escape; anything here is a bug the runner must show.
    return { ok: false, error: 'TESTEE_INTERNAL_ERROR', detail: String((err as Error)?.stack ?? err) };
  }
}

/** `{"datagram": tree, "message": tree or null}`: the message when the datagram holds all of it in plaintext. */
function datagramVector(bytes: Uint8Array): CanonicalJson {
  const packet = decodePacket(bytes);
  return {
    datagram: canonicalTree('datagram', bytes),
    message: packet.message === undefined ? null : canonicalTree('message', packet.fragment, OP_CODES[packet.header.op]),
  };
}

/** `{"datagrams": [trees], "message": tree}` after reassembly (conformance/README.md "Reassembly"). */
function messageVector(datagrams: Uint8Array[]): CanonicalJson {
  if (datagrams.length === 0) throw new MalformedPacketError(ErrorCode.TRUNCATED, 'no datagram');
  const packets = datagrams.map((d) => decodePacket(d)); // in file order: the first bad datagram decides
  const whole = reassemble(packets);
  const op = packets[0]!.header.op;
  decodeMessage(op, whole);
  return {
    datagrams: datagrams.map((d) => canonicalTree('datagram', d)),
    message: canonicalTree('message', whole, OP_CODES[op]),
  };
}

/**
 * The suite's reassembly rule, checked in this order:
 * 1. no fragment is encrypted (a testee holds no key): else INVALID_FIELD;
 * 2. every fragment has the first one's sender_id, msg_seq, op_code, num_frags and len_message:
 *    else INVALID_FIELD;
 * 3. there are num_frags fragments and each frag_index 0..num_frags-1 occurs once: else
 *    INVALID_FIELD;
 * 4. the fragments, concatenated by frag_index, are len_message bytes: else LENGTH_MISMATCH.
 */
function reassemble(packets: Packet[]): Uint8Array {
  const first = packets[0]!.header;
  for (const { header: h } of packets) {
    if ((h.flags & FLAG_ENCRYPTED) !== 0) {
      throw new MalformedPacketError(ErrorCode.INVALID_FIELD, 'an encrypted fragment cannot be reassembled without its key',
        { field: 'mccache_datagram.flags' });
    }
  }
  for (const { header: h } of packets) {
    const differs = (['senderId', 'msgSeq', 'op', 'numFrags', 'lenMessage'] as const).find((k) => h[k] !== first[k]);
    if (differs !== undefined) {
      throw new MalformedPacketError(ErrorCode.INVALID_FIELD, `fragment ${h.fragIndex}: ${differs} differs from the first fragment's`);
    }
  }
  const byIndex: (Uint8Array | undefined)[] = new Array(first.numFrags);
  for (const p of packets) {
    if (byIndex[p.header.fragIndex] !== undefined) {
      throw new MalformedPacketError(ErrorCode.INVALID_FIELD, `fragment ${p.header.fragIndex} occurs twice`,
        { field: 'mccache_datagram.frag_index' });
    }
    byIndex[p.header.fragIndex] = p.fragment;
  }
  const missing = [...byIndex.keys()].filter((i) => byIndex[i] === undefined);
  if (missing.length > 0) {
    throw new MalformedPacketError(ErrorCode.INVALID_FIELD, `fragments ${missing.join(', ')} are missing`,
      { field: 'mccache_datagram.frag_index' });
  }
  const whole = concat(byIndex as Uint8Array[]);
  if (whole.length !== first.lenMessage) {
    throw new MalformedPacketError(ErrorCode.LENGTH_MISMATCH,
      `fragments hold ${whole.length} bytes, len_message says ${first.lenMessage}`, { field: 'mccache_datagram.len_message' });
  }
  return whole;
}

function concat(parts: Uint8Array[]): Uint8Array {
  return parts.length === 1 ? parts[0]! : Uint8Array.from(Buffer.concat(parts));
}

interface PlanCase { mtu: number; len_message: number; encrypted: boolean }

function planCase(c: PlanCase): CanonicalJson {
  try {
    const plan = planFragments(c.len_message, c.mtu, { encrypted: c.encrypted });
    return { num_frags: plan.numFrags, capacity: plan.capacity, len_last_fragment: plan.lastSize };
  } catch (err) {
    if (err instanceof McCacheError) return { error: err.code };
    throw err;
  }
}

/** "…/conformance/vectors/datagram/y_put.hex" -> kind "datagram", name "datagram/y_put.hex". */
function vectorName(file: string): { kind: Kind; name: string } {
  const kind = path.basename(path.dirname(file));
  if (!KINDS.includes(kind)) throw new Error(`${file}: its folder must be one of ${KINDS.join(', ')}`);
  return { kind: kind as Kind, name: `${kind}/${path.basename(file)}` };
}

export function main(argv: string[]): number {
  const [command, ...files] = argv;
  if (command === 'decode' && files.length > 0) {
    for (const file of files) {
      const { kind, name } = vectorName(file);
      const outcome = decodeVector(kind, parseHexFile(fs.readFileSync(file, 'utf8')));
      process.stdout.write(JSON.stringify({ file: name, ...outcome }) + '\n');
    }
    return 0;
  }
  if (command === 'plan' && files.length === 1) {
    const { cases } = JSON.parse(fs.readFileSync(files[0]!, 'utf8')) as { cases: PlanCase[] };
    process.stdout.write(JSON.stringify(cases.map(planCase)) + '\n');
    return 0;
  }
  process.stderr.write('usage: testee decode FILE... | testee plan FILE\n');
  return 2;
}

if (require.main === module) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`testee: ${(err as Error).message}\n`);
    process.exitCode = 2;
  }
}
