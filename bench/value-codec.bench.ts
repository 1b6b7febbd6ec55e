/**
 * Structured value codecs: encode+decode round trips per second and encoded bytes, for the
 * values a cache holds. The runtime's encodeValue/decodeValue (runtime/cache/value-codec.ts:
 * @msgpack/msgpack plus the checks and limits around it) is measured beside JSON and the bare
 * library in the same run (STYLE.md rule 9: a baseline in the same run; never asserts, never
 * gates CI). The candidates the choice was made against are measured too when they can be
 * loaded; they are not dependencies of the project:
 *
 *   node -r ts-node/register bench/value-codec.bench.ts          (TS_NODE_TRANSPILE_ONLY=1 starts faster)
 *   mkdir -p /tmp/cb && npm --prefix /tmp/cb i msgpackr cbor-x cbor2 && \
 *     NODE_PATH=/tmp/cb/node_modules node -r ts-node/register bench/value-codec.bench.ts
 *
 * Each cell runs round trips in batches for BENCH_MS (default 400) ms. "lossy" marks a codec
 * whose decode differs from the input (JSON turns a Date into a string and a Map into {}).
 */
import { createRequire } from 'node:module';
import { isDeepStrictEqual } from 'node:util';
import { Decoder, Encoder } from '@msgpack/msgpack';
import { decodeValue, encodeValue } from '../runtime/cache/value-codec';

const BENCH_MS = Number(process.env['BENCH_MS'] ?? 400);

interface Codec {
  name: string;
  encode(v: unknown): Uint8Array;
  decode(b: Uint8Array): unknown;
}

const plainEncoder = new Encoder({ useBigInt64: true });
const plainDecoder = new Decoder({ useBigInt64: true });
const codecs: Codec[] = [
  {
    name: 'JSON',
    encode: (v) => Buffer.from(JSON.stringify(v)),
    decode: (b) => JSON.parse(Buffer.from(b.buffer, b.byteOffset, b.length).toString('utf8')),
  },
  {
    name: 'encodeValue',
    encode: (v) => encodeValue(v).bytes,
    decode: (b) => decodeValue('msgpack', b),
  },
  { name: '@msgpack/msgpack', encode: (v) => plainEncoder.encode(v), decode: (b) => plainDecoder.decode(b) },
];

// Optional candidates, from NODE_PATH or wherever Node finds them.
const load = createRequire(__filename);
function optional(name: string, make: (mod: Record<string, unknown>) => Codec): void {
  try {
    codecs.push(make(load(name) as Record<string, unknown>));
  } catch {
    console.log(`(${name} not found: skipped)`);
  }
}
type Ctor = new (o: object) => { encode?(v: unknown): Uint8Array; decode?(b: Uint8Array): unknown; pack?(v: unknown): Uint8Array; unpack?(b: Uint8Array): unknown };
optional('msgpackr', (m) => {
  const p = new (m['Packr'] as Ctor)({ useRecords: false, int64AsType: 'bigint', structuredClone: false });
  return { name: 'msgpackr', encode: (v) => p.pack!(v), decode: (b) => p.unpack!(b) };
});
optional('cbor-x', (m) => {
  const c = new (m['Encoder'] as Ctor)({ useRecords: false, int64AsType: 'bigint', mapsAsObjects: true });
  return { name: 'cbor-x', encode: (v) => c.encode!(v), decode: (b) => c.decode!(b) };
});
optional('cbor2', (m) => {
  const enc = m['encode'] as (v: unknown) => Uint8Array;
  const dec = m['decode'] as (b: Uint8Array) => unknown;
  return { name: 'cbor2', encode: enc, decode: dec };
});

const row = (i: number) => ({ id: i, sku: `SKU-${100000 + i}`, qty: i % 7, price: 19.99 + i, ok: i % 2 === 0 });
const cases: [string, unknown][] = [
  ['small object (6 fields)', { id: 12345, name: 'user-12345', email: 'user12345@example.com', active: true, score: 98.6, tags: ['admin', 'beta'] }],
  ['10 KB object (150 rows)', { rows: Array.from({ length: 150 }, (_, i) => row(i)) }],
  ['1000 numbers', Array.from({ length: 1000 }, (_, i) => (i % 3 ? i * 7 : i / 3))],
  ['100 short strings', Array.from({ length: 100 }, (_, i) => `value number ${i}`)],
  ['Date', new Date(1_700_000_000_123)],
  ['{bigint, bigint}', { a: 2n ** 62n + 7n, b: -(2n ** 40n) }],
  ['Map of 100 entries', new Map(Array.from({ length: 100 }, (_, i) => [`k${i}`, i]))],
];

function roundTripsPerSecond(c: Codec, v: unknown): number {
  let n = 0;
  const t0 = performance.now();
  let elapsed = 0;
  do {
    for (let i = 0; i < 20; i++) c.decode(c.encode(v));
    n += 20;
    elapsed = performance.now() - t0;
  } while (elapsed < BENCH_MS);
  return (n * 1000) / elapsed;
}

function rate(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)} M/s` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k/s` : `${x.toFixed(0)} /s`;
}

console.log(`value codecs: Node ${process.version}, V8 ${process.versions.v8}, ${process.arch}; encode+decode per second, encoded bytes`);
const width = 24;
console.log(['value'.padEnd(width), ...codecs.map((c) => c.name.padEnd(22))].join(' '));
for (const [label, value] of cases) {
  const cells = codecs.map((c) => {
    try {
      const bytes = c.encode(value);
      const same = isDeepStrictEqual(c.decode(bytes), value);
      return `${rate(roundTripsPerSecond(c, value))} ${bytes.length} B${same ? '' : ' lossy'}`.padEnd(22);
    } catch {
      return 'unsupported'.padEnd(22);
    }
  });
  console.log([label.padEnd(width), ...cells].join(' '));
}
