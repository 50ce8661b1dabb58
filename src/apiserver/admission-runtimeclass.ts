// RuntimeClass admission (Kubernetes' plugin/pkg/admission/runtimeclass): a pod naming a
// RuntimeClass is admitted only if that class exists; the class's fixed pod overhead becomes the
// pod's spec.overhead (which the scheduler and quota then count), and its scheduling constraints are
// merged into the pod (node selector entries, where a conflicting pod entry is refused; tolerations
// the pod does not already have).
import type { Store } from '../storage/types.js';
import { ApiError } from '../api/status.js';
import { semanticEqual } from '../api/validation/field.js';

type Obj = Record<string, any>;

function forbidden(pod: Obj, reason: string): ApiError {
  const name = pod.metadata?.name ?? '';
  return new ApiError(403, 'Forbidden', `pods "${name}" is forbidden: pod rejected: ${reason}`, { name, kind: 'pods' });
}

export function admitRuntimeClass(store: Store, pod: Obj): void {
  const spec = pod.spec;
  if (!spec) return;
  const name = spec.runtimeClassName;
  if (name === undefined || name === null || name === '') {
    if (spec.overhead !== undefined && spec.overhead !== null) {
      throw forbidden(pod, 'Pod Overhead set without corresponding RuntimeClass defined Overhead');
    }
    return;
  }
  const rc = store.get(`/node.k8s.io/runtimeclasses/${name}`)?.obj;
  if (!rc) throw forbidden(pod, `RuntimeClass "${name}" not found`);

  const podFixed = rc.overhead?.podFixed;
  if (podFixed) {
    if (spec.overhead && !semanticEqual(spec.overhead, podFixed)) throw forbidden(pod, "Pod's Overhead doesn't match RuntimeClass's defined Overhead");
    spec.overhead = structuredClone(podFixed);
  } else if (spec.overhead) {
    throw forbidden(pod, 'Pod Overhead set without corresponding RuntimeClass defined Overhead');
  }

  const sched = rc.scheduling;
  if (!sched) return;
  const selector: Record<string, string> = sched.nodeSelector ?? {};
  if (Object.keys(selector).length) {
    const merged: Record<string, string> = { ...(spec.nodeSelector ?? {}) };
    for (const [k, v] of Object.entries(selector)) {
      if (k in merged && merged[k] !== v) {
        throw forbidden(pod, `conflict: runtimeClass.scheduling.nodeSelector[${k}] = ${v}; pod.spec.nodeSelector[${k}] = ${merged[k]}`);
      }
      merged[k] = v;
    }
    spec.nodeSelector = merged;
  }
  const tolerations: Obj[] = Array.isArray(sched.tolerations) ? sched.tolerations : [];
  if (tolerations.length) {
    const existing: Obj[] = Array.isArray(spec.tolerations) ? spec.tolerations : [];
    const missing = tolerations.filter((t) => !existing.some((e) => semanticEqual(e, t)));
    if (missing.length) spec.tolerations = [...existing, ...structuredClone(missing)];
  }
}
