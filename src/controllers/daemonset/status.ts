// The status a DaemonSet reports for the pods on its nodes (updateDaemonSetStatus). No I/O.
import type { KObject } from '../../api/object.js';
import { eligibilityChecker, targetNode } from './nodes.js';
import { byCreation, isPodAvailable, isPodReady, msUntilAvailable } from '../../api/pod.js';


type Obj = Record<string, any>;

/** Older first, and a running pod before a pending one of the same age (podByCreationTimestampAndPhase). */
function byCreationAndPhase(a: KObject, b: KObject): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  if (ta === tb) {
    const ra = (a as Obj).status?.phase === 'Running' ? 0 : 1;
    const rb = (b as Obj).status?.phase === 'Running' ? 0 : 1;
    if (ra !== rb) return ra - rb;
  }
  return byCreation(a, b);
}

/**
 * The status for `ds` given its pods and the cluster's nodes at time `t`; `recheckInMs` is when a
 * ready pod becomes available (minReadySeconds), so the count can be updated then.
 */
export function daemonSetStatus(ds: Obj, pods: KObject[], nodes: KObject[], isUpdated: (p: KObject) => boolean,
  t: number): { status: Obj; recheckInMs?: number } {
  const minReady = Number(ds.spec?.minReadySeconds ?? 0);
  const eligible = eligibilityChecker(ds.spec?.template ?? {});
  let recheckInMs: number | undefined;
  const byNode = new Map<string, KObject[]>();
  for (const p of pods) {
    const node = targetNode(p);
    if (!node) continue;
    let list = byNode.get(node);
    if (!list) byNode.set(node, list = []);
    list.push(p);
  }
  let desired = 0, current = 0, misscheduled = 0, ready = 0, available = 0, updated = 0;
  for (const n of nodes) {
    const name = String(n.metadata.name);
    const onNode = byNode.get(name) ?? [];
    if (eligible(n).shouldRun) {
      desired++;
      if (onNode.length === 0) continue;
      current++;
      const pod = [...onNode].sort(byCreationAndPhase)[0]!;
      if (isPodReady(pod)) {
        ready++;
        if (isPodAvailable(pod, minReady, t)) available++;
        else {
          const ms = msUntilAvailable(pod, minReady, t) ?? 0;
          recheckInMs = recheckInMs === undefined ? ms : Math.min(recheckInMs, ms);
        }
      }
      if (isUpdated(pod)) updated++;
    } else if (onNode.length > 0) {
      misscheduled++;
    }
  }
  const status: Obj = {
    ...(ds.status ?? {}),
    currentNumberScheduled: current, numberMisscheduled: misscheduled, desiredNumberScheduled: desired,
    numberReady: ready, observedGeneration: ds.metadata.generation,
    updatedNumberScheduled: updated, numberAvailable: available, numberUnavailable: desired - available,
  };
  for (const k of ['numberAvailable', 'numberUnavailable', 'updatedNumberScheduled']) if (!status[k]) delete status[k];
  return { status, recheckInMs };
}
