/**
 * The HTML report of `mccache stress --report FILE.html` (runtime/cli/stress.ts).
 *
 * Self-contained by design: one file with its style inline and charts drawn here as inline SVG
 * (no chart library), and nothing that makes a browser fetch anything: no script, no link, no
 * font, no image, no URL (inline SVG in HTML needs no xmlns). It can be mailed or attached to a
 * CI run and opened offline.
 *
 * Contents: the verdict line as the run printed it, the run's parameters, put-to-visible
 * latency percentiles (the same strings the run printed) and their distribution (a histogram on
 * a log scale, 5 bins per decade, with p50/p90/p99 marked), throughput in ops/s for every second
 * of the writes, the send queues (pending writes, unacknowledged messages) and the NAKs,
 * retransmissions and deliberate drops of each second, and a table of those per-second numbers.
 */

export interface StressSecond {
  /** Writes queued for sending (cache level), summed over the nodes, at the end of the second. */
  pending: number;
  /** Messages sent and not yet acknowledged by every member, summed over the nodes. */
  unacked: number;
  /** NAKs sent during this second, all nodes. */
  naks: number;
  /** Retransmissions during this second, all nodes. */
  retransmits: number;
  /** Datagrams dropped on purpose (--drop) during this second, all nodes. */
  dropped: number;
}

export interface StressReport {
  /** The run's parameters, name and value, in the order shown. */
  parameters: Array<[string, string]>;
  /** When the run started, ISO 8601. */
  startedAt: string;
  /** Node.js version of the run. */
  node: string;
  verdict: {
    coherent: boolean;
    /** The verdict line exactly as printed. */
    line: string;
    /** The differences printed before an INCOHERENT verdict. */
    details: string[];
  };
  latency: {
    /** Every put-to-visible latency observed, ms, sorted ascending. */
    sortedMs: number[];
    /** The latency line exactly as printed, and its four figures as printed. */
    line: string;
    p50: string;
    p90: string;
    p99: string;
    max: string;
  };
  /** Ops of all nodes during each second of the writes (index 0 = the first second). */
  opsPerSecond: number[];
  /** One sample per second of the writes. */
  seconds: StressSecond[];
  totals: { ops: number; writeSeconds: string; drain: string; naks: number; retransmits: number; dropped: number };
}

const W = 760;
const H = 260;
const M = { left: 64, right: 20, top: 42, bottom: 44 };
const COLORS = { ops: '#3b6ea5', queue: '#c0392b', unacked: '#e67e22', naks: '#8e44ad', retransmits: '#16a085', dropped: '#7f8c8d' };

/** The report as one HTML document. */
export function stressReportHtml(r: StressReport): string {
  const v = r.verdict;
  const lat = r.latency;
  const rows = r.seconds.map((s, i) => `<tr><td>${i + 1}</td><td>${r.opsPerSecond[i] ?? 0}</td><td>${s.pending}</td><td>${s.unacked}</td>`
    + `<td>${s.naks}</td><td>${s.retransmits}</td><td>${s.dropped}</td></tr>`).join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<title>${esc(`mccache stress: ${v.coherent ? 'COHERENT' : 'INCOHERENT'}`)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
.verdict { font-weight: bold; padding: 0.6em 0.8em; border-radius: 4px; }
.coherent { background: #e3f4e1; } .incoherent { background: #f9e0dd; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th { background: #f2f2f2; } td.name { text-align: left; }
pre { background: #f6f6f6; padding: 0.5em; white-space: pre-wrap; }
svg { display: block; margin: 0.5em 0; } svg text { font-size: 11px; fill: #333; }
</style>
</head>
<body>
<h1>mccache stress report</h1>
<p id="verdict" class="verdict ${v.coherent ? 'coherent' : 'incoherent'}">${esc(v.line)}</p>
${v.details.length > 0 ? `<pre id="differences">${esc(v.details.join('\n'))}</pre>\n` : ''}<h2>Run</h2>
<table id="parameters">
${r.parameters.map(([k, x]) => `<tr><td class="name">${esc(k)}</td><td>${esc(x)}</td></tr>`).join('\n')}
<tr><td class="name">started</td><td>${esc(r.startedAt)}</td></tr>
<tr><td class="name">Node.js</td><td>${esc(r.node)}</td></tr>
<tr><td class="name">ops written</td><td>${r.totals.ops} in ${esc(r.totals.writeSeconds)} s</td></tr>
<tr><td class="name">drain time</td><td>${esc(r.totals.drain)}</td></tr>
<tr><td class="name">NAKs, retransmits, dropped on purpose</td><td>${r.totals.naks}, ${r.totals.retransmits}, ${r.totals.dropped}</td></tr>
</table>
<h2>Put-to-visible latency</h2>
<p>From a write on one node to its remote-set event on another (${lat.sortedMs.length} remote sets).</p>
<table id="latency">
<tr><th>p50 (ms)</th><th>p90 (ms)</th><th>p99 (ms)</th><th>max (ms)</th></tr>
<tr><td id="latency-p50">${esc(lat.p50)}</td><td id="latency-p90">${esc(lat.p90)}</td><td id="latency-p99">${esc(lat.p99)}</td><td id="latency-max">${esc(lat.max)}</td></tr>
</table>
<pre id="latency-line">${esc(lat.line)}</pre>
${latencyHistogram(lat.sortedMs, [['p50', lat.p50], ['p90', lat.p90], ['p99', lat.p99]])}
<h2>Throughput</h2>
${barChart('chart-throughput', 'ops/s, all nodes, per second of the writes', 'second of the run', r.opsPerSecond, COLORS.ops)}
<h2>Send queues and repairs</h2>
${lineChart('chart-queues', 'per second of the writes, all nodes', 'second of the run', [
    { name: 'pending writes', color: COLORS.queue, values: r.seconds.map((s) => s.pending) },
    { name: 'unacked messages', color: COLORS.unacked, values: r.seconds.map((s) => s.unacked) },
    { name: 'NAKs/s', color: COLORS.naks, values: r.seconds.map((s) => s.naks) },
    { name: 'retransmits/s', color: COLORS.retransmits, values: r.seconds.map((s) => s.retransmits) },
    { name: 'dropped/s', color: COLORS.dropped, values: r.seconds.map((s) => s.dropped) },
  ])}
<h2>Per second</h2>
<table id="per-second">
<tr><th>second</th><th>ops/s</th><th>pending</th><th>unacked</th><th>NAKs</th><th>retransmits</th><th>dropped</th></tr>
${rows}
</table>
</body>
</html>
`;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** A number for an SVG attribute: 1 decimal, no exponent. */
function n(x: number): string {
  return (Math.round(x * 10) / 10).toFixed(1).replace(/\.0$/, '');
}

/** Round tick values from 0 to at least `max`: steps of 1, 2 or 5 times a power of ten, at most 6 ticks. */
export function niceTicks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * p).find((s) => s >= raw)!;
  const count = Math.ceil(max / step - 1e-9);
  return Array.from({ length: count + 1 }, (_v, i) => Number((i * step).toPrecision(12)));
}

function frame(id: string, title: string, xLabel: string, body: string, legend = ''): string {
  return `<svg id="${id}" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">
<text x="${M.left}" y="16">${esc(title)}</text>
<text x="${n(M.left + (W - M.left - M.right) / 2)}" y="${H - 6}" text-anchor="middle">${esc(xLabel)}</text>
${body}${legend}
</svg>`;
}

/** Y axis with grid lines; returns the SVG and the y of a value. */
function yAxis(max: number): { svg: string; y: (v: number) => number; top: number } {
  const ticks = niceTicks(max);
  const top = ticks[ticks.length - 1]!;
  const y0 = H - M.bottom;
  const y = (v: number): number => y0 - (v / top) * (y0 - M.top);
  const svg = ticks.map((t) => `<line x1="${M.left}" x2="${W - M.right}" y1="${n(y(t))}" y2="${n(y(t))}" stroke="#e4e4e4"/>`
    + `<text x="${M.left - 6}" y="${n(y(t) + 4)}" text-anchor="end">${t}</text>`).join('\n');
  return { svg, y, top };
}

/** X ticks for `count` seconds (1..count), about 10 labels. */
function secondTicks(count: number, x: (i: number) => number): string {
  const every = Math.max(1, Math.ceil(count / 10));
  const out: string[] = [];
  for (let i = 0; i < count; i += every) {
    out.push(`<text x="${n(x(i))}" y="${H - M.bottom + 14}" text-anchor="middle">${i + 1}</text>`);
  }
  return out.join('\n');
}

function barChart(id: string, title: string, xLabel: string, values: number[], color: string): string {
  if (values.length === 0) return frame(id, title, xLabel, `<text x="${M.left}" y="${H / 2}">no data</text>`);
  const { svg: axis, y } = yAxis(Math.max(...values));
  const slot = (W - M.left - M.right) / values.length;
  const x = (i: number): number => M.left + slot * (i + 0.5);
  const bars = values.map((v, i) => `<rect x="${n(M.left + slot * i + slot * 0.1)}" y="${n(y(v))}" width="${n(slot * 0.8)}" `
    + `height="${n(y(0) - y(v))}" fill="${color}"><title>second ${i + 1}: ${v} ops/s</title></rect>`).join('\n');
  return frame(id, title, xLabel, `${axis}\n${bars}\n${secondTicks(values.length, x)}`);
}

interface Series { name: string; color: string; values: number[] }

function lineChart(id: string, title: string, xLabel: string, series: Series[]): string {
  const count = Math.max(0, ...series.map((s) => s.values.length));
  if (count === 0) return frame(id, title, xLabel, `<text x="${M.left}" y="${H / 2}">no data</text>`);
  const { svg: axis, y } = yAxis(Math.max(0, ...series.flatMap((s) => s.values)));
  const x = (i: number): number => M.left + (count === 1 ? 0 : ((W - M.left - M.right) * i) / (count - 1));
  const lines = series.map((s) => `<polyline fill="none" stroke="${s.color}" stroke-width="1.8" `
    + `points="${s.values.map((v, i) => `${n(x(i))},${n(y(v))}`).join(' ')}"><title>${esc(s.name)}</title></polyline>`).join('\n');
  const legend = series.map((s, i) => `<rect x="${M.left + i * 140}" y="22" width="10" height="10" fill="${s.color}"/>`
    + `<text x="${M.left + 14 + i * 140}" y="31">${esc(s.name)}</text>`).join('\n');
  return frame(id, title, xLabel, `${axis}\n${lines}\n${secondTicks(count, x)}`, `\n${legend}`);
}

/** Bins per decade of the latency histogram. */
const BINS_PER_DECADE = 5;

/** Counts of `sortedMs` in log-spaced bins [10^(k/5), 10^((k+1)/5)) ms; values below 1 µs go to the first bin. */
export function latencyBins(sortedMs: number[]): Array<{ from: number; to: number; count: number }> {
  if (sortedMs.length === 0) return [];
  const k = (v: number): number => Math.floor(Math.log10(Math.max(v, 0.001)) * BINS_PER_DECADE);
  const first = k(sortedMs[0]!);
  const last = k(sortedMs[sortedMs.length - 1]!);
  const bins = Array.from({ length: last - first + 1 }, (_v, i) => ({
    from: 10 ** ((first + i) / BINS_PER_DECADE), to: 10 ** ((first + i + 1) / BINS_PER_DECADE), count: 0,
  }));
  for (const v of sortedMs) bins[k(v) - first]!.count++;
  return bins;
}

function latencyHistogram(sortedMs: number[], marks: Array<[string, string]>): string {
  const id = 'chart-latency';
  const title = 'put-to-visible latency distribution (count per bin, log scale of ms)';
  const bins = latencyBins(sortedMs);
  if (bins.length === 0) return frame(id, title, 'ms', `<text x="${M.left}" y="${H / 2}">no remote sets were observed</text>`);
  const lo = Math.log10(bins[0]!.from);
  const hi = Math.log10(bins[bins.length - 1]!.to);
  const x = (ms: number): number => M.left + ((Math.log10(Math.max(ms, 0.001)) - lo) / (hi - lo)) * (W - M.left - M.right);
  const { svg: axis, y } = yAxis(Math.max(...bins.map((b) => b.count)));
  const bars = bins.map((b) => `<rect x="${n(x(b.from) + 1)}" y="${n(y(b.count))}" width="${n(Math.max(1, x(b.to) - x(b.from) - 2))}" `
    + `height="${n(y(0) - y(b.count))}" fill="${COLORS.ops}"><title>${fmtMs(b.from)}..${fmtMs(b.to)} ms: ${b.count}</title></rect>`).join('\n');
  const decades: string[] = [];
  for (let d = Math.ceil(lo); d <= Math.floor(hi); d++) {
    decades.push(`<text x="${n(x(10 ** d))}" y="${H - M.bottom + 14}" text-anchor="middle">${fmtMs(10 ** d)}</text>`);
  }
  const lines = marks.filter(([, v]) => Number.isFinite(Number(v))).map(([name, v], i) => {
    const at = n(x(Number(v)));
    // Labels near the right edge go on the line's left, so they are not cut off.
    const side = x(Number(v)) > W - M.right - 110 ? 'dx="-3" text-anchor="end"' : 'dx="3"';
    return `<line x1="${at}" x2="${at}" y1="${M.top}" y2="${H - M.bottom}" stroke="${COLORS.queue}" stroke-dasharray="4 3"/>`
      + `<text x="${at}" y="${M.top + 12 + i * 12}" ${side}>${esc(`${name} ${v} ms`)}</text>`;
  }).join('\n');
  return frame(id, title, 'ms (log scale)', `${axis}\n${bars}\n${decades.join('\n')}\n${lines}`);
}

function fmtMs(v: number): string {
  return v >= 1 ? String(Number(v.toPrecision(3))) : String(Number(v.toPrecision(2)));
}
