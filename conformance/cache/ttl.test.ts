/**
 * TTL (runtime/cache/cache.ts, DESIGN.md §5): expiry instants on the injected monotonic clock,
 * per-set ttl, a remote put's ttl (0 = the receiving cache's default), lazy expiry, and expiry
 * as a local decision: nothing is published when an entry expires.
 */
import { expect } from 'chai';
import { ErrorCode } from '../../runtime/errors';
import { errorCode, hlcAt, makeCache, remotePut, WALL0 } from './cache-fixtures';

describe('cache ttl', () => {
  it('an entry lives exactly ttl ms on the monotonic clock', () => {
    const { cache, time } = makeCache<string>({ ttl: 100 });
    cache.set('k', 'v');
    time.advance(99);
    expect(cache.get('k')).to.equal('v');
    expect(cache.has('k')).to.equal(true);
    time.advance(1);
    expect(cache.peek('k')).to.equal(undefined);
    expect(cache.has('k')).to.equal(false);
    expect(cache.get('k')).to.equal(undefined);
    expect(cache.size).to.equal(0);
  });

  it('expiry is local: counted and announced as an eviction, never published', () => {
    const { cache, time, replicator } = makeCache<string>({ ttl: 10 });
    const evicted: unknown[] = [];
    cache.on('evict', (info) => evicted.push(info));
    cache.set('a', '1');
    cache.set('b', '2');
    expect(replicator.published.map((m) => m.op)).to.deep.equal(['put', 'put']);
    time.advance(10);
    expect(cache.get('a')).to.equal(undefined); // lazily, on read
    expect(cache.size).to.equal(0); // and the rest on size
    expect(replicator.published).to.have.length(2);
    expect(cache.metrics().evictions).to.deep.equal({ ttl: 2, lru: 0, size: 0 });
    expect(evicted).to.deep.equal([
      { cache: 'test', key: 'a', reason: 'ttl' },
      { cache: 'test', key: 'b', reason: 'ttl' },
    ]);
    expect(cache.metrics().misses).to.equal(1);
  });

  it('peek and metadata do not drop an expired entry; has and get do', () => {
    const { cache, time } = makeCache<string>({ ttl: 5 });
    const evicted: unknown[] = [];
    cache.on('evict', (info) => evicted.push(info));
    cache.set('a', 'v');
    cache.set('b', 'v');
    time.advance(5);
    expect(cache.peek('a')).to.equal(undefined);
    expect(cache.metadata('a')).to.equal(undefined);
    expect(evicted).to.deep.equal([]);
    expect(cache.has('a')).to.equal(false);
    expect(evicted).to.deep.equal([{ cache: 'test', key: 'a', reason: 'ttl' }]);
    expect(cache.get('b')).to.equal(undefined);
    expect(evicted).to.have.length(2);
    expect(cache.metrics().evictions.ttl).to.equal(2);
  });

  it('expired entries are never yielded by iteration and do not count in size', () => {
    const { cache, time } = makeCache<string>();
    cache.set('short', 's', { ttl: 10 });
    cache.set('long', 'l', { ttl: 30 });
    cache.set('forever', 'f');
    time.advance(10);
    expect([...cache.keys()]).to.deep.equal(['long', 'forever']);
    time.advance(20);
    expect([...cache]).to.deep.equal([['forever', 'f']]);
    expect(cache.size).to.equal(1);
    expect(cache.metrics().evictions.ttl).to.equal(2);
  });

  it('a per-set ttl overrides the default; ttl 0 per set means the default, as on the wire', () => {
    const { cache, time, replicator } = makeCache<string>({ ttl: 50 });
    cache.set('default', 'd');
    cache.set('short', 's', { ttl: 10 });
    cache.set('zero', 'z', { ttl: 0 });
    expect(replicator.published.map((m) => (m.op === 'put' ? m.ttl : -1))).to.deep.equal([50, 10, 50]);
    expect(cache.metadata('short')!.expiresAt).to.equal(time.mono + 10);
    expect(cache.metadata('zero')!.expiresAt).to.equal(time.mono + 50);
    time.advance(10);
    expect(cache.has('short')).to.equal(false);
    expect(cache.has('zero')).to.equal(true);
    time.advance(40);
    expect(cache.size).to.equal(0);
  });

  it('without a default ttl, an entry lives until deleted; a per-set ttl still applies', () => {
    const { cache, time } = makeCache<string>();
    cache.set('k', 'v');
    cache.set('t', 'v', { ttl: 1 });
    expect(cache.metadata('k')!.expiresAt).to.equal(undefined);
    time.advance(1e9);
    expect(cache.get('k')).to.equal('v');
    expect(cache.get('t')).to.equal(undefined);
  });

  it('setting a key again restarts its ttl', () => {
    const { cache, time } = makeCache<string>({ ttl: 10 });
    cache.set('k', 'v1');
    time.advance(8);
    cache.set('k', 'v2');
    time.advance(8);
    expect(cache.get('k')).to.equal('v2');
    time.advance(2);
    expect(cache.get('k')).to.equal(undefined);
  });

  it("a remote put's ttl counts from its arrival; ttl 0 takes the receiving cache's default", () => {
    const { cache, time } = makeCache<string>({ ttl: 40 });
    cache.applyRemote(remotePut('own', 'x', hlcAt(WALL0 - 5), 15), 2n);
    cache.applyRemote(remotePut('dflt', 'y', hlcAt(WALL0 - 4), 0), 2n);
    expect(cache.metadata('own')!.expiresAt).to.equal(time.mono + 15);
    expect(cache.metadata('dflt')!.expiresAt).to.equal(time.mono + 40);
    time.advance(15);
    expect(cache.get('own')).to.equal(undefined);
    expect(cache.get('dflt')).to.equal('y');
    time.advance(25);
    expect(cache.get('dflt')).to.equal(undefined);
  });

  it('a remote put with ttl 0 to a cache without a default lives until deleted', () => {
    const { cache, time } = makeCache<string>();
    cache.applyRemote(remotePut('k', 'v', hlcAt(WALL0 - 1), 0), 2n);
    time.advance(1e9);
    expect(cache.get('k')).to.equal('v');
  });

  it('refuses a ttl that is not an integer of 0..2^32-1 (the wire field is a u4), changing nothing', () => {
    for (const ttl of [-1, 1.5, Number.NaN, 2 ** 32, Infinity]) {
      expect(errorCode(() => makeCache({ ttl })), `ttl ${ttl}`).to.equal(ErrorCode.INVALID_OPTION);
      const { cache, replicator } = makeCache<string>();
      cache.set('k', 'old');
      expect(errorCode(() => cache.set('k', 'new', { ttl })), `per-set ttl ${ttl}`).to.equal(ErrorCode.INVALID_OPTION);
      expect(cache.get('k')).to.equal('old');
      expect(replicator.published).to.have.length(1);
    }
    const { cache, replicator } = makeCache<string>({ ttl: 2 ** 32 - 1 });
    cache.set('k', 'v', { ttl: 2 ** 32 - 1 });
    expect(replicator.published[0]).to.include({ op: 'put', ttl: 2 ** 32 - 1 });
  });
});
