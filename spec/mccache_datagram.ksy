meta:
  id: mccache_datagram
  title: McCache wire protocol v1 datagram (fixed header + one fragment)
  license: MIT
  ks-version: '0.11'
  endian: be
  imports:
    - mccache_common
doc: |
  Every UDP datagram of McCache v1 is a fixed 28-byte header followed by one fragment of
  a message. A message (see `mccache_message`) is split into 1..255 fragments; fragment
  `frag_index` of `num_frags` carries the next `len_fragment` bytes of it. Sequenced
  messages (op codes below 0x40) are numbered per sender by `msg_seq` and delivered
  reliably and in order; unsequenced ones (0x40 and up) are single-fragment and their
  `msg_seq` carries the highest sequence number the sender has assigned (tail-loss
  detection, like a heartbeat on every control datagram).

  Byte order is big-endian throughout. With the `encrypted` flag, the fragment is
  `nonce(12) || AES-256-GCM ciphertext || tag(16)`, and the header (with the retransmission
  bit cleared, so a retransmitted copy still opens) is the associated data.
doc-ref: spec/README.md#datagram-header
seq:
  - id: magic
    type: u2
    valid: 0x4d43
    -mccache-error: MCCACHE_ERR_BAD_MAGIC
    doc: '"MC" (0x4d43). McCache-for-Python v0 datagrams start with 0xF9 instead.'
  - id: version
    type: u1
    valid: 1
    -mccache-error: MCCACHE_ERR_UNSUPPORTED_VERSION
    doc: Protocol version; this spec describes version 1.
  - id: op_code
    type: u1
    enum: mccache_common::op_code
    valid:
      expr: (_.to_i >= 0x01 and _.to_i <= 0x09) or (_.to_i >= 0x40 and _.to_i <= 0x46)
    -mccache-error: MCCACHE_ERR_UNKNOWN_OP
    doc: Message kind; decides the body type of the reassembled message.
  - id: flags
    type: u1
    valid:
      expr: (_ & 0xfc) == 0
    -mccache-error: MCCACHE_ERR_INVALID_FIELD
    doc: |
      Bit 0 (0x01) encrypted: the fragment is sealed with AES-256-GCM.
      Bit 1 (0x02) retransmission: a repeat of an earlier datagram, sent to repair a loss.
      Other bits are reserved and must be 0.
  - id: key_id
    type: u1
    valid:
      expr: is_encrypted or _ == 0
    -mccache-error: MCCACHE_ERR_INVALID_FIELD
    doc: Which crypto key sealed the fragment (key rotation); 0 when not encrypted.
  - id: frag_index
    type: u1
    doc: Zero-based index of this fragment within its message (0..254).
  - id: num_frags
    type: u1
    valid:
      expr: _ >= 1 and frag_index < _ and (is_sequenced or _ == 1)
    -mccache-error: MCCACHE_ERR_INVALID_FIELD
    doc: |
      Number of fragments of the message (1..255). Greater than frag_index; unsequenced
      messages always have exactly one fragment.
  - id: sender_id
    type: u8
    doc: |
      Random 64-bit id the sender drew when it started; a restarted process is a new
      member. Several senders per host are normal.
  - id: msg_seq
    type: u4
    doc: |
      Sequenced op: this message's number in the sender's stream, starting at 1.
      Unsequenced op: the highest sequence number the sender has assigned so far (0 if none).
  - id: len_message
    type: u4
    valid:
      max: 16704285
    -mccache-error: MCCACHE_ERR_OVER_LIMIT
    doc: Plaintext length of the whole message, at most 255 x 65507 bytes.
  - id: len_fragment
    type: u2
    valid:
      expr: >-
        _ >= seal_overhead and _ - seal_overhead <= len_message
        and (num_frags > 1 or _ - seal_overhead == len_message)
        and (num_frags == 1 or _ > seal_overhead)
    -mccache-error: MCCACHE_ERR_LENGTH_MISMATCH
    doc: |
      Bytes of fragment that follow the header. Its plaintext part (`len_fragment` minus
      28 when encrypted) is at most `len_message`, equals it when the message has one
      fragment, and is never empty when it has several.
  - id: reserved
    type: u2
    valid:
      expr: _ == 0
    -mccache-error: MCCACHE_ERR_INVALID_FIELD
    doc: Must be 0; keeps the header at 28 bytes and leaves room for a later version.
  - id: fragment
    size: len_fragment
    type:
      switch-on: is_encrypted
      cases:
        true: sealed_fragment
    doc: This fragment's slice of the message (plaintext, or sealed when encrypted).
  - id: trailing
    size-eos: true
    valid:
      expr: _.size == 0
    -mccache-error: MCCACHE_ERR_TRAILING_BYTES
    doc: Nothing may follow the fragment.
instances:
  is_encrypted:
    value: (flags & 0x01) != 0
  is_retransmission:
    value: (flags & 0x02) != 0
  is_sequenced:
    value: op_code.to_i < 0x40
  seal_overhead:
    value: 'is_encrypted ? 28 : 0'
    doc: Bytes the AES-256-GCM nonce and tag add to an encrypted fragment.
types:
  sealed_fragment:
    doc: |
      An AES-256-GCM sealed fragment; the 28-byte datagram header, with the retransmission bit
      cleared, is the associated data.
    seq:
      - id: nonce
        size: 12
        doc: Unique per datagram and key; never reused.
      - id: ciphertext
        size: _io.size - 28
      - id: tag
        size: 16
        doc: GCM authentication tag over the header and the ciphertext.
