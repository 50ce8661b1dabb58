// The per-node feasibility checks, in kube-scheduler's default plugin order: NodeUnschedulable,
// TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit, PodTopologySpread, InterPodAffinity.
// The first plugin to reject a node decides its reasons in the failure message.
import { REASON, insufficientReason, status, taintReason, type Status } from './messages.js';
import type { NodeAffinity } from './node-affinity.js';
import type { NodeInfo, PodInfo } from './node-info.js';
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
  const alloc = node.allocatable;
  const req = pod.requests;
  let usedCPU = node.requested.milliCPU;
  let usedMem = node.requested.memory;
  let usedStorage = node.requested.ephemeralStorage;
  for (const v of without) {
    usedCPU -= v.requests.milliCPU;
    usedMem -= v.requests.memory;
    usedStorage -= v.requests.ephemeralStorage;
  }
  // Written without closures: this runs for every node of every cycle.
  let reasons: string[] | undefined;
  let unresolvable = false;
  if (node.pods.size - without.length + 1 > alloc.pods) reasons = [REASON.tooManyPods];
  if (req.milliCPU > 0 && req.milliCPU > alloc.milliCPU - usedCPU) {
    (reasons ??= []).push(insufficientReason('cpu'));
    unresolvable ||= req.milliCPU > alloc.milliCPU;
  }
  if (req.memory > 0 && req.memory > alloc.memory - usedMem) {
    (reasons ??= []).push(insufficientReason('memory'));
    unresolvable ||= req.memory > alloc.memory;
  }
  if (req.ephemeralStorage > 0 && req.ephemeralStorage > alloc.ephemeralStorage - usedStorage) {
    (reasons ??= []).push(insufficientReason('ephemeral-storage'));
    unresolvable ||= req.ephemeralStorage > alloc.ephemeralStorage;
  }
  if (req.scalar) {
    for (const name in req.scalar) {
      const want = req.scalar[name]!;
      if (want <= 0) continue;
      const have = alloc.scalar?.[name] ?? 0;
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
