// The DefaultTolerationSeconds admission step: every pod is created tolerating the node lifecycle
// controller's `not-ready` and `unreachable` NoExecute taints for a limited time (300 s by default),
// so a node that stops reporting has its pods evicted after that grace, not at once. A pod that
// already tolerates one of them (a toleration with that key or no key, and NoExecute or no effect)
// keeps its own for that taint.

export const TAINT_NOT_READY = 'node.kubernetes.io/not-ready';
export const TAINT_UNREACHABLE = 'node.kubernetes.io/unreachable';

export interface DefaultTolerationSeconds {
  /** --default-not-ready-toleration-seconds */
  notReadySeconds: number;
  /** --default-unreachable-toleration-seconds */
  unreachableSeconds: number;
}

interface TolerationLike { key?: string; effect?: string }

/** Matches upstream's test: the key is the taint's or empty, the effect NoExecute or empty (operator and value are not looked at). */
function coversNoExecute(t: TolerationLike, key: string): boolean {
  return (!t.key || t.key === key) && (!t.effect || t.effect === 'NoExecute');
}

/**
 * Adds the missing default tolerations to a pod being created, in place (admission mutates the
 * object it is given), and returns the same pod. Call it on pod create only, not on subresources.
 */
export function addDefaultTolerations<P extends { spec?: Record<string, any> }>(pod: P, opts: DefaultTolerationSeconds): P {
  const spec = pod.spec;
  if (!spec) return pod;
  const existing: TolerationLike[] = Array.isArray(spec.tolerations) ? spec.tolerations : [];
  const missing = [
    { key: TAINT_NOT_READY, seconds: opts.notReadySeconds },
    { key: TAINT_UNREACHABLE, seconds: opts.unreachableSeconds },
  ].filter(({ key }) => !existing.some((t) => t && coversNoExecute(t, key)));
  if (missing.length === 0) return pod;
  spec.tolerations = [
    ...existing,
    ...missing.map(({ key, seconds }) => ({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: seconds })),
  ];
  return pod;
}
