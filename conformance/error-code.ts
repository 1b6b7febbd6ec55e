/** Shared by the suites: the stable `code` a call throws (tests assert codes, never message text). */
import { expect } from 'chai';
import { McCacheError } from '../runtime/errors';

/** The McCacheError code `fn` throws, or undefined when it returns; any other throw fails the test. */
export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(McCacheError);
    return (err as McCacheError).code;
  }
  return undefined;
}

/** The McCacheError code `fn` throws; fails the test when it throws nothing. */
export function errorCode(fn: () => unknown): string {
  return codeOf(fn) ?? expect.fail('expected a McCacheError');
}
