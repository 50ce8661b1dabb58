// Defaults of the cluster-extension kinds (admissionregistration/v1, flowcontrol/v1, storage/v1 CSI,
// apiregistration/v1), as each group's v1/defaults.go sets them.
import { isObj, setDefault } from './pod.js';

type Obj = Record<string, any>;
const each = (list: unknown, fn: (o: Obj) => void) => { if (Array.isArray(list)) for (const o of list) if (isObj(o)) fn(o); };

function defaultRules(rules: unknown): void {
  each(rules, (r) => setDefault(r, 'scope', '*'));
}

function defaultWebhook(w: Obj, mutating: boolean): void {
  setDefault(w, 'failurePolicy', 'Fail');
  setDefault(w, 'matchPolicy', 'Equivalent');
  if (!isObj(w.namespaceSelector)) w.namespaceSelector = {};
  if (!isObj(w.objectSelector)) w.objectSelector = {};
  setDefault(w, 'timeoutSeconds', 10, false);
  if (mutating) setDefault(w, 'reinvocationPolicy', 'Never');
  defaultRules(w.rules);
  const svc = w.clientConfig?.service;
  if (isObj(svc)) setDefault(svc, 'port', 443, false);
}

export const defaultMutatingWebhookConfiguration = (c: Obj) => each(c.webhooks, (w) => defaultWebhook(w, true));
export const defaultValidatingWebhookConfiguration = (c: Obj) => each(c.webhooks, (w) => defaultWebhook(w, false));

export function defaultValidatingAdmissionPolicy(p: Obj): void {
  if (!isObj(p.spec)) p.spec = {};
  setDefault(p.spec, 'failurePolicy', 'Fail');
  const mc = p.spec.matchConstraints;
  if (isObj(mc)) {
    setDefault(mc, 'matchPolicy', 'Equivalent');
    if (!isObj(mc.namespaceSelector)) mc.namespaceSelector = {};
    if (!isObj(mc.objectSelector)) mc.objectSelector = {};
    defaultRules(mc.resourceRules);
    defaultRules(mc.excludeResourceRules);
  }
}

export function defaultValidatingAdmissionPolicyBinding(b: Obj): void {
  const mr = b.spec?.matchResources;
  if (isObj(mr)) {
    setDefault(mr, 'matchPolicy', 'Equivalent');
    if (!isObj(mr.namespaceSelector)) mr.namespaceSelector = {};
    if (!isObj(mr.objectSelector)) mr.objectSelector = {};
    defaultRules(mr.resourceRules);
    defaultRules(mr.excludeResourceRules);
  }
}

export function defaultFlowSchema(fs: Obj): void {
  if (!isObj(fs.spec)) fs.spec = {};
  setDefault(fs.spec, 'matchingPrecedence', 1000, false);
}

export function defaultPriorityLevelConfiguration(p: Obj): void {
  const s = p.spec;
  if (!isObj(s)) return;
  if (s.type === 'Exempt') {
    if (!isObj(s.exempt)) s.exempt = {};
    setDefault(s.exempt, 'nominalConcurrencyShares', 0, false);
    setDefault(s.exempt, 'lendablePercent', 0, false);
  }
  if (isObj(s.limited)) {
    setDefault(s.limited, 'nominalConcurrencyShares', 30, false);
    setDefault(s.limited, 'lendablePercent', 0, false);
    const lr = s.limited.limitResponse;
    if (isObj(lr) && lr.type === 'Queue') {
      if (!isObj(lr.queuing)) lr.queuing = {};
      setDefault(lr.queuing, 'queues', 64, false);
      setDefault(lr.queuing, 'handSize', 8, false);
      setDefault(lr.queuing, 'queueLengthLimit', 50, false);
    }
  }
}

export function defaultCSIDriver(d: Obj): void {
  if (!isObj(d.spec)) d.spec = {};
  const s = d.spec;
  setDefault(s, 'attachRequired', true, false);
  setDefault(s, 'podInfoOnMount', false, false);
  setDefault(s, 'storageCapacity', false, false);
  setDefault(s, 'fsGroupPolicy', 'ReadWriteOnceWithFSType');
  setDefault(s, 'requiresRepublish', false, false);
  setDefault(s, 'seLinuxMount', false, false);
  if (!Array.isArray(s.volumeLifecycleModes) || s.volumeLifecycleModes.length === 0) s.volumeLifecycleModes = ['Persistent'];
}

export function defaultAPIService(a: Obj): void {
  const svc = a.spec?.service;
  if (isObj(svc)) setDefault(svc, 'port', 443, false);
}
