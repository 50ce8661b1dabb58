// The status a StatefulSet reports for its member pods (updateStatefulSetStatus). No I/O.
import type { KObject } from '../../api/object.js';
import { REVISION_HASH_LABEL } from '../revision-hash.js';
import { isTerminating } from '../workload-pods.js';
import { ordinalOf } from './pods.js';
import { isPodAvailable, isPodReady, msUntilAvailable } from '../../api/pod.js';


type Obj = Record<string, any>;

export interface Revisions { currentHash: string; updateHash: string; currentName: string; updateName: string }

/**
 * The status for `set` given its pods at time `t`; `recheckInMs` is when a ready pod becomes
 * available (minReadySeconds), so the count can be updated then.
 */
export function statefulSetStatus(set: Obj, pods: KObject[], rev: Revisions, t: number): { status: Obj; recheckInMs?: number } {
  const minReady = Number(set.spec?.minReadySeconds ?? 0);
  let recheckInMs: number | undefined;
  let replicas = 0, ready = 0, available = 0, current = 0, updated = 0;
  for (const p of pods) {
    if (ordinalOf(String(set.metadata.name), String(p.metadata.name)) < 0) continue;
    replicas++;
    if ((p as Obj).status?.phase === 'Running' && isPodReady(p) && !isTerminating(p)) {
      ready++;
      if (isPodAvailable(p, minReady, t)) available++;
      else {
        const ms = msUntilAvailable(p, minReady, t) ?? 0;
        recheckInMs = recheckInMs === undefined ? ms : Math.min(recheckInMs, ms);
      }
    }
    if (isTerminating(p)) continue;
    const h = p.metadata.labels?.[REVISION_HASH_LABEL];
    if (h === rev.currentHash) current++;
    if (h === rev.updateHash) updated++;
  }
  const status: Obj = {
    ...(set.status ?? {}),
    observedGeneration: set.metadata.generation, replicas, readyReplicas: ready, currentReplicas: current,
    updatedReplicas: updated, availableReplicas: available, currentRevision: rev.currentName, updateRevision: rev.updateName,
  };
  status.collisionCount = Number(set.status?.collisionCount ?? 0);
  // A finished rolling update makes the update revision the current one (completeRollingUpdate).
  if ((set.spec?.updateStrategy?.type ?? 'RollingUpdate') === 'RollingUpdate' && updated === replicas && ready === replicas
    && replicas === Number(set.spec?.replicas ?? 1)) {
    status.currentReplicas = updated;
    status.currentRevision = rev.updateName;
  }
  return { status, recheckInMs };
}
