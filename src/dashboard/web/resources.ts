// The kinds the dashboard lists generically (columns from the API's Table format, so they are the ones
// kubectl prints), grouped into the sections of the navigation, and the URL and hash of any object.
// Custom resources get the same treatment from their CRD: `crd~<group>~<version>~<plural>~<scope>`.

export interface Kind {
  /** Stable id used in the hash: the plural for built-in kinds, `crd~…` for custom resources. */
  id: string;
  title: string;
  kind: string;
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
}

const k = (plural: string, kind: string, title: string, group = '', version = 'v1', namespaced = true): Kind =>
  ({ id: plural, title, kind, group, version, plural, namespaced });

export const KINDS: Kind[] = [
  k('deployments', 'Deployment', 'Deployments', 'apps'),
  k('statefulsets', 'StatefulSet', 'StatefulSets', 'apps'),
  k('daemonsets', 'DaemonSet', 'DaemonSets', 'apps'),
  k('replicasets', 'ReplicaSet', 'ReplicaSets', 'apps'),
  k('jobs', 'Job', 'Jobs', 'batch'),
  k('cronjobs', 'CronJob', 'CronJobs', 'batch'),
  k('pods', 'Pod', 'Pods'),
  k('services', 'Service', 'Services'),
  k('ingresses', 'Ingress', 'Ingresses', 'networking.k8s.io'),
  k('endpointslices', 'EndpointSlice', 'EndpointSlices', 'discovery.k8s.io'),
  k('networkpolicies', 'NetworkPolicy', 'NetworkPolicies', 'networking.k8s.io'),
  k('configmaps', 'ConfigMap', 'ConfigMaps'),
  k('secrets', 'Secret', 'Secrets'),
  k('poddisruptionbudgets', 'PodDisruptionBudget', 'PodDisruptionBudgets', 'policy'),
  k('persistentvolumeclaims', 'PersistentVolumeClaim', 'PVCs'),
  k('persistentvolumes', 'PersistentVolume', 'PVs', '', 'v1', false),
  k('storageclasses', 'StorageClass', 'StorageClasses', 'storage.k8s.io', 'v1', false),
  k('namespaces', 'Namespace', 'Namespaces', '', 'v1', false),
  k('events', 'Event', 'Events'),
  k('serviceaccounts', 'ServiceAccount', 'ServiceAccounts'),
  k('roles', 'Role', 'Roles', 'rbac.authorization.k8s.io'),
  k('rolebindings', 'RoleBinding', 'RoleBindings', 'rbac.authorization.k8s.io'),
  k('clusterroles', 'ClusterRole', 'ClusterRoles', 'rbac.authorization.k8s.io', 'v1', false),
  k('clusterrolebindings', 'ClusterRoleBinding', 'ClusterRoleBindings', 'rbac.authorization.k8s.io', 'v1', false),
  k('customresourcedefinitions', 'CustomResourceDefinition', 'CRDs', 'apiextensions.k8s.io', 'v1', false),
  k('nodes', 'Node', 'Nodes', '', 'v1', false),
];

/** The navigation's sections and the kinds each one tabs between. */
export const SECTIONS: { id: string; title: string; kinds: string[] }[] = [
  { id: 'workloads', title: 'Workloads', kinds: ['deployments', 'statefulsets', 'daemonsets', 'jobs', 'cronjobs', 'replicasets'] },
  { id: 'network', title: 'Network', kinds: ['services', 'ingresses', 'endpointslices', 'networkpolicies'] },
  { id: 'config', title: 'Config', kinds: ['configmaps', 'secrets', 'poddisruptionbudgets'] },
  { id: 'storage', title: 'Storage', kinds: ['persistentvolumeclaims', 'persistentvolumes', 'storageclasses'] },
  { id: 'cluster', title: 'Cluster', kinds: ['namespaces', 'events', 'serviceaccounts', 'roles', 'rolebindings', 'clusterroles', 'clusterrolebindings', 'customresourcedefinitions'] },
];

export function sectionOf(kindId: string): string {
  if (kindId.startsWith('crd~')) return 'cluster';
  return SECTIONS.find((s) => s.kinds.includes(kindId))?.id ?? '';
}

/** A kind from its id, built-in or custom (`crd~group~version~plural~Namespaced|Cluster~Kind`). */
export function kindById(id: string): Kind | undefined {
  if (id.startsWith('crd~')) {
    const [, group = '', version = '', plural = '', scope = '', kind = ''] = id.split('~');
    if (!group || !version || !plural) return undefined;
    return { id, title: kind || plural, kind, group, version, plural, namespaced: scope !== 'Cluster' };
  }
  return KINDS.find((x) => x.id === id);
}

/** The kind a CRD defines, at its storage (else first served) version. */
export function kindOfCrd(crd: any): Kind | undefined {
  const spec = crd?.spec ?? {};
  const versions: any[] = spec.versions ?? [];
  const v = versions.find((x) => x.storage) ?? versions.find((x) => x.served) ?? versions[0];
  if (!spec.group || !v?.name || !spec.names?.plural) return undefined;
  return kindById(`crd~${spec.group}~${v.name}~${spec.names.plural}~${spec.scope ?? 'Namespaced'}~${spec.names.kind ?? ''}`);
}

const enc = encodeURIComponent;

/** The collection (ns '' = all namespaces) or, with a name, one object. */
export function apiPath(kind: Kind, ns = '', name = ''): string {
  const base = kind.group ? `/apis/${kind.group}/${kind.version}` : `/api/${kind.version}`;
  const scope = kind.namespaced && ns ? `/namespaces/${enc(ns)}` : '';
  return `${base}${scope}/${kind.plural}${name ? `/${enc(name)}` : ''}`;
}

export function apiVersionOf(kind: Kind): string {
  return kind.group ? `${kind.group}/${kind.version}` : kind.version;
}

export const listHash = (kind: Kind) => `#/list/${enc(kind.id)}`;
/** An object's page; `_` stands for "no namespace" (a cluster-scoped object). */
export const objectHash = (kind: Kind, ns: string, name: string) => `#/obj/${enc(kind.id)}/${enc(ns || '_')}/${enc(name)}`;

/** The kind of an object reference (`involvedObject`, `ownerReferences`) when the dashboard has a page for it. */
export function kindOfRef(apiVersion: string | undefined, kind: string | undefined): Kind | undefined {
  const group = apiVersion?.includes('/') ? apiVersion.split('/')[0] : '';
  return KINDS.find((x) => x.kind === kind && (apiVersion === undefined || x.group === group));
}
