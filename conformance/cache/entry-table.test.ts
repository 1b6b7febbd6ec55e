/**
 * The column store under a Cache (runtime/cache/entry-table.ts): `reserve` gives the columns
 * room up front, so filling up to the reserve never copies them (the pause that doubling a
 * large table costs), growth past it keeps every value, and a reset after the table empties
 * goes back to the reserve rather than to the smallest size.
 */
import { expect } from 'chai';
import { EntryTable } from '../../runtime/cache/entry-table';

/** Adds `n` keys `${prefix}${i}`, each with its number in `expiresAt` and `hlc`. */
function fill(t: EntryTable<number>, prefix: string, n: number): void {
  for (let i = 0; i < n; i++) {
    const s = t.add(`${prefix}${i}`);
    t.expiresAt[s] = i;
    t.hlc[s] = BigInt(i);
    t.values[s] = i;
  }
}

describe('entry table', () => {
  it('filling up to the reserve never replaces a column; one more entry grows them and keeps every value', () => {
    const t = new EntryTable<number>();
    t.reserve(3000);
    const columns = [t.expiresAt, t.hlc, t.prev, t.next, t.gen];
    fill(t, 'k', 3000);
    for (const [i, c] of columns.entries()) expect(c === [t.expiresAt, t.hlc, t.prev, t.next, t.gen][i]).to.equal(true);
    t.add('one more');
    expect(t.expiresAt).to.not.equal(columns[0]);
    for (let i = 0; i < 3000; i++) {
      const s = t.index.get(`k${i}`)!;
      expect([t.expiresAt[s], t.hlc[s], t.values[s]]).to.deep.equal([i, BigInt(i), i]);
    }
  });

  it('without a reserve the columns double as the table fills', () => {
    const t = new EntryTable<number>();
    const first = t.expiresAt;
    fill(t, 'k', 100);
    expect(t.expiresAt).to.not.equal(first);
    expect(t.expiresAt.length).to.equal(128);
  });

  it('a reset after the table empties gives fresh columns of the reserved size, not the smallest', () => {
    const t = new EntryTable<number>();
    t.reserve(1000);
    fill(t, 'k', 1000);
    for (let i = 0; i < 1000; i++) t.remove(t.index.get(`k${i}`)!);
    const before = t.expiresAt;
    t.reset();
    expect(t.expiresAt).to.not.equal(before);
    expect(t.expiresAt.length).to.equal(1000);
    const after = t.expiresAt;
    fill(t, 'n', 1000);
    expect(t.expiresAt === after).to.equal(true);
    expect(t.count).to.equal(1000);
  });

  it('a reserve below the current capacity changes nothing', () => {
    const t = new EntryTable<number>();
    fill(t, 'k', 100);
    const cols = t.expiresAt;
    t.reserve(10);
    expect(t.expiresAt === cols).to.equal(true);
    for (let i = 0; i < 100; i++) expect(t.values[t.index.get(`k${i}`)!]).to.equal(i);
  });
});
