// What the DaemonSet, StatefulSet and Job loops share about the pods they own: controller
// references, pods stamped out of a template, and the create/delete expectations that keep a loop
// from acting twice on a cache that has not caught up with its own writes (pkg/controller's
// ControllerExpectations). Pod readiness, availability and order are in api/pod.ts.
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

/** How many creations and deletions a controller still expects its informer to show it, per key. */
export class Expectations {
  private readonly pending = new Map<string, { adds: number; dels: number; at: number }>();

  /** After this long an expectation is presumed lost (a watch event dropped) and ignored. */
  constructor(private readonly ttlMs = 5 * 60_000) {}

  expect(key: string, adds: number, dels: number): void {
    this.pending.set(key, { adds, dels, at: Date.now() });
  }

  creationObserved(key: string): void {
    const e = this.pending.get(key);
    if (e) e.adds--;
  }

  deletionObserved(key: string): void {
    const e = this.pending.get(key);
    if (e) e.dels--;
  }

  satisfied(key: string): boolean {
    const e = this.pending.get(key);
    if (!e) return true;
    if ((e.adds <= 0 && e.dels <= 0) || Date.now() - e.at > this.ttlMs) return true;
    return false;
  }

  forget(key: string): void {
    this.pending.delete(key);
  }
}

/** Runs `fn` over `items` in slow-start batches of 1, 2, 4, ... (controller.slowStartBatch); stops at the first failing batch. */
export async function slowStartBatch<T>(items: T[], fn: (item: T) => Promise<void>): Promise<{ done: number; error?: unknown }> {
  let done = 0;
  let size = 1;
  while (done < items.length) {
    const batch = items.slice(done, done + size);
    const results = await Promise.allSettled(batch.map(fn));
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
    done += results.filter((r) => r.status === 'fulfilled').length;
    if (failed) return { done, error: failed.reason };
    size *= 2;
  }
  return { done };
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
