#!/usr/bin/env node
// Writes the conformance vectors: conformance/vectors/{datagram,message,python_v0}/*.hex with
// the expected result beside each (*.json), and conformance/vectors/fragmentation.json.
//
//   node conformance/tools/make-vectors.mjs [OUT_DIR]     (default conformance/vectors)
//
// Independence: nothing here imports the project. Every vector is a tree of fields built with
// the small builder below (u1/u2/u4/u8, bytes, struct, list), and three walkers over the same
// tree give its bytes, its annotated .hex (one comment per field) and, for a y_ vector, its
// expected canonical JSON (conformance/README.md "Canonical JSON"). So the expectation is
// written from the field list, by code short enough to check by hand, never by running a
// decoder. The error code of each n_ vector is written by hand next to the reason it fails.
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';

const here = path.dirname(new URL(import.meta.url).pathname);
const OUT = path.resolve(process.argv[2] ?? path.join(here, '..', 'vectors'));

// ---------------------------------------------------------------------------------------------
// The enums of spec/mccache_common.ksy, written out again on purpose (independent of the spec
// loader and of the generated code).

const OP = {
  put: 0x01, delete: 0x02, clear: 0x03, sync_entries: 0x04, metrics_request: 0x05, metrics_reply: 0x06,
  checksum_request: 0x07, checksum_reply: 0x08, batch: 0x09, join: 0x40, leave: 0x41, heartbeat: 0x42, nak: 0x43,
  ack: 0x44, sync_digest: 0x45, sync_request: 0x46,
};
const VALUE_CODEC = { none: 0, bytes: 1, utf8: 2, msgpack: 3, json: 4 };
const ENTRY_KIND = { value: 1, tombstone: 2 };
const LEAVE_REASON = { shutdown: 1, error: 2 };

const HEADER = 28; // spec/mccache_datagram.ksy: fixed header
const SEAL = 28; // AES-256-GCM nonce (12) + tag (16)
const MAX_LEN = 255 * 65507; // 16,704,285: len_message and len_value bound

// ---------------------------------------------------------------------------------------------
// Field-list builder. A node is one of
//   { t: 'int', id, size, value, le?, enumTable? }     unsigned integer (big-endian unless le)
//   { t: 'bytes', id, data }                           raw bytes
//   { t: 'struct', id, fields }                        a .ksy type: an object in canonical JSON
//   { t: 'list', id, items }                           a repeat: an array in canonical JSON
//   { t: 'slice', id, of, from, to }                   bytes from..to of another node (a fragment)
// plus an optional `note` shown in the .hex comment.

const int = (size, le = false) => (id, value, note) => ({ t: 'int', id, size, value: BigInt(value), le, note });
const u1 = int(1), u2 = int(2), u4 = int(4), u8 = int(8);
const u2le = int(2, true), u8le = int(8, true);
const en = (id, table, v, note) => ({ ...u1(id, typeof v === 'string' ? table[v] : v, note), enumTable: table });
const bytes = (id, data, note) => ({ t: 'bytes', id, data: toBytes(data), note });
const struct = (id, fields, note) => ({ t: 'struct', id, fields, note });
const list = (id, items) => ({ t: 'list', id, items: items.map((it, i) => ({ ...it, id: `${id}[${i}]` })) });
const slice = (id, of, from, to, note) => ({ t: 'slice', id, of, from, to, note });

function toBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (typeof data === 'string') return new TextEncoder().encode(data);
  return Uint8Array.from(data);
}
const hexBytes = (s) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const cat = (...parts) => Uint8Array.from(Buffer.concat(parts.map(toBytes)));

/** Walker 1: the bytes. */
function ser(node) {
  switch (node.t) {
    case 'int': {
      const max = 1n << BigInt(8 * node.size);
      if (node.value < 0n || node.value >= max) throw new Error(`${node.id}: ${node.value} does not fit u${node.size}`);
      const out = new Uint8Array(node.size);
      for (let i = 0; i < node.size; i++) out[node.le ? i : node.size - 1 - i] = Number((node.value >> BigInt(8 * i)) & 0xffn);
      return out;
    }
    case 'bytes': return node.data;
    case 'struct': return cat(...node.fields.map(ser));
    case 'list': return cat(...node.items.map(ser));
    case 'slice': return ser(node.of).subarray(node.from, node.to);
  }
  throw new Error(`unknown node ${node.t}`);
}
const size = (node) => ser(node).length;

/** Walker 2: the canonical JSON (conformance/README.md "Canonical JSON"). */
function canon(node) {
  switch (node.t) {
    case 'int':
      if (node.enumTable) {
        const id = Object.keys(node.enumTable).find((k) => BigInt(node.enumTable[k]) === node.value);
        if (id === undefined) throw new Error(`${node.id}: ${node.value} has no enum id`);
        return id;
      }
      return node.size === 8 ? node.value.toString(10) : Number(node.value);
    case 'bytes': return Buffer.from(node.data).toString('hex');
    case 'struct': return Object.fromEntries(node.fields.map((f) => [f.id, canon(f)]));
    case 'list': return node.items.map(canon);
    case 'slice': return Buffer.from(ser(node)).toString('hex');
  }
  throw new Error(`unknown node ${node.t}`);
}

/** Walker 3: annotated lines. Flattens to headings and leaves with absolute offsets. */
function flatten(node, out = [], at = 0, depth = 0) {
  const note = node.note ? ` -- ${node.note}` : '';
  switch (node.t) {
    case 'int':
    case 'bytes': {
      const b = ser(node);
      out.push({ kind: 'leaf', at, bytes: b, depth, text: (node.t === 'int' ? describeInt(node) : describeBytes(node)) + note });
      return at + b.length;
    }
    case 'struct':
      out.push({ kind: 'head', at, depth, text: `${node.id}:${node.note ? ` ${node.note}` : ''}` });
      for (const f of node.fields) at = flatten(f, out, at, depth + 1);
      return at;
    case 'list':
      out.push({ kind: 'head', at, depth, text: `${node.id}: ${node.items.length} item(s)${note}` });
      for (const it of node.items) at = flatten(it, out, at, depth + 1);
      return at;
    case 'slice': {
      const total = size(node.of);
      out.push({ kind: 'head', at, depth,
        text: `${node.id}: ${node.to - node.from} byte(s) of the ${total}-byte message, from byte ${node.from}${note}` });
      const inner = clip(items(node.of), node.from, node.to, total);
      for (const item of inner) out.push({ ...item, at: at + item.at - node.from, depth: depth + 1 + item.depth });
      return at + node.to - node.from;
    }
  }
  throw new Error(`unknown node ${node.t}`);
}

const items = (node) => { const out = []; flatten(node, out); return out; };

/** The items of a flattened node that fall in bytes from..to; a cut leaf says which part it shows. */
function clip(list, from, to, total) {
  const out = [];
  for (const item of list) {
    if (item.kind === 'head') {
      if (item.at >= from && item.at < to) out.push(item);
      continue;
    }
    const s = item.at, e = s + item.bytes.length;
    if (s === e) {
      if ((s >= from && s < to) || (s === to && to === total)) out.push(item);
      continue;
    }
    const a = Math.max(s, from), b = Math.min(e, to);
    if (a >= b) continue;
    const part = a === s && b === e ? '' : ` [${b - a} of them, from byte ${a - s}]`;
    out.push({ ...item, at: a, bytes: item.bytes.subarray(a - s, b - s), text: item.text + part });
  }
  return out;
}

const PER_LINE = 8; // bytes of hex per line
const COL = PER_LINE * 3 - 1;
function render(items) {
  const lines = [];
  for (const item of items) {
    const comment = `# ${'  '.repeat(item.depth)}${item.text}`;
    if (item.kind === 'head' || item.bytes.length === 0) {
      lines.push(`${''.padEnd(COL)}  ${comment}`);
      continue;
    }
    for (let i = 0; i < item.bytes.length; i += PER_LINE) {
      const hex = Buffer.from(item.bytes.subarray(i, i + PER_LINE)).toString('hex').replace(/(..)(?!$)/g, '$1 ');
      lines.push(i === 0 ? `${hex.padEnd(COL)}  ${comment}` : hex);
    }
  }
  return lines;
}

function describeInt(node) {
  const hex = `0x${node.value.toString(16).padStart(node.size * 2, '0')}`;
  if (node.enumTable) {
    const id = Object.keys(node.enumTable).find((k) => BigInt(node.enumTable[k]) === node.value);
    return `${node.id} = ${hex} ${id ?? '(no such enum value)'}`;
  }
  const kind = `u${node.size}${node.le ? 'le' : ''}`;
  return `${node.id} = ${node.value}${node.value > 9n ? ` (${hex})` : ''} ${kind}`;
}

function describeBytes(node) {
  const n = node.data.length;
  let text = '';
  try {
    const s = new TextDecoder('utf-8', { fatal: true }).decode(node.data);
    if (n > 0 && !/[\u0000-\u001f\u007f]/.test(s)) text = ` ${JSON.stringify(s.length > 40 ? s.slice(0, 40) + '...' : s)}`;
  } catch { /* not text */ }
  return `${node.id}: ${n} byte(s)${text}`;
}

/** Sets a leaf (int value or bytes data) found by a dotted path of ids, e.g. "body.key.len_key". */
function patch(node, dotted, value) {
  let cur = node;
  for (const part of dotted.split('.')) {
    const kids = cur.t === 'struct' ? cur.fields : cur.t === 'list' ? cur.items : [];
    const next = /^\d+$/.test(part) && cur.t === 'list' ? kids[Number(part)] : kids.find((k) => k.id === part);
    if (!next) throw new Error(`patch: no ${part} in ${cur.id}`);
    cur = next;
  }
  if (cur.t === 'int') cur.value = BigInt(value);
  else if (cur.t === 'bytes') cur.data = toBytes(value);
  else throw new Error(`patch: ${dotted} is not a leaf`);
  return node;
}

// ---------------------------------------------------------------------------------------------
// Realistic contents

const SENDER_A = 0x9e3779b97f4a7c15n; // above 2^53: a double would round it
const SENDER_B = 0x0020000000000001n; // 2^53 + 1, the first integer a double cannot hold
const SENDER_MAX = 0xffffffffffffffffn;
const T0 = 1764230400000n; // 2025-11-27T08:00:00Z in ms
const hlc = (ms, counter) => (BigInt(ms) << 16n) | BigInt(counter);
const HLC1 = hlc(T0, 7); // 115620603494400007
const HLC2 = hlc(T0 + 1234n, 0);
const HLC_MAX = 0xffffffffffffffffn;

const JSON_VALUE = '{"name":"Ada Lovelace","born":1815}';
// MessagePack of {"name":"Ada","born":1815}, written out by hand: fixmap(2), fixstr, fixstr,
// fixstr, uint16.
const MSGPACK_VALUE = hexBytes('82 a4 6e616d65 a3 416461 a4 626f726e cd 0717');

/** Deterministic bytes that look random (nonces, tags, ciphertext, hashes). */
function pseudo(label, n) {
  const out = new Uint8Array(n);
  for (let i = 0, block = 0; i < n; block++) {
    const h = createHash('sha256').update(`${label}/${block}`).digest();
    out.set(h.subarray(0, Math.min(32, n - i)), i);
    i += 32;
  }
  return out;
}
/** Readable ASCII filler of exactly n bytes. */
function fillerText(n, seed = 'lorem') {
  const words = `${seed} ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore `;
  return words.repeat(Math.ceil(n / words.length) + 1).slice(0, n);
}
const filler = (n, seed) => toBytes(fillerText(n, seed));

const name = (id, text, note) => { const b = toBytes(text); return struct(id, [u1('len_name', b.length), bytes('name', b)], note); };
const key = (id, text) => { const b = toBytes(text); return struct(id, [u2('len_key', b.length), bytes('key', b)]); };
const entryValue = (id, codec, data) => {
  const b = toBytes(data);
  return struct(id, [en('value_codec', VALUE_CODEC, codec), u4('len_value', b.length), bytes('value', b)]);
};

/** A message node (spec/mccache_message.ksy): body of op, then the empty `trailing`. */
function message(op, fields, trailing = []) {
  const node = struct('mccache_message', [struct('body', fields, `${op} body`), bytes('trailing', trailing)]);
  node.op = op;
  return node;
}

const M = {
  put: (o = {}) => message('put', [
    name('cache', o.cache ?? 'users'),
    key('key', o.key ?? 'user:42'),
    u8('hlc', o.hlc ?? HLC1, 'ms << 16 | counter'),
    u4('ttl', o.ttl ?? 60000, 'ms'),
    entryValue('value', o.codec ?? 'json', o.value ?? JSON_VALUE),
  ]),
  delete: (o = {}) => message('delete', [name('cache', o.cache ?? 'users'), key('key', o.key ?? 'user:42'), u8('hlc', o.hlc ?? HLC2)]),
  clear: (o = {}) => message('clear', [name('cache', o.cache ?? 'sessions'), u8('hlc', o.hlc ?? HLC2)]),
  sync_entries: (o = {}) => {
    const entries = o.entries ?? [
      { key: 'user:1', hlc: HLC1, origin: SENDER_A, kind: 'value', ttl: 30000, codec: 'utf8', value: 'héllo wörld ✓' },
      { key: 'user:2', hlc: HLC2, origin: SENDER_B, kind: 'tombstone', ttl: 0, codec: 'none', value: [] },
    ];
    return message('sync_entries', [
      name('cache', o.cache ?? 'users'),
      u8('reply_to', o.replyTo ?? SENDER_B),
      u2('num_entries', entries.length),
      list('entries', entries.map((e) => struct('', [
        key('key', e.key), u8('hlc', e.hlc), u8('origin_id', e.origin), en('kind', ENTRY_KIND, e.kind),
        u4('ttl', e.ttl, 'ms'), entryValue('value', e.codec, e.value),
      ]))),
    ]);
  },
  batch: (o = {}) => {
    const writes = o.writes ?? [
      { kind: 'value', key: 'user:1', hlc: HLC1, ttl: 30000, codec: 'utf8', value: 'héllo wörld ✓' },
      { kind: 'tombstone', key: 'user:2', hlc: HLC1 + 1n, ttl: 0, codec: 'none', value: [] },
      { kind: 'value', key: 'user:3', hlc: HLC1 + 2n, ttl: 0, codec: 'json', value: JSON_VALUE },
    ];
    return message('batch', [
      name('cache', o.cache ?? 'users'),
      u2('num_writes', o.numWrites ?? writes.length),
      list('writes', writes.map((w) => struct('', [
        en('kind', ENTRY_KIND, w.kind), key('key', w.key), u8('hlc', w.hlc), u4('ttl', w.ttl, 'ms'), entryValue('value', w.codec, w.value),
      ]))),
    ]);
  },
  metrics_request: (o = {}) => message('metrics_request', [u8('target', o.target ?? 0n, '0 = every member')]),
  metrics_reply: (o = {}) => message('metrics_reply', [
    u8('request_sender', o.requestSender ?? SENDER_B), u4('request_seq', o.requestSeq ?? 17),
    entryValue('report', o.codec ?? 'json', o.report ?? '{"users":{"size":1024,"hits":99871,"misses":1203}}'),
  ]),
  checksum_request: (o = {}) => message('checksum_request', [u8('target', o.target ?? SENDER_A), name('cache', o.cache ?? '', 'empty = every cache')]),
  checksum_reply: (o = {}) => message('checksum_reply', [
    u8('request_sender', o.requestSender ?? SENDER_B), u4('request_seq', o.requestSeq ?? 18),
    name('cache', o.cache ?? 'users'), u4('num_entries', o.numEntries ?? 1024),
    bytes('checksum', o.checksum ?? createHash('sha256').update('users sorted (key, version) list').digest(), 'SHA-256'),
  ]),
  join: (o = {}) => message('join', [
    u4('heartbeat_interval', o.heartbeatInterval ?? 1000, 'ms'), u2('packet_mtu', o.packetMtu ?? 1472),
    u4('pid', o.pid ?? 48213), name('host', o.host ?? 'cache-node-3.example.internal'),
  ]),
  leave: (o = {}) => message('leave', [en('reason', LEAVE_REASON, o.reason ?? 'shutdown')]),
  heartbeat: (o = {}) => message('heartbeat', [
    u4('heartbeat_interval', o.heartbeatInterval ?? 1000, 'ms'), u2('num_members', o.numMembers ?? 5),
    u4('low_seq', o.lowSeq ?? 31, 'lowest sequence still retransmittable'),
  ]),
  nak: (o = {}) => {
    const ranges = o.ranges ?? [[5, 7], [10, 10]];
    const partials = o.partials ?? [{ seq: 12, frags: 10, missing: '90 40' }]; // fragments 0, 3 and 9
    return message('nak', [
      u8('target', o.target ?? SENDER_A),
      u1('num_ranges', ranges.length),
      list('ranges', ranges.map(([first, last]) => struct('', [u4('first', first), u4('last', last)]))),
      u1('num_partials', partials.length),
      list('partials', partials.map((p) => struct('', [
        u4('msg_seq', p.seq), u1('num_frags', p.frags), bytes('missing', hexBytes(p.missing), 'bit 7 of byte 0 = fragment 0'),
      ]))),
    ]);
  },
  ack: (o = {}) => {
    const entries = o.entries ?? [[SENDER_A, 41], [SENDER_B, 7], [SENDER_MAX, 4294967295]];
    return message('ack', [
      u1('num_entries', entries.length),
      list('entries', entries.map(([id, seq]) => struct('', [u8('sender_id', id), u4('delivered_seq', seq)]))),
    ]);
  },
  sync_digest: (o = {}) => {
    const hashes = o.hashes ?? [0x0123456789abcdefn, 0n, SENDER_MAX, 0x8000000000000000n];
    return message('sync_digest', [
      name('cache', o.cache ?? 'users'), u4('num_entries', o.numEntries ?? 1024),
      u8('clear_hlc', o.clearHlc ?? HLC2), u8('clear_origin', o.clearOrigin ?? SENDER_B),
      u2('num_buckets', o.numBuckets ?? 64), u2('first_bucket', o.firstBucket ?? 8),
      u2('num_hashes', hashes.length), list('hashes', hashes.map((h) => u8('', h))),
    ]);
  },
  sync_request: (o = {}) => {
    const ids = o.bucketIds ?? [3, 17, 63];
    return message('sync_request', [
      u8('target', o.target ?? SENDER_B), name('cache', o.cache ?? 'users'), u2('num_buckets', o.numBuckets ?? 64),
      u2('num_bucket_ids', ids.length), list('bucket_ids', ids.map((b) => u2('', b))),
    ]);
  },
};

/** A put whose message is exactly `n` bytes (the value absorbs the difference). */
function putOfSize(n, o = {}) {
  const base = size(M.put({ ...o, value: [] }));
  if (n < base) throw new Error(`putOfSize: ${n} < ${base}`);
  return M.put({ codec: 'utf8', ...o, value: filler(n - base, o.seed) });
}

// ---------------------------------------------------------------------------------------------
// Datagrams

const FLAG_NOTE = (f) => [f & 1 ? 'encrypted' : '', f & 2 ? 'retransmission' : '', f & 0xfc ? 'RESERVED BITS' : '']
  .filter(Boolean).join(' + ') || 'none';

/**
 * One datagram of a message. `message` is the message node, `from`/`to` the fragment's slice of
 * it (default: all of it). `sealed` replaces the fragment by nonce/ciphertext/tag. Any header
 * field can be given to break it on purpose.
 */
function datagram(o) {
  const flags = o.flags ?? 0;
  const encrypted = (flags & 1) !== 0;
  const msg = o.message;
  const fragment = o.fragment
    ?? (o.sealed ? sealedFragment(o.sealed) : slice('fragment', msg, o.from ?? 0, o.to ?? size(msg)));
  const lenFragment = size(fragment);
  const node = struct('mccache_datagram', [
    u2('magic', o.magic ?? 0x4d43, o.magic === undefined ? '"MC"' : undefined),
    u1('version', o.version ?? 1),
    en('op_code', OP, o.op ?? msg.op),
    u1('flags', flags, FLAG_NOTE(flags)),
    u1('key_id', o.keyId ?? 0),
    u1('frag_index', o.fragIndex ?? 0),
    u1('num_frags', o.numFrags ?? 1),
    u8('sender_id', o.senderId ?? SENDER_A),
    u4('msg_seq', o.msgSeq ?? 1),
    u4('len_message', o.lenMessage ?? (msg ? size(msg) : lenFragment - (encrypted ? SEAL : 0))),
    u2('len_fragment', o.lenFragment ?? lenFragment),
    u2('reserved', o.reserved ?? 0),
    fragment,
    bytes('trailing', o.trailing ?? []),
  ], o.title);
  node.message = msg;
  return node;
}

function sealedFragment({ label = 'seal', plaintextLength, ciphertext }) {
  const ct = ciphertext ?? pseudo(`${label}/ct`, plaintextLength);
  return struct('fragment', [
    bytes('nonce', pseudo(`${label}/nonce`, 12)),
    bytes('ciphertext', ct, 'AES-256-GCM, never decrypted by the suite'),
    bytes('tag', pseudo(`${label}/tag`, 16)),
  ], 'sealed');
}

/** Splits a message into datagrams of the given fragment sizes (frag_index in order). */
function fragmentsOf(msg, sizes, o = {}) {
  const total = size(msg);
  if (sizes.reduce((a, b) => a + b, 0) !== total) throw new Error('fragmentsOf: sizes do not add up');
  let at = 0;
  return sizes.map((n, i) => {
    const d = datagram({ msgSeq: 9, ...o, message: msg, from: at, to: at + n, fragIndex: i, numFrags: sizes.length });
    at += n;
    return d;
  });
}
const evenSizes = (total, capacity) => {
  const n = Math.max(1, Math.ceil(total / capacity));
  return Array.from({ length: n }, (_, i) => (i < n - 1 ? capacity : total - (n - 1) * capacity));
};

/** Python v0 header (spec/mccache_v0_header.ksy), little-endian. */
function v0(o = {}) {
  const payload = toBytes(o.payload ?? cat(PICKLE_KEY, PICKLE_VALUE));
  return struct('mccache_v0_header', [
    u1('magic', o.magic ?? 0xf9, o.magic === undefined ? '0b11111001' : undefined),
    u1('reserved', o.reserved ?? 0),
    u1('frag_index', o.fragIndex ?? 0),
    u1('num_frags', o.numFrags ?? 1),
    u2le('len_key', o.lenKey ?? PICKLE_KEY.length),
    u2le('len_value', o.lenValue ?? PICKLE_VALUE.length),
    u8le('tsm', o.tsm ?? TSM, 'time.time_ns()'),
    u2le('rcv', o.rcv ?? 0, '0 = every receiver'),
    bytes('payload', payload, 'pickles, never decoded'),
  ]);
}
const TSM = 1764230400123456789n;
// Hand-made pickles shaped like McCache-for-Python's (protocol 4): ("default", "user:42", tsm)
// and ("INS", crc, "Ada"). They are never unpickled; only their bytes matter here.
const PICKLE_KEY = pickle(cat([0x8c, 7], 'default', [0x94, 0x8c, 7], 'user:42', [0x94, 0x8a, 8], le64(TSM), [0x87, 0x94]));
const PICKLE_VALUE = pickle(cat([0x8c, 3], 'INS', [0x94, 0x4a], [0x39, 0x30, 0x00, 0x00], [0x8c, 3], 'Ada', [0x94, 0x87, 0x94]));
function pickle(inner) {
  const framed = cat(inner, [0x2e]); // STOP
  return cat([0x80, 0x04, 0x95], le64(BigInt(framed.length)), framed); // PROTO 4, FRAME len
}
function le64(v) { const b = new Uint8Array(8); for (let i = 0; i < 8; i++) b[i] = Number((v >> BigInt(8 * i)) & 0xffn); return b; }

// ---------------------------------------------------------------------------------------------
// Output

// Only what this script writes is removed, so a stale vector cannot linger.
for (const sub of ['datagram', 'message', 'python_v0', 'fragmentation.json']) fs.rmSync(path.join(OUT, sub), { recursive: true, force: true });
fs.mkdirSync(OUT, { recursive: true });
const written = { datagram: 0, message: 0, python_v0: 0 };

/**
 * Writes `<kind>/<name>.hex` and `.json`. `parts` are datagram nodes, or `{ node, cut }` to keep
 * only the first `cut` bytes. `expect` is the canonical value (y_) or an error code (n_).
 */
function vector(kind, name, title, parts, expect) {
  const verdict = name.slice(0, 2);
  const isError = typeof expect === 'string';
  if (!(verdict === 'y_' && !isError) && !(verdict === 'n_' && isError)) throw new Error(`${name}: verdict and expectation disagree`);
  const dir = path.join(OUT, kind);
  fs.mkdirSync(dir, { recursive: true });
  const lines = [
    `# ${kind}/${name}.hex: ${title}`,
    `# expected: ${isError ? `rejected, ${expect}` : `accepted, canonical JSON in ${name}.json`}`,
    '# written by conformance/tools/make-vectors.mjs (edit the generator, not this file)',
  ];
  parts.forEach((p, i) => {
    const { node, cut } = p.node ? p : { node: p, cut: undefined };
    const full = ser(node);
    const n = cut ?? full.length;
    lines.push('');
    if (kind === 'message') lines.push(`# datagram ${i + 1} of ${parts.length}: ${n} bytes`);
    else lines.push(`# ${n} bytes`);
    lines.push(...render(clip(items(node), 0, n, full.length)));
    if (cut !== undefined) lines.push(`# -- cut here: the ${full.length - n} byte(s) that would follow are missing`);
  });
  fs.writeFileSync(path.join(dir, `${name}.hex`), lines.join('\n') + '\n');
  fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(isError ? { error: expect } : expect, null, 2) + '\n');
  written[kind]++;
}

/** Expected value of an accepted datagram vector: the message only when it is whole and plaintext. */
function expectDatagram(d) {
  const f = Object.fromEntries(d.fields.map((x) => [x.id, x]));
  const whole = f.num_frags.value === 1n && (f.flags.value & 1n) === 0n;
  return { datagram: canon(d), message: whole ? canon(d.message) : null };
}
const expectMessage = (dgs, msg) => ({ datagrams: dgs.map(canon), message: canon(msg) });

const yD = (name, title, d) => vector('datagram', name, title, [d], expectDatagram(d));
const nD = (name, title, d, code) => vector('datagram', name, title, [d], code);
const E = {
  TRUNCATED: 'MCCACHE_ERR_TRUNCATED', BAD_MAGIC: 'MCCACHE_ERR_BAD_MAGIC', UNSUPPORTED_VERSION: 'MCCACHE_ERR_UNSUPPORTED_VERSION',
  UNKNOWN_OP: 'MCCACHE_ERR_UNKNOWN_OP', LENGTH_MISMATCH: 'MCCACHE_ERR_LENGTH_MISMATCH', TRAILING_BYTES: 'MCCACHE_ERR_TRAILING_BYTES',
  OVER_LIMIT: 'MCCACHE_ERR_OVER_LIMIT', INVALID_FIELD: 'MCCACHE_ERR_INVALID_FIELD',
};

// ---------------------------------------------------------------------------------------------
// datagram/ y_: every op code, whole and plaintext (message decoded)

const one = (msg, o = {}) => datagram({ message: msg, ...o });
yD('y_put_json', 'PUT of a JSON value; sender id and hlc above 2^53', one(M.put(), { msgSeq: 42 }));
yD('y_put_value_codec_none', 'PUT with codec none and an empty value', one(M.put({ codec: 'none', value: [] }), { msgSeq: 43 }));
yD('y_put_value_codec_bytes', 'PUT of raw bytes', one(M.put({ codec: 'bytes', value: hexBytes('00 01 7f 80 fe ff') }), { msgSeq: 44 }));
yD('y_put_value_codec_utf8', 'PUT of a UTF-8 string', one(M.put({ codec: 'utf8', value: 'héllo wörld ✓ 日本' }), { msgSeq: 45 }));
yD('y_put_value_codec_msgpack', 'PUT of a MessagePack map', one(M.put({ codec: 'msgpack', value: MSGPACK_VALUE }), { msgSeq: 46 }));
yD('y_put_u8_max', 'PUT with sender_id and hlc 2^64-1, ttl and msg_seq at u4 max',
  one(M.put({ hlc: HLC_MAX, ttl: 0xffffffff }), { senderId: SENDER_MAX, msgSeq: 0xffffffff }));
yD('y_put_sender_2p53_plus_1', 'PUT from sender 2^53+1 (a double would read 2^53)', one(M.put({ hlc: (1n << 53n) + 1n }), { senderId: SENDER_B }));
yD('y_put_unicode_names', 'PUT with multi-byte UTF-8 cache name and key', one(M.put({ cache: 'café-Ω', key: 'ключ:😀' })));
yD('y_put_key_nul_and_bom', 'PUT whose key holds U+FEFF and U+0000 (both valid UTF-8)', one(M.put({ key: '\uFEFFa\u0000b' })));
yD('y_put_empty_cache_and_key', 'PUT with empty cache name and empty key', one(M.put({ cache: '', key: '' })));
yD('y_put_name_255_bytes', 'PUT with a 255-byte cache name (u1 maximum)', one(M.put({ cache: filler(255, 'cache') })));
yD('y_delete', 'DEL leaves a tombstone', one(M.delete(), { msgSeq: 50 }));
yD('y_clear', 'RST (clear) of a cache', one(M.clear(), { msgSeq: 51 }));
yD('y_sync_entries', 'SYE with a value and a tombstone', one(M.sync_entries(), { msgSeq: 52 }));
yD('y_sync_entries_empty', 'SYE with no entries', one(M.sync_entries({ entries: [], replyTo: 0n }), { msgSeq: 53 }));
yD('y_batch', 'BAT: a put, a delete and a put of one cache', one(M.batch(), { msgSeq: 59 }));
yD('y_batch_one_delete', 'BAT holding a single delete', one(M.batch({ writes: [{ kind: 'tombstone', key: 'k', hlc: HLC2, ttl: 0, codec: 'none', value: [] }] }), { msgSeq: 60 }));
yD('y_metrics_request', 'MET to every member', one(M.metrics_request(), { msgSeq: 54 }));
yD('y_metrics_reply_json', 'MER with a JSON report', one(M.metrics_reply(), { msgSeq: 55 }));
yD('y_metrics_reply_msgpack', 'MER with a MessagePack report', one(M.metrics_reply({ codec: 'msgpack', report: MSGPACK_VALUE }), { msgSeq: 56 }));
yD('y_checksum_request', 'INQ for every cache (empty name)', one(M.checksum_request(), { msgSeq: 57 }));
yD('y_checksum_reply', 'INR with a SHA-256', one(M.checksum_reply(), { msgSeq: 58 }));
yD('y_join', 'NEW (join); msg_seq carries the high-water mark 0', one(M.join(), { msgSeq: 0 }));
yD('y_join_packet_mtu_548', 'NEW at the smallest packet_mtu', one(M.join({ packetMtu: 548 }), { msgSeq: 0 }));
yD('y_join_packet_mtu_65507', 'NEW at the largest packet_mtu (the largest UDP payload over IPv4)', one(M.join({ packetMtu: 65507 }), { msgSeq: 0 }));
yD('y_leave_shutdown', 'BYE on shutdown', one(M.leave(), { msgSeq: 60 }));
yD('y_leave_error', 'BYE after an error', one(M.leave({ reason: 'error' }), { msgSeq: 60 }));
yD('y_heartbeat', 'HBT; msg_seq is the highest sequence assigned', one(M.heartbeat(), { msgSeq: 60 }));
yD('y_nak', 'NAK with two ranges and a partial (fragments 0, 3, 9 missing)', one(M.nak(), { senderId: SENDER_B, msgSeq: 3 }));
yD('y_nak_empty', 'NAK with no ranges and no partials', one(M.nak({ ranges: [], partials: [] }), { senderId: SENDER_B, msgSeq: 3 }));
// (255 + 7) / 8 = 32: a port that computes the bitmap size in 8 bits gets 0 and misreads the rest.
yD('y_nak_partial_255_fragments', 'NAK of a 255-fragment message (32-byte bitmap)',
  one(M.nak({ ranges: [[1, 4294967295]], partials: [{ seq: 99, frags: 255, missing: 'ff'.repeat(31) + 'fe' }] }), { senderId: SENDER_B, msgSeq: 3 }));
yD('y_nak_range_single', 'NAK range with first == last', one(M.nak({ ranges: [[7, 7]], partials: [] }), { senderId: SENDER_B, msgSeq: 3 }));
yD('y_ack', 'ACK for three senders', one(M.ack(), { senderId: SENDER_B, msgSeq: 3 }));
yD('y_ack_empty', 'ACK with no entries', one(M.ack({ entries: [] }), { senderId: SENDER_B, msgSeq: 3 }));
yD('y_sync_digest', 'SYC with four 64-bit bucket hashes', one(M.sync_digest(), { msgSeq: 60 }));
yD('y_sync_digest_last_buckets', 'SYC whose hashes end exactly at num_buckets',
  one(M.sync_digest({ numBuckets: 4, firstBucket: 0 }), { msgSeq: 60 }));
yD('y_sync_digest_no_hashes', 'SYC with no hashes', one(M.sync_digest({ hashes: [], firstBucket: 64 }), { msgSeq: 60 }));
yD('y_sync_request', 'REQ for three buckets', one(M.sync_request(), { msgSeq: 60 }));
yD('y_retransmission', 'PUT re-sent to repair a loss (flag bit 1)', one(M.put(), { flags: 0x02, msgSeq: 42 }));

// Encrypted: header + sealed fragment tree; the message stays sealed (message null).
yD('y_encrypted', 'sealed PUT with key_id 3',
  datagram({ op: 'put', flags: 0x01, keyId: 3, msgSeq: 42, sealed: { label: 'enc1', plaintextLength: 57 } }));
yD('y_encrypted_retransmission', 'sealed and retransmitted (flags 0x03)',
  datagram({ op: 'put', flags: 0x03, keyId: 255, msgSeq: 42, sealed: { label: 'enc2', plaintextLength: 20 } }));
yD('y_encrypted_key_id_0', 'sealed with key_id 0 (allowed: 0 is a key id too when encrypted)',
  datagram({ op: 'heartbeat', flags: 0x01, keyId: 0, msgSeq: 7, sealed: { label: 'enc3', plaintextLength: 6 } }));
yD('y_encrypted_empty_plaintext', 'sealed empty message: len_fragment exactly 28',
  datagram({ op: 'put', flags: 0x01, keyId: 1, sealed: { label: 'enc4', plaintextLength: 0 } }));
yD('y_encrypted_fragment_1_of_3', 'sealed middle fragment of a 3-fragment message',
  datagram({ op: 'sync_entries', flags: 0x01, keyId: 2, fragIndex: 1, numFrags: 3, lenMessage: 3000, sealed: { label: 'enc5', plaintextLength: 1416 } }));

// Fragment counts and MTU boundaries (a fragment alone: message null).
const big = putOfSize(255 * 1444, { seed: 'big' }); // 255 full fragments at MTU 1472
yD('y_fragment_0_of_2', 'first fragment of a 2-fragment PUT',
  datagram({ message: putOfSize(2000), from: 0, to: 1444, fragIndex: 0, numFrags: 2, msgSeq: 100 }));
yD('y_fragment_1_of_2', 'last fragment of a 2-fragment PUT (556 bytes)',
  datagram({ message: putOfSize(2000), from: 1444, to: 2000, fragIndex: 1, numFrags: 2, msgSeq: 100 }));
yD('y_fragment_253_of_254', 'last fragment of a 254-fragment message',
  datagram({ message: putOfSize(254 * 1444, { seed: 'big' }), from: 253 * 1444, to: 254 * 1444, fragIndex: 253, numFrags: 254, msgSeq: 101 }));
yD('y_fragment_254_of_255', 'last fragment of a 255-fragment message at MTU 1472 (datagram 1472 bytes)',
  datagram({ message: big, from: 254 * 1444, to: 255 * 1444, fragIndex: 254, numFrags: 255, msgSeq: 102 }));
yD('y_fragment_len_message_at_limit', 'fragment of a message of exactly 255 x 65507 bytes (len_message maximum)',
  datagram({ op: 'put', fragment: bytes('fragment', filler(100, 'limit'), 'a slice of a 16,704,285-byte message'),
    fragIndex: 0, numFrags: 255, lenMessage: MAX_LEN, msgSeq: 103 }));
yD('y_mtu_548_whole_message', 'single-fragment PUT, datagram exactly 548 bytes (minimum MTU)', one(putOfSize(548 - HEADER), { msgSeq: 104 }));
yD('y_mtu_1472_whole_message', 'single-fragment PUT, datagram exactly 1472 bytes (default MTU)', one(putOfSize(1472 - HEADER), { msgSeq: 105 }));
yD('y_mtu_548_encrypted', 'sealed single fragment, datagram exactly 548 bytes',
  datagram({ op: 'put', flags: 0x01, keyId: 1, msgSeq: 106, sealed: { label: 'mtu548', plaintextLength: 548 - HEADER - SEAL } }));
yD('y_mtu_65507_fragment_0_of_2', 'first fragment at the largest MTU: datagram exactly 65507 bytes',
  datagram({ message: putOfSize(65507 - HEADER + 521, { seed: 'max' }), from: 0, to: 65507 - HEADER, fragIndex: 0, numFrags: 2, msgSeq: 107 }));

// ---------------------------------------------------------------------------------------------
// datagram/ n_: the header

const hb = () => M.heartbeat();
nD('n_empty', 'no bytes at all', { node: one(hb()), cut: 0 }, E.TRUNCATED);
nD('n_header_1_byte', 'one byte of magic', { node: one(hb()), cut: 1 }, E.TRUNCATED);
nD('n_header_27_bytes', 'header one byte short', { node: one(hb()), cut: 27 }, E.TRUNCATED);
nD('n_header_only', 'a whole header, then none of the fragment it announces', { node: one(hb()), cut: 28 }, E.TRUNCATED);
nD('n_fragment_truncated', 'PUT fragment cut in the middle of the key', { node: one(M.put()), cut: 40 }, E.TRUNCATED);
nD('n_sealed_fragment_truncated', 'sealed fragment cut inside the ciphertext',
  { node: datagram({ op: 'put', flags: 1, keyId: 1, sealed: { label: 'cut', plaintextLength: 40 } }), cut: 60 }, E.TRUNCATED);
nD('n_bad_magic', 'magic "MD"', one(hb(), { magic: 0x4d44 }), E.BAD_MAGIC);
nD('n_bad_magic_byte_swapped', 'magic "CM" (little-endian writer)', one(hb(), { magic: 0x434d }), E.BAD_MAGIC);
nD('n_bad_magic_zero', 'magic 0', one(hb(), { magic: 0 }), E.BAD_MAGIC);
nD('n_bad_magic_python_v0', 'a McCache-for-Python v0 datagram (0xF9) fed to the v1 decoder', v0(), E.BAD_MAGIC);
nD('n_version_0', 'version 0', one(hb(), { version: 0 }), E.UNSUPPORTED_VERSION);
nD('n_version_2', 'version 2 (a later protocol)', one(hb(), { version: 2 }), E.UNSUPPORTED_VERSION);
nD('n_version_255', 'version 255', one(hb(), { version: 255 }), E.UNSUPPORTED_VERSION);
for (const op of [0x00, 0x0a, 0x3f, 0x47, 0x80, 0xff]) {
  nD(`n_op_code_0x${op.toString(16).padStart(2, '0')}`, `op code 0x${op.toString(16)} is not in op_code`,
    datagram({ op, fragment: bytes('fragment', ser(hb()), 'a heartbeat body'), msgSeq: 1 }), E.UNKNOWN_OP);
}
nD('n_flags_reserved_bit_2', 'flags 0x04: a reserved bit', one(hb(), { flags: 0x04 }), E.INVALID_FIELD);
nD('n_flags_reserved_bit_7', 'flags 0x80: a reserved bit', one(hb(), { flags: 0x80 }), E.INVALID_FIELD);
nD('n_flags_all_bits', 'flags 0xff', datagram({ op: 'heartbeat', flags: 0xff, keyId: 1, sealed: { label: 'ff', plaintextLength: 6 } }), E.INVALID_FIELD);
nD('n_key_id_without_encryption', 'key_id 1 on a plaintext datagram', one(hb(), { keyId: 1 }), E.INVALID_FIELD);
nD('n_key_id_with_retransmission_only', 'key_id 5 with only the retransmission flag', one(M.put(), { flags: 0x02, keyId: 5 }), E.INVALID_FIELD);
nD('n_num_frags_0', 'num_frags 0', one(M.put(), { numFrags: 0 }), E.INVALID_FIELD);
nD('n_frag_index_equals_num_frags', 'fragment 2 of 2 (indexes are 0-based)',
  datagram({ message: putOfSize(2000), from: 1444, to: 2000, fragIndex: 2, numFrags: 2 }), E.INVALID_FIELD);
nD('n_frag_index_255_of_255', 'fragment index 255 of 255',
  datagram({ message: big, from: 0, to: 1444, fragIndex: 255, numFrags: 255 }), E.INVALID_FIELD);
nD('n_frag_index_1_of_1', 'fragment 1 of a 1-fragment message', one(M.put(), { fragIndex: 1 }), E.INVALID_FIELD);
nD('n_unsequenced_2_fragments', 'HBT split in 2 fragments (unsequenced ops have 1)',
  datagram({ message: hb(), from: 0, to: 3, fragIndex: 0, numFrags: 2 }), E.INVALID_FIELD);
nD('n_unsequenced_ack_255_fragments', 'ACK claiming 255 fragments',
  datagram({ message: M.ack(), from: 0, to: 10, fragIndex: 0, numFrags: 255 }), E.INVALID_FIELD);
nD('n_len_message_over_limit', 'len_message 255 x 65507 + 1',
  datagram({ op: 'put', fragment: bytes('fragment', filler(100)), fragIndex: 0, numFrags: 255, lenMessage: MAX_LEN + 1 }), E.OVER_LIMIT);
nD('n_len_message_u4_max', 'len_message 0xffffffff',
  datagram({ op: 'put', fragment: bytes('fragment', filler(100)), fragIndex: 0, numFrags: 2, lenMessage: 0xffffffff }), E.OVER_LIMIT);
nD('n_single_fragment_shorter_than_message', '1 fragment of 57 bytes but len_message 58',
  one(M.put(), { lenMessage: size(M.put()) + 1 }), E.LENGTH_MISMATCH);
nD('n_single_fragment_longer_than_message', '1 fragment of 57 bytes but len_message 56',
  one(M.put(), { lenMessage: size(M.put()) - 1 }), E.LENGTH_MISMATCH);
nD('n_fragment_longer_than_message', 'fragment 0 of 2 holds more than len_message',
  datagram({ message: putOfSize(2000), from: 0, to: 1444, fragIndex: 0, numFrags: 2, lenMessage: 1443 }), E.LENGTH_MISMATCH);
nD('n_empty_fragment_of_2', 'fragment 1 of 2 with len_fragment 0',
  datagram({ op: 'put', fragment: bytes('fragment', []), fragIndex: 1, numFrags: 2, lenMessage: 2000 }), E.LENGTH_MISMATCH);
nD('n_encrypted_fragment_27_bytes', 'sealed fragment shorter than nonce + tag',
  datagram({ op: 'put', flags: 1, keyId: 1, fragment: bytes('fragment', pseudo('short', 27)), lenMessage: 0 }), E.LENGTH_MISMATCH);
nD('n_encrypted_fragment_0_bytes', 'sealed fragment of 0 bytes',
  datagram({ op: 'put', flags: 1, keyId: 1, fragment: bytes('fragment', []), lenMessage: 0 }), E.LENGTH_MISMATCH);
nD('n_encrypted_single_length_mismatch', 'sealed single fragment: len_fragment - 28 != len_message',
  datagram({ op: 'put', flags: 1, keyId: 1, sealed: { label: 'mm', plaintextLength: 40 }, lenMessage: 41 }), E.LENGTH_MISMATCH);
nD('n_encrypted_empty_fragment_of_2', 'sealed fragment 0 of 2 with no plaintext (len_fragment 28)',
  datagram({ op: 'put', flags: 1, keyId: 1, fragIndex: 0, numFrags: 2, sealed: { label: 'e2', plaintextLength: 0 }, lenMessage: 100 }), E.LENGTH_MISMATCH);
nD('n_encrypted_fragment_longer_than_message', 'sealed fragment 0 of 2 with more plaintext than len_message',
  datagram({ op: 'put', flags: 1, keyId: 1, fragIndex: 0, numFrags: 2, sealed: { label: 'e3', plaintextLength: 50 }, lenMessage: 49 }), E.LENGTH_MISMATCH);
nD('n_reserved_0x0001', 'reserved 0x0001', one(hb(), { reserved: 1 }), E.INVALID_FIELD);
nD('n_reserved_0x8000', 'reserved 0x8000', one(hb(), { reserved: 0x8000 }), E.INVALID_FIELD);
nD('n_trailing_after_fragment', 'one byte after a whole PUT fragment', one(M.put(), { trailing: [0] }), E.TRAILING_BYTES);
nD('n_trailing_padding_to_548', 'HBT zero-padded to 548 bytes', one(hb(), { trailing: new Uint8Array(548 - HEADER - size(hb())) }), E.TRAILING_BYTES);
nD('n_trailing_after_fragment_of_2', 'bytes after fragment 0 of 2',
  datagram({ message: putOfSize(2000), from: 0, to: 1444, fragIndex: 0, numFrags: 2, trailing: 'xx' }), E.TRAILING_BYTES);
nD('n_trailing_after_sealed_fragment', 'a byte after a sealed fragment',
  datagram({ op: 'put', flags: 1, keyId: 1, sealed: { label: 'tr', plaintextLength: 30 }, trailing: [0xff] }), E.TRAILING_BYTES);

// datagram/ n_: the message body of a whole plaintext datagram

const bad = (name, title, msg, code, o = {}) => nD(name, title, one(msg, o), code);
bad('n_message_empty', 'PUT with an empty body (len_message 0)', message('put', []), E.TRUNCATED);
bad('n_message_trailing_byte', 'a byte after the PUT body, counted in len_message',
  message('put', M.put().fields[0].fields, [0x00]), E.TRAILING_BYTES);
bad('n_heartbeat_trailing_bytes', 'two bytes after the HBT body', message('heartbeat', hb().fields[0].fields, [0xde, 0xad]), E.TRAILING_BYTES);
bad('n_leave_trailing_byte', 'BYE followed by a byte', message('leave', M.leave().fields[0].fields, [0x01]), E.TRAILING_BYTES);
bad('n_value_codec_5', 'value_codec 5 is unknown', patch(M.put(), 'body.value.value_codec', 5), E.INVALID_FIELD);
bad('n_value_codec_255', 'value_codec 255', patch(M.put(), 'body.value.value_codec', 255), E.INVALID_FIELD);
bad('n_metrics_reply_value_codec_9', 'report codec 9', patch(M.metrics_reply(), 'body.report.value_codec', 9), E.INVALID_FIELD);
bad('n_sync_entry_value_codec_5', 'entry value codec 5', patch(M.sync_entries(), 'body.entries.1.value.value_codec', 5), E.INVALID_FIELD);
bad('n_len_value_over_limit', 'len_value 255 x 65507 + 1', patch(M.put(), 'body.value.len_value', MAX_LEN + 1), E.OVER_LIMIT);
bad('n_entry_kind_0', 'sync entry kind 0', patch(M.sync_entries(), 'body.entries.0.kind', 0), E.INVALID_FIELD);
bad('n_entry_kind_3', 'sync entry kind 3', patch(M.sync_entries(), 'body.entries.1.kind', 3), E.INVALID_FIELD);
bad('n_batch_kind_0', 'batch write kind 0', patch(M.batch(), 'body.writes.0.kind', 0), E.INVALID_FIELD);
bad('n_batch_kind_3', 'batch write kind 3', patch(M.batch(), 'body.writes.2.kind', 3), E.INVALID_FIELD);
bad('n_batch_no_writes', 'BAT with num_writes 0', M.batch({ writes: [] }), E.INVALID_FIELD);
bad('n_batch_delete_with_value', 'a delete in a BAT carrying a utf8 value', M.batch({ writes: [{ kind: 'tombstone', key: 'k', hlc: HLC2, ttl: 0, codec: 'utf8', value: 'x' }] }), E.INVALID_FIELD);
bad('n_batch_delete_codec_bytes_empty', 'a delete in a BAT with codec bytes and 0 bytes', M.batch({ writes: [{ kind: 'tombstone', key: 'k', hlc: HLC2, ttl: 0, codec: 'bytes', value: [] }] }), E.INVALID_FIELD);
bad('n_batch_count_past_end', 'num_writes 4 with 3 writes', patch(M.batch(), 'body.num_writes', 4), E.TRUNCATED);
bad('n_leave_reason_0', 'leave reason 0', patch(M.leave(), 'body.reason', 0), E.INVALID_FIELD);
bad('n_leave_reason_3', 'leave reason 3', patch(M.leave(), 'body.reason', 3), E.INVALID_FIELD);
bad('n_nak_range_last_before_first', 'NAK range 10..9', M.nak({ ranges: [[5, 7], [10, 9]], partials: [] }), E.INVALID_FIELD);
bad('n_nak_partial_padding_bit_set', 'NAK partial of 12 fragments with padding bit 15 set (one encoding per NAK)', M.nak({ ranges: [], partials: [{ seq: 4, frags: 12, missing: '8001' }] }), E.INVALID_FIELD);
bad('n_nak_partial_num_frags_1', 'NAK partial of a 1-fragment message', M.nak({ ranges: [], partials: [{ seq: 4, frags: 1, missing: '80' }] }), E.INVALID_FIELD);
bad('n_nak_partial_num_frags_0', 'NAK partial with 0 fragments', M.nak({ ranges: [], partials: [{ seq: 4, frags: 0, missing: '' }] }), E.INVALID_FIELD);
bad('n_sync_digest_hashes_past_num_buckets', 'SYC buckets 62..65 of 64', M.sync_digest({ firstBucket: 62 }), E.OVER_LIMIT);
bad('n_sync_digest_first_bucket_past_num_buckets', 'SYC with first_bucket 65 of 64 and one hash',
  M.sync_digest({ firstBucket: 65, hashes: [1n] }), E.OVER_LIMIT);
// first_bucket + num_hashes is 65537: a port that adds in 16 bits wraps to 1 and accepts it.
bad('n_sync_digest_bucket_sum_past_u2', 'SYC with first_bucket 65535 and 2 hashes of 64 buckets',
  M.sync_digest({ firstBucket: 65535, hashes: [1n, 2n] }), E.OVER_LIMIT);
bad('n_sync_digest_num_buckets_0', 'SYC with 0 buckets', M.sync_digest({ numBuckets: 0, firstBucket: 0, hashes: [] }), E.INVALID_FIELD);
bad('n_sync_request_num_buckets_0', 'REQ with 0 buckets', M.sync_request({ numBuckets: 0 }), E.INVALID_FIELD);
bad('n_join_packet_mtu_547', 'NEW with packet_mtu 547', M.join({ packetMtu: 547 }), E.INVALID_FIELD, { msgSeq: 0 });
bad('n_join_packet_mtu_0', 'NEW with packet_mtu 0', M.join({ packetMtu: 0 }), E.INVALID_FIELD, { msgSeq: 0 });
bad('n_join_packet_mtu_65508', 'NEW with packet_mtu one over the largest UDP payload', M.join({ packetMtu: 65508 }), E.INVALID_FIELD, { msgSeq: 0 });
// Rules beyond the .ksy: names and keys are UTF-8.
bad('n_put_key_invalid_utf8', 'key byte 0xff', M.put({ key: hexBytes('75 73 65 72 3a ff') }), E.INVALID_FIELD);
bad('n_put_cache_invalid_utf8', 'cache name with a lone continuation byte', M.put({ cache: hexBytes('75 73 80 72 73') }), E.INVALID_FIELD);
bad('n_put_key_utf16_surrogate', 'key holds an encoded surrogate (ed a0 80)', M.put({ key: hexBytes('6b ed a0 80') }), E.INVALID_FIELD);
bad('n_put_key_overlong', 'key holds an overlong "/" (c0 af)', M.put({ key: hexBytes('c0 af') }), E.INVALID_FIELD);
bad('n_put_key_above_u10ffff', 'key holds f4 90 80 80 (above U+10FFFF)', M.put({ key: hexBytes('f4 90 80 80') }), E.INVALID_FIELD);
bad('n_delete_key_truncated_sequence', 'key ends inside a 3-byte sequence (e2 82)', M.delete({ key: hexBytes('70 72 69 63 65 e2 82') }), E.INVALID_FIELD);
bad('n_clear_cache_invalid_utf8', 'RST cache name 0xfe', M.clear({ cache: hexBytes('fe') }), E.INVALID_FIELD);
bad('n_sync_entries_key_invalid_utf8', 'second entry key c3 28 (a lead byte without its continuation)', M.sync_entries({ entries: [
  { key: 'user:1', hlc: HLC1, origin: SENDER_A, kind: 'value', ttl: 0, codec: 'utf8', value: 'ok' },
  { key: hexBytes('c3 28'), hlc: HLC2, origin: SENDER_B, kind: 'tombstone', ttl: 0, codec: 'none', value: [] },
] }), E.INVALID_FIELD);
bad('n_checksum_request_cache_invalid_utf8', 'INQ cache name 0xff', M.checksum_request({ cache: hexBytes('ff') }), E.INVALID_FIELD);
bad('n_join_host_invalid_utf8', 'NEW host name in Latin-1', M.join({ host: hexBytes('68 f4 74 65') }), E.INVALID_FIELD, { msgSeq: 0 });
bad('n_sync_digest_cache_invalid_utf8', 'SYC cache name 0x80', M.sync_digest({ cache: hexBytes('80') }), E.INVALID_FIELD);
bad('n_sync_request_cache_invalid_utf8', 'REQ cache name with a lone lead byte', M.sync_request({ cache: hexBytes('61 e3') }), E.INVALID_FIELD);
// Counts and lengths that run past the end of the message (len_message is consistent).
bad('n_put_len_name_past_end', 'len_name 200 in a 57-byte message', patch(M.put(), 'body.cache.len_name', 200), E.TRUNCATED);
bad('n_put_len_key_past_end', 'len_key 1000', patch(M.put(), 'body.key.len_key', 1000), E.TRUNCATED);
bad('n_put_len_value_past_end', 'len_value 36 for 35 value bytes', patch(M.put(), 'body.value.len_value', JSON_VALUE.length + 1), E.TRUNCATED);
bad('n_put_value_missing', 'PUT ends after ttl', message('put', M.put().fields[0].fields.slice(0, 4)), E.TRUNCATED);
bad('n_sync_entries_count_past_end', 'num_entries 3 with 2 entries', patch(M.sync_entries(), 'body.num_entries', 3), E.TRUNCATED);
bad('n_sync_entries_count_65535', 'num_entries 65535 with 2 entries', patch(M.sync_entries(), 'body.num_entries', 65535), E.TRUNCATED);
bad('n_ack_count_past_end', 'num_entries 4 with 3 entries', patch(M.ack(), 'body.num_entries', 4), E.TRUNCATED);
bad('n_nak_ranges_past_end', 'num_ranges 3 with 2 ranges', patch(M.nak(), 'body.num_ranges', 3), E.TRUNCATED);
bad('n_nak_partials_past_end', 'num_partials 2 with 1 partial', patch(M.nak(), 'body.num_partials', 2), E.TRUNCATED);
bad('n_nak_bitmap_short', 'partial of 10 fragments with a 1-byte bitmap', M.nak({ ranges: [], partials: [{ seq: 4, frags: 10, missing: 'ff' }] }), E.TRUNCATED);
bad('n_sync_digest_hashes_past_end', 'num_hashes 4 with 3 hashes', patch(M.sync_digest({ hashes: [1n, 2n, 3n] }), 'body.num_hashes', 4), E.TRUNCATED);
bad('n_sync_request_bucket_ids_past_end', 'num_bucket_ids 4 with 3 ids', patch(M.sync_request(), 'body.num_bucket_ids', 4), E.TRUNCATED);
bad('n_checksum_reply_short_checksum', 'a 31-byte checksum', M.checksum_reply({ checksum: new Uint8Array(31).fill(0xab) }), E.TRUNCATED);
bad('n_heartbeat_short', 'HBT missing low_seq', message('heartbeat', hb().fields[0].fields.slice(0, 2)), E.TRUNCATED);
bad('n_metrics_request_short', 'MET with a 7-byte target', message('metrics_request', [bytes('target', hexBytes('00 00 00 00 00 00 00'))]), E.TRUNCATED);
bad('n_leave_empty_body', 'BYE with no reason', message('leave', []), E.TRUNCATED);

// ---------------------------------------------------------------------------------------------
// message/: fragments of one message, one datagram per paragraph (conformance/README.md "Reassembly")

const yM = (name, title, dgs, msg) => vector('message', name, title, dgs, expectMessage(dgs, msg));
const nM = (name, title, dgs, code) => vector('message', name, title, dgs, code);

{
  const msg = M.put({ value: filler(200, 'two') });
  yM('y_put_2_fragments', 'PUT in 2 uneven fragments', fragmentsOf(msg, [100, size(msg) - 100]), msg);
}
{
  const msg = M.heartbeat();
  yM('y_heartbeat_1_fragment', 'an unsequenced message is its single datagram', fragmentsOf(msg, [size(msg)]), msg);
}
{
  const msg = M.sync_entries();
  const dgs = fragmentsOf(msg, [40, 40, size(msg) - 80]);
  yM('y_sync_entries_3_fragments_out_of_order', 'fragments arrive 2, 0, 1', [dgs[2], dgs[0], dgs[1]], msg);
}
{
  const msg = putOfSize(1040, { seed: 'mtu548' });
  yM('y_put_mtu_548_2_full_fragments', 'PUT of exactly 2 x 520 bytes: two 548-byte datagrams', fragmentsOf(msg, evenSizes(1040, 520)), msg);
}
{
  const msg = putOfSize(3 * 1444, { seed: 'mtu1472' });
  yM('y_put_mtu_1472_3_full_fragments', 'PUT of exactly 3 x 1444 bytes: three 1472-byte datagrams',
    fragmentsOf(msg, evenSizes(3 * 1444, 1444)), msg);
}
{
  const msg = putOfSize(254 * 3 - 2, { seed: 'f254' }); // 253 fragments of 3 bytes, the last of 1
  yM('y_put_254_fragments', '254 small fragments, the last shorter', fragmentsOf(msg, evenSizes(254 * 3 - 2, 3)), msg);
}
{
  const msg = putOfSize(255 * 2, { seed: 'f255' });
  yM('y_put_255_fragments', '255 fragments of 2 bytes (the most a message may have)', fragmentsOf(msg, evenSizes(255 * 2, 2)), msg);
}
{
  const msg = M.put({ key: 'ключ-😀-key' });
  // cache "users" (1 + 5 bytes), len_key (2), "ключ-" (9 bytes), then 2 of the emoji's 4 bytes
  const at = 6 + 2 + toBytes('ключ-').length + 2;
  yM('y_utf8_split_across_fragments', 'the key\'s emoji is split between two fragments (checked after reassembly)',
    fragmentsOf(msg, [at, size(msg) - at]), msg);
}
{
  const msg = M.checksum_reply();
  const dgs = fragmentsOf(msg, [30, size(msg) - 30]);
  patch(dgs[1], 'flags', 0x02);
  yM('y_retransmitted_fragment', 'fragment 1 is a retransmission (flags may differ between fragments)', dgs, msg);
}
{
  const entries = Array.from({ length: 12 }, (_, i) => ({
    key: `session:${1000 + i}`, hlc: hlc(T0 + BigInt(i), i), origin: i % 2 ? SENDER_A : SENDER_MAX,
    kind: i % 3 ? 'value' : 'tombstone', ttl: i * 1000, codec: i % 3 ? 'msgpack' : 'none', value: i % 3 ? MSGPACK_VALUE : [],
  }));
  const msg = M.sync_entries({ entries, replyTo: 0n });
  yM('y_sync_entries_2_fragments', 'SYE with 12 entries over 2 fragments', fragmentsOf(msg, [300, size(msg) - 300], { msgSeq: 77 }), msg);
}
{
  const msg = M.metrics_reply({ report: JSON.stringify({ users: { size: 1024, hits: 99871 }, note: fillerText(600, 'metrics') }) });
  yM('y_metrics_reply_2_fragments', 'MER with a long JSON report', fragmentsOf(msg, evenSizes(size(msg), 520)), msg);
}

{
  const msg = M.put({ value: filler(200, 'bad') });
  const frags = () => fragmentsOf(msg, [60, 60, size(msg) - 120]);
  nM('n_no_datagrams', 'a message vector with no datagram', [], E.TRUNCATED);
  nM('n_fragment_missing', 'fragment 1 of 3 missing', [frags()[0], frags()[2]], E.INVALID_FIELD);
  nM('n_fragment_duplicated', 'fragment 0 twice, fragment 2 missing', [frags()[0], frags()[1], frags()[0]], E.INVALID_FIELD);
  nM('n_fragment_extra_copy', 'all 3 fragments and a copy of fragment 1', [...frags(), frags()[1]], E.INVALID_FIELD);
  const with1 = (path, value) => { const d = frags(); patch(d[1], path, value); return d; };
  nM('n_sender_id_differs', 'fragment 1 from another sender', with1('sender_id', SENDER_B), E.INVALID_FIELD);
  nM('n_msg_seq_differs', 'fragment 1 of another message number', with1('msg_seq', 10), E.INVALID_FIELD);
  nM('n_op_code_differs', 'fragment 1 says DEL', with1('op_code', OP.delete), E.INVALID_FIELD);
  nM('n_num_frags_differs', 'fragment 1 says 4 fragments', with1('num_frags', 4), E.INVALID_FIELD);
  nM('n_len_message_differs', 'fragment 1 says a longer message', with1('len_message', size(msg) + 1), E.INVALID_FIELD);
  nM('n_single_and_multi_fragment', 'a whole 1-fragment PUT next to fragment 1 of 3',
    [fragmentsOf(msg, [size(msg)])[0], frags()[1]], E.INVALID_FIELD);
  const short = frags();
  for (const d of short) patch(d, 'len_message', size(msg) + 10);
  nM('n_fragments_shorter_than_len_message', 'fragments hold 10 bytes less than len_message', short, E.LENGTH_MISMATCH);
  const long = fragmentsOf(msg, [120, size(msg) - 120]);
  for (const d of long) patch(d, 'len_message', 150);
  nM('n_fragments_longer_than_len_message', 'fragments hold more than len_message (each alone fits)', long, E.LENGTH_MISMATCH);
  nM('n_encrypted_fragments', 'sealed fragments cannot be reassembled without the key', [0, 1].map((i) =>
    datagram({ op: 'put', flags: 1, keyId: 1, fragIndex: i, numFrags: 2, lenMessage: 100, msgSeq: 9, sealed: { label: `m${i}`, plaintextLength: 50 } })),
  E.INVALID_FIELD);
  const badVersion = frags();
  patch(badVersion[2], 'version', 2);
  nM('n_one_datagram_bad_version', 'fragment 2 has version 2 (each datagram is decoded first)', badVersion, E.UNSUPPORTED_VERSION);
  const mixed = frags();
  patch(mixed[0], 'sender_id', SENDER_B);
  patch(mixed[2], 'magic', 0x4d44);
  nM('n_datagram_error_before_reassembly', 'a bad datagram (magic "MD") wins over a reassembly mismatch (sender)', mixed, E.BAD_MAGIC);
}
{
  const msg = message('put', M.put().fields[0].fields, [0x00, 0x00]);
  nM('n_reassembled_trailing_bytes', 'two bytes after the PUT body', fragmentsOf(msg, [30, size(msg) - 30]), E.TRAILING_BYTES);
  const utf = M.put({ key: hexBytes('6b 65 79 ff') });
  nM('n_reassembled_invalid_utf8', 'the reassembled key is not UTF-8', fragmentsOf(utf, [10, size(utf) - 10]), E.INVALID_FIELD);
  const count = patch(M.sync_entries(), 'body.num_entries', 3);
  nM('n_reassembled_count_past_end', 'num_entries 3 with 2 entries', fragmentsOf(count, [50, size(count) - 50]), E.TRUNCATED);
  const kind = patch(M.sync_entries(), 'body.entries.1.kind', 7);
  nM('n_reassembled_bad_entry_kind', 'entry kind 7', fragmentsOf(kind, [50, size(kind) - 50]), E.INVALID_FIELD);
  const over = patch(M.put(), 'body.value.len_value', MAX_LEN + 1);
  nM('n_reassembled_len_value_over_limit', 'len_value 255 x 65507 + 1', fragmentsOf(over, [20, size(over) - 20]), E.OVER_LIMIT);
}

// ---------------------------------------------------------------------------------------------
// python_v0/: McCache-for-Python's header, recognised only

const yV = (name, title, node) => vector('python_v0', name, title, [node], canon(node));
const nV = (name, title, node, code) => vector('python_v0', name, title, [node], code);
yV('y_single_fragment', 'a whole INS: key pickle and value pickle', v0());
yV('y_middle_fragment', 'fragment 1 of 3 (a slice of the pickles)', v0({ fragIndex: 1, numFrags: 3, lenValue: 3000, payload: filler(40, 'pickle') }));
yV('y_fragment_254_of_255', 'the last of 255 fragments', v0({ fragIndex: 254, numFrags: 255, payload: filler(12) }));
yV('y_empty_payload', 'a header with no payload', v0({ payload: [] }));
yV('y_targeted_receiver', 'rcv 42 (last octet of the receiver\'s IPv4 address)', v0({ rcv: 42 }));
yV('y_reserved_ignored', 'reserved 0xff is ignored', v0({ reserved: 0xff }));
yV('y_tsm_max', 'tsm 2^64-1', v0({ tsm: SENDER_MAX }));
nV('n_empty', 'no bytes', { node: v0(), cut: 0 }, E.TRUNCATED);
nV('n_header_17_bytes', 'header one byte short', { node: v0(), cut: 17 }, E.TRUNCATED);
nV('n_header_10_bytes', 'cut inside tsm', { node: v0(), cut: 10 }, E.TRUNCATED);
nV('n_bad_magic_v1_datagram', 'a v1 datagram ("MC") fed to the v0 decoder', one(M.put()), E.BAD_MAGIC);
nV('n_bad_magic_0xf8', 'magic 0xf8 (pattern with version 0)', v0({ magic: 0xf8 }), E.BAD_MAGIC);
nV('n_bad_magic_0xfa', 'magic 0xfa (pattern with version 2)', v0({ magic: 0xfa }), E.BAD_MAGIC);
nV('n_num_frags_0', 'num_frags 0', v0({ numFrags: 0 }), E.INVALID_FIELD);
nV('n_frag_index_equals_num_frags', 'fragment 3 of 3', v0({ fragIndex: 3, numFrags: 3 }), E.INVALID_FIELD);
nV('n_frag_index_255', 'fragment 255 of 255', v0({ fragIndex: 255, numFrags: 255 }), E.INVALID_FIELD);

// ---------------------------------------------------------------------------------------------
// fragmentation.json: the sender's plan (conformance/README.md "Fragmentation plan")

function plan(mtu, lenMessage, encrypted) {
  if (!Number.isInteger(mtu) || mtu < 548 || mtu > 65507) return { error: 'MCCACHE_ERR_INVALID_OPTION' };
  const capacity = mtu - HEADER - (encrypted ? SEAL : 0);
  const numFrags = Math.max(1, Math.ceil(lenMessage / capacity));
  if (numFrags > 255) return { error: 'MCCACHE_ERR_MESSAGE_TOO_LARGE' };
  return { num_frags: numFrags, capacity, len_last_fragment: lenMessage - (numFrags - 1) * capacity };
}
const cases = [];
for (const mtu of [548, 1472, 65507]) {
  for (const encrypted of [false, true]) {
    const cap = mtu - HEADER - (encrypted ? SEAL : 0);
    const tag = `mtu-${mtu}${encrypted ? '-encrypted' : ''}`;
    for (const [what, len] of [
      ['empty', 0], ['1-byte', 1], ['1-fragment-full', cap], ['2-fragments-1-byte-over', cap + 1],
      ['2-fragments-full', 2 * cap], ['254-fragments-full', 254 * cap], ['255-fragments-1-byte-last', 254 * cap + 1],
      ['255-fragments-full', 255 * cap], ['1-byte-over-max', 255 * cap + 1],
    ]) cases.push({ name: `${tag}-${what}`, mtu, len_message: len, encrypted });
  }
}
cases.push({ name: 'mtu-1472-len-message-limit', mtu: 1472, len_message: MAX_LEN, encrypted: false });
cases.push({ name: 'mtu-65507-len-message-limit', mtu: 65507, len_message: MAX_LEN, encrypted: false });
cases.push({ name: 'mtu-9000-jumbo', mtu: 9000, len_message: 100000, encrypted: true });
for (const [mtu, len] of [[547, 0], [547, 100], [65508, 100], [0, 100], [65535, 1], [576, 16704286]]) {
  cases.push({ name: `mtu-${mtu}-len-${len}`, mtu, len_message: len, encrypted: false });
}
cases.push({ name: 'mtu-547-encrypted-too-large', mtu: 547, len_message: MAX_LEN + 1, encrypted: true });
const names = new Set(cases.map((c) => c.name));
if (names.size !== cases.length) throw new Error('fragmentation case names must be unique');
fs.writeFileSync(path.join(OUT, 'fragmentation.json'), JSON.stringify({
  rule: 'capacity = mtu - 28 - (encrypted ? 28 : 0); num_frags = max(1, ceil(len_message / capacity)); '
    + 'len_last_fragment = len_message - (num_frags - 1) * capacity; mtu outside 548..65507 -> MCCACHE_ERR_INVALID_OPTION '
    + '(checked first); num_frags > 255 -> MCCACHE_ERR_MESSAGE_TOO_LARGE',
  cases: cases.map((c) => ({ ...c, expected: plan(c.mtu, c.len_message, c.encrypted) })),
}, null, 2) + '\n');

console.log(`make-vectors: ${written.datagram} datagram, ${written.message} message, ${written.python_v0} python_v0 vectors, `
  + `${cases.length} fragmentation cases -> ${path.relative(process.cwd(), OUT) || '.'}`);
