/**
 * Clocks read at most once per millisecond of event-loop turns: the first read caches the
 * value and a 1 ms unref'd timer clears it (the idea of lru-cache's `ttlResolution`). A clock
 * read costs 35-40 ns on these machines, as much as the rest of a `get` or a third of a `set`.
 * The price: within one long synchronous stretch (no event-loop turn) time stands still.
 */

/** `read`, cached until the next millisecond of event-loop turns. */
function coarse(read: () => number): () => number {
  let value = 0;
  let valid = false;
  const expire = (): void => {
    valid = false;
  };
  return (): number => {
    if (valid) return value;
    value = read();
    valid = true;
    setTimeout(expire, 1).unref();
    return value;
  };
}

/**
 * performance.now(): the caches' default clock for TTLs and lookup times. An entry can outlive
 * its TTL until a synchronous stretch ends; still monotonic; shared by every cache.
 */
export const coarseNow = coarse(() => performance.now());

/**
 * Date.now(): the hybrid logical clock's default wall clock. Within a synchronous stretch the
 * wall part stands still and the logical counter advances, which the HLC allows (65,536 stamps
 * per ms, then it carries into the ms part).
 */
export const coarseWallNow = coarse(Date.now);
