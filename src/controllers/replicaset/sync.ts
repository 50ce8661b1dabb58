// One ReplicaSet's reconcile, against listers and a client (no informer, queue or timer of its own):
// claim the pods, create or delete toward spec.replicas (slow start, at most `burstReplicas`), and
// report status. The wiring is controller.ts; the rules it applies are ../replicaset.ts.
import type { KObject } from '../../api/object.js';
import { matchLabelSelectorObject } from '../../api/selectors.js';
import { ApiError } from '../../api/status.js';
import { isNotFound, Resources, type ApiClient } from '../../client/types.js';
import type { ReconcileResult } from '../../client/controller.js';
import { keyOf, type Lister } from '../../client/informer.js';
import type { Expectations } from '../expectations.js';
import { slowStartBatch } from '../slow-start.js';
import { claimObjects, podsToDelete, replicaSetStatus } from '../replicaset.js';
import { type EventRecorder } from '../../client/events.js';
import { controllerOf, controllerRef } from '../../api/object.js';
import { isPodActive } from '../../api/pod.js';

type Obj = KObject & Record<string, any>;

/** Index names the listers must have: pods by controller uid, orphan pods by namespace, ReplicaSets by controller uid. */
export const IDX_PODS_BY_CONTROLLER = 'replicaset/pods-by-controller';
export const IDX_ORPHAN_PODS = 'replicaset/orphan-pods-by-namespace';
export const IDX_RS_BY_CONTROLLER = 'replicaset/by-controller';
/** ReplicaSets by `selectorIndexKeys` (api/selectors.ts): those that may select a pod's labels. */
export const IDX_RS_BY_SELECTOR = 'replicaset/by-selector';

export interface ReplicaSetListers {
  /** With IDX_RS_BY_CONTROLLER. */
  sets: Lister<Obj>;
  /** With IDX_PODS_BY_CONTROLLER and IDX_ORPHAN_PODS. */
  pods: Lister<Obj>;
}

export interface ReplicaSetSyncDeps {
  client: ApiClient;
  events: EventRecorder;
  listers: ReplicaSetListers;
  /** Shared with the pod event handlers, which observe what the syncs asked for. */
  expectations: Expectations;
  /** Never more than this many creations or deletions in one sync. */
  burstReplicas: number;
}

export class ReplicaSetSync {
  constructor(private readonly d: ReplicaSetSyncDeps) {}

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const { client, listers, expectations } = this.d;
    const rs = listers.sets.get(key);
    if (!rs) { expectations.forget(key); return undefined; }
    const needsSync = expectations.satisfied(key);
    const ns = rs.metadata.namespace!;
    const matches = (p: Obj) => matchLabelSelectorObject(rs.spec?.selector, p.metadata.labels);
    const candidates = [...listers.pods.byIndex(IDX_PODS_BY_CONTROLLER, rs.metadata.uid!), ...listers.pods.byIndex(IDX_ORPHAN_PODS, ns)].filter(isPodActive);
    const pods = await claimObjects({
      client, resource: Resources.pods, owner: rs, ownerRef: controllerRef(rs, 'apps/v1', 'ReplicaSet'),
      candidates, matches, ownerResource: Resources.replicaSets,
    });
    let manageError: unknown;
    if (needsSync && !rs.metadata.deletionTimestamp) {
      try { await this.manageReplicas(rs, key, pods); } catch (e) { manageError = e; }
    }
    const status = replicaSetStatus(rs, pods, manageError);
    await this.writeStatus(rs, status);
    if (manageError) throw manageError;
    const minReady = rs.spec?.minReadySeconds ?? 0;
    if (minReady > 0 && (rs.spec?.replicas ?? 1) === (status.readyReplicas ?? 0) && (status.readyReplicas ?? 0) !== (status.availableReplicas ?? 0)) {
      return { requeueAfterMs: minReady * 1000 };
    }
    return undefined;
  }

  private async createPod(rs: Obj): Promise<void> {
    const { client, events } = this.d;
    const t = rs.spec.template ?? {};
    const meta = t.metadata ?? {};
    const pod: Obj = {
      apiVersion: 'v1', kind: 'Pod',
      metadata: {
        generateName: `${rs.metadata.name}-`,
        namespace: rs.metadata.namespace,
        labels: { ...(meta.labels ?? {}) },
        ...(meta.annotations ? { annotations: { ...meta.annotations } } : {}),
        ...(meta.finalizers ? { finalizers: [...meta.finalizers] } : {}),
        ownerReferences: [controllerRef(rs, 'apps/v1', 'ReplicaSet')],
      },
      // The template's own (frozen) spec: nothing here changes it, and the client sends a copy.
      spec: t.spec ?? {},
    };
    try {
      const created = await client.create(Resources.pods, rs.metadata.namespace, pod);
      events.record(rs, 'Normal', 'SuccessfulCreate', `Created pod: ${created.metadata.name}`);
    } catch (e) {
      // A namespace being deleted refuses every creation; there is nothing to retry.
      if (e instanceof ApiError && e.code === 403 && /being terminated/.test(e.message)) return;
      events.record(rs, 'Warning', 'FailedCreate', `Error creating: ${e instanceof Error ? e.message : String(e)}`);
      throw e;
    }
  }

  private async manageReplicas(rs: Obj, key: string, pods: Obj[]): Promise<void> {
    const { client, events, expectations, burstReplicas } = this.d;
    const diff = pods.length - (rs.spec?.replicas ?? 1);
    if (diff < 0) {
      const n = Math.min(-diff, burstReplicas);
      expectations.expect(key, n);
      const { successes, error } = await slowStartBatch(Array.from({ length: n }), () => this.createPod(rs));
      // Creations never attempted (or failed) will not be seen by the informer: stop expecting them.
      for (let i = successes; i < n; i++) expectations.creationObserved(key);
      if (error) throw error;
    } else if (diff > 0) {
      const n = Math.min(diff, burstReplicas);
      const victims = podsToDelete(pods, this.relatedPods(rs, pods), n);
      expectations.expect(key, 0, victims.map(keyOf));
      const failures: unknown[] = [];
      await Promise.all(victims.map(async (pod) => {
        try {
          await client.delete(Resources.pods, pod.metadata.namespace, pod.metadata.name!);
          events.record(rs, 'Normal', 'SuccessfulDelete', `Deleted pod: ${pod.metadata.name}`);
        } catch (e) {
          expectations.deletionObserved(key, keyOf(pod));
          if (!isNotFound(e)) {
            events.record(rs, 'Warning', 'FailedDelete', `Error deleting: ${e instanceof Error ? e.message : String(e)}`);
            failures.push(e);
          }
        }
      }));
      if (failures.length) throw failures[0];
    }
  }

  /** Pods of every ReplicaSet sharing this one's controller (a Deployment's family), for node ranking. */
  private relatedPods(rs: Obj, own: Obj[]): Obj[] {
    const ref = controllerOf(rs);
    if (!ref) return own;
    const out: Obj[] = [];
    for (const sibling of this.d.listers.sets.byIndex(IDX_RS_BY_CONTROLLER, ref.uid)) {
      out.push(...this.d.listers.pods.byIndex(IDX_PODS_BY_CONTROLLER, sibling.metadata.uid!));
    }
    return out;
  }

  private async writeStatus(rs: Obj, status: Record<string, any>): Promise<void> {
    const { client } = this.d;
    let current = rs;
    for (let attempt = 0; ; attempt++) {
      if (sameStatus(current.status, status)) return;
      try {
        // observedGeneration stays the generation this sync acted on, even when retrying on a newer object.
        await client.updateStatus(Resources.replicaSets, current.metadata.namespace, { ...current, status });
        return;
      } catch (e) {
        if (attempt >= 1 || !(e instanceof ApiError && e.code === 409)) throw e;
        const fresh = await client.get<Obj>(Resources.replicaSets, rs.metadata.namespace, rs.metadata.name!);
        if (!fresh || fresh.metadata.uid !== rs.metadata.uid) return;
        current = fresh;
      }
    }
  }
}

function sameStatus(a: Record<string, any> | undefined, b: Record<string, any>): boolean {
  return JSON.stringify(sortKeys(a ?? {})) === JSON.stringify(sortKeys(b));
}

function sortKeys(v: any): any {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
  return v;
}
