#!/usr/bin/env node
// Turns what `make bench` measured into BENCHMARKS.md (tables, and SVG charts in bench/charts/
// linked relatively so they render on GitHub) and bench/report.html (one self-contained page:
// the same tables, the charts inline; no script, no external URL). It only reformats: every
// figure comes from bench/results/*.json (written by the comparison benches) or is quoted
// verbatim from bench/results/*.log (the other benches' printed tables); it measures nothing.
//
//   node bench/report.mjs        (BENCH_RESULTS=<folder> reads another results folder)
//
// The charts are drawn here (lineChart, barChart below): no chart library. One document model
// (blocks: headings, paragraphs, tables, charts, preformatted logs) renders to both outputs.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const resultsDir = process.env.BENCH_RESULTS ?? join(here, 'results');
const chartsDir = join(here, 'charts');
const OUT_MD = join(root, 'BENCHMARKS.md');
const OUT_HTML = join(here, 'report.html');
/** Benches whose JSON this report knows, in report order. */
const COMPARISONS = ['compare-local', 'compare-staleness', 'cluster-mix', 'overload', 'large-values'];
/** "Rest of host" above this % of one core marks a figure as disturbed (as the benches do). */
const DISTURBED_PCT = 20;

// ---------------------------------------------------------------------------------------------
// reading
// ---------------------------------------------------------------------------------------------

function readJson(path) {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}
const R = Object.fromEntries(COMPARISONS.map((n) => [n, readJson(join(resultsDir, `${n}.json`))]));
const run = readJson(join(resultsDir, 'run.json'));
const logs = existsSync(resultsDir)
  ? readdirSync(resultsDir).filter((f) => f.endsWith('.log')).sort().map((f) => ({ name: f.replace(/\.log$/, ''), text: readFileSync(join(resultsDir, f), 'utf8') }))
  : [];

/** JSON turns NaN into null: read it back as NaN. */
const num = (x) => (typeof x === 'number' ? x : NaN);

// ---------------------------------------------------------------------------------------------
// formatting
// ---------------------------------------------------------------------------------------------

const fmt = (n, d = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : '-');
function si(n) {
  if (!Number.isFinite(n)) return '-';
  const a = Math.abs(n);
  if (a >= 1e6) return `${(n / 1e6).toFixed(a >= 1e7 ? 1 : 2)}M`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(a >= 1e4 ? 0 : 1)}k`;
  return n.toFixed(a >= 10 ? 0 : 1);
}
function us(n) {
  if (!Number.isFinite(n)) return '-';
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} s`;
  if (n >= 1000) return `${(n / 1000).toFixed(n >= 10_000 ? 0 : 1)} ms`;
  return `${n.toFixed(n >= 100 ? 0 : n >= 10 ? 1 : 2)} µs`;
}
const ms = (n) => (Number.isFinite(n) ? `${fmt(n, n < 10 ? 1 : 0)} ms` : '-');
// |x| < 0.05 MiB prints as 0.0 (not "-0.0"): heap deltas that small are noise.
const mib = (b) => (Number.isFinite(b) ? `${fmt(Math.abs(b) < 0.05 * 2 ** 20 ? 0 : b / 2 ** 20, Math.abs(b) < 10 * 2 ** 20 ? 1 : 0)} MiB` : '-');
const pct = (n) => (Number.isFinite(n) ? `${fmt(n, 0)} %` : '-');
/** A ratio, "x" appended; '-' when either side is missing. */
const x = (a, b, d = 2) => (Number.isFinite(a / b) && b !== 0 ? `${fmt(a / b, a / b >= 100 ? 0 : d)}x` : '-');
/** min / **median** / max of a spread from the JSON. */
function mmm(s, f = si) {
  if (!s || !s.n) return '-';
  return s.n === 1 ? f(num(s.median)) : `${f(num(s.min))} / **${f(num(s.median))}** / ${f(num(s.max))}`;
}
const med = (s) => num(s?.median);
const disturbed = (s) => (num(s?.max) > DISTURBED_PCT ? ' !' : '');

// ---------------------------------------------------------------------------------------------
// charts (SVG, drawn here)
// ---------------------------------------------------------------------------------------------

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#17becf', '#bcbd22'];
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const r2 = (n) => Math.round(n * 100) / 100;

/** 1, 2, 5 x 10^k steps covering [lo, hi] with about `n` ticks. */
function niceTicks(lo, hi, n = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(r2(v / p) * p);
  return out;
}

/**
 * A scale maps data to [0, 1] and gives ticks. 'linear', 'log' (base 10; ticks 1-2-5 when the
 * range is short), or 'pct' for probabilities drawn as -log10(1 - p), so p90, p99, p99.9 and
 * p99.99 are evenly spaced (latency-distribution charts).
 */
function scale(kind, values, { zero = false, format = si } = {}) {
  const v = values.filter((a) => Number.isFinite(a) && (kind !== 'log' || a > 0));
  if (kind === 'pct') {
    const f = (p) => -Math.log10(Math.max(1e-4, 1 - Math.min(p, 0.9999)));
    const ticks = [[0, 'p0'], [0.5, 'p50'], [0.9, 'p90'], [0.99, 'p99'], [0.999, 'p99.9'], [0.9999, 'p99.99']];
    return { f: (p) => f(p) / 4, ticks: ticks.map(([p, label]) => ({ t: f(p) / 4, label })) };
  }
  if (!v.length) return { f: () => 0.5, ticks: [] };
  let lo = Math.min(...v);
  let hi = Math.max(...v);
  if (kind === 'log') {
    // Bounds on the 1-2-5 ladder around the data, so a short range is not padded to decades.
    const down = (a) => { const e = 10 ** Math.floor(Math.log10(a)); return [5, 2, 1].map((m) => m * e).find((t) => t <= a * 1.0001) ?? e; };
    const up = (a) => { const e = 10 ** Math.floor(Math.log10(a)); return [1, 2, 5, 10].map((m) => m * e).find((t) => t >= a / 1.0001) ?? 10 * e; };
    lo = down(lo);
    hi = up(hi);
    if (hi <= lo) hi = lo * 10;
    const decades = Math.log10(hi / lo);
    const ticks = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.log10(hi) + 1e-9; e++) {
      for (const m of decades <= 2.5 ? [1, 2, 5] : [1]) {
        const t = m * 10 ** e;
        if (t >= lo && t <= hi * 1.0001) ticks.push(t);
      }
    }
    const f = (a) => (Math.log10(a) - Math.log10(lo)) / Math.log10(hi / lo);
    return { f, ticks: ticks.map((t) => ({ t: f(t), label: format(t) })) };
  }
  if (zero) lo = Math.min(0, lo);
  if (hi === lo) hi = lo + 1;
  const ticks = niceTicks(lo, hi);
  lo = Math.min(lo, ticks[0]);
  const step = ticks.length > 1 ? ticks[1] - ticks[0] : 1;
  if (ticks[ticks.length - 1] < hi) ticks.push(ticks[ticks.length - 1] + step);
  hi = Math.max(hi, ticks[ticks.length - 1]);
  const f = (a) => (a - lo) / (hi - lo);
  return { f, ticks: ticks.map((t) => ({ t: f(t), label: format(t) })) };
}

const W = 760;
const H = 400;
const M = { l: 72, r: 230, t: 44, b: 56 };
const PW = W - M.l - M.r;
const PH = H - M.t - M.b;

function frame(title, xs, ys, xLabel, yLabel, body, legend) {
  const X = (t) => r2(M.l + t * PW);
  const Y = (t) => r2(M.t + (1 - t) * PH);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${M.l}" y="22" font-size="15" font-weight="bold" fill="#222">${esc(title)}</text>`,
  ];
  for (const { t, label } of ys.ticks) {
    out.push(`<line x1="${X(0)}" x2="${X(1)}" y1="${Y(t)}" y2="${Y(t)}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${X(0) - 6}" y="${Y(t) + 4}" text-anchor="end" fill="#444">${esc(label)}</text>`);
  }
  for (const { t, label } of xs.ticks) {
    out.push(`<line x1="${X(t)}" x2="${X(t)}" y1="${Y(0)}" y2="${Y(1)}" stroke="#f0f0f0"/>`);
    // A label with '\n' takes two lines (long bar-chart categories).
    const [l1, l2] = String(label).split('\n');
    out.push(`<text x="${X(t)}" y="${Y(0) + 16}" text-anchor="middle" fill="#444">${esc(l1)}${l2 ? `<tspan x="${X(t)}" dy="14">${esc(l2)}</tspan>` : ''}</text>`);
  }
  out.push(`<rect x="${M.l}" y="${M.t}" width="${PW}" height="${PH}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${M.l + PW / 2}" y="${H - 14}" text-anchor="middle" fill="#222">${esc(xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${M.t + PH / 2}) rotate(-90)" text-anchor="middle" fill="#222">${esc(yLabel)}</text>`);
  out.push(body(X, Y));
  legend.forEach((l, i) => {
    const ly = M.t + 8 + i * 20;
    const lx = M.l + PW + 14;
    out.push(l.dash
      ? `<line x1="${lx}" x2="${lx + 22}" y1="${ly}" y2="${ly}" stroke="${l.color}" stroke-width="2" stroke-dasharray="5 4"/>`
      : `<rect x="${lx}" y="${ly - 6}" width="22" height="12" fill="${l.color}"/>`);
    out.push(`<text x="${lx + 28}" y="${ly + 4}" fill="#222">${esc(l.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

/**
 * series: [{ name, points: [[x, y, yMin?, yMax?], ...], dash? }]; whiskers drawn where yMin/yMax
 * are given. `diagonal`: a dashed y = x reference (offered load).
 */
function lineChart({ title, xLabel, yLabel, xKind = 'linear', yKind = 'linear', series, xFormat = si, yFormat = si, diagonal = false, yZero = false, xZero = false, vlines = [] }) {
  const pts = series.flatMap((s) => s.points);
  const xs = scale(xKind, pts.map((p) => p[0]), { format: xFormat, zero: xZero });
  const ys = scale(yKind, [...pts.flatMap((p) => [p[1], p[2], p[3]]), ...(diagonal ? pts.map((p) => p[0]) : [])], { format: yFormat, zero: yZero });
  const legend = series.map((s, i) => ({ name: s.name, color: s.color ?? PALETTE[i % PALETTE.length], dash: s.dash }));
  if (diagonal) legend.push({ name: 'offered (y = x)', color: '#999', dash: true });
  return frame(title, xs, ys, xLabel, yLabel, (X, Y) => {
    const out = [];
    const ok = (a, kind) => Number.isFinite(a) && (kind !== 'log' || a > 0);
    if (diagonal) {
      const dx = pts.map((p) => p[0]).filter((a) => ok(a, xKind));
      const lo = Math.min(...dx);
      const hi = Math.max(...dx);
      out.push(`<line x1="${X(xs.f(lo))}" y1="${Y(ys.f(lo))}" x2="${X(xs.f(hi))}" y2="${Y(ys.f(hi))}" stroke="#999" stroke-width="1.5" stroke-dasharray="5 4"/>`);
    }
    for (const v of vlines) {
      const vx = X(xs.f(v.x));
      out.push(`<line x1="${vx}" x2="${vx}" y1="${Y(0)}" y2="${Y(1)}" stroke="${v.color ?? '#555'}" stroke-dasharray="2 3"/>`);
      out.push(`<text x="${vx + 4}" y="${Y(1) + 14 + (v.row ?? 0) * 14}" fill="${v.color ?? '#555'}" font-size="11">${esc(v.label)}</text>`);
    }
    series.forEach((s, i) => {
      const color = legend[i].color;
      const good = s.points.filter((p) => ok(p[0], xKind) && ok(p[1], yKind));
      if (good.length > 1) {
        const d = good.map((p, j) => `${j ? 'L' : 'M'}${X(xs.f(p[0]))} ${Y(ys.f(p[1]))}`).join(' ');
        out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dash ? ' stroke-dasharray="6 4"' : ''}/>`);
      }
      for (const p of good) {
        if (ok(p[2], yKind) && ok(p[3], yKind) && p[3] > p[2]) {
          out.push(`<line x1="${X(xs.f(p[0]))}" x2="${X(xs.f(p[0]))}" y1="${Y(ys.f(p[2]))}" y2="${Y(ys.f(p[3]))}" stroke="${color}" stroke-width="1.5"/>`);
        }
        if (s.markers !== false) out.push(`<circle cx="${X(xs.f(p[0]))}" cy="${Y(ys.f(p[1]))}" r="3" fill="${color}"/>`);
      }
    });
    return out.join('\n');
  }, legend);
}

/** Grouped bars: categories along x; series: [{ name, values: [[v, min?, max?] per category] }]. */
function barChart({ title, yLabel, categories, series, yKind = 'linear', yFormat = si }) {
  const all = series.flatMap((s) => s.values.flatMap((v) => v));
  const ys = scale(yKind, yKind === 'log' ? all : [0, ...all], { format: yFormat, zero: true });
  const legend = series.map((s, i) => ({ name: s.name, color: PALETTE[i % PALETTE.length] }));
  const xs = { ticks: categories.map((c, i) => ({ t: (i + 0.5) / categories.length, label: c })) };
  return frame(title, xs, ys, '', yLabel, (X, Y) => {
    const out = [];
    const gw = 1 / categories.length;
    const bw = (gw * 0.8) / series.length;
    const base = yKind === 'log' ? 0 : ys.f(0);
    categories.forEach((_, ci) => {
      series.forEach((s, si2) => {
        const [v, lo, hi] = s.values[ci] ?? [];
        if (!Number.isFinite(v) || (yKind === 'log' && v <= 0)) return;
        const x0 = ci * gw + gw * 0.1 + si2 * bw;
        const top = Y(ys.f(v));
        out.push(`<rect x="${X(x0)}" y="${Math.min(top, Y(base))}" width="${r2(bw * PW - 2)}" height="${r2(Math.abs(Y(base) - top))}" fill="${legend[si2].color}"><title>${esc(`${s.name}: ${yFormat(v)}`)}</title></rect>`);
        if (Number.isFinite(lo) && Number.isFinite(hi) && hi > lo && (yKind !== 'log' || lo > 0)) {
          const cx = X(x0 + bw / 2) - 1;
          out.push(`<line x1="${cx}" x2="${cx}" y1="${Y(ys.f(lo))}" y2="${Y(ys.f(hi))}" stroke="#222" stroke-width="1.2"/>`);
        }
      });
    });
    return out.join('\n');
  }, legend);
}

// ---------------------------------------------------------------------------------------------
// document model
// ---------------------------------------------------------------------------------------------

const doc = [];
const h2 = (t) => doc.push({ h: 2, t });
const h3 = (t) => doc.push({ h: 3, t });
const p = (t) => doc.push({ p: t });
const list = (items) => doc.push({ list: items.filter(Boolean) });
/** head: column names; a name ending in ':' is right-aligned (the ':' is dropped). */
const table = (head, rows) => doc.push({ head, rows });
const charts = [];
const chart = (id, svg, alt) => {
  charts.push({ id, svg });
  doc.push({ chart: id, alt });
};
const pre = (summary, text) => doc.push({ pre: text, summary });

const CDF_P = [...Array.from({ length: 100 }, (_, i) => i / 100), 0.991, 0.992, 0.993, 0.994, 0.995, 0.996, 0.997, 0.998, 0.999, 0.9995, 0.9999, 1];
/** [p, value] points of a stored distribution, p < 1 (the max is in the tables). */
const cdfPoints = (d) => (d?.cdf ?? []).map((v, i) => [CDF_P[i], num(v)]).filter(([q, v]) => q < 1 && Number.isFinite(v) && v > 0);

// ---------------------------------------------------------------------------------------------
// sections
// ---------------------------------------------------------------------------------------------

const anyQuick = COMPARISONS.some((n) => R[n]?.machine?.quick);
const m0 = COMPARISONS.map((n) => R[n]?.machine).find(Boolean);
const redisInfo = COMPARISONS.map((n) => R[n]?.redis).find((r) => r?.version);
const losses = []; // where McCache is worse than the baseline in this run: [text]
/** Differences under 5 % are within the run-to-run noise these benches show: not listed as losses. */
const worse = (a, b) => Number.isFinite(a) && Number.isFinite(b) && a > b * 1.05;
const summary = []; // headline rows: [what, McCache, baseline(s), ratio]
// Benches whose results were written after the full run ended (re-run alone).
const rerun = [];
if (run) {
  const ended = Date.parse(run.startedAt) + run.seconds * 1000 + 5000;
  for (const b of run.benches) {
    for (const ext of ['json', 'log']) {
      const f = join(resultsDir, `${b.name}.${ext}`);
      if (existsSync(f) && statSync(f).mtimeMs > ended) {
        rerun.push({ name: b.name, at: statSync(f).mtime.toISOString() });
        break;
      }
    }
  }
}

doc.push({ h: 1, t: 'McCache benchmarks' });
p('Generated by `make bench` (bench/run.mjs runs every bench/*.bench.ts, then bench/report.mjs writes this file, '
  + 'the charts in bench/charts/ and bench/report.html from bench/results/). Every figure below was measured in the run '
  + 'described here (or, where listed, in a later run of that bench alone), next to its baseline from the same run; nothing is carried over from other runs or machines.');
if (!m0) p('**No results found**: run `make bench` (or `node bench/run.mjs` then `node bench/report.mjs`).');
else {
  list([
    `Node ${m0.node}, V8 ${m0.v8}, ${m0.platform}; ${m0.cpus} x ${m0.cpuModel}, ${fmt(m0.memGiB, 1)} GiB`,
    redisInfo ? `redis-server ${redisInfo.version} (Debian package, a private instance on 127.0.0.1, no persistence), ioredis ${redisInfo.ioredis}` : 'Redis: skipped (redis-server not installed)',
    R['compare-local']?.lruCache ? `lru-cache ${R['compare-local'].lruCache}` : '',
    `Repetitions: ${m0.reps} per measured cell (tables give min / **median** / max when more than one)`,
    run ? `Run started ${run.startedAt}; all benches together took ${fmt(run.seconds / 60, 1)} min (${run.benches.map((b) => `${b.name} ${fmt(b.seconds)} s${b.status === 0 ? '' : `, exited ${b.status}`}`).join('; ')})` : '',
    rerun.length ? `Re-run alone after that run (\`node bench/run.mjs <name>\`), so their figures are from the later run, with its own baselines: ${rerun.map((r) => `${r.name} (${r.at})`).join(', ')}` : '',
    `Load average when each comparison bench started: ${COMPARISONS.filter((n) => R[n]).map((n) => `${n} ${R[n].machine.loadavg.join(' ')}`).join('; ')}`,
  ]);
  if (anyQuick) p('**BENCH_QUICK=1 run: short phases and fewer repetitions, for checking the harness. Do not quote these figures.**');
  h2('Summary');
  p('Medians of the tables below (min / max there), each beside its baseline from the same run.');
  doc.push({ head: ['what', 'McCache', 'baseline (same run)', 'ratio'], rows: summary });
  p(`Host load: the machine may be shared. Each bench measures what the rest of the host used during each phase (/proc/stat busy time minus the bench's own processes, in % of one core) and marks with "!" the figures measured while that exceeded ${DISTURBED_PCT} %: their latencies are not clean.`);
}

// ---- local -----------------------------------------------------------------------------------
const L = R['compare-local'];
if (L) {
  h2('Local reads and writes');
  p(`One process; ${fmt(L.params.capacity)} entries, ${fmt(L.params.hot)} hot keys, 12-character string values. McCache is a real node with one peer process, so every set is also replicated. Redis: GET/SET through ioredis to the private redis-server over loopback TCP, one command at a time ("await each") or ${L.params.inFlight} at once. ${L.params.reps} rounds of ${L.params.roundMs} ms per cell. Source: bench/compare-local.bench.ts.`);
  const t = (name, op) => L.throughput[`${name} | ${op}`];
  const redisName = L.targets.find((n) => n.startsWith('Redis, await'));
  table(['implementation', 'get ops/s:', 'x lru-cache:', 'x Redis:', 'set ops/s:', 'x lru-cache:', 'x Redis:'], L.targets.map((name) => [
    name,
    ...L.ops.flatMap((op) => [mmm(t(name, op)), x(med(t(name, op)), med(t('lru-cache', op)), 3), redisName ? x(med(t(name, op)), med(t(redisName, op)), 1) : '-']),
  ]));
  p(`Rest of the host during these rounds: ${pct(L.othersPct)} of a core${L.othersPct > DISTURBED_PCT ? ' (!)' : ''}.`);
  chart('local-throughput', barChart({
    title: 'Local ops/s (median; whiskers: min-max over rounds; log scale)', yLabel: 'ops/s', yKind: 'log',
    categories: L.ops, series: L.targets.map((name) => ({ name, values: L.ops.map((op) => [med(t(name, op)), num(t(name, op)?.min), num(t(name, op)?.max)]) })),
  }), 'local ops/s');
  h3('Latency of one call');
  p(`Each call timed alone with performance.now() (${fmt(L.params.latNLocal)} calls in-process, ${fmt(L.params.latNRedis)} for Redis). "timer only" is the two clock reads around nothing: the floor under every in-process figure. For McCache this is the cost of the call; the time until a peer sees a write is under Staleness.`);
  const names = ['timer only', ...L.targets];
  table(['implementation', 'get p50:', 'get p99:', 'get p99.9:', 'get max:', 'set p50:', 'set p99:', 'set p99.9:', 'set max:'], names.map((name) => [
    name, ...L.ops.flatMap((op) => { const d = L.latencyUs[`${name} | ${op}`]; return [us(num(d?.p50)), us(num(d?.p99)), us(num(d?.p999)), us(num(d?.max))]; }),
  ]));
  for (const op of L.ops) {
    chart(`local-latency-${op}`, lineChart({
      title: `Latency of one ${op} (percentiles)`, xLabel: 'percentile', yLabel: 'µs (log)', xKind: 'pct', yKind: 'log', yFormat: (v) => us(v),
      series: names.map((name) => ({ name, points: cdfPoints(L.latencyUs[`${name} | ${op}`]).map(([q, v]) => [q, v]), markers: false, dash: name === 'timer only' })),
    }), `latency of one ${op}`);
  }
  for (const op of L.ops) {
    summary.push([`local \`${op}\`, ops/s`, si(med(t('McCache (1 peer)', op))), `lru-cache ${si(med(t('lru-cache', op)))}${redisName ? `; Redis GET/SET, await each ${si(med(t(redisName, op)))}` : ''}`,
      `${x(med(t('McCache (1 peer)', op)), med(t('lru-cache', op)), 3)} lru-cache${redisName ? `; ${x(med(t('McCache (1 peer)', op)), med(t(redisName, op)), 0)} Redis` : ''}`]);
  }
  for (const op of L.ops) {
    const mc = med(t('McCache (1 peer)', op));
    const lru = med(t('lru-cache', op));
    if (worse(lru, mc)) losses.push(`local \`${op}\`: McCache ${si(mc)} ops/s vs lru-cache ${si(lru)} ops/s (${x(mc, lru)}, compare-local)`);
  }
}

// ---- staleness -------------------------------------------------------------------------------
const S = R['compare-staleness'];
if (S) {
  h2('Staleness: a write on process A until process B reads it');
  p(`Two processes; A writes one hot key at a paced rate (each ~1 ms timer tick writes what is owed), B reads. The staleness of a write is the first instant B held it (or a newer write) minus the instant just before A's write call (one clock on the host). McCache: B timestamps the 'remote-set' event. Redis re-read: B GETs in a loop, one at a time. Redis pub/sub invalidation: A SETs then PUBLISHes, B GETs on each message. ${S.params.seconds} s per phase, ${S.params.reps} repetition(s), modes interleaved. Source: bench/compare-staleness.bench.ts.`);
  table(['writes/s:', 'path', 'p50', 'p99', 'p99.9', 'max', 'writes seen by B:', 'B reads/s:', 'CPU % A / B / redis-server', 'rest of host %:'], S.cells.map((c) => [
    fmt(c.rate), c.name, mmm(c.p50, us), mmm(c.p99, us), mmm(c.p999, us), mmm(c.max, us),
    `${fmt(num(c.observed.min) * 100, 2)} %`, fmt(med(c.readsPerSec)),
    `${fmt(med(c.cpuWriter))} / ${fmt(med(c.cpuReader))} / ${fmt(med(c.cpuRedis))}`, `${fmt(med(c.othersPct))}${disturbed(c.othersPct)}`,
  ]));
  const rates = S.params.rates;
  const cell = (rate, mode) => S.cells.find((c) => c.rate === rate && c.mode === mode);
  if (S.modes.length > 1) {
    table(['writes/s:', 'McCache p50 / re-read p50:', 'p99 / re-read p99:', 'McCache p50 / pub/sub p50:', 'p99 / pub/sub p99:'], rates.map((rate) => {
      const m = cell(rate, 'mccache');
      const a = cell(rate, 'redis-reread');
      const b = cell(rate, 'redis-pubsub');
      return [fmt(rate), x(med(m.p50), med(a.p50)), x(med(m.p99), med(a.p99)), x(med(m.p50), med(b.p50)), x(med(m.p99), med(b.p99))];
    }));
    p('Ratios of medians, same rate, same run: below 1x McCache is fresher.');
    for (const rate of rates) {
      const m = cell(rate, 'mccache');
      const a = cell(rate, 'redis-reread');
      const b = cell(rate, 'redis-pubsub');
      summary.push([`staleness p50 / p99 at ${fmt(rate)} writes/s`, `${us(med(m.p50))} / ${us(med(m.p99))}`,
        `Redis re-read ${us(med(a.p50))} / ${us(med(a.p99))}; pub/sub ${us(med(b.p50))} / ${us(med(b.p99))}`,
        `${x(med(m.p50), med(a.p50))} / ${x(med(m.p99), med(a.p99))} re-read; ${x(med(m.p50), med(b.p50))} / ${x(med(m.p99), med(b.p99))} pub/sub`]);
    }
    for (const rate of rates) {
      const m = cell(rate, 'mccache');
      for (const mode of ['redis-reread', 'redis-pubsub']) {
        const b = cell(rate, mode);
        for (const q of ['p50', 'p99']) {
          if (worse(med(m[q]), med(b[q]))) losses.push(`staleness ${q} at ${fmt(rate)} writes/s: McCache ${us(med(m[q]))} vs ${b.name} ${us(med(b[q]))} (${x(med(m[q]), med(b[q]))}, compare-staleness)`);
        }
      }
    }
  }
  for (const rate of rates) {
    chart(`staleness-${rate}`, lineChart({
      title: `Staleness at ${fmt(rate)} writes/s (all repetitions pooled)`, xLabel: 'percentile', yLabel: 'staleness (log)', xKind: 'pct', yKind: 'log', yFormat: (v) => us(v),
      series: S.modes.map((m) => ({ name: m.name, points: cdfPoints(cell(rate, m.id)?.pooled), markers: false })),
    }), `staleness at ${rate} writes/s`);
  }
  chart('staleness-by-rate', lineChart({
    title: 'Staleness p50 (solid) and p99 (dashed) vs write rate', xLabel: 'writes/s', yLabel: 'staleness (log)', xKind: 'log', yKind: 'log', yFormat: (v) => us(v),
    series: S.modes.flatMap((m, i) => ['p50', 'p99'].map((q) => ({
      name: `${m.name} ${q}`, color: PALETTE[i], dash: q === 'p99',
      points: rates.map((rate) => { const c = cell(rate, m.id); return [rate, med(c?.[q]), num(c?.[q]?.min), num(c?.[q]?.max)]; }),
    }))),
  }), 'staleness vs rate');
}

// ---- cluster mix -----------------------------------------------------------------------------
const C = R['cluster-mix'];
if (C) {
  const mix = C.params.mix;
  h2('Cluster throughput, mixed workload');
  p(`${C.params.sizes.join(' and ')} processes work at once, ${fmt(mix.get * 100)} % get / ${fmt(mix.insert * 100)} % insert / ${fmt(mix.update * 100)} % update / ${fmt(mix.delete * 100)} % delete, ${fmt(C.params.keys)} keys loaded per phase, ${C.params.valueChars}-character values, the offered load split evenly and paced by ~1 ms ticks, ${C.params.seconds} s per phase. McCache: every process holds the whole cache and writes replicate; "converge" is the time from the stop until the last remote write that left every member with the same checksum. Redis: one shared server, every process a client with at most ${C.params.maxInFlight} commands in flight. lru-cache per process shares nothing: it shows what the pacing loop and the mix cost by themselves. Effective ops/s = ops done / (load time + converge time). Source: bench/cluster-mix.bench.ts.`);
  const cellOf = (n, rate, s) => C.cells.find((c) => c.nodes === n && c.rate === rate && c.system === s);
  const cpuCmp = [];
  const memCmp = [];
  for (const n of C.params.sizes) {
    h3(`${n} processes`);
    table(['offered ops/s:', 'system', 'effective ops/s', 'x Redis:', 'converge', 'McCache lag p50 / p99', 'op call p50 / p99', 'CPU % per process (sum)', 'redis-server CPU %:', 'heap retained per process:', 'redis used_memory growth:', 'max RSS per process:', 'rest of host %:'],
      C.cells.filter((c) => c.nodes === n).map((c) => {
        const red = cellOf(n, c.rate, 'redis');
        return [
          fmt(c.rate), c.name, c.effective.n ? mmm(c.effective) : 'did not converge', red ? x(med(c.effective), med(red.effective)) : '-',
          c.system === 'mccache' ? `${mmm(c.convergeMs, ms)}${c.notConverged ? ` (${c.notConverged} not within ${C.params.convergeMaxMs / 1000} s)` : ''}` : '-',
          c.system === 'mccache' ? `${us(med(c.lagP50))} / ${us(med(c.lagP99))}` : '-',
          `${us(med(c.opP50))} / ${us(med(c.opP99))}`,
          `${fmt(med(c.cpuPerProcess))} (${fmt(med(c.cpuTotal))})`, c.system === 'redis' ? fmt(med(c.redisCpu)) : '-',
          mib(med(c.heapRetained)), c.system === 'redis' ? mib(med(c.redisMemGrowth)) : '-', mib(num(c.rssMax.max)), `${fmt(med(c.othersPct))}${disturbed(c.othersPct)}`,
        ];
      }));
    for (const rate of C.params.rates) {
      const m = cellOf(n, rate, 'mccache');
      const r = cellOf(n, rate, 'redis');
      if (m && r && (!m.effective.n || worse(med(r.effective), med(m.effective)))) losses.push(`cluster mix, ${n} processes, ${fmt(rate)} ops/s offered: McCache ${m.effective.n ? `${si(med(m.effective))} effective ops/s` : 'did not converge'} vs Redis ${si(med(r.effective))} (cluster-mix)`);
      if (m && r) {
        cpuCmp.push({ n, rate, a: med(m.cpuTotal), b: med(r.cpuTotal) + (med(r.redisCpu) || 0) });
        memCmp.push({ n, rate, per: med(m.heapRetained), a: med(m.heapRetained) * n, b: med(r.redisMemGrowth) });
      }
    }
  }
  for (const n of C.params.sizes) {
    const top = C.params.rates[C.params.rates.length - 1];
    const m = cellOf(n, top, 'mccache');
    const r = cellOf(n, top, 'redis');
    if (m && r) {
      summary.push([`cluster mix, ${n} processes, ${fmt(top)} ops/s offered: effective ops/s (CPU % of a core, all processes)`,
        `${m.effective.n ? si(med(m.effective)) : 'did not converge'} (${fmt(med(m.cpuTotal))} %)`,
        `Redis ${si(med(r.effective))} (${fmt(med(r.cpuTotal) + (med(r.redisCpu) || 0))} % with redis-server)`, x(med(m.effective), med(r.effective))]);
    }
  }
  // One line each for CPU and memory, over every (processes, rate) cell where McCache used more.
  const cpuWorse = cpuCmp.filter((c) => worse(c.a, c.b));
  if (cpuWorse.length) {
    const lo = cpuWorse.reduce((q, c) => (c.a / c.b < q.a / q.b ? c : q));
    const hi = cpuWorse.reduce((q, c) => (c.a / c.b > q.a / q.b ? c : q));
    losses.push(`CPU: in ${cpuWorse.length} of ${cpuCmp.length} cluster-mix cells the McCache processes together used more CPU than the Redis clients plus redis-server, from ${fmt(lo.a)} vs ${fmt(lo.b)} % of a core (${lo.n} processes, ${fmt(lo.rate)} ops/s) to ${fmt(hi.a)} vs ${fmt(hi.b)} % (${hi.n} processes, ${fmt(hi.rate)} ops/s)`);
  }
  const memWorse = memCmp.filter((c) => worse(c.a, c.b));
  if (memWorse.length) {
    const big = memWorse.reduce((q, c) => (c.a > q.a ? c : q));
    losses.push(`memory: every process keeps a full copy; in ${memWorse.length} of ${memCmp.length} cluster-mix cells the McCache processes together retained more heap than redis-server's used_memory grew, up to ${mib(big.per)} in each of ${big.n} processes (${mib(big.a)} in all) vs ${mib(big.b)} (${fmt(big.rate)} ops/s)`);
  }
  p('CPU % is of one core: median over processes and repetitions, and in brackets the sum over the processes. "McCache lag": put-to-visible on the other processes, from the wall instant stored in each value (worst process). Heap retained: heap used after a full GC at the end of the phase minus the same before it, median over processes: McCache keeps a full copy in every process, Redis keeps one copy in the server (its used_memory growth). RSS: the largest any process reached; the processes are reused across phases, so it carries their history.');
  const sysName = Object.fromEntries(C.systems.map((s) => [s.id, s.name]));
  const short = { mccache: 'McCache', redis: 'Redis', lru: 'lru-cache (not shared)' };
  const lines = C.params.sizes.flatMap((n, ni) => C.systems.map((s, si2) => ({ n, s: s.id, name: `${short[s.id] ?? sysName[s.id]}, ${n} proc.`, color: PALETTE[si2], dash: ni > 0 })));
  chart('cluster-throughput', lineChart({
    title: 'Effective throughput vs offered load (whiskers: min-max)', xLabel: 'offered ops/s (all processes)', yLabel: 'effective ops/s', diagonal: true, yZero: true,
    series: lines.map((l) => ({ name: l.name, color: l.color, dash: l.dash, points: C.params.rates.map((rate) => { const c = cellOf(l.n, rate, l.s); return [rate, med(c?.effective), num(c?.effective?.min), num(c?.effective?.max)]; }) })),
  }), 'cluster throughput vs offered load');
  chart('cluster-cpu', lineChart({
    title: 'CPU used vs offered load (all processes, + redis-server)', xLabel: 'offered ops/s (all processes)', yLabel: '% of one core', yZero: true, yFormat: (v) => fmt(v),
    series: lines.map((l) => ({ name: l.name, color: l.color, dash: l.dash, points: C.params.rates.map((rate) => { const c = cellOf(l.n, rate, l.s); return [rate, med(c?.cpuTotal) + (l.s === 'redis' ? (med(c?.redisCpu) || 0) : 0)]; }) })),
  }), 'cluster CPU vs offered load');
}

// ---- overload --------------------------------------------------------------------------------
const O = R['overload'];
if (O) {
  h2('Overload and recovery');
  p(`${O.params.nodes} McCache processes all write (random keys among ${fmt(O.params.keys)}, ${O.params.valueChars}-character values). First a paced sweep finds the sustainable rate (a step passes when the writers kept up, nothing was spilled or shed and every member's checksum agreed within ${O.params.sustainedConvergeMs} ms of the stop); then the same load at that rate for ${O.params.baseSeconds} s (1x, the baseline) and at twice it for ${O.params.overloadSeconds} s (2x). Pending: writes not yet handed to the transport; unacked: sent, not yet acknowledged by every member; spilled: pending writes beyond 65,536 kept as keys only and sent later from the cache (pending counts them); shed: spilled writes dropped beyond 8 times that, repaired later by anti-entropy. Drain: until nothing is pending or unacknowledged anywhere. Converge: until the last remote write that left every member with the same checksum. ${(O.reps ?? []).length > 1 ? `The sweep ran once, the 1x/2x pair ${O.reps.length} times.` : 'One run (no repetitions).'} Source: bench/overload.bench.ts.`);
  h3('Sweep');
  table(['writes/s:', 'achieved/s:', 'converge:', 'drain:', 'peak pending / unacked', 'spilled / shed:', 'retransmits / NAKs', 'CPU % per process', 'rest of host %:', 'pass'], O.sweep.map((r) => [
    fmt(r.rate), fmt(r.achieved), ms(num(r.convergeMs)), ms(num(r.drainMs)), `${fmt(r.peakPending)} / ${fmt(r.peakUnacked)}`, `${fmt(r.spilled ?? 0)} / ${fmt(r.shed)}`, `${fmt(r.retransmits)} / ${fmt(r.naksSent)}`,
    r.cpuPct.map((c) => fmt(c)).join(' / '), `${fmt(r.othersPct)}${r.othersPct > DISTURBED_PCT ? ' !' : ''}`, r.pass ? 'yes' : 'no',
  ]));
  p(O.sustainable ? `Sustainable in this run: **${fmt(O.sustainable)} writes/s** (3 processes together).` : 'No sweep step passed in this run; the 1x phase ran at the smallest step.');
  if (O.base && O.overload) {
    h3('1x vs 2x');
    const b = O.base;
    const o = O.overload;
    table(['phase', 'writes/s:', 's:', 'achieved/s:', 'peak pending:', 'peak unacked:', 'spilled / shed:', 'peak RSS (at start):', 'peak heap:', 'drain after stop:', 'converge after stop:', 'getClusterChecksum', 'entries per process', 'CPU % per process', 'rest of host %:'], [b, o].map((r) => [
      r.label, fmt(r.rate), fmt(r.seconds), fmt(r.achieved), fmt(r.peakPending), fmt(r.peakUnacked), `${fmt(r.spilled ?? 0)} / ${fmt(r.shed)}`, `${mib(r.peakRss)} (${mib(r.startRss)})`, mib(r.peakHeap),
      Number.isFinite(num(r.drainMs)) ? ms(num(r.drainMs)) : `> ${fmt(O.params.drainMaxMs / 1000)} s`, Number.isFinite(num(r.convergeMs)) ? ms(num(r.convergeMs)) : `not within ${fmt(O.params.drainMaxMs / 1000)} s`,
      r.clusterChecksum, r.entries.map((e) => fmt(e)).join(' / '), r.cpuPct.map((c) => fmt(c)).join(' / '), `${fmt(r.othersPct)}${r.othersPct > DISTURBED_PCT ? ' !' : ''}`,
    ]));
    const rr = (a, c) => (c >= 1 ? x(a, c, 1) : `${fmt(a)} vs ${fmt(c)}`);
    if ((O.reps ?? []).length > 1) {
      const span = (xs, f) => {
        const v = [...xs].map(num).sort((a1, a2) => (Number.isFinite(a1) ? a1 : Infinity) - (Number.isFinite(a2) ? a2 : Infinity));
        const g = (n) => (Number.isFinite(n) ? f(n) : `> ${fmt(O.params.drainMaxMs / 1000)} s`);
        return `${g(v[0])} / **${g(v[Math.floor((v.length - 1) / 2)])}** / ${g(v[v.length - 1])}`;
      };
      p(`The 1x/2x pair ran ${O.reps.length} times (the table shows the pair whose overload converged in the median time). Min / **median** / max over them: 2x spilled ${span(O.reps.map((r) => r.overload.spilled ?? 0), (n) => fmt(n))}, shed ${span(O.reps.map((r) => r.overload.shed), (n) => fmt(n))}, drain ${span(O.reps.map((r) => r.overload.drainMs), ms)}, converge ${span(O.reps.map((r) => r.overload.convergeMs), ms)}, peak heap ${span(O.reps.map((r) => r.overload.peakHeap), mib)}; 1x drain ${span(O.reps.map((r) => r.base.drainMs), ms)}, converge ${span(O.reps.map((r) => r.base.convergeMs), ms)}.`);
    }
    if (b.peakPending > 0 || b.shed > 0) {
      p(`At the 1x rate a backlog built up over ${fmt(b.seconds)} s (peak pending ${fmt(b.peakPending)}${b.spilled ? `, ${fmt(b.spilled)} spilled` : ''}${b.shed ? `, ${fmt(b.shed)} shed` : ''}) although the ${fmt(O.params.sweepSeconds)} s sweep step at that rate passed: the short step overstates what the cluster sustains for longer.`);
    }
    summary.push([`overload: 2x the sustainable rate (${fmt(o.rate)} writes/s) for ${fmt(o.seconds)} s, then stop: converge after the stop (peak pending, spilled, shed)`,
      `${Number.isFinite(num(o.convergeMs)) ? ms(num(o.convergeMs)) : `> ${fmt(O.params.drainMaxMs / 1000)} s`} (${fmt(o.peakPending)}, ${fmt(o.spilled ?? 0)} spilled, ${fmt(o.shed)} shed)`,
      `1x (${fmt(b.rate)} writes/s, ${fmt(b.seconds)} s): ${ms(num(b.convergeMs))} (${fmt(b.peakPending)})`, rr(num(o.convergeMs), num(b.convergeMs))]);
    p(`2x / 1x: peak pending ${rr(o.peakPending, b.peakPending)}, peak unacked ${rr(o.peakUnacked, b.peakUnacked)}, peak RSS ${x(o.peakRss, b.peakRss, 1)}, drain ${rr(num(o.drainMs), num(b.drainMs))} (ms), converge ${rr(num(o.convergeMs), num(b.convergeMs))} (ms). Final coherence: ${Number.isFinite(num(o.convergeMs)) ? 'every member ended with the same checksum' : '**the members had not converged when the bench stopped waiting**'}.`);
    const seriesOf = (r, field, f = (v) => v) => {
      // One line per phase: the largest value over the processes at each sample time.
      const byT = new Map();
      for (const s of r.series.flat()) {
        const t = Math.round(s.t / 250) * 250;
        byT.set(t, Math.max(byT.get(t) ?? -Infinity, f(s[field])));
      }
      return [...byT].sort((a1, a2) => a1[0] - a2[0]).map(([t, v]) => [t / 1000, v]);
    };
    const stops = [{ x: b.seconds, label: '1x stops', color: PALETTE[0] }, { x: o.seconds, label: '2x stops', color: PALETTE[1], row: 1 }];
    chart('overload-backlog', lineChart({
      title: 'Backlog over time (largest over the processes)', xLabel: 's since the load started', yLabel: 'messages / writes', yZero: true, xZero: true, yFormat: (v) => si(v), vlines: stops,
      series: [
        { name: '2x pending', points: seriesOf(o, 'pending'), markers: false, color: PALETTE[1] },
        { name: '2x unacked', points: seriesOf(o, 'unacked'), markers: false, color: PALETTE[1], dash: true },
        { name: '1x pending', points: seriesOf(b, 'pending'), markers: false, color: PALETTE[0] },
        { name: '1x unacked', points: seriesOf(b, 'unacked'), markers: false, color: PALETTE[0], dash: true },
      ],
    }), 'backlog over time');
    chart('overload-memory', lineChart({
      title: 'Memory over time (largest over the processes)', xLabel: 's since the load started', yLabel: 'MiB', yZero: true, xZero: true, yFormat: (v) => fmt(v), vlines: stops,
      series: [
        { name: '2x RSS', points: seriesOf(o, 'rss', (v) => v / 2 ** 20), markers: false, color: PALETTE[1] },
        { name: '2x heap used', points: seriesOf(o, 'heap', (v) => v / 2 ** 20), markers: false, color: PALETTE[1], dash: true },
        { name: '1x RSS', points: seriesOf(b, 'rss', (v) => v / 2 ** 20), markers: false, color: PALETTE[0] },
        { name: '1x heap used', points: seriesOf(b, 'heap', (v) => v / 2 ** 20), markers: false, color: PALETTE[0], dash: true },
      ],
    }), 'memory over time');
    if (!String(o.clusterChecksum).startsWith('equal') || !String(b.clusterChecksum).startsWith('equal')) {
      losses.push(`getClusterChecksum() did not return every member's checksum after the overload bench (1x: ${b.clusterChecksum}; 2x: ${o.clusterChecksum}); the local checksums are what "converge" compares (overload)`);
    }
    if (!Number.isFinite(num(o.convergeMs))) losses.push(`after 2x overload the members had not converged within ${fmt(O.params.drainMaxMs / 1000)} s (overload)`);
  }
}

// ---- large values ----------------------------------------------------------------------------
const V = R['large-values'];
if (V) {
  h2('Large values under loss');
  p(`Three processes: one writes, two read. ${fmt(V.params.rateBytes / 2 ** 20)} MiB/s of values for each size (${V.params.sizes.map((s) => `${fmt(V.params.rateBytes / s)} puts/s of ${s / 1024} KB`).join(', ')}), each put a new key. Loss is MCCACHE_MONKEY_TANTRUM: every process drops that share of its outgoing datagrams (data, ACKs and NAKs alike) before they reach the socket. Latency: put until both readers hold it (worst reader). Baseline: Redis pub/sub invalidation moving the same values over loopback TCP, where nothing is lost on purpose. Source: bench/large-values.bench.ts.`);
  table(['value:', 'path', 'p50', 'p99', 'max', 'x 0 % p50:', 'x Redis p50:', 'delivery (worst):', 'drain after the last put', 'datagrams / dropped / retransmits / NAKs', 'rest of host %:'], V.cells.map((c) => {
    const zero = V.cells.find((z) => z.size === c.size && z.path === 'mccache' && z.loss === 0);
    const red = V.cells.find((z) => z.size === c.size && z.path === 'redis-pubsub');
    return [
      `${c.size / 1024} KB`, c.name, mmm(c.p50, us), mmm(c.p99, us), mmm(c.max, us), x(med(c.p50), med(zero?.p50)), red ? x(med(c.p50), med(red.p50)) : '-',
      `${fmt(num(c.delivery.min) * 100, 2)} %`, `${mmm(c.drainMs, ms)}${c.incomplete ? ` (${c.incomplete} incomplete)` : ''}`,
      c.path === 'mccache' ? [c.datagramsOut, c.tantrumDropped, c.retransmits, c.naksSent].map((s) => fmt(med(s))).join(' / ') : '-', `${fmt(med(c.othersPct))}${disturbed(c.othersPct)}`,
    ];
  }));
  const cats = V.cells.filter((c) => c.size === V.params.sizes[0]).map((c) => (c.path === 'mccache' ? `McCache\n${c.loss} % loss` : 'Redis pub/sub\n(no loss)'));
  chart('large-values', barChart({
    title: 'Put until visible on both readers: p50 (log; whiskers: min-max)', yLabel: 'latency', yKind: 'log', yFormat: (v) => us(v),
    categories: cats,
    series: V.params.sizes.map((size) => ({ name: `${size / 1024} KB`, values: V.cells.filter((c) => c.size === size).map((c) => [med(c.p50), num(c.p50.min), num(c.p50.max)]) })),
  }), 'large values p50');
  chart('large-values-p99', barChart({
    title: 'Put until visible on both readers: p99 (log; whiskers: min-max)', yLabel: 'latency', yKind: 'log', yFormat: (v) => us(v),
    categories: cats,
    series: V.params.sizes.map((size) => ({ name: `${size / 1024} KB`, values: V.cells.filter((c) => c.size === size).map((c) => [med(c.p99), num(c.p99.min), num(c.p99.max)]) })),
  }), 'large values p99');
  for (const c of V.cells.filter((z) => z.path === 'mccache')) {
    const red = V.cells.find((z) => z.size === c.size && z.path === 'redis-pubsub');
    if (red) summary.push([`${c.size / 1024} KB values, ${c.loss} % loss: put until visible, p50 / p99`, `${us(med(c.p50))} / ${us(med(c.p99))}`, `Redis pub/sub (no loss) ${us(med(red.p50))} / ${us(med(red.p99))}`, `${x(med(c.p50), med(red.p50))} / ${x(med(c.p99), med(red.p99))}`]);
    if (red && worse(med(c.p50), med(red.p50))) losses.push(`${c.size / 1024} KB values, ${c.loss} % loss: p50 ${us(med(c.p50))} vs Redis pub/sub ${us(med(red.p50))} without loss (${x(med(c.p50), med(red.p50))}, large-values)`);
    if (num(c.delivery.min) < 1) losses.push(`${c.size / 1024} KB values, ${c.loss} % loss: worst delivery ${fmt(num(c.delivery.min) * 100, 2)} % within ${V.params.drainDeadlineMs / 1000} s (large-values)`);
  }
}

// ---- where it loses --------------------------------------------------------------------------
h2('Where McCache loses');
p('Measured in this run (every comparison above where McCache came out worse than a baseline, listed by the generator from the results):');
list(losses.length ? losses : ['(none of the compared figures in this run)']);
p('Not measured here, and true by design (README, "Consistency: what is guaranteed"):');
list([
  'No strong consistency: a write is local at once and reaches the other processes later (the staleness figures above); two processes can write the same key concurrently and the newer version wins. Redis read from a single server gives every reader the latest acknowledged write.',
  'Every process holds every key (mode 1): a data set larger than one process\'s memory, or one that many processes would each duplicate, is better served by one shared server.',
  'Host-local multicast only in these runs (127.0.0.1, TTL 0): no real network, no switch, no cross-host clocks.',
]);

// ---- other benches ---------------------------------------------------------------------------
const others = logs.filter((l) => !COMPARISONS.includes(l.name));
if (others.length) {
  h2('The other benches (their output, verbatim)');
  p('bench/run.mjs keeps each bench\'s printed output in bench/results/<name>.log; these are the ones without a JSON result. Each prints its own baseline and ratios.');
  for (const l of others) pre(`${l.name}.bench`, l.text.trimEnd());
}

// ---------------------------------------------------------------------------------------------
// rendering
// ---------------------------------------------------------------------------------------------

const mdCell = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');
function renderMd() {
  const out = [];
  for (const b of doc) {
    if (b.h) out.push(`${'#'.repeat(b.h)} ${b.t}`, '');
    else if (b.p) out.push(b.p, '');
    else if (b.list) out.push(...b.list.map((i) => `- ${i}`), '');
    else if (b.head) {
      out.push(`| ${b.head.map((h) => mdCell(h.replace(/:$/, ''))).join(' | ')} |`);
      out.push(`|${b.head.map((h) => (h.endsWith(':') ? '---:' : '---')).join('|')}|`);
      for (const r of b.rows) out.push(`| ${r.map(mdCell).join(' | ')} |`);
      out.push('');
    } else if (b.chart) out.push(`![${b.alt}](bench/charts/${b.chart}.svg)`, '');
    else if (b.pre !== undefined) out.push(`<details><summary>${b.summary}</summary>`, '', '```text', b.pre, '```', '', '</details>', '');
  }
  return `${out.join('\n').trimEnd()}\n`;
}

/** Markdown inline subset used above: **bold** and `code`. */
const inline = (s) => esc(s).replace(/\*\*(.+?)\*\*/g, '<b>$1</b>').replace(/`([^`]+)`/g, '<code>$1</code>');
function renderHtml() {
  const out = [];
  for (const b of doc) {
    if (b.h) out.push(`<h${b.h}>${inline(b.t)}</h${b.h}>`);
    else if (b.p) out.push(`<p>${inline(b.p)}</p>`);
    else if (b.list) out.push(`<ul>${b.list.map((i) => `<li>${inline(i)}</li>`).join('')}</ul>`);
    else if (b.head) {
      const al = (h) => (h.endsWith(':') ? ' class="n"' : '');
      out.push('<div class="t"><table>');
      out.push(`<tr>${b.head.map((h) => `<th${al(h)}>${esc(h.replace(/:$/, ''))}</th>`).join('')}</tr>`);
      for (const r of b.rows) out.push(`<tr>${r.map((c, i) => `<td${al(b.head[i] ?? '')}>${inline(c)}</td>`).join('')}</tr>`);
      out.push('</table></div>');
    } else if (b.chart) {
      // Inline SVG needs no namespace attribute: the page then holds no URL at all.
      out.push(`<figure>${charts.find((c) => c.id === b.chart).svg.replace(' xmlns="http://www.w3.org/2000/svg"', '')}</figure>`);
    }
    else if (b.pre !== undefined) out.push(`<details><summary>${esc(b.summary)}</summary><pre>${esc(b.pre)}</pre></details>`);
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>McCache benchmarks</title>
<style>
body { font: 14px/1.45 Helvetica, Arial, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; font-size: 12.5px; margin: .6em 0 1.2em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; vertical-align: top; }
th { background: #f3f3f3; text-align: left; } .n { text-align: right; white-space: nowrap; }
.t { overflow-x: auto; } figure { margin: .5em 0 1.5em; } svg { max-width: 100%; height: auto; }
pre { font-size: 11.5px; overflow-x: auto; background: #f7f7f7; padding: .6em; } code { background: #f3f3f3; padding: 0 .2em; }
</style></head><body>
${out.join('\n')}
</body></html>
`;
}

mkdirSync(chartsDir, { recursive: true });
// Charts of benches that did not run this time would be stale: start from an empty folder.
for (const f of readdirSync(chartsDir)) if (f.endsWith('.svg')) rmSync(join(chartsDir, f));
for (const c of charts) writeFileSync(join(chartsDir, `${c.id}.svg`), `${c.svg}\n`);
writeFileSync(OUT_MD, renderMd());
writeFileSync(OUT_HTML, renderHtml());
console.log(`report: ${OUT_MD}, ${OUT_HTML}, ${charts.length} charts in ${chartsDir} (from ${COMPARISONS.filter((n) => R[n]).length} JSON results and ${logs.length} logs in ${resultsDir})`);
