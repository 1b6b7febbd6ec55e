/**
 * The runtime's logger: McCache's logging knobs (MCCACHE_LOG_FILENAME, MCCACHE_LOG_FORMAT,
 * MCCACHE_DEBUG_LEVEL; see runtime/config/settings.ts) on top of pino.
 *
 * - Off by default: with no logFilename and debugLevel 0 nothing is written anywhere and every
 *   call is a no-op. A logFilename sends the log there (appended; its folder is created);
 *   otherwise a debugLevel above 0 sends it to stderr.
 * - Levels: debugLevel 0 logs info and above, 1-2 (McCache's BASIC) adds debug, 3-5 (EXTRA,
 *   SUPERFLUOUS) adds trace. Callers gate costly detail with `isLevelEnabled`.
 * - Synchronous destinations (pino.destination with sync: true, i.e. sonic-boom writing with
 *   fs.writeSync): no worker thread, no timer, nothing that keeps the process alive or loses
 *   the last lines when it exits. Logging is for debugging here, so the cost of a write system
 *   call per line is acceptable. One file descriptor per log file per process, shared by every
 *   logger that names the same file.
 * - Secrets never appear: pino redacts `cryptoKey` at the top level and one level down, and
 *   the key Buffer itself renders as "[redacted]" (settings.ts), deeper too.
 */
import { resolve } from 'node:path';
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type { Settings } from '../config/settings';
import { ErrorCode, McCacheError } from '../errors';
import { compileLogFormat, type LogRecord } from './format';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface Logger {
  /** McCache's debug level this logger was made with (0..5). */
  readonly debugLevel: number;
  /** Whether a call at `level` writes anything; false for every level when logging is off. */
  isLevelEnabled(level: LogLevel): boolean;
  trace(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose lines all carry `bindings` (e.g. { cache: 'demo' }). */
  child(bindings: LogFields): Logger;
  /** Writes out anything buffered (nothing is, with the synchronous destinations used here). */
  flush(): void;
}

export type LoggerSettings = Pick<Settings, 'logFilename' | 'logFormat' | 'debugLevel'>;

export interface LoggerHooks {
  /** Where debug output goes when there is no logFilename. @default fd 2, synchronously */
  stderr?: DestinationStream;
}

const REDACT = { paths: ['cryptoKey', '*.cryptoKey'], censor: '[redacted]' };

const silent: Logger = Object.freeze({
  debugLevel: 0,
  isLevelEnabled: () => false,
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silent,
  flush: noop,
});
function noop(): void {}

/** Open log files, by absolute path: one descriptor each, for the life of the process. */
const files = new Map<string, ReturnType<typeof pino.destination>>();
let stderrDestination: ReturnType<typeof pino.destination> | undefined;

/**
 * Builds the logger `settings` ask for (see the module comment). Throws McCacheError
 * MCCACHE_ERR_INVALID_OPTION naming logFilename when the file cannot be opened for appending,
 * and naming logFormat for a bad template (resolveSettings has normally caught that already).
 */
export function createLogger(settings: LoggerSettings, hooks: LoggerHooks = {}): Logger {
  const { logFilename, logFormat, debugLevel } = settings;
  if (logFilename === undefined && debugLevel <= 0) return silent;

  let destination: DestinationStream;
  if (logFilename !== undefined) {
    destination = openFile(logFilename);
  } else {
    destination = hooks.stderr ?? (stderrDestination ??= pino.destination({ dest: 2, sync: true }));
  }
  const sink = destination as { flushSync?: () => void };
  const flush = (): void => {
    try {
      sink.flushSync?.();
    } catch {
      // nothing buffered, or the descriptor is gone: a flush has nothing to report
    }
  };
  let formatter;
  try {
    formatter = compileLogFormat(logFormat);
  } catch (cause) {
    throw new McCacheError(ErrorCode.INVALID_OPTION, `logFormat: ${String(cause)}`, { cause });
  }
  if (formatter) {
    const render = formatter;
    const target = destination;
    destination = {
      write(line: string): void {
        target.write(`${render(JSON.parse(line) as LogRecord)}\n`);
      },
    };
  }
  const level = debugLevel >= 3 ? 'trace' : debugLevel >= 1 ? 'debug' : 'info';
  const p = pino({ name: 'mccache', level, redact: REDACT }, destination);
  return wrap(p, debugLevel, flush);
}

function openFile(path: string): DestinationStream {
  const abs = resolve(path);
  let dest = files.get(abs);
  if (!dest) {
    try {
      dest = pino.destination({ dest: abs, sync: true, mkdir: true, append: true });
    } catch (cause) {
      throw new McCacheError(ErrorCode.INVALID_OPTION,
        `logFilename: cannot open ${JSON.stringify(abs)} for appending: ${String(cause)}`, { cause });
    }
    files.set(abs, dest);
  }
  return dest;
}

function wrap(p: PinoLogger, debugLevel: number, flush: () => void): Logger {
  const at = (level: LogLevel) => (msg: string, fields?: LogFields): void => {
    if (fields === undefined) p[level](msg);
    else p[level](fields, msg);
  };
  return {
    debugLevel,
    isLevelEnabled: (level) => p.isLevelEnabled(level),
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (bindings) => wrap(p.child(bindings), debugLevel, flush),
    flush,
  };
}
