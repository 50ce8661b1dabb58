// Which PersistentVolume may satisfy which claim, as Kubernetes' PV controller decides it: the same
// storage class, every access mode the claim asks for, the same volume mode, at least the requested
// capacity, the claim's label selector, not claimed by anyone else, and (once a node is chosen for a
// WaitForFirstConsumer claim) a node affinity that admits that node. Among the candidates the smallest
// wins, so that large volumes stay free for large claims.
import { parseQuantity } from '../../api/quantity.js';
import type { KObject } from '../../api/object.js';
import { compileNodeSelectorTerms, type NodeView } from '../scheduler/selectors.js';
import { compileLabelSelector } from '../../api/selectors.js';
import type { LabelSelector, NodeSelectorTerm } from '../scheduler/types.js';

export interface ClaimRef { kind?: string; apiVersion?: string; namespace?: string; name?: string; uid?: string; resourceVersion?: string }

export type PersistentVolume = KObject & {
  spec?: {
    capacity?: Record<string, string>;
    accessModes?: string[];
    volumeMode?: string;
    storageClassName?: string;
    claimRef?: ClaimRef | null;
    persistentVolumeReclaimPolicy?: string;
    nodeAffinity?: { required?: { nodeSelectorTerms?: NodeSelectorTerm[] } };
    hostPath?: { path: string; type?: string };
    local?: { path: string };
  };
  status?: { phase?: string; message?: string; reason?: string };
};

export type PersistentVolumeClaim = KObject & {
  spec?: {
    accessModes?: string[];
    volumeMode?: string;
    storageClassName?: string | null;
    volumeName?: string;
    selector?: LabelSelector | null;
    resources?: { requests?: Record<string, string> };
  };
  status?: { phase?: string; accessModes?: string[]; capacity?: Record<string, string> };
};

export type StorageClass = KObject & {
  provisioner?: string;
  reclaimPolicy?: string;
  volumeBindingMode?: string;
  parameters?: Record<string, string>;
};

/** Set by the scheduler on a WaitForFirstConsumer claim once it chose a node for the claim's pod. */
export const SELECTED_NODE_ANNOTATION = 'volume.kubernetes.io/selected-node';
export const NO_PROVISIONER = 'kubernetes.io/no-provisioner';

const bytes = (q: string | undefined): number => {
  try {
    return q === undefined ? 0 : parseQuantity(q);
  } catch {
    return 0;
  }
};

export const classOf = (pvc: PersistentVolumeClaim): string => pvc.spec?.storageClassName ?? '';
export const requestedBytes = (pvc: PersistentVolumeClaim): number => bytes(pvc.spec?.resources?.requests?.storage);
export const capacityBytes = (pv: PersistentVolume): number => bytes(pv.spec?.capacity?.storage);

/** The claim the volume is reserved for, if it names one: the claim itself (uid checked when both have one). */
export function reservedFor(pv: PersistentVolume, pvc: PersistentVolumeClaim): boolean {
  const ref = pv.spec?.claimRef;
  if (!ref) return false;
  if (ref.namespace !== pvc.metadata.namespace || ref.name !== pvc.metadata.name) return false;
  return !ref.uid || !pvc.metadata.uid || ref.uid === pvc.metadata.uid;
}

/** Why `pv` cannot serve `pvc` (a VolumeMismatch message), or undefined when it can; claims aside. */
export function mismatch(pv: PersistentVolume, pvc: PersistentVolumeClaim): string | undefined {
  if ((pv.spec?.storageClassName ?? '') !== classOf(pvc)) return 'storageClassName does not match';
  if ((pv.spec?.volumeMode ?? 'Filesystem') !== (pvc.spec?.volumeMode ?? 'Filesystem')) return 'incompatible volumeMode';
  const modes = new Set(pv.spec?.accessModes ?? []);
  if (!(pvc.spec?.accessModes ?? []).every((m) => modes.has(m))) return 'incompatible accessMode';
  if (capacityBytes(pv) < requestedBytes(pvc)) return 'requested PV is too small';
  return undefined;
}

/** Whether the volume's node affinity admits the node (a volume without one is reachable from any). */
export function volumeAdmitsNode(pv: PersistentVolume, node: NodeView): boolean {
  const terms = pv.spec?.nodeAffinity?.required?.nodeSelectorTerms;
  return !terms?.length || compileNodeSelectorTerms(terms)(node);
}

/**
 * The best free volume for an unbound claim: one reserved for it, or else the smallest that matches
 * and, when `node` is given, can be used there. Volumes being deleted or already claimed are skipped.
 */
export function findVolume(pvc: PersistentVolumeClaim, volumes: Iterable<PersistentVolume>, node?: NodeView): PersistentVolume | undefined {
  const select = compileLabelSelector(pvc.spec?.selector ?? undefined);
  let best: PersistentVolume | undefined;
  for (const pv of volumes) {
    if (pv.metadata.deletionTimestamp) continue;
    const reserved = reservedFor(pv, pvc);
    if (pv.spec?.claimRef && !reserved) continue;
    if (mismatch(pv, pvc) || (node && !volumeAdmitsNode(pv, node))) continue;
    if (reserved) return pv;
    // A claim with a selector only takes volumes its selector picks; one without takes any.
    if (pvc.spec?.selector && !select(pv.metadata.labels)) continue;
    if (pv.status?.phase && pv.status.phase !== 'Available') continue;
    if (!best || capacityBytes(pv) < capacityBytes(best)) best = pv;
  }
  return best;
}
