/**
 * Makes conformance/cli/captures/lo.pcap, the real capture the README's "Debugging with the
 * decoder" decodes (and conformance/cli/readme-decode.test.ts checks): tcpdump records the
 * loopback interface while two McCache processes (the public API, with the README's demo
 * crypto key) on a host-local group of their own (TTL 0 on 127.0.0.1: no packet leaves the
 * machine) start, write and end:
 *
 *   reader  getCache('users'), waits (10 s at most) for user:42 to arrive, then shutdown()
 *   writer  getCache('users'), waits for the reader, users.set('user:42', 'Ada Lovelace'), and
 *           in a later turn of the event loop (so each is its own PUT, not one BAT),
 *           users.set('user:43', { name: 'Grace Hopper', born: 1906 }), then shutdown()
 *
 * Run as root, with tcpdump installed, from the repository:
 *   TS_NODE_TRANSPILE_ONLY=1 TS_NODE_PROJECT=tsconfig.test.json \
 *     node -r ts-node/register conformance/cli/readme-capture.ts [OUT.pcap]
 * It prints the tcpdump command and the group it used. The group and port are random, so
 * every run differs; the README shows one run's capture, which is committed.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readCapture } from '../../runtime/cli/pcap';
import { getCache, getLocalMetrics, shutdown } from '../../runtime/index';
import { hostLocalEnv, privateGroup, runScript } from '../cluster/cluster-processes';

/** The README's demo key (bytes 0..31): published, so never use it for anything real. */
export const README_KEY = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';
export const README_CAPTURE = path.join(__dirname, 'captures', 'lo.pcap');

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

async function reader(): Promise<number> {
  const users = getCache<string>('users');
  const ok = await until(() => users.has('user:42') && users.has('user:43'), 10_000);
  await shutdown();
  return ok ? 0 : 1;
}

async function writer(): Promise<number> {
  const users = getCache<unknown>('users');
  const ok = await until(() => (getLocalMetrics()?.members.length ?? 0) >= 1, 10_000);
  if (ok) {
    users.set('user:42', 'Ada Lovelace');
    await new Promise((r) => setTimeout(r, 20));
    users.set('user:43', { name: 'Grace Hopper', born: 1906 });
  }
  await shutdown();
  return ok ? 0 : 1;
}

async function capture(out: string): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root: tcpdump needs it');
  const { group, port } = privateGroup();
  const args = ['-i', 'lo', '-n', '-U', '--immediate-mode', '-w', out, 'udp', 'port', String(port)];
  console.log(`tcpdump ${args.join(' ')}    (group ${group}:${port}, TTL 0)`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const tcpdump = spawn('tcpdump', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  tcpdump.stderr.on('data', (b: Buffer) => { err += b.toString(); });
  if (!await until(() => err.includes('listening on lo'), 10_000)) throw new Error(`tcpdump did not start: ${err}`);
  const env = hostLocalEnv(group, port, { MCCACHE_CRYPTO_KEY: README_KEY });
  const me = __filename;
  const read = runScript(me, env, 20_000, ['reader']);
  await new Promise((r) => setTimeout(r, 1500)); // the reader is up first (ts-node takes about a second)
  const write = await runScript(me, env, 20_000, ['writer']);
  const got = await read;
  // Until both LEAVEs (op 0x41) are in the file: tcpdump writes what it has read, not yet all.
  const leaves = (): number => {
    try {
      return readCapture(fs.readFileSync(out)).datagrams.filter((d) => d.payload[3] === 0x41).length;
    } catch {
      return 0;
    }
  };
  if (!await until(() => leaves() >= 2, 10_000)) console.log(`only ${leaves()} LEAVE datagram(s) captured`);
  const exited = new Promise((r) => tcpdump.once('exit', r));
  tcpdump.kill('SIGINT');
  await exited;
  if (write.code !== 0 || got.code !== 0) throw new Error(`writer exit ${write.code}, reader exit ${got.code}: ${write.stderr}${got.stderr}`);
  console.log(`wrote ${out} (${fs.statSync(out).size} bytes); tcpdump: ${err.trim().split('\n').slice(-3).join('; ')}`);
}

if (require.main === module) {
  const role = process.argv[2];
  const run = role === 'reader' ? reader() : role === 'writer' ? writer() : capture(role ?? README_CAPTURE).then(() => 0);
  run.then((code) => { process.exitCode = code; }, (e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
