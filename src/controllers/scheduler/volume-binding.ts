// kube-scheduler's VolumeBinding plugin, reduced to what it decides: a pod whose claims are missing or
// unbound (Immediate mode) waits; a bound claim's volume node affinity restricts where the pod may go;
// a claim of a WaitForFirstConsumer class is bound only after a node is chosen (the loop then writes
// that node on the claim and waits for the PersistentVolume controller to bind or provision).
//
// The volume constraints are handed to the placement algorithm as extra required node-affinity terms
// on a copy of the pod, so every other filter and score sees them unchanged. (The failure message then
// names node affinity rather than Kubernetes' "volume node affinity conflict".)
import { fitErrorMessage } from './messages.js';
import type { NodeSelectorTerm, Pod } from './types.js';
import { ephemeralClaimName } from '../../api/ephemeral-volumes.js';
import {
  findVolume, NO_PROVISIONER, SELECTED_NODE_ANNOTATION,
  type PersistentVolume, type PersistentVolumeClaim, type StorageClass,
} from '../volumes/claim-matching.js';

export interface VolumeListers {
  claim(namespace: string, name: string): PersistentVolumeClaim | undefined;
  volume(name: string): PersistentVolume | undefined;
  volumes(): Iterable<PersistentVolume>;
  storageClass(name: string): StorageClass | undefined;
}

export type VolumeDecision =
  | { kind: 'unschedulable'; message: string }
  /**
   * `pod` carries the volume constraints. `delayed` claims are to be given the chosen node; while any
   * claim is delayed or `waiting` (given a node, not bound yet), the pod itself is not bound.
   */
  | { kind: 'schedule'; pod: Pod; delayed: PersistentVolumeClaim[]; waiting: boolean };

interface PodVolume { name: string; persistentVolumeClaim?: { claimName: string }; ephemeral?: object }

const notHelpful = (n: number) => `preemption: 0/${n} nodes are available: ${n} Preemption is not helpful for scheduling.`;

export function volumeDecision(pod: Pod, listers: VolumeListers, nodeCount: number): VolumeDecision {
  const volumes = (pod.spec as { volumes?: PodVolume[] } | undefined)?.volumes ?? [];
  const ns = pod.metadata.namespace ?? 'default';
  const unschedulable = (why: string): VolumeDecision => ({ kind: 'unschedulable', message: fitErrorMessage(nodeCount, [], why, notHelpful(nodeCount)) });
  const constraints: NodeSelectorTerm[][] = [];
  const delayed: PersistentVolumeClaim[] = [];
  let waiting = false;
  for (const v of volumes) {
    // A generic ephemeral volume's claim is `<pod>-<volume>`, made and owned by the pod's controller.
    const claimName = v.ephemeral ? ephemeralClaimName(pod.metadata.name!, v.name) : v.persistentVolumeClaim?.claimName;
    if (!claimName) continue;
    const pvc = listers.claim(ns, claimName);
    if (!pvc && v.ephemeral) return unschedulable(`waiting for ephemeral volume controller to create the persistentvolumeclaim "${claimName}"`);
    if (!pvc) return unschedulable(`persistentvolumeclaim "${claimName}" not found`);
    if (v.ephemeral && !pvc.metadata.ownerReferences?.some((r) => r.uid === pod.metadata.uid)) {
      return unschedulable(`PVC ${ns}/${claimName} was not created for pod ${ns}/${pod.metadata.name} (pod is not owner)`);
    }
    if (pvc.metadata.deletionTimestamp) return unschedulable(`persistentvolumeclaim "${claimName}" is being deleted`);
    const bound = pvc.spec?.volumeName;
    if (bound && pvc.status?.phase === 'Bound') {
      const pv = listers.volume(bound);
      if (!pv) return unschedulable('pvc(s) bound to non-existent pv(s)');
      const terms = pv.spec?.nodeAffinity?.required?.nodeSelectorTerms;
      if (terms?.length) constraints.push(terms);
      continue;
    }
    const className = pvc.spec?.storageClassName ?? '';
    const sc = className ? listers.storageClass(className) : undefined;
    if (sc?.volumeBindingMode !== 'WaitForFirstConsumer' || bound) return unschedulable('pod has unbound immediate PersistentVolumeClaims');
    const selected = pvc.metadata.annotations?.[SELECTED_NODE_ANNOTATION];
    if (selected) {
      // Already promised to a node (a volume may be provisioned there by now): that node or none.
      constraints.push([{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [selected] }] }]);
      waiting = true;
      continue;
    }
    delayed.push(pvc);
    if (sc.provisioner && sc.provisioner !== NO_PROVISIONER) continue;  // provisioned wherever the pod goes
    // Only where a free matching volume can be used.
    const candidates = [...listers.volumes()].filter((pv) => findVolume(pvc, [pv]) === pv);
    if (candidates.length === 0) return unschedulable(`${nodeCount} node(s) didn't find available persistent volumes to bind`);
    if (candidates.some((pv) => !pv.spec?.nodeAffinity?.required?.nodeSelectorTerms?.length)) continue;
    constraints.push(candidates.flatMap((pv) => pv.spec!.nodeAffinity!.required!.nodeSelectorTerms!));
  }
  return { kind: 'schedule', pod: constraints.length ? withRequiredTerms(pod, constraints) : pod, delayed, waiting };
}

/** A copy of the pod whose required node affinity is also ANDed with each of `constraints` (each an OR of terms). */
function withRequiredTerms(pod: Pod, constraints: NodeSelectorTerm[][]): Pod {
  const spec = pod.spec ?? {};
  const own = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  // (A1 or A2) and (B1 or B2) = A1B1 or A1B2 or A2B1 or A2B2; a term's requirements are ANDed.
  let terms: NodeSelectorTerm[] | undefined = own?.length ? own : undefined;
  for (const c of constraints) {
    terms = terms === undefined ? c : terms.flatMap((a) => c.map((b) => ({
      matchExpressions: [...(a.matchExpressions ?? []), ...(b.matchExpressions ?? [])],
      matchFields: [...(a.matchFields ?? []), ...(b.matchFields ?? [])],
    })));
  }
  return {
    ...pod,
    spec: {
      ...spec,
      affinity: {
        ...spec.affinity,
        nodeAffinity: { ...spec.affinity?.nodeAffinity, requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } },
      },
    },
  };
}
