/**
 * The README's decoder examples are tested (STYLE.md house rule 10): every ```text block of
 * "Debugging with packet captures" that starts with `$ mccache ...` is run (in-process, with
 * only the environment its command line sets), and its lines must be the real output, trimmed:
 * a line that is `...` (optionally indented, optionally followed by a comment) stands for output
 * left out; the lines between two such markers must appear consecutively and in order, the
 * first at the very start of the output unless the block starts with `...`, the last at its
 * very end unless the block ends with `...`. A trailing `; echo "exit $?"` prints the exit code.
 * Trailing blanks are ignored (editors strip them).
 *
 * The capture the examples decode, conformance/cli/captures/lo.pcap, is committed: real traffic
 * of two McCache processes recorded by conformance/cli/readme-capture.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { main } from '../../runtime/cli/main';

const ROOT = path.join(__dirname, '..', '..');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const ELIDED = /^\s*\.\.\.(\s.*)?$/;

function section(title: string): string {
  const start = README.indexOf(`## ${title}\n`);
  expect(start, `README section "${title}"`).to.be.at.least(0);
  const end = README.indexOf('\n## ', start + 1);
  return README.slice(start, end < 0 ? undefined : end);
}

interface Example { command: string; expected: string[] }

function examples(): Example[] {
  const out: Example[] = [];
  for (const m of section('Debugging with packet captures').matchAll(/```text\n(\$ [^\n]*)\n([\s\S]*?)```/g)) {
    out.push({ command: m[1]!.slice(2), expected: m[2]!.replace(/\n$/, '').split('\n').map((l) => l.trimEnd()) });
  }
  return out;
}

/** Runs `[NAME=value ...] mccache ARGS [; echo "exit $?"]`; relative paths are the repository's. */
function run(command: string): string[] {
  const echo = command.endsWith('; echo "exit $?"');
  const words = command.replace(/; echo "exit \$\?"$/, '').split(/\s+/);
  const env: Record<string, string> = {};
  while (/^[A-Z_]+=/.test(words[0]!)) {
    const w = words.shift()!;
    env[w.slice(0, w.indexOf('='))] = w.slice(w.indexOf('=') + 1);
  }
  expect(words.shift(), command).to.equal('mccache');
  const args = words.map((w) => (!w.startsWith('-') && fs.existsSync(path.join(ROOT, w)) ? path.join(ROOT, w) : w));
  const lines: string[] = [];
  const code = main(args, (s) => lines.push(...s.split('\n')), env);
  if (echo) lines.push(`exit ${code}`);
  return lines.map((l) => l.trimEnd());
}

/** Throws, naming the chunk, unless `expected` (chunks between `...` lines) is `actual` trimmed as the header says. */
function matchTrimmed(expected: string[], actual: string[]): void {
  const chunks: string[][] = [[]];
  for (const l of expected) {
    if (ELIDED.test(l)) chunks.push([]);
    else chunks[chunks.length - 1]!.push(l);
  }
  const anchoredStart = !ELIDED.test(expected[0] ?? '...');
  const anchoredEnd = !ELIDED.test(expected[expected.length - 1] ?? '...');
  let at = 0;
  chunks.forEach((chunk, i) => {
    if (chunk.length === 0) return;
    const fits = (k: number): boolean => chunk.every((l, j) => actual[k + j] === l);
    let k = at;
    if (i === 0 && anchoredStart) {
      if (!fits(0)) throw new Error(`the output does not start with:\n${chunk.join('\n')}\n--- it starts with:\n${actual.slice(0, chunk.length).join('\n')}`);
    } else {
      while (k + chunk.length <= actual.length && !fits(k)) k++;
      if (k + chunk.length > actual.length) throw new Error(`not in the output (after line ${at}):\n${chunk.join('\n')}`);
    }
    at = k + chunk.length;
    if (i === chunks.length - 1 && anchoredEnd && at !== actual.length) {
      throw new Error(`the output goes on after:\n${chunk.join('\n')}\n--- with:\n${actual.slice(at, at + 5).join('\n')}`);
    }
  });
}

describe('README: the decoder examples (a real capture)', () => {
  const list = examples();

  it('has the examples: no key, --key, a wrong key', () => {
    expect(list.map((e) => e.command.replace(/--key [A-Za-z0-9+/=_-]+/, '--key K'))).to.deep.equal([
      'mccache decode conformance/cli/captures/lo.pcap',
      'mccache decode conformance/cli/captures/lo.pcap --key K',
      'mccache decode conformance/cli/captures/lo.pcap --key K; echo "exit $?"',
    ]);
  });

  for (const ex of list) {
    it(`"${ex.command}" prints what the README shows`, () => {
      matchTrimmed(ex.expected, run(ex.command));
    });
  }

  it('the trimmed-output matcher fails on a line that is not there, out of order, or cut off', () => {
    const out = ['a', 'b', 'c', 'd'];
    expect(() => matchTrimmed(['a', '...', 'd'], out)).to.not.throw();
    expect(() => matchTrimmed(['...', 'b', 'c', '...'], out)).to.not.throw();
    expect(() => matchTrimmed(['a', 'c', '...'], out)).to.throw(/does not start/);
    expect(() => matchTrimmed(['...', 'c', '...', 'b', '...'], out)).to.throw(/not in the output/);
    expect(() => matchTrimmed(['...', 'c'], out)).to.throw(/goes on after/);
    expect(() => matchTrimmed(['...', 'x', '...'], out)).to.throw(/not in the output/);
  });
});
