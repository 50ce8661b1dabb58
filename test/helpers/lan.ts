// A test LAN: one Linux bridge standing for a switch, the server's address on it, and hosts that are
// network namespaces with a veth into the bridge and an address in the same /24. Nodes (hosts
// running `skiff agent`) are therefore on one L2 segment, as host-gw needs and as the nodes of a home
// lab or a shop floor are; `addHost` adds a machine that is not a node (a client, a DNS upstream).
// The bridge sits in a namespace of its own (the "switch"), joined to the root namespace by one veth
// that holds the server's address: with br_netfilter loaded, frames crossing a bridge in the root
// namespace would run through the root's iptables/nftables rules, which other tests and root-namespace
// agents change (a leftover pod MASQUERADE rule there rewrote LAN traffic between two nodes' pods).
// Everything has names unique per run (the process id) and goes away in
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
import { netnsAgentRequirements, prepareAgentDir, sh, startNetnsAgent, type NetnsAgentOptions, type NetnsHost } from './netns-host.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';

/** A machine on the LAN that is not a node. */
export interface LanHost {
  name: string;
  netns: string;
  /** The host's port on the switch (a veth end in the switch namespace). */
  hostIf: string;
  ip: string;
}

export interface LanOptions {
  /** MTU of the bridge and every host's link (default 1500). */
  mtu?: number;
}

export interface TestLan {
  /** The namespace of the switch (bridge `lan0`, one port per host, the uplink to the root namespace). */
  switchNetns: string;
  /** The root namespace's end of the uplink (holds serverIp). */
  uplink: string;
  /** The LAN's /24, e.g. `10.163.7.0/24`. */
  subnet: string;
  /** The root namespace's address on the LAN (on the uplink): the server listens there; hosts' default gateway. */
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
  const switchNetns = `sklan${id}-sw`;
  const uplink = `sklan${id}`;
  const serverIp = `${prefix}.1`;
  let links = 0;
  const inSwitch = (args: string[]) => sh(['ip', '-n', switchNetns, ...args]);

  const lan: TestLan = {
    switchNetns, uplink, subnet: `${prefix}.0/24`, serverIp, mtu, nodes: [], hosts: [],
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
    sh(['ip', 'netns', 'add', switchNetns]);
    inSwitch(['link', 'add', 'lan0', 'mtu', String(mtu), 'type', 'bridge']);
    inSwitch(['link', 'set', 'lan0', 'up']);
    sh(['ip', 'link', 'add', uplink, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'uplink', 'mtu', String(mtu), 'netns', switchNetns]);
    inSwitch(['link', 'set', 'uplink', 'master', 'lan0']);
    inSwitch(['link', 'set', 'uplink', 'up']);
    sh(['ip', 'addr', 'add', `${serverIp}/24`, 'dev', uplink]);
    sh(['ip', 'link', 'set', uplink, 'up']);
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
    h.hostIf = `port${i}`;
    if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`host name ${name}: lowercase letters, digits and dashes only`);
    sh(['ip', 'netns', 'add', h.netns]);
    inSwitch(['link', 'add', h.hostIf, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', String(mtu), 'netns', h.netns]);
    inSwitch(['link', 'set', h.hostIf, 'master', 'lan0']);
    inSwitch(['link', 'set', h.hostIf, 'up']);
    const inNs = (args: string[]) => sh(['ip', '-n', h.netns, ...args]);
    inNs(['addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
    inNs(['link', 'set', 'eth0', 'up']);
    inNs(['link', 'set', 'lo', 'up']);
    inNs(['route', 'add', 'default', 'via', serverIp]);
  }
}

/** The hosts' namespaces, then the switch's (its ports, bridge and the uplink's far end go with it). */
function removeNetworks(lan: TestLan): void {
  for (const h of [...lan.nodes, ...lan.hosts]) spawnSync('ip', ['netns', 'del', h.netns], { stdio: 'ignore' });
  spawnSync('ip', ['netns', 'del', lan.switchNetns], { stdio: 'ignore' });
  spawnSync('ip', ['link', 'del', lan.uplink], { stdio: 'ignore' });
}

// Last resort when the runner exits without hooks: nothing async is possible, so kill and unplug.
process.on('exit', () => {
  for (const lan of live) {
    for (const n of lan.nodes) n.proc?.kill('SIGKILL');
    removeNetworks(lan);
  }
});
