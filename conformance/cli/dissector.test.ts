/**
 * `mccache dissector`: the Wireshark Lua dissector generated from spec/*.ksy
 * (runtime/cli/dissector.ts).
 *
 * (a) The Lua is deterministic, names every seq field of every type, honours --port, and the
 *     generator refuses spec features it does not support.
 * (b) With tshark installed (Debian package tshark; `make test` installs it), every accepted
 *     datagram vector (conformance/vectors/datagram/y_*) and Python v0 vector is written into a
 *     pcap (raw IPv4/UDP to 239.255.1.1, built in memory: nothing is sent), dissected with
 *     `tshark -X lua_script:` and compared field by field with the vector's canonical JSON.
 *     Without tshark these tests print why and skip.
 *
 * tshark 4.0 on Debian runs Lua scripts as root (its init.lua sets
 * run_user_scripts_when_superuser = true), so no override is needed; HOME points at an empty
 * folder so personal Wireshark settings or plugins cannot change the result, and -n turns off
 * name resolution.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { DEFAULT_PORT, generateDissector, loadSpecs } from '../../runtime/cli/dissector';
import { main } from '../../runtime/cli/main';
import { VECTOR_DIR, pcapOf, readVectorHex } from './dissector-capture';
import fieldsJson = require('../../generated/fields.json');

interface FieldInfo { id: string; type: string; enum?: string; repeat?: string }
const TYPES = new Map<string, FieldInfo[]>(fieldsJson.types.map((t) => [t.type, t.seq as FieldInfo[]]));
const V0_DIR = path.join(VECTOR_DIR, '..', 'python_v0');

describe('mccache dissector: generated Lua', () => {
  it('is deterministic and defaults to UDP port 4000', () => {
    const a = generateDissector();
    expect(generateDissector()).to.equal(a);
    expect(DEFAULT_PORT).to.equal(4000);
    expect(a).to.contain('DissectorTable.get("udp.port"):add(4000, mccache)');
    expect(a).to.contain('Proto("mccache", "McCache")');
  });

  it('declares a ProtoField mccache.<type>.<field> for every seq field of every type', () => {
    const lua = generateDissector();
    let n = 0;
    for (const [type, seq] of TYPES) {
      for (const f of seq) {
        expect(lua, `${type}.${f.id}`).to.contain(`"mccache.${type}.${f.id}"`);
        n++;
      }
    }
    expect(n).to.be.greaterThan(60);
  });

  it('writes value_string tables from the .ksy enums', () => {
    const lua = generateDissector();
    expect(lua).to.match(/local vs_mccache_common_op_code = \{[^}]*\[67\] = "nak",/);
    expect(lua).to.match(/ProtoField\.uint8\("mccache\.mccache_datagram\.op_code", "op_code", base\.DEC, vs_mccache_common_op_code,/);
  });

  it('`mccache dissector --port N` prints it for that port; bad arguments exit 2', () => {
    let text = '';
    expect(main(['dissector', '--port', '5000'], (s) => { text += s + '\n'; })).to.equal(0);
    expect(text).to.contain('DissectorTable.get("udp.port"):add(5000, mccache)');
    expect(text).to.equal(generateDissector({ port: 5000 }));
    for (const bad of [['--port'], ['--port', '0'], ['--port', '65536'], ['--port', 'x'], ['--bogus']]) {
      const lines: string[] = [];
      expect(main(['dissector', ...bad], (s) => lines.push(s)), bad.join(' ')).to.equal(2);
    }
  });

  it('refuses spec features it cannot translate instead of guessing', () => {
    const mutate = (edit: (specs: Record<string, any>) => void): (() => string) => { // eslint-disable-line @typescript-eslint/no-explicit-any
      const specs = JSON.parse(JSON.stringify(loadSpecs()));
      edit(specs);
      return () => generateDissector({ specs });
    };
    expect(mutate((s) => { s.mccache_message.types.ack.seq[1].repeat = 'eos'; })).to.throw(/repeat: eos/);
    expect(mutate((s) => { s.mccache_message.types.ack.seq[1]['repeat-expr'] = '_parent.n'; })).to.throw(/not supported/);
    expect(mutate((s) => { s.mccache_message.types.partial.seq[2].size = 'num_frags.foo(1)'; })).to.throw(/not supported/);
    expect(mutate((s) => { s.mccache_message.types.nak.seq[1].if = 'true'; })).to.throw(/key if/);
    expect(mutate((s) => { s.mccache_datagram.seq[1].type = 'u2'; })).to.throw(/header of 29 bytes/);
    expect(mutate((s) => { s.mccache_message.types.ack.seq[1]['repeat-expr'] = 'entries'; })).to.throw(/forward reference/);
  });
});

// ---- tshark ------------------------------------------------------------------------------------

interface PdmlNode { name: string; attrs: Record<string, string>; children: PdmlNode[] }

const unescape = (s: string): string =>
  s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#x27;/g, "'").replace(/&amp;/g, '&');

/** Each packet's mccache protocol item, as a tree of fields (PDML from tshark -T pdml). */
function mccacheTrees(pdml: string): (PdmlNode | undefined)[] {
  return pdml.split('<packet>').slice(1).map((packet) => {
    const start = packet.indexOf('<proto name="mccache"');
    if (start < 0) return undefined;
    const body = packet.slice(start, packet.indexOf('</proto>', start));
    const root: PdmlNode = { name: 'mccache', attrs: {}, children: [] };
    const stack = [root];
    for (const m of body.matchAll(/<field\b([^>]*?)(\/?)>|<\/field>/g)) {
      if (m[0] === '</field>') { stack.pop(); continue; }
      const attrs: Record<string, string> = {};
      for (const a of m[1]!.matchAll(/(\w+)="([^"]*)"/g)) attrs[a[1]!] = unescape(a[2]!);
      const node: PdmlNode = { name: attrs.name ?? '', attrs, children: [] };
      // Wireshark's hidden placeholder for a Lua protocol item is not a field of ours.
      if (node.name !== '_ws.lua.fake') stack[stack.length - 1]!.children.push(node);
      if (m[2] !== '/') stack.push(node);
    }
    return root;
  });
}

/** The canonical-JSON shape of a list of sibling fields of one type (numbers as strings). */
function canonical(children: PdmlNode[], typeName?: string): Record<string, unknown> {
  const type = typeName ?? children[0]?.name.split('.')[1] ?? '?';
  const seq = TYPES.get(type);
  if (!seq) throw new Error(`unknown type ${type}`);
  const out: Record<string, unknown> = {};
  for (const f of seq) if (f.repeat) out[f.id] = [];
  for (const c of children) {
    const [proto, t, id] = c.name.split('.');
    expect(proto, c.name).to.equal('mccache');
    expect(t, c.name).to.equal(type);
    const f = seq.find((x) => x.id === id);
    if (!f) throw new Error(`field ${c.name} is not in ${type}`);
    let value: unknown;
    if (c.children.length > 0) value = canonical(c.children);
    else if (/^u[1248]/.test(f.type)) {
      if (f.enum) value = /: (\S+) \(\d+\)$/.exec(c.attrs.showname ?? '')?.[1] ?? `unnamed ${c.attrs.show}`;
      else value = c.attrs.show;
    } else if (f.type === 'bytes' || f.type === 'switch') value = c.attrs.value ?? '';
    else value = canonical([], f.type.split('::').pop()); // a nested type with no fields: not in our specs
    if (f.repeat) (out[f.id] as unknown[]).push(value);
    else out[f.id] = value;
  }
  return out;
}

/** Numbers in a canonical tree as decimal strings, as tshark prints them. */
function stringify(v: unknown): unknown {
  if (typeof v === 'number') return String(v);
  if (Array.isArray(v)) return v.map(stringify);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, stringify(x)]));
  return v;
}

function datagramTree(root: PdmlNode): { datagram: unknown; message: unknown } {
  const header = root.children.find((c) => c.name === 'mccache.header');
  const message = root.children.find((c) => c.name === 'mccache.message');
  const rest = root.children.filter((c) => c.name.startsWith('mccache.mccache_datagram.'));
  expect(header, 'header subtree').to.not.equal(undefined);
  expect(header!.attrs.size).to.equal('28');
  return {
    datagram: canonical([...header!.children, ...rest], 'mccache_datagram'),
    message: message ? canonical(message.children, 'mccache_message') : null,
  };
}

const tsharkVersion = (() => {
  const r = spawnSync('tshark', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n')[0] : undefined;
})();

function runTshark(lua: string, payloads: Buffer[], port: number): (PdmlNode | undefined)[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mccache-dissector-'));
  try {
    fs.writeFileSync(path.join(dir, 'mccache.lua'), lua);
    fs.writeFileSync(path.join(dir, 'capture.pcap'), pcapOf(payloads, port));
    fs.mkdirSync(path.join(dir, 'home'));
    const r = spawnSync('tshark', ['-n', '-X', `lua_script:${path.join(dir, 'mccache.lua')}`, '-r', path.join(dir, 'capture.pcap'), '-T', 'pdml'], {
      encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, timeout: 60_000,
      env: { ...process.env, HOME: path.join(dir, 'home'), XDG_CONFIG_HOME: path.join(dir, 'home') },
    });
    const stderr = (r.stderr ?? '').split('\n').filter((l) => l.trim() !== '' && !/Running as user "root"/.test(l)).join('\n');
    expect(r.status, `tshark failed: ${stderr}`).to.equal(0);
    expect(stderr, 'tshark stderr').to.equal('');
    expect(r.stdout).to.not.match(/Lua Error|_ws\.lua\.error|_ws\.expert|_ws\.malformed|malformed:/);
    const trees = mccacheTrees(r.stdout);
    expect(trees.length, 'packets').to.equal(payloads.length);
    return trees;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('mccache dissector: tshark on captures built from the conformance vectors', function () {
  before(function () {
    if (!tsharkVersion) {
      console.log('    (skipped: tshark is not installed; `make test` installs the Debian package tshark)');
      this.skip();
    }
  });

  it('dissects every y_ datagram vector exactly as its canonical JSON, and every Python v0 vector', () => {
    const names = fs.readdirSync(VECTOR_DIR).filter((f) => /^y_.*\.hex$/.test(f)).sort().map((f) => f.slice(0, -4));
    const v0names = fs.readdirSync(V0_DIR).filter((f) => /^y_.*\.hex$/.test(f)).sort().map((f) => f.slice(0, -4));
    expect(names.length).to.be.greaterThan(40);
    expect(v0names.length).to.be.greaterThan(0);
    const payloads = [...names.map((n) => readVectorHex(path.join(VECTOR_DIR, n + '.hex'))),
      ...v0names.map((n) => readVectorHex(path.join(V0_DIR, n + '.hex')))];
    const trees = runTshark(generateDissector(), payloads, DEFAULT_PORT);
    let bodies = 0;
    names.forEach((n, i) => {
      const root = trees[i];
      expect(root, `${n}: no mccache protocol item`).to.not.equal(undefined);
      const expected = JSON.parse(fs.readFileSync(path.join(VECTOR_DIR, n + '.json'), 'utf8'));
      const actual = datagramTree(root!);
      expect(actual, n).to.deep.equal(stringify({ datagram: expected.datagram, message: expected.message }));
      if (expected.message) bodies++;
    });
    expect(bodies, 'vectors with a dissected body').to.be.greaterThan(30);
    v0names.forEach((n, i) => {
      const root = trees[names.length + i];
      expect(root, `${n}: no mccache protocol item`).to.not.equal(undefined);
      const expected = JSON.parse(fs.readFileSync(path.join(V0_DIR, n + '.json'), 'utf8'));
      expect(canonical(root!.children, 'mccache_v0_header'), n).to.deep.equal(stringify(expected));
    });
  });

  it('registers on the --port given and leaves other ports alone', () => {
    const p = readVectorHex(path.join(VECTOR_DIR, 'y_heartbeat.hex'));
    const [onPort] = runTshark(generateDissector({ port: 5000 }), [p], 5000);
    expect(onPort, 'dissected on 5000').to.not.equal(undefined);
    const [elsewhere] = runTshark(generateDissector({ port: 5000 }), [p], 4000);
    expect(elsewhere, 'not dissected on 4000').to.equal(undefined);
  });
});
