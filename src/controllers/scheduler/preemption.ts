// The PostFilter part of the failure message: what kube-scheduler's DefaultPreemption concludes. skiff
// does not evict pods yet; this only reproduces the verdict, so the message matches Kubernetes when
// preemption cannot help (the usual case: every pod at the same priority).
import { fitResources } from './filters.js';
import { fitErrorMessage, REASON, status, type Status } from './messages.js';
import type { NodeInfo, PodInfo } from './node-info.js';

const isResourceFailure = (s: Status) => s.reasons.every((r) => r.startsWith('Insufficient ') || r === REASON.tooManyPods);

/**
 * "preemption: 0/N nodes are available: ..." or undefined when some node could host the pod after
 * evicting lower-priority pods (Kubernetes would then preempt and add no message).
 */
export function preemptionMessage(pod: PodInfo, nodes: NodeInfo[], statusOf: (n: NodeInfo) => Status): string | undefined {
  if (pod.pod.spec?.preemptionPolicy === 'Never') return 'preemption: not eligible due to preemptionPolicy=Never.';
  const verdicts: Status[] = [];
  for (const node of nodes) {
    const s = statusOf(node);
    if (s.code === 'UnschedulableAndUnresolvable') { verdicts.push(status(s.code, REASON.preemptionNotHelpful)); continue; }
    const victims = [...node.pods.values()].filter((p) => p.priority < pod.priority);
    if (victims.length === 0) { verdicts.push(status('UnschedulableAndUnresolvable', REASON.noVictims)); continue; }
    // Only resource shortages are re-evaluated without the victims; other failures are assumed to stay.
    if (!isResourceFailure(s)) { verdicts.push(s); continue; }
    const after = fitResources(node, pod, victims);
    if (!after) return undefined;
    verdicts.push(after);
  }
  return `preemption: ${fitErrorMessage(nodes.length, verdicts)}`;
}
