// The agent's own containerd: where it keeps its files and the config.toml (version 2, containerd 1.6)
// it runs with. Persistent things (images, snapshots, container records, config, socket) live under
// the data dir; runtime state (tasks, shims' bundles, runc's state, pod netns and shm mounts) lives
// under /run, which is a tmpfs on real hosts, so a reboot clears it as it clears the processes it
// describes (k3s uses /run/k3s/containerd the same way). Both are per data dir, so an agent never
// collides with a system containerd or with another agent on the same host.
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';

export interface ContainerdPaths {
  /** `<dataDir>/agent/containerd` */
  dir: string;
  config: string;
  /** Images, snapshots, container metadata (persistent). */
  root: string;
  /** Runtime state of tasks, shims and runc, and the pods' netns mounts: `/run/skiff/containerd-<hash of the data dir>`. */
  state: string;
  /** The gRPC socket (also the CRI endpoint). Unix socket paths are limited to 107 bytes. */
  socket: string;
  log: string;
  /** Written for operators and teardown; the supervisor itself finds containerd through /proc. */
  pidFile: string;
}

/** Where every agent's runtime state goes (a tmpfs on real hosts). */
export const RUN_DIR = '/run/skiff';

export function containerdPaths(dataDir: string): ContainerdPaths {
  const dir = join(dataDir, 'agent', 'containerd');
  // The data dir's absolute path names the state dir: stable across restarts, distinct per agent.
  const id = createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 16);
  return {
    dir,
    config: join(dir, 'config.toml'),
    root: join(dir, 'root'),
    state: join(RUN_DIR, `containerd-${id}`),
    socket: join(dir, 'containerd.sock'),
    log: join(dir, 'containerd.log'),
    pidFile: join(dir, 'containerd.pid'),
  };
}

export interface ContainerdConfigOptions {
  paths: ContainerdPaths;
  /** The pod sandbox (pause) image; must be importable offline (see images.ts). */
  sandboxImage: string;
  cniBinDir: string;
  cniConfDir: string;
  /** A hosts.d-style directory of per-registry `hosts.toml` files (mirrors, auth, TLS); none by default. */
  registryConfigDir?: string;
  /** Address the CRI streaming server (exec/attach/port-forward URLs) binds to. */
  streamServerAddress?: string;
  /** OCI runtimes beside runc, each a CRI runtime handler a RuntimeClass can name (see installedRuntimes). */
  extraRuntimes?: OptionalRuntime[];
}

export interface OptionalRuntime {
  /** The handler name (RuntimeClass `handler`). */
  name: string;
  binary: string;
}

/** Runtimes skiff offers when their binary is installed (runc is always there and the default). */
export const OPTIONAL_RUNTIMES: readonly OptionalRuntime[] = [{ name: 'crun', binary: '/usr/bin/crun' }];

export function installedRuntimes(exists: (path: string) => boolean): OptionalRuntime[] {
  return OPTIONAL_RUNTIMES.filter((r) => exists(r.binary));
}

/**
 * Plugins this build of containerd registers but skiff never uses: snapshotters other than overlayfs
 * (aufs/btrfs/zfs/devmapper only log errors on a plain ext4/xfs host) and OpenTelemetry tracing.
 * Not the shim-v1 runtime (io.containerd.runtime.v1.linux), although CRI runs io.containerd.runc.v2:
 * containerd 1.6's tasks service, and so CRI, refuses to load without it.
 */
export const DISABLED_PLUGINS = [
  'io.containerd.snapshotter.v1.aufs',
  'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.snapshotter.v1.zfs',
  'io.containerd.tracing.processor.v1.otlp',
  'io.containerd.internal.v1.tracing',
];

const q = (s: string): string => JSON.stringify(s);   // a TOML basic string uses JSON's escapes

export function renderContainerdConfig(o: ContainerdConfigOptions): string {
  const cri = '[plugins."io.containerd.grpc.v1.cri"';
  return `# Written by skiff at every start; edits are overwritten.
version = 2
root = ${q(o.paths.root)}
state = ${q(o.paths.state)}
disabled_plugins = [${DISABLED_PLUGINS.map(q).join(', ')}]

[grpc]
  address = ${q(o.paths.socket)}

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(join(o.paths.root, 'opt'))}

${cri}]
  sandbox_image = ${q(o.sandboxImage)}
  # Some hosts (this one included) refuse negative oom_score_adj; CRI's default of -998 for sandboxes
  # then makes runc fail with "can't get final child's PID from pipe". Clamp to the current value.
  restrict_oom_score_adj = true
  stream_server_address = ${q(o.streamServerAddress ?? '127.0.0.1')}
  # 0: a free port, reported in the URLs Exec/Attach/PortForward return.
  stream_server_port = "0"
  enable_selinux = false
  # Pod network namespaces are mounted under our state dir, not the host's /var/run/netns: two agents
  # on one host never meet, and a reboot (or teardown) of the state dir removes them all.
  netns_mounts_under_state_dir = true

${cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

${cri}.containerd.runtimes.runc.options]
  # cgroupfs driver: skiff manages no systemd slices (and cgroup v1 hosts have no unified hierarchy).
  SystemdCgroup = false
  # runc's own state next to the tasks' (its default, /run/containerd/runc, is shared by every
  # containerd of the host), so that all an agent's runtime state is one directory.
  Root = ${q(join(o.paths.state, 'runc'))}

${(o.extraRuntimes ?? []).map((r) => `${cri}.containerd.runtimes.${r.name}]
  runtime_type = "io.containerd.runc.v2"

${cri}.containerd.runtimes.${r.name}.options]
  BinaryName = ${q(r.binary)}
  SystemdCgroup = false
  Root = ${q(join(o.paths.state, r.name))}

`).join('')}${cri}.cni]
  bin_dir = ${q(o.cniBinDir)}
  conf_dir = ${q(o.cniConfDir)}

${cri}.registry]
  config_path = ${q(o.registryConfigDir ?? '')}
`;
}
