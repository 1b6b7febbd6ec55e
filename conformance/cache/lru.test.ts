/**
 * Recency and `max` (runtime/cache/cache.ts): exact LRU eviction, what touches recency (get,
 * set) and what does not (peek, has, metadata), iteration order (least recently used first)
 * and iteration while the cache changes, and capacity eviction as a local decision: counted by
 * reason, announced as an 'evict' event, never published (DESIGN.md §5: an LRU eviction on one
 * host must not delete the key cluster-wide).
 */
import { expect } from 'chai';
import { ErrorCode } from '../../runtime/errors';
import { errorCode, hlcAt, makeCache, remotePut, WALL0 } from './cache-fixtures';

describe('cache lru and max', () => {
  it('evicts the least recently used entry beyond max', () => {
    const { cache } = makeCache<number>({ max: 3 });
    cache.set('a', 1).set('b', 2).set('c', 3);
    cache.get('a'); // b is now the least recently used
    cache.set('d', 4);
    expect([...cache.keys()]).to.deep.equal(['c', 'a', 'd']);
    cache.set('c', 30); // an update touches too
    cache.set('e', 5);
    expect([...cache.keys()]).to.deep.equal(['d', 'c', 'e']);
    expect(cache.metrics().evictions).to.deep.equal({ ttl: 0, lru: 2, size: 0 });
  });

  it('peek, has and metadata leave recency alone', () => {
    const { cache } = makeCache<number>({ max: 2 });
    cache.set('a', 1).set('b', 2);
    expect(cache.peek('a')).to.equal(1);
    expect(cache.has('a')).to.equal(true);
    expect(cache.metadata('a')).to.not.equal(undefined);
    cache.set('c', 3);
    expect([...cache.keys()]).to.deep.equal(['b', 'c']);
  });

  it('iterates least recently used first, in every form', () => {
    const { cache } = makeCache<number>();
    cache.set('x', 1).set('y', 2).set('z', 3);
    cache.get('x');
    const order = ['y', 'z', 'x'];
    const pairs = [['y', 2], ['z', 3], ['x', 1]];
    expect([...cache.keys()]).to.deep.equal(order);
    expect([...cache.values()]).to.deep.equal([2, 3, 1]);
    expect([...cache.entries()]).to.deep.equal(pairs);
    expect([...cache]).to.deep.equal(pairs);
    const seen: unknown[] = [];
    const self = {};
    cache.forEach(function (this: unknown, v, k, c) {
      expect(this).to.equal(self);
      expect(c).to.equal(cache);
      seen.push([k, v]);
    }, self);
    expect(seen).to.deep.equal(pairs);
    expect(Object.prototype.toString.call(cache)).to.equal('[object McCache]');
  });

  it('capacity eviction is never published, and is announced as an evict event', () => {
    const { cache, replicator } = makeCache<number>({ max: 2 });
    const evicted: unknown[] = [];
    cache.on('evict', (info) => evicted.push(info));
    for (let i = 0; i < 5; i++) cache.set(`k${i}`, i);
    expect(replicator.published.map((m) => m.op)).to.deep.equal(['put', 'put', 'put', 'put', 'put']);
    expect(evicted).to.deep.equal([0, 1, 2].map((i) => ({ cache: 'test', key: `k${i}`, reason: 'lru' })));
    expect(cache.metrics().evictions.lru).to.equal(3);
  });

  it('a remote put into a full cache evicts locally, without publishing', () => {
    const { cache, replicator } = makeCache<string>({ max: 1 });
    cache.set('mine', 'v');
    cache.applyRemote(remotePut('theirs', 'w', hlcAt(WALL0 + 1)), 2n);
    expect([...cache.keys()]).to.deep.equal(['theirs']);
    expect(replicator.published).to.have.length(1);
    expect(cache.metrics().evictions.lru).to.equal(1);
  });

  it('drops expired entries before evicting a live one', () => {
    const { cache, time } = makeCache<number>({ max: 2 });
    cache.set('live', 1);
    cache.set('short', 2, { ttl: 5 });
    time.advance(5);
    cache.set('new', 3);
    expect([...cache.keys()]).to.deep.equal(['live', 'new']);
    expect(cache.metrics().evictions).to.deep.equal({ ttl: 1, lru: 0, size: 0 });
  });

  it('max 0 means no bound', () => {
    const { cache } = makeCache<number>({ max: 0, maxSize: 0 });
    for (let i = 0; i < 2000; i++) cache.set(`k${i}`, i);
    expect(cache.size).to.equal(2000);
    expect(cache.metrics().evictions.lru).to.equal(0);
  });

  it('the default max is 256', () => {
    const { cache } = makeCache<number>();
    for (let i = 0; i < 300; i++) cache.set(`k${i}`, i);
    expect(cache.size).to.equal(256);
    expect(cache.keys().next().value).to.equal('k44');
  });

  it('refuses a max that is not a non-negative integer', () => {
    for (const max of [-1, 0.5, Number.NaN, '3' as unknown as number]) {
      expect(errorCode(() => makeCache({ max })), String(max)).to.equal(ErrorCode.INVALID_OPTION);
    }
  });

  describe('changing the cache while iterating', () => {
    it('deleting entries in the loop still visits every other entry', () => {
      const { cache } = makeCache<number>();
      for (let i = 0; i < 6; i++) cache.set(`k${i}`, i);
      const visited: string[] = [];
      for (const [k, v] of cache) {
        visited.push(k);
        if (v % 2 === 0) cache.delete(k);
      }
      expect(visited).to.deep.equal(['k0', 'k1', 'k2', 'k3', 'k4', 'k5']);
      expect([...cache.keys()]).to.deep.equal(['k1', 'k3', 'k5']);
    });

    it('an entry deleted before its turn is skipped', () => {
      const { cache } = makeCache<number>();
      cache.set('a', 1).set('b', 2).set('c', 3);
      const visited: string[] = [];
      cache.forEach((_v, k) => {
        visited.push(k);
        if (k === 'a') cache.delete('b');
      });
      expect(visited).to.deep.equal(['a', 'c']);
    });

    it('get in the loop neither ends nor reorders the walk', () => {
      const { cache } = makeCache<number>();
      cache.set('a', 1).set('b', 2).set('c', 3);
      const visited: string[] = [];
      for (const k of cache.keys()) {
        visited.push(k);
        cache.get(k);
      }
      expect(visited).to.deep.equal(['a', 'b', 'c']);
      expect([...cache.keys()]).to.deep.equal(['a', 'b', 'c']);
    });

    it('entries added in the loop are not visited', () => {
      const { cache } = makeCache<number>();
      cache.set('a', 1).set('b', 2);
      const visited: string[] = [];
      for (const k of cache.keys()) {
        visited.push(k);
        if (visited.length > 10) break; // a walk that visits new entries would never end
        cache.set(`${k}+`, 0);
      }
      expect(visited).to.deep.equal(['a', 'b']);
      expect(cache.size).to.equal(4);
    });

    // Entries live in reused slots (runtime/cache/entry-table.ts): a slot freed and taken by a
    // new entry during the walk must not be mistaken for the entry the walk listed.
    it('an entry deleted in the loop and a new one taking its place: the new one is not visited', () => {
      const { cache } = makeCache<number>();
      cache.set('a', 1).set('b', 2).set('c', 3);
      const visited: string[] = [];
      for (const k of cache.keys()) {
        visited.push(k);
        if (k === 'a') {
          cache.delete('b');
          cache.set('b2', 9); // takes the slot 'b' left
          cache.delete('c');
          cache.set('c', 10); // the same key again, in a slot of its own or c's old one
        }
      }
      expect(visited).to.deep.equal(['a']);
      expect([...cache.entries()]).to.deep.equal([['a', 1], ['b2', 9], ['c', 10]]);
    });

    it('a clear in the loop ends the walk, also when new entries follow it', () => {
      const { cache } = makeCache<number>({ max: 0 });
      for (let i = 0; i < 100; i++) cache.set(`k${i}`, i);
      const visited: string[] = [];
      for (const k of cache.keys()) {
        visited.push(k);
        if (visited.length > 200) break;
        cache.clear();
        for (let i = 0; i < 50; i++) cache.set(`n${i}`, i);
      }
      expect(visited).to.deep.equal(['k0']);
      expect(cache.size).to.equal(50);
      expect(cache.get('n49')).to.equal(49);
    });
  });

  it('grows past its first slots, reuses freed ones, and is whole again after a clear', () => {
    const { cache } = makeCache<number>({ max: 0 });
    const n = 5000;
    for (let i = 0; i < n; i++) cache.set(`k${i}`, i);
    for (let i = 0; i < n; i += 2) cache.delete(`k${i}`);
    for (let i = 0; i < n / 2; i++) cache.set(`m${i}`, -i); // into the freed slots
    expect(cache.size).to.equal(n);
    for (let i = 1; i < n; i += 2) expect(cache.peek(`k${i}`)).to.equal(i);
    for (let i = 0; i < n / 2; i++) expect(cache.peek(`m${i}`)).to.equal(-i);
    const keys = [...cache.keys()];
    expect(keys.slice(0, 3)).to.deep.equal(['k1', 'k3', 'k5']);
    expect(keys.at(-1)).to.equal(`m${n / 2 - 1}`);
    cache.clear();
    expect(cache.size).to.equal(0);
    expect([...cache.keys()]).to.deep.equal([]);
    for (let i = 0; i < 40; i++) cache.set(`z${i}`, i);
    expect([...cache.values()]).to.deep.equal(Array.from({ length: 40 }, (_, i) => i));
    expect(cache.metadata('z39')?.size).to.equal(4); // 'z39' + the 1-byte encoding of 39
  });
});
