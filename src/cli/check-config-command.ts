import { Command } from 'commander';
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';

// `skiff check-config` (k3s check-config): what this host lacks to run skiff. Each check is required
// (exit 1 when it fails) or advisory (a warning). Kernel features are tried, not read from a kernel
// config: a throwaway network namespace gets a bridge, a veth pair and a VXLAN device.

export interface CheckResult { name: string; ok: boolean; required: boolean; detail: string }

const CNI_DIRS = ['/usr/lib/cni', '/opt/cni/bin'];
const CNI_PLUGINS = ['bridge', 'host-local', 'loopback', 'portmap'];

function which(bin: string): string | undefined {
  for (const d of [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin']) {
    const p = join(d, bin);
    try { accessSync(p, constants.X_OK); return p; } catch { /* next */ }
  }
  return undefined;
}

function read(path: string): string | undefined {
  try { return readFileSync(path, 'utf8'); } catch { return undefined; }
}

/** cgroup v2 (the unified hierarchy's controllers) or v1 (enabled hierarchies in /proc/cgroups). */
export function cgroupChecks(): CheckResult[] {
  const needed = ['cpu', 'memory', 'pids'];
  const v2 = read('/sys/fs/cgroup/cgroup.controllers');
  if (v2 !== undefined) {
    const have = v2.trim().split(/\s+/);
    const missing = needed.filter((c) => !have.includes(c));
    return [{ name: 'cgroup v2 controllers', required: true, ok: missing.length === 0, detail: missing.length ? `missing ${missing.join(', ')}` : have.join(' ') }];
  }
  const table = read('/proc/cgroups');
  if (!table) return [{ name: 'cgroups', required: true, ok: false, detail: 'neither /sys/fs/cgroup/cgroup.controllers nor /proc/cgroups' }];
  const enabled = table.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(/\s+/)).filter((f) => f[3] === '1').map((f) => f[0]!);
  const missing = [...needed, 'cpuacct', 'devices', 'freezer'].filter((c) => !enabled.includes(c));
  return [{ name: 'cgroup v1 hierarchies', required: true, ok: missing.length === 0, detail: missing.length ? `missing ${missing.join(', ')}` : enabled.join(' ') }];
}

/** Bridge, veth and VXLAN links created (and dropped with the namespace) in a throwaway netns. */
export function linkChecks(): CheckResult[] {
  const kinds: [string, string[]][] = [
    ['bridge', ['type', 'bridge']], ['veth', ['type', 'veth', 'peer', 'name', 'chk-veth1']], ['vxlan', ['type', 'vxlan', 'id', '42', 'dstport', '8472', 'nolearning']],
  ];
  if (process.getuid?.() !== 0) return kinds.map(([k]) => ({ name: `kernel: ${k} links`, required: false, ok: false, detail: 'not tried (needs root)' }));
  if (!which('ip')) return kinds.map(([k]) => ({ name: `kernel: ${k} links`, required: true, ok: false, detail: 'not tried: no `ip` (iproute2)' }));
  const ns = `skiff-check-${process.pid}`;
  const add = spawnSync('ip', ['netns', 'add', ns], { encoding: 'utf8' });
  if (add.status !== 0) return kinds.map(([k]) => ({ name: `kernel: ${k} links`, required: true, ok: false, detail: `no network namespace: ${add.stderr.trim()}` }));
  try {
    return kinds.map(([k, args]) => {
      const r = spawnSync('ip', ['-n', ns, 'link', 'add', `chk-${k}`, ...args], { encoding: 'utf8' });
      return { name: `kernel: ${k} links`, required: true, ok: r.status === 0, detail: r.status === 0 ? 'created and removed a test link' : r.stderr.trim() };
    });
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, () => s.close(() => resolve(true)));
  });
}

export async function runChecks(o: { ports: number[] }): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const major = Number(process.versions.node.split('.')[0]);
  out.push({ name: 'Node.js >= 20', required: true, ok: major >= 20, detail: process.version });
  out.push(...cgroupChecks());
  const fs = read('/proc/filesystems') ?? '';
  out.push({ name: 'kernel: overlay filesystem', required: true, ok: /\toverlay\n/.test(fs), detail: /\toverlay\n/.test(fs) ? 'in /proc/filesystems' : 'not in /proc/filesystems (containerd\'s snapshotter needs it)' });
  out.push(...linkChecks());
  const fwd = read('/proc/sys/net/ipv4/ip_forward')?.trim();
  out.push({ name: 'kernel: net.ipv4.ip_forward', required: false, ok: fwd === '1', detail: fwd === '1' ? 'on' : 'off (the agent turns it on at start)' });
  const brnf = existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables');
  out.push({ name: 'kernel: br_netfilter', required: false, ok: brnf, detail: brnf ? 'loaded' : 'not loaded (modprobe br_netfilter): Service traffic between pods on one bridge bypasses iptables' });
  for (const [bin, required, why] of [
    ['nft', true, 'the service proxy (nftables)'], ['iptables', true, 'pod outbound NAT'], ['ip', true, 'network setup (iproute2)'],
    ['containerd', true, 'the container runtime'], ['runc', true, 'the OCI runtime'], ['conntrack', false, 'stale UDP conntrack cleanup'],
    ['mount', true, 'volumes'], ['kubectl', false, '`skiff kubectl`'],
  ] as const) {
    const p = which(bin);
    out.push({ name: `binary: ${bin}`, required, ok: !!p, detail: p ?? `missing (${why})` });
  }
  const cniDir = CNI_DIRS.find((d) => existsSync(join(d, 'bridge')));
  const missingCni = cniDir ? CNI_PLUGINS.filter((p) => !existsSync(join(cniDir, p))) : CNI_PLUGINS;
  out.push({ name: 'CNI plugins', required: true, ok: missingCni.length === 0, detail: missingCni.length ? `missing ${missingCni.join(', ')} in ${CNI_DIRS.join(' or ')} (containernetworking-plugins)` : cniDir! });
  for (const port of o.ports) {
    const free = await portFree(port);
    out.push({ name: `port ${port}`, required: true, ok: free, detail: free ? 'free' : 'in use (another server running?)' });
  }
  return out;
}

export function checkConfigCommand(): Command {
  return new Command('check-config')
    .description('report what this host lacks to run skiff (cgroups, kernel features, binaries, ports); exit 1 if something required is missing')
    .option('--port <port...>', 'ports that must be free', ['6443', '10250'])
    .option('--json', 'print the results as JSON', false)
    .action(async (o: { port: string[]; json: boolean }) => {
      const results = await runChecks({ ports: o.port.map(Number) });
      const failed = results.filter((r) => !r.ok && r.required);
      if (o.json) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
      else {
        const tty = process.stdout.isTTY;
        const paint = (c: number, s: string) => tty ? `\x1b[${c}m${s}\x1b[0m` : s;
        for (const r of results) {
          const mark = r.ok ? paint(32, 'ok') : r.required ? paint(31, 'MISSING') : paint(33, 'warning');
          process.stdout.write(`- ${r.name}: ${mark} (${r.detail})\n`);
        }
        process.stdout.write(failed.length ? `\n${paint(31, 'STATUS: FAIL')} (${failed.length} required: ${failed.map((r) => r.name).join(', ')})\n` : `\n${paint(32, 'STATUS: pass')}\n`);
      }
      process.exitCode = failed.length ? 1 : 0;
    });
}
