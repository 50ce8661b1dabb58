// Priority admission (Kubernetes' plugin/pkg/admission/priority): a pod's spec.priority and
// spec.preemptionPolicy come from its PriorityClass (or the cluster's global default class, the
// lowest-valued if several), never from the client; a class that does not exist is refused. The
// scheduler orders its queue and preempts by spec.priority. System classes cannot be deleted.
import type { Store } from '../storage/types.js';
import { ApiError } from '../api/status.js';

type Obj = Record<string, any>;

export const SYSTEM_PRIORITY_CLASSES = new Set(['system-cluster-critical', 'system-node-critical']);

function forbidden(pod: Obj, reason: string): ApiError {
  const name = pod.metadata?.name ?? '';
  return new ApiError(403, 'Forbidden', `pods "${name}" is forbidden: ${reason}`, { name, kind: 'pods' });
}

export function admitPodPriority(store: Store, pod: Obj): void {
  const spec = pod.spec;
  if (!spec) return;
  let pc: Obj | undefined;
  if (spec.priorityClassName) {
    pc = store.get(`/scheduling.k8s.io/priorityclasses/${spec.priorityClassName}`)?.obj;
    if (!pc) throw forbidden(pod, `no PriorityClass with name ${spec.priorityClassName} was found`);
  } else {
    for (const { obj } of store.list('/scheduling.k8s.io/priorityclasses/').items) {
      if (obj.globalDefault && (!pc || obj.value < pc.value)) pc = obj;
    }
    if (pc) spec.priorityClassName = pc.metadata.name;
  }
  const value = pc ? Number(pc.value ?? 0) : 0;
  if (spec.priority !== undefined && spec.priority !== null && spec.priority !== value) {
    throw forbidden(pod, `the integer value of priority (${spec.priority}) must not be provided in pod spec; priority admission controller computed ${value} from the given PriorityClass name`);
  }
  spec.priority = value;
  const policy = pc?.preemptionPolicy ?? 'PreemptLowerPriority';
  if (spec.preemptionPolicy !== undefined && spec.preemptionPolicy !== null && spec.preemptionPolicy !== policy) {
    throw forbidden(pod, `the string value of PreemptionPolicy (${spec.preemptionPolicy}) must not be provided in pod spec; priority admission controller computed ${policy} from the given PriorityClass name`);
  }
  spec.preemptionPolicy = policy;
}

/** The system classes stay (Kubernetes' PriorityClass registry refuses their deletion). */
export function admitPriorityClassDelete(pc: Readonly<Obj>): void {
  const name = pc.metadata?.name;
  if (SYSTEM_PRIORITY_CLASSES.has(name)) {
    throw new ApiError(403, 'Forbidden', `priorityclasses.scheduling.k8s.io "${name}" is forbidden: this is a system priority class and cannot be deleted`,
      { name, group: 'scheduling.k8s.io', kind: 'priorityclasses' });
  }
}
