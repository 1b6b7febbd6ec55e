meta:
  id: mccache_common
  title: McCache wire protocol v1, shared enums and types
  license: MIT
  ks-version: '0.11'
  endian: be
doc: |
  Enums and small types shared by `mccache_datagram` and `mccache_message`.
  This spec has no `seq` of its own; it is only imported.
doc-ref: spec/README.md
types:
  name:
    doc: |
      A cache name: a u1 length and that many bytes of UTF-8 (checked by the codec,
      see conformance/README.md "Rules beyond the .ksy").
    seq:
      - id: len_name
        type: u1
      - id: name
        size: len_name
  key:
    doc: A cache key, UTF-8 (checked by the codec), at most 65535 bytes.
    seq:
      - id: len_key
        type: u2
      - id: key
        size: len_key
  entry_value:
    doc: |
      A value as bytes plus the codec that produced them. The codec tag is data, never
      code: a receiver that does not know a codec rejects the message.
    seq:
      - id: value_codec
        type: u1
        enum: value_codec
        valid:
          expr: _.to_i <= 4
        -mccache-error: MCCACHE_ERR_INVALID_FIELD
      - id: len_value
        type: u4
        valid:
          max: 16704285
        -mccache-error: MCCACHE_ERR_OVER_LIMIT
        doc: Byte length of `value`; never more than 255 x 65507 (the largest message).
      - id: value
        size: len_value
enums:
  op_code:
    0x01:
      id: put
      doc: PUT (McCache INS/UPD). Sequenced. A key's new value with its version.
    0x02:
      id: delete
      doc: DEL. Sequenced. A key's deletion with its version; leaves a tombstone.
    0x03:
      id: clear
      doc: RST (clear). Sequenced. Removes every entry of a cache older than `hlc`.
    0x04:
      id: sync_entries
      doc: SYE. Sequenced. Entries (values or tombstones) sent to repair a digest difference.
    0x05:
      id: metrics_request
      doc: MET. Sequenced. Asks members to report their metrics.
    0x06:
      id: metrics_reply
      doc: MER. Sequenced. One member's metrics, answering a MET.
    0x07:
      id: checksum_request
      doc: INQ. Sequenced. Asks members for a checksum of a cache's keys and versions.
    0x08:
      id: checksum_reply
      doc: INR. Sequenced. One member's checksum, answering an INQ.
    0x09:
      id: batch
      doc: |
        BAT. Sequenced. Several writes (puts and deletes) of one cache by its sender, packed
        into one datagram when they were made within the same event-loop turn.
    0x40:
      id: join
      doc: NEW. Unsequenced. A member announces itself at start (repeated a few times).
    0x41:
      id: leave
      doc: BYE. Unsequenced. A member announces an orderly exit.
    0x42:
      id: heartbeat
      doc: HBT. Unsequenced. Liveness; the header's msg_seq gives the highest sequence sent.
    0x43:
      id: nak
      doc: NAK. Unsequenced. A receiver asks one sender to retransmit missing messages or fragments.
    0x44:
      id: ack
      doc: ACK. Unsequenced. Stability digest; per sender, the highest contiguous sequence delivered.
    0x45:
      id: sync_digest
      doc: SYC. Unsequenced. Anti-entropy digest of a cache, bucketed hashes over key and version.
    0x46:
      id: sync_request
      doc: REQ. Unsequenced. Asks one member for the entries of the buckets that differ.
  value_codec:
    0:
      id: none
      doc: No value (tombstones, empty payloads).
    1:
      id: bytes
      doc: Raw bytes (a Uint8Array or Buffer value).
    2:
      id: utf8
      doc: A string, UTF-8.
    3:
      id: msgpack
      doc: A structured value in MessagePack.
    4:
      id: json
      doc: A structured value in JSON text, UTF-8 (diagnostic replies).
  entry_kind:
    1:
      id: value
      doc: A live entry.
    2:
      id: tombstone
      doc: A deleted entry, kept until it expires so anti-entropy cannot resurrect it.
  leave_reason:
    1:
      id: shutdown
      doc: Orderly close by the application.
    2:
      id: error
      doc: The node stops after an unrecoverable local error.
