/**
 * Every error McCache throws carries a stable `code` (STYLE.md house rule 4). Tests assert
 * codes, never message text. The table of codes with their meaning is in README.md
 * ("Error codes"); keep the two in step.
 */
export const ErrorCode = {
  // A peer's bytes (decoder). Never thrown out of a node's receive path: dropped and counted.
  TRUNCATED: 'MCCACHE_ERR_TRUNCATED',
  BAD_MAGIC: 'MCCACHE_ERR_BAD_MAGIC',
  UNSUPPORTED_VERSION: 'MCCACHE_ERR_UNSUPPORTED_VERSION',
  UNKNOWN_OP: 'MCCACHE_ERR_UNKNOWN_OP',
  LENGTH_MISMATCH: 'MCCACHE_ERR_LENGTH_MISMATCH',
  TRAILING_BYTES: 'MCCACHE_ERR_TRAILING_BYTES',
  OVER_LIMIT: 'MCCACHE_ERR_OVER_LIMIT',
  INVALID_FIELD: 'MCCACHE_ERR_INVALID_FIELD',
  MALFORMED: 'MCCACHE_ERR_MALFORMED',
  // Our own misuse: thrown at once, nothing sent, nothing changed.
  INVALID_OPTION: 'MCCACHE_ERR_INVALID_OPTION',
  INVALID_ARGUMENT: 'MCCACHE_ERR_INVALID_ARGUMENT',
  MESSAGE_TOO_LARGE: 'MCCACHE_ERR_MESSAGE_TOO_LARGE',
  VALUE_TOO_LARGE: 'MCCACHE_ERR_VALUE_TOO_LARGE',
  CLOSED: 'MCCACHE_ERR_CLOSED',
  /** This process sealed 2^32 - 1 datagrams, as many as its nonce id allows; restart it. */
  NONCE_EXHAUSTED: 'MCCACHE_ERR_NONCE_EXHAUSTED',
  // A sealed datagram that `mccache decode --key` cannot open; shown, never thrown. A node
  // drops and counts the same datagrams as 'auth_failed' and 'unknown_key_id'.
  /** The GCM tag does not match: forged, tampered (header or fragment), or sealed with another key. */
  AUTH_FAILED: 'MCCACHE_ERR_AUTH_FAILED',
  /** The header's key_id is not the id of the key given (MCCACHE_CRYPTO_KEY is key id 1). */
  UNKNOWN_KEY_ID: 'MCCACHE_ERR_UNKNOWN_KEY_ID',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Codes a decoder may report for a peer's bytes. */
export type MalformedCode =
  | typeof ErrorCode.TRUNCATED
  | typeof ErrorCode.BAD_MAGIC
  | typeof ErrorCode.UNSUPPORTED_VERSION
  | typeof ErrorCode.UNKNOWN_OP
  | typeof ErrorCode.LENGTH_MISMATCH
  | typeof ErrorCode.TRAILING_BYTES
  | typeof ErrorCode.OVER_LIMIT
  | typeof ErrorCode.INVALID_FIELD
  | typeof ErrorCode.MALFORMED;

export class McCacheError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'McCacheError';
    this.code = code;
  }
}

/**
 * The only error `decodePacket`/`decodeMessage` throw. `field` is the .ksy path of the rule
 * that failed (e.g. `mccache_datagram.num_frags`) and `offset` the byte where that field
 * starts, when known.
 */
export class MalformedPacketError extends McCacheError {
  declare readonly code: MalformedCode;
  readonly field: string | undefined;
  readonly offset: number | undefined;
  constructor(code: MalformedCode, message: string, details: { field?: string; offset?: number; cause?: unknown } = {}) {
    super(code, message, { cause: details.cause });
    this.name = 'MalformedPacketError';
    this.field = details.field;
    this.offset = details.offset;
  }
}

/** A message that cannot fit in 255 fragments at the given MTU. Nothing was sent. */
export class MessageTooLargeError extends McCacheError {
  readonly limit: number;
  readonly size: number;
  constructor(code: typeof ErrorCode.MESSAGE_TOO_LARGE | typeof ErrorCode.VALUE_TOO_LARGE, message: string,
    size: number, limit: number) {
    super(code, message);
    this.name = 'MessageTooLargeError';
    this.size = size;
    this.limit = limit;
  }
}
