/**
 * Datagram sealing: AES-256-GCM over every datagram's fragment, header authenticated
 * (DESIGN.md §6, spec/mccache_datagram.ksy `sealed_fragment`, spec/README.md "Encryption").
 *
 * Theory of operation
 * -------------------
 * A `Sealer` holds a keyring (key ids 1..255, each a 32-byte AES-256 key) and seals with its
 * current key. A sealed fragment is `nonce(12) || ciphertext || tag(16)`; the associated data is
 * the datagram's 28-byte header with the retransmission bit (0x02 of `flags`) cleared, so that
 * a retransmission, which is the stored sealed datagram with only that bit set, still opens.
 * Every other header bit is authenticated: op, sender, sequence, fragment index and lengths
 * cannot be changed, and a datagram cannot be moved to another sender or message.
 *
 * Nonces. GCM must never see the same (key, nonce) twice. The nonce is the sealer's 8-byte
 * random id (drawn when the sealer is built, at process start and at each identity renewal,
 * independent of the node id, which tests and configurations may fix) followed by a 4-byte
 * count of datagrams this sealer has sealed. A count never repeats within a sealer; past
 * 2^32 - 1 datagrams the sealer refuses (MCCACHE_ERR_NONCE_EXHAUSTED) rather than wrap. A
 * long-lived node never gets there: well before, its reliable core renews its sending identity
 * (reliable-core.ts, "Identity renewal"): a new node id, and `renewed()`, a sealer with the same
 * keys, a new random id and a count from 0. Two sealers share a nonce only if their random ids
 * collide: about n^2 / 2^65 for n sealers (process starts and renewals) under one key.
 *
 * The count also serves replay detection: a `ReplayWindow` per sender remembers the highest
 * count seen and which of the `REPLAY_WINDOW` counts below it were seen (a sliding bitmap, as
 * IPsec ESP and DTLS do).
 *
 * `open` never throws for a peer's bytes: it returns a reason ('unknown_key_id',
 * 'auth_failed', 'truncated') that the core counts.
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { ErrorCode, McCacheError } from '../errors';
import { FLAG_ENCRYPTED, FLAG_RETRANSMISSION, HEADER_SIZE, SEAL_OVERHEAD } from './packet';

export const KEY_SIZE = 32;
export const NONCE_SIZE = 12;
export const TAG_SIZE = 16;
/** Datagrams one sealer may seal: the 4-byte count runs 1..2^32-1. */
export const MAX_SEALED = 0xffffffff;
/** Counts below a sender's highest that are still told apart (seen or not). */
export const REPLAY_WINDOW = 1024;

const ALGORITHM = 'aes-256-gcm';
const FLAGS_OFFSET = 4;
const KEY_ID_OFFSET = 5;
const LEN_FRAGMENT_OFFSET = 24;

/** Why a sealed datagram was not opened (the core's drop counters use these names). */
export type OpenFailure =
  /** The header names a key id this node does not hold. */
  | 'unknown_key_id'
  /** The tag does not match: forged, tampered (header or fragment), or sealed with another key. */
  | 'auth_failed'
  /** Shorter than a header, or a fragment shorter than nonce and tag. */
  | 'truncated';

export type OpenResult =
  | { ok: true; plaintext: Uint8Array; keyId: number; counter: number }
  | { ok: false; reason: OpenFailure };

export interface SealerKey {
  /** 1..255, carried in the header's `key_id`. */
  id: number;
  /** 32 bytes. The sealer keeps its own copy (a KeyObject), not a reference. */
  key: Uint8Array;
}

export interface SealerOptions {
  /** The key id to seal with. @default the first key given */
  currentKeyId?: number;
  /**
   * The 8-byte nonce prefix. For tests that need reproducible bytes only: two sealers with the
   * same prefix and key repeat nonces, which breaks GCM. @default 8 random bytes
   */
  nonceId?: Uint8Array;
  /** Datagrams already sealed under this nonce id, for tests of exhaustion. @default 0 */
  startCount?: number;
}

/**
 * Seals with the current key, opens with any key of its keyring. One per sending identity (per
 * core, replaced by `renewed()` when the core renews its identity): the nonce count is this
 * object's state.
 */
export class Sealer {
  /** The key id new datagrams are sealed with. */
  readonly keyId: number;
  readonly #keys = new Map<number, KeyObject>();
  readonly #current: KeyObject;
  readonly #nonce = new Uint8Array(NONCE_SIZE);
  readonly #nonceView = new DataView(this.#nonce.buffer);
  readonly #aad = new Uint8Array(HEADER_SIZE);
  #count = 0;

  constructor(keys: SealerKey | readonly SealerKey[], options: SealerOptions = {}) {
    const list = Array.isArray(keys) ? keys as readonly SealerKey[] : [keys as SealerKey];
    if (list.length === 0) throw invalid('keys', 'at least one key is needed');
    for (const k of list) {
      if (k === null || typeof k !== 'object') throw invalid('keys', 'each key must be { id, key }');
      if (!Number.isInteger(k.id) || k.id < 1 || k.id > 255) throw invalid('keys', `key id must be an integer in 1..255, got ${String(k.id)}`);
      if (!(k.key instanceof Uint8Array) || k.key.length !== KEY_SIZE) throw invalid('keys', `key ${k.id} must be ${KEY_SIZE} bytes`);
      if (this.#keys.has(k.id)) throw invalid('keys', `key id ${k.id} is given twice`);
      this.#keys.set(k.id, createSecretKey(Buffer.from(k.key)));
    }
    const current = options.currentKeyId ?? list[0]!.id;
    const key = this.#keys.get(current);
    if (key === undefined) throw invalid('currentKeyId', `no key with id ${String(current)}`);
    this.keyId = current;
    this.#current = key;
    const id = options.nonceId ?? randomBytes(8);
    if (!(id instanceof Uint8Array) || id.length !== 8) throw invalid('nonceId', 'must be 8 bytes');
    this.#nonce.set(id, 0);
    const start = options.startCount ?? 0;
    if (!Number.isInteger(start) || start < 0 || start > MAX_SEALED) throw invalid('startCount', `must be an integer in 0..${MAX_SEALED}`);
    this.#count = start;
  }

  /** Key ids this sealer can open. */
  get keyIds(): number[] {
    return [...this.#keys.keys()];
  }

  /** The 8-byte random prefix of this sealer's nonces. */
  get nonceId(): Uint8Array {
    return this.#nonce.slice(0, 8);
  }

  /** Datagrams sealed so far. */
  get sealed(): number {
    return this.#count;
  }

  /** Datagrams this sealer can still seal. */
  get remaining(): number {
    return MAX_SEALED - this.#count;
  }

  /**
   * A new sealer for a renewed sending identity (reliable-core.ts, "Identity renewal"): the same
   * keyring and current key, a new nonce id (random unless given, as in the constructor), and a
   * count from 0. This sealer is left as it is.
   */
  renewed(options: Pick<SealerOptions, 'nonceId'> = {}): Sealer {
    const keys = [...this.#keys].map(([id, k]) => ({ id, key: new Uint8Array(k.export()) }));
    return new Sealer(keys, { currentKeyId: this.keyId, ...(options.nonceId !== undefined && { nonceId: options.nonceId }) });
  }

  /**
   * Seals `plaintext` for a datagram with this 28-byte `header`, which must already say
   * encrypted, this sealer's key id, and `len_fragment` = plaintext + 28. Returns
   * `nonce || ciphertext || tag`.
   */
  seal(header: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const out = new Uint8Array(plaintext.length + SEAL_OVERHEAD);
    this.sealInto(out, 0, header, plaintext);
    return out;
  }

  /** As `seal`, writing the sealed fragment into `out` at `at` (it may follow `header` there). */
  sealInto(out: Uint8Array, at: number, header: Uint8Array, plaintext: Uint8Array): void {
    if (!(header instanceof Uint8Array) || header.length !== HEADER_SIZE) throw invalidArg('header', `must be the ${HEADER_SIZE}-byte datagram header`);
    if (!(plaintext instanceof Uint8Array)) throw invalidArg('plaintext', 'must be a Uint8Array');
    if ((header[FLAGS_OFFSET]! & FLAG_ENCRYPTED) === 0) throw invalidArg('header', 'the encrypted flag must be set');
    if (header[KEY_ID_OFFSET] !== this.keyId) throw invalidArg('header', `key_id must be the current key id ${this.keyId}`);
    const lenFragment = (header[LEN_FRAGMENT_OFFSET]! << 8) | header[LEN_FRAGMENT_OFFSET + 1]!;
    if (lenFragment !== plaintext.length + SEAL_OVERHEAD) throw invalidArg('header', 'len_fragment must be the plaintext length + 28');
    if (at < 0 || at + lenFragment > out.length) throw invalidArg('out', 'too short for the sealed fragment');
    this.#reserve(1);
    this.#nonceView.setUint32(8, ++this.#count);
    const cipher = createCipheriv(ALGORITHM, this.#current, this.#nonce, { authTagLength: TAG_SIZE });
    cipher.setAAD(this.#associatedData(header));
    const ciphertext = cipher.update(plaintext);
    cipher.final(); // GCM is a stream mode: nothing is held back
    out.set(this.#nonce, at);
    out.set(ciphertext, at + NONCE_SIZE);
    out.set(cipher.getAuthTag(), at + NONCE_SIZE + plaintext.length);
  }

  /**
   * Throws MCCACHE_ERR_NONCE_EXHAUSTED unless `n` more datagrams can be sealed (checked before a
   * message's first fragment, so a message is sealed whole or not at all).
   */
  reserve(n: number): void {
    this.#reserve(n);
  }

  /**
   * Opens a sealed fragment (`nonce || ciphertext || tag`) of a datagram with this `header`
   * (as received: the retransmission bit may be set). Never throws.
   */
  open(header: Uint8Array, sealed: Uint8Array): OpenResult {
    if (header.length !== HEADER_SIZE || sealed.length < SEAL_OVERHEAD) return TRUNCATED;
    const key = this.#keys.get(header[KEY_ID_OFFSET]!);
    if (key === undefined) return UNKNOWN_KEY_ID;
    const ctEnd = sealed.length - TAG_SIZE;
    try {
      const decipher = createDecipheriv(ALGORITHM, key, sealed.subarray(0, NONCE_SIZE), { authTagLength: TAG_SIZE });
      decipher.setAAD(this.#associatedData(header));
      decipher.setAuthTag(sealed.subarray(ctEnd));
      const plaintext = decipher.update(sealed.subarray(NONCE_SIZE, ctEnd));
      decipher.final(); // throws when the tag does not match
      const counter = ((sealed[8]! << 24) | (sealed[9]! << 16) | (sealed[10]! << 8) | sealed[11]!) >>> 0;
      return { ok: true, plaintext, keyId: header[KEY_ID_OFFSET]!, counter };
    } catch {
      return AUTH_FAILED;
    }
  }

  /** The header as authenticated: a copy with the retransmission bit cleared. */
  #associatedData(header: Uint8Array): Uint8Array {
    const aad = this.#aad;
    aad.set(header);
    aad[FLAGS_OFFSET] = aad[FLAGS_OFFSET]! & ~FLAG_RETRANSMISSION;
    return aad;
  }

  #reserve(n: number): void {
    if (n > MAX_SEALED - this.#count) {
      throw new McCacheError(ErrorCode.NONCE_EXHAUSTED,
        `this sealer has sealed ${this.#count} datagrams, the most one nonce id allows; seal with renewed() (a new nonce id)`);
    }
  }
}

const TRUNCATED: OpenResult = Object.freeze({ ok: false, reason: 'truncated' });
const UNKNOWN_KEY_ID: OpenResult = Object.freeze({ ok: false, reason: 'unknown_key_id' });
const AUTH_FAILED: OpenResult = Object.freeze({ ok: false, reason: 'auth_failed' });

/**
 * Which nonce counts of one sender were seen: the highest, and a bitmap of the REPLAY_WINDOW
 * counts up to it (bit `c % REPLAY_WINDOW` stands for count `c`). 128 bytes per sender.
 *
 * Sequenced datagrams are only recorded (a retransmission legitimately repeats a count; the
 * receive window drops duplicate messages). Unsequenced ones must be new: `accept` refuses a
 * count already seen, or one REPLAY_WINDOW or more below the highest (too old to tell).
 */
export class ReplayWindow {
  #highest = 0;
  readonly #seen = new Uint32Array(REPLAY_WINDOW / 32);

  get highest(): number {
    return this.#highest;
  }

  /** Is `counter` too far below the highest to be told apart from a replay? */
  isStale(counter: number): boolean {
    return counter + REPLAY_WINDOW <= this.#highest;
  }

  /** Has `counter` been recorded (within the window)? */
  seen(counter: number): boolean {
    if (counter > this.#highest || this.isStale(counter)) return false;
    const bit = counter % REPLAY_WINDOW;
    return (this.#seen[bit >>> 5]! & (1 << (bit & 31))) !== 0;
  }

  /** For an unsequenced datagram: true (and recorded) when `counter` is new and not stale. */
  accept(counter: number): boolean {
    if (this.isStale(counter) || this.seen(counter)) return false;
    this.record(counter);
    return true;
  }

  /** Notes `counter` as seen; moves the window forward when it is the highest so far. */
  record(counter: number): void {
    if (counter > this.#highest) {
      const advance = counter - this.#highest;
      if (advance >= REPLAY_WINDOW) {
        this.#seen.fill(0);
      } else {
        for (let c = this.#highest + 1; c <= counter; c++) {
          const bit = c % REPLAY_WINDOW;
          this.#seen[bit >>> 5] = this.#seen[bit >>> 5]! & ~(1 << (bit & 31));
        }
      }
      this.#highest = counter;
    } else if (this.isStale(counter)) {
      return;
    }
    const bit = counter % REPLAY_WINDOW;
    this.#seen[bit >>> 5] = this.#seen[bit >>> 5]! | (1 << (bit & 31));
  }
}

function invalid(name: string, rule: string): McCacheError {
  return new McCacheError(ErrorCode.INVALID_OPTION, `${name}: ${rule}`);
}
function invalidArg(name: string, rule: string): McCacheError {
  return new McCacheError(ErrorCode.INVALID_ARGUMENT, `${name}: ${rule}`);
}
