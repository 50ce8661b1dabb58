// Merging a fetched kubeconfig into the caller's (`skiff up --merge --context NAME`, as k3sup): the
// server's cluster, user and context are renamed NAME (entries of that name are replaced), its server
// URL points at the host that was installed, and NAME becomes the current context.
import { parse, stringify } from 'yaml';

interface Named { name: string; [k: string]: unknown }
interface Kubeconfig { clusters?: Named[]; users?: Named[]; contexts?: Named[]; 'current-context'?: string; [k: string]: unknown }

export function renameKubeconfig(text: string, context: string, serverUrl: string): Kubeconfig {
  const kc = parse(text) as Kubeconfig;
  const cluster = kc.clusters?.[0]; const user = kc.users?.[0];
  if (!cluster || !user) throw new Error('the fetched kubeconfig has no cluster or user');
  return {
    apiVersion: 'v1', kind: 'Config',
    clusters: [{ ...cluster, name: context, cluster: { ...(cluster.cluster as object), server: serverUrl } }],
    users: [{ ...user, name: context }],
    contexts: [{ name: context, context: { cluster: context, user: context } }],
    'current-context': context,
    preferences: {},
  };
}

export function mergeKubeconfig(existingText: string | undefined, add: Kubeconfig): string {
  const base = (existingText ? parse(existingText) : undefined) as Kubeconfig | null | undefined ?? { apiVersion: 'v1', kind: 'Config' };
  for (const key of ['clusters', 'users', 'contexts'] as const) {
    const names = new Set((add[key] ?? []).map((e) => e.name));
    base[key] = [...(base[key] ?? []).filter((e) => !names.has(e.name)), ...(add[key] ?? [])];
  }
  base['current-context'] = add['current-context'];
  return stringify(base);
}
