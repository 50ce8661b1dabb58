// What the DaemonSet, StatefulSet and Job loops share about the pods they own: controller
// references, pod readiness as kube-controller-manager judges it (pkg/api/v1/pod) and pods stamped
// out of a template. (Expectations and slow start, shared with the ReplicaSet loop, have their own
// modules: expectations.ts, slow-start.ts.)
import type { KObject, OwnerReference } from '../api/object.js';

type Obj = Record<string, any>;

/** The owner reference a controller puts on what it creates (controller and blockOwnerDeletion set). */
export function controllerRef(owner: KObject): OwnerReference {
  return {
    apiVersion: String(owner.apiVersion), kind: String(owner.kind), name: String(owner.metadata.name),
    uid: String(owner.metadata.uid), controller: true, blockOwnerDeletion: true,
  };
}

export function controllerOf(obj: KObject): OwnerReference | undefined {
  return obj.metadata.ownerReferences?.find((r) => r.controller === true);
}

/** An IndexFunc filing objects under the uid of their controller, if it is of `kind`. */
export function controllerUidIndex(kind: string): (obj: KObject) => string[] {
  return (obj) => {
    const ref = controllerOf(obj);
    return ref && ref.kind === kind ? [ref.uid] : [];
  };
}

function readyCondition(pod: KObject): Obj | undefined {
  return ((pod as Obj).status?.conditions as Obj[] | undefined)?.find((c) => c.type === 'Ready');
}

export function isPodReady(pod: KObject): boolean {
  return readyCondition(pod)?.status === 'True';
}

/** Ready for at least `minReadySeconds` (the Ready condition's lastTransitionTime says since when). */
export function isPodAvailable(pod: KObject, minReadySeconds: number, nowMs: number): boolean {
  const c = readyCondition(pod);
  if (c?.status !== 'True') return false;
  if (!minReadySeconds) return true;
  const since = Date.parse(c.lastTransitionTime ?? '');
  return Number.isFinite(since) && since + minReadySeconds * 1000 <= nowMs;
}

/** Milliseconds until a ready pod becomes available, or undefined when it is not ready at all. */
export function msUntilAvailable(pod: KObject, minReadySeconds: number, nowMs: number): number | undefined {
  const c = readyCondition(pod);
  if (c?.status !== 'True') return undefined;
  const since = Date.parse(c.lastTransitionTime ?? '');
  if (!minReadySeconds || !Number.isFinite(since)) return 0;
  return Math.max(0, since + minReadySeconds * 1000 - nowMs);
}

export function podPhase(pod: KObject): string | undefined {
  return (pod as Obj).status?.phase;
}

export function isPodTerminal(pod: KObject): boolean {
  const p = podPhase(pod);
  return p === 'Succeeded' || p === 'Failed';
}

export function isTerminating(obj: KObject): boolean {
  return obj.metadata.deletionTimestamp !== undefined;
}

/** Older first; among equals, by name so the order is stable. */
export function byCreation(a: KObject, b: KObject): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  return String(a.metadata.name) < String(b.metadata.name) ? -1 : 1;
}

export interface PodStamp {
  namespace: string;
  owner: KObject;
  name?: string;
  generateName?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
}

/** A new pod from a pod template (controller.GetPodFromTemplate): the template's copy plus the stamp. */
export function podFromTemplate(template: Obj, stamp: PodStamp): Obj {
  const meta = template.metadata ?? {};
  const pod: Obj = {
    apiVersion: 'v1', kind: 'Pod',
    metadata: {
      namespace: stamp.namespace,
      labels: { ...(meta.labels ?? {}), ...(stamp.labels ?? {}) },
      ownerReferences: [controllerRef(stamp.owner)],
    },
    spec: structuredClone(template.spec ?? {}),
  };
  if (stamp.name) pod.metadata.name = stamp.name;
  else pod.metadata.generateName = stamp.generateName ?? `${stamp.owner.metadata.name}-`;
  const annotations = { ...(meta.annotations ?? {}), ...(stamp.annotations ?? {}) };
  if (Object.keys(annotations).length) pod.metadata.annotations = annotations;
  const finalizers = [...(meta.finalizers ?? []), ...(stamp.finalizers ?? [])];
  if (finalizers.length) pod.metadata.finalizers = finalizers;
  return pod;
}

/** An int-or-percent field scaled against `total` (intstr.GetScaledValueFromIntOrPercent). */
export function scaledValue(v: unknown, total: number, roundUp: boolean, fallback: number): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^\d+%$/.test(v)) {
    const x = (parseInt(v, 10) * total) / 100;
    return roundUp ? Math.ceil(x) : Math.floor(x);
  }
  if (typeof v === 'string' && /^\d+$/.test(v)) return parseInt(v, 10);
  return fallback;
}

/** `{type, status, reason, message}` set on `conditions`, keeping lastTransitionTime when status is unchanged. */
export function setCondition(conditions: Obj[], c: { type: string; status: string; reason?: string; message?: string }, now: string, probe = false): boolean {
  const i = conditions.findIndex((x) => x.type === c.type);
  const old = i >= 0 ? conditions[i] : undefined;
  if (old && old.status === c.status && old.reason === c.reason && old.message === c.message) return false;
  const next: Obj = { type: c.type, status: c.status };
  if (probe) next.lastProbeTime = now;
  next.lastTransitionTime = old && old.status === c.status ? old.lastTransitionTime : now;
  if (c.reason) next.reason = c.reason;
  if (c.message) next.message = c.message;
  if (i >= 0) conditions[i] = next; else conditions.push(next);
  return true;
}

/** RFC 3339 at second precision, as metav1.Time serializes. */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
}
