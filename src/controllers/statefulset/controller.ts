// The StatefulSet controller (pkg/controller/statefulset): pods with stable names `<set>-<ordinal>`,
// each with its own PersistentVolumeClaims `<claim>-<set>-<ordinal>` from volumeClaimTemplates.
// OrderedReady creates one pod at a time in ordinal order, each only after the previous is Running and
// Ready, and removes them highest ordinal first; Parallel does both without waiting. RollingUpdate
// replaces pods from the highest ordinal down to `partition`, one at a time and only while every pod
// is healthy; OnDelete replaces a pod when someone deletes it. Templates are ControllerRevisions; each
// pod's `controller-revision-hash` label names the revision it runs.
//
// Names are deterministic, so a restarted loop finds what it made and never makes it twice: a
// create that races an earlier one fails with AlreadyExists and the next pass sees the pod.
//
// This file is the wiring (informers, queue, event handlers); one StatefulSet's reconcile is
// sync.ts, its status status.ts, member names pods.ts.
import type { KObject } from '../../api/object.js';
import { Resources } from '../../client/types.js';
import { enqueueOnChange, runController, type RunningController } from '../../client/controller.js';
import { keyOf } from '../../client/informer.js';
import { WorkQueue } from '../../client/workqueue.js';
import type { ControllerContext } from '../context.js';
import { controllerUidIndex } from '../workload-pods.js';
import { STATEFULSET_KIND, STATEFULSET_OWNER_INDEX, StatefulSetSync } from './sync.js';
import { controllerOf } from '../../api/object.js';


export { POD_INDEX_LABEL, POD_NAME_LABEL, claimName, ordinalOf } from './pods.js';

export interface StatefulSetControllerOptions {
  workers?: number;
  now?: () => number;
}

export function startStatefulSetController(ctx: ControllerContext, opts: StatefulSetControllerOptions = {}): RunningController {
  const byOwner = { [STATEFULSET_OWNER_INDEX]: controllerUidIndex(STATEFULSET_KIND) };
  const setInf = ctx.informers.informerFor(Resources.statefulSets);
  const podInf = ctx.informers.informerFor(Resources.pods, { indexers: byOwner });
  const revInf = ctx.informers.informerFor(Resources.controllerRevisions, { indexers: byOwner });
  const pvcInf = ctx.informers.informerFor(Resources.persistentVolumeClaims);
  const queue = new WorkQueue<string>();
  const sync = new StatefulSetSync({
    client: ctx.client, events: ctx.events, now: opts.now ?? Date.now,
    listers: { sets: setInf, pods: podInf, revisions: revInf, claims: pvcInf },
  });

  const ownerKey = (pod: KObject): string | undefined => {
    const ref = controllerOf(pod);
    if (!ref || ref.kind !== STATEFULSET_KIND) return undefined;
    const set = setInf.getByName(pod.metadata.namespace, ref.name);
    return set && set.metadata.uid === ref.uid ? keyOf(set) : undefined;
  };
  const enqueuePod = (p: KObject) => { const k = ownerKey(p); if (k) queue.add(k); };
  setInf.addHandlers(enqueueOnChange(queue));
  podInf.addHandlers({ onAdd: enqueuePod, onUpdate: (_o, n) => enqueuePod(n), onDelete: enqueuePod });

  return runController({
    name: 'statefulset-controller', workers: opts.workers ?? 2, queue, informers: [setInf, podInf, revInf, pvcInf],
    reconcile: (key) => sync.reconcile(key),
  });
}
