/**
 * Opening sealed datagrams for `mccache decode --key` (spec/README.md "Encryption",
 * runtime/codec/crypto.ts).
 *
 * The key is the one the nodes were given: `--key`, else MCCACHE_CRYPTO_KEY, in the format of
 * the cryptoKey setting (the base64 of 32 bytes). Nodes seal with it as key id 1
 * (runtime/transport/udp-driver.ts), so a datagram naming another key id is reported as
 * MCCACHE_ERR_UNKNOWN_KEY_ID rather than tried.
 *
 * AES-256-GCM is a counter mode: plaintext byte i lies where ciphertext byte i lies, 40 bytes
 * into the datagram (28 of header, 12 of nonce). `unseal` returns the datagram with its
 * ciphertext replaced by the plaintext (`view`), so the decoder's tree keeps the byte offsets of
 * the datagram on the wire while showing decrypted bytes.
 *
 * Nothing here throws for a peer's bytes: a datagram that does not open is a result with its
 * code (MCCACHE_ERR_AUTH_FAILED, MCCACHE_ERR_UNKNOWN_KEY_ID, or the decoder's code for a
 * decrypted body the spec rejects).
 */
import { Sealer, NONCE_SIZE } from '../codec/crypto';
import { decodeMessage, decodePacket } from '../codec/decode';
import { FLAG_ENCRYPTED, HEADER_SIZE, type Packet } from '../codec/packet';
import { cryptoKeyFrom } from '../config/settings';
import { ErrorCode, McCacheError, MalformedPacketError } from '../errors';

/** The key id MCCACHE_CRYPTO_KEY seals with (spec/README.md "Key ids and rotation"). */
export const DECODER_KEY_ID = 1;
/** Where the ciphertext, hence the plaintext in `view`, starts in a sealed datagram. */
export const PLAINTEXT_OFFSET = HEADER_SIZE + NONCE_SIZE;

export type UnsealResult =
  | {
    ok: true;
    keyId: number;
    /** The sender's count of datagrams sealed (the nonce's last 4 bytes). */
    nonceCount: number;
    plaintext: Uint8Array;
    /** The datagram with its plaintext in place of its ciphertext (same length and offsets). */
    view: Uint8Array;
    /** The packet as if it had been sent in the clear: plaintext fragment, message when whole. */
    packet: Packet;
  }
  | {
    ok: false;
    code: string;
    offset: number | undefined;
    field: string | undefined;
    message: string;
    /** Set when the datagram opened but its message is malformed: the decrypted datagram. */
    view?: Uint8Array;
  };

/**
 * The decoder's opener for `key` (32 bytes). It only opens, never seals; its nonce state is
 * unused.
 */
export function decoderSealer(key: Uint8Array): Sealer {
  return new Sealer({ id: DECODER_KEY_ID, key });
}

/**
 * The key of `mccache decode`: `flag` (the --key value) when given, else MCCACHE_CRYPTO_KEY of
 * `env` unless blank (blank means no key, as for the nodes); undefined without either. Throws
 * InvalidSettingError (MCCACHE_ERR_INVALID_OPTION) naming --key or MCCACHE_CRYPTO_KEY.
 */
export function decoderKey(flag: string | undefined, env: Readonly<Record<string, string | undefined>>): Sealer | undefined {
  if (flag !== undefined) return decoderSealer(cryptoKeyFrom(flag, '--key'));
  const fromEnv = env['MCCACHE_CRYPTO_KEY'];
  if (fromEnv === undefined || fromEnv.trim() === '') return undefined;
  return decoderSealer(cryptoKeyFrom(fromEnv, 'environment variable MCCACHE_CRYPTO_KEY'));
}

/** Opens the sealed fragment of `packet`, which `decodePacket(bytes)` returned. Never throws. */
export function unseal(bytes: Uint8Array, packet: Packet, sealer: Sealer): UnsealResult {
  const h = packet.header;
  const opened = sealer.open(bytes.subarray(0, HEADER_SIZE), packet.fragment);
  if (!opened.ok) {
    const [code, message] = opened.reason === 'unknown_key_id'
      ? [ErrorCode.UNKNOWN_KEY_ID, `sealed with key id ${h.keyId}; the key given is key id ${DECODER_KEY_ID}`]
      : opened.reason === 'auth_failed'
        ? [ErrorCode.AUTH_FAILED, 'authentication failed: forged, tampered, or sealed with another key']
        : [ErrorCode.TRUNCATED, 'the sealed fragment is shorter than its nonce and tag'];
    return { ok: false, code, offset: HEADER_SIZE, field: 'mccache_datagram.fragment', message };
  }
  const view = Uint8Array.from(bytes);
  view.set(opened.plaintext, PLAINTEXT_OFFSET);
  const plaintext = view.subarray(PLAINTEXT_OFFSET, PLAINTEXT_OFFSET + opened.plaintext.length);
  const out: Packet = { header: h, fragment: plaintext };
  if (h.numFrags === 1) {
    try {
      out.message = decodeMessage(h.op, plaintext);
    } catch (err) {
      const e = err instanceof MalformedPacketError ? err : undefined;
      return {
        ok: false, code: e?.code ?? ErrorCode.MALFORMED, field: e?.field,
        offset: e?.offset === undefined ? undefined : e.offset + PLAINTEXT_OFFSET,
        message: `decrypted, but the message is malformed: ${String((err as Error).message)}`, view,
      };
    }
  }
  return { ok: true, keyId: opened.keyId, nonceCount: opened.counter, plaintext, view, packet: out };
}

/**
 * `decoderKey` for the commands: on a bad key, prints why (a JSON error record with `json`) and
 * returns undefined; the command then exits 2.
 */
export function decodeKeyOption(flag: string | undefined, env: Readonly<Record<string, string | undefined>>, json: boolean,
  out: (s: string) => void): { sealer: Sealer | undefined } | undefined {
  try {
    return { sealer: decoderKey(flag, env) };
  } catch (err) {
    if (!(err instanceof McCacheError)) throw err;
    out(json ? JSON.stringify({ type: 'error', code: err.code, message: err.message }) : `mccache decode: ${err.message}`);
    return undefined;
  }
}

/**
 * What the per-sender summary (runtime/cli/summary.ts) counts for one datagram: its packet,
 * decrypted when `sealer` opens it, and whether it opened; undefined when it is malformed,
 * in the clear or inside its seal (the tree or the record shows why).
 */
export function summaryPacket(bytes: Uint8Array, sealer: Sealer | undefined): { packet: Packet; opened?: boolean } | undefined {
  let packet: Packet;
  try {
    packet = decodePacket(bytes);
  } catch {
    return undefined;
  }
  if (sealer === undefined || (packet.header.flags & FLAG_ENCRYPTED) === 0) return { packet };
  const u = unseal(bytes, packet, sealer);
  if (u.ok) return { packet: u.packet, opened: true };
  // Opened but malformed inside: not summarized, as a malformed datagram in the clear is not.
  return u.view === undefined ? { packet, opened: false } : undefined;
}
