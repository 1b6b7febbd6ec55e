/**
 * `mccache stress` (runtime/cli/stress.ts): real node processes on host-local multicast (TTL 0 on
 * 127.0.0.1, a random 239.255.x.y group and high port chosen by the command: no packet leaves
 * the machine).
 *   (a) issue #6's CI run: 3 nodes, 10 % of datagrams dropped, mixed value sizes, 20 s of writes:
 *       exit 0 and the coherent verdict, with progress lines, latency percentiles and a drain
 *       time; its --report HTML (parsed here by a strict tokenizer) holds the same verdict and
 *       percentiles, the ops of every second, three inline SVG charts, and nothing that loads
 *       anything (no script, link, image, src/href, url(), @import or "://");
 *   (b) the hidden --fake-divergence (node 1 reports an entry nobody has): exit 1, incoherent,
 *       and a report that says so;
 *   (c) bad options: exit 2 with a message naming the option (in-process, no node started);
 *   (d) the report renderer alone: escaping, empty data, histogram bins, tick values.
 * About 35 s in all.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { main } from '../../runtime/cli/main';
import { parseStressOptions } from '../../runtime/cli/stress';
import { latencyBins, niceTicks, stressReportHtml, type StressReport } from '../../runtime/cli/stress-report';

const ROOT = join(__dirname, '..', '..');
const MAIN = join(ROOT, 'runtime', 'cli', 'main.ts');

/** Runs `mccache stress ARGS` through ts-node (transpile-only), killed after `limitMs`. */
function runStress(args: string[], limitMs: number): Promise<{ code: number | null; stdout: string }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MCCACHE_') && !k.startsWith('TEST_')) env[k] = v;
  env['TS_NODE_TRANSPILE_ONLY'] = '1';
  env['TS_NODE_PROJECT'] = join(ROOT, 'tsconfig.test.json');
  const p = spawn(process.execPath, ['-r', require.resolve('ts-node/register'), MAIN, 'stress', ...args],
    { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  p.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  const timer = setTimeout(() => p.kill('SIGKILL'), limitMs);
  return new Promise((resolve) => p.on('close', (code) => {
    clearTimeout(timer);
    resolve({ code, stdout });
  }));
}

// ---------------------------------------------------------------------------------------------
// A strict HTML tokenizer for the report: every tag closed or self-closed (`<meta .../>`),
// attributes double-quoted, text with no raw '<' or '>' and only the five entities the report
// writes. Anything else throws, so a malformed report fails the test.

interface El { tag: string; attrs: Record<string, string>; children: El[]; text: string }

const ENTITY = /&(?!(?:amp|lt|gt|quot|#39);)/;

function parseHtml(html: string): El {
  const root: El = { tag: '#root', attrs: {}, children: [], text: '' };
  const stack: El[] = [root];
  let rest = html.replace(/^<!DOCTYPE html>\n/, '');
  if (rest === html) throw new Error('no <!DOCTYPE html> first');
  while (rest.length > 0) {
    const top = stack[stack.length - 1]!;
    if (rest.startsWith('</')) {
      const m = /^<\/([a-z][a-z0-9-]*)>/.exec(rest);
      if (!m || m[1] !== top.tag) throw new Error(`bad close ${rest.slice(0, 30)} inside <${top.tag}>`);
      stack.pop();
      rest = rest.slice(m[0].length);
    } else if (rest.startsWith('<')) {
      const m = /^<([a-z][a-z0-9-]*)((?:\s+[a-z][a-z0-9:-]*="[^"<>]*")*)\s*(\/?)>/i.exec(rest);
      if (!m) throw new Error(`bad tag at ${JSON.stringify(rest.slice(0, 40))}`);
      const attrs: Record<string, string> = {};
      for (const a of m[2]!.matchAll(/([a-z][a-z0-9:-]*)="([^"]*)"/gi)) {
        if (ENTITY.test(a[2]!)) throw new Error(`bad entity in attribute ${a[1]}`);
        if (a[1]! in attrs) throw new Error(`attribute ${a[1]} twice`);
        attrs[a[1]!.toLowerCase()] = a[2]!;
      }
      const el: El = { tag: m[1]!.toLowerCase(), attrs, children: [], text: '' };
      top.children.push(el);
      if (m[3] !== '/') stack.push(el);
      rest = rest.slice(m[0].length);
    } else {
      const end = rest.indexOf('<');
      const t = end < 0 ? rest : rest.slice(0, end);
      if (t.includes('>') || ENTITY.test(t)) throw new Error(`bad text ${JSON.stringify(t.slice(0, 40))}`);
      top.text += t;
      rest = end < 0 ? '' : rest.slice(end);
    }
  }
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1]!.tag}>`);
  return root;
}

function all(el: El): El[] {
  return [el, ...el.children.flatMap(all)];
}
const byId = (root: El, id: string): El | undefined => all(root).find((e) => e.attrs['id'] === id);
const textOf = (el: El): string => unescape(el.text + el.children.map(textOf).join(''));
const unescape = (s: string): string => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');

/** Throws unless the document references nothing outside itself. */
function expectSelfContained(html: string, root: El): void {
  const els = all(root);
  const fetching = ['script', 'link', 'img', 'image', 'iframe', 'object', 'embed', 'use', 'foreignobject', 'audio', 'video', 'source', 'base', 'form'];
  expect(els.filter((e) => fetching.includes(e.tag)).map((e) => e.tag), 'elements that load something').to.deep.equal([]);
  for (const e of els) {
    for (const [name, value] of Object.entries(e.attrs)) {
      expect(['src', 'href', 'xlink:href', 'srcset', 'action', 'xmlns', 'poster', 'data'], `<${e.tag} ${name}>`).to.not.include(name);
      expect(name.startsWith('on'), `event handler ${name}`).to.equal(false);
      expect(value, `<${e.tag} ${name}>`).to.not.match(/url\(|:\/\/|^\/\/|^data:|javascript:/i);
    }
  }
  const style = els.filter((e) => e.tag === 'style').map((e) => e.text).join('\n');
  expect(style).to.not.match(/url\(|@import|@font-face/i);
  expect(html).to.not.match(/:\/\/|url\(/i);
}

describe('mccache stress', function () {
  this.timeout(120_000);
  let dir: string;
  before(() => { dir = fs.mkdtempSync(join(os.tmpdir(), 'mccache-stress-')); });
  after(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  describe('3 nodes, 20 s, 10 % drop, --report (issue #6)', () => {
    let r: { code: number | null; stdout: string };
    let file: string;
    let html: string;
    before(async () => {
      file = join(dir, 'report.html');
      r = await runStress(['--nodes', '3', '--duration', '20', '--drop', '10', '--rate', '50', '--size-mix', '3',
        '--seed', '7', '--settle', '20', '--report', file], 90_000);
      html = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    });

    it('ends coherent: exit 0, progress, percentiles, drain time, the drop applied', () => {
      expect(r.stdout, r.stdout).to.match(/verdict: COHERENT: 3 nodes hold identical \d+ entries/);
      expect(r.code, r.stdout).to.equal(0);
      expect(r.stdout).to.match(/host-local 239\.255\.\d+\.\d+:\d+ \(TTL 0\)/);
      expect(r.stdout).to.match(/, 20\.0 s, drop 10 %,/);
      expect(r.stdout.match(/^ +\d+ s {2}ops\/s +\d+ +pending \d+ +unacked \d+ +NAKs \d+ +retransmits \d+/gm)?.length ?? 0,
        'a progress line a second').to.be.at.least(18);
      expect(r.stdout).to.match(/put-to-visible latency \(ms, [1-9]\d* remote sets\): p50 [\d.]+ +p90 [\d.]+ +p99 [\d.]+ +max [\d.]+/);
      expect(r.stdout).to.match(/drain time: [\d.]+ s\n/);
      const dropped = /dropped on purpose (\d+)/.exec(r.stdout);
      expect(Number(dropped?.[1]), 'the 10 % drop was applied').to.be.greaterThan(0);
      expect(r.stdout).to.include(`report: ${file}`);
    });

    it('writes a self-contained HTML report with the printed verdict and percentiles, and three SVG charts', () => {
      expect(html, 'the report file').to.not.equal('');
      const root = parseHtml(html);
      expectSelfContained(html, root);
      const printed = (re: RegExp): string => re.exec(r.stdout)?.[0] ?? '(not printed)';
      expect(textOf(byId(root, 'verdict')!)).to.equal(printed(/^verdict: .*$/m));
      expect(byId(root, 'verdict')!.attrs['class']).to.equal('verdict coherent');
      const latencyLine = printed(/^put-to-visible latency .*$/m);
      expect(textOf(byId(root, 'latency-line')!)).to.equal(latencyLine);
      const [, p50, p90, p99, max] = /p50 ([\d.]+) +p90 ([\d.]+) +p99 ([\d.]+) +max ([\d.]+)/.exec(latencyLine)!;
      expect(['p50', 'p90', 'p99', 'max'].map((p) => textOf(byId(root, `latency-${p}`)!))).to.deep.equal([p50, p90, p99, max]);
      // The parameters of the run.
      const params = Object.fromEntries(byId(root, 'parameters')!.children.map((tr) => tr.children.map(textOf)));
      expect(params).to.include({ nodes: '3', 'ops/s per node': '50.0', 'duration (s)': '20.0', 'drop (%)': '10', 'size mix': '3', seed: '7' });
      expect(params['drain time']).to.equal(printed(/^drain time: .*$/m).slice('drain time: '.length));
      // Charts: inline SVG drawn by our code.
      const svgs = all(root).filter((e) => e.tag === 'svg').map((e) => e.attrs['id']);
      expect(svgs).to.deep.equal(['chart-latency', 'chart-throughput', 'chart-queues']);
      const latencyBars = all(byId(root, 'chart-latency')!).filter((e) => e.tag === 'rect');
      const binned = latencyBars.map((b) => Number(/: (\d+)$/.exec(textOf(b.children.find((c) => c.tag === 'title')!))![1]));
      const remoteSets = Number(/\(ms, (\d+) remote sets\)/.exec(latencyLine)![1]);
      expect(binned.reduce((a, b) => a + b, 0), 'every latency in the histogram').to.equal(remoteSets);
      expect(all(byId(root, 'chart-latency')!).filter((e) => e.tag === 'line' && e.attrs['stroke-dasharray'])).to.have.length(3);
      // Throughput: one bar a second, and their sum is the ops the run printed.
      const bars = all(byId(root, 'chart-throughput')!).filter((e) => e.tag === 'rect');
      expect(bars.length).to.be.within(20, 21);
      const perSecond = bars.map((b) => Number(/: (\d+) ops\/s$/.exec(textOf(b.children[0]!))![1]));
      expect(perSecond.reduce((a, b) => a + b, 0)).to.equal(Number(/writes done: (\d+) ops/.exec(r.stdout)![1]));
      expect(perSecond.slice(1, -1).every((v) => v > 0), 'every full second wrote').to.equal(true);
      expect(all(byId(root, 'chart-queues')!).filter((e) => e.tag === 'polyline')).to.have.length(5);
      // The per-second table: a row per progress line.
      const rows = byId(root, 'per-second')!.children.slice(1);
      expect(rows.length).to.be.at.least(18);
      expect(rows.every((tr) => tr.children.length === 7)).to.equal(true);
    });
  });

  it('--fake-divergence makes the verdict fail: exit 1, and the report says so', async () => {
    const file = join(dir, 'incoherent.html');
    const r = await runStress(['--duration', '1', '--rate', '50', '--settle', '1', '--fake-divergence', '--report', file], 20_000);
    expect(r.stdout, r.stdout).to.match(/verdict: INCOHERENT: the 3 nodes do not hold identical entries/);
    expect(r.stdout).to.match(/node \d differs from node 1 on 1 key\(s\): zz-fake-divergence/);
    expect(r.code, r.stdout).to.equal(1);
    const html = fs.readFileSync(file, 'utf8');
    const root = parseHtml(html);
    expectSelfContained(html, root);
    expect(byId(root, 'verdict')!.attrs['class']).to.equal('verdict incoherent');
    expect(textOf(byId(root, 'verdict')!)).to.equal(/^verdict: .*$/m.exec(r.stdout)![0]);
    expect(textOf(byId(root, 'differences')!)).to.include('zz-fake-divergence');
  });

  it('bad options exit 2 with a message naming the option', () => {
    const cases: Array<[string[], RegExp]> = [
      [['--drop', '150'], /--drop needs an integer in 0\.\.99/],
      [['--nodes', '1'], /--nodes needs an integer in 2\.\.16/],
      [['--size-mix', '4'], /--size-mix/],
      [['--duration'], /--duration needs a value/],
      [['--aperture', '0.1', '--rate', '10'], /--aperture and --rate exclude each other/],
      [['--bogus'], /unknown argument "--bogus"/],
      [['--report'], /--report needs a file name/],
      [['--report', join(os.tmpdir(), 'no-such-dir-mccache', 'r.html')], /--report .*no-such-dir-mccache.*: cannot write/],
    ];
    for (const [args, message] of cases) {
      const lines: string[] = [];
      expect(main(['stress', ...args], (s) => lines.push(s)), args.join(' ')).to.equal(2);
      expect(lines.join('\n')).to.match(message);
    }
  });

  it("accepts McCache's TEST_* environment names, the options winning", () => {
    const o = parseStressOptions(['--keys', '50'], { TEST_CLUSTER_SIZE: '4', TEST_MAX_ENTRIES: '10', TEST_APERTURE: '0.01',
      TEST_RUN_DURATION: '0.5', TEST_MONKEY_TANTRUM: '5', TEST_DATA_SIZE_MIX: '2', TEST_RANDOM_SEED: '101' });
    expect(o).to.include({ nodes: 4, keys: 50, apertureMs: 10, durationMs: 30_000, drop: 5, sizeMix: 2, seed: 101 });
    expect(() => parseStressOptions([], { TEST_MONKEY_TANTRUM: 'x' })).to.throw(/TEST_MONKEY_TANTRUM/);
  });

  it('the report renderer: escapes text, copes with no data, bins latencies by decade fifths, picks round ticks', () => {
    const report: StressReport = {
      parameters: [['nodes', '2'], ['note', '<b>&"\'</b>']], startedAt: '2024-01-01T00:00:00.000Z', node: 'v20',
      verdict: { coherent: false, line: 'verdict: INCOHERENT: <x> & "y"', details: ['a < b'] },
      latency: { sortedMs: [], line: 'put-to-visible latency (ms, 0 remote sets): p50 -  p90 -  p99 -  max -', p50: '-', p90: '-', p99: '-', max: '-' },
      opsPerSecond: [], seconds: [], totals: { ops: 0, writeSeconds: '-', drain: '-', naks: 0, retransmits: 0, dropped: 0 },
    };
    const html = stressReportHtml(report);
    const root = parseHtml(html);
    expectSelfContained(html, root);
    expect(textOf(byId(root, 'verdict')!)).to.equal(report.verdict.line);
    expect(html).to.include('no remote sets were observed').and.include('no data');
    expect(textOf(byId(root, 'parameters')!)).to.include('<b>&"\'</b>');
    expect(latencyBins([0.1, 0.12, 0.2, 1, 1.5, 95])).to.deep.equal([
      ...[-5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((k) => ({ from: 10 ** (k / 5), to: 10 ** ((k + 1) / 5),
        count: { [-5]: 2, [-4]: 1, 0: 2, 9: 1 }[k] ?? 0 })),
    ]);
    expect(niceTicks(0)).to.deep.equal([0, 1]);
    expect(niceTicks(147)).to.deep.equal([0, 50, 100, 150]);
    expect(niceTicks(9)).to.deep.equal([0, 2, 4, 6, 8, 10]);
    expect(niceTicks(0.3)).to.deep.equal([0, 0.1, 0.2, 0.3]);
  });
});
