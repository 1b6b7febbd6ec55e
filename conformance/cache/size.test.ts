/**
 * `maxSize` and `sizeCalculation` (runtime/cache/cache.ts): least recently used entries go
 * until the total fits, counted as reason 'size', announced, never published; the default size
 * is the encoded value's bytes plus the key's UTF-8 bytes; one entry larger than maxSize is
 * refused with MCCACHE_ERR_VALUE_TOO_LARGE and changes nothing. A peer's value too large for
 * this member's maxSize never makes applyRemote throw.
 */
import { expect } from 'chai';
import { ErrorCode } from '../../runtime/errors';
import { errorCode, hlcAt, makeCache, remotePut, WALL0 } from './cache-fixtures';

const len = (v: string): number => v.length;

describe('cache maxSize', () => {
  it('evicts least recently used entries until the total fits', () => {
    const { cache, replicator } = makeCache<string>({ max: 0, maxSize: 10, sizeCalculation: len });
    const evicted: unknown[] = [];
    cache.on('evict', (info) => evicted.push(info));
    cache.set('a', 'aaa').set('b', 'bbb').set('c', 'ccc');
    cache.get('a');
    expect(cache.metrics().calculatedSize).to.equal(9);
    cache.set('d', 'dddddd'); // 15 > 10: b (3) then c (3) go
    expect([...cache.keys()]).to.deep.equal(['a', 'd']);
    expect(cache.metrics()).to.include({ calculatedSize: 9, size: 2 });
    expect(cache.metrics().evictions).to.deep.equal({ ttl: 0, lru: 0, size: 2 });
    expect(evicted).to.deep.equal([
      { cache: 'test', key: 'b', reason: 'size' },
      { cache: 'test', key: 'c', reason: 'size' },
    ]);
    expect(replicator.published.map((m) => m.op)).to.deep.equal(['put', 'put', 'put', 'put']);
  });

  it('an update changes the total by the difference', () => {
    const { cache } = makeCache<string>({ maxSize: 100, sizeCalculation: len });
    cache.set('k', 'x'.repeat(40));
    cache.set('k', 'x'.repeat(10));
    expect(cache.metrics().calculatedSize).to.equal(10);
    cache.delete('k');
    expect(cache.metrics().calculatedSize).to.equal(0);
  });

  it('by default an entry weighs its encoded value bytes plus its key UTF-8 bytes', () => {
    const { cache } = makeCache<unknown>();
    cache.set('é', '日'); // 2 + 3
    cache.set('k', new Uint8Array(7)); // 1 + 7
    expect(cache.metadata('é')!.size).to.equal(5);
    expect(cache.metadata('k')!.size).to.equal(8);
    expect(cache.metrics().calculatedSize).to.equal(13);
  });

  it('an entry larger than maxSize is refused and changes nothing', () => {
    for (const sizeCalculation of [undefined, len]) {
      const { cache, replicator } = makeCache<string>({ maxSize: 10, ...(sizeCalculation && { sizeCalculation }) });
      cache.set('a', 'x').set('b', 'y');
      const before = { keys: [...cache.keys()], metrics: cache.metrics() };
      expect(errorCode(() => cache.set('a', 'z'.repeat(11)))).to.equal(ErrorCode.VALUE_TOO_LARGE);
      expect([...cache.keys()]).to.deep.equal(before.keys);
      expect(cache.get('a')).to.equal('x');
      expect(cache.metrics().calculatedSize).to.equal(before.metrics.calculatedSize);
      expect(cache.metrics().evictions.size).to.equal(0);
      expect(replicator.published).to.have.length(2);
    }
  });

  it('an entry of exactly maxSize fits, alone', () => {
    const { cache } = makeCache<string>({ maxSize: 10, sizeCalculation: len });
    cache.set('a', 'x');
    cache.set('b', 'y'.repeat(10));
    expect([...cache.keys()]).to.deep.equal(['b']);
  });

  it('a sizeCalculation result that is not a non-negative integer throws INVALID_ARGUMENT and changes nothing', () => {
    for (const bad of [-1, 1.5, Number.NaN, '3']) {
      const { cache, replicator } = makeCache<string>({ sizeCalculation: () => bad as number });
      expect(errorCode(() => cache.set('k', 'v')), String(bad)).to.equal(ErrorCode.INVALID_ARGUMENT);
      expect(cache.size).to.equal(0);
      expect(replicator.published).to.have.length(0);
    }
  });

  it('refuses bad maxSize and sizeCalculation options', () => {
    expect(errorCode(() => makeCache({ maxSize: -5 }))).to.equal(ErrorCode.INVALID_OPTION);
    expect(errorCode(() => makeCache({ sizeCalculation: 3 as unknown as () => number }))).to.equal(ErrorCode.INVALID_OPTION);
  });

  it('a remote value too large for maxSize is ignored, and the outdated local value goes too', () => {
    const { cache, replicator } = makeCache<string>({ maxSize: 10, sizeCalculation: len });
    cache.set('k', 'small');
    cache.set('other', 'o');
    expect(() => cache.applyRemote(remotePut('k', 'L'.repeat(11), hlcAt(WALL0 + 10)), 2n)).to.not.throw();
    expect(cache.has('k')).to.equal(false);
    expect(cache.get('other')).to.equal('o');
    expect(cache.metrics()).to.include({ remoteIgnored: 1, remoteApplies: 0 });
    expect(cache.metrics().evictions.size).to.equal(1);
    expect(replicator.published).to.have.length(2);
  });

  it("a sizeCalculation that throws on a peer's value does not make applyRemote throw", () => {
    const { cache } = makeCache<string>({
      sizeCalculation: (v) => {
        if (v === 'boom') throw new Error('user bug');
        return 1;
      },
    });
    expect(() => cache.applyRemote(remotePut('k', 'boom', hlcAt(WALL0 - 1)), 2n)).to.not.throw();
    cache.applyRemote(remotePut('k2', 'fine', hlcAt(WALL0 - 1)), 2n);
    expect([...cache.keys()]).to.deep.equal(['k2']);
    expect(cache.metrics().remoteIgnored).to.equal(1);
  });
});
