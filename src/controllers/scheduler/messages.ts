// The FailedScheduling message, worded and ordered as kube-scheduler 1.32 words it:
//   0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/master: },
//   2 node(s) didn't match pod anti-affinity rules. preemption: 0/3 nodes are available:
//   1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.
// Each node contributes every reason of the first filter that rejected it; reasons are counted,
// rendered as "<count> <reason>" and sorted as strings (so "10 x" sorts before "2 y", as in Go).

/** Unresolvable failures are ones evicting pods cannot fix, so preemption does not try those nodes. */
export type Code = 'Unschedulable' | 'UnschedulableAndUnresolvable';
export interface Status { readonly code: Code; readonly reasons: readonly string[] }

export const REASON = {
  unschedulable: "node(s) were unschedulable",
  nodeAffinity: "node(s) didn't match Pod's node affinity/selector",
  nodePorts: "node(s) didn't have free ports for the requested pod ports",
  podAffinity: "node(s) didn't match pod affinity rules",
  podAntiAffinity: "node(s) didn't match pod anti-affinity rules",
  existingAntiAffinity: "node(s) didn't satisfy existing pods anti-affinity rules",
  spreadSkew: "node(s) didn't match pod topology spread constraints",
  spreadMissingLabel: "node(s) didn't match pod topology spread constraints (missing required label)",
  tooManyPods: 'Too many pods',
  affinityConflict: 'pod affinity terms conflict',
  preemptionNotHelpful: 'Preemption is not helpful for scheduling',
  noVictims: 'No preemption victims found for incoming pod',
} as const;

export const NO_NODES_MESSAGE = 'no nodes available to schedule pods';

export const taintReason = (key: string, value: string | undefined) => `node(s) had untolerated taint {${key}: ${value ?? ''}}`;
export const insufficientReason = (resource: string) => `Insufficient ${resource}`;
/** Nodes a PreFilter ruled out before filtering (the NodeAffinity metadata.name shortcut). */
export const prefilterExcludedReason = (plugin: string) => `node(s) didn't satisfy plugin(s) [${plugin}]`;

// Statuses for the common single-reason failures, shared so rejecting a node allocates nothing.
const cache = new Map<string, Status>();
export function status(code: Code, reason: string): Status {
  const k = code + reason;
  let s = cache.get(k);
  if (!s) cache.set(k, (s = Object.freeze({ code, reasons: Object.freeze([reason]) })));
  return s;
}

/**
 * "0/N nodes are available: <prefilter or per-node reasons>." plus the PostFilter (preemption) part.
 * `statuses` holds one status per node that failed; a PreFilter message replaces the per-node list.
 */
export function fitErrorMessage(numAllNodes: number, statuses: Iterable<Status>, preFilterMsg?: string, postFilterMsg?: string): string {
  let msg = `0/${numAllNodes} nodes are available:`;
  if (preFilterMsg) {
    msg += ` ${preFilterMsg}.`;
  } else {
    const histogram = new Map<string, number>();
    for (const s of statuses) for (const r of s.reasons) histogram.set(r, (histogram.get(r) ?? 0) + 1);
    const parts = [...histogram].map(([reason, n]) => `${n} ${reason}`).sort();
    if (parts.length) msg += ` ${parts.join(', ')}.`;
  }
  if (postFilterMsg) msg += ` ${postFilterMsg}`;
  return msg;
}
