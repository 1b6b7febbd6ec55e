/**
 * Fragmentation: one encoded message -> 1..255 datagrams of at most `packetMtu` bytes each
 * (DESIGN.md §3, spec/mccache_datagram.ksy).
 *
 * Every fragment but the last carries `capacity` bytes, the last carries the rest, and no
 * fragment is empty (the spec's `len_fragment` rule), except the only fragment of an empty
 * message. So a message of `k x capacity` bytes is `k` full fragments, and the largest message at
 * an MTU is `255 x capacity`. Receivers do not rely on the equal sizes (the reassembler
 * concatenates by index), but the sender keeps them so a capture is easy to read.
 */
import { ErrorCode, McCacheError, MessageTooLargeError } from '../errors';
import type { Sealer } from './crypto';
import { checkHeader, writeHeader } from './encode';
import {
  FLAG_ENCRYPTED, HEADER_SIZE, MAX_FRAGMENTS, MAX_MTU, MIN_MTU, OP_CODES, SEAL_OVERHEAD,
  type OpName, type PacketHeader,
} from './packet';

export interface FragmentPlan {
  /** Datagrams the message needs, 1..255. */
  numFrags: number;
  /** Message bytes per full fragment: `mtu - 28` (header), minus 28 more when sealed. */
  capacity: number;
  /** Message bytes in the last fragment, 1..capacity (0 only for an empty message). */
  lastSize: number;
}

export interface PlanOptions {
  /** Fragments will be sealed with AES-256-GCM, which adds 28 bytes (nonce and tag) to each. */
  encrypted?: boolean;
}

/**
 * How a message of `lenMessage` bytes splits at `mtu` bytes of UDP payload per datagram.
 * Throws MessageTooLargeError (MCCACHE_ERR_MESSAGE_TOO_LARGE) when it needs more than 255
 * fragments, and McCacheError MCCACHE_ERR_INVALID_OPTION (`packetMtu`) for an MTU outside 548..65507.
 */
export function planFragments(lenMessage: number, mtu: number, options: PlanOptions = {}): FragmentPlan {
  const capacity = fragmentCapacity(mtu, options.encrypted === true);
  if (!Number.isSafeInteger(lenMessage) || lenMessage < 0) {
    throw new McCacheError(ErrorCode.INVALID_ARGUMENT, `lenMessage: must be a non-negative integer, got ${lenMessage}`);
  }
  const limit = MAX_FRAGMENTS * capacity;
  if (lenMessage > limit) {
    throw new MessageTooLargeError(ErrorCode.MESSAGE_TOO_LARGE,
      `a message of ${lenMessage} bytes exceeds the ${limit}-byte limit at packetMtu ${mtu} `
      + `(${MAX_FRAGMENTS} fragments x ${capacity} bytes)`, lenMessage, limit);
  }
  const numFrags = Math.max(1, Math.ceil(lenMessage / capacity));
  return { numFrags, capacity, lastSize: lenMessage - (numFrags - 1) * capacity };
}

/** The largest message that fits `packetMtu`: 255 x capacity (DESIGN.md §3). */
export function maxMessageSize(mtu: number, options: PlanOptions = {}): number {
  return MAX_FRAGMENTS * fragmentCapacity(mtu, options.encrypted === true);
}

export interface FragmentOptions {
  senderId: bigint;
  /** Sequenced op: this message's number. Unsequenced op: the highest sequence assigned so far. */
  msgSeq: number;
  /** Largest datagram, bytes of UDP payload (548..65507). */
  mtu: number;
  /** FLAG_RETRANSMISSION when repairing a loss. The encrypted flag comes with `sealer` only. */
  flags?: number;
  /** 0 for plaintext; with `sealer`, absent or the sealer's key id. */
  keyId?: number;
  /**
   * Seal every fragment (AES-256-GCM, spec/README.md "Encryption"): the header gets the
   * encrypted flag and the sealer's key id, each fragment carries 28 bytes fewer of the message.
   */
  sealer?: Sealer;
}

/**
 * Splits an encoded message body into encoded datagrams, in fragment order. Unsequenced ops
 * (op code 0x40 and up) must fit one datagram. Nothing is returned unless every datagram could be
 * built. The datagrams are views on one buffer (one allocation per message); each is exactly
 * `28 + its fragment` bytes long.
 */
export function fragmentMessage(op: OpName, body: Uint8Array, options: FragmentOptions): Uint8Array[] {
  if (typeof op !== 'string' || !Object.hasOwn(OP_CODES, op)) throw new McCacheError(ErrorCode.INVALID_ARGUMENT, `op: unknown op ${String(op)}`);
  if (!(body instanceof Uint8Array)) throw new McCacheError(ErrorCode.INVALID_ARGUMENT, 'body: must be a Uint8Array');
  const sealer = options.sealer;
  let flags = options.flags ?? 0;
  let keyId = options.keyId ?? 0;
  let seal = 0;
  if (sealer === undefined) {
    if (Number.isInteger(flags) && (flags & FLAG_ENCRYPTED) !== 0) {
      throw new McCacheError(ErrorCode.INVALID_ARGUMENT, 'flags: the encrypted flag needs a sealer');
    }
  } else {
    if (options.keyId !== undefined && options.keyId !== sealer.keyId) {
      throw new McCacheError(ErrorCode.INVALID_ARGUMENT, `keyId: the sealer seals with key id ${sealer.keyId}`);
    }
    if (Number.isInteger(flags)) flags |= FLAG_ENCRYPTED;
    keyId = sealer.keyId;
    seal = SEAL_OVERHEAD;
  }
  const plan = planFragments(body.length, options.mtu, { encrypted: sealer !== undefined });
  if (OP_CODES[op] >= 0x40 && plan.numFrags > 1) {
    throw new MessageTooLargeError(ErrorCode.MESSAGE_TOO_LARGE,
      `an unsequenced ${op} message must fit one datagram: ${body.length} bytes, at most ${plan.capacity} at packetMtu ${options.mtu}`,
      body.length, plan.capacity);
  }
  const header: PacketHeader = {
    op, flags, keyId, fragIndex: 0, numFrags: plan.numFrags,
    senderId: options.senderId, msgSeq: options.msgSeq, lenMessage: body.length,
  };
  // Validated once, with the first fragment's length; the others differ only in index and size.
  checkHeader(header, (plan.numFrags === 1 ? plan.lastSize : plan.capacity) + seal);
  sealer?.reserve(plan.numFrags); // sealed whole or not at all

  const total = plan.numFrags * (HEADER_SIZE + seal) + body.length;
  const buffer = new Uint8Array(total);
  const view = new DataView(buffer.buffer);
  const out: Uint8Array[] = new Array(plan.numFrags);
  let at = 0;
  for (let i = 0; i < plan.numFrags; i++) {
    const from = i * plan.capacity;
    const size = i === plan.numFrags - 1 ? plan.lastSize : plan.capacity;
    header.fragIndex = i;
    writeHeader(view, at, header, size + seal);
    if (sealer === undefined) buffer.set(body.subarray(from, from + size), at + HEADER_SIZE);
    else sealer.sealInto(buffer, at + HEADER_SIZE, buffer.subarray(at, at + HEADER_SIZE), body.subarray(from, from + size));
    out[i] = buffer.subarray(at, at + HEADER_SIZE + seal + size);
    at += HEADER_SIZE + seal + size;
  }
  return out;
}

function fragmentCapacity(mtu: number, encrypted: boolean): number {
  if (!Number.isInteger(mtu) || mtu < MIN_MTU || mtu > MAX_MTU) {
    throw new McCacheError(ErrorCode.INVALID_OPTION, `packetMtu: must be an integer in ${MIN_MTU}..${MAX_MTU}, got ${mtu}`);
  }
  return mtu - HEADER_SIZE - (encrypted ? SEAL_OVERHEAD : 0);
}
