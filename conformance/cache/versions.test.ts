/**
 * Versions and applyRemote (runtime/cache/cache.ts, DESIGN.md §5): every write is versioned
 * (hlc, node id) and the highest version wins on every member. Covers: newer wins, a duplicate
 * is a no-op, older is a counted conflict; tombstones block older puts; a clear drops what is
 * older and keeps what is newer; mode 0 applies remote writes only to held keys but always
 * applies deletes and clears; a local write after a remote one outranks it even when the local
 * wall clock is behind (the HLC's job); a remote stamp too far in the future is ignored; and a
 * property: members that receive the same writes in any order, duplicates included, hold the
 * same entries and the same checksum.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import type { Message } from '../../runtime/codec/packet';
import { params } from '../wire/wire-arbitraries';
import { encodeValue } from '../../runtime/cache/value-codec';
import { FakeTime, hlcAt, makeCache, remoteClear, remoteDelete, remotePut, WALL0 } from './cache-fixtures';

const remoteValue = (v: unknown) => {
  const { codec, bytes } = encodeValue(v);
  return { codec, value: bytes };
};

describe('cache versions', () => {
  it('a newer remote put replaces the value; an older one is a counted conflict', () => {
    const { cache } = makeCache<string>();
    cache.applyRemote(remotePut('k', 'v5', hlcAt(WALL0 - 100, 5)), 2n);
    cache.applyRemote(remotePut('k', 'v7', hlcAt(WALL0 - 100, 7)), 3n);
    expect(cache.get('k')).to.equal('v7');
    cache.applyRemote(remotePut('k', 'v6', hlcAt(WALL0 - 100, 6)), 9n);
    expect(cache.get('k')).to.equal('v7');
    expect(cache.metadata('k')!.version).to.deep.equal({ hlc: hlcAt(WALL0 - 100, 7), node: 3n });
    expect(cache.metrics()).to.include({ remoteApplies: 2, conflicts: 1 });
  });

  it('equal hlcs are ordered by node id', () => {
    const hlc = hlcAt(WALL0 - 1);
    const a = makeCache<string>().cache;
    const b = makeCache<string>().cache;
    a.applyRemote(remotePut('k', 'from 2', hlc), 2n);
    a.applyRemote(remotePut('k', 'from 3', hlc), 3n);
    b.applyRemote(remotePut('k', 'from 3', hlc), 3n);
    b.applyRemote(remotePut('k', 'from 2', hlc), 2n);
    expect(a.get('k')).to.equal('from 3');
    expect(b.get('k')).to.equal('from 3');
    expect(a.checksum()).to.equal(b.checksum());
  });

  it('the same version from the same node again is a no-op, not a conflict', () => {
    const { cache } = makeCache<string>();
    const events: unknown[] = [];
    cache.on('remote-set', (i) => events.push(i)).on('remote-delete', (i) => events.push(i)).on('remote-clear', (i) => events.push(i));
    const put = remotePut('k', 'v', hlcAt(WALL0 - 10));
    const del = remoteDelete('gone', hlcAt(WALL0 - 9));
    const clr = remoteClear(hlcAt(WALL0 - 20));
    for (const m of [clr, put, del]) cache.applyRemote(m, 2n);
    const before = cache.metrics();
    for (const m of [clr, put, del]) cache.applyRemote(m, 2n);
    expect(cache.metrics()).to.deep.equal(before);
    expect(events).to.have.length(3);
    expect(cache.get('k')).to.equal('v');
  });

  it("a delete's tombstone blocks an older put and yields to a newer one", () => {
    const { cache } = makeCache<string>();
    cache.applyRemote(remotePut('k', 'v1', hlcAt(WALL0 - 30)), 2n);
    cache.applyRemote(remoteDelete('k', hlcAt(WALL0 - 20)), 3n);
    expect(cache.has('k')).to.equal(false);
    expect(cache.versionOf('k')).to.deep.equal({ hlc: hlcAt(WALL0 - 20), node: 3n });
    cache.applyRemote(remotePut('k', 'late and older', hlcAt(WALL0 - 25)), 4n);
    expect(cache.has('k')).to.equal(false);
    expect(cache.metrics().conflicts).to.equal(1);
    cache.applyRemote(remotePut('k', 'newer', hlcAt(WALL0 - 15)), 4n);
    expect(cache.get('k')).to.equal('newer');
    expect(cache.metrics().tombstones).to.equal(0);
  });

  it('a delete that arrives before the put it follows still wins', () => {
    const { cache } = makeCache<string>();
    cache.applyRemote(remoteDelete('k', hlcAt(WALL0 - 5)), 2n); // key never held here
    cache.applyRemote(remotePut('k', 'v', hlcAt(WALL0 - 6)), 2n);
    expect(cache.has('k')).to.equal(false);
  });

  it('an older remote delete does not remove a newer value', () => {
    const { cache } = makeCache<string>();
    cache.set('k', 'mine');
    cache.applyRemote(remoteDelete('k', hlcAt(WALL0 - 1000)), 2n);
    expect(cache.get('k')).to.equal('mine');
    expect(cache.metrics().conflicts).to.equal(1);
  });

  it('a local delete leaves a tombstone that blocks older remote puts', () => {
    const { cache, replicator } = makeCache<string>();
    cache.delete('k');
    const del = replicator.published[0]!;
    expect(del.op).to.equal('delete');
    cache.applyRemote(remotePut('k', 'older', (del as { hlc: bigint }).hlc - 1n), 2n);
    expect(cache.has('k')).to.equal(false);
  });

  it('tombstones expire after tombstoneTtl', () => {
    const { cache, time } = makeCache<string>({ tombstoneTtl: 1000 });
    cache.applyRemote(remoteDelete('k', hlcAt(WALL0 - 5)), 2n);
    expect(cache.metrics().tombstones).to.equal(1);
    time.advance(999);
    expect(cache.metrics().tombstones).to.equal(1);
    time.advance(1);
    expect(cache.metrics().tombstones).to.equal(0);
    expect(cache.versionOf('k')).to.equal(undefined);
  });

  it('tombstones are purged as deletes go on, even if nothing reads size', () => {
    const { cache, time } = makeCache<string>({ tombstoneTtl: 10 });
    for (let i = 0; i < 50; i++) {
      cache.delete(`k${i}`);
      time.advance(1);
    }
    // Only the last 10 are younger than tombstoneTtl; versionOf does not purge.
    expect(cache.versionOf('k30')).to.equal(undefined);
    expect(cache.versionOf('k39')).to.equal(undefined);
    expect(cache.versionOf('k40')).to.not.equal(undefined);
  });

  it('a tombstone renewed by a newer delete lives tombstoneTtl from the renewal, and others still expire on time', () => {
    const { cache, time } = makeCache<string>({ tombstoneTtl: 100 });
    cache.delete('a'); // until 1100
    time.advance(10);
    cache.delete('b'); // until 1110
    time.advance(10);
    cache.delete('a'); // renewed: until 1120
    time.advance(90);
    expect(cache.metrics().tombstones).to.equal(1);
    expect(cache.versionOf('b')).to.equal(undefined);
    expect(cache.versionOf('a')).to.not.equal(undefined);
    time.advance(10);
    expect(cache.metrics().tombstones).to.equal(0);
  });

  it('a clear drops older entries and keeps newer ones, however late it arrives', () => {
    const { cache } = makeCache<string>();
    cache.applyRemote(remotePut('old', 'o', hlcAt(WALL0 - 30)), 2n);
    cache.applyRemote(remotePut('new', 'n', hlcAt(WALL0 - 10)), 3n);
    cache.applyRemote(remoteDelete('oldTomb', hlcAt(WALL0 - 25)), 3n);
    cache.applyRemote(remoteClear(hlcAt(WALL0 - 20)), 4n);
    expect([...cache.keys()]).to.deep.equal(['new']);
    expect(cache.metrics().tombstones).to.equal(0);
    // Writes older than the clear stay out; newer ones go in.
    cache.applyRemote(remotePut('old2', 'x', hlcAt(WALL0 - 21)), 2n);
    cache.applyRemote(remoteDelete('new', hlcAt(WALL0 - 22)), 2n);
    cache.applyRemote(remotePut('newer', 'y', hlcAt(WALL0 - 19)), 2n);
    expect([...cache.keys()]).to.deep.equal(['new', 'newer']);
    expect(cache.metrics().conflicts).to.equal(2);
    // An older clear changes nothing.
    cache.applyRemote(remoteClear(hlcAt(WALL0 - 50)), 5n);
    expect(cache.size).to.equal(2);
    expect(cache.metrics().conflicts).to.equal(3);
  });

  it('a local clear empties the cache and outranks everything it has seen', () => {
    const { cache, replicator } = makeCache<string>();
    cache.applyRemote(remotePut('k', 'v', hlcAt(WALL0 + 2000)), 2n); // a peer 2 s ahead
    cache.clear();
    expect(cache.size).to.equal(0);
    const clr = replicator.published.at(-1)!;
    expect(clr.op).to.equal('clear');
    expect((clr as { hlc: bigint }).hlc > hlcAt(WALL0 + 2000)).to.equal(true);
  });

  describe('mode 0 (update if present)', () => {
    it('ignores a remote put to a key it does not hold', () => {
      const { cache } = makeCache<string>({ mode: 0 });
      cache.applyRemote(remotePut('k', 'v', hlcAt(WALL0 - 1)), 2n);
      expect(cache.has('k')).to.equal(false);
      expect(cache.metrics()).to.include({ remoteIgnored: 1, remoteApplies: 0 });
    });

    it('applies a remote put to a key it holds', () => {
      const { cache } = makeCache<string>({ mode: 0 });
      cache.set('k', 'mine');
      cache.applyRemote(remotePut('k', 'theirs', hlcAt(WALL0 + 5)), 2n);
      expect(cache.get('k')).to.equal('theirs');
    });

    it('ignores a remote put to a key whose entry expired', () => {
      const { cache, time } = makeCache<string>({ mode: 0 });
      cache.set('k', 'mine', { ttl: 5 });
      time.advance(5);
      cache.applyRemote(remotePut('k', 'theirs', hlcAt(WALL0 + 50)), 2n);
      expect(cache.has('k')).to.equal(false);
    });

    it('applies deletes and clears whether or not it holds the keys', () => {
      const { cache } = makeCache<string>({ mode: 0 });
      cache.set('a', '1').set('b', '2');
      cache.applyRemote(remoteDelete('a', hlcAt(WALL0 + 1)), 2n);
      cache.applyRemote(remoteDelete('absent', hlcAt(WALL0 + 1)), 2n);
      expect([...cache.keys()]).to.deep.equal(['b']);
      expect(cache.metrics().tombstones).to.equal(2);
      cache.applyRemote(remoteClear(hlcAt(WALL0 + 2)), 2n);
      expect(cache.size).to.equal(0);
      expect(cache.metrics().remoteApplies).to.equal(3);
    });
  });

  describe('hybrid logical clock', () => {
    it('a local write after a remote one outranks it although the local wall clock is 2 s behind', () => {
      const time = new FakeTime();
      const here = makeCache<string>({}, { time, nodeId: 1n }); // wall clock WALL0
      const peer = makeCache<string>({}, { nodeId: 2n });
      peer.time.wallMs = WALL0 + 2000;
      peer.cache.set('k', 'peer');
      const put = peer.replicator.published[0]!;
      here.cache.applyRemote(put, 2n);
      expect(here.cache.get('k')).to.equal('peer');
      time.advance(1); // 1 ms later, still 2 s behind the peer
      here.cache.set('k', 'here');
      const mine = here.replicator.published[0] as Extract<Message, { op: 'put' }>;
      expect(mine.hlc > (put as { hlc: bigint }).hlc).to.equal(true);
      // The peer agrees: our write replaces its own.
      peer.cache.applyRemote(mine, 1n);
      expect(peer.cache.get('k')).to.equal('here');
      expect(peer.cache.metrics().conflicts).to.equal(0);
    });

    it('a remote write stamped beyond the clock limit (60 s ahead) is ignored, and not adopted', () => {
      const { cache, clock, replicator } = makeCache<string>();
      cache.applyRemote(remotePut('k', 'future', hlcAt(WALL0 + 60_001)), 2n);
      cache.applyRemote(remoteDelete('j', hlcAt(WALL0 + 3_600_000)), 2n);
      cache.applyRemote(remoteClear(hlcAt(WALL0 + 3_600_000)), 2n);
      expect(cache.has('k')).to.equal(false);
      expect(cache.metrics()).to.include({ remoteIgnored: 3, remoteApplies: 0, tombstones: 0 });
      expect(clock.last < hlcAt(WALL0 + 1)).to.equal(true);
      cache.set('k', 'now');
      expect(cache.get('k')).to.equal('now');
      expect((replicator.published[0] as { hlc: bigint }).hlc).to.equal(hlcAt(WALL0));
      // Within the limit it is applied and adopted.
      cache.applyRemote(remotePut('k', 'soon', hlcAt(WALL0 + 60_000, 3)), 2n);
      expect(cache.get('k')).to.equal('soon');
      expect(clock.last).to.equal(hlcAt(WALL0 + 60_000, 3));
    });
  });

  describe('anti-entropy hooks (SyncTarget)', () => {
    it('syncRecords lists live entries with their remaining ttl, then live tombstones', () => {
      const { cache, time } = makeCache<string>({ tombstoneTtl: 100 });
      cache.set('forever', 'f');
      cache.set('short', 's', { ttl: 10 });
      cache.set('gone', 'g', { ttl: 5 });
      cache.delete('dead');
      time.advance(5);
      const recs = [...cache.syncRecords()].map((r) => [r.key, r.kind, r.ttl, r.codec, r.value.length, r.origin]);
      expect(recs).to.deep.equal([
        ['forever', 'value', 0, 'utf8', 1, 1n],
        ['short', 'value', 5, 'utf8', 1, 1n],
        ['dead', 'tombstone', 0, 'none', 0, 1n],
      ]);
      time.advance(100);
      expect([...cache.syncRecords()].map((r) => r.key)).to.deep.equal(['forever']);
    });

    it('applySync applies by version and says whether anything changed', () => {
      const { cache, time } = makeCache<string>();
      const put = (v: string, hlc: bigint, ttl = 0) => ({ key: 'k', hlc, originId: 2n, kind: 'value' as const, ttl, ...remoteValue(v) });
      expect(cache.applySync(put('v1', hlcAt(WALL0 - 10)))).to.equal(true);
      expect(cache.applySync(put('v1', hlcAt(WALL0 - 10)))).to.equal(false); // the same version
      expect(cache.applySync(put('v0', hlcAt(WALL0 - 20)))).to.equal(false); // older
      expect(cache.get('k')).to.equal('v1');
      expect(cache.metrics().conflicts).to.equal(1);
      expect(cache.applySync({ key: 'k', hlc: hlcAt(WALL0 - 5), originId: 3n, kind: 'tombstone', ttl: 0, codec: 'none', value: new Uint8Array(0) })).to.equal(true);
      expect(cache.has('k')).to.equal(false);
      expect(cache.versionOf('k')).to.deep.equal({ hlc: hlcAt(WALL0 - 5), node: 3n });
      // ttl is the remaining life; 0 never expires, even in a cache with a default ttl.
      expect(cache.applySync(put('v2', hlcAt(WALL0 - 1), 7))).to.equal(true);
      expect(cache.metadata('k')!.expiresAt).to.equal(time.mono + 7);
    });

    it('a sync entry with ttl 0 never expires, whatever the default', () => {
      const { cache, time } = makeCache<string>({ ttl: 10 });
      cache.applySync({ key: 'k', hlc: hlcAt(WALL0 - 1), originId: 2n, kind: 'value', ttl: 0, ...remoteValue('v') });
      time.advance(1e6);
      expect(cache.get('k')).to.equal('v');
    });

    it('applyClear and clearVersion', () => {
      const { cache } = makeCache<string>();
      expect(cache.clearVersion()).to.deep.equal({ hlc: 0n, node: 0n });
      cache.applyRemote(remotePut('old', 'o', hlcAt(WALL0 - 30)), 2n);
      cache.applyRemote(remotePut('new', 'n', hlcAt(WALL0 - 10)), 2n);
      cache.applyClear({ hlc: hlcAt(WALL0 - 20), node: 5n });
      expect([...cache.keys()]).to.deep.equal(['new']);
      expect(cache.clearVersion()).to.deep.equal({ hlc: hlcAt(WALL0 - 20), node: 5n });
      cache.applyClear({ hlc: hlcAt(WALL0 - 40), node: 5n });
      expect(cache.clearVersion()).to.deep.equal({ hlc: hlcAt(WALL0 - 20), node: 5n });
      expect(cache.mode).to.equal(1);
      expect(makeCache({ mode: 0 }).cache.mode).to.equal(0);
    });

    it("a member that applies another's records holds the same entries", () => {
      const a = makeCache<string>({ max: 0 }, { nodeId: 1n });
      a.cache.set('x', '1').set('y', '2').set('z', '3');
      a.cache.delete('y');
      const b = makeCache<string>({ max: 0 }, { nodeId: 2n });
      for (const r of a.cache.syncRecords()) {
        b.cache.applySync({ key: r.key, hlc: r.hlc, originId: r.origin, kind: r.kind, ttl: r.ttl, codec: r.codec, value: r.value });
      }
      expect(b.cache.checksum()).to.equal(a.cache.checksum());
      expect(b.cache.versionOf('y')).to.deep.equal(a.cache.versionOf('y'));
    });
  });

  describe('convergence', () => {
    type Op = { kind: 'put' | 'delete' | 'clear'; key: string; value: string; hlc: bigint; node: bigint };
    const KEYS = ['a', 'b', 'c', 'd'];
    const op = fc.record({
      kind: fc.constantFrom<Op['kind']>('put', 'put', 'put', 'delete', 'clear'),
      key: fc.constantFrom(...KEYS),
      value: fc.string({ maxLength: 3 }),
      hlc: fc.integer({ min: 0, max: 40 }).map((t) => hlcAt(WALL0 - 100) + BigInt(t)),
      node: fc.constantFrom(2n, 3n, 4n),
    });
    // A node never stamps two writes alike: one op per (hlc, node).
    const ops = fc.uniqueArray(op, { maxLength: 25, selector: (o) => `${o.hlc}/${o.node}` });
    const toMessage = (o: Op): Message =>
      o.kind === 'put' ? remotePut(o.key, o.value, o.hlc) : o.kind === 'delete' ? remoteDelete(o.key, o.hlc) : remoteClear(o.hlc);
    const newer = (a: Op, b: Op | undefined): boolean => b === undefined || a.hlc > b.hlc || (a.hlc === b.hlc && a.node > b.node);

    /** What every member must end with: per key the newest write, unless a newer clear. */
    function expected(all: Op[]): Map<string, string> {
      let clear: Op | undefined;
      const last = new Map<string, Op>();
      for (const o of all) {
        if (o.kind === 'clear') {
          if (newer(o, clear)) clear = o;
        } else if (newer(o, last.get(o.key))) {
          last.set(o.key, o);
        }
      }
      const out = new Map<string, string>();
      for (const [k, o] of last) if (o.kind === 'put' && newer(o, clear)) out.set(k, o.value);
      return out;
    }

    it('members that receive the same writes in any order, with duplicates, hold the same entries', () => {
      const scenario = ops.chain((all) => fc.tuple(
        fc.constant(all),
        fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length }),
        fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length }),
        fc.subarray(all), // delivered twice to the second member
      ));
      fc.assert(
        fc.property(scenario, ([all, order1, order2, dups]) => {
          const a = makeCache<string>({ max: 0 }).cache;
          const b = makeCache<string>({ max: 0 }).cache;
          for (const o of order1) a.applyRemote(toMessage(o), o.node);
          for (const o of [...order2, ...dups]) b.applyRemote(toMessage(o), o.node);
          const want = [...expected(all)].sort();
          expect([...a].sort()).to.deep.equal(want);
          expect([...b].sort()).to.deep.equal(want);
          expect(a.checksum()).to.equal(b.checksum());
        }),
        params(300),
      );
    });
  });

  it('currentPut: the put that replicates a key as it stands, only for a live value written here', () => {
    const { cache, time, replicator } = makeCache<unknown>();
    cache.set('s', 'text');
    cache.set('o', { a: [1, 2] });
    cache.set('t', 7, { ttl: 1000 });
    const published = replicator.published.length;
    expect(cache.currentPut('s')).to.deep.include({ op: 'put', kind: 'value', key: 's', ttl: 0, codec: 'utf8', value: 'text' });
    const o = cache.currentPut('o')!;
    expect(o.codec).to.equal('msgpack');
    expect(o.value).to.deep.equal(encodeValue({ a: [1, 2] }).bytes);
    expect(o.hlc).to.equal(cache.metadata('o')!.version.hlc);
    time.advance(400);
    expect(cache.currentPut('t')).to.deep.include({ ttl: 600, codec: 'msgpack', value: 7 });
    time.advance(600);
    expect(cache.currentPut('t'), 'expired').to.equal(undefined);
    cache.delete('s');
    expect(cache.currentPut('s'), 'deleted').to.equal(undefined);
    cache.applyRemote(remotePut('o', 'newer', hlcAt(WALL0 + 60_000)), 2n);
    expect(cache.currentPut('o'), "a peer's newer write").to.equal(undefined);
    expect(cache.currentPut('never'), 'never held').to.equal(undefined);
    // It only reads: nothing published, the cache unchanged.
    expect(replicator.published.length).to.equal(published + 1); // the delete above
  });
});
