// One scheduling cycle over a ClusterSnapshot, shaped like kube-scheduler's: PreFilter (work out
// cluster-wide tallies once), Filter (per node, stopping once enough feasible nodes are found), Score
// (normalized plugin scores times default weights), then pick the best node.
import { filterContext, filterNode } from './filters.js';
import { fitErrorMessage, NO_NODES_MESSAGE, prefilterExcludedReason, REASON, status, type Status } from './messages.js';
import { NodeAffinity } from './node-affinity.js';
import { PodInfo, type NodeInfo } from './node-info.js';
import { AffinityFilterState, AffinityScoreState, NamespaceLabelCache, type AffinityTerm } from './pod-affinity.js';
import { preemptionMessage } from './preemption.js';
import { balancedAllocationScore, defaultNormalize, leastAllocatedScore, normalizeAffinityScores, normalizeSpreadScores, WEIGHTS } from './scores.js';
import type { ClusterSnapshot } from './snapshot.js';
import { intolerablePreferNoSchedule } from './taints.js';
import { hasHardConstraints, SpreadFilterState, SpreadScoreState } from './topology-spread.js';
import type { Pod, ScheduleResult } from './types.js';

const MIN_FEASIBLE_NODES_TO_FIND = 100;
const MIN_FEASIBLE_NODES_PERCENTAGE = 5;

/**
 * How many feasible nodes to find before scoring. Large clusters score a sample, as kube-scheduler
 * does: 50% minus 1% per 125 nodes (at least 5%, at least 100 nodes).
 */
export function numFeasibleNodesToFind(numAllNodes: number, percentage = 0): number {
  if (numAllNodes < MIN_FEASIBLE_NODES_TO_FIND) return numAllNodes;
  let pct = percentage;
  if (pct <= 0) pct = Math.max(MIN_FEASIBLE_NODES_PERCENTAGE, 50 - Math.trunc(numAllNodes / 125));
  if (pct >= 100) return numAllNodes;
  return Math.max(MIN_FEASIBLE_NODES_TO_FIND, Math.trunc((numAllNodes * pct) / 100));
}

/** FNV-1a: a cheap, stable hash so ties go to different nodes for different pods. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export function scheduleOn(snap: ClusterSnapshot, pod: Pod): ScheduleResult {
  const all = snap.nodes;
  if (all.length === 0) return { node: undefined, message: NO_NODES_MESSAGE };
  const info = new PodInfo(pod);
  const nodeAffinity = new NodeAffinity(pod);
  const nsLabels = new NamespaceLabelCache(snap.options.namespaces);
  const podsFor = (t: AffinityTerm) => snap.candidatesFor(t);
  const failures = new Map<NodeInfo, Status>();
  // What a node the PreFilter left out failed with: set when node affinity names the nodes (every
  // DaemonSet pod names one), and looked up only if the pod fits nowhere, rather than recorded for
  // each of thousands of nodes on every such pod.
  let excluded: Status | undefined;
  const fail = (preFilterMsg?: string): ScheduleResult => {
    const statusOf = (n: NodeInfo) => failures.get(n) ?? excluded!;
    const post = preemptionMessage(info, all, statusOf);
    return { node: undefined, message: fitErrorMessage(all.length, all.map(statusOf), preFilterMsg, post) };
  };

  // PreFilter.
  let candidates = all;
  if (nodeAffinity.nodeNames) {
    if (nodeAffinity.nodeNames.size === 0) {
      for (const n of all) failures.set(n, status('UnschedulableAndUnresolvable', REASON.affinityConflict));
      return fail(REASON.affinityConflict);
    }
    candidates = [...nodeAffinity.nodeNames].map((name) => snap.node(name)).filter((n): n is NodeInfo => n !== undefined);
    excluded = status('UnschedulableAndUnresolvable', prefilterExcludedReason('NodeAffinity'));
  }
  const spread = hasHardConstraints(pod) ? new SpreadFilterState(pod, info, nodeAffinity, all) : undefined;
  const interPod = info.requiredAffinity.length || info.requiredAntiAffinity.length || snap.podsWithRequiredAntiAffinity
    ? new AffinityFilterState(info, podsFor, snap.nodesWithRequiredAntiAffinity(), nsLabels)
    : undefined;
  const ctx = filterContext(info, nodeAffinity, spread, interPod);

  // Filter, starting where the previous cycle stopped.
  const n = candidates.length;
  const want = numFeasibleNodesToFind(n, snap.options.percentageOfNodesToScore);
  const feasible: NodeInfo[] = [];
  const start = n ? snap.nextStartNodeIndex % n : 0;
  let processed = 0;
  while (processed < n && feasible.length < want) {
    const node = candidates[(start + processed) % n]!;
    processed++;
    const s = filterNode(ctx, node);
    if (s) failures.set(node, s);
    else feasible.push(node);
  }
  if (n) snap.nextStartNodeIndex = (start + processed) % n;
  if (feasible.length === 0) return fail();
  if (feasible.length === 1) return { node: feasible[0]!.name };

  // Score.
  const total = new Float64Array(feasible.length);
  const scratch = new Float64Array(feasible.length);
  const addWeighted = (weight: number) => { for (let i = 0; i < total.length; i++) total[i]! += weight * scratch[i]!; };

  // Plain loops over the feasible nodes (hundreds per pod on large clusters), no callbacks.
  const tolerations = pod.spec?.tolerations ?? [];
  for (let i = 0; i < feasible.length; i++) scratch[i] = intolerablePreferNoSchedule(feasible[i]!.taints, tolerations);
  defaultNormalize(scratch, true);
  addWeighted(WEIGHTS.taintToleration);

  if (nodeAffinity.hasPreferred) {
    for (let i = 0; i < feasible.length; i++) scratch[i] = nodeAffinity.preferredScore(feasible[i]!);
    defaultNormalize(scratch, false);
    addWeighted(WEIGHTS.nodeAffinity);
  }

  const spreadScore = new SpreadScoreState(pod, info, nodeAffinity, feasible, all, (owner) => snap.ownerNodes(owner));
  if (!spreadScore.empty) {
    for (let i = 0; i < feasible.length; i++) scratch[i] = spreadScore.score(feasible[i]!) ?? Number.NaN;
    normalizeSpreadScores(scratch);
    addWeighted(WEIGHTS.podTopologySpread);
  }

  const wantsAffinity = info.preferredAffinity.length > 0 || info.preferredAntiAffinity.length > 0;
  if (wantsAffinity || snap.podsWithAffinity > 0) {
    const affinityScore = new AffinityScoreState(info, podsFor, snap.nodesWithAffinity(), nsLabels);
    if (!affinityScore.empty) {
      for (let i = 0; i < feasible.length; i++) scratch[i] = affinityScore.score(feasible[i]!);
      normalizeAffinityScores(scratch);
      addWeighted(WEIGHTS.interPodAffinity);
    }
  }

  for (let i = 0; i < feasible.length; i++) {
    const node = feasible[i]!;
    total[i]! += WEIGHTS.leastAllocated * leastAllocatedScore(node, info) + WEIGHTS.balancedAllocation * balancedAllocationScore(node, info);
  }

  let best = -Infinity;
  const ties: number[] = [];
  for (let i = 0; i < total.length; i++) {
    const s = total[i]!;
    if (s > best) { best = s; ties.length = 0; ties.push(i); }
    else if (s === best) ties.push(i);
  }
  return { node: feasible[ties[hash(info.key) % ties.length]!]!.name };
}
