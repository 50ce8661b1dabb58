// Defaults of the remaining built-in kinds that have any: autoscaling, networking, storage,
// scheduling, RBAC, discovery and CRDs (each group's v1/defaults.go).
import { isObj, setDefault } from './pod.js';

type Obj = Record<string, any>;
const each = (list: unknown, fn: (o: Obj) => void) => { if (Array.isArray(list)) for (const o of list) if (isObj(o)) fn(o); };
const RBAC_GROUP = 'rbac.authorization.k8s.io';
const DEFAULT_CPU_UTILIZATION = 80;

/** autoscaling/v2 HPA; a v1 object (served by conversion) only gets its minReplicas. */
export function defaultHPA(hpa: Obj): void {
  if (!isObj(hpa.spec)) hpa.spec = {};
  const s = hpa.spec;
  setDefault(s, 'minReplicas', 1, false);
  if (hpa.apiVersion === 'autoscaling/v1') return;
  if (!Array.isArray(s.metrics) || s.metrics.length === 0) {
    s.metrics = [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: DEFAULT_CPU_UTILIZATION } } }];
  }
  // Only a behavior the user started is completed; an absent one stays absent.
  if (isObj(s.behavior)) {
    s.behavior.scaleUp = scalingRules(s.behavior.scaleUp, 0, [
      { type: 'Pods', value: 4, periodSeconds: 15 },
      { type: 'Percent', value: 100, periodSeconds: 15 },
    ]);
    s.behavior.scaleDown = scalingRules(s.behavior.scaleDown, 300, [{ type: 'Percent', value: 100, periodSeconds: 15 }]);
  }
}

function scalingRules(rules: unknown, stabilizationWindowSeconds: number, policies: Obj[]): Obj {
  const r: Obj = isObj(rules) ? rules : {};
  setDefault(r, 'stabilizationWindowSeconds', stabilizationWindowSeconds, false);
  setDefault(r, 'selectPolicy', 'Max');
  if (!Array.isArray(r.policies)) r.policies = policies;
  return r;
}

export function defaultNetworkPolicy(np: Obj): void {
  if (!isObj(np.spec)) np.spec = {};
  const s = np.spec;
  for (const dir of ['ingress', 'egress']) each(s[dir], (rule) => each(rule.ports, (p) => setDefault(p, 'protocol', 'TCP')));
  if (!Array.isArray(s.policyTypes) || s.policyTypes.length === 0) {
    // A policy without policyTypes is an ingress policy, and an egress one too if it has egress rules.
    s.policyTypes = Array.isArray(s.egress) && s.egress.length ? ['Ingress', 'Egress'] : ['Ingress'];
  }
}

export function defaultStorageClass(sc: Obj): void {
  setDefault(sc, 'reclaimPolicy', 'Delete');
  setDefault(sc, 'volumeBindingMode', 'Immediate');
}

export function defaultPriorityClass(pc: Obj): void {
  setDefault(pc, 'preemptionPolicy', 'PreemptLowerPriority');
}

export function defaultRoleBinding(b: Obj): void {
  if (isObj(b.roleRef)) setDefault(b.roleRef, 'apiGroup', RBAC_GROUP);
  each(b.subjects, (s) => {
    if (!s.apiGroup && (s.kind === 'User' || s.kind === 'Group')) s.apiGroup = RBAC_GROUP;
  });
}

export function defaultEndpointSlice(slice: Obj): void {
  each(slice.ports, (p) => {
    setDefault(p, 'protocol', 'TCP');
    setDefault(p, 'name', '', false);
  });
}

export function defaultCRD(crd: Obj): void {
  if (!isObj(crd.spec)) crd.spec = {};
  const s = crd.spec;
  if (isObj(s.names) && s.names.kind) {
    setDefault(s.names, 'singular', String(s.names.kind).toLowerCase());
    setDefault(s.names, 'listKind', `${s.names.kind}List`);
  }
  if (!isObj(s.conversion)) s.conversion = { strategy: 'None' };
  const svc = s.conversion.webhook?.clientConfig?.service;
  if (s.conversion.strategy === 'Webhook' && isObj(svc)) setDefault(svc, 'port', 443, false);
}
