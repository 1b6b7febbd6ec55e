/**
 * Theory of operation
 * -------------------
 * A small LAN of Linux network namespaces for the multi-host tests (issue 7; DESIGN.md §8):
 *
 *   <prefix>sw   the "switch": a bridge br0 and one port p<i> per host. Nothing else: no
 *                address, no route, no link to any other namespace.
 *   <prefix>h<i> host i: eth0 (the other end of p<i>) with 10.<a>.<b>.<i>/24, lo, a route for
 *                224.0.0.0/4 on eth0 (so the default group works with no default route), IPv6
 *                off. No default route: nothing can be sent anywhere but the /24.
 *
 * Every interface is created inside our own namespaces (`ip -n` and veth peers created straight
 * into their namespace), so the root namespace's interfaces, routes and firewall are never
 * touched, and no packet can leave this machine.
 *
 * Faults, each a command inside our namespaces: cut/heal a host's switch port (`ip link set
 * p<i> down/up`: the host keeps its address and routes, as when a cable is pulled); random
 * kernel-level loss with an nftables table inside a host's namespace (`numgen random mod 100 <
 * N drop` on input); SIGKILL and SIGSTOP/SIGCONT of a node process.
 *
 * Naming and cleanup: every namespace of a lab is named mc<pid>x<n>-..., <pid> being the test
 * process. Teardown kills every process in the lab's namespaces and deletes them; it runs from
 * the scenario's `finally`, and also from process 'exit' and SIGINT/SIGTERM/SIGHUP handlers
 * (synchronously, then the signal's default action), registered while a lab exists. A lab first deletes stale namespaces named
 * mc<pid>x... whose <pid> is no longer running (left by a test process that was SIGKILLed),
 * and never touches a live run's.
 *
 * Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for `ip netns`), iproute2 and nftables.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import ts from 'typescript';

export const LAB_PORT = 4000;

/** Why these tests cannot run here, or undefined when they can (root). */
export function skipReason(): string | undefined {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return 'network namespaces need root (ip netns, nft); CI runs as root and runs these tests';
  }
  return undefined;
}

/** Throws, naming the Debian package, when `ip` or `nft` is missing (as root they must run). */
export function requireTools(): void {
  for (const [tool, pkg] of [['ip', 'iproute2'], ['nft', 'nftables']] as const) {
    try {
      execFileSync(tool, [tool === 'ip' ? '-V' : '--version'], { stdio: 'ignore' });
    } catch {
      throw new Error(`${tool} is missing: install the Debian package ${pkg} (make apt-deps installs it)`);
    }
  }
}

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

function tryRun(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 10_000 });
  } catch {
    /* best effort (cleanup) */
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function listNamespaces(): string[] {
  return run('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0]!).filter((n) => n !== '');
}

/** Kills every process in namespace `ns` and deletes it. Synchronous, never throws. */
function destroyNamespace(ns: string): void {
  let pids: string[] = [];
  try {
    pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 10_000 }).split('\n').filter((p) => /^\d+$/.test(p));
  } catch {
    /* gone already */
  }
  for (const p of pids) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {
      /* exited meanwhile */
    }
  }
  tryRun('ip', ['netns', 'del', ns]);
}

const STALE = /^mc(\d+)x\d+-/;

/** Deletes namespaces of earlier runs whose test process is gone. */
export function cleanStale(): string[] {
  const gone: string[] = [];
  for (const ns of listNamespaces()) {
    const m = STALE.exec(ns);
    if (m && Number(m[1]) !== process.pid && !isAlive(Number(m[1]))) {
      destroyNamespace(ns);
      gone.push(ns);
    }
  }
  return gone;
}

let labCount = 0;
/** What must be undone even if the process ends abruptly: live labs, the compiled fixture. */
const cleanups = new Set<() => void>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function onExit(): void {
  for (const fn of [...cleanups]) fn();
}
function onSignal(sig: NodeJS.Signals): void {
  onExit();
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  process.removeListener('exit', onExit);
  process.kill(process.pid, sig); // the default action now: end as the signal says
}
function guard(fn: () => void): void {
  if (cleanups.size === 0) {
    process.on('exit', onExit);
    for (const s of SIGNALS) process.on(s, onSignal);
  }
  cleanups.add(fn);
}
function unguard(fn: () => void): void {
  cleanups.delete(fn);
  if (cleanups.size === 0) {
    process.removeListener('exit', onExit);
    for (const s of SIGNALS) process.removeListener(s, onSignal);
  }
}

export interface LabHost {
  index: number;
  ns: string;
  address: string;
}

export class NetnsLab {
  readonly prefix: string;
  readonly switchNs: string;
  readonly subnet: string;
  readonly hosts: LabHost[] = [];
  readonly #children = new Set<ChildProcess>();
  #down = false;

  /** Builds the switch and `count` hosts (3..5 in the tests). Tears down what it built if a step fails. */
  constructor(count: number) {
    cleanStale();
    const n = ++labCount;
    this.prefix = `mc${process.pid}x${n}-`;
    this.switchNs = `${this.prefix}sw`;
    // A /24 of this lab's own (namespaces isolate it anyway; distinct numbers ease reading captures).
    this.subnet = `10.${200 + (process.pid % 50)}.${1 + (n % 250)}`;
    guard(this.#teardown);
    try {
      this.#build(count);
    } catch (err) {
      this.teardown();
      throw err;
    }
  }

  #build(count: number): void {
    const sw = this.switchNs;
    run('ip', ['netns', 'add', sw]);
    run('ip', ['-n', sw, 'link', 'add', 'br0', 'type', 'bridge']);
    run('ip', ['-n', sw, 'link', 'set', 'br0', 'up']);
    for (let i = 1; i <= count; i++) {
      const ns = `${this.prefix}h${i}`;
      const address = `${this.subnet}.${i}`;
      run('ip', ['netns', 'add', ns]);
      this.hosts.push({ index: i, ns, address });
      // The host's end is created straight into its namespace: nothing appears in the root one.
      run('ip', ['-n', sw, 'link', 'add', `p${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      run('ip', ['-n', sw, 'link', 'set', `p${i}`, 'master', 'br0', 'up']);
      tryRun('ip', ['netns', 'exec', ns, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6']);
      run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      run('ip', ['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
      run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      // Multicast has no default route to follow here: send and join on eth0.
      run('ip', ['-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0']);
    }
  }

  host(i: number): LabHost {
    const h = this.hosts[i - 1];
    if (!h) throw new Error(`no host ${i}`);
    return h;
  }

  /** Multicast groups host i's eth0 has joined (IGMP membership as the kernel holds it). */
  groups(i: number): string[] {
    return run('ip', ['-n', this.host(i).ns, 'maddr', 'show', 'dev', 'eth0'])
      .split('\n').map((l) => /^\s*inet\s+(\S+)/.exec(l)?.[1]).filter((g): g is string => g !== undefined);
  }

  /** Pulls host i's cable: its switch port goes down (the host keeps its address and routes). */
  cut(i: number): void {
    run('ip', ['-n', this.switchNs, 'link', 'set', `p${i}`, 'down']);
  }

  heal(i: number): void {
    run('ip', ['-n', this.switchNs, 'link', 'set', `p${i}`, 'up']);
  }

  /** Drops `percent` % of the datagrams host i receives, at random, in its kernel (nftables). */
  loss(i: number, percent: number): void {
    run('ip', [
      'netns', 'exec', this.host(i).ns, 'nft',
      `add table inet mccache_loss; add chain inet mccache_loss input { type filter hook input priority 0; policy accept; }; `
      + `add rule inet mccache_loss input udp dport ${LAB_PORT} numgen random mod 100 < ${percent} counter drop`,
    ]);
  }

  /** Datagrams host i's loss rule dropped so far (0 without a rule). */
  lossDropped(i: number): number {
    try {
      const out = run('ip', ['netns', 'exec', this.host(i).ns, 'nft', 'list', 'table', 'inet', 'mccache_loss']);
      return Number(/counter packets (\d+)/.exec(out)?.[1] ?? 0);
    } catch {
      return 0;
    }
  }

  noLoss(i: number): void {
    tryRun('ip', ['netns', 'exec', this.host(i).ns, 'nft', 'delete', 'table', 'inet', 'mccache_loss']);
  }

  /**
   * Starts `node <execArgv> <script>` in host i's namespace with an IPC channel (as fork does).
   * The child is killed at teardown if still running.
   */
  spawnNode(i: number, script: string, execArgv: string[], env: NodeJS.ProcessEnv): ChildProcess {
    if (this.#down) throw new Error('lab torn down');
    const child = spawn('ip', ['netns', 'exec', this.host(i).ns, process.execPath, ...execArgv, script], {
      env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.#children.add(child);
    child.on('exit', () => this.#children.delete(child));
    return child;
  }

  /** Kills every process of the lab and deletes its namespaces. Synchronous, idempotent, never throws. */
  teardown(): void {
    this.#teardown();
  }

  readonly #teardown = (): void => {
    if (this.#down) return;
    this.#down = true;
    for (const c of this.#children) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const h of this.hosts) destroyNamespace(h.ns);
    destroyNamespace(this.switchNs);
    // Hosts whose creation failed half-way are not in `hosts`; sweep by prefix.
    try {
      for (const ns of listNamespaces()) if (ns.startsWith(this.prefix)) destroyNamespace(ns);
    } catch {
      /* ip itself failed; nothing more to do */
    }
    unguard(this.#teardown);
  };
}

const ROOT = join(__dirname, '..', '..');
const CACHE_DIR = join(ROOT, 'node_modules', '.cache');
let compiled: string | undefined;

/**
 * conformance/netns/netns-node.ts and the runtime, transpiled once per test process (TypeScript's
 * transpileModule, what ts-node's transpile-only mode does again in every process) into
 * node_modules/.cache/mccache-netns-<pid>/, where packages resolve as from the repository and
 * generated/ is a link to the real one. A node process then starts in a fraction of a second
 * instead of about 1.5 s of CPU: there are some 40 starts on 2 cores. Removed at exit; folders
 * of test processes that are gone are removed first. Returns the fixture's .js path.
 */
export function compiledFixture(): string {
  if (compiled !== undefined) return compiled;
  mkdirSync(CACHE_DIR, { recursive: true });
  for (const d of readdirSync(CACHE_DIR)) {
    const m = /^mccache-netns-(\d+)$/.exec(d);
    if (m && Number(m[1]) !== process.pid && !isAlive(Number(m[1]))) rmSync(join(CACHE_DIR, d), { recursive: true, force: true });
  }
  const out = join(CACHE_DIR, `mccache-netns-${process.pid}`);
  rmSync(out, { recursive: true, force: true });
  guard(() => rmSync(out, { recursive: true, force: true }));
  const files = [join(ROOT, 'conformance', 'fixtures', 'child-node.ts'), join(__dirname, 'netns-node.ts')];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) files.push(join(dir, e.name));
    }
  };
  walk(join(ROOT, 'runtime'));
  const compilerOptions: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, esModuleInterop: true, resolveJsonModule: true,
  };
  for (const f of files) {
    const js = ts.transpileModule(readFileSync(f, 'utf8'), { compilerOptions, fileName: f }).outputText;
    const to = join(out, relative(ROOT, f)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(to), { recursive: true });
    writeFileSync(to, js);
  }
  symlinkSync(join(ROOT, 'generated'), join(out, 'generated'), 'dir');
  compiled = join(out, 'conformance', 'netns', 'netns-node.js');
  return compiled;
}
