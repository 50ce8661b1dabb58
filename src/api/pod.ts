// Rules about pods that the API server, the control loops and the kubelet must all judge alike: the
// QoS class (the status names it, the kubelet sizes cgroups by it), readiness and availability (every
// workload controller counts them), which pods are still active, and the oldest-first order.
import type { KObject } from './object.js';
import { quantityNanos } from './quantity.js';

type Obj = Record<string, any>;

export type QosClass = 'Guaranteed' | 'Burstable' | 'BestEffort';

/** Only these resources decide the QoS class (hugepages, ephemeral-storage and extended resources do not). */
const QOS_RESOURCES = ['cpu', 'memory'] as const;

/**
 * Kubernetes' QoS class computed from the spec (ComputePodQOS): requests and limits of cpu and memory
 * over app and init containers, summed per resource and compared exactly, zero values ignored, and a
 * missing request taken from the limit (what API defaulting writes). Guaranteed needs a cpu and a
 * memory limit on every container and requests equal to limits; BestEffort sets neither anywhere.
 */
export function qosClass(pod: Obj): QosClass {
  const containers: Obj[] = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
  const requests = new Map<string, bigint>();
  const limits = new Map<string, bigint>();
  const add = (into: Map<string, bigint>, name: string, q: unknown): boolean => {
    const v = quantityNanos(q);
    if (v === undefined || v <= 0n) return false;
    into.set(name, (into.get(name) ?? 0n) + v);
    return true;
  };
  let guaranteed = true;
  for (const c of containers) {
    const req = c.resources?.requests ?? {};
    const lim = c.resources?.limits ?? {};
    for (const name of QOS_RESOURCES) {
      add(requests, name, req[name] ?? lim[name]);
      if (!add(limits, name, lim[name])) guaranteed = false;
    }
  }
  if (requests.size === 0 && limits.size === 0) return 'BestEffort';
  if (guaranteed && requests.size === limits.size && [...requests].every(([name, v]) => limits.get(name) === v)) return 'Guaranteed';
  return 'Burstable';
}

/** The class a pod runs in (GetPodQOS): the one its status records, else the computed one. */
export function podQosClass(pod: Obj): QosClass {
  const recorded = pod.status?.qosClass;
  return recorded === 'Guaranteed' || recorded === 'Burstable' || recorded === 'BestEffort' ? recorded : qosClass(pod);
}

export function podReadyCondition(pod: KObject | Obj): Obj | undefined {
  return ((pod as Obj).status?.conditions as Obj[] | undefined)?.find((c) => c?.type === 'Ready');
}

/** The Ready condition is True (podutil.IsPodReady). */
export function isPodReady(pod: KObject | Obj): boolean {
  return podReadyCondition(pod)?.status === 'True';
}

/**
 * Ready, and, when `minReadySeconds` is set, ready since strictly more than that long before `nowMs`
 * (podutil.IsPodAvailable: lastTransitionTime + minReadySeconds is before now). At exactly
 * minReadySeconds the pod is not available yet.
 */
export function isPodAvailable(pod: KObject | Obj, minReadySeconds: number, nowMs: number): boolean {
  const c = podReadyCondition(pod);
  if (c?.status !== 'True') return false;
  if (!minReadySeconds) return true;
  const since = Date.parse(c.lastTransitionTime ?? '');
  return Number.isFinite(since) && since + minReadySeconds * 1000 < nowMs;
}

/**
 * Milliseconds until a ready pod becomes available (0 once it is), or undefined when it is not ready
 * or has no readiness time to count from. A loop that waits this long sees it available.
 */
export function msUntilAvailable(pod: KObject | Obj, minReadySeconds: number, nowMs: number): number | undefined {
  const c = podReadyCondition(pod);
  if (c?.status !== 'True') return undefined;
  if (!minReadySeconds) return 0;
  const since = Date.parse(c.lastTransitionTime ?? '');
  if (!Number.isFinite(since)) return undefined;
  // +1: availability needs now to be strictly after since + minReadySeconds.
  return Math.max(0, since + minReadySeconds * 1000 + 1 - nowMs);
}

/** Succeeded or Failed: the pod will not run again. */
export function isPodTerminal(pod: KObject | Obj): boolean {
  const phase = (pod as Obj).status?.phase;
  return phase === 'Succeeded' || phase === 'Failed';
}

/** Not finished and not being deleted (controller.IsPodActive). */
export function isPodActive(pod: KObject | Obj): boolean {
  return !isPodTerminal(pod) && !(pod as Obj).metadata?.deletionTimestamp;
}

const created = (o: KObject | Obj): number => Date.parse((o as Obj).metadata?.creationTimestamp ?? '') || 0;

/** Oldest first; equal creation times by name, so the order is stable (controller's ByCreationTimestamp). */
export function byCreation(a: KObject | Obj, b: KObject | Obj): number {
  const d = created(a) - created(b);
  if (d !== 0) return d;
  const na = String((a as Obj).metadata?.name), nb = String((b as Obj).metadata?.name);
  return na < nb ? -1 : na > nb ? 1 : 0;
}

/** How a caller adds up one container's resources (scheduler Resources, quota amounts, ...). */
export interface ResourceSum<R> {
  empty(): R;
  /** into += r */
  add(into: R, r: R): void;
  /** into = max(into, r), per resource */
  max(into: R, r: R): void;
}

/**
 * What a pod holds at its peak (resourcehelper.PodRequests, without overhead): app containers and
 * restartable (sidecar) init containers summed, but at least what any ordinary init container needs
 * together with the sidecars started before it, as init containers run one at a time.
 */
export function podResourceTotal<R>(spec: Obj | undefined, ofContainer: (c: Obj) => R, sum: ResourceSum<R>): R {
  const total = sum.empty();
  for (const c of spec?.containers ?? []) sum.add(total, ofContainer(c));
  const sidecars = sum.empty();
  const initPeak = sum.empty();
  for (const c of spec?.initContainers ?? []) {
    const r = ofContainer(c);
    if (c.restartPolicy === 'Always') {
      sum.add(total, r);
      sum.add(sidecars, r);
      sum.max(initPeak, sidecars);
    } else {
      sum.add(r, sidecars);
      sum.max(initPeak, r);
    }
  }
  sum.max(total, initPeak);
  return total;
}
