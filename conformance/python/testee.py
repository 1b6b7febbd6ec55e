#!/usr/bin/python3
"""Python testee of the McCache conformance suite (conformance/README.md "Testee contract").

    testee.py decode FILE...   one NDJSON line per vector file
    testee.py plan FILE        the fragmentation cases of FILE, as one JSON array

It parses with the spec compiled to Python (generated/python/, kaitai-struct-compiler 0.11) on
Debian's python3-kaitaistruct 0.10, and shares no code with the TypeScript codec: it is the
second, independent reading of spec/*.ksy. Run it with /usr/bin/python3 (the Debian runtime
lives there).

What it needs besides the generated parsers, all under generated/ (written by tools/gen.mjs):
  error-codes.json  every `valid` rule's srcPath -> MCCACHE_ERR_* code; Python's validation
                    errors carry src_path, so a failure maps to its code directly
  fields.json       each type's seq fields in order with their wire type, to print the
                    canonical tree (u8 as decimal strings) without guessing from int sizes
"""
import enum
import io
import json
import importlib
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GENERATED = os.path.join(ROOT, 'generated')

import kaitaistruct  # noqa: E402
from kaitaistruct import KaitaiStream, KaitaiStruct  # noqa: E402

# The 0.11 compiler's output checks API_VERSION >= (0, 11); Debian ships the 0.10 runtime. Our
# specs use nothing 0.11 added to the runtime (enum membership is checked with `valid: expr`,
# not `in-enum`), so we claim 0.11 rather than vendor a runtime.
kaitaistruct.API_VERSION = (0, 11)

SPECS = ['mccache_common', 'mccache_datagram', 'mccache_message', 'mccache_v0_header']  # imports first


def load_generated():
    """Imports generated/python/*.py as they are (the generated modules `import mccache_common`)."""
    sys.path.insert(0, os.path.join(GENERATED, 'python'))
    return {name: importlib.import_module(name) for name in SPECS}


MODULES = load_generated()
MccacheCommon = MODULES['mccache_common'].MccacheCommon
MccacheDatagram = MODULES['mccache_datagram'].MccacheDatagram
MccacheMessage = MODULES['mccache_message'].MccacheMessage
MccacheV0Header = MODULES['mccache_v0_header'].MccacheV0Header


def _load_json(name):
    with open(os.path.join(GENERATED, name), encoding='utf-8') as f:
        return json.load(f)


def _error_tables():
    """srcPath -> code. "/seq/..." paths belong to the spec being parsed; "/types/<name>/..."
    paths must be unique across specs (checked here, so a new spec cannot make them ambiguous)."""
    top, by_type = {}, {}
    for rule in _load_json('error-codes.json')['rules']:
        if rule['srcPath'].startswith('/seq/'):
            top[(rule['spec'], rule['srcPath'])] = rule['code']
        else:
            previous = by_type.setdefault(rule['srcPath'], rule['code'])
            if previous != rule['code']:
                sys.exit('testee.py: srcPath %s names two codes in generated/error-codes.json' % rule['srcPath'])
    return top, by_type


TOP_RULES, TYPE_RULES = _error_tables()
FIELDS = {(t['spec'], t['class']): t['seq'] for t in _load_json('fields.json')['types']}
U8 = re.compile(r'^u8(be|le)?$')

TRUNCATED = 'MCCACHE_ERR_TRUNCATED'
INVALID_FIELD = 'MCCACHE_ERR_INVALID_FIELD'
LENGTH_MISMATCH = 'MCCACHE_ERR_LENGTH_MISMATCH'
MALFORMED = 'MCCACHE_ERR_MALFORMED'


class Rejected(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


def parse(spec, build):
    """Runs a generated parser; maps its failure to a code (conformance/README.md "Error codes")."""
    try:
        return build()
    except EOFError:
        raise Rejected(TRUNCATED)
    except kaitaistruct.ValidationFailedError as e:
        path = e.src_path
        code = TOP_RULES.get((spec, path)) if path.startswith('/seq/') else TYPE_RULES.get(path)
        raise Rejected(code or MALFORMED)
    except Exception:  # anything else the parser raises is still the peer's bytes
        raise Rejected(MALFORMED)


def stream(data):
    return KaitaiStream(io.BytesIO(data))


def check_utf8(obj):
    """Rule beyond the .ksy: every cache name, host name and key is valid UTF-8."""
    if isinstance(obj, list):
        for item in obj:
            check_utf8(item)
        return
    if not isinstance(obj, KaitaiStruct):
        return
    if isinstance(obj, (MccacheCommon.Name, MccacheCommon.Key)):
        text = obj.name if isinstance(obj, MccacheCommon.Name) else obj.key
        try:
            text.decode('utf-8', errors='strict')
        except UnicodeDecodeError:
            raise Rejected(INVALID_FIELD)
        return
    for field in seq_of(obj):
        check_utf8(getattr(obj, field['id']))


def seq_of(obj):
    cls = type(obj)
    return FIELDS[(cls.__module__, cls.__name__)]


def tree(obj):
    """The canonical JSON of a parsed object (conformance/README.md "Canonical JSON")."""
    return {field['id']: value(getattr(obj, field['id']), field) for field in seq_of(obj)}


def value(v, field):
    if isinstance(v, list):
        return [value(item, field) for item in v]
    if isinstance(v, KaitaiStruct):
        return tree(v)
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if isinstance(v, enum.Enum):
        return v.name
    if isinstance(v, int) and not isinstance(v, bool):
        if 'enum' in field:
            raise TypeError('%s = %d is not in its enum' % (field['id'], v))
        return str(v) if U8.match(field['type']) else v
    raise TypeError('%s has no canonical form (%r)' % (field['id'], type(v)))


def decode_datagram(data):
    d = parse('mccache_datagram', lambda: MccacheDatagram(stream(data)))
    message = None
    if d.num_frags == 1 and not d.is_encrypted:
        message = decode_message(int(d.op_code), d.fragment)
    return d, message


def decode_message(op_code, data):
    m = parse('mccache_message', lambda: MccacheMessage(op_code, stream(data)))
    check_utf8(m)
    return m


def reassemble(datagrams):
    """conformance/README.md "Reassembly", checked in that order."""
    first = datagrams[0]
    if any(d.is_encrypted for d in datagrams):
        raise Rejected(INVALID_FIELD)
    same = ('sender_id', 'msg_seq', 'op_code', 'num_frags', 'len_message')
    if any(getattr(d, f) != getattr(first, f) for d in datagrams for f in same):
        raise Rejected(INVALID_FIELD)
    by_index = {}
    for d in datagrams:
        if d.frag_index in by_index:
            raise Rejected(INVALID_FIELD)
        by_index[d.frag_index] = d.fragment
    if sorted(by_index) != list(range(first.num_frags)):
        raise Rejected(INVALID_FIELD)
    whole = b''.join(by_index[i] for i in range(first.num_frags))
    if len(whole) != first.len_message:
        raise Rejected(LENGTH_MISMATCH)
    return whole


def decode_vector(kind, datagrams):
    if kind == 'datagram':
        d, m = decode_datagram(b''.join(datagrams))
        return lambda: {'datagram': tree(d), 'message': tree(m) if m is not None else None}
    if kind == 'message':
        if not datagrams:
            raise Rejected(TRUNCATED)
        parsed = [decode_datagram(data)[0] for data in datagrams]
        whole = reassemble(parsed)
        m = decode_message(int(parsed[0].op_code), whole)
        return lambda: {'datagrams': [tree(d) for d in parsed], 'message': tree(m)}
    if kind == 'python_v0':
        h = parse('mccache_v0_header', lambda: MccacheV0Header(stream(b''.join(datagrams))))
        return lambda: tree(h)
    raise ValueError(kind)


_COMMENT = re.compile(r'#.*')
_TOKEN = re.compile(r'^(?:[0-9a-fA-F]{2})+$')


def parse_hex_file(text):
    """conformance/README.md "Vector files": a run of lines holding bytes is one datagram."""
    datagrams, current = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if current:
                datagrams.append(bytes.fromhex(''.join(current)))
            current = []
            continue
        for token in _COMMENT.sub('', line).split():
            if not _TOKEN.match(token):
                raise ValueError('line %d: %r is not whole bytes of hex' % (number, token))
            current.append(token)
    if current:
        datagrams.append(bytes.fromhex(''.join(current)))
    return datagrams


def plan(case):
    mtu, length = case['mtu'], case['len_message']
    if not isinstance(mtu, int) or isinstance(mtu, bool) or not 548 <= mtu <= 65507:
        return {'error': 'MCCACHE_ERR_INVALID_OPTION'}
    capacity = mtu - 28 - (28 if case['encrypted'] else 0)
    num_frags = max(1, -(-length // capacity))
    if num_frags > 255:
        return {'error': 'MCCACHE_ERR_MESSAGE_TOO_LARGE'}
    return {'num_frags': num_frags, 'capacity': capacity, 'len_last_fragment': length - (num_frags - 1) * capacity}


def dumps(obj):
    return json.dumps(obj, separators=(',', ':'))


def main(argv):
    if len(argv) >= 2 and argv[0] == 'decode':
        out = sys.stdout
        for path in argv[1:]:
            kind = os.path.basename(os.path.dirname(os.path.abspath(path)))
            name = '%s/%s' % (kind, os.path.basename(path))
            with open(path, encoding='utf-8') as f:
                datagrams = parse_hex_file(f.read())
            try:
                render = decode_vector(kind, datagrams)
            except Rejected as r:
                out.write(dumps({'file': name, 'ok': False, 'error': r.code}) + '\n')
                continue
            try:
                result = {'file': name, 'ok': True, 'value': render()}
            except Exception as e:  # a bug in this testee, not a verdict: let the runner show it
                result = {'file': name, 'ok': False, 'error': 'TESTEE_INTERNAL_ERROR', 'detail': repr(e)}
            out.write(dumps(result) + '\n')
        return 0
    if len(argv) == 2 and argv[0] == 'plan':
        with open(argv[1], encoding='utf-8') as f:
            cases = json.load(f)['cases']
        print(dumps([plan(c) for c in cases]))
        return 0
    sys.stderr.write('usage: testee.py decode FILE... | testee.py plan FILE\n')
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
