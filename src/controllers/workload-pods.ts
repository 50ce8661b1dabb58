// What the DaemonSet, StatefulSet and Job loops share about the pods they own: controller
// references, pods stamped out of a template. Pod readiness, availability and order are in
// api/pod.ts; expectations and slow start have their own modules (expectations.ts, slow-start.ts).
import { controllerOf, controllerRef, type KObject } from '../api/object.js';

type Obj = Record<string, any>;

/** An IndexFunc filing objects under the uid of their controller, if it is of `kind`. */
export function controllerUidIndex(kind: string): (obj: KObject) => string[] {
  return (obj) => {
    const ref = controllerOf(obj);
    return ref && ref.kind === kind ? [ref.uid] : [];
  };
}

export function podPhase(pod: KObject): string | undefined {
  return (pod as Obj).status?.phase;
}

export function isTerminating(obj: KObject): boolean {
  return obj.metadata.deletionTimestamp !== undefined;
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
