/**
 * Logging (runtime/log/logger.ts): silent by default, a file when MCCACHE_LOG_FILENAME is set,
 * stderr when only a debug level is, McCache's levels, the formats, no secret in any line, and
 * a process that logs still exits on its own.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { resolveSettings } from '../../runtime/config/settings';
import { ErrorCode, McCacheError } from '../../runtime/errors';
import { createLogger, type LogLevel } from '../../runtime/log/logger';

const LEVELS: LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error'];

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'mccache-log-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** A stand-in for stderr that keeps what is written. */
function capture(): { write(s: string): void; lines(): string[] } {
  const chunks: string[] = [];
  return { write: (s) => void chunks.push(s), lines: () => chunks.join('').split('\n').filter(Boolean) };
}

const settings = (env: Record<string, string>) => resolveSettings({}, env, root);

describe('log/logger', () => {
  it('writes nothing, anywhere, by default', () => {
    const stderr = capture();
    const log = createLogger(settings({}), { stderr });
    for (const level of LEVELS) {
      expect(log.isLevelEnabled(level)).to.equal(false);
      log[level]('nothing to see', { a: 1 });
    }
    log.child({ cache: 'x' }).error('still nothing');
    log.flush();
    expect(stderr.lines()).to.deep.equal([]);
  });

  it('appends JSON lines to MCCACHE_LOG_FILENAME, creating its folder', () => {
    const file = join(root, 'logs', 'sub', 'mccache.log');
    const log = createLogger(settings({ MCCACHE_LOG_FILENAME: file }));
    expect(log.isLevelEnabled('info')).to.equal(true);
    expect(log.isLevelEnabled('debug')).to.equal(false); // debug level 0: info and above
    log.info('started', { nodes: 3 });
    log.debug('not at level 0');
    log.child({ cache: 'demo' }).warn('slow');
    log.flush();
    const again = createLogger(settings({ MCCACHE_LOG_FILENAME: file }));
    again.error('appended');
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l['level'], l['msg']])).to.deep.equal([[30, 'started'], [40, 'slow'], [50, 'appended']]);
    expect(lines[0]).to.include({ name: 'mccache', nodes: 3, pid: process.pid });
    expect(lines[1]).to.include({ cache: 'demo' });
  });

  it('goes to stderr when only a debug level is set, with McCache\'s levels', () => {
    const enabled = (debugLevel: string) => {
      const log = createLogger(settings({ MCCACHE_DEBUG_LEVEL: debugLevel }), { stderr: capture() });
      return LEVELS.filter((l) => log.isLevelEnabled(l));
    };
    expect(enabled('1')).to.deep.equal(['debug', 'info', 'warn', 'error']);
    expect(enabled('2')).to.deep.equal(['debug', 'info', 'warn', 'error']);
    expect(enabled('3')).to.deep.equal(LEVELS);
    expect(enabled('5')).to.deep.equal(LEVELS);
    const stderr = capture();
    const log = createLogger(settings({ MCCACHE_DEBUG_LEVEL: '1' }), { stderr });
    expect(log.debugLevel).to.equal(1);
    log.debug('op', { key: 'k' });
    log.trace('datagram');
    expect(stderr.lines().map((l) => JSON.parse(l) as Record<string, unknown>).map((l) => l['msg'])).to.deep.equal(['op']);
  });

  it('renders MCCACHE_LOG_FORMAT templates, Python logging style', () => {
    const stderr = capture();
    const format = '[%(levelname)-7s] %(name)s %(process)d %(message)s %%';
    const log = createLogger(settings({ MCCACHE_DEBUG_LEVEL: '1', MCCACHE_LOG_FORMAT: format }), { stderr });
    log.warn('hello', { a: 1 });
    log.info('plain');
    expect(stderr.lines()).to.deep.equal([
      `[WARNING] mccache ${process.pid} hello {"a":1} %`,
      `[INFO   ] mccache ${process.pid} plain %`,
    ]);
    const text = capture();
    createLogger(settings({ MCCACHE_DEBUG_LEVEL: '1', MCCACHE_LOG_FORMAT: 'text' }), { stderr: text }).error('boom');
    expect(text.lines()[0]).to.match(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ERROR mccache boom$/);
  });

  it('never writes the crypto key, wherever it is logged', () => {
    const key = Buffer.from(Array.from({ length: 32 }, (_, i) => i * 7 + 1));
    const file = join(root, 'secret.log');
    const s = settings({ MCCACHE_LOG_FILENAME: file, MCCACHE_DEBUG_LEVEL: '5', MCCACHE_CRYPTO_KEY: key.toString('base64') });
    const log = createLogger(s);
    log.info('settings', { settings: s });
    log.info('top', { cryptoKey: s.cryptoKey });
    log.child({ deep: { deeper: { key: s.cryptoKey } } }).trace('nested');
    log.debug('as text', { cryptoKey: key.toString('base64') });
    const text = readFileSync(file, 'utf8');
    expect(text.split('\n').filter(Boolean)).to.have.length(4);
    for (const form of [key.toString('base64'), key.toString('base64url'), key.toString('hex')]) {
      expect(text).to.not.include(form.slice(0, 16));
    }
    expect(text).to.not.include(`[${[...key.subarray(0, 6)].join(',')}`); // a Buffer's usual JSON: {"type":"Buffer","data":[...]}
  });

  it('refuses a log file that cannot be opened, naming logFilename', () => {
    const notADir = join(root, 'plain-file');
    writeFileSync(notADir, '');
    try {
      createLogger({ logFilename: join(notADir, 'x.log'), logFormat: 'json', debugLevel: 0 });
      expect.fail('expected a McCacheError');
    } catch (err) {
      expect(err).to.be.instanceOf(McCacheError);
      expect((err as McCacheError).code).to.equal(ErrorCode.INVALID_OPTION);
    }
  });

  it('lets a process that logged to a file and to stderr exit on its own', function () {
    this.timeout(60_000);
    const file = join(root, 'exit', 'child.log');
    const script = [
      `const { createLogger } = require(${JSON.stringify(resolve(__dirname, '../../runtime/log/logger'))});`,
      `createLogger({ logFilename: ${JSON.stringify(file)}, logFormat: 'json', debugLevel: 3 }).trace('bye from the child');`,
      `createLogger({ logFilename: undefined, logFormat: 'text', debugLevel: 1 }).info('to stderr');`,
    ].join('\n');
    const r = spawnSync(process.execPath, ['-r', 'ts-node/register', '-e', script], {
      env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' },
      cwd: resolve(__dirname, '../..'),
      timeout: 45_000,
      encoding: 'utf8',
    });
    expect(r.error, String(r.error)).to.equal(undefined);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.include('INFO mccache to stderr');
    expect(existsSync(file)).to.equal(true);
    expect(readFileSync(file, 'utf8')).to.include('bye from the child');
  });
});
