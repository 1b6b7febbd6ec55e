/**
 * `mccache dissector [--port N]`: writes a Wireshark Lua dissector generated from the .ksy specs
 * (generated/ksy.json, which tools/gen.mjs writes from spec/*.ksy), never written by hand.
 *
 * Every seq field of every type becomes a ProtoField `mccache.<type>.<field>` (u1/u2/u4/u8 as
 * uint8..uint64 in the spec's byte order, enums with a value_string table from the .ksy enums,
 * sized fields as bytes, nested types as subtrees). The datagram's leading fixed fields form a
 * `mccache.header` subtree; a single-fragment unencrypted datagram also gets its message body
 * dissected by op code (`mccache.message`). The protocol is `mccache` (display filter
 * `mccache`), registered in DissectorTable udp.port on the given port (default 4000).
 *
 * Only the Kaitai features our specs use are supported (integer and byte fields, `size`,
 * `size-eos`, `repeat: expr`, `switch-on`, value instances, params, and a small expression
 * language); anything else throws, so a spec change cannot silently produce a wrong dissector.
 * `valid` rules are not checked by the dissector (`mccache decode` does that).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

export const DEFAULT_PORT = 4000;
/** The documented header size (spec/README.md); the generator checks the .ksy agrees. */
const HEADER_SIZE = 28;
const DATAGRAM_SPEC = 'mccache_datagram';
const MESSAGE_SPEC = 'mccache_message';
const V0_SPEC = 'mccache_v0_header';

class Unsupported extends Error {
  constructor(where: string, what: string) {
    super(`dissector: ${where}: ${what} is not supported by the Lua generator (runtime/cli/dissector.ts)`);
  }
}

export function loadSpecs(): Record<string, Json> {
  const file = path.join(__dirname, '..', '..', 'generated', 'ksy.json');
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { specs: Record<string, Json> }).specs;
}

/** A Lua string literal (bytes outside printable ASCII as decimal escapes). */
function luaStr(s: string): string {
  let out = '"';
  for (const b of Buffer.from(s, 'utf8')) {
    if (b === 0x22 || b === 0x5c) out += '\\' + String.fromCharCode(b);
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += '\\' + String(b).padStart(3, '0');
  }
  return out + '"';
}

const INT_RE = /^u([1248])(be|le)?$/;
const FIELD_KEYS = new Set(['id', 'type', 'size', 'size-eos', 'repeat', 'repeat-expr', 'enum', 'valid', 'doc', 'doc-ref', '-mccache-error']);
const TYPE_KEYS = new Set(['meta', 'doc', 'doc-ref', 'seq', 'instances', 'params', 'types', 'enums']);

interface TypeInfo { spec: string; name: string; ksy: Json; endian: 'be' | 'le' }

class Generator {
  private types = new Map<string, TypeInfo>();
  private enums = new Map<string, { spec: string; name: string; values: [number, string][] }>();
  private lines: string[] = [];

  constructor(private specs: Record<string, Json>, private port: number) {
    for (const id of Object.keys(specs).sort()) {
      const ksy = specs[id];
      const endian = ksy.meta?.endian;
      if (endian !== 'be' && endian !== 'le') throw new Unsupported(id, `meta.endian ${JSON.stringify(endian)}`);
      this.addType(id, id, ksy, endian);
      for (const [en, values] of Object.entries<Json>(ksy.enums ?? {})) {
        const list: [number, string][] = Object.entries<Json>(values).map(([k, v]) => {
          if (!/^\d+$/.test(k)) throw new Unsupported(`${id} enum ${en}`, `key ${k}`);
          return [Number(k), typeof v === 'string' ? v : String(v.id)];
        });
        this.enums.set(`${id}::${en}`, { spec: id, name: en, values: list.sort((a, b) => a[0] - b[0]) });
      }
    }
  }

  private addType(spec: string, name: string, ksy: Json, endian: 'be' | 'le'): void {
    for (const k of Object.keys(ksy)) if (!TYPE_KEYS.has(k)) throw new Unsupported(`${spec} type ${name}`, `key ${k}`);
    if (this.types.has(name)) throw new Unsupported(`${spec} type ${name}`, 'a type name used twice across specs');
    this.types.set(name, { spec, name, ksy, endian });
    for (const [sub, def] of Object.entries<Json>(ksy.types ?? {})) {
      if (def.types) throw new Unsupported(`${spec} type ${sub}`, 'nested types');
      this.addType(spec, sub, def, endian);
    }
  }

  private resolveType(from: TypeInfo, ref: string): TypeInfo {
    const name = ref.includes('::') ? ref.split('::').pop()! : ref;
    const t = this.types.get(name);
    if (!t || (ref.includes('::') ? t.spec !== ref.split('::')[0] : false) || t.name === t.spec) {
      throw new Unsupported(`${from.spec}::${from.name}`, `type reference ${ref}`);
    }
    return t;
  }

  private enumVar(from: TypeInfo, ref: string): string {
    const key = ref.includes('::') ? ref : `${from.spec}::${ref}`;
    const e = this.enums.get(key);
    if (!e) throw new Unsupported(`${from.spec}::${from.name}`, `enum reference ${ref}`);
    return `vs_${e.spec}_${e.name}`;
  }

  // ---- expressions -------------------------------------------------------------------------

  /** Translates a Kaitai expression to Lua, in the context of type `t` before field `upTo`. */
  expr(t: TypeInfo, src: Json, upTo: number, depth = 0): string {
    const where = `${t.spec}::${t.name}`;
    if (typeof src === 'number') return String(src);
    if (typeof src !== 'string') throw new Unsupported(where, `expression ${JSON.stringify(src)}`);
    if (depth > 8) throw new Unsupported(where, 'deeply recursive instances');
    const toks = src.match(/0x[0-9a-fA-F_]+|\d+|[A-Za-z_][A-Za-z0-9_]*|>>|<<|<=|>=|==|!=|[-+*/%&|^()<>?:.]|\S/g) ?? [];
    let i = 0;
    const peek = (): string | undefined => toks[i];
    const next = (): string => {
      const tk = toks[i++];
      if (tk === undefined) throw new Unsupported(where, `truncated expression ${JSON.stringify(src)}`);
      return tk;
    };
    const seq: Json[] = t.ksy.seq ?? [];
    const ident = (name: string): string => {
      let member: string | undefined;
      if (peek() === '.') { next(); member = next(); }
      if (name === '_io' && member === 'size') return 'tvb:len()';
      const idx = seq.findIndex((f) => f.id === name);
      if (idx >= 0) {
        const f = seq[idx];
        if (idx >= upTo) throw new Unsupported(where, `forward reference to ${name} in ${JSON.stringify(src)}`);
        const m = typeof f.type === 'string' ? INT_RE.exec(f.type) : null;
        if (!m || f.repeat !== undefined) throw new Unsupported(where, `reference to non-integer field ${name}`);
        if (m[1] === '8') throw new Unsupported(where, `u8 field ${name} in an expression (Lua numbers are doubles)`);
        if (f.enum !== undefined && member !== 'to_i') throw new Unsupported(where, `enum field ${name} without .to_i`);
        if (f.enum === undefined && member !== undefined) throw new Unsupported(where, `${name}.${member}`);
        return `v.${name}`;
      }
      if (member !== undefined) throw new Unsupported(where, `${name}.${member}`);
      const inst = t.ksy.instances?.[name];
      if (inst !== undefined) {
        if (Object.keys(inst).some((k) => k !== 'value' && k !== 'doc')) throw new Unsupported(where, `non-value instance ${name}`);
        return `(${this.expr(t, inst.value, upTo, depth + 1)})`;
      }
      const param = (t.ksy.params ?? []).find((p: Json) => p.id === name);
      if (param) {
        if (!INT_RE.test(String(param.type)) || param.type === 'u8') throw new Unsupported(where, `param ${name} of type ${param.type}`);
        return `p.${name}`;
      }
      throw new Unsupported(where, `name ${name} in ${JSON.stringify(src)}`);
    };
    const primary = (): string => {
      const tk = next();
      if (tk === '(') { const e = ternary(); if (next() !== ')') throw new Unsupported(where, `expression ${JSON.stringify(src)}`); return `(${e})`; }
      if (tk === 'not') return `(not ${primary()})`;
      if (tk === 'true' || tk === 'false') return tk;
      if (/^0x/.test(tk)) return String(parseInt(tk.slice(2).replace(/_/g, ''), 16));
      if (/^\d+$/.test(tk)) return tk;
      if (/^[A-Za-z_]/.test(tk)) return ident(tk);
      throw new Unsupported(where, `token ${JSON.stringify(tk)} in ${JSON.stringify(src)}`);
    };
    // Kaitai precedence, loosest first.
    const levels: string[][] = [['or'], ['and'], ['==', '!=', '<', '<=', '>', '>='], ['|', '^'], ['&'], ['<<', '>>'], ['+', '-'], ['*', '/', '%']];
    const bin = (op: string, a: string, b: string): string => {
      switch (op) {
        case 'or': case 'and': case '+': case '-': case '*': case '%': case '<': case '<=': case '>': case '>=': case '==':
          return `(${a} ${op} ${b})`;
        case '!=': return `(${a} ~= ${b})`;
        case '/': return `math.floor(${a} / ${b})`;
        case '&': return `bit32.band(${a}, ${b})`;
        case '|': return `bit32.bor(${a}, ${b})`;
        case '^': return `bit32.bxor(${a}, ${b})`;
        case '<<': return `bit32.lshift(${a}, ${b})`;
        case '>>': return `bit32.rshift(${a}, ${b})`;
        default: throw new Unsupported(where, `operator ${op}`);
      }
    };
    const level = (n: number): string => {
      if (n === levels.length) return primary();
      let a = level(n + 1);
      while (peek() !== undefined && levels[n]!.includes(peek()!)) { const op = next(); a = bin(op, a, level(n + 1)); }
      return a;
    };
    const ternary = (): string => {
      const c = level(0);
      if (peek() !== '?') return c;
      next();
      const a = ternary();
      if (next() !== ':') throw new Unsupported(where, `expression ${JSON.stringify(src)}`);
      return `iif(${c}, ${a}, ${ternary()})`;
    };
    const out = ternary();
    if (i !== toks.length) throw new Unsupported(where, `trailing tokens in ${JSON.stringify(src)}`);
    return out;
  }

  // ---- fields --------------------------------------------------------------------------------

  private hf(t: TypeInfo, f: Json): string { return `hf_${t.name}_${f.id}`; }

  private declareFields(): void {
    for (const t of this.types.values()) {
      for (const f of t.ksy.seq ?? []) {
        for (const k of Object.keys(f)) if (!FIELD_KEYS.has(k)) throw new Unsupported(`${t.spec}::${t.name}.${f.id}`, `key ${k}`);
        const abbr = luaStr(`mccache.${t.name}.${f.id}`);
        const blurb = luaStr(String(f.doc ?? '').split('\n')[0]!.trim());
        const m = typeof f.type === 'string' ? INT_RE.exec(f.type) : null;
        let decl: string;
        if (m) {
          const vs = f.enum !== undefined ? this.enumVar(t, f.enum) : 'nil';
          decl = `ProtoField.uint${Number(m[1]) * 8}(${abbr}, ${luaStr(f.id)}, base.DEC, ${vs}, nil, ${blurb})`;
        } else if (f.size !== undefined || f['size-eos'] === true) {
          decl = `ProtoField.bytes(${abbr}, ${luaStr(f.id)}, base.NONE, ${blurb})`;
        } else if (f.type !== undefined) {
          decl = `ProtoField.none(${abbr}, ${luaStr(f.id)}, ${blurb})`;
        } else {
          throw new Unsupported(`${t.spec}::${t.name}.${f.id}`, 'a field without type or size');
        }
        if (f.enum !== undefined && !m) throw new Unsupported(`${t.spec}::${t.name}.${f.id}`, 'an enum on a non-integer');
        this.lines.push(`local ${this.hf(t, f)} = ${decl}`);
        this.lines.push(`table.insert(all_fields, ${this.hf(t, f)})`);
      }
    }
  }

  /** Lua statements that dissect one instance of field `f` (one repetition). */
  private oneField(t: TypeInfo, f: Json, idx: number, store: boolean, ind: string, suffix = ''): string[] {
    const where = `${t.spec}::${t.name}.${f.id}`;
    const hf = this.hf(t, f);
    const add = t.endian === 'le' ? 'add_le' : 'add';
    const m = typeof f.type === 'string' ? INT_RE.exec(f.type) : null;
    if (m) {
      if (f.size !== undefined || f['size-eos'] !== undefined) throw new Unsupported(where, 'size on an integer');
      const n = Number(m[1]);
      const endian = m[2] ?? t.endian;
      const read = n === 8 ? (endian === 'le' ? 'le_uint64' : 'uint64') : endian === 'le' ? 'le_uint' : 'uint';
      const out = [`${ind}do local r = tvb:range(off, ${n}); local it = tree:${endian === 'le' ? 'add_le' : 'add'}(${hf}, r)${suffix}`];
      if (store) out.push(`${ind}  v.${f.id} = r:${read}()`);
      out.push(`${ind}  off = off + ${n} end`);
      return out;
    }
    let size: string | undefined;
    if (f['size-eos'] === true) size = '(tvb:len() - off)';
    else if (f.size !== undefined) size = `(${this.expr(t, f.size, idx)})`;
    const sub = (typeRef: string): string[] => {
      const st = this.resolveType(t, typeRef);
      if (size !== undefined) {
        return [`${ind}do local n = ${size}; local r = rng(tvb, off, n); local it = tree:${add}(${hf}, r)${suffix}`,
          `${ind}  if n > 0 then d_${st.name}(r:tvb(), 0, it, {}) end; v.${f.id}__off = off; v.${f.id}__len = n; off = off + n end`];
      }
      return [`${ind}do local it = tree:add(${hf}, rng(tvb, off, 0))${suffix}; local start = off`,
        `${ind}  off = d_${st.name}(tvb, off, it, {}); it:set_len(off - start) end`];
    };
    if (typeof f.type === 'string') return sub(f.type);
    if (f.type !== undefined) {
      const sw = f.type;
      if (Object.keys(sw).some((k) => k !== 'switch-on' && k !== 'cases')) throw new Unsupported(where, 'switch keys');
      const on = this.expr(t, sw['switch-on'], idx);
      const out: string[] = [`${ind}do local sw = ${on}`];
      let first = true;
      let dflt: string | undefined;
      for (const [k, typeRef] of Object.entries<Json>(sw.cases)) {
        if (k === '_') { dflt = typeRef; continue; }
        let key: string;
        if (/^\d+$/.test(k)) key = k;
        else if (k === 'true' || k === 'false') key = k;
        else throw new Unsupported(where, `switch case ${k}`);
        out.push(`${ind}${first ? 'if' : 'elseif'} sw == ${key} then`, ...sub(typeRef));
        first = false;
      }
      out.push(`${ind}else`);
      if (dflt !== undefined) out.push(...sub(dflt));
      else if (size !== undefined) {
        out.push(`${ind}  local n = ${size}; local it = tree:${add}(${hf}, rng(tvb, off, n))${suffix}; v.${f.id}__off = off; v.${f.id}__len = n; off = off + n`);
      } else {
        out.push(`${ind}  error("no ${f.id} type for " .. tostring(sw))`);
      }
      out.push(`${ind}end end`);
      return out;
    }
    if (size === undefined) throw new Unsupported(where, 'a field without type or size');
    return [`${ind}do local n = ${size}; local it = tree:${add}(${hf}, rng(tvb, off, n))${suffix}; v.${f.id}__off = off; v.${f.id}__len = n; off = off + n end`];
  }

  private typeFunction(t: TypeInfo): void {
    const seq: Json[] = t.ksy.seq ?? [];
    const isDatagram = t.name === DATAGRAM_SPEC;
    this.lines.push('', `-- ${t.spec}::${t.name}`, `d_${t.name} = function(tvb, off, tree, p)`, '  local v = {}');
    let headerEnd = 0;
    if (isDatagram) {
      let bytes = 0;
      while (headerEnd < seq.length && typeof seq[headerEnd].type === 'string' && INT_RE.test(seq[headerEnd].type)) {
        bytes += Number(INT_RE.exec(seq[headerEnd].type)![1]);
        headerEnd++;
      }
      if (bytes !== HEADER_SIZE) throw new Unsupported(t.spec, `a header of ${bytes} bytes (spec/README.md says ${HEADER_SIZE})`);
      this.lines.push(`  local body_tree = tree`, `  tree = body_tree:add(hf_header, rng(tvb, off, ${HEADER_SIZE}))`);
    }
    seq.forEach((f, idx) => {
      if (isDatagram && idx === headerEnd) this.lines.push('  tree = body_tree');
      if (f.repeat === undefined) {
        this.lines.push(...this.oneField(t, f, idx, true, '  '));
      } else {
        if (f.repeat !== 'expr') throw new Unsupported(`${t.spec}::${t.name}.${f.id}`, `repeat: ${f.repeat}`);
        const count = this.expr(t, f['repeat-expr'], idx);
        this.lines.push(`  for i = 0, ${count} - 1 do`, ...this.oneField(t, f, idx, false, '    ', '; it:append_text(" [" .. i .. "]")'), '  end');
      }
    });
    this.lines.push('  return off, v', 'end');
  }

  generate(): string {
    const dg = this.specs[DATAGRAM_SPEC];
    const v0 = this.specs[V0_SPEC];
    const magic = dg?.seq?.[0];
    const v0magic = v0?.seq?.[0];
    if (!dg || !this.specs[MESSAGE_SPEC] || magic?.id !== 'magic' || typeof magic.valid !== 'number' || magic.type !== 'u2') {
      throw new Unsupported(DATAGRAM_SPEC, 'a datagram spec without a leading u2 magic with a fixed valid value');
    }
    if (!v0 || v0magic?.id !== 'magic' || typeof v0magic.valid !== 'number' || v0magic.type !== 'u1') {
      throw new Unsupported(V0_SPEC, 'a v0 spec without a leading u1 magic with a fixed valid value');
    }
    const msgParams = (this.specs[MESSAGE_SPEC].params ?? []).map((q: Json) => q.id);
    if (msgParams.join(',') !== 'op_code') throw new Unsupported(MESSAGE_SPEC, `params ${msgParams.join(',')}`);
    const dgType = this.types.get(DATAGRAM_SPEC)!;
    const dgSeq: Json[] = dg.seq;
    const wholeMessage = this.expr(dgType, 'not is_encrypted and num_frags == 1 and frag_index == 0', dgSeq.length);
    const opField = dgSeq.find((f) => f.id === 'op_code');
    if (!opField?.enum) throw new Unsupported(DATAGRAM_SPEC, 'op_code without an enum');
    const opVs = this.enumVar(dgType, opField.enum);

    const L = this.lines;
    L.push(
      '-- McCache wire protocol v1 dissector for Wireshark, generated by `mccache dissector`',
      '-- (runtime/cli/dissector.ts) from spec/*.ksy. Do not edit; regenerate instead.',
      `-- Install: copy to ~/.local/lib/wireshark/plugins/ or run tshark -X lua_script:mccache.lua`,
      `-- Protocol mccache (display filter "mccache") on UDP port ${this.port}.`,
      '',
      'local mccache = Proto("mccache", "McCache")',
      'local all_fields = {}',
      'local function iif(c, a, b) if c then return a else return b end end',
      '-- A range of n bytes at off; zero-length ranges at the very end of a buffer are allowed.',
      'local function rng(tvb, off, n)',
      '  if n == 0 and off >= tvb:len() then return tvb:range(0, 0) end',
      '  return tvb:range(off, n)',
      'end',
      '',
    );
    for (const [key, e] of [...this.enums.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      L.push(`-- enum ${key}`, `local vs_${e.spec}_${e.name} = {`);
      for (const [n, name] of e.values) L.push(`  [${n}] = ${luaStr(name)},`);
      L.push('}');
    }
    L.push('',
      `local hf_header = ProtoField.none("mccache.header", "header", "The ${HEADER_SIZE}-byte datagram header")`,
      'table.insert(all_fields, hf_header)',
      'local hf_message = ProtoField.none("mccache.message", "message", "The message carried by a single-fragment unencrypted datagram")',
      'table.insert(all_fields, hf_message)');
    this.declareFields();
    L.push('mccache.fields = all_fields', '');
    L.push('local ' + [...this.types.keys()].map((n) => `d_${n}`).join(', '));
    for (const t of this.types.values()) this.typeFunction(t);
    L.push('',
      'function mccache.dissector(tvb, pinfo, tree)',
      '  local len = tvb:len()',
      `  if len >= 1 and tvb(0, 1):uint() == ${v0magic.valid} then`,
      '    pinfo.cols.protocol = "MCCACHE"',
      '    pinfo.cols.info = "McCache-for-Python v0 fragment"',
      '    local root = tree:add(mccache, tvb())',
      `    local ok, err = pcall(d_${V0_SPEC}, tvb, 0, root, {})`,
      '    if not ok then root:add_expert_info(PI_MALFORMED, PI_ERROR, "malformed: " .. tostring(err)) end',
      '    return len',
      '  end',
      `  if len < 2 or tvb(0, 2):uint() ~= ${magic.valid} then return 0 end`,
      '  pinfo.cols.protocol = "MCCACHE"',
      '  local root = tree:add(mccache, tvb())',
      '  local ok, err = pcall(function()',
      `    local _, v = d_${DATAGRAM_SPEC}(tvb, 0, root, {})`,
      `    pinfo.cols.info = (${opVs}[v.op_code] or ("op " .. v.op_code)) .. " seq=" .. v.msg_seq .. " frag=" .. v.frag_index .. "/" .. v.num_frags`,
      `    if ${wholeMessage} and v.fragment__len ~= nil and v.fragment__len > 0 then`,
      '      local r = tvb:range(v.fragment__off, v.fragment__len)',
      '      local it = root:add(hf_message, r)',
      `      d_${MESSAGE_SPEC}(r:tvb(), 0, it, { op_code = v.op_code })`,
      '    end',
      '  end)',
      '  if not ok then root:add_expert_info(PI_MALFORMED, PI_ERROR, "malformed: " .. tostring(err)) end',
      '  return len',
      'end',
      '',
      `DissectorTable.get("udp.port"):add(${this.port}, mccache)`,
      '');
    return L.join('\n');
  }
}

export function generateDissector(opts: { port?: number; specs?: Record<string, Json> } = {}): string {
  const port = opts.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`dissector: bad port ${port}`);
  return new Generator(opts.specs ?? loadSpecs(), port).generate();
}

export function dissectorCommand(args: string[], out: (s: string) => void): number {
  let port = DEFAULT_PORT;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--port' && args[i + 1] !== undefined && /^\d+$/.test(args[i + 1]!) && Number(args[i + 1]) >= 1 && Number(args[i + 1]) <= 65535) {
      port = Number(args[++i]);
    } else {
      out(`mccache dissector: ${a === '--port' ? '--port needs a number 1..65535' : `unknown argument ${JSON.stringify(a)}`}`);
      return 2;
    }
  }
  out(generateDissector({ port }).replace(/\n$/, ''));
  return 0;
}
