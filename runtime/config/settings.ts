/**
 * McCache's settings: one table, resolved and validated once (STYLE.md, lru-cache habits).
 *
 * Precedence, highest first (DESIGN.md §5):
 *   1. `options` passed in code (an explicit `undefined` means "not given");
 *   2. environment variables MCCACHE_* (an empty or blank value means "not set", as in
 *      McCache-for-Python, where a blank MCCACHE_CRYPTO_KEY turns encryption off);
 *   3. the `"mccache"` object in the application's package.json: the nearest package.json at
 *      or above `cwd` (the same file Node takes as the package scope), with the option names
 *      and option units as keys (McCache-for-Python reads pyproject.toml's [tool.mccache]);
 *   4. SETTINGS_DEFAULTS.
 * Every bad value throws InvalidSettingError (code MCCACHE_ERR_INVALID_OPTION) naming the
 * setting, where the value came from (the option, the variable, or the package.json key and
 * file) and the accepted range. Nothing is coerced silently: "12abc", "1e3", " 5 " (inside),
 * 3.5 entries, a string where a number is due are all errors, unlike McCache-for-Python,
 * which turned any value it could not parse into a string and crashed later (research notes
 * bug O1).
 *
 * Units: in code and package.json every time is integer milliseconds and every size bytes
 * (lru-cache's units). Environment variables keep McCache-for-Python's units so an existing
 * deployment's values mean the same thing: MCCACHE_CACHE_TTL, MCCACHE_CALLBACK_WIN and
 * MCCACHE_DAEMON_SLEEP are seconds and MCCACHE_CACHE_PULSE minutes, each as a decimal number
 * ("0.8", "5"). Any of them may instead carry an explicit unit, "ms", "s", "m" or "h"
 * ("1500ms", "300s"), which settles the README-vs-code disagreement over the pulse (bug O7)
 * for anyone who writes it. A value must come out as a whole number of milliseconds.
 */
import { readFileSync, statSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { inspect } from 'node:util';
import { DEFAULT_MTU, MAX_MTU, MIN_MTU } from '../codec/packet';
import { ErrorCode, McCacheError } from '../errors';
import { LogFormatError, compileLogFormat } from '../log/format';

/** A unicast peer (MCCACHE_PEERS), for the peer-list transport. */
export interface PeerAddress {
  /** IPv4 address, IPv6 address (without brackets) or host name. */
  readonly host: string;
  /** UDP port, 1..65535. */
  readonly port: number;
}

export interface Settings {
  /**
   * How long an entry lives after its last write, ms; 0 = no expiry. A write (local or
   * remote) restarts the clock; expiry is local and not broadcast (DESIGN.md §5).
   * Env MCCACHE_CACHE_TTL in SECONDS, as in McCache. @default 3_600_000 (1 h, McCache's 3600 s)
   */
  readonly ttl: number;
  /**
   * Most entries the cache holds; the least recently used goes first. 0 = no entry bound
   * (maxSize must then be > 0). McCache-for-Python read 0 as "use 512"; here 0 means no bound,
   * as a size of 0 does. Env MCCACHE_CACHE_MAX. @default 256 (McCache's)
   */
  readonly max: number;
  /**
   * Most bytes of encoded values (plus keys) the cache holds; 0 = no byte bound (max must
   * then be > 0). Env MCCACHE_CACHE_SIZE, bytes, as in McCache's code (its README calls
   * MCCACHE_CACHE_SIZE an entry count; the code uses MCCACHE_CACHE_MAX for that).
   * @default 8_388_608 (8 MiB, McCache's 256*4096*8)
   */
  readonly maxSize: number;
  /**
   * 1: full replication, every member holds every written key. 0: update-if-present, a
   * member applies a remote write only to keys it holds. Deletes and clears always apply.
   * Env MCCACHE_CACHE_MODE. @default 1
   */
  readonly mode: 0 | 1;
  /**
   * Anti-entropy interval, ms: how often a member multicasts the digest of its entries so
   * peers repair what reliable delivery gave up on. 100 ms .. 24 h.
   * Env MCCACHE_CACHE_PULSE in MINUTES: McCache's code multiplies it by 60 (M:1305), while
   * its README says "300 sec"; both give the same 5-minute default, and the code is what
   * existing deployments run. @default 300_000 (5 min)
   */
  readonly pulse: number;
  /**
   * Change-callback window, ms: a remote update of an entry read locally within this window
   * fires the change callback. 0 = never. McCache-for-Python kept its 3 s default when given
   * 0; here 0 turns the callback off. Env MCCACHE_CALLBACK_WIN in SECONDS.
   * @default 5_000 (McCache's config default of 5 s; its README says 3 s)
   */
  readonly callbackWindow: number;
  /**
   * Housekeeping period, ms, used as the heartbeat interval of the reliable-multicast core:
   * McCache's housekeeper thread woke every MCCACHE_DAEMON_SLEEP to retry, expire and pulse;
   * here timers are exact, and the periodic work left is the heartbeat that makes tail loss
   * visible (DESIGN.md §4). A member silent for several periods is declared gone, so a
   * longer period also means slower failure detection. 10 ms .. 60 s.
   * Env MCCACHE_DAEMON_SLEEP in SECONDS ("0.8", or "2" which McCache itself could not parse,
   * bug O1). @default 1_000 (McCache: 2.0 s in code, 0.8 s in its README)
   */
  readonly daemonSleep: number;
  /**
   * 32-byte key of AES-256-GCM authenticated encryption of every datagram (DESIGN.md §6);
   * undefined = no encryption. Every member must share it. Env MCCACHE_CRYPTO_KEY: base64
   * (standard or URL-safe, padding optional) of exactly 32 bytes, so a McCache Fernet key
   * (`Fernet.generate_key()`, 44 characters) is accepted as 32 key bytes (the wire format is
   * new anyway). Never logged: the Buffer renders as "[redacted]" in JSON and inspect(), and
   * error messages never echo it. Not accepted from package.json, which is committed to
   * source control. @default undefined
   */
  readonly cryptoKey: Buffer | undefined;
  /**
   * Largest UDP payload per datagram, bytes, 548..65507; must be the same on every member.
   * Env MCCACHE_PACKET_MTU. @default 1472 (1500 Ethernet - 20 IP - 8 UDP)
   */
  readonly packetMtu: number;
  /**
   * IPv4 multicast group, 224.0.0.0/4. Env MCCACHE_MULTICAST_IP as `addr[:port]`, as in
   * McCache; the port part sets multicastPort. McCache's validator was inverted and let
   * through only four addresses (bug O2); here any multicast address is accepted.
   * @default '224.0.0.3'
   */
  readonly multicastIp: string;
  /**
   * UDP port of the group, 1..65535. Env MCCACHE_MULTICAST_PORT, or the port in
   * MCCACHE_MULTICAST_IP (if both are set they must agree). @default 4000
   */
  readonly multicastPort: number;
  /**
   * Multicast TTL (hops), 0..255: 1 = the local network segment, 0 = this host only.
   * Env MCCACHE_MULTICAST_HOPS. @default 1
   */
  readonly multicastHops: number;
  /**
   * Percentage of outgoing datagrams dropped on purpose, 0..99, for stress tests. McCache
   * read TEST_MONKEY_TANTRUM and applied it only at debug level >= 3; here it always applies.
   * Env MCCACHE_MONKEY_TANTRUM. @default 0
   */
  readonly monkeyTantrum: number;
  /**
   * File the log is appended to (its folder is created); undefined = no log file. McCache
   * always logged to log/mccache.log; here logging is off unless this is set or debugLevel
   * is above 0 (then to stderr). Env MCCACHE_LOG_FILENAME. @default undefined
   */
  readonly logFilename: string | undefined;
  /**
   * Log line format: 'json' (pino's NDJSON), 'text', or a Python-logging %-style template
   * such as '%(asctime)s %(levelname)s %(message)s' (runtime/log/format.ts lists the
   * attributes). Env MCCACHE_LOG_FORMAT. @default 'json'
   */
  readonly logFormat: string;
  /**
   * McCache's debug levels, 0..5: 0 off (info and above, only to logFilename), 1 BASIC
   * (debug: operations), 3 EXTRA (trace: every datagram), 5 SUPERFLUOUS (trace, with
   * everything). 2 and 4 act as 1 and 3. Env MCCACHE_DEBUG_LEVEL (McCache read
   * TEST_DEBUG_LEVEL). @default 0
   */
  readonly debugLevel: number;
  /**
   * Unicast peers, for networks without multicast; empty = multicast. Every member's
   * `host:port`, the same list on every host: the UDP driver binds this host's entry and sends to
   * the others (runtime/transport/udp-driver.ts). The syntax is checked here (`host:port`,
   * `[ipv6]:port`); the driver takes IPv4 addresses and host names only. Env MCCACHE_PEERS,
   * comma-separated. @default []
   */
  readonly peers: readonly PeerAddress[];
}

/** What `resolveSettings` accepts: Settings, with friendlier input types for two fields. */
export type SettingsOptions = {
  [K in Exclude<keyof Settings, 'cryptoKey' | 'peers'>]?: Settings[K] | undefined;
} & {
  /** 32 bytes, or their base64 (see Settings.cryptoKey). */
  cryptoKey?: Uint8Array | string | undefined;
  /** PeerAddress objects, 'host:port' strings, or one comma-separated string. */
  peers?: readonly (PeerAddress | string)[] | string | undefined;
};

export type SettingName = keyof Settings;

/** Where a setting's value came from. */
export type SettingOrigin = 'option' | 'env' | 'package.json' | 'default';

/** A bad setting. `code` is always MCCACHE_ERR_INVALID_OPTION. */
export class InvalidSettingError extends McCacheError {
  /**
   * The option name, e.g. 'ttl'; for a package.json key that is no setting, that key; for a
   * package.json that cannot be read or a "mccache" entry that is not an object, 'mccache'.
   */
  readonly setting: string;
  readonly origin: SettingOrigin;
  /** The variable (MCCACHE_CACHE_TTL), the package.json key and path, or the option name. */
  readonly source: string;
  constructor(setting: string, origin: SettingOrigin, source: string, message: string) {
    super(ErrorCode.INVALID_OPTION, message);
    this.name = 'InvalidSettingError';
    this.setting = setting;
    this.origin = origin;
    this.source = source;
  }
}

export const SETTINGS_DEFAULTS: Readonly<Settings> = Object.freeze({
  ttl: 3_600_000,
  max: 256,
  maxSize: 8 * 1024 * 1024,
  mode: 1,
  pulse: 300_000,
  callbackWindow: 5_000,
  daemonSleep: 1_000,
  cryptoKey: undefined,
  packetMtu: DEFAULT_MTU,
  multicastIp: '224.0.0.3',
  multicastPort: 4000,
  multicastHops: 1,
  monkeyTantrum: 0,
  logFilename: undefined,
  logFormat: 'json',
  debugLevel: 0,
  peers: Object.freeze([]) as readonly PeerAddress[],
});

// ---------------------------------------------------------------------------------------------
// The table: one spec per setting drives parsing, validation and describeSettings().

interface Source {
  origin: SettingOrigin;
  /** For messages: "option ttl", "environment variable MCCACHE_CACHE_TTL", ... */
  label: string;
  /** For InvalidSettingError.source. */
  where: string;
}

interface Spec {
  env: string;
  /** Unit in code and package.json. */
  unit: string;
  description: string;
  /** Parses an environment string. */
  parse(text: string, src: Source): unknown;
  /** Validates a value given in code or package.json. */
  check(value: unknown, src: Source): unknown;
  /** Renders the default for describeSettings(). */
  shows?: string;
  /** Refused in package.json (secrets). */
  notInPackageJson?: true;
}

/** Throws the setting's error; `got` (when passed) is shown in the message. */
type Fail = (rule: string, ...got: [unknown?]) => never;

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function failer(name: SettingName, src: Source, secret = false): Fail {
  return (rule, ...got) => {
    const shown = secret || got.length === 0 ? '' : `, got ${show(got[0])}`;
    throw new InvalidSettingError(name, src.origin, src.where, `${name} (${src.label}): ${rule}${shown}`);
  };
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}...` : v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v instanceof Uint8Array) return `${v.constructor.name} of ${v.length} bytes`;
  if (typeof v === 'object' && v !== null) return Array.isArray(v) ? 'an array' : 'an object';
  return String(v);
}

/** Integer in [min, max], from code or package.json. */
function intValue(name: SettingName, min: number, max: number, unit = '') {
  const rule = `must be an integer${unit} in ${min}..${max}`;
  return (v: unknown, src: Source): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) failer(name, src)(rule, v);
    return v as number;
  };
}

/** Decimal integer string ("0042" is fine; signs, exponents, spaces inside are not). */
function intText(name: SettingName, min: number, max: number, unit = '') {
  const rule = `must be a decimal integer${unit} in ${min}..${max}`;
  return (text: string, src: Source): number => {
    if (!/^\d+$/.test(text)) failer(name, src)(rule, text);
    const n = Number(text);
    if (n < min || n > max) failer(name, src)(rule, text);
    return n;
  };
}

/**
 * Parses a duration to integer ms: a decimal number in `bareUnit` (McCache's unit for the
 * variable) or with an explicit unit suffix. Exact: "0.0005s" is refused, not rounded.
 */
function durationText(name: SettingName, bareUnit: 's' | 'm', minMs: number, maxMs: number) {
  const unitWord = bareUnit === 's' ? 'seconds' : 'minutes';
  const rule = `must be a number of ${unitWord} or a duration with a unit (ms, s, m, h), `
    + `a whole number of milliseconds in ${minMs}..${maxMs} ms`;
  return (text: string, src: Source): number => {
    const m = /^(\d+)(?:\.(\d+))?(ms|s|m|h)?$/.exec(text);
    if (!m) failer(name, src)(rule, text);
    const [, whole = '', frac = '', unit = bareUnit] = m!;
    const per = BigInt(DURATION_UNITS[unit]!);
    const scale = 10n ** BigInt(frac.length);
    const fracMs = BigInt(frac || '0') * per;
    if (fracMs % scale !== 0n) failer(name, src)(rule, text);
    const ms = BigInt(whole) * per + fracMs / scale;
    if (ms < BigInt(minMs) || ms > BigInt(maxMs)) failer(name, src)(rule, text);
    return Number(ms);
  };
}

function durationSpec(name: SettingName, bareUnit: 's' | 'm', minMs: number, maxMs: number, description: string): Spec {
  return {
    env: envName(name),
    unit: `ms (env: ${bareUnit === 's' ? 'seconds' : 'minutes'}, or with a unit: 1500ms, 90s, 5m, 1h)`,
    description,
    parse: durationText(name, bareUnit, minMs, maxMs),
    check: intValue(name, minMs, maxMs, ' of milliseconds'),
    shows: showMs(SETTINGS_DEFAULTS[name] as number),
  };
}

function intSpec(name: SettingName, unit: string, min: number, max: number, description: string, unitWord = ''): Spec {
  return {
    env: envName(name),
    unit,
    description,
    parse: intText(name, min, max, unitWord),
    check: intValue(name, min, max, unitWord),
  };
}

const ENV_NAMES: Record<SettingName, string> = {
  ttl: 'MCCACHE_CACHE_TTL',
  max: 'MCCACHE_CACHE_MAX',
  maxSize: 'MCCACHE_CACHE_SIZE',
  mode: 'MCCACHE_CACHE_MODE',
  pulse: 'MCCACHE_CACHE_PULSE',
  callbackWindow: 'MCCACHE_CALLBACK_WIN',
  daemonSleep: 'MCCACHE_DAEMON_SLEEP',
  cryptoKey: 'MCCACHE_CRYPTO_KEY',
  packetMtu: 'MCCACHE_PACKET_MTU',
  multicastIp: 'MCCACHE_MULTICAST_IP',
  multicastPort: 'MCCACHE_MULTICAST_PORT',
  multicastHops: 'MCCACHE_MULTICAST_HOPS',
  monkeyTantrum: 'MCCACHE_MONKEY_TANTRUM',
  logFilename: 'MCCACHE_LOG_FILENAME',
  logFormat: 'MCCACHE_LOG_FORMAT',
  debugLevel: 'MCCACHE_DEBUG_LEVEL',
  peers: 'MCCACHE_PEERS',
};
function envName(name: SettingName): string {
  return ENV_NAMES[name];
}

const CRYPTO_KEY_BYTES = 32;

/** A copy of the key that renders as "[redacted]" in JSON.stringify, pino and util.inspect. */
function secretKey(bytes: Uint8Array): Buffer {
  const key = Buffer.from(bytes);
  Object.defineProperty(key, 'toJSON', { value: () => '[redacted]' });
  Object.defineProperty(key, inspect.custom, { value: () => `<cryptoKey: ${key.length} bytes, redacted>` });
  return key;
}

function cryptoKeyFromText(text: string, src: Source): Buffer {
  const rule = `must be the base64 (standard or URL-safe) of exactly ${CRYPTO_KEY_BYTES} bytes`;
  // 32 bytes are 43 base64 digits (+ one '=' of padding); the last digit's 2 spare bits are 0.
  if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) failer('cryptoKey', src, true)(rule);
  const std = text.replace(/-/g, '+').replace(/_/g, '/').replace(/=$/, '');
  const bytes = Buffer.from(std, 'base64');
  if (bytes.length !== CRYPTO_KEY_BYTES || bytes.toString('base64').replace(/=$/, '') !== std) {
    failer('cryptoKey', src, true)(rule);
  }
  return secretKey(bytes);
}

/**
 * A crypto key written as MCCACHE_CRYPTO_KEY takes it (the base64 of 32 bytes, surrounding
 * blanks ignored), for tools that take a key outside the settings (`mccache decode --key`).
 * Throws InvalidSettingError naming `label` (e.g. '--key'), never showing the text.
 */
export function cryptoKeyFrom(text: string, label: string): Buffer {
  return cryptoKeyFromText(text.trim(), { origin: 'option', label, where: label });
}

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function peerFromText(entry: string, fail: Fail): PeerAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(entry);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  const hostOk = host !== undefined && (m?.[1] !== undefined ? isIPv6(host) : isIPv4(host) || (HOST_NAME.test(host) && !/^[\d.]+$/.test(host)));
  if (!m || !hostOk || !(port >= 1 && port <= 65535)) {
    fail('must be comma-separated host:port entries (IPv4, [IPv6] or a host name; port 1..65535)', entry);
  }
  return Object.freeze({ host: host!, port });
}

function peersFrom(list: readonly unknown[], fail: Fail): readonly PeerAddress[] {
  const out: PeerAddress[] = [];
  const seen = new Set<string>();
  for (const item of list) {
    let peer: PeerAddress;
    if (typeof item === 'string') {
      peer = peerFromText(item.trim(), fail);
    } else if (typeof item === 'object' && item !== null && typeof (item as PeerAddress).host === 'string') {
      const p = item as PeerAddress;
      peer = peerFromText(isIPv6(p.host) ? `[${p.host}]:${String(p.port)}` : `${p.host}:${String(p.port)}`, fail);
      if (typeof p.port !== 'number') fail('port must be a number', p.port);
    } else {
      return fail('must be host:port strings or {host, port} objects', item);
    }
    const id = `${peer.host}:${peer.port}`;
    if (seen.has(id)) fail('lists a peer twice', id);
    seen.add(id);
    out.push(peer);
  }
  return Object.freeze(out);
}

const SPECS: Record<SettingName, Spec> = {
  ttl: durationSpec('ttl', 's', 0, MAX_SAFE,
    'How long an entry lives after its last write; 0 = no expiry. Expiry is local, never broadcast.'),
  max: intSpec('max', 'entries', 0, 2 ** 31 - 1,
    'Most entries held, least recently used evicted first; 0 = no entry bound (maxSize then bounds).'),
  maxSize: intSpec('maxSize', 'bytes', 0, MAX_SAFE,
    'Most bytes of keys and encoded values held; 0 = no byte bound (max then bounds).'),
  mode: {
    env: 'MCCACHE_CACHE_MODE',
    unit: '0 or 1',
    description: '1: every member holds every key. 0: a member applies remote writes only to keys it holds.',
    parse: (text, src) => (text === '0' ? 0 : text === '1' ? 1 : failer('mode', src)('must be 0 or 1', text)),
    check: (v, src) => (v === 0 || v === 1 ? v : failer('mode', src)('must be 0 or 1', v)),
  },
  pulse: durationSpec('pulse', 'm', 100, 86_400_000,
    'Anti-entropy interval: each member multicasts a digest of its entries and peers repair differences.'),
  callbackWindow: durationSpec('callbackWindow', 's', 0, 86_400_000,
    'A remote change to an entry read locally within this window fires the change callback; 0 = never.'),
  daemonSleep: durationSpec('daemonSleep', 's', 10, 60_000,
    'Housekeeping period: the heartbeat interval of the reliable-multicast core (failure detection scales with it).'),
  cryptoKey: {
    env: 'MCCACHE_CRYPTO_KEY',
    unit: '32 bytes (env: base64)',
    description: 'AES-256-GCM key; every datagram is authenticated and encrypted. Unset = no encryption. Never logged.',
    shows: '(none)',
    notInPackageJson: true,
    parse: cryptoKeyFromText,
    check: (v, src) => {
      if (typeof v === 'string') return cryptoKeyFromText(v, src);
      if (v instanceof Uint8Array && v.length === CRYPTO_KEY_BYTES) return secretKey(v);
      return failer('cryptoKey', src, true)(`must be a Uint8Array of exactly ${CRYPTO_KEY_BYTES} bytes or its base64`);
    },
  },
  packetMtu: intSpec('packetMtu', 'bytes', MIN_MTU, MAX_MTU,
    'Largest UDP payload per datagram; the same on every member.'),
  multicastIp: {
    env: 'MCCACHE_MULTICAST_IP',
    unit: 'IPv4 multicast address (env: addr[:port])',
    description: 'Multicast group, 224.0.0.0-239.255.255.255.',
    parse: (text, src) => multicastAddress(text.replace(/:[^:]*$/, ''), failer('multicastIp', src)),
    check: (v, src) => multicastAddress(v, failer('multicastIp', src)),
  },
  multicastPort: intSpec('multicastPort', 'UDP port', 1, 65535,
    'UDP port of the multicast group (also the port part of MCCACHE_MULTICAST_IP).'),
  multicastHops: intSpec('multicastHops', 'hops', 0, 255,
    'Multicast TTL: 1 = the local segment, 0 = this host only.'),
  monkeyTantrum: intSpec('monkeyTantrum', 'percent', 0, 99,
    'Percentage of outgoing datagrams dropped on purpose (stress tests).'),
  logFilename: {
    env: 'MCCACHE_LOG_FILENAME',
    unit: 'path',
    description: 'Append the log to this file (its folder is created). Unset = no log file.',
    shows: '(none)',
    parse: (text, src) => logFilename(text, failer('logFilename', src)),
    check: (v, src) => logFilename(v, failer('logFilename', src)),
  },
  logFormat: {
    env: 'MCCACHE_LOG_FORMAT',
    unit: "'json', 'text' or a %(attr)s template",
    description: "Log line format: pino NDJSON, a text line, or a Python-logging style template.",
    parse: (text, src) => logFormat(text, failer('logFormat', src)),
    check: (v, src) => logFormat(v, failer('logFormat', src)),
  },
  debugLevel: intSpec('debugLevel', 'level 0..5', 0, 5,
    "McCache's debug level: 0 off, 1 operations (debug), 3 every datagram (trace), 5 everything."),
  peers: {
    env: 'MCCACHE_PEERS',
    unit: 'host:port list',
    description: "Unicast instead of multicast: every member's host:port, the same list on every host (README: Networks without multicast). Empty = multicast.",
    shows: '(none)',
    parse: (text, src) => peersFrom(text.split(','), failer('peers', src)),
    check: (v, src) => {
      const fail = failer('peers', src);
      if (typeof v === 'string') return peersFrom(v.trim() === '' ? [] : v.split(','), fail);
      if (Array.isArray(v)) return peersFrom(v, fail);
      return fail('must be an array of host:port strings or {host, port} objects, or a comma-separated string', v);
    },
  },
};

function multicastAddress(v: unknown, fail: Fail): string {
  const rule = 'must be an IPv4 multicast address in 224.0.0.0-239.255.255.255';
  if (typeof v !== 'string' || !isIPv4(v)) return fail(rule, v);
  const first = Number(v.slice(0, v.indexOf('.')));
  if (first < 224 || first > 239) fail(rule, v);
  return v;
}

function logFilename(v: unknown, fail: Fail): string {
  if (typeof v !== 'string' || v.trim() === '' || v.includes('\0')) return fail('must be a non-empty file path', v);
  return v;
}

function logFormat(v: unknown, fail: Fail): string {
  if (typeof v !== 'string' || v === '') return fail("must be 'json', 'text' or a %(attribute)s template", v);
  try {
    compileLogFormat(v);
  } catch (e) {
    if (e instanceof LogFormatError) fail(`is not a valid template: ${e.message}`, v);
    throw e;
  }
  return v;
}

// ---------------------------------------------------------------------------------------------

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The effective settings: `options` > `env` > the "mccache" object of the nearest
 * package.json at or above `cwd` > SETTINGS_DEFAULTS. The result is frozen. Throws
 * InvalidSettingError (MCCACHE_ERR_INVALID_OPTION) for the first bad value it meets.
 * Keys of `options` that are not settings are ignored (the cache's own options, such as
 * sizeCalculation, travel in the same object); unknown keys in package.json are errors.
 */
export function resolveSettings(options: SettingsOptions = {}, env: Env = process.env, cwd: string = process.cwd()): Settings {
  const out: Record<string, unknown> = { ...SETTINGS_DEFAULTS };
  const origins: Partial<Record<SettingName, Source>> = {};

  const pkg = findPackageJson(cwd);
  if (pkg) {
    for (const [name, value] of Object.entries(pkg.section)) {
      const src: Source = {
        origin: 'package.json',
        label: `key "mccache.${name}" in ${pkg.path}`,
        where: `${pkg.path}#mccache.${name}`,
      };
      if (!(name in SPECS)) {
        throw new InvalidSettingError(name, 'package.json', src.where,
          `${name} (${src.label}): is not a McCache setting; known: ${Object.keys(SPECS).join(', ')}`);
      }
      const spec = SPECS[name as SettingName];
      if (spec.notInPackageJson) {
        failer(name as SettingName, src, true)(`is a secret and does not belong in package.json; set ${spec.env} or pass the option`);
      }
      out[name] = spec.check(value, src);
      origins[name as SettingName] = src;
    }
  }

  for (const [name, spec] of Object.entries(SPECS) as [SettingName, Spec][]) {
    const raw = env[spec.env];
    if (raw === undefined || raw.trim() === '') continue;
    const src: Source = { origin: 'env', label: `environment variable ${spec.env}`, where: spec.env };
    out[name] = spec.parse(raw.trim(), src);
    origins[name] = src;
  }
  const ipText = env['MCCACHE_MULTICAST_IP']?.trim();
  const portInIp = ipText ? /:([^:]*)$/.exec(ipText)?.[1] : undefined;
  if (portInIp !== undefined) {
    const src: Source = { origin: 'env', label: 'environment variable MCCACHE_MULTICAST_IP (its port)', where: 'MCCACHE_MULTICAST_IP' };
    const port = intText('multicastPort', 1, 65535)(portInIp, src);
    if (origins.multicastPort?.origin === 'env' && out['multicastPort'] !== port) {
      failer('multicastPort', src)(`disagrees with MCCACHE_MULTICAST_PORT=${String(out['multicastPort'])}`, ipText);
    }
    out['multicastPort'] = port;
    origins.multicastPort = src;
  }

  for (const [name, value] of Object.entries(options)) {
    if (value === undefined || !(name in SPECS)) continue;
    const src: Source = { origin: 'option', label: `option ${name}`, where: name };
    out[name] = SPECS[name as SettingName].check(value, src);
    origins[name as SettingName] = src;
  }

  if (out['max'] === 0 && out['maxSize'] === 0) {
    const src = origins.max ?? origins.maxSize ?? { origin: 'default' as const, label: 'default', where: 'max' };
    failer('max', src)('and maxSize cannot both be 0: the cache would grow without bound', 0);
  }
  return Object.freeze(out) as unknown as Settings;
}

function findPackageJson(cwd: string): { path: string; section: Record<string, unknown> } | undefined {
  let dir = resolve(cwd);
  for (;;) {
    const path = join(dir, 'package.json');
    let isFile = false;
    try {
      isFile = statSync(path).isFile();
    } catch {
      // not here; look further up
    }
    if (isFile) {
      const src: Source = { origin: 'package.json', label: path, where: path };
      let json: unknown;
      try {
        json = JSON.parse(readFileSync(path, 'utf8'));
      } catch (e) {
        throw new InvalidSettingError('mccache', 'package.json', path,
          `package.json (${src.label}): cannot be read as JSON, so its "mccache" settings are unknown: ${String(e)}`);
      }
      const section = (json as { mccache?: unknown } | null)?.mccache;
      if (section === undefined) return undefined;
      if (typeof section !== 'object' || section === null || Array.isArray(section)) {
        throw new InvalidSettingError('mccache', 'package.json', `${path}#mccache`,
          `package.json (${src.label}): "mccache" must be an object of settings, got ${show(section)}`);
      }
      return { path, section: section as Record<string, unknown> };
    }
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** One row of the settings table, as the README prints it. */
export interface SettingRow {
  name: SettingName;
  env: string;
  unit: string;
  default: string;
  description: string;
}

/** The settings table, in declaration order. */
export function describeSettings(): SettingRow[] {
  return (Object.entries(SPECS) as [SettingName, Spec][]).map(([name, spec]) => ({
    name,
    env: spec.env,
    unit: spec.unit,
    default: spec.shows ?? showDefault(SETTINGS_DEFAULTS[name]),
    description: spec.description,
  }));
}

function showDefault(v: unknown): string {
  return typeof v === 'string' ? `'${v}'` : typeof v === 'number' ? withUnderscores(v) : String(v);
}

function withUnderscores(n: number): string {
  return n < 10_000 ? String(n) : String(n).replace(/\B(?=(\d{3})+$)/g, '_');
}

/** 3600000 -> "3_600_000 (1 h)". */
function showMs(ms: number): string {
  const [n, unit] = ms % 3_600_000 === 0 && ms > 0 ? [ms / 3_600_000, 'h'] : ms % 60_000 === 0 && ms > 0 ? [ms / 60_000, 'min']
    : ms % 1000 === 0 && ms > 0 ? [ms / 1000, 's'] : [undefined, ''];
  return n === undefined ? withUnderscores(ms) : `${withUnderscores(ms)} (${n} ${unit})`;
}
