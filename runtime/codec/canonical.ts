/**
 * The canonical JSON of a Kaitai parse tree: what the conformance suite compares across ports
 * (conformance/README.md "Canonical JSON"). The rules are the contract, so every port's testee
 * must print exactly this:
 *
 * - A parsed type is a JSON object whose keys are its .ksy `seq` ids (snake_case) in seq order.
 *   Instances (`value:` and lazily parsed ones) and `params` are not part of the tree.
 * - u1, u2 and u4 fields are JSON numbers; u8 fields are decimal strings (JSON numbers are
 *   exact only to 2^53, and sender ids and HLC timestamps use all 64 bits).
 * - An enum field is the enum entry's .ksy id (`"put"`, `"tombstone"`), never its number.
 *   Validation rejects unknown values before a tree exists, so there is no fallback.
 * - A byte field (`size:`/`size-eos:` without a type) is a lowercase hex string, `""` if empty.
 * - A `repeat` field is a JSON array; a field of a user type (also through `switch-on`) is that
 *   type's object.
 *
 * The tree comes from the debug build of the generated parsers (same spec; every object records
 * `_debug` entries in read order, with `enumName` on enum fields), read through the bigint
 * stream so u8 fields are exact. Validation is the generated parser's, so a tree exists exactly
 * when the spec accepts the bytes; the codec's extra rules (UTF-8 names and keys, reassembly)
 * are applied by `decodePacket`/`decodeMessage`, not here.
 */
import { streamOf } from './kaitai';
import { Debug } from './generated-modules';
import { snake } from './decode';

export type CanonicalJson = string | number | null | CanonicalJson[] | { [key: string]: CanonicalJson };

/** Which spec parses the bytes: the datagram, a whole message body, or a Python v0 header. */
export type TreeKind = 'datagram' | 'message' | 'python_v0';

interface DebugEntry { enumName?: string }
type DebugObject = Record<string, unknown> & { _debug: Record<string, DebugEntry>; _read(): void };

/**
 * Parses `bytes` with the debug build of the spec for `kind` and returns its canonical tree.
 * `opCode` (the header's op code) is required for `message`. Throws the generated parser's
 * error when the spec rejects the bytes (callers decide acceptance with `decodePacket`/
 * `decodeMessage`, which also map errors to codes).
 */
export function canonicalTree(kind: TreeKind, bytes: Uint8Array, opCode?: number): CanonicalJson {
  const io = streamOf(bytes);
  let root: unknown;
  switch (kind) {
    case 'datagram':
      root = new Debug.MccacheDatagram(io);
      break;
    case 'message':
      if (opCode === undefined) throw new TypeError('canonicalTree: a message needs the op code');
      root = new Debug.MccacheMessage(io, null, null, opCode);
      break;
    case 'python_v0':
      root = new Debug.MccacheV0Header(io); // little-endian; the bigint stream reads u8le exactly
      break;
    default:
      throw new TypeError(`canonicalTree: unknown kind ${String(kind)}`);
  }
  (root as DebugObject)._read();
  return objectTree(root as DebugObject);
}

function objectTree(obj: DebugObject): { [key: string]: CanonicalJson } {
  const out: { [key: string]: CanonicalJson } = {};
  for (const [field, entry] of Object.entries(obj._debug)) {
    if (field.startsWith('_m_')) continue; // an instance, read on demand: not part of the tree
    out[snake(field)] = valueTree(obj[field], entry.enumName, field);
  }
  return out;
}

function valueTree(v: unknown, enumName: string | undefined, field: string): CanonicalJson {
  if (Array.isArray(v)) return v.map((item) => valueTree(item, enumName, field));
  if (v instanceof Uint8Array) return hex(v);
  if (typeof v === 'bigint') return v.toString(10);
  if (typeof v === 'number') {
    if (enumName !== undefined) return enumId(enumName, v);
    // A u8 read through a plain KaitaiStream would arrive as a rounded double; the spec keeps
    // u8 fields out of sized substreams, so this guards that house rule.
    if (!Number.isSafeInteger(v)) throw new RangeError(`canonicalTree: ${field} = ${v} is not exact`);
    return v;
  }
  if (typeof v === 'object' && v !== null && '_debug' in v) return objectTree(v as DebugObject);
  throw new TypeError(`canonicalTree: ${field} has no canonical form (${typeof v})`);
}

/** `enumName` is the debug build's "Class.Enum" (e.g. "MccacheCommon.OpCode"). */
function enumId(enumName: string, value: number): string {
  const [cls, name] = enumName.split('.');
  const owner = (Debug as Record<string, unknown>)[cls ?? ''] as Record<string, unknown> | undefined;
  const table = owner?.[name ?? ''] as Record<number, string> | undefined;
  const id = table?.[value];
  if (typeof id !== 'string') throw new RangeError(`canonicalTree: ${value} is not in ${enumName}`);
  return id.toLowerCase(); // the JS target upper-cases the .ksy id: SYNC_ENTRIES -> sync_entries
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
