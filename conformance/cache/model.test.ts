/**
 * Model-based test of one Cache (runtime/cache/cache.ts) against a plain model: a Map whose
 * insertion order is the recency order (least recently used first; a touch deletes and
 * re-inserts), explicit expiry instants, and capacity eviction written out the simple way.
 * fast-check (`fc.commands`) drives both with random get/set (with and without a per-call
 * ttl)/set(k, undefined)/delete/clear/peek/has/advance-time sequences on a fake monotonic clock
 * and a fake wall clock, across random max, maxSize, sizeCalculation, ttl and callbackWindow.
 *
 * After every command the cheap, non-purging observations are compared (`peek` and `metadata`
 * of every key: value, expiresAt, lastLookupAt, version growth), so expired entries stay
 * unpurged and later commands meet them lazily; the `check` command compares what purges:
 * size, keys/values/entries/forEach/[...cache] in order, calculatedSize, evictions by reason
 * 'lru' and 'size'. The recording replicator must see exactly one message per user
 * set/delete/clear, with strictly growing hlcs, and nothing for expiry or eviction.
 *
 * FC_NUM_RUNS scales the runs, FC_SEED replays one (see ../wire/wire-arbitraries.ts).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import type { Cache } from '../../runtime/cache/cache';
import { ErrorCode } from '../../runtime/errors';
import { params } from '../wire/wire-arbitraries';
import { errorCode, FakeTime, makeCache, type RecordingReplicator } from './cache-fixtures';

/** Keys: ASCII, 2- and 3-byte UTF-8, and one with a lone surrogate (refused by set/delete). */
const KEYS = ['a', 'b', 'c', 'd', 'e', 'é', '日本', '\uD800x'];
const BAD_KEY = '\uD800x';

interface Config {
  max: number;
  maxSize: number;
  ttl: number;
  callbackWindow: number;
  customSize: boolean;
}

const customSize = (v: string): number => v.length + 1;
const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

interface MEntry {
  value: string;
  expiresAt: number;
  size: number;
  lastLookupAt: number | undefined;
}

class Model {
  /** Insertion order = recency order, least recently used first. */
  readonly entries = new Map<string, MEntry>();
  readonly evictions = { lru: 0, size: 0 };
  published = 0;
  constructor(readonly cfg: Config, readonly time: FakeTime) {}

  get now(): number {
    return this.time.mono;
  }
  /** Expired entries are gone, whenever the cache gets round to dropping them. */
  live(key: string): MEntry | undefined {
    const e = this.entries.get(key);
    if (e !== undefined && e.expiresAt <= this.now) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }
  purge(): void {
    for (const k of [...this.entries.keys()]) this.live(k);
  }
  sizeOf(key: string, value: string): number {
    return this.cfg.customSize ? customSize(value) : Buffer.byteLength(value) + Buffer.byteLength(key);
  }
  total(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.size;
    return n;
  }
  touch(key: string, e: MEntry): void {
    this.entries.delete(key);
    this.entries.set(key, e);
  }
}

interface Real {
  cache: Cache<string>;
  time: FakeTime;
  replicator: RecordingReplicator;
  lastHlc: bigint;
}

/** What must hold after every command, without purging anything. */
function observe(m: Model, r: Real): void {
  for (const key of KEYS) {
    const e = m.entries.get(key);
    const live = e !== undefined && e.expiresAt > m.now ? e : undefined;
    expect(r.cache.peek(key), `peek(${key})`).to.equal(live?.value);
    const md = r.cache.metadata(key);
    if (live === undefined) {
      expect(md, `metadata(${key})`).to.equal(undefined);
      continue;
    }
    expect(md, `metadata(${key})`).to.not.equal(undefined);
    expect(md!.expiresAt, `expiresAt(${key})`).to.equal(live.expiresAt === Infinity ? undefined : live.expiresAt);
    expect(md!.lastLookupAt, `lastLookupAt(${key})`).to.equal(live.lastLookupAt);
    expect(md!.size, `size(${key})`).to.equal(live.size);
    expect(md!.origin).to.equal(1n);
  }
  // One message per user write, in order, with strictly growing versions.
  const pub = r.replicator.published;
  expect(pub.length, 'published').to.equal(m.published);
  for (const msg of pub.splice(0)) {
    if (msg.op !== 'put' && msg.op !== 'delete' && msg.op !== 'clear') expect.fail(`unexpected ${msg.op}`);
    expect(msg.hlc > r.lastHlc, 'hlc grows').to.equal(true);
    r.lastHlc = msg.hlc;
  }
  m.published = 0;
}

type Cmd = fc.Command<Model, Real>;

class Get implements Cmd {
  constructor(readonly key: string) {}
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    const e = m.live(this.key);
    if (e) {
      m.touch(this.key, e);
      if (m.cfg.callbackWindow > 0) e.lastLookupAt = m.now;
    }
    expect(r.cache.get(this.key)).to.equal(e?.value);
    observe(m, r);
  }
  toString = (): string => `get(${JSON.stringify(this.key)})`;
}

class Peek implements Cmd {
  constructor(readonly key: string) {}
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    const e = m.entries.get(this.key);
    expect(r.cache.peek(this.key)).to.equal(e !== undefined && e.expiresAt > m.now ? e.value : undefined);
    observe(m, r);
  }
  toString = (): string => `peek(${JSON.stringify(this.key)})`;
}

class Has implements Cmd {
  constructor(readonly key: string) {}
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    expect(r.cache.has(this.key)).to.equal(m.live(this.key) !== undefined);
    observe(m, r);
  }
  toString = (): string => `has(${JSON.stringify(this.key)})`;
}

class Set implements Cmd {
  constructor(readonly key: string, readonly value: string | undefined, readonly ttl: number | undefined) {}
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    const { key, value } = this;
    const opts = this.ttl === undefined ? undefined : { ttl: this.ttl };
    if (key === BAD_KEY) {
      expect(errorCode(() => r.cache.set(key, value as string, opts))).to.equal(ErrorCode.INVALID_ARGUMENT);
      observe(m, r);
      return;
    }
    if (value === undefined) {
      // set(k, undefined) is delete(k), as in lru-cache: broadcast too.
      m.live(key);
      m.entries.delete(key);
      m.published++;
      r.cache.set(key, value as unknown as string, opts);
      observe(m, r);
      return;
    }
    if (!isWellFormed(value)) {
      expect(errorCode(() => r.cache.set(key, value, opts))).to.equal(ErrorCode.INVALID_ARGUMENT);
      observe(m, r);
      return;
    }
    const size = m.sizeOf(key, value);
    if (m.cfg.maxSize > 0 && size > m.cfg.maxSize) {
      expect(errorCode(() => r.cache.set(key, value, opts))).to.equal(ErrorCode.VALUE_TOO_LARGE);
      observe(m, r);
      return;
    }
    const ttl = this.ttl !== undefined && this.ttl > 0 ? this.ttl : m.cfg.ttl;
    const old = m.live(key);
    m.entries.delete(key);
    const e: MEntry = { value, size, expiresAt: ttl > 0 ? m.now + ttl : Infinity, lastLookupAt: old?.lastLookupAt };
    m.entries.set(key, e);
    m.purge();
    // Least recently used first; never the entry just written.
    while (m.cfg.max > 0 && m.entries.size > m.cfg.max) {
      m.entries.delete(m.entries.keys().next().value!);
      m.evictions.lru++;
    }
    while (m.cfg.maxSize > 0 && m.total() > m.cfg.maxSize) {
      m.entries.delete(m.entries.keys().next().value!);
      m.evictions.size++;
    }
    m.published++;
    expect(r.cache.set(key, value, opts)).to.equal(r.cache);
    observe(m, r);
  }
  toString = (): string => `set(${JSON.stringify(this.key)}, ${JSON.stringify(this.value)}${this.ttl === undefined ? '' : `, {ttl: ${this.ttl}}`})`;
}

class Delete implements Cmd {
  constructor(readonly key: string) {}
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    if (this.key === BAD_KEY) {
      expect(errorCode(() => r.cache.delete(this.key))).to.equal(ErrorCode.INVALID_ARGUMENT);
      observe(m, r);
      return;
    }
    const present = m.live(this.key) !== undefined;
    m.entries.delete(this.key);
    m.published++;
    expect(r.cache.delete(this.key)).to.equal(present);
    observe(m, r);
  }
  toString = (): string => `delete(${JSON.stringify(this.key)})`;
}

class Clear implements Cmd {
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    m.entries.clear();
    m.published++;
    r.cache.clear();
    observe(m, r);
  }
  toString = (): string => 'clear()';
}

class Advance implements Cmd {
  constructor(readonly ms: number) {}
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    r.time.advance(this.ms);
    observe(m, r);
  }
  toString = (): string => `advance(${this.ms})`;
}

/** The observations that purge expired entries, checked only now and then. */
class Check implements Cmd {
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    m.purge();
    const c = r.cache;
    const keys = [...m.entries.keys()];
    const values = [...m.entries.values()].map((e) => e.value);
    expect(c.size, 'size').to.equal(m.entries.size);
    expect([...c.keys()], 'keys()').to.deep.equal(keys);
    expect([...c.values()], 'values()').to.deep.equal(values);
    expect([...c.entries()], 'entries()').to.deep.equal(keys.map((k, i) => [k, values[i]]));
    expect([...c], '[...cache]').to.deep.equal(keys.map((k, i) => [k, values[i]]));
    const seen: [string, string][] = [];
    c.forEach((v, k, self) => {
      expect(self).to.equal(c);
      seen.push([k, v]);
    });
    expect(seen, 'forEach').to.deep.equal(keys.map((k, i) => [k, values[i]]));
    const metrics = c.metrics();
    expect(metrics.size).to.equal(m.entries.size);
    expect(metrics.calculatedSize, 'calculatedSize').to.equal(m.total());
    expect(metrics.evictions.lru, 'lru evictions').to.equal(m.evictions.lru);
    expect(metrics.evictions.size, 'size evictions').to.equal(m.evictions.size);
    observe(m, r);
  }
  toString = (): string => 'check()';
}

// Mostly three keys, so that sequences often come back to a key (touch, expire, rewrite it).
const key = fc.oneof({ weight: 4, arbitrary: fc.constantFrom('a', 'b', 'c') }, { weight: 1, arbitrary: fc.constantFrom(...KEYS) });
const value = fc.oneof(
  { weight: 6, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 2, arbitrary: fc.string({ minLength: 20, maxLength: 70 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 4 }) }, // may hold lone surrogates
  { weight: 1, arbitrary: fc.constant(undefined) },
);
const ttl = fc.option(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 40 })), { nil: undefined });

const commands = [
  key.map((k) => new Get(k)),
  key.map((k) => new Get(k)),
  key.map((k) => new Peek(k)),
  key.map((k) => new Has(k)),
  fc.tuple(key, value, ttl).map(([k, v, t]) => new Set(k, v, t)),
  fc.tuple(key, value, ttl).map(([k, v, t]) => new Set(k, v, t)),
  fc.tuple(key, value, ttl).map(([k, v, t]) => new Set(k, v, t)),
  key.map((k) => new Delete(k)),
  fc.constant(new Clear()),
  fc.integer({ min: 0, max: 40 }).map((ms) => new Advance(ms)),
  fc.constant(new Check()),
];

const config: fc.Arbitrary<Config> = fc.record({
  max: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 6 })),
  maxSize: fc.oneof(fc.constant(0), fc.integer({ min: 8, max: 90 })),
  ttl: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 30 })),
  callbackWindow: fc.oneof(fc.constant(0), fc.constant(1000)),
  customSize: fc.boolean(),
});

describe('cache model (fc.commands)', function () {
  // Property runs scale with FC_NUM_RUNS; mocha's default 2 s limit would fail a slow machine, not the code.
  this.timeout(0);

  it('behaves like a Map with LRU order, TTL expiry, max and maxSize', () => {
    fc.assert(
      fc.property(config, fc.commands(commands, { maxCommands: 60, size: 'medium' }), (cfg, cmds) => {
        const time = new FakeTime();
        const { cache, replicator } = makeCache<string>({
          max: cfg.max, maxSize: cfg.maxSize, ttl: cfg.ttl, callbackWindow: cfg.callbackWindow,
          ...(cfg.customSize && { sizeCalculation: customSize }),
        }, { time });
        const model = new Model(cfg, time);
        const real: Real = { cache, time, replicator, lastHlc: 0n };
        fc.modelRun(() => ({ model, real }), cmds);
        new Check().run(model, real); // whatever ran, a full comparison at the end
      }),
      params(1000),
    );
  });
});
