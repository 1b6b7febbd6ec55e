/**
 * `mccache netcheck HOST` (runtime/cli/netcheck.ts): HOST validation, tracepath and ping
 * parsing with fake tools, and real probes of 127.0.0.1 only (never another host): with
 * whatever tool this machine has (exit 3 and the install message when it has none), and with
 * tracepath itself (Debian iputils-tracepath, which `make test` installs), whose figures for
 * the loopback interface are known.
 */
import * as fs from 'node:fs';
import { expect } from 'chai';
import { main } from '../../runtime/cli/main';
import { NETCHECK_EXIT, isValidHost, netcheckCommand, parseTracepath, systemDeps, type NetcheckDeps } from '../../runtime/cli/netcheck';

const run = (args: string[], deps?: NetcheckDeps): { code: number; text: string } => {
  const lines: string[] = [];
  const code = deps ? netcheckCommand(args, (s) => lines.push(s), deps) : main(['netcheck', ...args], (s) => lines.push(s));
  return { code, text: lines.join('\n') };
};

describe('cli/netcheck', function () {
  this.timeout(15_000);

  it('exits 2 on a bad or missing HOST without running any tool', () => {
    const never: NetcheckDeps = { which: () => { throw new Error('no tool lookup expected'); }, run: () => { throw new Error('no run expected'); } };
    for (const bad of ['', '-c', '--foo', '1.2.3.999', '999.1.1.1', 'a b', 'host;rm', 'x..y', '$(id)', `${'a'.repeat(64)}.com`]) {
      expect(run([bad], never).code, bad).to.equal(NETCHECK_EXIT.USAGE);
    }
    expect(run([], never).code).to.equal(2);
    expect(run(['127.0.0.1', 'extra'], never).code).to.equal(2);
    expect(main(['netcheck', 'bad host'], () => {})).to.equal(2);
    for (const good of ['127.0.0.1', 'localhost', 'db-1.example.com', 'example.com.']) expect(isValidHost(good), good).to.equal(true);
  });

  it('parses tracepath and caps the suggested packet MTU at 65507', () => {
    expect(parseTracepath(' 1:  127.0.0.1   0.057ms reached\n     Resume: pmtu 65535 hops 1 back 1 \n')).to.deep.equal({ mtu: 65535, hops: 1 });
    expect(parseTracepath('     Resume: pmtu 1500 \n')).to.deep.equal({ mtu: 1500 });
    const fake = (text: string): NetcheckDeps => ({ which: (c) => (c === 'tracepath' ? '/x/tracepath' : undefined), run: () => ({ status: 0, stdout: text }) });
    let r = run(['127.0.0.1'], fake('     Resume: pmtu 65535 hops 1 back 1\n'));
    expect(r.code).to.equal(0);
    expect(r.text).to.include('MCCACHE_PACKET_MTU=65507').and.include('MCCACHE_MULTICAST_HOPS=1');
    r = run(['10.0.0.9'], fake('     Resume: pmtu 1500 hops 3 back 3\n'));
    expect(r.text).to.include('MCCACHE_PACKET_MTU=1472').and.include('MCCACHE_MULTICAST_HOPS=3');
    r = run(['10.0.0.9'], fake('     Resume: pmtu 1500 \n'));
    expect(r.code).to.equal(NETCHECK_EXIT.PROBE_FAILED);
    expect(r.text).to.include('MCCACHE_PACKET_MTU=1472').and.not.include('MCCACHE_MULTICAST_HOPS=');
  });

  it('falls back to a ping binary search for the MTU and TTL-limited pings for the hops', () => {
    const calls: string[][] = [];
    const deps: NetcheckDeps = {
      which: (c) => (c === 'ping' ? '/x/ping' : undefined),
      run: (_f, args) => {
        calls.push(args);
        const s = args.indexOf('-s');
        const t = args.indexOf('-t');
        if (s >= 0) return { status: Number(args[s + 1]) <= 1472 ? 0 : 1, stdout: '' };
        if (t >= 0) return { status: Number(args[t + 1]) >= 4 ? 0 : 1, stdout: '' };
        return { status: 0, stdout: '' };
      },
    };
    const r = run(['10.1.2.3'], deps);
    expect(r.code).to.equal(0);
    expect(r.text).to.include('path MTU 1500').and.include('MCCACHE_PACKET_MTU=1472').and.include('MCCACHE_MULTICAST_HOPS=4');
    expect(calls.every((a) => a[a.length - 1] === '10.1.2.3')).to.equal(true);
    expect(calls.length).to.be.lessThan(30);
  });

  it('says which package to install when neither tool exists (exit 3)', () => {
    const r = run(['127.0.0.1'], { which: () => undefined, run: () => { throw new Error('no run expected'); } });
    expect(r.code).to.equal(NETCHECK_EXIT.NO_TOOL);
    expect(r.text).to.match(/install/).and.include('iputils-tracepath');
  });

  it('probes 127.0.0.1 with the tool this machine has (loopback: 0 or 1 hop, packet MTU 65507)', () => {
    const r = run(['127.0.0.1']);
    if (!systemDeps.which('tracepath') && !systemDeps.which('ping')) {
      expect(r.code).to.equal(NETCHECK_EXIT.NO_TOOL);
      expect(r.text).to.include('iputils-tracepath');
      return;
    }
    expect(r.code, r.text).to.equal(0);
    expect(r.text).to.include('MCCACHE_PACKET_MTU=65507');
    expect(r.text).to.match(/MCCACHE_MULTICAST_HOPS=[01]\b/);
  });

  it('with tracepath: 127.0.0.1 is 1 hop away and its path MTU is the loopback MTU capped at 65535', function () {
    if (!systemDeps.which('tracepath')) {
      console.log('      skipped: tracepath is not installed (make test apt-installs iputils-tracepath when run as root)');
      this.skip();
    }
    // lo's MTU is 65536 on Linux, but no IPv4 packet exceeds 65535 bytes (16-bit total length),
    // so tracepath reports pmtu 65535 there.
    const loMtu = Number(fs.readFileSync('/sys/class/net/lo/mtu', 'utf8').trim());
    expect(loMtu).to.equal(65536);
    const pathMtu = Math.min(loMtu, 65535);
    const r = run(['127.0.0.1']);
    expect(r.code, r.text).to.equal(NETCHECK_EXIT.OK);
    expect(r.text.split('\n')).to.deep.equal([
      `netcheck 127.0.0.1 (tracepath -n): path MTU ${pathMtu}, hops 1`,
      'MCCACHE_PACKET_MTU=65507', // 65535 - 28, the largest UDP payload over IPv4
      'MCCACHE_MULTICAST_HOPS=1',
    ]);
  });
});
