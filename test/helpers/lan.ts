// A test LAN: one Linux bridge in the root network namespace standing for a switch, the server's
// address on it, and hosts that are network namespaces with a veth into the bridge and an address in
// the same /24. Nodes (hosts running `skiff agent`) are therefore on one L2 segment, as host-gw needs
// and as the nodes of a home lab or a shop floor are; `addHost` adds a machine that is not a node
// (a client, a DNS upstream). Everything has names unique per run (the process id) and goes away in
// `destroy()`, which the caller registers with node:test's `after` (so it runs even when a test
// failed); as a last resort, process exit kills the agents and unplugs everything.
//
//   const lan = createLan({ mtu: 1400 });
//   const server = await startServer({ args: lan.serverArgs() });
//   const a = lan.addNode('node-a');               // a NetnsHost (test/helpers/netns-host.ts)
//   lan.startAgent(a, server, token, { args: ['--flannel-iface', 'eth0'] });
//   const client = lan.addHost('client');
//   lan.exec(client, ['curl', ...]);
//   after(() => lan.destroy());
import { spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { netnsAgentRequirements, prepareAgentDir, removeHostNetwork, sh, startNetnsAgent, type NetnsAgentOptions, type NetnsHost } from './netns-host.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';

/** A machine on the LAN that is not a node. */
export interface LanHost {
  name: string;
  netns: string;
  /** The veth end in the root namespace, enslaved to the bridge. */
  hostIf: string;
  ip: string;
}

export interface LanOptions {
  /** MTU of the bridge and every host's link (default 1500). */
  mtu?: number;
}

export interface TestLan {
  bridge: string;
  /** The LAN's /24, e.g. `10.163.7.0/24`. */
  subnet: string;
  /** The root namespace's address on the bridge: the server listens there, nodes' default gateway. */
  serverIp: string;
  mtu: number;
  nodes: NetnsHost[];
  hosts: LanHost[];
  /** Flags a `skiff server` on this LAN needs (listen on all addresses, certificate for serverIp). */
  serverArgs(): string[];
  /** A node host: namespace, link, address, and an agent data dir holding the busybox test image. */
  addNode(name: string): NetnsHost;
  /** A host that is not a node. */
  addHost(name: string): LanHost;
  /** Starts `skiff agent` on `node` against `server` (see startNetnsAgent). */
  startAgent(node: NetnsHost, server: { port: number }, token: string, o?: NetnsAgentOptions): ChildProcess;
  /** Stops the node's agent (SIGTERM, SIGKILL after 10 s); its containers keep running, as on a real node. */
  stopAgent(node: NetnsHost): Promise<void>;
  /**
   * Runs a command in a host's network namespace only (`nsenter --net`, which keeps the cgroup mounts
   * containerd needs; `/sys/class/net` then still lists the root namespace's devices: ask `ip`).
   */
  exec(host: { netns: string }, cmd: string[], o?: { input?: string; timeoutMs?: number }): SpawnSyncReturns<string>;
  /** Kills agents, removes their runtimes (containerd, mounts, data dirs), namespaces, links and the bridge. */
  destroy(): Promise<void>;
}

/** What a LAN test needs of this machine (empty when all is there). */
export function lanRequirements(): string[] {
  return netnsAgentRequirements();
}

const live = new Set<TestLan>();

/** A /24 under 10.160.0.0/12 that no route of the root namespace covers, starting from one derived from the pid. */
function freeSubnet(): string {
  const used = (JSON.parse(sh(['ip', '-j', '-4', 'route', 'show', 'table', 'all'])) as { dst?: string }[]).map((r) => r.dst ?? '');
  for (let i = 0; i < 4000; i++) {
    const n = (process.pid * 7 + i) % 4000;
    const prefix = `10.${160 + Math.floor(n / 250)}.${(n % 250) + 1}`;
    if (!used.some((d) => d.startsWith(`${prefix}.`))) return prefix;
  }
  throw new Error('no free /24 under 10.160.0.0/12 for a test LAN');
}

export function createLan(o: LanOptions = {}): TestLan {
  const id = process.pid;
  const mtu = o.mtu ?? 1500;
  const prefix = freeSubnet();
  const bridge = `sklan${id}`;
  const serverIp = `${prefix}.1`;
  let links = 0;

  sh(['ip', 'link', 'add', bridge, 'type', 'bridge']);
  const lan: TestLan = {
    bridge, subnet: `${prefix}.0/24`, serverIp, mtu, nodes: [], hosts: [],
    serverArgs: () => ['--bind-address', '0.0.0.0', '--tls-san', serverIp],
    addNode(name) {
      const h: NetnsHost = { name, netns: '', hostIf: '', hostIp: serverIp, ip: `${prefix}.${11 + lan.nodes.length}`, dir: '' };
      lan.nodes.push(h);
      plug(h, name);
      prepareAgentDir(h, 'skiff-lan-');
      return h;
    },
    addHost(name) {
      const h: LanHost = { name, netns: '', hostIf: '', ip: `${prefix}.${101 + lan.hosts.length}` };
      lan.hosts.push(h);
      plug(h, name);
      return h;
    },
    startAgent: (node, server, token, opts) => startNetnsAgent(node, server, token, opts),
    async stopAgent(node) {
      const p = node.proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
    exec: (host, cmd, opts = {}) => spawnSync('nsenter', [`--net=/var/run/netns/${host.netns}`, ...cmd],
      { encoding: 'utf8', input: opts.input, timeout: opts.timeoutMs ?? 30_000 }),
    async destroy() {
      if (!live.delete(lan)) return;
      for (const n of lan.nodes) n.proc?.kill('SIGKILL');
      for (const n of lan.nodes) if (n.dir) await teardownRuntime({ dataDir: n.dir, removeDataDir: true }).catch(() => undefined);
      removeNetworks(lan);
    },
  };
  live.add(lan);
  try {
    sh(['ip', 'link', 'set', bridge, 'mtu', String(mtu)]);
    sh(['ip', 'addr', 'add', `${serverIp}/24`, 'dev', bridge]);
    sh(['ip', 'link', 'set', bridge, 'up']);
  } catch (err) {
    removeNetworks(lan);
    live.delete(lan);
    throw err;
  }
  return lan;

  /** A namespace with `eth0` in the bridge, the next address, a default route via the server's side. */
  function plug(h: { netns: string; hostIf: string; ip: string }, name: string): void {
    const i = links++;
    h.netns = `sklan${id}-${i}`;
    h.hostIf = `skl${id}h${i}`;
    if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`host name ${name}: lowercase letters, digits and dashes only`);
    sh(['ip', 'netns', 'add', h.netns]);
    sh(['ip', 'link', 'add', h.hostIf, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', String(mtu), 'netns', h.netns]);
    sh(['ip', 'link', 'set', h.hostIf, 'master', bridge]);
    sh(['ip', 'link', 'set', h.hostIf, 'up']);
    const inNs = (args: string[]) => sh(['ip', '-n', h.netns, ...args]);
    inNs(['addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
    inNs(['link', 'set', 'eth0', 'up']);
    inNs(['link', 'set', 'lo', 'up']);
    inNs(['route', 'add', 'default', 'via', serverIp]);
  }
}

function removeNetworks(lan: TestLan): void {
  for (const h of [...lan.nodes, ...lan.hosts]) removeHostNetwork({ ...h, hostIp: lan.serverIp, name: h.name, dir: '' } as NetnsHost);
  spawnSync('ip', ['link', 'del', lan.bridge], { stdio: 'ignore' });
}

// Last resort when the runner exits without hooks: nothing async is possible, so kill and unplug.
process.on('exit', () => {
  for (const lan of live) {
    for (const n of lan.nodes) n.proc?.kill('SIGKILL');
    removeNetworks(lan);
  }
});
