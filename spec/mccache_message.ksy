meta:
  id: mccache_message
  title: McCache wire protocol v1 message bodies (one type per op code)
  license: MIT
  ks-version: '0.11'
  endian: be
  imports:
    - mccache_common
doc: |
  A message is the concatenation of its fragments' plaintext in `frag_index` order
  (`len_message` bytes in all). Its layout is chosen by the datagram header's `op_code`,
  passed in as a parameter. Every length and count is explicit; nothing may follow the body.
  Versions are hybrid logical clock timestamps (`hlc`: 48 bits of Unix milliseconds, then a
  16-bit logical counter) paired with the writer's node id; the highest pair wins.
doc-ref: spec/README.md#message-bodies
params:
  - id: op_code
    type: u1
    doc: The `op_code` of the datagram header(s) that carried this message.
seq:
  - id: body
    type:
      switch-on: op_code
      cases:
        0x01: put
        0x02: delete
        0x03: clear
        0x04: sync_entries
        0x05: metrics_request
        0x06: metrics_reply
        0x07: checksum_request
        0x08: checksum_reply
        0x09: batch
        0x40: join
        0x41: leave
        0x42: heartbeat
        0x43: nak
        0x44: ack
        0x45: sync_digest
        0x46: sync_request
  - id: trailing
    size-eos: true
    valid:
      expr: _.size == 0
    -mccache-error: MCCACHE_ERR_TRAILING_BYTES
    doc: Nothing may follow the body.
types:
  put:
    doc: A key's new value. The version is (`hlc`, the header's `sender_id`).
    seq:
      - id: cache
        type: mccache_common::name
      - id: key
        type: mccache_common::key
      - id: hlc
        type: u8
        doc: Version timestamp of this write.
      - id: ttl
        type: u4
        doc: Time to live in ms given to this write, or 0 for the receiving cache's own default.
      - id: value
        type: mccache_common::entry_value
  delete:
    doc: A key's deletion; receivers keep a tombstone with this version.
    seq:
      - id: cache
        type: mccache_common::name
      - id: key
        type: mccache_common::key
      - id: hlc
        type: u8
        doc: Version timestamp of the delete.
  clear:
    doc: Removes every entry of the cache whose version is older than this one.
    seq:
      - id: cache
        type: mccache_common::name
      - id: hlc
        type: u8
        doc: Version timestamp of the clear.
  sync_entries:
    doc: Entries sent to repair a difference found by a digest (anti-entropy).
    seq:
      - id: cache
        type: mccache_common::name
      - id: reply_to
        type: u8
        doc: Node id of the member that asked, or 0 when addressed to every member.
      - id: num_entries
        type: u2
        doc: Entries that follow.
      - id: entries
        type: sync_entry
        repeat: expr
        repeat-expr: num_entries
  sync_entry:
    seq:
      - id: key
        type: mccache_common::key
      - id: hlc
        type: u8
        doc: Version timestamp of the entry.
      - id: origin_id
        type: u8
        doc: Node id of the member that wrote this version (the version's tie-breaker).
      - id: kind
        type: u1
        enum: mccache_common::entry_kind
        valid:
          expr: _.to_i >= 1 and _.to_i <= 2
        -mccache-error: MCCACHE_ERR_INVALID_FIELD
      - id: ttl
        type: u4
        doc: Remaining time to live in ms, or 0 for none.
      - id: value
        type: mccache_common::entry_value
  batch:
    doc: |
      Writes of one cache by the sender, in the order it made them: each exactly as the `put`
      or `delete` it stands for (the version is (`hlc`, the header's `sender_id`)). Senders
      pack the writes of one event-loop turn into one datagram instead of sending one
      datagram each; a write too large to share a datagram goes alone as a `put`.
    seq:
      - id: cache
        type: mccache_common::name
      - id: num_writes
        type: u2
        valid:
          min: 1
        -mccache-error: MCCACHE_ERR_INVALID_FIELD
        doc: Writes that follow (at least one).
      - id: writes
        type: batch_write
        repeat: expr
        repeat-expr: num_writes
  batch_write:
    seq:
      - id: kind
        type: u1
        enum: mccache_common::entry_kind
        valid:
          expr: _.to_i >= 1 and _.to_i <= 2
        -mccache-error: MCCACHE_ERR_INVALID_FIELD
        doc: "`value`: a put; `tombstone`: a delete."
      - id: key
        type: mccache_common::key
      - id: hlc
        type: u8
        doc: Version timestamp of this write.
      - id: ttl
        type: u4
        doc: As in `put` (0 = the receiving cache's default); 0 for a delete.
      - id: value
        type: mccache_common::entry_value
        valid:
          expr: kind == mccache_common::entry_kind::value or (_.value_codec == mccache_common::value_codec::none and _.len_value == 0)
        -mccache-error: MCCACHE_ERR_INVALID_FIELD
        doc: The value of a put; a delete carries none (codec `none`, length 0).
  metrics_request:
    seq:
      - id: target
        type: u8
        doc: Node id of the member asked, or 0 for every member.
  metrics_reply:
    seq:
      - id: request_sender
        type: u8
        doc: Node id of the member that sent the request.
      - id: request_seq
        type: u4
        doc: The request's msg_seq.
      - id: report
        type: mccache_common::entry_value
        doc: The metrics, as a map (JSON or MessagePack).
  checksum_request:
    seq:
      - id: target
        type: u8
        doc: Node id of the member asked, or 0 for every member.
      - id: cache
        type: mccache_common::name
        doc: The cache to checksum; an empty name means every cache.
  checksum_reply:
    seq:
      - id: request_sender
        type: u8
      - id: request_seq
        type: u4
      - id: cache
        type: mccache_common::name
      - id: num_entries
        type: u4
        doc: Live entries covered by the checksum.
      - id: checksum
        size: 32
        doc: SHA-256 over the sorted (key, version) list; see spec/README.md.
  join:
    seq:
      - id: heartbeat_interval
        type: u4
        doc: The member's heartbeat period in ms (peers derive its failure timeout).
      - id: packet_mtu
        type: u2
        valid:
          min: 548
          max: 65507
        -mccache-error: MCCACHE_ERR_INVALID_FIELD
        doc: The member's largest datagram, bytes of UDP payload (548..65507).
      - id: pid
        type: u4
        doc: Process id, for people reading captures.
      - id: host
        type: mccache_common::name
        doc: Host name, for people reading captures.
  leave:
    seq:
      - id: reason
        type: u1
        enum: mccache_common::leave_reason
        valid:
          expr: _.to_i >= 1 and _.to_i <= 2
        -mccache-error: MCCACHE_ERR_INVALID_FIELD
  heartbeat:
    seq:
      - id: heartbeat_interval
        type: u4
        doc: The member's heartbeat period in ms.
      - id: num_members
        type: u2
        doc: Members the sender currently sees, itself included.
      - id: low_seq
        type: u4
        doc: |
          Lowest sequence number the sender can still retransmit (everything below it is
          stable or given up). A receiver that still misses anything below it skips ahead
          and leaves the repair to anti-entropy; a new receiver starts its window here.
  nak:
    doc: |
      A receiver's request to one sender: whole messages missing (`ranges`, inclusive) and
      messages of which some fragments are missing (`partials`).
    seq:
      - id: target
        type: u8
        doc: Node id of the sender asked to retransmit.
      - id: num_ranges
        type: u1
      - id: ranges
        type: seq_range
        repeat: expr
        repeat-expr: num_ranges
      - id: num_partials
        type: u1
      - id: partials
        type: partial
        repeat: expr
        repeat-expr: num_partials
  seq_range:
    seq:
      - id: first
        type: u4
      - id: last
        type: u4
        valid:
          expr: _ >= first
        -mccache-error: MCCACHE_ERR_INVALID_FIELD
  partial:
    seq:
      - id: msg_seq
        type: u4
      - id: num_frags
        type: u1
        valid:
          min: 2
        -mccache-error: MCCACHE_ERR_INVALID_FIELD
        doc: Fragment count of the message (a one-fragment message is never partial).
      - id: missing
        size: (num_frags + 7) / 8
        valid:
          expr: num_frags % 8 == 0 or (_.last & (0xff >> (num_frags % 8))) == 0
        -mccache-error: MCCACHE_ERR_INVALID_FIELD
        doc: |
          Bitmap, bit 7 of byte 0 is fragment 0; a set bit means the fragment is missing. The
          padding bits after fragment num_frags - 1 are 0, so every NAK has one encoding.
  ack:
    seq:
      - id: num_entries
        type: u1
      - id: entries
        type: ack_entry
        repeat: expr
        repeat-expr: num_entries
  ack_entry:
    seq:
      - id: sender_id
        type: u8
      - id: delivered_seq
        type: u4
        doc: Highest sequence number from that sender delivered in order, with no gap before it.
  sync_digest:
    doc: |
      The sender's entries of one cache hashed into `num_buckets` buckets; this datagram
      carries buckets `first_bucket` .. `first_bucket + num_hashes - 1`.
    seq:
      - id: cache
        type: mccache_common::name
      - id: num_entries
        type: u4
        doc: Entries and tombstones the sender holds in this cache.
      - id: clear_hlc
        type: u8
        doc: |
          Version of the newest clear() the sender has applied to this cache (0 if none), so a
          member that missed a clear learns it from any digest: a missed clear cannot be
          repaired by exchanging entries, since a cleared cache has none to send.
      - id: clear_origin
        type: u8
        doc: Node id that issued that clear (the version's tie-breaker), 0 if none.
      - id: num_buckets
        type: u2
        valid:
          min: 1
        -mccache-error: MCCACHE_ERR_INVALID_FIELD
      - id: first_bucket
        type: u2
      - id: num_hashes
        type: u2
        valid:
          expr: first_bucket + _ <= num_buckets
        -mccache-error: MCCACHE_ERR_OVER_LIMIT
      - id: hashes
        type: u8
        repeat: expr
        repeat-expr: num_hashes
        doc: Per bucket, the sum mod 2^64 of a 64-bit hash of each (key, version).
  sync_request:
    seq:
      - id: target
        type: u8
        doc: Node id of the member asked for entries.
      - id: cache
        type: mccache_common::name
      - id: num_buckets
        type: u2
        valid:
          min: 1
        -mccache-error: MCCACHE_ERR_INVALID_FIELD
      - id: num_bucket_ids
        type: u2
      - id: bucket_ids
        type: u2
        repeat: expr
        repeat-expr: num_bucket_ids
