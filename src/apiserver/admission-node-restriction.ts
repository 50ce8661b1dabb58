// NodeRestriction's rules for a node writing its own Node object (Kubernetes'
// plugin/pkg/admission/noderestriction): it may not change its taints after registering, and may
// not set or change labels in the node-restriction.kubernetes.io namespace or kubernetes.io/k8s.io
// labels other than the kubelet's own (so no `node-role.kubernetes.io/*`). A compromised box could
// otherwise shed an admin's taint or claim a role and attract pods and their secrets.
import { ApiError } from '../api/status.js';

/** Labels the kubelet sets itself (kubeletapis.IsKubeletLabel). */
const KUBELET_LABELS = new Set([
  'kubernetes.io/hostname', 'kubernetes.io/arch', 'kubernetes.io/os',
  'beta.kubernetes.io/arch', 'beta.kubernetes.io/os', 'beta.kubernetes.io/instance-type', 'node.kubernetes.io/instance-type',
  'failure-domain.beta.kubernetes.io/zone', 'failure-domain.beta.kubernetes.io/region',
  'topology.kubernetes.io/zone', 'topology.kubernetes.io/region',
]);
const KUBELET_LABEL_NAMESPACES = ['kubelet.kubernetes.io', 'node.kubernetes.io'];

const inDomain = (ns: string, domain: string) => ns === domain || ns.endsWith('.' + domain);

export function isForbiddenNodeLabel(key: string): boolean {
  const slash = key.indexOf('/');
  if (slash < 0) return false;
  const ns = key.slice(0, slash);
  if (inDomain(ns, 'node-restriction.kubernetes.io')) return true;
  if (!inDomain(ns, 'kubernetes.io') && !inDomain(ns, 'k8s.io')) return false;
  if (KUBELET_LABELS.has(key)) return false;
  return !KUBELET_LABEL_NAMESPACES.some((d) => inDomain(ns, d));
}

function forbidden(node: string, why: string): ApiError {
  return new ApiError(403, 'Forbidden', `nodes "${node}" is forbidden: node "${node}" is not allowed to ${why}`, { name: node, kind: 'nodes' });
}

/** A node updating its own Node: taints unchanged, no forbidden label added, removed or changed. */
export function restrictOwnNodeUpdate(node: string, obj: Record<string, any>, old: Readonly<Record<string, any>>): void {
  if (JSON.stringify(obj.spec?.taints ?? []) !== JSON.stringify(old.spec?.taints ?? [])) throw forbidden(node, 'modify taints');
  const now: Record<string, string> = obj.metadata?.labels ?? {};
  const before: Record<string, string> = old.metadata?.labels ?? {};
  const changed = [...new Set([...Object.keys(now), ...Object.keys(before)])].filter((k) => now[k] !== before[k] && isForbiddenNodeLabel(k)).sort();
  if (changed.length) throw forbidden(node, `modify labels: ${changed.join(', ')}`);
}

/**
 * A node registering: labels in node-restriction.kubernetes.io are refused. Kubernetes refuses every
 * forbidden label here; skiff's server still registers its own node with node-role labels through
 * its node credential, so that part waits until the server applies those labels itself.
 */
export function restrictOwnNodeCreate(node: string, obj: Record<string, any>): void {
  const labels = Object.keys(obj.metadata?.labels ?? {}).filter((k) => isForbiddenNodeLabel(k) && !k.startsWith('node-role.kubernetes.io/')).sort();
  if (labels.length) throw forbidden(node, `set the following labels: ${labels.join(', ')}`);
}
