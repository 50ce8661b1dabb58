// Taints and tolerations. A node's readiness and pressure conditions reach the scheduler as taints, the
// way Kubernetes' node lifecycle controller writes them (TaintNodesByCondition): the scheduler never
// reads conditions itself, so a NotReady node is avoided unless the pod tolerates `not-ready`.
import type { Node, Taint, Toleration } from './types.js';

export const TAINT_NOT_READY = 'node.kubernetes.io/not-ready';
export const TAINT_UNREACHABLE = 'node.kubernetes.io/unreachable';
export const TAINT_UNSCHEDULABLE = 'node.kubernetes.io/unschedulable';

const CONDITION_TAINTS: [type: string, status: string, key: string][] = [
  ['Ready', 'False', TAINT_NOT_READY],
  ['Ready', 'Unknown', TAINT_UNREACHABLE],
  ['MemoryPressure', 'True', 'node.kubernetes.io/memory-pressure'],
  ['DiskPressure', 'True', 'node.kubernetes.io/disk-pressure'],
  ['PIDPressure', 'True', 'node.kubernetes.io/pid-pressure'],
  ['NetworkUnavailable', 'True', 'node.kubernetes.io/network-unavailable'],
];

/**
 * The node's own taints plus the NoSchedule taints its conditions imply. A node that reports no Ready
 * condition yet counts as not ready, as a kubelet registers itself with the not-ready taint.
 */
export function effectiveTaints(node: Node): Taint[] {
  const own = node.spec?.taints ?? [];
  const conditions = node.status?.conditions ?? [];
  const implied: Taint[] = [];
  const has = (key: string) => own.some((t) => t.key === key && t.effect === 'NoSchedule');
  if (!conditions.some((c) => c.type === 'Ready') && !has(TAINT_NOT_READY)) implied.push({ key: TAINT_NOT_READY, effect: 'NoSchedule' });
  for (const c of conditions) {
    for (const [type, status, key] of CONDITION_TAINTS) {
      if (c.type === type && c.status === status && !has(key)) implied.push({ key, effect: 'NoSchedule' });
    }
  }
  return implied.length ? [...own, ...implied] : own;
}

export function toleratesTaint(t: Toleration, taint: Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  if (t.key && t.key !== taint.key) return false;
  switch (t.operator ?? 'Equal') {
    case 'Equal': return (t.value ?? '') === (taint.value ?? '');
    case 'Exists': return true;
    default: return false;
  }
}

export function tolerated(tolerations: Toleration[], taint: Taint): boolean {
  for (const t of tolerations) if (toleratesTaint(t, taint)) return true;
  return false;
}

/** The first NoSchedule/NoExecute taint no toleration covers (the one the failure message names). */
export function firstUntoleratedTaint(taints: Taint[], tolerations: Toleration[]): Taint | undefined {
  for (const taint of taints) {
    if (taint.effect !== 'NoSchedule' && taint.effect !== 'NoExecute') continue;
    if (!tolerated(tolerations, taint)) return taint;
  }
  return undefined;
}

/** How many PreferNoSchedule taints the pod does not tolerate (fewer is better). */
export function intolerablePreferNoSchedule(taints: Taint[], tolerations: Toleration[]): number {
  let n = 0;
  for (const taint of taints) {
    if (taint.effect !== 'PreferNoSchedule') continue;
    let ok = false;
    for (const t of tolerations) {
      if ((!t.effect || t.effect === 'PreferNoSchedule') && toleratesTaint(t, taint)) { ok = true; break; }
    }
    if (!ok) n++;
  }
  return n;
}
