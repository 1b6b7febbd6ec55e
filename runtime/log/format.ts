/**
 * MCCACHE_LOG_FORMAT: how each log line looks.
 *
 *   'json'   one JSON object per line, pino's own format (time in epoch ms, numeric level,
 *            pid, hostname, name, msg and the fields). The default: any log shipper reads it,
 *            and `pino-pretty` renders it for people.
 *   'text'   the template '%(asctime)s %(levelname)s %(name)s %(message)s'.
 *   other    a template in Python logging's %-style, the syntax McCache-for-Python users
 *            already write in MCCACHE_LOG_FORMAT: `%(attr)<flags><width><s|d|f>` and `%%`.
 *
 * Attributes (Python's LogRecord names where one exists): asctime ('YYYY-MM-DD HH:MM:SS,mmm',
 * local time, Python's default), created (epoch seconds), msecs, levelname (TRACE, DEBUG,
 * INFO, WARNING, ERROR), name, message (the message, then the fields as JSON when there are
 * any), process, thread (the worker thread id, 0 on the main thread), hostname. McCache's own
 * `%(ipV4)s` and `%(lineno)d` have no counterpart here; a template that uses an attribute not
 * in this list is refused when the settings are resolved, not at the first log line.
 */
import { hostname } from 'node:os';
import { threadId } from 'node:worker_threads';

export const LOG_ATTRIBUTES = ['asctime', 'created', 'msecs', 'levelname', 'name', 'message', 'process', 'thread', 'hostname'] as const;
export type LogAttribute = (typeof LOG_ATTRIBUTES)[number];

export const TEXT_TEMPLATE = '%(asctime)s %(levelname)s %(name)s %(message)s';

/** One log record as pino writes it (the parsed JSON line). */
export interface LogRecord {
  level: number;
  time: number;
  msg?: string;
  name?: string;
  pid?: number;
  hostname?: string;
  [field: string]: unknown;
}

export type LineFormatter = (record: LogRecord) => string;

/** Thrown by `compileLogFormat` for a bad template; the settings layer names the source. */
export class LogFormatError extends Error {}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARNING', 50: 'ERROR', 60: 'CRITICAL' };
// pino's own keys, which are not fields of the message.
const RECORD_KEYS = new Set(['level', 'time', 'msg', 'name', 'pid', 'hostname']);
const TOKEN = /%(?:%|\((\w+)\)([-0]?)(\d*)([sdf]))/y;

/**
 * Compiles a MCCACHE_LOG_FORMAT value: `undefined` for 'json' (pino writes its lines as they
 * are), otherwise a function that renders one record as one line (without the newline).
 * Throws LogFormatError for a template with an unknown attribute or a stray '%'.
 */
export function compileLogFormat(format: string): LineFormatter | undefined {
  if (format === 'json') return undefined;
  const template = format === 'text' ? TEXT_TEMPLATE : format;
  const parts: ((r: LogRecord) => string)[] = [];
  let literal = '';
  let i = 0;
  while (i < template.length) {
    const pct = template.indexOf('%', i);
    if (pct < 0) {
      literal += template.slice(i);
      break;
    }
    literal += template.slice(i, pct);
    TOKEN.lastIndex = pct;
    const m = TOKEN.exec(template);
    if (!m) throw new LogFormatError(`a '%' at offset ${pct} starts no %(attribute)s, %(attribute)d, %(attribute)f or %%`);
    i = TOKEN.lastIndex;
    if (m[0] === '%%') {
      literal += '%';
      continue;
    }
    const [, attr = '', flag = '', widthText = '', conv = 's'] = m;
    if (!(LOG_ATTRIBUTES as readonly string[]).includes(attr)) {
      throw new LogFormatError(`unknown attribute %(${attr}); known: ${LOG_ATTRIBUTES.join(', ')}`);
    }
    if (literal) {
      const text = literal;
      parts.push(() => text);
      literal = '';
    }
    const get = attribute(attr as LogAttribute);
    const width = widthText ? Number(widthText) : 0;
    parts.push((r) => pad(convert(get(r), conv), width, flag));
  }
  if (literal) parts.push(() => literal);
  return (r) => {
    let line = '';
    for (const p of parts) line += p(r);
    return line;
  };
}

function attribute(attr: LogAttribute): (r: LogRecord) => unknown {
  switch (attr) {
    case 'asctime': return (r) => asctime(r.time);
    case 'created': return (r) => r.time / 1000;
    case 'msecs': return (r) => r.time % 1000;
    case 'levelname': return (r) => LEVEL_NAMES[r.level] ?? `LEVEL${r.level}`;
    case 'name': return (r) => r.name ?? '';
    case 'message': return message;
    case 'process': return (r) => r.pid ?? process.pid;
    case 'thread': return () => threadId;
    case 'hostname': return (r) => r.hostname ?? hostname();
  }
}

function message(r: LogRecord): string {
  let fields: Record<string, unknown> | undefined;
  for (const k of Object.keys(r)) {
    if (RECORD_KEYS.has(k)) continue;
    (fields ??= {})[k] = r[k];
  }
  const msg = r.msg ?? '';
  return fields ? `${msg} ${JSON.stringify(fields)}` : msg;
}

function convert(v: unknown, conv: string): string {
  if (conv === 's') return String(v);
  const n = typeof v === 'number' ? v : Number(v);
  return conv === 'd' ? String(Math.trunc(n)) : n.toFixed(6);
}

function pad(s: string, width: number, flag: string): string {
  if (s.length >= width) return s;
  if (flag === '-') return s.padEnd(width);
  if (flag === '0') return s.startsWith('-') ? `-${s.slice(1).padStart(width - 1, '0')}` : s.padStart(width, '0');
  return s.padStart(width);
}

const two = (n: number): string => String(n).padStart(2, '0');
function asctime(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())},${String(d.getMilliseconds()).padStart(3, '0')}`;
}
