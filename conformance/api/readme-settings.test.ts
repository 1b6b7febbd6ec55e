/** The README's settings table and the code's settings table (describeSettings) agree. */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeSettings } from '../../runtime/config/settings';

describe('README settings table', () => {
  it('lists every setting with its environment variable and default, as the code defines them', () => {
    const readme = fs.readFileSync(path.resolve(__dirname, '../../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Settings'), readme.indexOf('## Consistency'));
    const rows = [...section.matchAll(/^\| `(\w+)` \| `(MCCACHE_\w+)` \| [^|]* \| ([^|]*) \|/gm)].map((m) => [m[1], m[2], m[3]!.trim()]);
    expect(rows).to.deep.equal(describeSettings().map((r) => [r.name, r.env, String(r.default)]));
  });
});
