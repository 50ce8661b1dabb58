// Defaults of core/v1 kinds other than pod specs (pkg/apis/core/v1/defaults.go), and the Service
// fields the service registry fills before IPs are allocated (ipFamilies, ipFamilyPolicy, clusterIPs).
import { defaultPodSpec, defaultPodTemplate, isObj, setDefault } from './pod.js';
import { defaultPersistentVolumeClaimShape } from './workloads.js';

type Obj = Record<string, any>;
const spec = (o: Obj): Obj => (isObj(o.spec) ? o.spec : (o.spec = {}));

export function defaultPod(pod: Obj): void {
  defaultPodSpec(spec(pod), { isPod: true });
}

export function defaultPodTemplateKind(pt: Obj): void {
  defaultPodTemplate(pt, 'template');
}

export function defaultReplicationController(rc: Obj): void {
  const s = spec(rc);
  const labels = s.template?.metadata?.labels;
  if (isObj(labels)) {
    if (!isObj(s.selector) || Object.keys(s.selector).length === 0) s.selector = { ...labels };
    if (!isObj(rc.metadata?.labels) || Object.keys(rc.metadata.labels).length === 0) rc.metadata.labels = { ...labels };
  }
  setDefault(s, 'replicas', 1, false);
  if (isObj(s.template)) defaultPodTemplate(s, 'template');
}

const DEFAULT_CLIENT_IP_TIMEOUT = 10800;

export function defaultService(svc: Obj): void {
  const s = spec(svc);
  setDefault(s, 'sessionAffinity', 'None');
  if (s.sessionAffinity === 'None') delete s.sessionAffinityConfig;
  if (s.sessionAffinity === 'ClientIP' && typeof s.sessionAffinityConfig?.clientIP?.timeoutSeconds !== 'number') {
    s.sessionAffinityConfig = { clientIP: { timeoutSeconds: DEFAULT_CLIENT_IP_TIMEOUT } };
  }
  setDefault(s, 'type', 'ClusterIP');
  for (const p of Array.isArray(s.ports) ? s.ports : []) {
    if (!isObj(p)) continue;
    setDefault(p, 'protocol', 'TCP');
    setDefault(p, 'targetPort', p.port);
  }
  const external = s.type === 'LoadBalancer' || s.type === 'NodePort' || (s.type === 'ClusterIP' && Array.isArray(s.externalIPs) && s.externalIPs.length > 0);
  if (external) setDefault(s, 'externalTrafficPolicy', 'Cluster');
  if (['NodePort', 'LoadBalancer', 'ClusterIP'].includes(s.type)) setDefault(s, 'internalTrafficPolicy', 'Cluster');
  if (s.type === 'LoadBalancer') {
    setDefault(s, 'allocateLoadBalancerNodePorts', true, false);
    for (const ing of Array.isArray(svc.status?.loadBalancer?.ingress) ? svc.status.loadBalancer.ingress : []) {
      if (isObj(ing) && ing.ip) setDefault(ing, 'ipMode', 'VIP');
    }
  }
  defaultServiceIPFields(s);
}

/**
 * What the service registry settles before allocation, for a single-stack IPv4 cluster: clients that
 * set only `clusterIP` get `clusterIPs`, and every non-ExternalName Service gets its IP families.
 * Headless Services without a selector may carry both families.
 */
function defaultServiceIPFields(s: Obj): void {
  if (s.type === 'ExternalName') return;
  if (s.clusterIP && !(Array.isArray(s.clusterIPs) && s.clusterIPs.length)) s.clusterIPs = [s.clusterIP];
  const headlessWithoutSelector = s.clusterIP === 'None' && !(isObj(s.selector) && Object.keys(s.selector).length);
  setDefault(s, 'ipFamilyPolicy', headlessWithoutSelector ? 'RequireDualStack' : 'SingleStack');
  if (!Array.isArray(s.ipFamilies) || s.ipFamilies.length === 0) s.ipFamilies = ['IPv4'];
  if (headlessWithoutSelector && s.ipFamilyPolicy !== 'SingleStack' && s.ipFamilies.length === 1) {
    s.ipFamilies.push(s.ipFamilies[0] === 'IPv4' ? 'IPv6' : 'IPv4');
  }
}

export function defaultNamespace(ns: Obj): void {
  const name = ns.metadata?.name;
  if (name) {
    if (!isObj(ns.metadata.labels)) ns.metadata.labels = {};
    ns.metadata.labels['kubernetes.io/metadata.name'] = name;
  }
  if (!isObj(ns.status)) ns.status = {};
  setDefault(ns.status, 'phase', 'Active');
}

/**
 * Create-only: a new Namespace carries the `kubernetes` finalizer. Kubernetes does this in the
 * namespace strategy, not in defaulting, because the namespace controller removes it on deletion and
 * defaulting (which runs on every write) would put it back.
 */
export function prepareNamespaceForCreate(ns: Obj): void {
  const s = spec(ns);
  if (!Array.isArray(s.finalizers)) s.finalizers = [];
  if (!s.finalizers.includes('kubernetes')) s.finalizers.push('kubernetes');
}

export function defaultSecret(secret: Obj): void {
  setDefault(secret, 'type', 'Opaque');
  // stringData is a write-only convenience: Kubernetes merges it into data (base64) and never stores it.
  if (isObj(secret.stringData)) {
    if (!isObj(secret.data)) secret.data = {};
    for (const [k, v] of Object.entries(secret.stringData)) secret.data[k] = Buffer.from(String(v), 'utf8').toString('base64');
  }
  delete secret.stringData;
}

export function defaultPersistentVolumeClaim(pvc: Obj): void {
  defaultPersistentVolumeClaimShape(pvc);
}

export function defaultPersistentVolume(pv: Obj): void {
  const s = spec(pv);
  setDefault(s, 'persistentVolumeReclaimPolicy', 'Retain');
  setDefault(s, 'volumeMode', 'Filesystem', false);
  if (!isObj(pv.status)) pv.status = {};
  setDefault(pv.status, 'phase', 'Pending');
}

export function defaultEndpoints(ep: Obj): void {
  for (const subset of Array.isArray(ep.subsets) ? ep.subsets : []) {
    for (const p of Array.isArray(subset?.ports) ? subset.ports : []) if (isObj(p)) setDefault(p, 'protocol', 'TCP');
  }
}

export function defaultNode(node: Obj): void {
  const st = node.status;
  if (isObj(st) && isObj(st.capacity) && !isObj(st.allocatable)) st.allocatable = { ...st.capacity };
}

export function defaultLimitRange(lr: Obj): void {
  for (const item of Array.isArray(lr.spec?.limits) ? lr.spec.limits : []) {
    if (!isObj(item) || item.type !== 'Container') continue;
    if (!isObj(item.default)) item.default = {};
    if (!isObj(item.defaultRequest)) item.defaultRequest = {};
    // An unset default limit is the max; an unset default request is the default limit, else the min.
    for (const [k, v] of Object.entries(isObj(item.max) ? item.max : {})) if (!(k in item.default)) item.default[k] = v;
    for (const [k, v] of Object.entries(item.default)) if (!(k in item.defaultRequest)) item.defaultRequest[k] = v;
    for (const [k, v] of Object.entries(isObj(item.min) ? item.min : {})) if (!(k in item.defaultRequest)) item.defaultRequest[k] = v;
  }
}
