// The DaemonSet controller (pkg/controller/daemon): one pod per eligible node. A node is eligible when
// the template's nodeSelector and required node affinity match it and its NoSchedule/NoExecute taints
// are tolerated (conditions don't count: pods carry the default DaemonSet tolerations, so NotReady
// or cordoned nodes still get their daemons). Each pod is pinned to its node by a required node
// affinity `matchFields metadata.name In [node]`, so the scheduler binds it there.
//
// Updates follow `spec.updateStrategy`: RollingUpdate replaces old pods at most maxUnavailable at a
// time, or with maxSurge a new pod starts beside the old one, which goes once the new is available;
// OnDelete replaces a pod only when someone deletes it. Templates are recorded as ControllerRevisions
// and pods labelled `controller-revision-hash` and `pod-template-generation`.
//
// This file is the wiring (informers, queue, event handlers); one DaemonSet's reconcile is sync.ts,
// where its pods belong nodes.ts, the rolling update's step update.ts, its status status.ts.
import type { KObject } from '../../api/object.js';
import { Resources } from '../../client/types.js';
import { enqueueAll, runController, type RunningController } from '../../client/controller.js';
import { keyOf } from '../../client/informer.js';
import { WorkQueue } from '../../client/workqueue.js';
import type { ControllerContext } from '../context.js';
import { Expectations } from '../expectations.js';
import { controllerUidIndex } from '../workload-pods.js';
import { DAEMONSET_KIND, DAEMONSET_OWNER_INDEX, DaemonSetSync } from './sync.js';
import { controllerOf } from '../../api/object.js';


export { daemonTolerations, eligibilityChecker, pinToNode, targetNode, type Eligibility } from './nodes.js';
export { TEMPLATE_GENERATION_LABEL } from './sync.js';

type Obj = Record<string, any>;

export interface DaemonSetControllerOptions {
  workers?: number;
  /** The clock minReadySeconds is judged by (tests inject one). */
  now?: () => number;
}

export function startDaemonSetController(ctx: ControllerContext, opts: DaemonSetControllerOptions = {}): RunningController {
  const byOwner = { [DAEMONSET_OWNER_INDEX]: controllerUidIndex(DAEMONSET_KIND) };
  const dsInf = ctx.informers.informerFor(Resources.daemonSets);
  const podInf = ctx.informers.informerFor(Resources.pods, { indexers: byOwner });
  const nodeInf = ctx.informers.informerFor(Resources.nodes);
  const revInf = ctx.informers.informerFor(Resources.controllerRevisions, { indexers: byOwner });
  const queue = new WorkQueue<string>();
  /** How long each DaemonSet's last sync took (ms), which spaces the syncs pod status updates ask for. */
  const syncMs = new Map<string, number>();
  const expectations = new Expectations();
  const sync = new DaemonSetSync({
    client: ctx.client, events: ctx.events, expectations, now: opts.now ?? Date.now,
    listers: { sets: dsInf, pods: podInf, nodes: nodeInf, revisions: revInf },
  });

  const enqueueAllSets = () => enqueueAll(queue, dsInf);
  const ownerKey = (pod: KObject): string | undefined => {
    const ref = controllerOf(pod);
    if (!ref || ref.kind !== DAEMONSET_KIND) return undefined;
    const ds = dsInf.getByName(pod.metadata.namespace, ref.name);
    return ds && ds.metadata.uid === ref.uid ? keyOf(ds) : undefined;
  };

  dsInf.addHandlers({
    onAdd: (o) => queue.add(keyOf(o)),
    onUpdate: (_o, n) => queue.add(keyOf(n)),
    onDelete: (o) => { expectations.forget(keyOf(o)); queue.add(keyOf(o)); },
  });
  podInf.addHandlers({
    onAdd: (p) => {
      const k = ownerKey(p);
      if (!k) return;
      expectations.creationObserved(k);
      queue.add(k);
    },
    onUpdate: (o, p) => {
      const k = ownerKey(p);
      if (!k) return;
      if (!o.metadata.deletionTimestamp && p.metadata.deletionTimestamp) {
        expectations.deletionObserved(k, keyOf(p));
        queue.add(k);
        return;
      }
      // A daemon pod's status changed (it started, turned Ready): one sync walks every node, so at
      // 5,000 nodes a burst of such updates kept a sync running back to back (8 % of the server's
      // thread). Such syncs wait for 20 times the last one's duration (at most 1 s), so they take at
      // most about 5 % of the time; a small DaemonSet's syncs still follow at once.
      queue.addAfter(k, Math.min(1000, 20 * (syncMs.get(k) ?? 0)));
    },
    onDelete: (p) => {
      const k = ownerKey(p);
      if (!k) return;
      if (!p.metadata.deletionTimestamp) expectations.deletionObserved(k, keyOf(p));
      queue.add(k);
    },
  });
  nodeInf.addHandlers({
    onAdd: enqueueAllSets,
    // Heartbeats change only status; eligibility depends on labels, taints and the name.
    onUpdate: (o, n) => {
      if (JSON.stringify(o.metadata.labels ?? {}) !== JSON.stringify(n.metadata.labels ?? {})
        || JSON.stringify((o as Obj).spec?.taints ?? []) !== JSON.stringify((n as Obj).spec?.taints ?? [])) enqueueAllSets();
    },
    onDelete: enqueueAllSets,
  });

  // Acting on a half-filled cache would delete pods of nodes not listed yet: wait, as upstream does.
  return runController({
    name: 'daemonset-controller', workers: opts.workers ?? 2, queue, informers: [dsInf, podInf, nodeInf, revInf],
    reconcile: async (key) => {
      const t0 = performance.now();
      try {
        return await sync.reconcile(key);
      } finally {
        if (dsInf.get(key)) syncMs.set(key, performance.now() - t0);
        else syncMs.delete(key);
      }
    },
  });
}
