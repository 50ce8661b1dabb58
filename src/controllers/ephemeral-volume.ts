// The ephemeral volume controller: a pod volume with `ephemeral.volumeClaimTemplate` gets a claim
// `<pod>-<volume>` made from the template and owned by the pod, so the claim (and, through its
// storage class, the volume) lives and dies with the pod: the garbage collector deletes it after the
// pod. A claim of that name that the pod does not own is never taken over (the scheduler then keeps
// the pod pending, as Kubernetes does).
import type { KObject } from '../api/object.js';
import { isAlreadyExists, Resources } from '../client/types.js';
import type { ControllerContext } from './context.js';
import { runController, type RunningController } from '../client/controller.js';
import { keyOf } from '../client/informer.js';
import { WorkQueue } from '../client/workqueue.js';
import { ephemeralClaimName } from '../api/ephemeral-volumes.js';

type Obj = Record<string, any>;
interface EphemeralVolume { name: string; ephemeral?: { volumeClaimTemplate?: { metadata?: Obj; spec?: Obj } } }

export function startEphemeralVolumeController(ctx: ControllerContext): RunningController {
  const pods = ctx.informers.informerFor(Resources.pods);
  const claims = ctx.informers.informerFor(Resources.persistentVolumeClaims);
  const queue = new WorkQueue<string>();
  const hasEphemeral = (p: KObject) => ((p as Obj).spec?.volumes ?? []).some((v: EphemeralVolume) => v.ephemeral);
  pods.addHandlers({ onAdd: (p) => { if (hasEphemeral(p)) queue.add(keyOf(p)); } });
  return runController({
    name: 'ephemeral-volume', queue, informers: [pods, claims],
    async reconcile(key) {
      const pod = pods.get(key);
      if (!pod || pod.metadata.deletionTimestamp) return;
      const ns = pod.metadata.namespace!;
      for (const v of ((pod as Obj).spec?.volumes ?? []) as EphemeralVolume[]) {
        const template = v.ephemeral?.volumeClaimTemplate;
        if (!template) continue;
        const name = ephemeralClaimName(pod.metadata.name!, v.name);
        const existing = claims.getByName(ns, name);
        if (existing) {
          if (!existing.metadata.ownerReferences?.some((r) => r.uid === pod.metadata.uid)) {
            ctx.events.record(pod, 'Warning', 'FailedBinding', `PVC ${ns}/${name} was not created for pod ${ns}/${pod.metadata.name} (pod is not owner)`);
          }
          continue;
        }
        await ctx.client.create(Resources.persistentVolumeClaims, ns, {
          apiVersion: 'v1', kind: 'PersistentVolumeClaim',
          metadata: {
            name, namespace: ns, labels: template.metadata?.labels, annotations: template.metadata?.annotations,
            ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name!, uid: pod.metadata.uid!, controller: true, blockOwnerDeletion: true }],
          },
          spec: template.spec ?? {},
        }).catch((e) => { if (!isAlreadyExists(e)) throw e; });
      }
    },
  });
}
