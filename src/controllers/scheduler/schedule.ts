// The scheduler's placement decision as a pure function over plain Pods and Nodes, and the incremental
// ClusterSnapshot the scheduling loop keeps for doing the same thing fast at scale.
import { ClusterSnapshot } from './snapshot.js';
import type { Node, Pod, ScheduleOptions, ScheduleResult } from './types.js';

export { ClusterSnapshot } from './snapshot.js';
export { numFeasibleNodesToFind } from './algorithm.js';
export type { Node, Pod, ScheduleOptions, ScheduleResult } from './types.js';

/**
 * Where should `pod` run, given the nodes and the pods already placed on each? Returns the node name,
 * or the FailedScheduling event message Kubernetes would give.
 */
export function schedulePod(pod: Pod, nodes: Node[], podsByNode: Map<string, Pod[]>, opts: ScheduleOptions = {}): ScheduleResult {
  const snap = new ClusterSnapshot(opts);
  for (const n of nodes) snap.addNode(n);
  for (const [nodeName, pods] of podsByNode) for (const p of pods) snap.addPod(p, nodeName);
  return snap.schedule(pod);
}
