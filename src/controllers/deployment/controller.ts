// The Deployment controller: informers on Deployments, ReplicaSets and pods feed one work queue of
// Deployment keys; each reconcile claims the Deployment's ReplicaSets (adopting matching orphans,
// releasing ones that stopped matching), then either only reports status (being deleted), resizes
// (paused, or spec.replicas changed), or takes one step of its strategy. ReplicaSet names are
// deterministic (`<deployment>-<pod-template-hash>`), so a restart mid-rollout finds the same sets
// and carries on without creating any twice.
import { controllerOf, controllerRef } from '../../api/object.js';
import { matchLabelSelectorObject } from '../../api/selectors.js';
import { Resources } from '../../client/types.js';
import type { ControllerContext } from '../context.js';
import { enqueueOnChange, runController, type RunningController } from '../../client/controller.js';
import { keyOf } from '../../client/informer.js';
import { WorkQueue } from '../../client/workqueue.js';
import { byControllerUid, byNamespace, claimObjects, orphansByNamespace } from '../replicaset.js';
import { rolloutRecreate } from './recreate.js';
import { rolloutRolling } from './rolling.js';
import type { Obj } from './sizes.js';
import { DeploymentSync } from './sync.js';


const IDX_DEPLOYMENTS_BY_NAMESPACE = 'deployment/by-namespace';
const IDX_RS_BY_CONTROLLER = 'deployment/replicasets-by-controller';
const IDX_ORPHAN_RS = 'deployment/orphan-replicasets-by-namespace';
const IDX_PODS_BY_CONTROLLER = 'deployment/pods-by-controller';

export interface DeploymentControllerOptions {
  workers?: number;
}

export function startDeploymentController(ctx: ControllerContext, opts: DeploymentControllerOptions = {}): RunningController {
  const { client, events } = ctx;
  const dInf = ctx.informers.informerFor<Obj>(Resources.deployments, { indexers: { [IDX_DEPLOYMENTS_BY_NAMESPACE]: byNamespace } });
  const rsInf = ctx.informers.informerFor<Obj>(Resources.replicaSets, {
    indexers: { [IDX_RS_BY_CONTROLLER]: byControllerUid, [IDX_ORPHAN_RS]: orphansByNamespace },
  });
  const podInf = ctx.informers.informerFor<Obj>(Resources.pods, { indexers: { [IDX_PODS_BY_CONTROLLER]: byControllerUid } });
  const queue = new WorkQueue<string>();

  const ownerOf = (rs: Obj, ref = controllerOf(rs)): Obj | undefined => {
    if (!ref || ref.kind !== 'Deployment' || !ref.apiVersion.startsWith('apps/')) return undefined;
    const d = dInf.getByName(rs.metadata.namespace, ref.name);
    return d && d.metadata.uid === ref.uid ? d : undefined;
  };
  const enqueueOwner = (rs: Obj, ref = controllerOf(rs)) => {
    const d = ownerOf(rs, ref);
    if (d) queue.add(keyOf(d));
  };
  const enqueueMatching = (rs: Obj) => {
    for (const d of dInf.byIndex(IDX_DEPLOYMENTS_BY_NAMESPACE, rs.metadata.namespace ?? '')) {
      if (matchLabelSelectorObject(d.spec?.selector, rs.metadata.labels)) queue.add(keyOf(d));
    }
  };

  dInf.addHandlers(enqueueOnChange(queue));
  rsInf.addHandlers({
    onAdd: (rs) => {
      if (controllerOf(rs)) enqueueOwner(rs);
      else if (!rs.metadata.deletionTimestamp) enqueueMatching(rs);
    },
    onUpdate: (old, cur) => {
      if (old.metadata.resourceVersion === cur.metadata.resourceVersion) return;
      const oldRef = controllerOf(old), curRef = controllerOf(cur);
      const refChanged = oldRef?.uid !== curRef?.uid;
      if (refChanged && oldRef) enqueueOwner(old, oldRef);
      if (curRef) { enqueueOwner(cur, curRef); return; }
      const labelsChanged = JSON.stringify(old.metadata.labels ?? {}) !== JSON.stringify(cur.metadata.labels ?? {});
      if (labelsChanged || refChanged) enqueueMatching(cur);
    },
    onDelete: (rs) => enqueueOwner(rs),
  });
  // Recreate waits for the old pods to be gone: their deletion is what lets it go on.
  podInf.addHandlers({
    onDelete: (pod) => {
      const ref = controllerOf(pod);
      if (!ref || ref.kind !== 'ReplicaSet') return;
      const rs = rsInf.getByName(pod.metadata.namespace, ref.name);
      const d = rs && rs.metadata.uid === ref.uid ? ownerOf(rs) : undefined;
      if (d && d.spec?.strategy?.type === 'Recreate') queue.add(keyOf(d));
    },
  });

  const podsOf = (rsUid: string) => podInf.byIndex(IDX_PODS_BY_CONTROLLER, rsUid);

  const reconcile = async (key: string) => {
    const cached = dInf.get(key);
    if (!cached) return undefined;
    const d = structuredClone(cached) as Obj;
    const sel = d.spec?.selector ?? {};
    if (!Object.keys(sel.matchLabels ?? {}).length && !(sel.matchExpressions ?? []).length) {
      events.record(d, 'Warning', 'SelectingAll', 'This deployment is selecting all pods. A non-empty selector is required.');
      if ((d.status?.observedGeneration ?? 0) < (d.metadata.generation ?? 0)) {
        await client.updateStatus(Resources.deployments, d.metadata.namespace, { ...d, status: { ...(d.status ?? {}), observedGeneration: d.metadata.generation } });
      }
      return undefined;
    }
    const ns = d.metadata.namespace!;
    const rsList = await claimObjects({
      client, resource: Resources.replicaSets, owner: d, ownerRef: controllerRef(d, 'apps/v1', 'Deployment'),
      candidates: [...rsInf.byIndex(IDX_RS_BY_CONTROLLER, d.metadata.uid!), ...rsInf.byIndex(IDX_ORPHAN_RS, ns)],
      matches: (rs) => matchLabelSelectorObject(d.spec.selector, rs.metadata.labels),
      ownerResource: Resources.deployments,
    });
    const s = new DeploymentSync({ client, events, cachedReplicaSet: (n, name) => rsInf.getByName(n, name) }, d, rsList.map((rs) => structuredClone(rs) as Obj));

    if (d.metadata.deletionTimestamp) {
      // Being deleted (e.g. foreground): report, change nothing.
      const { newRS, oldRSs } = await s.getAllReplicaSetsAndSyncRevision(false);
      await s.syncDeploymentStatus([...oldRSs, newRS], newRS);
      return undefined;
    }
    await s.checkPausedConditions();
    if (s.d.spec.paused || await s.isScalingEvent()) {
      await s.sync();
      return undefined;
    }
    const after = s.d.spec.strategy?.type === 'Recreate' ? await rolloutRecreate(s, podsOf) : await rolloutRolling(s);
    return after === undefined ? undefined : { requeueAfterMs: after };
  };

  return runController({ name: 'deployment-controller', queue, informers: [dInf, rsInf, podInf], workers: opts.workers ?? 5, reconcile });
}
