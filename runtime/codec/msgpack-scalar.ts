/**
 * MessagePack scalars (null, booleans, numbers) written directly, without the MessagePack
 * library: the cache's value codec (runtime/cache/value-codec.ts) and the wire encoder
 * (encode.ts, which writes a scalar value straight into the message it builds) share it.
 */

/**
 * null, a boolean or a number: a value whose MessagePack encoding is one small token, written
 * and read here directly. The library's encode makes a buffer, a copy and a wrapper per call,
 * and its decode a few hundred bytes of garbage per value (sampled in a receiving process: about
 * a third of everything it allocated per replicated number; and garbage is what makes the
 * collector pause). The tokens are exactly the library's (checked against it by
 * conformance/cache/value-codec.test.ts): the smallest integer format for a safe integer below
 * 2^32 in magnitude (so -0 is 0), float 64 for every other number (useBigInt64 leaves 64-bit
 * integer formats to bigints).
 */
export type Scalar = null | boolean | number;

export function isScalar(v: unknown): v is Scalar {
  return v === null || typeof v === 'number' || typeof v === 'boolean';
}

/** Length of the MessagePack encoding of `v` (encodeValue(v).bytes.length), computed. */
export function scalarLength(v: Scalar): number {
  if (typeof v !== 'number') return 1;
  if (!Number.isSafeInteger(v)) return 9;
  if (v >= 0) return v < 0x80 ? 1 : v < 0x100 ? 2 : v < 0x1_0000 ? 3 : v < 0x1_0000_0000 ? 5 : 9;
  return v >= -0x20 ? 1 : v >= -0x80 ? 2 : v >= -0x8000 ? 3 : v >= -0x8000_0000 ? 5 : 9;
}

const f64 = new DataView(new ArrayBuffer(8));

/** Writes the MessagePack encoding of `v` into `out` at `at` (room for scalarLength(v) bytes). */
export function writeScalar(v: Scalar, out: Uint8Array, at: number): void {
  if (v === null) {
    out[at] = 0xc0;
    return;
  }
  if (typeof v === 'boolean') {
    out[at] = v ? 0xc3 : 0xc2;
    return;
  }
  const n = scalarLength(v);
  if (n === 9) {
    out[at] = 0xcb;
    f64.setFloat64(0, v);
    for (let i = 0; i < 8; i++) out[at + 1 + i] = f64.getUint8(i);
    return;
  }
  if (n === 1) {
    out[at] = v & 0xff; // positive fixint as is; negative fixint 0xe0..0xff is its two's complement
    return;
  }
  // uint 8/16/32 (0xcc-0xce) or int 8/16/32 (0xd0-0xd2), big-endian
  const width = n - 1;
  out[at] = (v >= 0 ? 0xcc : 0xd0) + (width === 1 ? 0 : width === 2 ? 1 : 2);
  for (let i = width; i >= 1; i--) {
    out[at + i] = v & 0xff;
    v = Math.floor(v / 256); // not >>: uint 32 exceeds the int32 range
  }
}
