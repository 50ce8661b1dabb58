// A node agent as its own host: a network namespace joined to the server's side by a veth pair, an
// agent data dir with the busybox test image, and `skiff agent` started inside the namespace. Used by
// the end-to-end tests that cut, reboot or isolate hosts.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestServer } from './cluster.js';
import { writeBusyboxImage } from './images.js';

// Not imported from cluster.ts, whose node:test hooks would make a benchmark print TAP.
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface NetnsHost {
  /** The node name. */
  name: string;
  netns: string;
  /** The veth end on the server's side. */
  hostIf: string;
  /** The server's address on that link (the agent's default gateway). */
  hostIp: string;
  /** The host's own address (its node IP). */
  ip: string;
  /** The agent's data dir (set by `prepareAgentDir`). */
  dir: string;
  proc?: ChildProcess;
}

export function sh(cmd: string[], check = true): string {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8' });
  if (check && r.status !== 0) throw new Error(`${cmd.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** What a test running agents in network namespaces needs of this machine (empty when all is there). */
export function netnsAgentRequirements(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  for (const bin of ['/usr/bin/containerd', '/usr/sbin/runc', '/usr/lib/cni/bridge', '/bin/busybox', '/usr/bin/nsenter', '/usr/bin/curl']) if (!existsSync(bin)) missing.push(bin);
  if (spawnSync('ip', ['-V']).status !== 0) missing.push('iproute2 (ip)');
  return missing;
}

/** The host's network as after boot: its namespace, one link to the server's side, a default route. */
export function createHostNetwork(h: NetnsHost): void {
  sh(['ip', 'netns', 'add', h.netns]);
  sh(['ip', 'link', 'add', h.hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.netns]);
  sh(['ip', 'addr', 'add', `${h.hostIp}/24`, 'dev', h.hostIf]);
  sh(['ip', 'link', 'set', h.hostIf, 'up']);
  const inNs = (args: string[]) => sh(['ip', '-n', h.netns, ...args]);
  inNs(['addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
  inNs(['link', 'set', 'eth0', 'up']);
  inNs(['link', 'set', 'lo', 'up']);
  inNs(['route', 'add', 'default', 'via', h.hostIp]);
}

/** Everything in the namespace goes with it: the pod bridge, pod veths, iptables rules, the link. */
export function removeHostNetwork(h: NetnsHost): void {
  spawnSync('ip', ['netns', 'del', h.netns], { stdio: 'ignore' });
  spawnSync('ip', ['link', 'del', h.hostIf], { stdio: 'ignore' });
}

/** A fresh data dir (short: containerd's socket path must fit a unix socket address) with the test image. */
export function prepareAgentDir(h: NetnsHost, prefix: string): void {
  h.dir = mkdtempSync(`/tmp/${prefix}`);
  mkdirSync(join(h.dir, 'agent', 'images'), { recursive: true });
  writeBusyboxImage(join(h.dir, 'agent', 'images'), 'busybox.tar');
}

export interface NetnsAgentOptions {
  /** Extra `skiff agent` flags (e.g. `--flannel-iface`). */
  args?: string[];
}

/**
 * Starts `skiff agent` inside the host's namespace, logging to `<dir>/agent.log`. The agent runs the
 * service proxy (its nftables table is the namespace's own), unless the extra flags say otherwise.
 */
export function startNetnsAgent(h: NetnsHost, server: Pick<TestServer, 'port'>, token: string, extra: string[] | NetnsAgentOptions = []): ChildProcess {
  const extraArgs = Array.isArray(extra) ? extra : extra.args ?? [];
  const log = openSync(join(h.dir, 'agent.log'), 'a');
  try {
    // nsenter --net only: `ip netns exec` would remount /sys and hide the cgroup mounts containerd needs.
    h.proc = spawn('nsenter', [`--net=/var/run/netns/${h.netns}`, join(REPO_ROOT, 'bin', 'skiff'), 'agent',
      '--server', `https://${h.hostIp}:${server.port}`, '--token', token, '--data-dir', h.dir,
      '--node-name', h.name, '--node-ip', h.ip, ...extraArgs], { stdio: ['ignore', log, log], env: withoutProxyOptOut() });
    return h.proc;
  } finally { closeSync(log); }
}

/** The environment minus the root-namespace opt-out of the service proxy (cluster.ts). */
function withoutProxyOptOut(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.SKIFF_DISABLE_KUBE_PROXY;
  delete env.SKIFF_DISABLE_NETWORK_POLICY;
  delete env.SKIFF_INGRESS_HTTP_PORT;
  delete env.SKIFF_INGRESS_HTTPS_PORT;
  return env;
}

/** Polls `fn` until it returns something truthy; on timeout the error carries the hosts' agent log tails. */
export async function eventually<T>(fn: () => Promise<T | undefined | false>, what: string, ms: number, hosts: NetnsHost[]): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) {
      const tails = hosts.map((h) => {
        try { return `--- ${h.name} agent log\n${readFileSync(join(h.dir, 'agent.log'), 'utf8').split('\n').slice(-15).join('\n')}`; } catch { return ''; }
      });
      throw new Error(`timed out waiting for ${what}\n${tails.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
