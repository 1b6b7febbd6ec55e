/**
 * Refusals of our own misuse (STYLE.md house rule 3: fail loudly and at once; rule 4: stable
 * codes). A value too large to replicate in 255 fragments (MCCACHE_ERR_VALUE_TOO_LARGE), a
 * non-string or unencodable key, an unencodable value (MCCACHE_ERR_INVALID_ARGUMENT), bad
 * options (MCCACHE_ERR_INVALID_OPTION) and writes after close (MCCACHE_ERR_CLOSED) throw and
 * leave the cache and the replicator untouched. Also: set(k, undefined) is delete(k).
 */
import { expect } from 'chai';
import { Cache } from '../../runtime/cache/cache';
import { HybridClock } from '../../runtime/cache/hlc';
import { encodedMessageSize, maxMessageSize, planFragments } from '../../runtime/codec';
import { ErrorCode } from '../../runtime/errors';
import { errorCode, hlcAt, makeCache, remotePut, WALL0, type Harness } from './cache-fixtures';

/** The cache's observable state and what it published, to compare before and after a refusal. */
function snapshot<V>(h: Harness<V>): unknown {
  return { entries: [...h.cache], metrics: h.cache.metrics(), checksum: h.cache.checksum(), published: h.replicator.published.length };
}

describe('cache refusals', () => {
  describe('VALUE_TOO_LARGE', () => {
    it('a put body (20 + name + key + value bytes) one byte over maxMessageSize is refused', () => {
      // name "test" (4 bytes), key "k" (1): 25 bytes besides the value.
      const h = makeCache<string>({ maxSize: 0 }, { maxMessageSize: 100 });
      h.cache.set('k', 'x'.repeat(75));
      expect(h.replicator.published).to.have.length(1);
      expect(encodedMessageSize(h.replicator.published[0]!)).to.equal(100);
      const before = snapshot(h);
      expect(errorCode(() => h.cache.set('k', 'y'.repeat(76)))).to.equal(ErrorCode.VALUE_TOO_LARGE);
      expect(errorCode(() => h.cache.set('other', 'y'.repeat(72)))).to.equal(ErrorCode.VALUE_TOO_LARGE);
      expect(snapshot(h)).to.deep.equal(before);
      expect(h.cache.get('k')).to.equal('x'.repeat(75));
    });

    it('counts the key and the value in UTF-8 bytes', () => {
      const h = makeCache<string>({ maxSize: 0 }, { maxMessageSize: 100 });
      h.cache.set('é', '日'.repeat(24)); // 20 + 4 + 2 + 72 = 98
      expect(errorCode(() => h.cache.set('é', '日'.repeat(25)))).to.equal(ErrorCode.VALUE_TOO_LARGE); // 101
      expect(h.replicator.published).to.have.length(1);
    });

    it('at packetMtu 1472 a message holds 255 x 1444 bytes: a value that size cannot fit', () => {
      expect(maxMessageSize(1472)).to.equal(255 * 1444);
      const h = makeCache<Uint8Array>({ maxSize: 0 }); // the real limit for MTU 1472
      expect(h.replicator.maxMessageSize).to.equal(255 * 1444);
      const largest = 255 * 1444 - 20 - 4 - 1;
      h.cache.set('k', new Uint8Array(largest));
      const put = h.replicator.published[0]!;
      expect(encodedMessageSize(put)).to.equal(255 * 1444);
      expect(planFragments(encodedMessageSize(put), 1472).numFrags).to.equal(255);
      const before = snapshot(h);
      for (const n of [largest + 1, 255 * 1444, 10 * 1024 * 1024]) {
        expect(errorCode(() => h.cache.set('k', new Uint8Array(n))), `${n} bytes`).to.equal(ErrorCode.VALUE_TOO_LARGE);
        expect(errorCode(() => h.cache.set('fresh', new Uint8Array(n))), `${n} bytes`).to.equal(ErrorCode.VALUE_TOO_LARGE);
      }
      expect(snapshot(h)).to.deep.equal(before);
      expect(h.cache.get('k')!.length).to.equal(largest);
    });

    it('a cache without a replicator has no message limit', () => {
      const c = new Cache<Uint8Array>('local', { maxSize: 0 }, { clock: new HybridClock(), nodeId: 1n });
      c.set('k', new Uint8Array(255 * 1444));
      expect(c.get('k')!.length).to.equal(255 * 1444);
    });
  });

  describe('keys', () => {
    it('a non-string key throws INVALID_ARGUMENT from set and delete and changes nothing', () => {
      const h = makeCache<string>();
      h.cache.set('k', 'v');
      const before = snapshot(h);
      for (const key of [1, undefined, null, {}, Symbol('s'), ['k']]) {
        expect(errorCode(() => h.cache.set(key as unknown as string, 'v')), String(key)).to.equal(ErrorCode.INVALID_ARGUMENT);
        expect(errorCode(() => h.cache.delete(key as unknown as string)), String(key)).to.equal(ErrorCode.INVALID_ARGUMENT);
      }
      expect(snapshot(h)).to.deep.equal(before);
    });

    it('a key with a lone surrogate, or over 65535 UTF-8 bytes, is refused at once', () => {
      const h = makeCache<string>({ maxSize: 0 }, { maxMessageSize: 1 << 24 });
      const before = snapshot(h);
      for (const key of ['\uD800', 'a\uDC00b', 'x'.repeat(65_536), '日'.repeat(21_846)]) {
        expect(errorCode(() => h.cache.set(key, 'v'))).to.equal(ErrorCode.INVALID_ARGUMENT);
        expect(errorCode(() => h.cache.delete(key))).to.equal(ErrorCode.INVALID_ARGUMENT);
      }
      expect(snapshot(h)).to.deep.equal(before);
      h.cache.set('x'.repeat(65_535), 'v'); // the largest key fits
      h.cache.set('😀', 'v'); // a well-formed pair is fine
      expect(h.cache.size).to.equal(2);
    });

    it('get, peek and has of a key the cache cannot hold answer undefined/false', () => {
      const { cache } = makeCache<string>();
      expect(cache.get(42 as unknown as string)).to.equal(undefined);
      expect(cache.peek('\uD800')).to.equal(undefined);
      expect(cache.has(undefined as unknown as string)).to.equal(false);
    });
  });

  describe('values', () => {
    it('an unencodable value throws INVALID_ARGUMENT and changes nothing', () => {
      const h = makeCache<unknown>();
      h.cache.set('k', 'old');
      const before = snapshot(h);
      const cyclic: Record<string, unknown> = {};
      cyclic['self'] = cyclic;
      class Point { x = 1; }
      for (const value of [() => 1, Symbol('s'), new Point(), cyclic, 'lone \uD800', 2n ** 64n, new Date(Number.NaN), new Int16Array(2)]) {
        expect(errorCode(() => h.cache.set('k', value)), String(typeof value)).to.equal(ErrorCode.INVALID_ARGUMENT);
      }
      expect(snapshot(h)).to.deep.equal(before);
      expect(h.cache.get('k')).to.equal('old');
    });

    it('set(k, undefined) deletes k, here and on every member', () => {
      const h = makeCache<string | undefined>();
      h.cache.set('k', 'v');
      expect(h.cache.set('k', undefined)).to.equal(h.cache);
      expect(h.cache.has('k')).to.equal(false);
      expect(h.replicator.published.map((m) => m.op)).to.deep.equal(['put', 'delete']);
      expect(h.cache.metrics()).to.include({ deletes: 1, sets: 1 });
    });

    it("a peer's undecodable value is ignored without throwing", () => {
      const { cache } = makeCache<unknown>();
      const bad = { ...remotePut('k', 'x', hlcAt(WALL0 - 1)), codec: 'msgpack' as const, value: new Uint8Array([0xc1]) };
      expect(() => cache.applyRemote(bad, 2n)).to.not.throw();
      expect(cache.has('k')).to.equal(false);
      expect(cache.metrics().remoteIgnored).to.equal(1);
    });
  });

  describe('options', () => {
    it('a bad option throws INVALID_OPTION from the constructor', () => {
      const bad: Record<string, unknown>[] = [
        { max: -1 }, { maxSize: 1.5 }, { ttl: -1 }, { mode: 2 }, { callbackWindow: -1 }, { tombstoneTtl: Number.NaN },
        { sizeCalculation: 'len' }, { callback: 1 }, { now: Date.now() },
      ];
      for (const o of bad) expect(errorCode(() => makeCache(o)), JSON.stringify(o)).to.equal(ErrorCode.INVALID_OPTION);
    });

    it('a name over 255 UTF-8 bytes, or not a string, throws INVALID_ARGUMENT', () => {
      expect(errorCode(() => makeCache({}, { name: 'é'.repeat(128) }))).to.equal(ErrorCode.INVALID_ARGUMENT);
      expect(errorCode(() => makeCache({}, { name: 7 as unknown as string }))).to.equal(ErrorCode.INVALID_ARGUMENT);
      expect(makeCache({}, { name: 'é'.repeat(127) + 'x' }).cache.name).to.have.length(128);
    });
  });

  describe('after close', () => {
    it('writes throw CLOSED, reads still answer, remote messages are ignored', () => {
      const h = makeCache<string>();
      h.cache.set('k', 'v');
      h.cache.close();
      const before = snapshot(h);
      expect(errorCode(() => h.cache.set('k', 'w'))).to.equal(ErrorCode.CLOSED);
      expect(errorCode(() => h.cache.delete('k'))).to.equal(ErrorCode.CLOSED);
      expect(errorCode(() => h.cache.clear())).to.equal(ErrorCode.CLOSED);
      h.cache.applyRemote(remotePut('k', 'remote', hlcAt(WALL0 + 1)), 2n);
      expect(snapshot(h)).to.deep.equal(before);
      expect(h.cache.get('k')).to.equal('v');
    });
  });
});
