/**
 * The README's examples are tested (STYLE.md house rule 10): every ```ts block that starts with
 * `// example:` runs as a script in a child process on host-local multicast, and its output
 * must equal the ```text block that follows it. `import ... from 'mccache'` resolves to this
 * checkout's runtime/index.ts.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

interface Example { title: string; code: string; expected: string }

function examples(): Example[] {
  const out: Example[] = [];
  const re = /```ts\n(\/\/ example: ([^\n]*)\n[\s\S]*?)```\n```text\n([\s\S]*?)```/g;
  for (let m = re.exec(README); m; m = re.exec(README)) out.push({ title: m[2]!, code: m[1]!, expected: m[3]! });
  return out;
}

/** Imports stay at the top; the rest runs inside an async function (CommonJS has no top-level await). */
function script(code: string): string {
  const lines = code.replace(/from 'mccache'/g, `from ${JSON.stringify(path.join(ROOT, 'runtime/index'))}`).split('\n');
  const imports: string[] = [];
  const body: string[] = [];
  let inImport = false;
  for (const l of lines) {
    if (l.startsWith('import ') || inImport) {
      imports.push(l);
      inImport = !l.includes(' from ');
    } else body.push(l);
  }
  return `${imports.join('\n')}\n(async () => {\n${body.join('\n')}\n})().catch((e) => { console.error(e); process.exit(1); });\n`;
}

function run(file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const port = 20000 + Math.floor(Math.random() * 40000);
  const env = {
    ...process.env, MCCACHE_MULTICAST_HOPS: '0',
    MCCACHE_MULTICAST_IP: `239.255.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}:${port}`,
    TS_NODE_TRANSPILE_ONLY: '1', TS_NODE_PROJECT: path.join(ROOT, 'tsconfig.test.json'),
  };
  return new Promise((resolve) => {
    execFile(process.execPath, ['-r', 'ts-node/register', file], { cwd: ROOT, env, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('README examples', function () {
  this.timeout(60_000);
  const list = examples();

  it('has examples to run', () => {
    expect(list.length).to.be.at.least(2);
  });

  for (const ex of list) {
    it(`runs "${ex.title}" and prints what the README shows, then exits by itself`, async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mccache-readme-'));
      const file = path.join(dir, 'example.ts');
      fs.writeFileSync(file, script(ex.code));
      try {
        const r = await run(file);
        expect(r.stderr, 'stderr').to.equal('');
        expect(r.code, 'exit code').to.equal(0);
        expect(r.stdout).to.equal(ex.expected);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
