// The per-node feasibility checks, in kube-scheduler's default plugin order: NodeUnschedulable,
// TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit, PodTopologySpread, InterPodAffinity.
// The first plugin to reject a node decides its reasons in the failure message.
import { REASON, insufficientReason, status, taintReason, type Status } from './messages.js';
import type { NodeAffinity } from './node-affinity.js';
import { ROW, type NodeInfo, type PodInfo } from './node-info.js';
import type { AffinityFilterState } from './pod-affinity.js';
import { firstUntoleratedTaint, tolerated, TAINT_UNSCHEDULABLE } from './taints.js';
import type { SpreadFilterState } from './topology-spread.js';
import type { Toleration } from './types.js';

/** Everything the filters need about the incoming pod, worked out once per scheduling cycle. */
export interface FilterContext {
  pod: PodInfo;
  tolerations: Toleration[];
  toleratesUnschedulable: boolean;
  nodeAffinity: NodeAffinity;
  spread: SpreadFilterState | undefined;
  interPod: AffinityFilterState | undefined;
}

export function filterContext(pod: PodInfo, nodeAffinity: NodeAffinity, spread: SpreadFilterState | undefined, interPod: AffinityFilterState | undefined): FilterContext {
  const tolerations = pod.pod.spec?.tolerations ?? [];
  return {
    pod,
    tolerations,
    toleratesUnschedulable: tolerated(tolerations, { key: TAINT_UNSCHEDULABLE, effect: 'NoSchedule' }),
    nodeAffinity,
    spread,
    interPod,
  };
}

/** Undefined when the pod fits the node. */
export function filterNode(ctx: FilterContext, node: NodeInfo): Status | undefined {
  if (node.unschedulable && !ctx.toleratesUnschedulable) return status('UnschedulableAndUnresolvable', REASON.unschedulable);
  if (node.taints.length) {
    const t = firstUntoleratedTaint(node.taints, ctx.tolerations);
    if (t) return status('UnschedulableAndUnresolvable', taintReason(t.key, t.value));
  }
  if (ctx.nodeAffinity.constrained && !ctx.nodeAffinity.matches(node)) return status('UnschedulableAndUnresolvable', REASON.nodeAffinity);
  for (const hp of ctx.pod.hostPorts) if (node.portConflict(hp)) return status('Unschedulable', REASON.nodePorts);
  const fit = fitResources(node, ctx.pod);
  if (fit) return fit;
  if (ctx.spread) {
    const why = ctx.spread.check(node);
    if (why === 'missingLabel') return status('UnschedulableAndUnresolvable', REASON.spreadMissingLabel);
    if (why === 'skew') return status('Unschedulable', REASON.spreadSkew);
  }
  if (ctx.interPod) {
    const why = ctx.interPod.check(node);
    if (why === 'affinity') return status('UnschedulableAndUnresolvable', REASON.podAffinity);
    if (why === 'antiAffinity') return status('Unschedulable', REASON.podAntiAffinity);
    if (why === 'existingAntiAffinity') return status('Unschedulable', REASON.existingAntiAffinity);
  }
  return undefined;
}

/**
 * NodeResourcesFit: the pod's requests against allocatable minus what the node's pods already request.
 * A request larger than the whole node is unresolvable (no eviction can make room). `without` lists
 * pods to leave out, for asking whether evicting them would help.
 */
export function fitResources(node: NodeInfo, pod: PodInfo, without: PodInfo[] = []): Status | undefined {
  // The node's numbers from its row (see NodeRows): written without closures or objects, as this
  // runs for every node of every cycle.
  const d = node.rows.data;
  const row = node.row;
  const req = pod.requests;
  const allocCPU = d[row + ROW.allocMilliCPU]!;
  const allocMem = d[row + ROW.allocMemory]!;
  const allocStorage = d[row + ROW.allocStorage]!;
  let usedCPU = d[row + ROW.reqMilliCPU]!;
  let usedMem = d[row + ROW.reqMemory]!;
  let usedStorage = d[row + ROW.reqStorage]!;
  for (const v of without) {
    usedCPU -= v.requests.milliCPU;
    usedMem -= v.requests.memory;
    usedStorage -= v.requests.ephemeralStorage;
  }
  let reasons: string[] | undefined;
  let unresolvable = false;
  if (d[row + ROW.pods]! - without.length + 1 > d[row + ROW.allocPods]!) reasons = [REASON.tooManyPods];
  if (req.milliCPU > 0 && req.milliCPU > allocCPU - usedCPU) {
    (reasons ??= []).push(insufficientReason('cpu'));
    unresolvable ||= req.milliCPU > allocCPU;
  }
  if (req.memory > 0 && req.memory > allocMem - usedMem) {
    (reasons ??= []).push(insufficientReason('memory'));
    unresolvable ||= req.memory > allocMem;
  }
  if (req.ephemeralStorage > 0 && req.ephemeralStorage > allocStorage - usedStorage) {
    (reasons ??= []).push(insufficientReason('ephemeral-storage'));
    unresolvable ||= req.ephemeralStorage > allocStorage;
  }
  if (req.scalar) {
    for (const name in req.scalar) {
      const want = req.scalar[name]!;
      if (want <= 0) continue;
      const have = node.allocatable.scalar?.[name] ?? 0;
      let used = node.requested.scalar?.[name] ?? 0;
      for (const v of without) used -= v.requests.scalar?.[name] ?? 0;
      if (want > have - used) {
        (reasons ??= []).push(insufficientReason(name));
        unresolvable ||= want > have;
      }
    }
  }
  if (!reasons) return undefined;
  const code = unresolvable ? 'UnschedulableAndUnresolvable' : 'Unschedulable';
  return reasons.length === 1 ? status(code, reasons[0]!) : { code, reasons };
}
