/**
 * McCache's change callback and the remote events (runtime/cache/cache.ts, DESIGN.md §5): the
 * callback fires when a remote update changes an entry that was read here (`get`) within
 * `callbackWindow` ms, and not otherwise; a throwing callback does not break applyRemote.
 */
import { expect } from 'chai';
import type { ChangeInfo } from '../../runtime/cache/cache';
import { hlcAt, makeCache, remoteClear, remoteDelete, remotePut, WALL0 } from './cache-fixtures';

function withCallback(window = 1000) {
  const calls: ChangeInfo<string>[] = [];
  const h = makeCache<string>({ callbackWindow: window, callback: (c) => calls.push(c) });
  return { ...h, calls };
}

describe('cache change callback', () => {
  it('fires for a remote put to a key read within the window', () => {
    const { cache, time, calls } = withCallback(1000);
    cache.set('k', 'mine');
    cache.get('k');
    const readAt = time.mono;
    time.advance(1000);
    const hlc = hlcAt(WALL0 + 1000, 1);
    cache.applyRemote(remotePut('k', 'theirs', hlc), 2n);
    expect(calls).to.deep.equal([{ cache: 'test', key: 'k', op: 'set', value: 'theirs', version: { hlc, node: 2n }, lastLookupAt: readAt }]);
    expect(cache.metrics().callbacks).to.equal(1);
  });

  it('fires for a remote delete of a key read within the window', () => {
    const { cache, calls } = withCallback();
    cache.set('k', 'mine');
    cache.get('k');
    cache.applyRemote(remoteDelete('k', hlcAt(WALL0 + 1)), 2n);
    expect(calls.map((c) => [c.op, c.key, c.value])).to.deep.equal([['delete', 'k', undefined]]);
  });

  it('does not fire when the read is older than the window', () => {
    const { cache, time, calls } = withCallback(1000);
    cache.set('k', 'mine');
    cache.get('k');
    time.advance(1001);
    cache.applyRemote(remotePut('k', 'theirs', hlcAt(WALL0 + 1001)), 2n);
    expect(calls).to.have.length(0);
    expect(cache.get('k')).to.equal('theirs');
  });

  it('does not fire for a key never read, or only peeked', () => {
    const { cache, calls } = withCallback();
    cache.set('a', '1').set('b', '2');
    cache.peek('b');
    cache.has('b');
    cache.applyRemote(remotePut('a', 'x', hlcAt(WALL0 + 1)), 2n);
    cache.applyRemote(remotePut('b', 'y', hlcAt(WALL0 + 1)), 2n);
    cache.applyRemote(remotePut('new', 'z', hlcAt(WALL0 + 1)), 2n);
    expect(calls).to.have.length(0);
  });

  it('does not fire for local writes, nor for remote writes that lose', () => {
    const { cache, calls } = withCallback();
    cache.set('k', 'v');
    cache.get('k');
    cache.set('k', 'w');
    cache.delete('k');
    cache.set('j', 'v');
    cache.get('j');
    cache.applyRemote(remotePut('j', 'old', hlcAt(WALL0 - 5000)), 2n);
    expect(calls).to.have.length(0);
    expect(cache.get('j')).to.equal('v');
  });

  it('never fires with callbackWindow 0', () => {
    const { cache, calls } = withCallback(0);
    cache.set('k', 'v');
    cache.get('k');
    cache.applyRemote(remotePut('k', 'w', hlcAt(WALL0 + 1)), 2n);
    expect(calls).to.have.length(0);
  });

  it('a throwing callback does not break applyRemote', () => {
    const { cache } = makeCache<string>({ callbackWindow: 1000, callback: () => { throw new Error('user bug'); } });
    cache.set('a', '1').set('b', '2');
    cache.get('a');
    cache.get('b');
    expect(() => cache.applyRemote(remotePut('a', 'x', hlcAt(WALL0 + 1)), 2n)).to.not.throw();
    expect(() => cache.applyRemote(remoteDelete('b', hlcAt(WALL0 + 2)), 2n)).to.not.throw();
    expect(cache.get('a')).to.equal('x');
    expect(cache.has('b')).to.equal(false);
    expect(cache.metrics()).to.include({ remoteApplies: 2, callbacks: 2 });
    cache.applyRemote(remotePut('c', 'after', hlcAt(WALL0 + 3)), 2n);
    expect(cache.get('c')).to.equal('after');
  });

  it('emits remote-set, remote-delete and remote-clear events for applied remote changes only', () => {
    const { cache } = makeCache<string>();
    const events: [string, unknown][] = [];
    for (const name of ['remote-set', 'remote-delete', 'remote-clear'] as const) cache.on(name, (info) => events.push([name, info]));
    cache.set('local', 'v'); // no event
    cache.applyRemote(remotePut('k', 'v', hlcAt(WALL0 + 1)), 2n);
    cache.applyRemote(remotePut('k', 'old', hlcAt(WALL0 - 1)), 2n); // loses: no event
    cache.applyRemote(remoteDelete('k', hlcAt(WALL0 + 2)), 3n);
    cache.applyRemote(remoteClear(hlcAt(WALL0 + 3)), 4n);
    expect(events).to.deep.equal([
      ['remote-set', { cache: 'test', key: 'k', version: { hlc: hlcAt(WALL0 + 1), node: 2n } }],
      ['remote-delete', { cache: 'test', key: 'k', version: { hlc: hlcAt(WALL0 + 2), node: 3n } }],
      ['remote-clear', { cache: 'test', version: { hlc: hlcAt(WALL0 + 3), node: 4n } }],
    ]);
    const listener = (): void => { throw new Error('removed listeners are not called'); };
    cache.on('remote-set', listener).off('remote-set', listener);
    cache.applyRemote(remotePut('z', 'v', hlcAt(WALL0 + 4)), 2n);
  });
});
