meta:
  id: mccache_v0_header
  title: McCache-for-Python v0 fragment header (recognised, never spoken)
  license: MIT
  ks-version: '0.11'
  endian: le
doc: |
  The 18-byte header of McCache-for-Python 0.4 (struct '@BBBBHHQH' in host order, which is
  little-endian on every deployed platform), followed by a slice of two Python pickles.
  McCache for TypeScript never decodes the pickles (unpickling network bytes runs code);
  it only recognises this traffic so the decoder can label it and nodes can count it.
doc-ref: ../shared/research/mccache-python-protocol.md section 1.2
seq:
  - id: magic
    type: u1
    valid: 0xf9
    -mccache-error: MCCACHE_ERR_BAD_MAGIC
    doc: 0b11111001; a 5-bit pattern and a 3-bit version 1.
  - id: reserved
    type: u1
    doc: Always 0 in practice; ignored.
  - id: frag_index
    type: u1
    doc: Zero-based fragment index (Python calls it seq; it is not a message number).
  - id: num_frags
    type: u1
    valid:
      expr: _ >= 1 and frag_index < _
    -mccache-error: MCCACHE_ERR_INVALID_FIELD
    doc: Fragments in the message (frg_c), 1..255.
  - id: len_key
    type: u2
    doc: Byte length of the pickled (namespace, key, tsm) tuple.
  - id: len_value
    type: u2
    doc: Byte length of the pickled (op, crc, value) tuple, after optional Fernet encryption.
  - id: tsm
    type: u8
    doc: Entry timestamp, time.time_ns() of the writer's wall clock.
  - id: rcv
    type: u2
    doc: Last octet of the targeted receiver's IPv4 address, or 0 for all.
  - id: payload
    size-eos: true
    doc: This fragment's slice of key pickle || value pickle.
