/**
 * Cache.reconfigure (runtime/cache/cache.ts), which getCache uses when it names a cache that a
 * peer's write created with the defaults: every option is validated before any is applied; new
 * bounds evict at once (LRU first, reason 'lru' / 'size'), locally, never published; a new
 * sizeCalculation re-measures every entry; a new ttl applies to later writes.
 */
import { expect } from 'chai';
import { ErrorCode } from '../../runtime/errors';
import { errorCode, makeCache } from './cache-fixtures';

describe('cache reconfigure', () => {
  it('a smaller max evicts the least recently used entries at once, locally', () => {
    const { cache, replicator } = makeCache<number>({ max: 10 });
    for (let i = 0; i < 6; i++) cache.set(`k${i}`, i);
    cache.get('k0');
    const evicted: unknown[] = [];
    cache.on('evict', (e) => evicted.push(e['key']));
    const published = replicator.published.length;
    cache.reconfigure({ max: 3 });
    expect([...cache.keys()]).to.deep.equal(['k4', 'k5', 'k0']);
    expect(evicted).to.deep.equal(['k1', 'k2', 'k3']);
    expect(cache.metrics().evictions).to.include({ lru: 3 });
    expect(replicator.published.length, 'evictions are not replicated').to.equal(published);
    cache.set('k9', 9);
    expect(cache.size, 'the new bound holds for later writes').to.equal(3);
  });

  it('a new sizeCalculation re-measures every entry, and a smaller maxSize evicts by size', () => {
    const { cache } = makeCache<string>({ max: 0 });
    cache.set('a', 'aaaa').set('b', 'bb').set('c', 'cccccc');
    expect(cache.metrics().calculatedSize, 'default: value bytes + key bytes').to.equal(5 + 3 + 7);
    cache.reconfigure({ max: 0, maxSize: 9, sizeCalculation: (v) => v.length });
    // 4 + 2 + 6 = 12 > 9: 'a' (least recently used) goes.
    expect([...cache.keys()]).to.deep.equal(['b', 'c']);
    expect(cache.metrics()).to.include({ calculatedSize: 8 });
    expect(cache.metrics().evictions).to.include({ size: 1 });
  });

  it('an invalid option throws naming it and changes nothing', () => {
    const { cache } = makeCache<number>({ max: 5, ttl: 0 });
    for (let i = 0; i < 5; i++) cache.set(`k${i}`, i);
    expect(errorCode(() => cache.reconfigure({ max: 2, ttl: -1 }))).to.equal(ErrorCode.INVALID_OPTION);
    expect(() => cache.reconfigure({ max: 2, mode: 7 as 0 })).to.throw(/mode/);
    expect(cache.size, 'max 2 was not applied').to.equal(5);
    cache.set('k5', 5);
    expect(cache.size, 'still max 5').to.equal(5);
    expect(errorCode(() => cache.reconfigure({ now: () => 0 } as never))).to.equal(ErrorCode.INVALID_OPTION);
  });

  it('a new ttl applies to later writes, not to entries already held', () => {
    let now = 1000;
    const { cache } = makeCache<number>({ ttl: 0, now: () => now });
    cache.set('old', 1);
    cache.reconfigure({ ttl: 100 });
    cache.set('new', 2);
    now += 150;
    expect(cache.get('old')).to.equal(1);
    expect(cache.get('new')).to.equal(undefined);
  });
});
