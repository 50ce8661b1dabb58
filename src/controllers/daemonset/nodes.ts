// Where a DaemonSet's pods belong: which nodes should run one (and whether a pod already on a node
// may stay), the tolerations every daemon pod gets, and the node affinity that pins a pod to its node.
import type { KObject } from '../../api/object.js';
import { NodeAffinity } from '../scheduler/node-affinity.js';
import { tolerated } from '../scheduler/taints.js';
import type { Pod, Taint, Toleration } from '../scheduler/types.js';

type Obj = Record<string, any>;

/** The tolerations every daemon pod gets (util.AddOrUpdateDaemonPodTolerations). */
export function daemonTolerations(hostNetwork: boolean): Toleration[] {
  const t: Toleration[] = [
    { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' },
    { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute' },
    { key: 'node.kubernetes.io/disk-pressure', operator: 'Exists', effect: 'NoSchedule' },
    { key: 'node.kubernetes.io/memory-pressure', operator: 'Exists', effect: 'NoSchedule' },
    { key: 'node.kubernetes.io/pid-pressure', operator: 'Exists', effect: 'NoSchedule' },
    { key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' },
  ];
  if (hostNetwork) t.push({ key: 'node.kubernetes.io/network-unavailable', operator: 'Exists', effect: 'NoSchedule' });
  return t;
}

export function withDaemonTolerations(spec: Obj): Toleration[] {
  const out: Toleration[] = [...(spec.tolerations ?? [])];
  for (const d of daemonTolerations(spec.hostNetwork === true)) {
    const same = out.some((t) => t.key === d.key && (t.operator ?? 'Equal') === d.operator && t.effect === d.effect && !t.value && t.tolerationSeconds === undefined);
    if (!same) out.push(d);
  }
  return out;
}

/** The affinity with every required term pinned to `node` (ReplaceDaemonSetPodNodeNameNodeAffinity). */
export function pinToNode(affinity: Obj | undefined, node: string): Obj {
  const pin = [{ key: 'metadata.name', operator: 'In', values: [node] }];
  const a = structuredClone(affinity ?? {});
  a.nodeAffinity ??= {};
  const required = a.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution;
  const terms: Obj[] | undefined = required?.nodeSelectorTerms;
  if (!terms?.length) {
    a.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution = { nodeSelectorTerms: [{ matchFields: pin }] };
  } else {
    // Terms are ORed: each keeps its expressions, and all of them now name only this node.
    for (const t of terms) t.matchFields = structuredClone(pin);
  }
  return a;
}

/** The node a daemon pod is on or meant for: spec.nodeName, else the node its affinity pins. */
export function targetNode(pod: KObject): string | undefined {
  const spec = (pod as Obj).spec ?? {};
  if (spec.nodeName) return spec.nodeName;
  for (const t of spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? []) {
    for (const f of t.matchFields ?? []) {
      if (f.key === 'metadata.name' && f.operator === 'In' && f.values?.length === 1) return f.values[0];
    }
  }
  return undefined;
}

/** Whether a node should run the daemon pod, and whether a pod already there may stay (NodeShouldRunDaemonPod). */
export interface Eligibility { shouldRun: boolean; shouldContinueRunning: boolean }

export function eligibilityChecker(template: Obj): (node: KObject) => Eligibility {
  const spec = template.spec ?? {};
  const tolerations = withDaemonTolerations(spec);
  const affinity = new NodeAffinity({ metadata: {}, spec: { nodeSelector: spec.nodeSelector, affinity: spec.affinity } } as Pod);
  return (node) => {
    const name = String(node.metadata.name);
    if (spec.nodeName && spec.nodeName !== name) return { shouldRun: false, shouldContinueRunning: false };
    if (!affinity.matches({ name, labels: node.metadata.labels })) return { shouldRun: false, shouldContinueRunning: false };
    const taints: Taint[] = (node as Obj).spec?.taints ?? [];
    let fits = true;
    let noExecuteUntolerated = false;
    for (const taint of taints) {
      if (taint.effect !== 'NoSchedule' && taint.effect !== 'NoExecute') continue;
      if (tolerated(tolerations, taint)) continue;
      fits = false;
      if (taint.effect === 'NoExecute') noExecuteUntolerated = true;
    }
    if (fits) return { shouldRun: true, shouldContinueRunning: true };
    return { shouldRun: false, shouldContinueRunning: !noExecuteUntolerated };
  };
}
