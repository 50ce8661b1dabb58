// The HorizontalPodAutoscaler's arithmetic, as kube-controller-manager does it for Resource metrics:
// utilization against the pods' requests, a 10 % tolerance, the default scaling rates (up: double or
// +4 pods per period, whichever is more; down: the highest recommendation of the stabilization
// window, 300 s unless the HPA's behavior says otherwise) and the min/max bounds.

/** Per pod: usage and requests of one resource, in milli-units (CPU millicores, memory milli-bytes). */
export interface PodSample { usage: number; request: number | undefined }

export const TOLERANCE = 0.1;

export type MetricResult =
  | { ok: true; desired: number; utilization?: number; averageValue: number }
  | { ok: false; reason: string; message: string };

/**
 * The replica count one Resource metric asks for. `target` is either a utilization percentage of the
 * requests or an average value per pod (milli-units).
 */
export function replicasFor(resource: string, current: number, samples: Map<string, PodSample>,
  target: { utilization?: number; averageValue?: number }): MetricResult {
  if (samples.size === 0) {
    return { ok: false, reason: 'FailedGetResourceMetric', message: `unable to get metrics for resource ${resource}: no metrics returned from resource metrics API` };
  }
  let usage = 0;
  let requests = 0;
  for (const [pod, s] of samples) {
    usage += s.usage;
    if (target.utilization !== undefined) {
      if (!s.request) return { ok: false, reason: 'FailedGetResourceMetric', message: `failed to get ${resource} utilization: missing request for ${resource} in pod ${pod}` };
      requests += s.request;
    }
  }
  const n = samples.size;
  const averageValue = usage / n;
  if (target.utilization !== undefined) {
    const utilization = Math.round((usage * 100) / requests);
    const ratio = utilization / target.utilization;
    const desired = Math.abs(ratio - 1) <= TOLERANCE ? current : Math.ceil(ratio * n);
    return { ok: true, desired, utilization, averageValue };
  }
  const ratio = averageValue / (target.averageValue ?? 1);
  const desired = Math.abs(ratio - 1) <= TOLERANCE ? current : Math.ceil(usage / (target.averageValue ?? 1));
  return { ok: true, desired, averageValue };
}

export interface Bounds {
  min: number;
  max: number;
  /** Recommendations made within the scale-down window (newest last), this one included. */
  recentDown: number[];
  /** Recommendations made within the scale-up window (empty by default: no stabilization up). */
  recentUp: number[];
}

/** The count to scale to, and why it differs from the recommendation if a bound or rate limit applied. */
export function bounded(current: number, recommended: number, b: Bounds): { replicas: number; limited?: { reason: string; message: string } } {
  let r = recommended;
  // Stabilization: going down, the highest recent wish; going up, the lowest.
  if (r < current && b.recentDown.length) r = Math.min(current, Math.max(r, ...b.recentDown));
  if (r > current && b.recentUp.length) r = Math.max(current, Math.min(r, ...b.recentUp));
  const upLimit = Math.max(current * 2, current + 4);
  if (r > upLimit) r = upLimit;
  if (r > b.max) return { replicas: b.max, limited: { reason: 'TooManyReplicas', message: 'the desired replica count is more than the maximum replica count' } };
  if (r < b.min) return { replicas: b.min, limited: { reason: 'TooFewReplicas', message: 'the desired replica count is less than the minimum replica count' } };
  return { replicas: r };
}
