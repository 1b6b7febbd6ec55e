/**
 * `mccache decode --live [--json] [--count N] [--seconds S] [--key KEY]`: listens on the group
 * and port of the environment (MCCACHE_MULTICAST_IP, MCCACHE_MULTICAST_HOPS; hops 0 = interface
 * 127.0.0.1) and prints each datagram received as `mccache decode FILE` prints a capture's, then
 * the per-sender summaries. With --key (or MCCACHE_CRYPTO_KEY) sealed datagrams are opened.
 *
 * PASSIVE: the socket binds the group port with SO_REUSEADDR and joins the group, and never
 * sends anything, so the nodes never see the listener as a member.
 *
 * Stops after N datagrams (--count) or S seconds (--seconds), whichever comes first; 10 s when
 * neither is given. Exit codes: 0 every datagram decoded; 1 some was malformed or did not open
 * with the key; 2 usage error, bad key, or the socket could not be opened.
 */
import { createSocket } from 'node:dgram';
import { datagramTree } from './tree';
import { formatTime } from './pcap';
import { Summarizer, summaryLines, type Reassembled } from './summary';
import type { Sealer } from '../codec/crypto';
import { decodeKeyOption, summaryPacket } from './unseal';
import { resolveTransportOptions } from '../transport/udp-options';

export const DEFAULT_LIVE_SECONDS = 10;

/** The record and line formatters of `mccache decode` (main.ts), shared so both print alike. */
export interface LiveFormat {
  jsonRecord(bytes: Uint8Array, index: number, sealer?: Sealer): Record<string, unknown>;
  reassembledRecord(r: Reassembled): Record<string, unknown>;
  reassembledLine(r: Reassembled): string;
}

export interface LiveOptions {
  env?: Readonly<Record<string, string | undefined>>;
  /** Called once the socket has joined the group. */
  onListening?: (group: string, port: number) => void;
  /** Stops listening early (as if the count or time were reached). */
  signal?: AbortSignal;
}

export async function decodeLive(args: string[], out: (s: string) => void, fmt: LiveFormat, opts: LiveOptions = {}): Promise<number> {
  let json = false;
  let key: string | undefined;
  let count: number | undefined;
  let seconds: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--live') continue;
    if (a === '--json') json = true;
    else if (a === '--key') {
      key = args[++i];
      if (key === undefined) {
        out('mccache decode: --key needs a value: the base64 of 32 bytes, as in MCCACHE_CRYPTO_KEY');
        return 2;
      }
    } else if (a === '--count' || a === '--seconds') {
      const v = args[++i];
      const n = v !== undefined && /^[0-9]{1,9}(\.[0-9]+)?$/.test(v) ? Number(v) : NaN;
      if (a === '--count' ? !(Number.isInteger(n) && n >= 1) : !(n > 0 && n <= 86_400)) {
        out(`mccache decode: ${a} needs ${a === '--count' ? 'a whole number >= 1' : 'a number of seconds in (0, 86400]'}`);
        return 2;
      }
      if (a === '--count') count = n;
      else seconds = n;
    } else {
      out(`mccache decode --live: unknown argument ${JSON.stringify(a)}\nusage: mccache decode --live [--json] [--count N] [--seconds S] [--key KEY]`);
      return 2;
    }
  }
  if (count === undefined && seconds === undefined) seconds = DEFAULT_LIVE_SECONDS;
  const keyed = decodeKeyOption(key, opts.env ?? process.env, json, out);
  if (keyed === undefined) return 2;
  const { sealer } = keyed;
  let o;
  try {
    o = resolveTransportOptions({}, opts.env ?? process.env);
  } catch (err) {
    out(json ? JSON.stringify({ type: 'error', code: 'MCCACHE_ERR_INVALID_OPTION', message: (err as Error).message })
      : `mccache decode --live: ${(err as Error).message}`);
    return 2;
  }
  const destination = `${o.group}:${o.port}`;
  const summarizer = new Summarizer();
  let shown = 0;
  let bad = 0;
  const socket = createSocket({ type: 'udp4', reuseAddr: true });
  return await new Promise<number>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    let finished = false;
    const finish = (code?: number): void => {
      if (finished) return;
      finished = true;
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      socket.removeAllListeners('message');
      socket.close();
      if (code !== undefined) return resolve(code);
      const summaries = summarizer.summaries();
      if (json) {
        for (const s of summaries) out(JSON.stringify({ type: 'summary', ...s }));
      } else {
        out('');
        const unopened = summaries.reduce((n, x) => n + x.notOpened, 0);
        out(`${shown} UDP datagram(s) on ${destination}, ${bad - unopened} malformed`
          + `${sealer !== undefined ? `, ${unopened} not opened with the key` : ''}, ${summaries.length} sender(s)`);
        for (const s of summaries) out(summaryLines(s).join('\n'));
      }
      resolve(bad > 0 ? 1 : 0);
    };
    const onAbort = (): void => finish();
    socket.on('error', (err) => {
      out(json ? JSON.stringify({ type: 'error', code: 'MCCACHE_ERR_SOCKET', message: err.message })
        : `mccache decode --live: ${destination}: ${err.message}`);
      finish(2);
    });
    socket.on('message', (payload, rinfo) => {
      if (finished) return;
      shown++;
      const nowMs = Date.now();
      const secs = Math.floor(nowMs / 1000);
      const time = formatTime(secs, (nowMs - secs * 1000) * 1e6);
      const source = `${rinfo.address}:${rinfo.port}`;
      const bytes = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
      const s = summaryPacket(bytes, sealer);
      const done: Reassembled | undefined = s && summarizer.add(s.packet, source, nowMs, s.opened);
      if (json) {
        const { index: _index, ...rec } = fmt.jsonRecord(bytes, 0, sealer);
        if (rec['ok'] !== true) bad++;
        const extra = done ? { reassembled: fmt.reassembledRecord(done) } : {};
        out(JSON.stringify({ type: 'datagram', packet: shown, time, source, destination, ...rec, ...extra }));
      } else {
        const t = datagramTree(bytes, sealer);
        if (!t.ok) bad++;
        out(`packet ${shown}  ${time}  ${source} -> ${destination}`);
        out(t.lines.join('\n'));
        if (done) out(fmt.reassembledLine(done));
      }
      if (count !== undefined && shown >= count) finish();
    });
    if (opts.signal?.aborted) return finish();
    opts.signal?.addEventListener('abort', onAbort);
    // Windows cannot bind a multicast address.
    socket.bind({ port: o.port, ...(process.platform !== 'win32' && { address: o.group }) }, () => {
      if (finished) return;
      try {
        socket.addMembership(o.group, o.interfaceAddress);
      } catch (err) {
        socket.emit('error', err);
        return;
      }
      if (seconds !== undefined) timer = setTimeout(() => finish(), seconds * 1000);
      opts.onListening?.(o.group, o.port);
    });
  });
}
