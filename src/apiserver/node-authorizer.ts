// Least privilege for nodes: a `system:node:<name>` identity (group system:nodes) may read what its
// pods need and write only its own Node, its Lease, the status of pods bound to it, and events.
// Kubernetes splits this between the Node authorizer and the NodeRestriction admission plugin; here
// one function decides, reading the watch cache for the pod↔node and pod↔secret relations.
import type { Store } from '../storage/types.js';
import type { Attributes, Decision } from './rbac.js';
import { ephemeralClaimName } from '../api/ephemeral-volumes.js';
import { isL2LeaseName, L2_LEASE_NAMESPACE, LEGACY_CONFIG_NAME, LEGACY_CONFIG_NAMESPACE } from '../api/address-pools.js';
import { isServedIngress, servedClasses, tlsSecretNames, TLS_SECRET_TYPE } from '../api/ingress.js';

export const NODES_GROUP = 'system:nodes';
const NODE_PREFIX = 'system:node:';

const READ = new Set(['get', 'list', 'watch']);
/** Cluster-wide reads a kubelet and its service proxy need. */
const READABLE = new Set([
  '/nodes', '/pods', '/services', '/endpoints', '/namespaces', '/persistentvolumes',
  'discovery.k8s.io/endpointslices', 'storage.k8s.io/storageclasses', 'node.k8s.io/runtimeclasses',
  'networking.k8s.io/networkpolicies', 'coordination.k8s.io/leases',
  // The layer-2 announcer's pools and advertisements (MetalLB's kinds).
  'metallb.io/ipaddresspools', 'metallb.io/l2advertisements',
  // The ingress proxy's routes (src/agent/network/ingress).
  'networking.k8s.io/ingresses', 'networking.k8s.io/ingressclasses',
]);
/** Namespaced objects a node may get only when one of its pods references them. */
const REFERENCED = new Set(['/secrets', '/configmaps', '/persistentvolumeclaims', '/serviceaccounts']);

export type NodeDecision = Decision | undefined;   // undefined: not a node identity, no opinion

export function nodeName(a: Attributes): string | undefined {
  if (!a.user.groups.includes(NODES_GROUP) || !a.user.name.startsWith(NODE_PREFIX)) return undefined;
  return a.user.name.slice(NODE_PREFIX.length);
}

export function authorizeNode(store: Store, a: Attributes): NodeDecision {
  const node = nodeName(a);
  if (node === undefined) return undefined;
  if (!a.resourceRequest) return undefined;           // discovery etc.: RBAC's system:discovery decides
  const gr = `${a.apiGroup}/${a.resource}`;
  const allow = (reason: string): Decision => ({ allowed: true, reason: `node ${node}: ${reason}` });
  const deny = (reason: string): Decision => ({ allowed: false, reason: `node "${node}" ${reason}` });

  if (gr === '/nodes') {
    if (READ.has(a.verb) && !a.subresource) return allow('reads nodes');
    if (a.name === node && ['create', 'update', 'patch', 'delete', 'get'].includes(a.verb)) return allow('writes its own Node');
    if (a.verb === 'create' && !a.name) return allow('registers itself (the name is checked on write)');
    return deny(`cannot modify node "${a.name ?? ''}"`);
  }
  if (gr === 'coordination.k8s.io/leases') {
    if (a.namespace === 'kube-node-lease' && (a.name === node || (a.verb === 'create' && !a.name))) return allow('renews its own Lease');
    if (READ.has(a.verb)) return allow('reads leases');
    // Layer-2 announcement leadership, one Lease per address (create is narrowed by NodeRestriction admission).
    if (a.namespace === L2_LEASE_NAMESPACE && ['create', 'update', 'patch', 'delete'].includes(a.verb) && (a.verb === 'create' ? !a.name : isL2LeaseName(a.name))) {
      return allow('takes part in layer-2 address announcement');
    }
    return deny(`cannot modify lease "${a.name ?? ''}"`);
  }
  if (gr === '/events' || gr === 'events.k8s.io/events') {
    if (['create', 'update', 'patch'].includes(a.verb)) return allow('records events');
    return undefined;
  }
  if (gr === '/pods') {
    if (READ.has(a.verb) && !a.subresource) return allow('reads pods');
    const pod = a.name && a.namespace ? store.get(`/core/pods/${a.namespace}/${a.name}`) : undefined;
    const bound = pod?.obj.spec?.nodeName === node;
    if (a.subresource === 'status' && ['get', 'update', 'patch'].includes(a.verb)) {
      return bound ? allow('updates the status of its own pod') : deny(`cannot update the status of pod "${a.name}" bound to another node`);
    }
    if (a.verb === 'delete' && !a.subresource) {
      return bound ? allow('deletes its own terminated pod') : deny(`cannot delete pod "${a.name}" bound to another node`);
    }
    if (a.subresource === 'eviction' && a.verb === 'create') return bound ? allow('evicts its own pod') : deny(`cannot evict pod "${a.name}"`);
    return deny(`cannot ${a.verb} pod "${a.name ?? ''}"`);
  }
  // The node-local DNS server's settings (src/agent/dns/config.ts): one ConfigMap every node may read.
  if (gr === '/configmaps' && a.verb === 'get' && a.namespace === 'kube-system' && a.name === 'skiff-dns') return allow('reads the cluster DNS settings');
  // MetalLB's legacy layer-2 pools (the announcer reads which addresses are pool addresses).
  if (gr === '/configmaps' && a.verb === 'get' && a.namespace === LEGACY_CONFIG_NAMESPACE && a.name === LEGACY_CONFIG_NAME) return allow('reads the legacy address pools');
  if (REFERENCED.has(gr)) {
    if (a.verb === 'get' && a.namespace && a.name && referencedByNodePod(store, node, a.namespace, a.resource, a.name)) {
      return allow(`reads ${a.resource.slice(0, -1)} "${a.name}" used by its pods`);
    }
    if (gr === '/serviceaccounts' && a.subresource === 'token' && a.verb === 'create' && a.namespace && a.name
      && referencedByNodePod(store, node, a.namespace, 'serviceaccounts', a.name)) {
      return allow(`requests a token for service account "${a.name}" used by its pods`);
    }
    // The ingress proxy's certificates: a TLS Secret named by an Ingress that skiff's class serves, read
    // (and watched, narrowed to that one name) by every node, since every node terminates TLS for it.
    if (gr === '/secrets' && READ.has(a.verb) && !a.subresource && a.namespace && a.name && tlsSecretOfServedIngress(store, a.namespace, a.name)) {
      return allow(`reads TLS secret "${a.name}" of an Ingress it serves`);
    }
    return deny(`has no pod that references ${a.resource} "${a.name ?? ''}" in namespace "${a.namespace ?? ''}"`);
  }
  if (READABLE.has(gr) && READ.has(a.verb) && !a.subresource) return allow(`reads ${a.resource}`);
  // The layer-2 announcer reports which node announces a Service (MetalLB's ServiceL2Status).
  if (gr === 'metallb.io/servicel2statuses' && ['get', 'create', 'update', 'patch'].includes(a.verb) && (!a.subresource || a.subresource === 'status')) {
    return allow('reports layer-2 announcement status');
  }
  // As Kubernetes' node rules: a kubelet requests (and watches) its own certificates.
  if (gr === 'certificates.k8s.io/certificatesigningrequests' && !a.subresource && (READ.has(a.verb) || a.verb === 'create')) {
    return allow('requests certificates');
  }
  if (gr === 'authentication.k8s.io/tokenreviews' || gr === 'authorization.k8s.io/subjectaccessreviews') {
    return a.verb === 'create' ? allow('delegates authentication/authorization') : undefined;
  }
  return deny(`is not allowed to ${a.verb} ${a.resource}`);
}

/**
 * Whether `ns/name` is a Secret the ingress proxy may read: named in `spec.tls` of an Ingress of a
 * class skiff serves in the same namespace, and (when it exists) of type kubernetes.io/tls, so an
 * Ingress cannot make nodes read another kind of Secret (a service account token, a registry login).
 */
function tlsSecretOfServedIngress(store: Store, ns: string, name: string): boolean {
  const existing = store.get(`/core/secrets/${ns}/${name}`)?.obj;
  if (existing && existing.type !== TLS_SECRET_TYPE) return false;
  const ingresses = store.list(`/networking.k8s.io/ingresses/${ns}/`).items;
  if (!ingresses.length) return false;
  const served = servedClasses(store.list('/networking.k8s.io/ingressclasses/').items.map((i) => i.obj));
  return ingresses.some((i) => isServedIngress(i.obj, served) && tlsSecretNames(i.obj).includes(name));
}

function referencedByNodePod(store: Store, node: string, ns: string, resource: string, name: string): boolean {
  for (const p of store.list(`/core/pods/${ns}/`).items) {
    const pod = p.obj;
    if (pod.spec?.nodeName !== node) continue;
    if (references(pod, resource, name)) return true;
  }
  return false;
}

function references(pod: Readonly<Record<string, any>>, resource: string, name: string): boolean {
  const spec = pod.spec ?? {};
  if (resource === 'serviceaccounts') return (spec.serviceAccountName ?? 'default') === name;
  if (resource === 'secrets' && (spec.imagePullSecrets ?? []).some((s: any) => s.name === name)) return true;
  for (const v of spec.volumes ?? []) {
    if (resource === 'secrets' && v.secret?.secretName === name) return true;
    if (resource === 'configmaps' && v.configMap?.name === name) return true;
    if (resource === 'persistentvolumeclaims' && v.persistentVolumeClaim?.claimName === name) return true;
    // A generic ephemeral volume's claim is named `<pod>-<volume>`.
    if (resource === 'persistentvolumeclaims' && v.ephemeral && ephemeralClaimName(pod.metadata?.name, v.name) === name) return true;
    for (const src of v.projected?.sources ?? []) {
      if (resource === 'secrets' && src.secret?.name === name) return true;
      if (resource === 'configmaps' && src.configMap?.name === name) return true;
    }
  }
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? []), ...(spec.ephemeralContainers ?? [])]) {
    for (const e of c.env ?? []) {
      if (resource === 'secrets' && e.valueFrom?.secretKeyRef?.name === name) return true;
      if (resource === 'configmaps' && e.valueFrom?.configMapKeyRef?.name === name) return true;
    }
    for (const e of c.envFrom ?? []) {
      if (resource === 'secrets' && e.secretRef?.name === name) return true;
      if (resource === 'configmaps' && e.configMapRef?.name === name) return true;
    }
  }
  return false;
}
