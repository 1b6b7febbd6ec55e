/**
 * Shared fixtures of the cache tests (conformance/cache/*.test.ts): a fake monotonic clock and a
 * fake wall clock (STYLE.md: time is injected), a replicator that records what the cache
 * publishes, builders for the messages a peer would send, and `errorCode`. Property run counts
 * come from `params` in ../wire/wire-arbitraries.ts (FC_NUM_RUNS scales them, FC_SEED replays).
 */
import type { Message, ValueCodec } from '../../runtime/codec/packet';
import { Cache, encodedPut, type CacheOptions, type Mutation, type Replicator } from '../../runtime/cache/cache';
import { HybridClock } from '../../runtime/cache/hlc';
import { encodeValue } from '../../runtime/cache/value-codec';
import { maxMessageSize as maxMessageSizeAt } from '../../runtime/codec';

/** Unix ms the fake wall clocks start at (2024-01-01T00:00:00Z). */
export const WALL0 = 1_704_067_200_000;

/** A monotonic clock (`now`) and a wall clock (`wall`) that move only when told to. */
export class FakeTime {
  mono = 1000;
  wallMs = WALL0;
  readonly now = (): number => this.mono;
  readonly wall = (): number => this.wallMs;
  advance(ms: number): void {
    this.mono += ms;
    this.wallMs += ms;
  }
}

/** Records every published message; `maxMessageSize` as a real node at packetMtu 1472. */
export class RecordingReplicator implements Replicator {
  readonly published: Message[] = [];
  constructor(readonly nodeId: bigint = 1n, readonly maxMessageSize: number = maxMessageSizeAt(1472)) {}
  /** Recorded as sent: a put's string value as its UTF-8 bytes. */
  publish(message: Mutation): void {
    this.published.push(message.op === 'put' ? encodedPut(message) : message);
  }
}

export interface Harness<V> {
  cache: Cache<V>;
  time: FakeTime;
  clock: HybridClock;
  replicator: RecordingReplicator;
}

/** A cache on fake clocks with a recording replicator (node id 1 unless told otherwise). */
export function makeCache<V = unknown>(options: CacheOptions<V> = {}, o: { nodeId?: bigint; maxMessageSize?: number; time?: FakeTime; name?: string } = {}): Harness<V> {
  const time = o.time ?? new FakeTime();
  const clock = new HybridClock(time.wall);
  const nodeId = o.nodeId ?? 1n;
  const replicator = new RecordingReplicator(nodeId, o.maxMessageSize);
  const cache = new Cache<V>(o.name ?? 'test', { now: time.now, ...options }, { clock, replicator, nodeId });
  return { cache, time, clock, replicator };
}

/** An hlc at wall ms `ms` with logical count `logical`. */
export function hlcAt(ms: number, logical = 0): bigint {
  return (BigInt(ms) << 16n) | BigInt(logical);
}

export function remotePut(key: string, value: unknown, hlc: bigint, ttl = 0, cache = 'test'): Message {
  const { codec, bytes } = encodeValue(value);
  return { op: 'put', cache, key, hlc, ttl, codec: codec as ValueCodec, value: bytes };
}
export function remoteDelete(key: string, hlc: bigint, cache = 'test'): Message {
  return { op: 'delete', cache, key, hlc };
}
export function remoteClear(hlc: bigint, cache = 'test'): Message {
  return { op: 'clear', cache, hlc };
}

export { errorCode } from '../error-code';
