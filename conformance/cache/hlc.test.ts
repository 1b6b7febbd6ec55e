/**
 * The hybrid logical clock (runtime/cache/hlc.ts): 48 bits of Unix ms then a 16-bit logical
 * counter. Monotonic whatever the wall clock does, the counter carries into the millisecond
 * part, a peer's stamp is adopted unless it is more than `maxAhead` ms ahead of our wall clock,
 * and versions are totally ordered by (hlc, node id).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { compareVersions, hlcPhysical, HybridClock, LOGICAL_BITS } from '../../runtime/cache/hlc';
import { ErrorCode } from '../../runtime/errors';
import { params } from '../wire/wire-arbitraries';
import { errorCode, hlcAt, WALL0 } from './cache-fixtures';

const logical = (hlc: bigint): number => Number(hlc & ((1n << LOGICAL_BITS) - 1n));

describe('hybrid logical clock', () => {
  it('stamps the wall clock with logical 0 when the wall clock moves on', () => {
    let wall = WALL0;
    const c = new HybridClock(() => wall);
    expect(c.now()).to.equal(hlcAt(WALL0));
    wall += 5;
    expect(c.now()).to.equal(hlcAt(WALL0 + 5));
    expect(hlcPhysical(c.last)).to.equal(WALL0 + 5);
  });

  it('counts within a millisecond and when the wall clock goes back', () => {
    let wall = WALL0;
    const c = new HybridClock(() => wall);
    c.now();
    expect(c.now()).to.equal(hlcAt(WALL0, 1));
    expect(c.now()).to.equal(hlcAt(WALL0, 2));
    wall -= 1000; // an NTP step back
    expect(c.now()).to.equal(hlcAt(WALL0, 3));
    wall = WALL0 + 1;
    expect(c.now()).to.equal(hlcAt(WALL0 + 1));
  });

  it('carries the logical counter into the millisecond part', () => {
    const c = new HybridClock(() => WALL0);
    let last = 0n;
    for (let i = 0; i < 65_536; i++) last = c.now();
    expect(last).to.equal(hlcAt(WALL0, 65_535));
    const next = c.now();
    expect(next).to.equal(hlcAt(WALL0 + 1, 0));
    expect(logical(next)).to.equal(0);
    expect(next > last).to.equal(true);
  });

  it('adopts a peer stamp ahead of it, so its next stamp is greater', () => {
    const c = new HybridClock(() => WALL0);
    expect(c.observe(hlcAt(WALL0 + 2000, 7))).to.equal(true);
    expect(c.last).to.equal(hlcAt(WALL0 + 2000, 7));
    expect(c.now()).to.equal(hlcAt(WALL0 + 2000, 8));
  });

  it('an older peer stamp changes nothing', () => {
    const c = new HybridClock(() => WALL0);
    const t = c.now();
    expect(c.observe(hlcAt(WALL0 - 10))).to.equal(true);
    expect(c.last).to.equal(t);
  });

  it('refuses a peer stamp more than maxAhead ms ahead of the wall clock, keeping its time', () => {
    const c = new HybridClock(() => WALL0, 1000);
    // The whole millisecond wall + maxAhead is admissible, whatever its logical count.
    expect(c.observe(hlcAt(WALL0 + 1000, 65_535))).to.equal(true);
    const c2 = new HybridClock(() => WALL0, 1000);
    expect(c2.observe(hlcAt(WALL0 + 1001))).to.equal(false);
    expect(c2.last).to.equal(0n);
    expect(c2.now()).to.equal(hlcAt(WALL0));
    expect(c2.observe(2n ** 64n - 1n)).to.equal(false);
  });

  it('the default limit is 60 s', () => {
    expect(new HybridClock(() => WALL0).observe(hlcAt(WALL0 + 60_000))).to.equal(true);
    expect(new HybridClock(() => WALL0).observe(hlcAt(WALL0 + 60_001))).to.equal(false);
  });

  it('a broken wall clock (NaN, negative, absurd) does not throw and stays monotonic', () => {
    let wall = Number.NaN;
    const c = new HybridClock(() => wall);
    const a = c.now();
    wall = -5;
    const b = c.now();
    wall = 1e300;
    const d = c.now();
    wall = WALL0;
    const e = c.now();
    expect(a < b && b < d && d < e).to.equal(true);
  });

  it('refuses bad constructor arguments', () => {
    expect(errorCode(() => new HybridClock(() => 0, -1))).to.equal(ErrorCode.INVALID_OPTION);
    expect(errorCode(() => new HybridClock(() => 0, 0.5))).to.equal(ErrorCode.INVALID_OPTION);
    expect(errorCode(() => new HybridClock('now' as unknown as () => number))).to.equal(ErrorCode.INVALID_OPTION);
  });

  it('orders versions by hlc, then node id', () => {
    expect(compareVersions({ hlc: 2n, node: 1n }, { hlc: 1n, node: 9n })).to.equal(1);
    expect(compareVersions({ hlc: 1n, node: 9n }, { hlc: 2n, node: 1n })).to.equal(-1);
    expect(compareVersions({ hlc: 5n, node: 2n }, { hlc: 5n, node: 3n })).to.equal(-1);
    expect(compareVersions({ hlc: 5n, node: 3n }, { hlc: 5n, node: 3n })).to.equal(0);
  });

  it('property: stamps strictly increase and exceed every adopted peer stamp, whatever the clocks do', () => {
    const step = fc.oneof(
      fc.record({ kind: fc.constant('now' as const), wallStep: fc.integer({ min: -3000, max: 3000 }) }),
      fc.record({ kind: fc.constant('observe' as const), ahead: fc.integer({ min: -5000, max: 70_000 }), logical: fc.integer({ min: 0, max: 65_535 }) }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        let wall = WALL0;
        const c = new HybridClock(() => wall);
        let floor = 0n; // every stamp must be above this
        for (const s of steps) {
          if (s.kind === 'now') {
            wall += s.wallStep;
            const t = c.now();
            expect(t > floor).to.equal(true);
            expect(hlcPhysical(t) >= wall).to.equal(true);
            floor = t;
          } else {
            const peer = hlcAt(wall + s.ahead, s.logical);
            const behind = peer <= c.last;
            const adopted = c.observe(peer);
            // Refused only when it would move the clock more than 60 s past the wall clock.
            expect(adopted).to.equal(behind || s.ahead <= 60_000);
            if (adopted && peer > floor) floor = peer;
            expect(c.last >= floor).to.equal(true);
          }
        }
      }),
      params(300),
    );
  });
});
