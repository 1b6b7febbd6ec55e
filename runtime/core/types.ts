/**
 * Shared types of the sans-I/O core (STYLE.md: runtime/core does no I/O and reads no clock or
 * random source of its own). Times are milliseconds on the driver's monotonic clock; instants
 * end in `At`.
 */
import type { Message } from '../codec/packet';

export type NodeId = bigint;

/** Uniform random numbers in [0, 1); seeded in tests, Math.random in the driver. */
export type Rng = () => number;

/** A datagram the driver must send. `to` undefined means the whole group. */
export interface Transmit {
  bytes: Uint8Array;
  to?: NodeId;
}

export type CoreEvent =
  /** A sequenced message, delivered once and in order per sender. */
  | { type: 'deliver'; from: NodeId; seq: number; message: Message }
  /** An unsequenced message for the layer above (sync digest and request). */
  | { type: 'receive'; from: NodeId; message: Message }
  | { type: 'member-up'; nodeId: NodeId; host: string | undefined }
  | { type: 'member-down'; nodeId: NodeId; reason: 'leave' | 'timeout' }
  /**
   * Sequenced messages `first..last` of `from` will never be delivered here (given up after the
   * retry limit, or the sender no longer holds them). The layer above repairs by anti-entropy.
   */
  | { type: 'gap'; from: NodeId; first: number; last: number }
  /** The send window has room again after `send` returned undefined. */
  | { type: 'writable' }
  /**
   * This node now sends as `newId` (reliable-core.ts, "Identity renewal"): `newId` said JOIN;
   * `oldId` says LEAVE once the members know `newId`. `reason`: its sequence numbers or its
   * sealer's nonce counts ran low. A 'writable' follows.
   */
  | { type: 'renewed'; oldId: NodeId; newId: NodeId; reason: RenewReason };

/** Why a sending identity was renewed: the u4 `msg_seq` or the sealer's u4 nonce count ran low. */
export type RenewReason = 'sequence' | 'nonce';
