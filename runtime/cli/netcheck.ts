/**
 * `mccache netcheck HOST`: the path MTU and the hop count from this host to HOST (McCache's
 * get_mtu / get_hops), and the settings they suggest:
 *
 *   MCCACHE_PACKET_MTU      path MTU - 28 (IPv4 + UDP headers), at most 65507 (the largest UDP
 *                           payload over IPv4)
 *   MCCACHE_MULTICAST_HOPS  the hop count (at least 1)
 *
 * Tools, in order: `tracepath -n HOST` (Debian iputils-tracepath; needs no privileges), else
 * `ping` (iputils-ping): a binary search over `ping -M do -s SIZE -c 1` for the MTU and pings
 * with a growing TTL for the hops. Neither installed: a message naming the package to install.
 *
 * Only HOST is probed. Exit codes: 0 both found; 1 the probe ran but could not find the MTU or
 * the hops (HOST unreachable, name unknown); 2 usage error or a bad HOST; 3 no probing tool is
 * installed.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isIPv4 } from 'node:net';

export const NETCHECK_EXIT = { OK: 0, PROBE_FAILED: 1, USAGE: 2, NO_TOOL: 3 } as const;

/** Largest UDP payload over IPv4 (65535 - 20 - 8). */
export const MAX_UDP_PAYLOAD = 65507;
const IP_UDP_HEADERS = 28;
const MAX_HOPS = 30;

export interface RunResult { status: number | null; stdout: string }

/** What netcheck needs from the system; tests give fakes. */
export interface NetcheckDeps {
  /** Absolute path of an installed executable, or undefined. */
  which(cmd: string): string | undefined;
  run(file: string, args: string[], timeoutMs: number): RunResult;
}

export const systemDeps: NetcheckDeps = {
  which(cmd) {
    const dirs = [...(process.env['PATH'] ?? '').split(path.delimiter), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
    for (const d of dirs) {
      if (!d) continue;
      const p = path.join(d, cmd);
      try {
        fs.accessSync(p, fs.constants.X_OK);
        if (fs.statSync(p).isFile()) return p;
      } catch {
        // not here
      }
    }
    return undefined;
  },
  run(file, args, timeoutMs) {
    const r = spawnSync(file, args, { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, LC_ALL: 'C' } });
    return { status: r.error ? null : r.status, stdout: `${r.stdout ?? ''}${r.stderr ?? ''}` };
  },
};

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** An IPv4 address or a DNS host name (letters, digits, hyphens, dots; never an option). */
export function isValidHost(host: string): boolean {
  if (isIPv4(host)) return true;
  if (host.length === 0 || host.length > 253 || /^[0-9.]+$/.test(host)) return false;
  return host.replace(/\.$/, '').split('.').every((l) => LABEL.test(l));
}

/** The suggested MCCACHE_PACKET_MTU for a path MTU. */
export function suggestedPacketMtu(pathMtu: number): number {
  return Math.min(pathMtu - IP_UDP_HEADERS, MAX_UDP_PAYLOAD);
}

export interface ProbeResult { tool: string; mtu?: number; hops?: number }

/** Parses tracepath's "Resume: pmtu N hops H back B" line. */
export function parseTracepath(text: string): { mtu?: number; hops?: number } {
  const m = /Resume:\s*pmtu\s+(\d+)(?:\s+hops\s+(\d+))?/.exec(text);
  if (!m) return {};
  return { mtu: Number(m[1]), ...(m[2] !== undefined && { hops: Number(m[2]) }) };
}

function probeTracepath(file: string, host: string, deps: NetcheckDeps): ProbeResult {
  const r = deps.run(file, ['-n', '-m', String(MAX_HOPS), host], 90_000);
  return { tool: 'tracepath -n', ...parseTracepath(r.stdout) };
}

function probePing(file: string, host: string, deps: NetcheckDeps): ProbeResult {
  const ok = (extra: string[]): boolean => deps.run(file, ['-n', '-q', '-c', '1', '-W', '1', ...extra, host], 5_000).status === 0;
  const result: ProbeResult = { tool: 'ping -M do' };
  if (!ok([])) return result; // unreachable: neither can be found
  // Largest ICMP payload that passes unfragmented; the path MTU is that + 28.
  let lo = 0;
  let hi = MAX_UDP_PAYLOAD;
  const fits = (size: number): boolean => ok(['-M', 'do', '-s', String(size)]);
  if (fits(hi)) lo = hi;
  else {
    hi--;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (fits(mid)) lo = mid;
      else hi = mid - 1;
    }
  }
  result.mtu = lo + IP_UDP_HEADERS;
  for (let ttl = 1; ttl <= MAX_HOPS; ttl++) {
    if (ok(['-t', String(ttl)])) {
      result.hops = ttl;
      break;
    }
  }
  return result;
}

const USAGE = 'usage: mccache netcheck HOST   (HOST: an IPv4 address or a host name)';

export function netcheckCommand(args: string[], out: (s: string) => void, deps: NetcheckDeps = systemDeps): number {
  if (args.length !== 1 || args[0] === '--help' || args[0] === '-h') {
    out(USAGE);
    return args[0] === '--help' || args[0] === '-h' ? NETCHECK_EXIT.OK : NETCHECK_EXIT.USAGE;
  }
  const host = args[0]!;
  if (!isValidHost(host)) {
    out(`mccache netcheck: bad HOST ${JSON.stringify(host)}: give an IPv4 address or a host name\n${USAGE}`);
    return NETCHECK_EXIT.USAGE;
  }
  const tracepath = deps.which('tracepath');
  const ping = tracepath === undefined ? deps.which('ping') : undefined;
  if (tracepath === undefined && ping === undefined) {
    out('mccache netcheck: neither tracepath nor ping is installed; install one, e.g. '
      + '`apt-get install iputils-tracepath` (Debian/Ubuntu; or iputils-ping)');
    return NETCHECK_EXIT.NO_TOOL;
  }
  const r = tracepath !== undefined ? probeTracepath(tracepath, host, deps) : probePing(ping!, host, deps);
  out(`netcheck ${host} (${r.tool}): path MTU ${r.mtu ?? 'unknown'}, hops ${r.hops ?? 'unknown'}`);
  if (r.mtu !== undefined) out(`MCCACHE_PACKET_MTU=${suggestedPacketMtu(r.mtu)}`);
  if (r.hops !== undefined) out(`MCCACHE_MULTICAST_HOPS=${Math.max(1, r.hops)}`);
  if (r.mtu === undefined || r.hops === undefined) {
    out(`mccache netcheck: could not find the ${r.mtu === undefined ? 'path MTU' : 'hop count'} to ${host} (unreachable or unknown name?)`);
    return NETCHECK_EXIT.PROBE_FAILED;
  }
  return NETCHECK_EXIT.OK;
}
