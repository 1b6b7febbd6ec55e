/**
 * Settings (runtime/config/settings.ts): precedence options > environment > package.json >
 * defaults, McCache's units in the environment, and every bad value refused with
 * MCCACHE_ERR_INVALID_OPTION naming the setting and where it came from (STYLE.md rule 4: codes
 * and fields, never wording).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import {
  describeSettings,
  InvalidSettingError,
  resolveSettings,
  SETTINGS_DEFAULTS,
  type Settings,
  type SettingsOptions,
} from '../../runtime/config/settings';
import { ErrorCode } from '../../runtime/errors';

type Env = Record<string, string>;

let root: string;
let bare: string; // a folder with no package.json at or above it
before(() => {
  root = mkdtempSync(join(tmpdir(), 'mccache-config-'));
  bare = join(root, 'bare');
  mkdirSync(bare);
});
after(() => rmSync(root, { recursive: true, force: true }));

function withPackageJson(dir: string, content: unknown): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), typeof content === 'string' ? content : JSON.stringify(content));
  return dir;
}

function refused(fn: () => unknown): InvalidSettingError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(InvalidSettingError);
    expect((err as InvalidSettingError).code).to.equal(ErrorCode.INVALID_OPTION);
    return err as InvalidSettingError;
  }
  return expect.fail('expected an InvalidSettingError');
}

const fromEnv = (env: Env) => resolveSettings({}, env, bare);
const fromOptions = (options: SettingsOptions) => resolveSettings(options, {}, bare);

describe('config/settings: defaults and precedence', () => {
  it('gives the defaults, frozen, when nothing is set (no package.json found)', () => {
    const s = resolveSettings({}, {}, bare);
    expect(s).to.deep.equal(SETTINGS_DEFAULTS);
    expect(Object.isFrozen(s)).to.equal(true);
    expect(Object.isFrozen(s.peers)).to.equal(true);
    expect([s.ttl, s.max, s.maxSize, s.mode, s.pulse, s.packetMtu, s.multicastIp, s.multicastPort, s.multicastHops])
      .to.deep.equal([3_600_000, 256, 8_388_608, 1, 300_000, 1472, '224.0.0.3', 4000, 1]);
    expect(s.cryptoKey).to.equal(undefined);
    expect(s.logFilename).to.equal(undefined);
  });

  it('takes options over environment over package.json over defaults, setting by setting', () => {
    const dir = withPackageJson(join(root, 'prec'), { name: 'app', mccache: { ttl: 1000, max: 10, pulse: 60_000, packetMtu: 1400 } });
    const s = resolveSettings({ ttl: 3000 }, { MCCACHE_CACHE_TTL: '2', MCCACHE_CACHE_MAX: '20' }, dir);
    expect(s.ttl).to.equal(3000); // option
    expect(s.max).to.equal(20); // environment over package.json
    expect(s.pulse).to.equal(60_000); // package.json
    expect(s.packetMtu).to.equal(1400); // package.json
    expect(s.maxSize).to.equal(SETTINGS_DEFAULTS.maxSize); // default
    expect(resolveSettings({}, { MCCACHE_CACHE_TTL: '2' }, dir).ttl).to.equal(2000);
    expect(resolveSettings({}, {}, dir).ttl).to.equal(1000);
  });

  it('finds the nearest package.json above cwd, and stops there even without a "mccache" object', () => {
    const top = withPackageJson(join(root, 'walk'), { mccache: { max: 7 } });
    const deep = join(top, 'a', 'b', 'c');
    mkdirSync(deep, { recursive: true });
    expect(resolveSettings({}, {}, deep).max).to.equal(7);
    withPackageJson(join(top, 'a'), { name: 'inner' });
    expect(resolveSettings({}, {}, deep).max).to.equal(SETTINGS_DEFAULTS.max);
  });

  it('treats an explicit undefined option and a blank variable as not given', () => {
    const s = resolveSettings({ ttl: undefined, cryptoKey: undefined }, { MCCACHE_CACHE_MAX: '  ', MCCACHE_CRYPTO_KEY: '' }, bare);
    expect(s.ttl).to.equal(SETTINGS_DEFAULTS.ttl);
    expect(s.max).to.equal(SETTINGS_DEFAULTS.max);
    expect(s.cryptoKey).to.equal(undefined);
  });

  it('accepts a Partial<Settings> as options (a resolved Settings fed back in resolves to itself)', () => {
    const resolved = resolveSettings({ cryptoKey: Buffer.alloc(32, 1), peers: 'a:1', ttl: 5 }, {}, bare);
    const partial: Partial<Settings> = resolved;
    const again = resolveSettings(partial, {}, bare);
    expect({ ...again, cryptoKey: undefined }).to.deep.equal({ ...resolved, cryptoKey: undefined });
    expect(again.cryptoKey!.equals(resolved.cryptoKey!)).to.equal(true);
  });

  it('ignores option keys that are not settings (the cache\'s own options share the object)', () => {
    const options = { max: 5, sizeCalculation: () => 1 } as SettingsOptions;
    expect(resolveSettings(options, {}, bare).max).to.equal(5);
  });
});

describe('config/settings: units', () => {
  it('reads MCCACHE_CACHE_TTL, MCCACHE_CALLBACK_WIN and MCCACHE_DAEMON_SLEEP in seconds', () => {
    expect(fromEnv({ MCCACHE_CACHE_TTL: '3600' }).ttl).to.equal(3_600_000);
    expect(fromEnv({ MCCACHE_CACHE_TTL: '0' }).ttl).to.equal(0);
    expect(fromEnv({ MCCACHE_CACHE_TTL: '0.5' }).ttl).to.equal(500);
    expect(fromEnv({ MCCACHE_CALLBACK_WIN: '3' }).callbackWindow).to.equal(3000);
    expect(fromEnv({ MCCACHE_DAEMON_SLEEP: '0.8' }).daemonSleep).to.equal(800);
    expect(fromEnv({ MCCACHE_DAEMON_SLEEP: '2' }).daemonSleep).to.equal(2000); // McCache's bug O1
  });

  it('reads MCCACHE_CACHE_PULSE in minutes, as McCache\'s code does', () => {
    expect(fromEnv({ MCCACHE_CACHE_PULSE: '5' }).pulse).to.equal(300_000);
    expect(fromEnv({ MCCACHE_CACHE_PULSE: '0.5' }).pulse).to.equal(30_000);
  });

  it('accepts an explicit unit on any duration variable', () => {
    expect(fromEnv({ MCCACHE_CACHE_PULSE: '300s' }).pulse).to.equal(300_000);
    expect(fromEnv({ MCCACHE_CACHE_TTL: '1500ms' }).ttl).to.equal(1500);
    expect(fromEnv({ MCCACHE_CACHE_TTL: '2m' }).ttl).to.equal(120_000);
    expect(fromEnv({ MCCACHE_CACHE_TTL: '1.5h' }).ttl).to.equal(5_400_000);
    expect(fromEnv({ MCCACHE_DAEMON_SLEEP: '250ms' }).daemonSleep).to.equal(250);
  });

  it('converts every whole number of seconds or milliseconds exactly (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 10 ** 9 }), (ms) => {
      expect(fromEnv({ MCCACHE_CACHE_TTL: `${ms}ms` }).ttl).to.equal(ms);
      const whole = Math.floor(ms / 1000);
      const frac = String(ms % 1000).padStart(3, '0');
      expect(fromEnv({ MCCACHE_CACHE_TTL: `${whole}.${frac}` }).ttl).to.equal(ms);
    }), { numRuns: 500 });
  });

  it('takes options and package.json values in milliseconds', () => {
    expect(fromOptions({ ttl: 1234, pulse: 100, callbackWindow: 0, daemonSleep: 10 }))
      .to.include({ ttl: 1234, pulse: 100, callbackWindow: 0, daemonSleep: 10 });
  });
});

describe('config/settings: accepted forms', () => {
  it('reads MCCACHE_MULTICAST_IP as addr or addr:port, and MCCACHE_MULTICAST_PORT', () => {
    expect(fromEnv({ MCCACHE_MULTICAST_IP: '239.1.2.3' })).to.include({ multicastIp: '239.1.2.3', multicastPort: 4000 });
    expect(fromEnv({ MCCACHE_MULTICAST_IP: '239.1.2.3:5000' })).to.include({ multicastIp: '239.1.2.3', multicastPort: 5000 });
    expect(fromEnv({ MCCACHE_MULTICAST_PORT: '6000' }).multicastPort).to.equal(6000);
    expect(fromEnv({ MCCACHE_MULTICAST_IP: '224.0.0.3:6000', MCCACHE_MULTICAST_PORT: '6000' }).multicastPort).to.equal(6000);
    expect(resolveSettings({ multicastPort: 7000 }, { MCCACHE_MULTICAST_IP: '224.0.0.3:6000' }, bare).multicastPort).to.equal(7000);
  });

  it('reads MCCACHE_CRYPTO_KEY as standard or URL-safe base64 of 32 bytes, and never shows it', () => {
    const key = Buffer.from(Array.from({ length: 32 }, (_, i) => 250 - i)); // has + / in base64
    for (const text of [key.toString('base64'), key.toString('base64url'), key.toString('base64').replace(/=$/, '')]) {
      const s = fromEnv({ MCCACHE_CRYPTO_KEY: text });
      expect(Buffer.isBuffer(s.cryptoKey)).to.equal(true);
      expect(s.cryptoKey!.equals(key)).to.equal(true);
      expect(JSON.stringify(s)).to.not.include(text.slice(0, 20));
      expect(inspect(s)).to.not.include(text.slice(0, 20));
      expect(JSON.stringify(s)).to.not.include(key.toString('hex').slice(0, 20));
    }
    expect(fromOptions({ cryptoKey: new Uint8Array(key) }).cryptoKey!.equals(key)).to.equal(true);
    expect(fromOptions({ cryptoKey: key.toString('base64') }).cryptoKey!.equals(key)).to.equal(true);
  });

  it('reads MCCACHE_PEERS as comma-separated host:port', () => {
    expect(fromEnv({ MCCACHE_PEERS: 'cache-1.internal:4000, 10.0.0.7:4001,[fd00::1]:4002' }).peers).to.deep.equal([
      { host: 'cache-1.internal', port: 4000 },
      { host: '10.0.0.7', port: 4001 },
      { host: 'fd00::1', port: 4002 },
    ]);
    expect(fromOptions({ peers: ['a:1', { host: 'b', port: 2 }] }).peers).to.deep.equal([{ host: 'a', port: 1 }, { host: 'b', port: 2 }]);
  });

  it('accepts the log formats json, text and %-style templates', () => {
    for (const f of ['json', 'text', '%(asctime)s.%(msecs)03d %(levelname)-8s %(message)s', '%(message)s', '100%% %(name)s'] as const) {
      expect(fromEnv({ MCCACHE_LOG_FORMAT: f }).logFormat).to.equal(f);
    }
  });

  it('lets one of max and maxSize be 0 (unbounded on that axis)', () => {
    expect(fromEnv({ MCCACHE_CACHE_MAX: '0' }).max).to.equal(0);
    expect(fromEnv({ MCCACHE_CACHE_SIZE: '0' }).maxSize).to.equal(0);
  });
});

// [setting, environment variable, bad strings, bad option values]
const INVALID: [keyof typeof SETTINGS_DEFAULTS, string, string[], unknown[]][] = [
  ['ttl', 'MCCACHE_CACHE_TTL', ['-1', '12abc', '1e3', '0x10', '1.', '.5', '5 s', '5sec', '0.0001', '9007199254740992'], [-1, 1.5, '5', NaN, Infinity, null]],
  ['max', 'MCCACHE_CACHE_MAX', ['-1', '2.5', '1e3', 'abc', '2147483648'], [-1, 2.5, '10', 2 ** 31]],
  ['maxSize', 'MCCACHE_CACHE_SIZE', ['-1', '8MiB', '1.5'], [-1, 0.5, '1024']],
  ['mode', 'MCCACHE_CACHE_MODE', ['2', '-1', 'full', '01', '1.0'], [2, '1', true, 0.5]],
  ['pulse', 'MCCACHE_CACHE_PULSE', ['0', '1441', '99ms', 'x', '-5'], [0, 99, 86_400_001, 1000.5, '300000']],
  ['callbackWindow', 'MCCACHE_CALLBACK_WIN', ['-1', 'abc', '86401'], [-1, 0.5, '3000']],
  ['daemonSleep', 'MCCACHE_DAEMON_SLEEP', ['0', '0.001', '61', 'two'], [0, 9, 60_001, '1000']],
  ['cryptoKey', 'MCCACHE_CRYPTO_KEY', ['abc', Buffer.alloc(31).toString('base64'), Buffer.alloc(33).toString('base64'), `${'A'.repeat(42)}B=`, `${'*'.repeat(43)}=`],
    [new Uint8Array(31), new Uint8Array(33), 42, 'short', [1, 2, 3]]],
  ['packetMtu', 'MCCACHE_PACKET_MTU', ['547', '65508', '1472.0', 'mtu'], [547, 65508, 1472.5, '1472']],
  ['multicastIp', 'MCCACHE_MULTICAST_IP', ['10.0.0.1', '240.0.0.1', '223.255.255.255', '224.0.0', 'ff02::1', 'host', '224.0.0.300'], ['10.0.0.1', '224.0.0.3:4000', 224, '']],
  ['multicastPort', 'MCCACHE_MULTICAST_PORT', ['0', '65536', 'http', '-1'], [0, 65536, 80.5, '4000']],
  ['multicastHops', 'MCCACHE_MULTICAST_HOPS', ['256', '-1', '1.5', 'one'], [256, -1, 1.5, '1']],
  ['monkeyTantrum', 'MCCACHE_MONKEY_TANTRUM', ['100', '-1', '5%', '4.5'], [100, -1, 4.5, '5']],
  ['logFilename', 'MCCACHE_LOG_FILENAME', ['a\0b'], ['', '   ', 42, 'x\0']],
  ['logFormat', 'MCCACHE_LOG_FORMAT', ['%(lineno)d', '%(ipV4)s', '50% done', '%(message)x', '%('], ['', 42, '%(nope)s']],
  ['debugLevel', 'MCCACHE_DEBUG_LEVEL', ['6', '-1', 'debug', '1.5'], [6, -1, 1.5, '1']],
  ['peers', 'MCCACHE_PEERS', ['a', 'a:0', 'a:65536', 'a:1,', ',a:1', 'a:1,a:1', '::1:80', '[zz]:1', '1.2.3:4', 'a b:1', 'a:1:2'],
    [42, ['a'], [{ host: 'a', port: 0 }], [{ host: 'a', port: '1' }], [7]]],
];

describe('config/settings: invalid values', () => {
  for (const [setting, variable, badText, badValues] of INVALID) {
    it(`refuses bad ${variable} and bad option ${setting}, naming the setting and the source`, () => {
      for (const text of badText) {
        const err = refused(() => fromEnv({ [variable]: text }));
        expect(err.setting, `${variable}=${JSON.stringify(text)}`).to.equal(setting);
        expect(err.origin).to.equal('env');
        expect(err.source).to.equal(variable);
      }
      for (const value of badValues) {
        const err = refused(() => fromOptions({ [setting]: value } as SettingsOptions));
        expect(err.setting, `${setting}: ${String(value)}`).to.equal(setting);
        expect(err.origin).to.equal('option');
      }
    });
  }

  it('refuses a multicast port in MCCACHE_MULTICAST_IP that is bad or contradicts MCCACHE_MULTICAST_PORT', () => {
    for (const ip of ['224.0.0.3:', '224.0.0.3:0', '224.0.0.3:70000', '224.0.0.3:x']) {
      const err = refused(() => fromEnv({ MCCACHE_MULTICAST_IP: ip }));
      expect(err.setting).to.equal('multicastPort');
      expect(err.source).to.equal('MCCACHE_MULTICAST_IP');
    }
    const err = refused(() => fromEnv({ MCCACHE_MULTICAST_IP: '224.0.0.3:4001', MCCACHE_MULTICAST_PORT: '4000' }));
    expect(err.setting).to.equal('multicastPort');
  });

  it('refuses max and maxSize both 0', () => {
    expect(refused(() => fromEnv({ MCCACHE_CACHE_MAX: '0', MCCACHE_CACHE_SIZE: '0' })).setting).to.equal('max');
    expect(refused(() => fromOptions({ max: 0, maxSize: 0 })).setting).to.equal('max');
  });

  it('refuses any duration string outside the grammar (property)', () => {
    const grammar = /^\d+(\.\d+)?(ms|s|m|h)?$/;
    fc.assert(fc.property(fc.string({ maxLength: 12 }), (text) => {
      fc.pre(text.trim() !== '' && !grammar.test(text.trim()));
      expect(refused(() => fromEnv({ MCCACHE_CACHE_TTL: text })).setting).to.equal('ttl');
    }), { numRuns: 500 });
  });

  it('never puts a rejected crypto key in the message', () => {
    const almost = Buffer.alloc(31, 0x5a).toString('base64');
    expect(refused(() => fromEnv({ MCCACHE_CRYPTO_KEY: almost })).message).to.not.include(almost);
    expect(refused(() => fromOptions({ cryptoKey: almost })).message).to.not.include(almost);
  });
});

describe('config/settings: package.json', () => {
  it('refuses a bad value, naming the package.json key', () => {
    const dir = withPackageJson(join(root, 'pkg-bad'), { mccache: { ttl: '1h' } });
    const err = refused(() => resolveSettings({}, {}, dir));
    expect(err.setting).to.equal('ttl');
    expect(err.origin).to.equal('package.json');
    expect(err.source).to.equal(`${join(dir, 'package.json')}#mccache.ttl`);
  });

  it('refuses a key that is not a setting (a typo must not pass silently)', () => {
    const dir = withPackageJson(join(root, 'pkg-typo'), { mccache: { TTL: 5 } });
    expect(refused(() => resolveSettings({}, {}, dir)).setting).to.equal('TTL');
  });

  it('refuses a crypto key in package.json, which is committed to source control', () => {
    const dir = withPackageJson(join(root, 'pkg-key'), { mccache: { cryptoKey: Buffer.alloc(32).toString('base64') } });
    expect(refused(() => resolveSettings({}, {}, dir)).setting).to.equal('cryptoKey');
  });

  it('refuses a "mccache" entry that is not an object, and a package.json that is not JSON', () => {
    for (const content of [{ mccache: 5 }, { mccache: [1] }, { mccache: null }, '{ not json']) {
      const dir = withPackageJson(join(root, `pkg-shape-${Math.random().toString(36).slice(2)}`), content);
      expect(refused(() => resolveSettings({}, {}, dir)).setting).to.equal('mccache');
    }
  });

  it('takes a package.json value over the default but under the environment and options', () => {
    const dir = withPackageJson(join(root, 'pkg-peers'), { mccache: { peers: ['x:1'], logFormat: 'text', mode: 0 } });
    const s = resolveSettings({ mode: 1 }, { MCCACHE_PEERS: 'y:2' }, dir);
    expect(s.peers).to.deep.equal([{ host: 'y', port: 2 }]);
    expect(s.logFormat).to.equal('text');
    expect(s.mode).to.equal(1);
  });
});

describe('config/settings: describeSettings', () => {
  it('has one row per setting, each with its own MCCACHE_ variable, and shows the defaults', () => {
    const rows = describeSettings();
    expect(rows.map((r) => r.name)).to.deep.equal(Object.keys(SETTINGS_DEFAULTS));
    expect(new Set(rows.map((r) => r.env)).size).to.equal(rows.length);
    for (const r of rows) {
      expect(r.env).to.match(/^MCCACHE_[A-Z_]+$/);
      expect(r.unit).to.not.equal('');
      expect(r.description).to.not.equal('');
      expect(r.default).to.not.equal('');
    }
    const byName = Object.fromEntries(rows.map((r) => [r.name, r]));
    expect(byName['ttl']!.default).to.equal('3_600_000 (1 h)');
    expect(byName['packetMtu']!.default).to.equal('1472');
    expect(byName['cryptoKey']!.default).to.equal('(none)');
  });
});
