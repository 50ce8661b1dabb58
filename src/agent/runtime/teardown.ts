// Removes every trace of an agent's runtime from the host, whatever state it was left in (like k3s's
// killall script): containers and their shims, the agent's containerd, and all mounts under the data
// dir and the runtime state dir (overlay rootfs, shm, pod netns, volumes). Used by `skiff killall` and
// by tests, which must leave nothing behind even when containerd is wedged or already gone.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { containerdPaths } from './containerd-config.js';
import { findContainerd } from './containerd.js';
import { removeOverlayDevice } from '../network/backends/vxlan.js';
import { removeHostGwRoutes } from '../network/backends/host-gw.js';
import { removePodMasqueradeIfOurs } from '../network/masquerade.js';
import { removeRecordedProxyTable } from '../network/proxy/cleanup.js';
import { removeRecordedPolicyTable } from '../network/policy/cleanup.js';

interface Proc { pid: number; ppid: number; argv: string[] }

function processes(): Proc[] {
  const out: Proc[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const status = readFileSync(`/proc/${name}/status`, 'utf8');
      const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      out.push({ pid: Number(name), ppid, argv: readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0') });
    } catch {
      // exited while we looked
    }
  }
  return out;
}

function kill(pid: number): void {
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
}

/** Shims serving containerd at `socket` (their argv carries `-address <socket>`). */
export function findShims(socket: string): number[] {
  return processes()
    .filter((p) => p.argv[0]?.includes('containerd-shim') && p.argv[p.argv.indexOf('-address') + 1] === socket)
    .map((p) => p.pid);
}

/** Mount points at or under `dir`, deepest first (mountinfo escapes blanks as octal). */
export function mountsUnder(dir: string): string[] {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((line) => line.split(' ')[4])
    .filter((m): m is string => m !== undefined)
    .map(unescape)
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

export interface TeardownOptions {
  dataDir: string;
  /** Cgroup parents pods were created under (cgroupfs driver), removed from every v1 hierarchy. */
  cgroupParents?: string[];
  /** Also delete the data dir itself, and the runtime state dir under /run. */
  removeDataDir?: boolean;
}

export async function teardownRuntime(o: TeardownOptions): Promise<void> {
  const paths = containerdPaths(o.dataDir);
  // containerd first, so it does not restart tasks or recreate anything while we work.
  const cd = findContainerd(paths.config);
  if (cd !== undefined) kill(cd);
  // Each container's processes are descendants of its shim (the shim is their subreaper); kill the
  // whole tree, or they would be reparented to init and live on.
  const procs = processes();
  const children = new Map<number, number[]>();
  for (const p of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid]);
  for (const shim of findShims(paths.socket)) {
    const tree: number[] = [];
    for (let queue = [shim]; queue.length;) {
      const pid = queue.pop()!;
      tree.push(pid);
      queue = queue.concat(children.get(pid) ?? []);
    }
    for (const pid of tree.reverse()) kill(pid);
  }
  for (const pid of [cd, ...findShims(paths.socket)]) {
    for (let i = 0; pid !== undefined && i < 100 && existsPid(pid); i++) await new Promise((r) => setTimeout(r, 20));
  }
  for (const m of [...mountsUnder(o.dataDir), ...mountsUnder(paths.state)]) {
    try {
      execFileSync('umount', [m], { stdio: 'ignore' });
    } catch {
      try { execFileSync('umount', ['-l', m], { stdio: 'ignore' }); } catch { /* already gone */ }
    }
  }
  for (const parent of o.cgroupParents ?? []) removeCgroups(parent);
  // The pod network's kernel state (overlay device, host-gw routes, NAT chain), where this data dir's
  // agent made it in this namespace (a host that goes down loses it too).
  removeOverlayDevice(o.dataDir);
  removeRecordedProxyTable(o.dataDir);
  removeRecordedPolicyTable(o.dataDir);
  removeHostGwRoutes(o.dataDir);
  removePodMasqueradeIfOurs(o.dataDir);
  if (o.removeDataDir) {
    rmSync(o.dataDir, { recursive: true, force: true });
    rmSync(paths.state, { recursive: true, force: true });
  }
}

function existsPid(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** rmdir the cgroup `parent` and everything below it in each v1 hierarchy (empty once processes are gone). */
function removeCgroups(parent: string): void {
  const root = '/sys/fs/cgroup';
  let hierarchies: string[];
  try {
    hierarchies = readdirSync(root);
  } catch {
    return;
  }
  const rmTree = (dir: string): void => {
    let entries: string[];
    try {
      entries = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      return;
    }
    for (const e of entries) rmTree(join(dir, e));
    try { rmdirSync(dir); } catch { /* busy or gone */ }
  };
  for (const h of hierarchies) rmTree(join(root, h, parent));
}
