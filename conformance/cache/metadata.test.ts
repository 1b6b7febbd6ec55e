/**
 * Entry metadata and the cache checksum (runtime/cache/cache.ts): version and origin of the
 * write, writtenAt from the hlc, createdAt/updatedAt/lastLookupAt/expiresAt on the monotonic
 * clock, size, codec, a per-entry checksum equal for equal encoded bytes, and `checksum()`
 * equal on members that hold the same entries, whatever order they were written in.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { encodeValue } from '../../runtime/cache/value-codec';
import { params } from '../wire/wire-arbitraries';
import { hlcAt, makeCache, remotePut, WALL0 } from './cache-fixtures';

describe('cache metadata', () => {
  it('describes a local write', () => {
    const { cache, time, replicator } = makeCache<unknown>({}, { nodeId: 7n });
    cache.set('k', { a: [1, 2] }, { ttl: 500 });
    const put = replicator.published[0] as { hlc: bigint };
    const md = cache.metadata('k')!;
    const { bytes } = encodeValue({ a: [1, 2] });
    expect(md).to.deep.equal({
      version: { hlc: put.hlc, node: 7n }, origin: 7n, writtenAt: WALL0,
      createdAt: time.mono, updatedAt: time.mono, lastLookupAt: undefined, expiresAt: time.mono + 500,
      size: bytes.length + 1, codec: 'msgpack', checksum: createHash('sha256').update(bytes).digest('hex'),
    });
  });

  it('describes a remote write with the writer as origin', () => {
    const { cache } = makeCache<string>();
    const hlc = hlcAt(WALL0 - 1234, 3);
    cache.applyRemote(remotePut('k', 'v', hlc), 42n);
    expect(cache.metadata('k')).to.include({ origin: 42n, writtenAt: WALL0 - 1234, codec: 'utf8', expiresAt: undefined });
    expect(cache.metadata('k')!.version).to.deep.equal({ hlc, node: 42n });
  });

  it('an update keeps createdAt and moves updatedAt and the version', () => {
    const { cache, time } = makeCache<string>();
    cache.set('k', 'a');
    const first = cache.metadata('k')!;
    time.advance(30);
    cache.set('k', 'b');
    const second = cache.metadata('k')!;
    expect(second.createdAt).to.equal(first.createdAt);
    expect(second.updatedAt).to.equal(first.updatedAt + 30);
    expect(second.version.hlc > first.version.hlc).to.equal(true);
  });

  it('lastLookupAt is set by get, not by peek or has (tracked when callbackWindow > 0)', () => {
    const { cache, time } = makeCache<string>({ callbackWindow: 1000 });
    cache.set('k', 'v');
    expect(cache.metadata('k')!.lastLookupAt).to.equal(undefined);
    time.advance(10);
    cache.get('k');
    const readAt = time.mono;
    expect(cache.metadata('k')!.lastLookupAt).to.equal(readAt);
    time.advance(10);
    cache.peek('k');
    cache.has('k');
    cache.metadata('k');
    expect(cache.metadata('k')!.lastLookupAt).to.equal(readAt);
    time.advance(5);
    cache.get('k');
    expect(cache.metadata('k')!.lastLookupAt).to.equal(readAt + 15);
  });

  it('lastLookupAt is not recorded when callbackWindow is 0 (get does not read the clock)', () => {
    const { cache } = makeCache<string>({ callbackWindow: 0 });
    cache.set('k', 'v');
    cache.get('k');
    expect(cache.metadata('k')!.lastLookupAt).to.equal(undefined);
  });

  it('the entry checksum is equal for equal encoded bytes and differs otherwise', () => {
    const a = makeCache<unknown>().cache;
    const b = makeCache<unknown>({}, { nodeId: 9n }).cache;
    a.set('x', { n: 1, s: 'é' });
    b.set('y', { n: 1, s: 'é' });
    b.set('z', { n: 2, s: 'é' });
    expect(a.metadata('x')!.checksum).to.equal(b.metadata('y')!.checksum);
    expect(a.metadata('x')!.checksum).to.not.equal(b.metadata('z')!.checksum);
    a.set('s', 'abc');
    b.set('u', new TextEncoder().encode('abc')); // same bytes, another codec: the checksum is over bytes
    expect(a.metadata('s')!.checksum).to.equal(b.metadata('u')!.checksum);
  });

  it('metadata of a missing or expired key is undefined', () => {
    const { cache, time } = makeCache<string>();
    expect(cache.metadata('nope')).to.equal(undefined);
    cache.set('k', 'v', { ttl: 5 });
    time.advance(5);
    expect(cache.metadata('k')).to.equal(undefined);
  });

  describe('checksum()', () => {
    it('is equal for two caches holding the same entries regardless of insertion order', () => {
      const entry = fc.tuple(fc.string({ unit: 'grapheme', maxLength: 4 }), fc.string({ maxLength: 5 }));
      const entries = fc.uniqueArray(entry, { maxLength: 12, selector: ([k]) => k });
      fc.assert(
        fc.property(entries.chain((es) => fc.tuple(fc.constant(es), fc.shuffledSubarray(es, { minLength: es.length, maxLength: es.length }))),
          ([es, shuffled]) => {
            const a = makeCache<string>({ max: 0 }).cache;
            const b = makeCache<string>({ max: 0 }).cache;
            es.forEach(([k, v], i) => a.applyRemote(remotePut(k, v, hlcAt(WALL0 - 100, i)), 2n));
            const index = new Map(es.map(([k], i) => [k, i]));
            for (const [k, v] of shuffled) b.applyRemote(remotePut(k, v, hlcAt(WALL0 - 100, index.get(k)!)), 2n);
            expect(a.checksum()).to.equal(b.checksum());
          }),
        params(200),
      );
    });

    it('differs when a value, a version or the set of keys differs', () => {
      const build = (edit?: (c: ReturnType<typeof makeCache<string>>['cache']) => void): string => {
        const { cache } = makeCache<string>();
        cache.applyRemote(remotePut('a', '1', hlcAt(WALL0 - 9)), 2n);
        cache.applyRemote(remotePut('b', '2', hlcAt(WALL0 - 8)), 2n);
        edit?.(cache);
        return cache.checksum();
      };
      const base = build();
      expect(build()).to.equal(base);
      expect(build((c) => c.applyRemote(remotePut('b', '3', hlcAt(WALL0 - 7)), 2n))).to.not.equal(base);
      expect(build((c) => c.applyRemote(remotePut('b', '2', hlcAt(WALL0 - 7)), 2n))).to.not.equal(base);
      expect(build((c) => c.applyRemote(remotePut('b', '2', hlcAt(WALL0 - 8)), 3n))).to.not.equal(base);
      expect(build((c) => c.applyRemote(remotePut('c', '', hlcAt(WALL0 - 7)), 2n))).to.not.equal(base);
    });

    it('sorts keys by code point, not by UTF-16 unit, so another language computes the same', () => {
      const { cache } = makeCache<string>();
      cache.applyRemote(remotePut('\uFFFF', 'bmp', hlcAt(WALL0 - 9)), 2n);
      cache.applyRemote(remotePut('\u{10000}', 'astral', hlcAt(WALL0 - 8)), 2n);
      const sha = (s: string | Uint8Array): string => createHash('sha256').update(s).digest('hex');
      const line = (k: string, hlc: bigint, v: string): string => `${Buffer.byteLength(k)}:${k}\t${hlc}\t2\t${sha(Buffer.from(v))}\n`;
      const want = sha(line('\uFFFF', hlcAt(WALL0 - 9), 'bmp') + line('\u{10000}', hlcAt(WALL0 - 8), 'astral'));
      expect(cache.checksum()).to.equal(want);
    });

    it('a key cannot imitate line boundaries (two entries versus one crafted key)', () => {
      const sha = (v: string): string => createHash('sha256').update(v).digest('hex');
      const ha = hlcAt(WALL0 - 9);
      const hb = hlcAt(WALL0 - 8);
      // Without a length prefix both caches would hash "a\t<ha>\t2\t<sha(1)>\nb\t<hb>\t2\t<sha(2)>\n".
      const two = makeCache<string>().cache;
      two.applyRemote(remotePut('a', '1', ha), 2n);
      two.applyRemote(remotePut('b', '2', hb), 2n);
      const one = makeCache<string>().cache;
      one.applyRemote(remotePut(`a\t${ha}\t2\t${sha('1')}\nb`, '2', hb), 2n);
      expect(one.checksum()).to.not.equal(two.checksum());
    });

    it('of an empty cache is the SHA-256 of nothing', () => {
      expect(makeCache().cache.checksum()).to.equal(createHash('sha256').digest('hex'));
    });
  });
});

describe('cache: the bytes an entry keeps', () => {
  const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

  it('a primitive a peer encoded otherwise (1 as a float64) keeps the bytes it came with: checksums and repairs use them', () => {
    const { cache } = makeCache<unknown>();
    const foreign = Uint8Array.from([0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]); // msgpack float64 1.0; ours would be 0x01
    cache.applyRemote({ op: 'put', cache: 'test', key: 'one', hlc: hlcAt(WALL0), ttl: 0, codec: 'msgpack', value: foreign }, 9n);
    expect(cache.get('one')).to.equal(1);
    expect(cache.metadata('one')!.checksum).to.equal(sha(foreign));
    const rec = [...cache.syncRecords()].find((r) => r.key === 'one')!;
    expect(Buffer.from(rec.value).equals(Buffer.from(foreign))).to.equal(true);
  });

  it('a received object keeps its bytes: changing the object returned by get changes neither the checksum nor what repairs send', () => {
    const { cache } = makeCache<{ n: number }>();
    const put = remotePut('o', { n: 1 }, hlcAt(WALL0));
    cache.applyRemote(put, 9n);
    const before = cache.checksum();
    cache.get('o')!.n = 2; // the application mutates what it got
    expect(cache.checksum()).to.equal(before);
    const rec = [...cache.syncRecords()].find((r) => r.key === 'o')!;
    expect(Buffer.from(rec.value).equals(Buffer.from((put as { value: Uint8Array }).value))).to.equal(true);
  });

  it('strings and primitives, local or received, give the same checksums as their encoded bytes', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.integer(), fc.double({ noNaN: true }), fc.boolean(), fc.constant(null), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n })), (v) => {
      const a = makeCache<unknown>().cache;
      const b = makeCache<unknown>().cache;
      a.set('k', v);
      b.applyRemote(remotePut('k', v, hlcAt(WALL0)), 9n);
      const want = sha(encodeValue(v).bytes);
      expect(a.metadata('k')!.checksum).to.equal(want);
      expect(b.metadata('k')!.checksum).to.equal(want);
    }), params(500));
  });
});
