/**
 * Options of the UDP multicast transport, and their environment variables (DESIGN.md §5:
 * options beat environment beats defaults; every bad value is a clear error).
 *
 *   MCCACHE_MULTICAST_IP     `addr[:port]`, an IPv4 multicast group (224.0.0.0/4) and an
 *                            optional port 1..65535. Default 224.0.0.3:4000 (McCache's).
 *   MCCACHE_MULTICAST_HOPS   multicast TTL 0..255. Default 1 (the local network segment).
 *                            0 means host-local: interface 127.0.0.1, TTL 0, loopback on, so
 *                            no datagram leaves the machine.
 *   MCCACHE_MONKEY_TANTRUM   percent 0..99 of OUTGOING datagrams the transport drops on
 *                            purpose (stress tests; McCache's knob of the same name).
 *   MCCACHE_PEERS            comma-separated `host:port` unicast peers (IPv4 or host name):
 *                            when set, the driver uses them instead of multicast (README
 *                            "Networks without multicast"); the group, port and hops are unused.
 *
 * Every error is a McCacheError with code MCCACHE_ERR_INVALID_OPTION naming the variable (or
 * option) and the accepted range.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { PeerAddress } from '../config/settings';
import { ErrorCode, McCacheError } from '../errors';

export type { PeerAddress };

export interface TransportOptions {
  /** IPv4 multicast group (224.0.0.0/4). @default '224.0.0.3' */
  group: string;
  /** UDP port of the group, 1..65535. @default 4000 */
  port: number;
  /**
   * IPv4 address of the interface to send from and join the group on; undefined lets the
   * kernel choose (the interface of the route to the group). @default undefined
   */
  interfaceAddress: string | undefined;
  /** Multicast TTL, 0..255; 0 keeps datagrams on this host. @default 1 */
  multicastHops: number;
  /** Receive our own group's datagrams on this host (needed for several nodes per host). @default true */
  loopback: boolean;
  /**
   * Requested SO_RCVBUF, bytes. Bursts overflow the kernel's default 208 KiB at rates far below
   * the CPU's (research/perf-baseline.md §3.3), so ask for 4 MiB, the most this project's Linux
   * hosts' `net.core.rmem_max` honours; the driver falls back to what the kernel grants and
   * reports it. 0 keeps the kernel's default. @default 4 MiB
   */
  recvBufferSize: number;
  /** Percent of outgoing datagrams dropped on purpose, 0..99. @default 0 */
  monkeyTantrum: number;
  /**
   * Unicast peers (Settings.peers, MCCACHE_PEERS): every member's `host:port`, IPv4 addresses or
   * host names (resolved to IPv4 at start). Non-empty = unicast: the driver binds this host's
   * own entry and sends to the others; group, port, hops, interface and loopback are unused.
   * Given as PeerAddress objects, `host:port` strings, or one comma-separated string.
   * @default [] (multicast)
   */
  peers: readonly PeerAddress[];
  /**
   * Unicast: the address and port to bind, when this host's entry cannot be found in `peers`
   * (behind NAT, say). @default undefined: the first entry of `peers` that is an address of this
   * host and whose port is free (so one list serves every host, and several nodes per host).
   */
  localPeer: PeerAddress | undefined;
}

export const DEFAULT_GROUP = '224.0.0.3';
export const DEFAULT_PORT = 4000;
export const DEFAULT_HOPS = 1;
export const DEFAULT_RECV_BUFFER_SIZE = 4 << 20;
export const HOST_LOCAL_INTERFACE = '127.0.0.1';

export const TRANSPORT_DEFAULTS: Readonly<TransportOptions> = Object.freeze({
  group: DEFAULT_GROUP,
  port: DEFAULT_PORT,
  interfaceAddress: undefined,
  multicastHops: DEFAULT_HOPS,
  loopback: true,
  recvBufferSize: DEFAULT_RECV_BUFFER_SIZE,
  monkeyTantrum: 0,
  peers: Object.freeze([]) as readonly PeerAddress[],
  localPeer: undefined,
});

/** What resolveTransportOptions accepts: `peers` and `localPeer` also as text. */
export type TransportOptionsInput = Omit<Partial<TransportOptions>, 'peers' | 'localPeer'> & {
  peers?: readonly (PeerAddress | string)[] | string | undefined;
  localPeer?: PeerAddress | string | undefined;
};

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Transport settings found in `env` (only the variables that are set and non-empty).
 * Throws MCCACHE_ERR_INVALID_OPTION naming the variable for a bad value.
 */
export function transportOptionsFromEnv(env: Env = process.env): Partial<TransportOptions> {
  const out: Partial<TransportOptions> = {};
  const ip = env['MCCACHE_MULTICAST_IP']?.trim();
  if (ip) {
    const m = /^([^:]+)(?::([^:]*))?$/.exec(ip);
    const group = m?.[1] ?? '';
    if (!m || !isMulticastV4(group)) {
      throw invalid('MCCACHE_MULTICAST_IP', 'must be addr[:port] with an IPv4 multicast address in 224.0.0.0-239.255.255.255 and a port in 1..65535', ip);
    }
    out.group = group;
    if (m[2] !== undefined) out.port = parseIntIn('MCCACHE_MULTICAST_IP', m[2], 1, 65535, 'port', ip);
  }
  const hops = env['MCCACHE_MULTICAST_HOPS']?.trim();
  if (hops) {
    out.multicastHops = parseIntIn('MCCACHE_MULTICAST_HOPS', hops, 0, 255);
    if (out.multicastHops === 0) {
      out.interfaceAddress = HOST_LOCAL_INTERFACE;
      out.loopback = true;
    }
  }
  const tantrum = env['MCCACHE_MONKEY_TANTRUM']?.trim();
  if (tantrum) out.monkeyTantrum = parseIntIn('MCCACHE_MONKEY_TANTRUM', tantrum, 0, 99);
  const peers = env['MCCACHE_PEERS']?.trim();
  if (peers) out.peers = parsePeers('MCCACHE_PEERS', peers);
  return out;
}

/**
 * The effective transport options: defaults, then `env`, then `options` (an explicit
 * `undefined` in `options` means "not given"). Options are validated the same way; a
 * `multicastHops` of 0 from either source implies the host-local interface unless an interface
 * is given explicitly.
 */
export function resolveTransportOptions(options: TransportOptionsInput = {}, env: Env = process.env): TransportOptions {
  const fromEnv = transportOptionsFromEnv(env);
  const given: Partial<TransportOptions> = {};
  for (const [k, v] of Object.entries(options)) if (v !== undefined) (given as Record<string, unknown>)[k] = v;
  if (options.peers !== undefined) given.peers = parsePeers('peers', options.peers);
  if (options.localPeer !== undefined) given.localPeer = parsePeers('localPeer', [options.localPeer])[0];
  if (given.multicastHops !== undefined && !('interfaceAddress' in given)) {
    // Host-local follows the hop count that wins, not the one it overrides.
    if (given.multicastHops === 0) given.interfaceAddress = HOST_LOCAL_INTERFACE;
    else if (fromEnv.multicastHops === 0) delete fromEnv.interfaceAddress;
  }
  const o: TransportOptions = { ...TRANSPORT_DEFAULTS, ...fromEnv, ...given };
  if (typeof o.group !== 'string' || !isMulticastV4(o.group)) {
    throw invalid('group', 'must be an IPv4 multicast address in 224.0.0.0-239.255.255.255', o.group);
  }
  checkInt('port', o.port, 1, 65535);
  if (o.interfaceAddress !== undefined && (typeof o.interfaceAddress !== 'string' || !isIPv4(o.interfaceAddress))) {
    throw invalid('interfaceAddress', 'must be an IPv4 address of a local interface', o.interfaceAddress);
  }
  checkInt('multicastHops', o.multicastHops, 0, 255);
  if (typeof o.loopback !== 'boolean') throw invalid('loopback', 'must be a boolean', o.loopback);
  checkInt('recvBufferSize', o.recvBufferSize, 0, 2 ** 31 - 1);
  checkInt('monkeyTantrum', o.monkeyTantrum, 0, 99);
  return o;
}

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * Peers from `host:port` text (comma-separated), strings or {host, port} objects; `name` is the
 * option or variable the errors name. IPv4 addresses and host names only: the driver's socket
 * is IPv4, as the multicast one is.
 */
export function parsePeers(name: string, v: unknown): readonly PeerAddress[] {
  const items = typeof v === 'string' ? (v.trim() === '' ? [] : v.split(',')) : v;
  if (!Array.isArray(items)) throw invalid(name, 'must be host:port entries (an array or a comma-separated string)', v);
  const out: PeerAddress[] = [];
  const seen = new Set<string>();
  for (const item of items as unknown[]) {
    const object = typeof item === 'object' && item !== null && typeof (item as PeerAddress).port === 'number';
    const text = typeof item === 'string' ? item.trim() : object ? `${String((item as PeerAddress).host)}:${(item as PeerAddress).port}` : undefined;
    const m = text === undefined ? null : /^([^:\s]+):(\d{1,5})$/.exec(text);
    const host = m?.[1] ?? '';
    const port = Number(m?.[2]);
    if (!m || !(isIPv4(host) || (HOST_NAME.test(host) && !/^[\d.]+$/.test(host))) || !(port >= 1 && port <= 65535)) {
      const v6 = text !== undefined && (text.startsWith('[') || isIPv6(text.replace(/:\d+$/, '')));
      throw invalid(name, v6 ? 'IPv6 peers are not supported (the socket is IPv4); give IPv4 addresses or host names'
        : 'must be host:port entries (an IPv4 address or a host name, and a port in 1..65535)', text ?? item);
    }
    if (seen.has(`${host}:${port}`)) throw invalid(name, 'lists a peer twice', text);
    seen.add(`${host}:${port}`);
    out.push(Object.freeze({ host, port }));
  }
  return Object.freeze(out);
}

export function isMulticastV4(addr: string): boolean {
  if (!isIPv4(addr)) return false;
  const first = Number(addr.slice(0, addr.indexOf('.')));
  return first >= 224 && first <= 239;
}

function parseIntIn(name: string, text: string, min: number, max: number, what?: string, whole?: string): number {
  if (!/^\d{1,10}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw invalid(name, `${what ? `${what} ` : ''}must be an integer in ${min}..${max}`, whole ?? text);
  }
  return Number(text);
}

function checkInt(name: string, v: unknown, min: number, max: number): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalid(name, `must be an integer in ${min}..${max}`, v);
  }
}

function invalid(name: string, rule: string, got: unknown): McCacheError {
  return new McCacheError(ErrorCode.INVALID_OPTION, `${name}: ${rule}, got ${JSON.stringify(String(got))}`);
}
