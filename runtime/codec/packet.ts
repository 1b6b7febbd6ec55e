/**
 * Typed view of the wire protocol (spec/*.ksy). Field names are the camelCase of the .ksy ids;
 * op codes and enum values keep the .ksy's snake_case names so that the TypeScript, the
 * conformance vectors' canonical JSON and captures read alike.
 */

/** spec/mccache_common.ksy `op_code`. */
export const OP_CODES = {
  put: 0x01,
  delete: 0x02,
  clear: 0x03,
  sync_entries: 0x04,
  metrics_request: 0x05,
  metrics_reply: 0x06,
  checksum_request: 0x07,
  checksum_reply: 0x08,
  batch: 0x09,
  join: 0x40,
  leave: 0x41,
  heartbeat: 0x42,
  nak: 0x43,
  ack: 0x44,
  sync_digest: 0x45,
  sync_request: 0x46,
} as const;
export type OpName = keyof typeof OP_CODES;

/** McCache's three-letter mnemonics, for people reading captures and logs. */
export const MNEMONICS: Readonly<Record<OpName, string>> = {
  put: 'PUT', delete: 'DEL', clear: 'RST', sync_entries: 'SYE', metrics_request: 'MET', metrics_reply: 'MER',
  checksum_request: 'INQ', checksum_reply: 'INR', batch: 'BAT', join: 'NEW', leave: 'BYE', heartbeat: 'HBT', nak: 'NAK',
  ack: 'ACK', sync_digest: 'SYC', sync_request: 'REQ',
};

const OP_BY_CODE = new Map<number, OpName>(Object.entries(OP_CODES).map(([k, v]) => [v, k as OpName]));
export function opName(code: number): OpName | undefined {
  return OP_BY_CODE.get(code);
}
/** Sequenced ops (below 0x40) are numbered per sender and delivered reliably, in order. */
export function isSequenced(op: OpName): boolean {
  return OP_CODES[op] < 0x40;
}

export const VALUE_CODECS = { none: 0, bytes: 1, utf8: 2, msgpack: 3, json: 4 } as const;
export type ValueCodec = keyof typeof VALUE_CODECS;
/** ValueCodec by its wire number (index = number). */
export const VALUE_CODEC_NAMES: readonly ValueCodec[] = (Object.keys(VALUE_CODECS) as ValueCodec[]).sort((a, b) => VALUE_CODECS[a] - VALUE_CODECS[b]);
export const ENTRY_KINDS = { value: 1, tombstone: 2 } as const;
export type EntryKind = keyof typeof ENTRY_KINDS;
export const LEAVE_REASONS = { shutdown: 1, error: 2 } as const;
export type LeaveReason = keyof typeof LEAVE_REASONS;

/** Header sizes and limits (spec/mccache_datagram.ksy). */
export const HEADER_SIZE = 28;
export const MAGIC = 0x4d43;
export const PROTOCOL_VERSION = 1;
export const FLAG_ENCRYPTED = 0x01;
export const FLAG_RETRANSMISSION = 0x02;
/** AES-256-GCM nonce (12) + tag (16) added to an encrypted fragment. */
export const SEAL_OVERHEAD = 28;
export const MAX_FRAGMENTS = 255;
/** Smallest UDP payload every IPv4 host must accept: 576 - 20 (IP) - 8 (UDP). */
export const MIN_MTU = 548;
/** Largest UDP payload over IPv4: 65535 - 20 - 8. */
export const MAX_MTU = 65507;
/** Default: 1500 (Ethernet) - 20 (IP) - 8 (UDP). */
export const DEFAULT_MTU = 1472;
export const MAX_MESSAGE_SIZE = MAX_FRAGMENTS * MAX_MTU; // 16,704,285, the .ksy's len_message bound

/** The fixed datagram header (spec/mccache_datagram.ksy), without magic, version and reserved. */
export interface PacketHeader {
  op: OpName;
  /** FLAG_* bits. */
  flags: number;
  keyId: number;
  fragIndex: number;
  numFrags: number;
  senderId: bigint;
  msgSeq: number;
  lenMessage: number;
}

/** One decoded datagram. `message` is present when the datagram holds a whole plaintext message. */
export interface Packet {
  header: PacketHeader;
  /** The fragment bytes as on the wire (sealed when encrypted). */
  fragment: Uint8Array;
  message?: Message;
}

export interface EntryValue {
  codec: ValueCodec;
  value: Uint8Array;
}

export interface SyncEntry extends EntryValue {
  key: string;
  hlc: bigint;
  originId: bigint;
  kind: EntryKind;
  /** Remaining time to live in ms, 0 for none. */
  ttl: number;
}

/** One write of a `batch`: a put (`kind` value) or a delete (`kind` tombstone, empty value). */
export interface BatchWrite extends EntryValue {
  kind: EntryKind;
  key: string;
  hlc: bigint;
  /** As in `put`: ms, 0 = the receiving cache's default; 0 for a delete. */
  ttl: number;
}

export interface SeqRange {
  first: number;
  last: number;
}

export interface PartialMessage {
  msgSeq: number;
  numFrags: number;
  /** Indexes of the missing fragments, ascending. */
  missing: number[];
}

export interface AckEntry {
  senderId: bigint;
  deliveredSeq: number;
}

/**
 * A value as `encodeMessage` takes it in a `put` or a `batch` write: its bytes, or, unencoded,
 * a string for codec `utf8` or a MessagePack scalar (null, boolean, number) for codec
 * `msgpack`, which the encoder writes straight into the message (no byte array per write).
 */
export type OutgoingValue = Uint8Array | string | number | boolean | null;
export type OutgoingBatchWrite = Omit<BatchWrite, 'value'> & { value: OutgoingValue };
/** What `encodeMessage` (and so a core's `send`) takes: a Message, values possibly unencoded. */
export type OutgoingMessage =
  | Exclude<Message, { op: 'put' } | { op: 'batch' }>
  | (Omit<Extract<Message, { op: 'put' }>, 'value'> & { value: OutgoingValue })
  | { op: 'batch'; cache: string; writes: OutgoingBatchWrite[] };

/** A message body (spec/mccache_message.ksy), discriminated on `op`. */
export type Message =
  | { op: 'put'; cache: string; key: string; hlc: bigint; ttl: number; codec: ValueCodec; value: Uint8Array }
  | { op: 'delete'; cache: string; key: string; hlc: bigint }
  | { op: 'clear'; cache: string; hlc: bigint }
  | { op: 'sync_entries'; cache: string; replyTo: bigint; entries: SyncEntry[] }
  | { op: 'batch'; cache: string; writes: BatchWrite[] }
  | { op: 'metrics_request'; target: bigint }
  | { op: 'metrics_reply'; requestSender: bigint; requestSeq: number; codec: ValueCodec; report: Uint8Array }
  | { op: 'checksum_request'; target: bigint; cache: string }
  | { op: 'checksum_reply'; requestSender: bigint; requestSeq: number; cache: string; numEntries: number; checksum: Uint8Array }
  | { op: 'join'; heartbeatInterval: number; packetMtu: number; pid: number; host: string }
  | { op: 'leave'; reason: LeaveReason }
  | { op: 'heartbeat'; heartbeatInterval: number; numMembers: number; lowSeq: number }
  | { op: 'nak'; target: bigint; ranges: SeqRange[]; partials: PartialMessage[] }
  | { op: 'ack'; entries: AckEntry[] }
  | { op: 'sync_digest'; cache: string; numEntries: number; clearHlc: bigint; clearOrigin: bigint; numBuckets: number; firstBucket: number; hashes: bigint[] }
  | { op: 'sync_request'; target: bigint; cache: string; numBuckets: number; bucketIds: number[] };

export type MessageOf<K extends OpName> = Extract<Message, { op: K }>;
