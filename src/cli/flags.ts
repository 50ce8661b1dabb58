// Flag tables shared by the subcommands. Every flag has an environment twin `SKIFF_<FLAG>` (k3s habit:
// `K3S_URL` → `SKIFF_URL`), so systemd units and containers can configure skiff without arguments.
import { Option, type Command } from 'commander';

export function envName(flag: string): string {
  return 'SKIFF_' + flag.replace(/^--/, '').replace(/-/g, '_').toUpperCase();
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}

export interface FlagSpec {
  flags: string;            // commander syntax, e.g. '-t, --token <secret>'
  description: string;
  default?: string | boolean | string[];
  repeatable?: boolean;
  envOverride?: string;     // when the env twin is not the derived one (SKIFF_URL)
}

export function addFlags(cmd: Command, specs: FlagSpec[]): Command {
  for (const spec of specs) {
    const opt = new Option(spec.flags, spec.description);
    const long = spec.flags.match(/--[a-z0-9-]+/)![0];
    opt.env(spec.envOverride ?? envName(long));
    if (spec.repeatable) opt.argParser(collect).default([]);
    else if (spec.default !== undefined) opt.default(spec.default);
    cmd.addOption(opt);
  }
  return cmd;
}

export const COMMON_FLAGS: FlagSpec[] = [
  { flags: '-d, --data-dir <dir>', description: 'folder for state, certificates and images', default: '/var/lib/skiff' },
  { flags: '--log-level <level>', description: 'trace, debug, info, warn or error', default: 'info' },
  { flags: '--config <file>', description: 'YAML file of flag values, keys named as the flags (and <file>.d/*.yaml)', default: '/etc/skiff/config.yaml', envOverride: 'SKIFF_CONFIG_FILE' },
];

export const SERVER_FLAGS: FlagSpec[] = [
  { flags: '--bind-address <ip>', description: 'address the API server listens on', default: '0.0.0.0' },
  { flags: '--https-listen-port <port>', description: 'HTTPS port of the API server', default: '6443' },
  { flags: '--advertise-address <ip>', description: 'address agents and the kubeconfig use to reach this server' },
  { flags: '--tls-san <name>', description: 'extra hostname or IP for the serving certificate (repeatable)', repeatable: true },
  { flags: '-t, --token <secret>', description: 'shared secret used to join nodes (generated if absent)' },
  { flags: '--token-file <file>', description: 'file holding the token' },
  { flags: '-o, --write-kubeconfig <file>', description: 'where to write the admin kubeconfig', default: '/etc/skiff/skiff.yaml' },
  { flags: '--write-kubeconfig-mode <mode>', description: 'file mode of the kubeconfig (octal)', default: '0600' },
  { flags: '--cluster-cidr <cidr>', description: 'pod network', default: '10.42.0.0/16' },
  { flags: '--flannel-backend <backend>', description: 'pod network between nodes, for the whole cluster: vxlan, host-gw (nodes on one L2 segment, no encapsulation) or none (no CNI config: bring your own)', default: 'vxlan' },
  { flags: '--service-cidr <cidr>', description: 'service cluster IP range', default: '10.43.0.0/16' },
  { flags: '--service-node-port-range <range>', description: 'NodePort range', default: '30000-32767' },
  { flags: '--cluster-dns <ip>', description: 'cluster DNS service IP', default: '10.43.0.10' },
  { flags: '--cluster-domain <domain>', description: 'cluster domain', default: 'cluster.local' },
  { flags: '--disable-agent', description: 'run the control plane only, no embedded agent', default: false },
  { flags: '--datastore-endpoint <url>', description: 'datastore: sqlite (default, under --data-dir), postgres://user:pass@host:5432/db, mysql://user:pass@tcp(host:3306)/db, or an external etcd https://host:2379 (comma-separated members)' },
  { flags: '--datastore-cafile <file>', description: 'CA certificate that verifies the datastore (etcd, postgres, mysql over TLS)' },
  { flags: '--datastore-certfile <file>', description: 'client certificate for the datastore' },
  { flags: '--datastore-keyfile <file>', description: 'client key for the datastore' },
  { flags: '--cluster-init', description: 'run an embedded etcd (Debian\'s etcd binary, supervised by the server) and use it as the datastore; an SQLite datastore of this data dir is migrated into it', default: false },
  { flags: '-s, --server <url>', description: 'with embedded etcd: join the cluster of this server (https://first:6443, with --token) as a further etcd member', envOverride: 'SKIFF_URL' },
  { flags: '--etcd-client-port <port>', description: 'client port of the embedded etcd', default: '2379' },
  { flags: '--etcd-peer-port <port>', description: 'peer port of the embedded etcd', default: '2380' },
  { flags: '--event-ttl <duration>', description: 'how long Events are kept after their last write (as kube-apiserver)', default: '1h0m0s' },
  { flags: '--watch-cache-size <n>', description: 'events kept per resource for watch resume (default: the profile\'s, 10000; small: 1000)' },
  { flags: '--profile <name>', description: 'resource profile: small (1 GB boards: smaller V8 heap and watch cache), default, or auto (small below 2 GB of memory)', default: 'auto' },
  { flags: '--disable-scheduler', description: 'do not run the scheduler', default: false },
  { flags: '--leader-elect [bool]', description: 'run the control loops and the scheduler only on the server holding their Lease in kube-system (kube-controller-manager, kube-scheduler), so several servers on one datastore run each loop once; --leader-elect=false runs them on this server regardless', default: 'true' },
  { flags: '--leader-elect-lease-duration <duration>', description: 'how long a standby waits after the leader\'s last renewal before taking its Lease (as kube-controller-manager)', default: '15s' },
  { flags: '--leader-elect-renew-deadline <duration>', description: 'how long the leader keeps trying to renew before it stops its loops (it keeps serving the API)', default: '10s' },
  { flags: '--leader-elect-retry-period <duration>', description: 'how often candidates try to take the Lease and the leader renews it', default: '2s' },
  { flags: '--horizontal-pod-autoscaler-sync-period <seconds>', description: 'how often each HorizontalPodAutoscaler is evaluated', default: '15' },
  { flags: '--disable <component>', description: 'k3s\'s list spelling of the --disable-* flags (repeatable): traefik or ingress, servicelb, local-storage, coredns, dashboard', repeatable: true },
  { flags: '--disable-ingress', description: 'no agent runs the built-in ingress controller, and no `skiff` IngressClass is created (k3s: --disable traefik)', default: false },
  { flags: '--disable-servicelb', description: 'no node-address load balancer for LoadBalancer Services that no address pool serves (k3s: --disable servicelb)', default: false },
  { flags: '--disable-local-storage', description: 'do not create the default `local-path` StorageClass', default: false },
  { flags: '--default-local-storage-path <dir>', description: 'where local-path volumes live on each node (default: <data-dir>/storage)' },
  { flags: '--disable-dashboard', description: 'do not serve the web dashboard under /dashboard/ on the API port', default: false },
  { flags: '--disable-controller-manager', description: 'run no control loops (scheduler, workload controllers, garbage collector, ...): an API server only', default: false },
  { flags: '--node-monitor-grace-period <seconds>', description: 'a node whose Lease is not renewed for this long becomes NotReady/Unknown', default: '40' },
  { flags: '--default-not-ready-toleration-seconds <seconds>', description: 'tolerationSeconds added to pods for the not-ready taint', default: '300' },
  { flags: '--default-unreachable-toleration-seconds <seconds>', description: 'tolerationSeconds added to pods for the unreachable taint', default: '300' },
  { flags: '--audit-log-path <file>', description: 'write audit events (audit.k8s.io/v1, one JSON line each) here; - for stdout' },
  { flags: '--audit-policy-file <file>', description: 'audit Policy (audit.k8s.io/v1); without one no event is recorded' },
  { flags: '--audit-log-maxage <days>', description: 'days rotated audit logs are kept (0: forever)', default: '0' },
  { flags: '--audit-log-maxbackup <n>', description: 'rotated audit logs kept (0: all)', default: '0' },
  { flags: '--audit-log-maxsize <mb>', description: 'megabytes before the audit log is rotated (0: never)', default: '0' },
  { flags: '--secrets-encryption', description: 'encrypt Secrets at rest (key in <data-dir>/server/cred/encryption-config.json)', default: false },
  // Fleet (docs/fleet.md): as a manager, and as a site registering with one.
  { flags: '--fleet-offline-grace <seconds>', description: 'as a fleet manager: a site without a heartbeat for this long turns Offline', default: '40' },
  { flags: '--fleet-last-seen-interval <seconds>', description: 'as a fleet manager: how often a Cluster\'s status.lastSeen is rewritten while its site heartbeats (Ready/Offline changes, with the exact time, are written at once)', default: '300' },
  { flags: '--fleet-server <url>', description: 'register this cluster as a site of the fleet manager at this URL (one outbound connection)' },
  { flags: '--fleet-token <token>', description: 'the manager\'s registration token (`skiff fleet token` there); needed for the first registration only' },
  { flags: '--fleet-token-file <file>', description: 'file holding the registration token' },
  { flags: '--cluster-name <name>', description: 'this site\'s name on the fleet manager (default: the hostname)' },
  { flags: '--cluster-label <k=v>', description: 'label of this site on the fleet manager (repeatable)', repeatable: true },
  { flags: '--fleet-heartbeat-interval <seconds>', description: 'as a fleet site: heartbeat period', default: '15' },
  { flags: '--fleet-drift-interval <seconds>', description: 'as a fleet site: how often bundles are applied again (drift correction)', default: '30' },
];

/** Node flags: on `skiff agent`, and on `skiff server` for its embedded agent. */
/**
 * Scheduled snapshots and continuous backup (src/server/snapshot-service.ts). k3s spells the snapshot
 * flags `--etcd-snapshot-*` / `--etcd-disable-snapshots`; both spellings are taken (the aliases have no
 * default, so a given alias wins: see backupConfigFrom in snapshot-command.ts).
 */
export const BACKUP_FLAGS: FlagSpec[] = [
  { flags: '--disable-snapshots', description: 'take no scheduled snapshots', default: false },
  { flags: '--etcd-disable-snapshots', description: 'k3s spelling of --disable-snapshots' },
  { flags: '--snapshot-schedule-cron <spec>', description: 'when scheduled snapshots are taken (cron, system time; a leading seconds field is allowed)', default: '0 */12 * * *' },
  { flags: '--etcd-snapshot-schedule-cron <spec>', description: 'k3s spelling of --snapshot-schedule-cron' },
  { flags: '--snapshot-retention <n>', description: 'scheduled snapshots kept (older ones of the same name are deleted)', default: '5' },
  { flags: '--etcd-snapshot-retention <n>', description: 'k3s spelling of --snapshot-retention' },
  { flags: '--snapshot-dir <dir>', description: 'where snapshots are written (default <data-dir>/server/db/snapshots)' },
  { flags: '--etcd-snapshot-dir <dir>', description: 'k3s spelling of --snapshot-dir' },
  { flags: '--snapshot-compress', description: 'gzip the datastore file of each snapshot', default: false },
  { flags: '--etcd-snapshot-compress', description: 'k3s spelling of --snapshot-compress' },
  { flags: '--snapshot-name <name>', description: 'name prefix of scheduled snapshots', default: 'etcd-snapshot' },
  { flags: '--etcd-snapshot-name <name>', description: 'k3s spelling of --snapshot-name' },
  { flags: '--backup-stream <dir>', description: 'continuous backup: stream every datastore change to this directory (another disk or a network mount), fsynced every --backup-stream-interval; restore with `skiff snapshot restore --from-stream`' },
  { flags: '--backup-stream-interval <duration>', description: 'how often streamed changes are fsynced (a restore loses at most this + 1 s of acknowledged writes: docs/backups.md)', default: '1s' },
];

export const NODE_FLAGS: FlagSpec[] = [
  { flags: '--node-name <name>', description: 'node name (default: the hostname)' },
  { flags: '--node-ip <ip>', description: 'IP address the node advertises (default: first non-loopback IPv4)' },
  { flags: '--node-external-ip <ip>', description: 'external IP address the node advertises' },
  { flags: '--node-label <k=v>', description: 'label at registration (repeatable)', repeatable: true },
  { flags: '--node-taint <k=v:Effect>', description: 'taint at registration (repeatable)', repeatable: true },
  { flags: '--container-runtime-endpoint <socket>', description: 'use this CRI socket instead of starting containerd' },
  { flags: '--bridge-name <name>', description: 'Linux bridge of the pod network', default: 'skiff0' },
  { flags: '--flannel-iface <name>', description: 'interface the pod network backend uses between nodes, and whose MTU pods get (default: the interface of --node-ip)' },
  { flags: '--private-registry <file>', description: 'registries.yaml with mirrors, auth and TLS for image pulls (default: /etc/skiff/registries.yaml when present)' },
  // Cluster DNS (issue 9): every agent answers it itself on its pod bridge's gateway address.
  { flags: '--resolv-conf <file>', description: 'resolvers for names outside the cluster and for dnsPolicy Default pods (default: /etc/resolv.conf, or systemd-resolved\'s upstream file when it names only 127.0.0.53)' },
  { flags: '--disable-dns', description: 'serve no cluster DNS on this node (k3s: --disable coredns); on a server, no kube-dns Service either', default: false },
  // Service proxy (src/agent/network/proxy): kube-proxy's job in every agent.
  { flags: '--disable-kube-proxy', description: 'run no service proxy, and remove the skiff-proxy nftables table left by an earlier run', default: false },
  // NetworkPolicy (src/agent/network/policy): k3s's embedded network policy controller.
  { flags: '--disable-network-policy', description: 'enforce no NetworkPolicy, and remove the skiff-netpol nftables table left by an earlier run', default: false },
  // Ingress proxy (src/agent/network/ingress): Traefik's job in every agent.
  { flags: '--ingress-http-port <port>', description: 'port the ingress proxy serves HTTP on (0: none)', default: '80' },
  { flags: '--ingress-https-port <port>', description: 'port the ingress proxy serves HTTPS on (0: none)', default: '443' },
  { flags: '--ingress-bind-address <ip>', description: 'address the ingress proxy listens on (default: every IPv4 address of the node)' },
  { flags: '--nodeport-addresses <cidr>', description: 'NodePorts answer only on this node\'s addresses inside these CIDRs (repeatable; default: every address but loopback)', repeatable: true },
];

export const AGENT_FLAGS: FlagSpec[] = [
  { flags: '-s, --server <url>', description: 'server to join, e.g. https://10.0.0.1:6443', envOverride: 'SKIFF_URL' },
  { flags: '-t, --token <token>', description: 'join token (K10<ca hash>::server:<secret>)', envOverride: 'SKIFF_TOKEN' },
  { flags: '--token-file <file>', description: 'file holding the join token' },
  { flags: '--cluster-dns <ip>', description: 'cluster DNS service IP given to pods', default: '10.43.0.10' },
  { flags: '--cluster-domain <domain>', description: 'cluster domain', default: 'cluster.local' },
];

/** The environment variable that sets flag `name` (without dashes) on any command, if one has it. */
export function envForFlag(name: string): string | undefined {
  for (const spec of [...COMMON_FLAGS, ...SERVER_FLAGS, ...NODE_FLAGS, ...AGENT_FLAGS]) {
    const long = spec.flags.match(/--[a-z0-9-]+/)![0];
    if (long === `--${name}`) return spec.envOverride ?? envName(long);
  }
  return undefined;
}

/** The node's ingress proxy flags, checked (on `skiff agent` and on a server's embedded agent). */
export function ingressFlags(o: Record<string, any>): { ingressHttpPort: number; ingressHttpsPort: number; ingressBindAddress?: string } {
  const port = (v: unknown, flag: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${flag}: not a port (0 turns the listener off): ${String(v)}`);
    return n;
  };
  return {
    ingressHttpPort: port(o.ingressHttpPort ?? 80, '--ingress-http-port'),
    ingressHttpsPort: port(o.ingressHttpsPort ?? 443, '--ingress-https-port'),
    ingressBindAddress: o.ingressBindAddress || undefined,
  };
}

/** k3s's `--disable` names and the skiff flag each one means. */
export const DISABLE_NAMES: Record<string, string> = {
  traefik: 'disableIngress', ingress: 'disableIngress', servicelb: 'disableServicelb',
  'local-storage': 'disableLocalStorage', coredns: 'disableDns', dashboard: 'disableDashboard',
};

/** Folds `--disable a,b` into the matching `--disable-*` options (`o.disableServicelb = true`, ...). */
export function applyDisableList(o: Record<string, any>): void {
  for (const name of (o.disable ?? []) as string[]) {
    const key = DISABLE_NAMES[name];
    if (!key) throw new Error(`--disable: unknown component "${name}": one of ${Object.keys(DISABLE_NAMES).join(', ')}`);
    o[key] = true;
  }
}
