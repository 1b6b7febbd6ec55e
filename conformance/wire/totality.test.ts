/**
 * The decoder is total (msgpack-javascript's fuzz contract, STYLE.md "wire parsers"): any bytes
 * give a Packet or a MalformedPacketError with a documented code, nothing else escapes, and the
 * decoder still decodes a valid datagram afterwards. What it accepts is canonical: encoding the
 * decoded packet gives back the very same bytes.
 *
 * At least 100,000 datagrams per run (scaled by FC_NUM_RUNS): mutations of valid encoded packets
 * (bit flips, truncation, extension, insertion, byte and header-field overwrites) and random
 * bytes, some behind a valid magic and version so they reach the deeper rules.
 * WIRE_TOTALITY_STATS=1 prints how many inputs ended in each code (to see the mutations reach
 * every rule).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { MalformedPacketError } from '../../runtime/errors';
import { decodeMessage, decodePacket } from '../../runtime/codec/decode';
import { encodeMessage, encodePacket } from '../../runtime/codec/encode';
import type { Packet } from '../../runtime/codec/packet';
import { OPS, anyMessage, anyPacket, mutateBytes, params, runs, type ByteMutation } from './wire-arbitraries';

/** The codes a decoder may report (errors.ts `MalformedCode`). */
const DECODE_CODES = new Set([
  'MCCACHE_ERR_TRUNCATED', 'MCCACHE_ERR_BAD_MAGIC', 'MCCACHE_ERR_UNSUPPORTED_VERSION', 'MCCACHE_ERR_UNKNOWN_OP',
  'MCCACHE_ERR_LENGTH_MISMATCH', 'MCCACHE_ERR_TRAILING_BYTES', 'MCCACHE_ERR_OVER_LIMIT', 'MCCACHE_ERR_INVALID_FIELD',
  'MCCACHE_ERR_MALFORMED',
]);

/** Header fields as [offset, size] (spec/mccache_datagram.ksy), for targeted overwrites. */
const HEADER_FIELDS: [number, number][] = [[0, 2], [2, 1], [3, 1], [4, 1], [5, 1], [6, 1], [7, 1], [8, 8], [16, 4], [20, 4], [24, 2], [26, 2]];

type Mutation = ByteMutation | { kind: 'field'; field: number; value: bigint };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('extend' as const), tail: fc.uint8Array({ minLength: 1, maxLength: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), value: fc.nat(255) }) },
  { weight: 4, arbitrary: fc.record({
    kind: fc.constant('field' as const), field: fc.nat(HEADER_FIELDS.length - 1),
    // Boundary values first: 0, 1, all ones, and the limits the rules test.
    value: fc.oneof(fc.constantFrom(0n, 1n, 2n, 0x40n, 0x46n, 0x47n, 0xffn, 0x4d43n, 548n, 16704285n, 16704286n, 2n ** 64n - 1n),
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })),
  }) },
);

function mutate(input: Uint8Array, m: Mutation): Uint8Array {
  if (m.kind !== 'field') return mutateBytes(input, m);
  const [at, size] = HEADER_FIELDS[m.field]!;
  const out = input.slice();
  for (let i = 0; i < size && at + i < input.length; i++) out[at + i] = Number((m.value >> BigInt(8 * (size - 1 - i))) & 0xffn);
  return out;
}

const seen = new Map<string, number>();

/** Decodes `bytes`; checks the outcome is a canonical Packet or a documented MalformedPacketError. */
function decodeTotally(bytes: Uint8Array): Packet | undefined {
  let packet: Packet;
  try {
    packet = decodePacket(bytes);
  } catch (err) {
    if (!(err instanceof MalformedPacketError)) throw new Error(`decodePacket threw a non-MalformedPacketError: ${String(err)}`, { cause: err });
    if (!DECODE_CODES.has(err.code)) throw new Error(`undocumented code ${err.code}`, { cause: err });
    seen.set(err.code, (seen.get(err.code) ?? 0) + 1);
    return undefined;
  }
  seen.set('accepted', (seen.get('accepted') ?? 0) + 1);
  expect(OPS).to.include(packet.header.op);
  // Canonical: the decoder accepts only what the encoder writes.
  expect(Buffer.from(encodePacket(packet)).equals(bytes)).to.equal(true);
  // A NAK bitmap's padding bits (past num_frags) are not checked by the spec, so a NAK body is
  // not canonical (see the spec notes); every other body is.
  if (packet.message !== undefined && packet.message.op !== 'nak') {
    expect(Buffer.from(encodeMessage(packet.message)).equals(packet.fragment)).to.equal(true);
  }
  return packet;
}

const MUTANTS_PER_PACKET = 10;

describe('decoder totality', function () {
  // Property runs scale with FC_NUM_RUNS; mocha's default 2 s limit would fail a slow machine, not the code.
  this.timeout(600_000);
  after(() => {
    if (process.env.WIRE_TOTALITY_STATS) console.log('      outcomes:', Object.fromEntries([...seen].sort()));
  });

  it(`gives a Packet or a documented MalformedPacketError for each of ${runs(8000) * MUTANTS_PER_PACKET} mutated datagrams, and still decodes the original`, () => {
    let fed = 0;
    fc.assert(fc.property(anyPacket(), fc.array(fc.array(mutation, { minLength: 1, maxLength: 3 }), { minLength: MUTANTS_PER_PACKET, maxLength: MUTANTS_PER_PACKET }),
      (packet, mutationLists) => {
        const valid = encodePacket(packet);
        for (const list of mutationLists) {
          decodeTotally(list.reduce(mutate, valid));
          fed++;
        }
        expect(decodePacket(valid)).to.deep.equal(packet);
      }), params(8000));
    expect(fed).to.be.at.least(runs(8000) * MUTANTS_PER_PACKET);
  });

  it(`gives a Packet or a documented MalformedPacketError for each of ${runs(20000)} random datagrams`, () => {
    const magicVersion = new Uint8Array([0x4d, 0x43, 0x01]);
    const datagram = fc.oneof(
      fc.uint8Array({ maxLength: 80 }),
      fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.concat([magicVersion, b])),
      // A plausible header: known op, no flags, one fragment, then random lengths and body.
      fc.tuple(fc.constantFrom(0x01, 0x02, 0x03, 0x40, 0x42, 0x43, 0x44, 0x45), fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.uint8Array({ maxLength: 60 }))
        .map(([op, rest, body]) => {
          const b = Buffer.concat([magicVersion, Uint8Array.of(op, 0, 0, 0, 1), rest, body]);
          b.writeUInt32BE(body.length, 20);
          if (rest[0]! & 1) b.writeUInt16BE(body.length, 24);
          b.writeUInt16BE(0, 26);
          return b;
        }),
    );
    let fed = 0;
    fc.assert(fc.property(datagram, (bytes) => {
      decodeTotally(bytes);
      fed++;
    }), params(20000));
    expect(fed).to.be.at.least(runs(20000));
  });

  it('gives a Message or a documented MalformedPacketError for mutated and random message bodies of every op', () => {
    const input = fc.oneof(
      // A valid body, mutated, read as its own op or (a third of the time) as another op.
      fc.tuple(anyMessage(), fc.array(mutation.filter((m) => m.kind !== 'field'), { minLength: 1, maxLength: 3 }), fc.nat())
        .map(([message, mutations, pick]) => ({
          op: pick % 3 === 0 ? OPS[pick % OPS.length]! : message.op,
          body: mutations.reduce(mutate, encodeMessage(message)),
        })),
      fc.record({ op: fc.constantFrom(...OPS), body: fc.uint8Array({ maxLength: 80 }) }),
    );
    const valid = encodeMessage({ op: 'heartbeat', heartbeatInterval: 1000, numMembers: 2, lowSeq: 1 });
    fc.assert(fc.property(input, ({ op, body }) => {
      try {
        const m = decodeMessage(op, body);
        expect(m.op).to.equal(op);
      } catch (err) {
        expect(err).to.be.instanceOf(MalformedPacketError);
        expect(DECODE_CODES).to.include((err as MalformedPacketError).code);
      }
      expect(decodeMessage('heartbeat', valid)).to.deep.equal({ op: 'heartbeat', heartbeatInterval: 1000, numMembers: 2, lowSeq: 1 });
    }), params(5000));
  });
});
