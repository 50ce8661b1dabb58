// The ReplicaSet controller: keeps `spec.replicas` active pods that match a ReplicaSet's selector and
// that it owns (controller ownerReference), as kube-controller-manager's replicaset controller does:
// it adopts matching orphans and releases owned pods that stopped matching, creates missing pods in
// slow-start batches (1, 2, 4, ...) of at most `burstReplicas`, deletes surplus ones least valuable
// first, and reports status. Expectations remember the creations and deletions in flight, so a
// resync before the informer has seen them does not create or delete twice.
//
// This file is the wiring (informers, queue, event handlers); one ReplicaSet's reconcile is sync.ts,
// the rules it applies ../replicaset.ts.
import { matchLabelSelectorObject, selectingIndexKeys, selectorIndexKeys } from '../../api/selectors.js';
import type { KObject } from '../../api/object.js';
import { Resources } from '../../client/types.js';
import { enqueueOnChange, runController, type RunningController } from '../../client/controller.js';
import { keyOf } from '../../client/informer.js';
import { WorkQueue } from '../../client/workqueue.js';
import type { ControllerContext } from '../context.js';
import { Expectations } from '../expectations.js';
import { byControllerUid, orphansByNamespace } from '../replicaset.js';
import {
  IDX_ORPHAN_PODS, IDX_PODS_BY_CONTROLLER, IDX_RS_BY_CONTROLLER, IDX_RS_BY_SELECTOR, ReplicaSetSync,
} from './sync.js';
import { controllerOf } from '../../api/object.js';
import { isPodReady } from '../../api/pod.js';


type Obj = KObject & Record<string, any>;

/** Kubernetes' default: never more than this many creations or deletions in one sync. */
export const BURST_REPLICAS = 500;

export interface ReplicaSetControllerOptions {
  workers?: number;
  burstReplicas?: number;
}

export function startReplicaSetController(ctx: ControllerContext, opts: ReplicaSetControllerOptions = {}): RunningController {
  const rsInf = ctx.informers.informerFor<Obj>(Resources.replicaSets, {
    indexers: {
      [IDX_RS_BY_CONTROLLER]: byControllerUid,
      [IDX_RS_BY_SELECTOR]: (rs) => selectorIndexKeys(rs.metadata.namespace ?? '', rs.spec?.selector),
    },
  });
  const podInf = ctx.informers.informerFor<Obj>(Resources.pods, {
    indexers: { [IDX_PODS_BY_CONTROLLER]: byControllerUid, [IDX_ORPHAN_PODS]: orphansByNamespace },
  });
  const queue = new WorkQueue<string>();
  const expectations = new Expectations();
  const sync = new ReplicaSetSync({
    client: ctx.client, events: ctx.events, listers: { sets: rsInf, pods: podInf }, expectations,
    burstReplicas: opts.burstReplicas ?? BURST_REPLICAS,
  });

  const ownerOf = (pod: Obj, ref = controllerOf(pod)): Obj | undefined => {
    if (!ref || ref.kind !== 'ReplicaSet' || !ref.apiVersion.startsWith('apps/')) return undefined;
    const rs = rsInf.getByName(pod.metadata.namespace, ref.name);
    return rs && rs.metadata.uid === ref.uid ? rs : undefined;
  };
  /** The ReplicaSets that may adopt an orphan: those whose selector selects it (kube's getPodReplicaSets). */
  const enqueueMatching = (pod: Obj) => {
    for (const key of selectingIndexKeys(pod.metadata.namespace ?? '', pod.metadata.labels)) {
      for (const rs of rsInf.byIndex(IDX_RS_BY_SELECTOR, key)) {
        if (matchLabelSelectorObject(rs.spec?.selector, pod.metadata.labels)) queue.add(keyOf(rs));
      }
    }
  };
  const podDeleted = (pod: Obj) => {
    const rs = ownerOf(pod);
    if (!rs) return;
    const key = keyOf(rs);
    expectations.deletionObserved(key, keyOf(pod));
    queue.add(key);
  };

  rsInf.addHandlers(enqueueOnChange(queue));
  podInf.addHandlers({
    onAdd: (pod) => {
      if (pod.metadata.deletionTimestamp) { podDeleted(pod); return; }
      if (controllerOf(pod)) {
        const rs = ownerOf(pod);
        if (!rs) return;
        expectations.creationObserved(keyOf(rs));
        queue.add(keyOf(rs));
        return;
      }
      enqueueMatching(pod);
    },
    onUpdate: (old, cur) => {
      if (old.metadata.resourceVersion === cur.metadata.resourceVersion) return;
      const labelsChanged = JSON.stringify(old.metadata.labels ?? {}) !== JSON.stringify(cur.metadata.labels ?? {});
      if (cur.metadata.deletionTimestamp) {
        // Being deleted counts as deleted: the controller replaces it without waiting for it to go.
        podDeleted(cur);
        if (labelsChanged) podDeleted(old);
        return;
      }
      const oldRef = controllerOf(old), curRef = controllerOf(cur);
      const refChanged = oldRef?.uid !== curRef?.uid;
      if (refChanged && oldRef) {
        const rs = ownerOf(old, oldRef);
        if (rs) queue.add(keyOf(rs));
      }
      if (curRef) {
        const rs = ownerOf(cur, curRef);
        if (!rs) return;
        queue.add(keyOf(rs));
        // Becoming available takes minReadySeconds more: look again then, not only on the next event.
        const minReady = rs.spec?.minReadySeconds ?? 0;
        if (!isPodReady(old) && isPodReady(cur) && minReady > 0) queue.addAfter(keyOf(rs), (minReady + 1) * 1000);
        return;
      }
      if (labelsChanged || refChanged) enqueueMatching(cur);
    },
    onDelete: podDeleted,
  });

  return runController({
    name: 'replicaset-controller', queue, informers: [rsInf, podInf], workers: opts.workers ?? 5, reconcile: (key) => sync.reconcile(key),
  });
}
