// What pods/binding and pods/eviction do, shared by the HTTP handlers and the in-process client
// (the scheduler binds, drain evicts).
import { BUILTIN_KINDS } from '../api/kinds.js';
import { ApiError, errors } from '../api/status.js';
import { writableTop, type Actor, type DeleteOptions, type ObjectService, type WriteOptions, type WriteResult } from './objects.js';
import { matchLabelSelectorObject } from '../api/selectors.js';
import { nowRfc3339 } from '../util/time.js';
import { isPodActive } from '../api/pod.js';

const POD = BUILTIN_KINDS.find((k) => k.group === '' && k.plural === 'pods')!;
const PDB = BUILTIN_KINDS.find((k) => k.plural === 'poddisruptionbudgets')!;

/** Sets spec.nodeName of an unbound pod (409 if it is bound or being deleted). */
export async function bindPod(objects: ObjectService, ns: string, name: string, node: string, opts: WriteOptions): Promise<WriteResult> {
  if (!node) throw errors.invalid('Binding', '', name, [{ reason: 'FieldValueRequired', field: 'target.name', message: 'Required value' }]);
  return objects.update(POD, ns, name, (current) => {
    if (!current) throw errors.notFound('pods', '', name);
    const old = current.obj;
    if (old.metadata.deletionTimestamp) throw errors.conflict('pods', '', name, 'pod is being deleted, cannot be assigned to a host');
    if (old.spec?.nodeName) throw errors.conflict('pods', '', name, `pod ${name} is already assigned to node "${old.spec.nodeName}"`);
    // Copies of what binding changes (spec.nodeName, one condition); the rest stays shared.
    const pod = writableTop(old);
    pod.spec = { ...old.spec, nodeName: node };
    // Binding also marks the pod scheduled, in the same write (as Kubernetes' binding does).
    const conditions: any[] = [...(old.status?.conditions ?? [])];
    const at = conditions.findIndex((c) => c.type === 'PodScheduled');
    if (at < 0) conditions.push({ type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: nowRfc3339() });
    else if (conditions[at].status !== 'True') {
      const { reason: _reason, message: _message, ...kept } = conditions[at];
      conditions[at] = { ...kept, status: 'True', lastTransitionTime: nowRfc3339() };
    }
    pod.status = { ...old.status, conditions };
    delete pod.metadata.resourceVersion;
    return pod;
  }, { ...opts, subresource: 'binding' });
}

/** Deletes a pod unless a PodDisruptionBudget forbids it now (429, as Kubernetes answers). */
export async function evictPod(objects: ObjectService, ns: string, name: string, del: DeleteOptions, actor: Actor): Promise<void> {
  const pod = objects.get(POD, ns, name).obj;
  if (isPodActive(pod)) {
    for (const pdb of objects.list(PDB, ns)) {
      if (!matchLabelSelectorObject(pdb.obj.spec?.selector, pod.metadata.labels)) continue;
      const allowed = pdb.obj.status?.disruptionsAllowed ?? 0;
      if (allowed < 1) {
        throw new ApiError(429, 'TooManyRequests', `Cannot evict pod as it would violate the pod's disruption budget.`, {
          causes: [{ reason: 'DisruptionBudget', message: `The disruption budget ${pdb.obj.metadata.name} needs ${pdb.obj.status?.desiredHealthy ?? 0} healthy pods and has ${pdb.obj.status?.currentHealthy ?? 0} currently` }],
        });
      }
      // Spend one disruption now so concurrent evictions can't all pass (Kubernetes does the same).
      const next = structuredClone(pdb.obj) as Record<string, any>;
      next.status = { ...(next.status ?? {}), disruptionsAllowed: allowed - 1, disruptedPods: { ...(next.status?.disruptedPods ?? {}), [name]: nowRfc3339() } };
      try {
        await objects.store.update(pdb.key, next, pdb.modRevision);
      } catch {
        throw errors.conflict('poddisruptionbudgets', 'policy', pdb.obj.metadata.name);
      }
    }
  }
  await objects.delete(POD, ns, name, del, actor);
}
