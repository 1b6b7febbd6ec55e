/**
 * The column store under a Cache (runtime/cache/entry-table.ts): `reserve` makes the first
 * growth go straight to the reserved size, so filling up to it copies the columns once, while
 * they are small, instead of at every doubling (the pause that doubling a large table costs);
 * growth past the reserve keeps every value; a table that stays nearly empty, or is emptied
 * and reset, holds only the smallest columns.
 */
import { expect } from 'chai';
import { EntryTable } from '../../runtime/cache/entry-table';

/** Adds keys `${prefix}${i}` for i in [from, to), each with its number in `expiresAt`, `hlc` and `values`. */
function fill(t: EntryTable<number>, prefix: string, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const s = t.add(`${prefix}${i}`);
    t.expiresAt[s] = i;
    t.hlc[s] = BigInt(i);
    t.values[s] = i;
  }
}

const columns = (t: EntryTable<number>) => [t.expiresAt, t.hlc, t.prev, t.next, t.gen, t.codec];

describe('entry table', () => {
  it('with a reserve, the first growth goes to it and filling up to it replaces no column again', () => {
    const t = new EntryTable<number>();
    t.reserve(3000);
    fill(t, 'k', 0, 17); // one more than the smallest columns hold
    expect(t.expiresAt.length).to.equal(3000);
    const after = columns(t);
    fill(t, 'k', 17, 3000);
    columns(t).forEach((c, i) => expect(c === after[i], `column ${i}`).to.equal(true));
    t.add('one more');
    expect(t.expiresAt.length).to.equal(6000);
    for (let i = 0; i < 3000; i++) {
      const s = t.index.get(`k${i}`)!;
      expect([t.expiresAt[s], t.hlc[s], t.values[s]]).to.deep.equal([i, BigInt(i), i]);
    }
  });

  it('a reserved table that holds only a few entries keeps the smallest columns', () => {
    const t = new EntryTable<number>();
    t.reserve(1 << 20);
    fill(t, 'k', 0, 16);
    expect(t.expiresAt.length).to.equal(16);
  });

  it('without a reserve the columns double as the table fills', () => {
    const t = new EntryTable<number>();
    fill(t, 'k', 0, 100);
    expect(t.expiresAt.length).to.equal(128);
  });

  it('a reset after the table empties gives the smallest columns back; filling again goes to the reserve at once', () => {
    const t = new EntryTable<number>();
    t.reserve(1000);
    fill(t, 'k', 0, 1000);
    for (let i = 0; i < 1000; i++) t.remove(t.index.get(`k${i}`)!);
    t.reset();
    expect(t.expiresAt.length).to.equal(16);
    fill(t, 'n', 0, 17);
    expect(t.expiresAt.length).to.equal(1000);
    const after = columns(t);
    fill(t, 'n', 17, 1000);
    columns(t).forEach((c, i) => expect(c === after[i], `column ${i}`).to.equal(true));
    expect(t.count).to.equal(1000);
  });

  it('a reserve made once the table has grown applies at once, keeping every value; one below the capacity changes nothing', () => {
    const t = new EntryTable<number>();
    fill(t, 'k', 0, 100);
    const cols = t.expiresAt;
    t.reserve(10);
    expect(t.expiresAt === cols).to.equal(true);
    t.reserve(5000);
    expect(t.expiresAt.length).to.equal(5000);
    for (let i = 0; i < 100; i++) expect(t.values[t.index.get(`k${i}`)!]).to.equal(i);
    for (let i = 0; i < 100; i++) expect(t.expiresAt[t.index.get(`k${i}`)!]).to.equal(i);
  });
});
