/**
 * Encryption seen from the cache (issue "Encryption with MCCACHE_CRYPTO_KEY"): whole
 * McCacheNodes on the simulated network, two sharing a key, one with another key, one without.
 * Writes replicate between the two with the key and nowhere else; replayed, forged, tampered,
 * truncated, wrong-key and plaintext datagrams never change a cache; and a key lowers the
 * largest value a cache accepts to what 255 sealed fragments carry.
 */
import { expect } from 'chai';
import { HEADER_SIZE } from '../../runtime/codec/packet';
import { CryptoDrop } from '../../runtime/core/reliable-core';
import { ErrorCode, McCacheError } from '../../runtime/errors';
import { SIM_CORE_OPTIONS } from '../core/sim-harness';
import { entriesOf } from '../cluster/sim-cluster';
import { KEY, OTHER_KEY, SecureCluster } from './secure-sim';
import { codeOf } from '../error-code';


describe('security/sealed-cache: caches with a key', function () {
  this.timeout(0);

  it('replicate only between nodes with the key; nothing hostile ever changes a cache', async () => {
    // 0, 1: KEY; 2: OTHER_KEY; 3: no key.
    const cl = new SecureCluster(21, [{ key: KEY }, { key: KEY }, { key: OTHER_KEY }, undefined]);
    await cl.start([[0, 1], [2], [3]]);
    const caches = [0, 1, 2, 3].map((i) => cl.cache(i));
    const [a, b, c, d] = caches as [typeof caches[0], typeof caches[0], typeof caches[0], typeof caches[0]];
    a.set('k1', 'v1');
    a.set('big', new Uint8Array(3000).fill(7)); // 7 sealed fragments at MTU 548
    a.set('gone', 'x');
    a.delete('gone');
    a.set('k1', 'v2');
    c.set('mine', 'wrong key');
    d.set('mine', 'no key');
    cl.settle();
    cl.run(200);
    expect(entriesOf(b)).to.deep.equal(entriesOf(a));
    expect(entriesOf(b).map((e) => e.key)).to.deep.equal(['big', 'k1']);
    expect(b.get('k1')).to.equal('v2');
    expect(entriesOf(c).map((e) => e.key)).to.deep.equal(['mine']);
    expect(entriesOf(d).map((e) => e.key)).to.deep.equal(['mine']);

    const snap = (i: number) => ({ entries: entriesOf(caches[i]), checksum: caches[i]!.checksum() });
    const before = [0, 1, 2, 3].map(snap);
    const dropped0 = cl.core(1).stats().dropped;

    // Everything anyone sent, replayed to each node; then damaged copies of it.
    const all = cl.captured.map((x) => x.bytes);
    expect(all.length).to.be.greaterThan(20);
    for (let i = 0; i < 4; i++) for (const bytes of all) cl.inject(i, bytes);
    for (const bytes of all) {
      const flipped = bytes.slice();
      flipped[HEADER_SIZE + ((bytes.length * 7) % (bytes.length - HEADER_SIZE))]! ^= 0x10;
      const forged = bytes.slice();
      forged.fill(0xa5, HEADER_SIZE + 12);
      for (let i = 0; i < 4; i++) {
        cl.inject(i, flipped);
        cl.inject(i, forged);
        cl.inject(i, bytes.slice(0, bytes.length - 1));
      }
    }
    cl.run(1000);
    cl.settle();
    expect([0, 1, 2, 3].map(snap)).to.deep.equal(before);

    const dropped = cl.core(1).stats().dropped;
    for (const reason of [CryptoDrop.AUTH_FAILED, CryptoDrop.PLAINTEXT_REJECTED, CryptoDrop.REPLAYED, ErrorCode.TRUNCATED]) {
      expect(dropped[reason] ?? 0, reason).to.be.greaterThan(dropped0[reason] ?? 0);
    }
    expect(cl.core(3).stats().dropped[CryptoDrop.ENCRYPTED_NO_KEY]).to.be.greaterThan(0);
    for (const i of [2, 3]) expect(cl.nodes[i]!.members, `node ${i}`).to.deep.equal([]);

    // And the nodes with the key still replicate.
    a.set('after', 1);
    cl.settle();
    expect(b.get('after')).to.equal(1);
  });

  it('a key lowers the largest value to what 255 sealed fragments carry (VALUE_TOO_LARGE beyond)', async () => {
    const cl = new SecureCluster(22, [{ key: KEY }, { key: KEY }]);
    await cl.start([[0, 1]]);
    const a = cl.cache<Uint8Array>(0, 'c', { maxSize: 0 });
    const b = cl.cache<Uint8Array>(1, 'c', { maxSize: 0 });
    const sealedLimit = 255 * (SIM_CORE_OPTIONS.packetMtu - 56);
    expect(cl.nodes[0]!.maxMessageSize).to.equal(sealedLimit);
    // A put body is 20 bytes + cache name + key + value (conformance/cache/errors.test.ts).
    const largest = sealedLimit - 20 - 1 - 1;
    expect(codeOf(() => a.set('k', new Uint8Array(largest + 1)))).to.equal(ErrorCode.VALUE_TOO_LARGE);
    expect(codeOf(() => a.set('k', new Uint8Array(255 * (SIM_CORE_OPTIONS.packetMtu - 28) - 22)))).to.equal(ErrorCode.VALUE_TOO_LARGE);
    expect(a.has('k')).to.equal(false);
    a.set('k', new Uint8Array(largest).fill(3));
    cl.settle();
    expect(b.get('k')!.length).to.equal(largest);
    expect(b.metadata('k')!.checksum).to.equal(a.metadata('k')!.checksum);
  });
});
