/**
 * Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014), packed in 64 bits as
 * the wire's `hlc` field: 48 bits of Unix milliseconds, then a 16-bit logical counter.
 *
 * Why: McCache-for-Python orders writes by each writer's wall clock with no tie-breaker, so a
 * node with a slow clock loses its own writes and equal timestamps never converge (bugs C11,
 * C12). An HLC never runs backwards, is always ahead of every version this node has seen, and
 * stays close to wall time; with the writer's node id as tie-breaker, every node orders every
 * pair of writes the same way.
 *
 * Time is injected (`wallNow`), so tests can skew clocks.
 */
import { ErrorCode, McCacheError } from '../errors';
import { coarseWallNow } from './coarse-clock';

export const LOGICAL_BITS = 16n;
const MAX_HLC = (1n << 64n) - 1n;
/** Largest millisecond count the 48-bit physical part holds (year 10889). */
const MAX_PHYSICAL = 2 ** 48 - 1;

export interface Version {
  hlc: bigint;
  node: bigint;
}

/** Total order on versions: hlc first, then node id. */
export function compareVersions(a: Version, b: Version): number {
  return compareVersionParts(a.hlc, a.node, b.hlc, b.node);
}

/** compareVersions of (hlc1, node1) and (hlc2, node2), for callers that hold no Version object. */
export function compareVersionParts(hlc1: bigint, node1: bigint, hlc2: bigint, node2: bigint): -1 | 0 | 1 {
  if (hlc1 !== hlc2) return hlc1 < hlc2 ? -1 : 1;
  if (node1 !== node2) return node1 < node2 ? -1 : 1;
  return 0;
}

export function hlcPhysical(hlc: bigint): number {
  return Number(hlc >> LOGICAL_BITS);
}

export class HybridClock {
  #last = 0n;
  #wallMsNumber = -1;
  /** `#wallMsNumber` << 16, as a bigint. */
  #wallStamp = 0n;
  readonly #wallNow: () => number;
  /** ((maxAhead + 1) << 16) - 1: the stamps admissible ahead of the wall clock's ms stamp. */
  readonly #aheadSpan: bigint;

  /**
   * @param wallNow Unix time in ms.
   * @param maxAhead Remote timestamps further than this ahead of our wall clock (ms) are not
   *   adopted, so one host with a wild clock cannot drag the cluster's clocks into the future.
   */
  constructor(wallNow: () => number = coarseWallNow, maxAhead = 60_000) {
    if (typeof wallNow !== 'function') throw new McCacheError(ErrorCode.INVALID_OPTION, 'wallNow: must be a function returning Unix ms');
    if (!Number.isSafeInteger(maxAhead) || maxAhead < 0) {
      throw new McCacheError(ErrorCode.INVALID_OPTION, `maxAhead: must be a non-negative integer (ms), got ${String(maxAhead)}`);
    }
    this.#wallNow = wallNow;
    this.#aheadSpan = ((BigInt(maxAhead) + 1n) << LOGICAL_BITS) - 1n;
  }

  /** The wall clock in whole ms, clamped to the 48 bits the timestamp has room for. */
  #wallMs(): bigint {
    const w = this.#wallNow();
    // A broken wall clock (NaN, negative, absurd) must not throw from BigInt() or wrap around;
    // the logical counter keeps the clock monotonic whatever it reads.
    const ms = w > 0 ? Math.floor(Math.min(w, MAX_PHYSICAL)) : 0;
    // Writes come thousands per ms: the bigint of the same ms is made once (BigInt() and the
    // shift cost about as much as the rest of a cache set).
    if (ms !== this.#wallMsNumber) {
      this.#wallMsNumber = ms;
      this.#wallStamp = BigInt(ms) << LOGICAL_BITS;
    }
    return this.#wallStamp;
  }

  /** A new timestamp, greater than every one this clock issued or observed. */
  now(): bigint {
    const wall = this.#wallMs();
    let next = wall > this.#last ? wall : this.#last + 1n;
    // The counter carries into the millisecond part: still monotonic, 65,536 stamps per ms.
    if (next > MAX_HLC) next = MAX_HLC;
    this.#last = next;
    return next;
  }

  /** Notes a timestamp seen from a peer; returns false when it was too far ahead to adopt. */
  observe(hlc: bigint): boolean {
    if (hlc <= this.#last) return true;
    // Any logical count within the last admissible millisecond is admissible too.
    const limit = this.#wallMs() + this.#aheadSpan;
    if (hlc > limit || hlc > MAX_HLC) return false;
    this.#last = hlc;
    return true;
  }

  get last(): bigint {
    return this.#last;
  }
}
