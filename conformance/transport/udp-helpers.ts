/** Shared by the tests that run UdpDrivers in-process on host-local multicast. */
import type { Message } from '../../runtime/codec/packet';

/** Core timings that form a cluster and repair losses in tens of ms. */
export const FAST = { heartbeatInterval: 50, failureTimeout: 1000, ackInterval: 5 };

/** A small put whose key and value name `n`. */
export const put = (n: number): Message => ({ op: 'put', cache: 'c', key: `k${n}`, hlc: BigInt(n), ttl: 0, codec: 'utf8', value: Buffer.from(`v${n}`) });

/** Polls `cond` until it holds; throws naming `what` after `ms`. */
export async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
