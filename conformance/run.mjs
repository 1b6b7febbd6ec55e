#!/usr/bin/env node
// Runs the conformance suite (conformance/README.md) against one or more testees and compares
// what they print with the expected results beside each vector.
//
//   node conformance/run.mjs [--python PYTHON] [--testee "CMD ARGS" [--name NAME]] [--show N]
//
// Without --testee it runs our TypeScript testee (`node dist/runtime/cli/testee.js`, needs
// `make build`) and, with --python, the Python one (conformance/python/testee.py). With
// --testee it runs only that command, named NAME (default "custom") for its known-failure list
// conformance/known-failures/NAME.txt. Each testee is started twice: once with every vector
// file, once with fragmentation.json. Exit status 0 when every testee agrees with every
// expectation (known failures excepted), 1 otherwise.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { isDeepStrictEqual } from 'node:util';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const VECTORS = path.join('conformance', 'vectors');
const KINDS = ['datagram', 'message', 'python_v0'];

function parseArgs(argv) {
  const opts = { python: undefined, testee: undefined, name: 'custom', show: 10 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) usage(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--python') opts.python = next();
    else if (arg === '--testee') opts.testee = next();
    else if (arg === '--name') opts.name = next();
    else if (arg === '--show') opts.show = Number(next());
    else usage(`unknown argument ${arg}`);
  }
  return opts;
}
function usage(why) {
  console.error(`run.mjs: ${why}\nusage: node conformance/run.mjs [--python PYTHON] [--testee "CMD ARGS" [--name NAME]] [--show N]`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// The suite: vectors with their expectations, and the fragmentation cases

function loadSuite() {
  const problems = [];
  const vectors = [];
  for (const kind of KINDS) {
    const dir = path.join(ROOT, VECTORS, kind);
    for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.hex')).sort()) {
      const name = `${kind}/${file}`;
      const verdict = file.slice(0, 2);
      const jsonPath = path.join(dir, file.replace(/\.hex$/, '.json'));
      if (!fs.existsSync(jsonPath)) { problems.push(`${name}: no .json beside it`); continue; }
      const expected = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
      const isError = typeof expected?.error === 'string' && Object.keys(expected).length === 1;
      if (verdict === 'y_' && isError) problems.push(`${name}: a y_ vector expects an error`);
      else if (verdict === 'n_' && !isError) problems.push(`${name}: an n_ vector must expect {"error": ...}`);
      else if (verdict !== 'y_' && verdict !== 'n_') problems.push(`${name}: name must start with y_ or n_`);
      else vectors.push({ name, file: path.join(VECTORS, kind, file), verdict, expected });
    }
  }
  const fragmentation = JSON.parse(fs.readFileSync(path.join(ROOT, VECTORS, 'fragmentation.json'), 'utf8')).cases;
  return { vectors, fragmentation, problems };
}

// ---------------------------------------------------------------------------------------------
// Running a testee

function run(command, args) {
  // The command is shell words ("python3 port/testee.py"); the file names are passed as
  // arguments, never through the shell.
  const r = spawnSync('/bin/sh', ['-c', `${command} "$@"`, 'testee', ...args], {
    cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 30,
  });
  if (r.error) return { crashed: `could not start: ${r.error.message}` };
  if (r.status !== 0) return { crashed: `exit status ${r.status ?? r.signal}: ${r.stderr.trim().split('\n').slice(-5).join('\n')}` };
  return { stdout: r.stdout };
}

function runTestee(testee, suite) {
  const results = new Map(); // case name -> { pass, why }
  const decode = run(testee.command, ['decode', ...suite.vectors.map((v) => v.file)]);
  const lines = new Map();
  if (decode.crashed) {
    for (const v of suite.vectors) results.set(v.name, { pass: false, why: `testee crashed: ${decode.crashed}` });
  } else {
    for (const line of decode.stdout.split('\n').filter((l) => l.trim() !== '')) {
      let row;
      try { row = JSON.parse(line); } catch { row = undefined; }
      if (row && typeof row.file === 'string') lines.set(row.file, row);
    }
    for (const v of suite.vectors) results.set(v.name, judge(v, lines.get(v.name)));
  }

  const plan = run(testee.command, ['plan', path.join(VECTORS, 'fragmentation.json')]);
  let planned;
  if (!plan.crashed) {
    try { planned = JSON.parse(plan.stdout); } catch { planned = undefined; }
  }
  suite.fragmentation.forEach((c, i) => {
    const name = `fragmentation.json#${c.name}`;
    if (plan.crashed) return results.set(name, { pass: false, why: `testee crashed: ${plan.crashed}` });
    if (!Array.isArray(planned)) return results.set(name, { pass: false, why: 'plan output is not a JSON array' });
    const got = planned[i];
    const diff = difference(c.expected, got);
    results.set(name, diff === undefined ? { pass: true }
      : { pass: false, why: `mtu ${c.mtu}, len_message ${c.len_message}, encrypted ${c.encrypted}: ${diff}` });
  });
  return results;
}

function judge(vector, row) {
  if (row === undefined) return { pass: false, why: 'no output line for this file' };
  if (vector.verdict === 'n_') {
    if (row.ok !== false) return { pass: false, why: `accepted, expected ${vector.expected.error}` };
    if (row.error !== vector.expected.error) return { pass: false, why: `rejected with ${row.error}, expected ${vector.expected.error}${detail(row)}` };
    return { pass: true };
  }
  if (row.ok !== true) return { pass: false, why: `rejected with ${row.error}, expected acceptance${detail(row)}` };
  const diff = difference(vector.expected, row.value);
  return diff === undefined ? { pass: true } : { pass: false, why: diff };
}
const detail = (row) => (row.detail ? ` (${String(row.detail).split('\n')[0]})` : '');

/**
 * Deep equality of two JSON values: same types (a number never equals a string), same keys,
 * same array order. Object key order is not compared (a port's JSON library may sort keys).
 * Returns a description of the first difference, or undefined.
 */
function difference(expected, actual, at = '$') {
  if (isDeepStrictEqual(expected, actual)) return undefined;
  const kind = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  if (kind(expected) !== kind(actual)) return `${at}: expected ${show(expected)}, got ${show(actual)}`;
  if (kind(expected) === 'array') {
    if (expected.length !== actual.length) return `${at}: expected ${expected.length} item(s), got ${actual.length}`;
    for (let i = 0; i < expected.length; i++) {
      const d = difference(expected[i], actual[i], `${at}[${i}]`);
      if (d) return d;
    }
  }
  if (kind(expected) === 'object') {
    for (const k of Object.keys(expected)) {
      if (!(k in actual)) return `${at}.${k}: missing`;
      const d = difference(expected[k], actual[k], `${at}.${k}`);
      if (d) return d;
    }
    for (const k of Object.keys(actual)) if (!(k in expected)) return `${at}.${k}: unexpected key`;
  }
  return `${at}: expected ${show(expected)}, got ${show(actual)}`;
}
function show(v) {
  const s = JSON.stringify(v) ?? 'undefined';
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

// ---------------------------------------------------------------------------------------------
// Known failures: conformance/known-failures/<testee>.txt, one case per line ("datagram/n_x.hex",
// "fragmentation.json#<case name>"). A line starting with # is a comment, and so is " # ..." after a case.

function knownFailures(name) {
  const file = path.join(ROOT, 'conformance', 'known-failures', `${name}.txt`);
  if (!fs.existsSync(file)) return new Set();
  return new Set(fs.readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.replace(/\s+#.*$/, '')));
}

function report(testee, suite, results, show) {
  const known = knownFailures(testee.name);
  const failures = [];
  let passed = 0, expectedFailures = 0;
  for (const [name, r] of results) {
    if (known.has(name)) {
      if (r.pass) failures.push({ name, why: `listed in known-failures/${testee.name}.txt but passes: remove it from the list` });
      else expectedFailures++;
    } else if (r.pass) passed++;
    else failures.push({ name, why: r.why });
  }
  for (const name of known) {
    if (!results.has(name)) failures.push({ name, why: `listed in known-failures/${testee.name}.txt but no such case` });
  }
  const counts = {};
  for (const v of suite.vectors) counts[v.name.split('/')[0]] = (counts[v.name.split('/')[0]] ?? 0) + 1;
  const total = results.size;
  console.log(`${testee.name}: ${failures.length === 0 ? 'ok' : 'FAIL'} -- ${passed}/${total} passed`
    + `${expectedFailures ? `, ${expectedFailures} known failure(s)` : ''}${failures.length ? `, ${failures.length} failure(s)` : ''}`
    + ` (${KINDS.map((k) => `${counts[k] ?? 0} ${k}`).join(', ')}, ${suite.fragmentation.length} fragmentation)`);
  for (const f of failures.slice(0, show)) console.log(`  ${f.name}: ${f.why}`);
  if (failures.length > show) console.log(`  ... and ${failures.length - show} more (--show N to see more)`);
  return failures.length === 0;
}

// ---------------------------------------------------------------------------------------------

const opts = parseArgs(process.argv.slice(2));
const suite = loadSuite();
if (suite.problems.length > 0) {
  for (const p of suite.problems) console.error(`suite: ${p}`);
  process.exit(1);
}
const testees = opts.testee !== undefined
  ? [{ name: opts.name, command: opts.testee }]
  : [
    { name: 'typescript', command: `"${process.execPath}" dist/runtime/cli/testee.js` },
    ...(opts.python ? [{ name: 'python', command: `"${opts.python}" conformance/python/testee.py` }] : []),
  ];
let ok = true;
for (const testee of testees) {
  ok = report(testee, suite, runTestee(testee, suite), opts.show) && ok;
}
process.exit(ok ? 0 : 1);
