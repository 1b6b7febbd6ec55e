/**
 * UTF-8 measures shared by the wire encoder (encode.ts), the value codec and the cache
 * (runtime/cache): the same string is checked and measured the same way everywhere.
 */

/**
 * No lone surrogate: UTF-8 can carry the string exactly (TextEncoder would replace one).
 * ES2024's String.prototype.isWellFormed exists in Node 20; the project's lib is ES2022.
 */
export const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

/** UTF-8 length of a well-formed string, without encoding it. */
export function utf8Length(s: string): number {
  const n = s.length;
  if (n > 64) return Buffer.byteLength(s, 'utf8');
  let bytes = n;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c < 0xd800 || c > 0xdfff) bytes += 2;
    else {
      bytes += 2; // a surrogate pair: 4 bytes for 2 units (well-formed: the caller checked)
      i++;
    }
  }
  return bytes;
}
