// `skiff fleet token | kubeconfig CLUSTER | status`: the manager's fleet commands. They talk to the
// manager's API with a kubeconfig (default: this machine's admin kubeconfig), so they run wherever
// the caller's credentials are, and the manager's RBAC decides what they may do.
import { Command } from 'commander';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { HttpClient } from '../client/http.js';
import { Resources } from '../client/types.js';
import { CLUSTERS, type Cluster } from '../fleet/api.js';
import { proxyPrefix } from '../fleet/proxy.js';
import { FLEET_TOKENS_NAMESPACE, FLEET_TOKENS_SECRET, FLEET_TOKENS_TYPE, newFleetToken } from '../fleet/tokens.js';
import { addFlags } from './flags.js';

const KUBECONFIG_FLAG = { flags: '--kubeconfig <file>', description: 'kubeconfig of the manager (default: $KUBECONFIG, else /etc/skiff/skiff.yaml)' };

function kubeconfigPath(o: Record<string, any>): string {
  return o.kubeconfig ?? process.env.KUBECONFIG?.split(':')[0] ?? '/etc/skiff/skiff.yaml';
}

export function fleetCommand(): Command {
  const cmd = new Command('fleet').description('manage the sites registered with this server (the fleet manager)');

  const token = new Command('token').description('create a site registration token (K10<ca hash>::fleet-<id>:<secret>) and print it; the manager keeps only its hash');
  addFlags(token, [KUBECONFIG_FLAG]);
  token.action(async (o: Record<string, any>) => {
    const path = kubeconfigPath(o);
    const client = HttpClient.fromKubeconfig(path, { userAgent: 'skiff-fleet' });
    try {
      const ca = await fetchText(new URL('/cacerts', serverOf(path)), caOf(path));
      const t = newFleetToken(ca);
      const existing = await client.get(Resources.secrets, FLEET_TOKENS_NAMESPACE, FLEET_TOKENS_SECRET);
      if (existing) {
        await client.patch(Resources.secrets, FLEET_TOKENS_NAMESPACE, FLEET_TOKENS_SECRET, 'merge', { data: { [t.id]: t.storedHash } });
      } else {
        await client.create(Resources.secrets, FLEET_TOKENS_NAMESPACE, {
          apiVersion: 'v1', kind: 'Secret', type: FLEET_TOKENS_TYPE,
          metadata: { name: FLEET_TOKENS_SECRET, namespace: FLEET_TOKENS_NAMESPACE },
          data: { [t.id]: t.storedHash },
        });
      }
      process.stdout.write(t.token + '\n');
    } finally {
      client.close();
    }
  });

  const kubeconfig = new Command('kubeconfig').argument('<cluster>')
    .description('print a kubeconfig that reaches CLUSTER through this manager (your own credentials; RBAC on clusters/proxy decides)');
  addFlags(kubeconfig, [KUBECONFIG_FLAG]);
  kubeconfig.action(async (name: string, o: Record<string, any>) => {
    const path = kubeconfigPath(o);
    const client = HttpClient.fromKubeconfig(path, { userAgent: 'skiff-fleet' });
    try {
      if (!(await client.get(CLUSTERS, undefined, name))) throw new Error(`no cluster "${name}" is registered with this manager (skiff fleet status lists them)`);
    } finally {
      client.close();
    }
    process.stdout.write(fleetKubeconfig(path, name));
  });

  const status = new Command('status').description('list the registered sites: state, nodes, version, last seen, bundles ready');
  addFlags(status, [KUBECONFIG_FLAG]);
  status.action(async (o: Record<string, any>) => {
    const client = HttpClient.fromKubeconfig(kubeconfigPath(o), { userAgent: 'skiff-fleet' });
    try {
      const list = await client.list<Cluster>(CLUSTERS);
      process.stdout.write(statusTable(list.items, Date.now()));
    } finally {
      client.close();
    }
  });

  cmd.addCommand(token);
  cmd.addCommand(kubeconfig);
  cmd.addCommand(status);
  return cmd;
}

/** The caller's kubeconfig with its current cluster's server moved under the Cluster's proxy path. */
export function fleetKubeconfig(path: string, name: string): string {
  const kc = parseYaml(readFileSync(path, 'utf8')) as any;
  const ctxName = kc?.['current-context'] || kc?.contexts?.[0]?.name;
  const ctx = kc?.contexts?.find((c: any) => c.name === ctxName)?.context;
  const cluster = kc?.clusters?.find((c: any) => c.name === ctx?.cluster)?.cluster;
  const user = kc?.users?.find((u: any) => u.name === ctx?.user)?.user ?? {};
  if (!cluster?.server) throw new Error(`${path}: no cluster for the current context "${ctxName}"`);
  const base = dirname(resolve(path));
  // File references are made absolute, so the printed kubeconfig works from anywhere.
  const abs = (o: Record<string, any>, keys: string[]) => {
    const out = { ...o };
    for (const k of keys) if (typeof out[k] === 'string') out[k] = resolve(base, out[k]);
    return out;
  };
  const server = new URL(cluster.server);
  server.pathname = server.pathname.replace(/\/$/, '') + proxyPrefix(name);
  const entry = `fleet-${name}`;
  return stringify({
    apiVersion: 'v1', kind: 'Config',
    clusters: [{ name: entry, cluster: { ...abs(cluster, ['certificate-authority']), server: server.toString().replace(/\/$/, '') } }],
    users: [{ name: entry, user: abs(user, ['client-certificate', 'client-key', 'tokenFile']) }],
    contexts: [{ name: entry, context: { cluster: entry, user: entry } }],
    'current-context': entry,
    preferences: {},
  });
}

export function statusTable(items: Cluster[], now: number): string {
  const rows = [['NAME', 'READY', 'STATE', 'NODES', 'VERSION', 'LAST-SEEN', 'BUNDLES-READY', 'LABELS']];
  let ready = 0, offline = 0;
  let bundles = 0, bundlesReady = 0;
  for (const c of [...items].sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!))) {
    const r = c.status?.conditions?.find((x) => x.type === 'Ready')?.status ?? 'Unknown';
    if (r === 'True') ready++;
    if (c.status?.display?.state === 'Offline') offline++;
    const labels = Object.entries(c.metadata.labels ?? {}).filter(([k]) => !k.startsWith('fleet.skiff.io/')).map(([k, v]) => `${k}=${v}`).join(',');
    bundles += c.status?.summary?.desiredReady ?? 0;
    bundlesReady += c.status?.summary?.ready ?? 0;
    rows.push([c.metadata.name!, r, c.status?.display?.state ?? 'Pending', c.status?.display?.nodes || '-', c.status?.version ?? '-',
      c.status?.lastSeen ? age(now - Date.parse(c.status.lastSeen)) : '-', c.status?.display?.readyBundles || '-', labels || '<none>']);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const lines = rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]! + 3))).join('').trimEnd());
  return `${lines.join('\n')}\n\n${items.length} clusters: ${ready} ready, ${offline} offline, ${items.length - ready - offline} other; `
    + `bundle deployments: ${bundlesReady} of ${bundles} ready\n`;
}

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

function serverOf(path: string): string {
  const kc = parseYaml(readFileSync(path, 'utf8')) as any;
  const ctxName = kc?.['current-context'] || kc?.contexts?.[0]?.name;
  const ctx = kc?.contexts?.find((c: any) => c.name === ctxName)?.context;
  return kc?.clusters?.find((c: any) => c.name === ctx?.cluster)?.cluster?.server;
}

function caOf(path: string): string | undefined {
  const kc = parseYaml(readFileSync(path, 'utf8')) as any;
  const ctxName = kc?.['current-context'] || kc?.contexts?.[0]?.name;
  const ctx = kc?.contexts?.find((c: any) => c.name === ctxName)?.context;
  const cluster = kc?.clusters?.find((c: any) => c.name === ctx?.cluster)?.cluster;
  if (cluster?.['certificate-authority-data']) return Buffer.from(cluster['certificate-authority-data'], 'base64').toString('utf8');
  if (cluster?.['certificate-authority']) return readFileSync(resolve(dirname(path), cluster['certificate-authority']), 'utf8');
  return undefined;
}

function fetchText(url: URL, ca: string | undefined): Promise<string> {
  return new Promise((resolveText, reject) => {
    https.get(url, { ca, timeout: 15_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => { body += c; })
        .on('end', () => (res.statusCode === 200 ? resolveText(body) : reject(new Error(`GET ${url.pathname}: ${res.statusCode}`))));
    }).on('error', reject);
  });
}
