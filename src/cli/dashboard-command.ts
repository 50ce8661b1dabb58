// `skiff dashboard token`: a bearer token to sign in to the dashboard with (issue 16). Like
// `kubectl create serviceaccount` + `kubectl create clusterrolebinding` + `kubectl create token`: a
// ServiceAccount in kube-system bound to a role, and a token for it from the TokenRequest API, so the
// token expires and stops working when the account is deleted. Kubernetes' `view` and `edit` roles
// leave out cluster-scoped objects (nodes), which a dashboard must show, so those accounts are also
// bound to a read-only `skiff:dashboard:cluster-view` role (nodes, their metrics, the fleet's kinds); `admin` is the
// cluster's administrator (ClusterRole cluster-admin), as the Kubernetes Dashboard's admin-user example.
import { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addFlags, COMMON_FLAGS } from './flags.js';
import { HttpClient } from '../client/http.js';

const ROLES = ['view', 'edit', 'admin'] as const;
type Role = typeof ROLES[number];
const NAMESPACE = 'kube-system';
const FIELD_MANAGER = 'skiff-dashboard';
/** Read access to the cluster-scoped objects the dashboard shows, which view and edit leave out. */
const CLUSTER_VIEW = 'skiff:dashboard:cluster-view';

export function dashboardCommand(): Command {
  const cmd = new Command('dashboard').description('the web dashboard served by `skiff server` at https://<server>:6443/dashboard/');
  const token = new Command('token').description('create (or reuse) a ServiceAccount bound to a role and print a token for it');
  addFlags(token, [
    ...COMMON_FLAGS,
    { flags: '--role <role>', description: 'view or edit (the ClusterRole, plus reading nodes), or admin (cluster-admin)', default: 'view' },
    { flags: '--user <name>', description: 'ServiceAccount name in kube-system (default: skiff-dashboard-<role>)' },
    { flags: '--duration <d>', description: 'token lifetime, e.g. 24h, 90m (at least 10m)', default: '24h' },
    { flags: '--kubeconfig <file>', description: 'admin kubeconfig (default: the data dir\'s admin certificate, else $KUBECONFIG or /etc/skiff/skiff.yaml)' },
    { flags: '-s, --server <url>', description: 'API server URL when using the data dir\'s certificate', default: 'https://127.0.0.1:6443' },
  ]);
  token.action(async (o: Record<string, any>) => {
    const role = String(o.role) as Role;
    if (!ROLES.includes(role)) throw new Error(`--role: one of ${ROLES.join(', ')}, not ${o.role}`);
    const seconds = parseDuration(String(o.duration));
    if (seconds < 600) throw new Error(`--duration: at least 10m (the TokenRequest minimum), not ${o.duration}`);
    const name = String(o.user ?? `skiff-dashboard-${role}`);
    const client = adminClient(o);
    try {
      process.stdout.write(await dashboardToken(client, name, role, seconds) + '\n');
    } finally {
      client.close();
    }
  });
  cmd.addCommand(token);
  return cmd;
}

export async function dashboardToken(client: HttpClient, name: string, role: Role, seconds: number): Promise<string> {
  const sa = { group: '', version: 'v1', resource: 'serviceaccounts' };
  const crb = { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterrolebindings' };
  // Server-side apply: running the command again reuses the account and binding.
  await client.patch(sa, NAMESPACE, name, 'apply', {
    apiVersion: 'v1', kind: 'ServiceAccount',
    metadata: { name, namespace: NAMESPACE, labels: { 'app.kubernetes.io/managed-by': FIELD_MANAGER } },
  }, { fieldManager: FIELD_MANAGER, force: true });
  const bind = (clusterRole: string) => client.patch(crb, undefined, `skiff-dashboard:${name}:${clusterRole}`, 'apply', {
    // One binding per account and role (a binding's roleRef cannot change).
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding',
    metadata: { name: `skiff-dashboard:${name}:${clusterRole}`, labels: { 'app.kubernetes.io/managed-by': FIELD_MANAGER } },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
    subjects: [{ kind: 'ServiceAccount', name, namespace: NAMESPACE }],
  }, { fieldManager: FIELD_MANAGER, force: true });
  if (role === 'admin') {
    await bind('cluster-admin');
  } else {
    await client.patch({ group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterroles' }, undefined, CLUSTER_VIEW, 'apply', {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole',
      metadata: { name: CLUSTER_VIEW, labels: { 'app.kubernetes.io/managed-by': FIELD_MANAGER } },
      rules: [
        { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: ['metrics.k8s.io'], resources: ['nodes', 'pods'], verbs: ['get', 'list'] },
        // The fleet's pages: Clusters are cluster-scoped; Bundles and their deployments hold no more
        // than the ConfigMaps view already reads (their content is stored in ConfigMaps).
        { apiGroups: ['fleet.skiff.io'], resources: ['clusters', 'clustergroups', 'bundles', 'bundledeployments', 'gitrepos'], verbs: ['get', 'list', 'watch'] },
      ],
    }, { fieldManager: FIELD_MANAGER, force: true });
    await bind(role);
    await bind(CLUSTER_VIEW);
  }
  // The token subresource is a create on serviceaccounts/<name>/token; the client builds the path from
  // the resource, so the subresource rides in it.
  const tr = await client.create<any>({ group: '', version: 'v1', resource: `serviceaccounts/${encodeURIComponent(name)}/token` }, NAMESPACE, {
    apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', metadata: { name }, spec: { expirationSeconds: seconds },
  });
  const t = tr?.status?.token;
  if (typeof t !== 'string' || !t) throw new Error('the API server returned no token');
  return t;
}

function adminClient(o: Record<string, any>): HttpClient {
  const opts = { userAgent: 'skiff-dashboard-token' };
  if (o.kubeconfig) return HttpClient.fromKubeconfig(String(o.kubeconfig), opts);
  const tls = join(String(o.dataDir), 'server', 'tls');
  if (existsSync(join(tls, 'client-admin.crt'))) {
    return new HttpClient({
      ...opts, server: String(o.server), caPem: readFileSync(join(tls, 'server-ca.crt'), 'utf8'),
      certPem: readFileSync(join(tls, 'client-admin.crt'), 'utf8'), keyPem: readFileSync(join(tls, 'client-admin.key'), 'utf8'),
    });
  }
  const kc = process.env.KUBECONFIG || '/etc/skiff/skiff.yaml';
  if (!existsSync(kc)) throw new Error(`no admin credentials: no ${tls}/client-admin.crt and no ${kc}; pass --kubeconfig or --data-dir`);
  return HttpClient.fromKubeconfig(kc, opts);
}

/** `24h`, `90m`, `1h30m`, `3600s` or plain seconds. */
export function parseDuration(s: string): number {
  if (/^\d+$/.test(s)) return Number(s);
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(s);
  if (!m || s === '') throw new Error(`not a duration: ${s} (e.g. 24h, 90m)`);
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}
