/**
 * The one place that touches the Kaitai runtime and the generated parsers' modules
 * (STYLE.md rule 1: only runtime/codec imports generated/).
 */
import KaitaiStream from 'kaitai-struct/KaitaiStream';

/**
 * The stock runtime reads u8 as a double, exact only to 2^53 (research/kaitai-feasibility.md
 * §8): a node id or an HLC timestamp would be silently rounded. The generated code only calls
 * `this._io.readU8be()`, so a stream subclass returning bigint fixes every u8 field that is
 * parsed from the top-level stream. (Sized substreams are built by the generated code with the
 * base class; the spec keeps u8 fields out of sized types, and the round-trip properties check it.)
 */
export class BigIntKaitaiStream extends KaitaiStream {
  override readU8be(): number {
    this.ensureBytesLeft(8);
    const v = this.dataView.getBigUint64(this.pos);
    this.pos += 8;
    return v as unknown as number;
  }

  override readU8le(): number {
    this.ensureBytesLeft(8);
    const v = this.dataView.getBigUint64(this.pos, true);
    this.pos += 8;
    return v as unknown as number;
  }
}

/** A stream over exactly `bytes` (not over the whole pooled ArrayBuffer behind a Buffer). */
export function streamOf(bytes: Uint8Array): KaitaiStream {
  return new BigIntKaitaiStream(new DataView(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength));
}

export { KaitaiStream };
