// Resource quantities and the request arithmetic the scheduler does with them. Quantities follow
// apimachinery's grammar (`100m`, `128Mi`, `1G`, `1e3`, `0.5`), and are kept as integers in the unit
// kube-scheduler compares: millicores for cpu, plain units for everything else, rounded up.
import type { Container, PodSpec, ResourceList } from './types.js';

import { parseQuantity } from '../../api/quantity.js';
import { podResourceTotal, type ResourceSum } from '../../api/pod.js';

/** Requests (or a node's allocatable) in scheduler units; `scalar` holds extended resources and hugepages. */
export interface Resources {
  milliCPU: number;
  memory: number;
  ephemeralStorage: number;
  pods: number;
  scalar: Record<string, number> | undefined;
}

export const emptyResources = (): Resources => ({ milliCPU: 0, memory: 0, ephemeralStorage: 0, pods: 0, scalar: undefined });

// kube-scheduler's stand-ins for a container that asks for nothing, so empty pods still spread out.
export const DEFAULT_MILLI_CPU_REQUEST = 100;
export const DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024;

function isScalar(name: string): boolean {
  return name.includes('/') || name.startsWith('hugepages-') || name.startsWith('attachable-volumes-');
}

function addList(into: Resources, list: ResourceList | undefined, sign = 1): void {
  if (!list) return;
  for (const name in list) {
    const q = list[name]!;
    switch (name) {
      case 'cpu': into.milliCPU += sign * parseQuantity(q, 3); break;
      case 'memory': into.memory += sign * parseQuantity(q); break;
      case 'ephemeral-storage': into.ephemeralStorage += sign * parseQuantity(q); break;
      case 'pods': into.pods += sign * parseQuantity(q); break;
      default:
        if (isScalar(name)) {
          into.scalar ??= {};
          into.scalar[name] = (into.scalar[name] ?? 0) + sign * parseQuantity(q);
        }
    }
  }
}

export function resourcesOf(list: ResourceList | undefined): Resources {
  const r = emptyResources();
  addList(r, list);
  return r;
}

export function addResources(into: Resources, r: Resources, sign = 1): void {
  into.milliCPU += sign * r.milliCPU;
  into.memory += sign * r.memory;
  into.ephemeralStorage += sign * r.ephemeralStorage;
  into.pods += sign * r.pods;
  if (r.scalar) {
    into.scalar ??= {};
    for (const k in r.scalar) into.scalar[k] = (into.scalar[k] ?? 0) + sign * r.scalar[k]!;
  }
}

function maxInto(into: Resources, r: Resources): void {
  into.milliCPU = Math.max(into.milliCPU, r.milliCPU);
  into.memory = Math.max(into.memory, r.memory);
  into.ephemeralStorage = Math.max(into.ephemeralStorage, r.ephemeralStorage);
  if (r.scalar) {
    into.scalar ??= {};
    for (const k in r.scalar) into.scalar[k] = Math.max(into.scalar[k] ?? 0, r.scalar[k]!);
  }
}

const RESOURCES_SUM: ResourceSum<Resources> = { empty: emptyResources, add: (into, r) => addResources(into, r), max: maxInto };

/** A container's effective requests: the API server defaults a missing request to its limit. */
function containerRequests(c: Container, nonZero: boolean): Resources {
  const requests = c.resources?.requests;
  const limits = c.resources?.limits;
  const r = resourcesOf(requests);
  if (limits) {
    for (const name in limits) {
      if (requests?.[name] === undefined) addList(r, { [name]: limits[name]! });
    }
  }
  if (nonZero) {
    if (requests?.cpu === undefined && limits?.cpu === undefined) r.milliCPU = DEFAULT_MILLI_CPU_REQUEST;
    if (requests?.memory === undefined && limits?.memory === undefined) r.memory = DEFAULT_MEMORY_REQUEST;
  }
  return r;
}

/**
 * What a pod asks of a node: the sum of its containers and restartable (sidecar) init containers, at
 * least the largest ordinary init container plus the sidecars started before it, plus the pod overhead.
 * With `nonZero`, containers that name no cpu/memory count as 100m/200Mi (used only for scoring).
 */
export function podRequests(spec: PodSpec | undefined, nonZero = false): Resources {
  const total = podResourceTotal(spec, (c) => containerRequests(c as Container, nonZero), RESOURCES_SUM);
  addList(total, spec?.overhead);
  total.pods = 0;
  return total;
}
