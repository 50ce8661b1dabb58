// The parts of Pods and Nodes the scheduler reads, as they arrive in JSON from the API. Only the fields
// placement depends on are typed; everything else rides along untouched (objects may be frozen, so
// nothing here is ever written to).
import type { KObject } from '../../api/object.js';

export type ResourceList = Record<string, string | number>;

import type { LabelSelector } from '../../api/selectors.js';
export type { LabelSelector, LabelSelectorRequirement } from '../../api/selectors.js';

export interface NodeSelectorRequirement { key: string; operator: string; values?: string[] }
export interface NodeSelectorTerm { matchExpressions?: NodeSelectorRequirement[]; matchFields?: NodeSelectorRequirement[] }

export interface PodAffinityTerm {
  labelSelector?: LabelSelector | null;
  namespaces?: string[];
  namespaceSelector?: LabelSelector | null;
  topologyKey: string;
  matchLabelKeys?: string[];
  mismatchLabelKeys?: string[];
}
export interface WeightedPodAffinityTerm { weight: number; podAffinityTerm: PodAffinityTerm }

export interface Affinity {
  nodeAffinity?: {
    requiredDuringSchedulingIgnoredDuringExecution?: { nodeSelectorTerms?: NodeSelectorTerm[] } | null;
    preferredDuringSchedulingIgnoredDuringExecution?: { weight: number; preference: NodeSelectorTerm }[];
  };
  podAffinity?: {
    requiredDuringSchedulingIgnoredDuringExecution?: PodAffinityTerm[];
    preferredDuringSchedulingIgnoredDuringExecution?: WeightedPodAffinityTerm[];
  };
  podAntiAffinity?: {
    requiredDuringSchedulingIgnoredDuringExecution?: PodAffinityTerm[];
    preferredDuringSchedulingIgnoredDuringExecution?: WeightedPodAffinityTerm[];
  };
}

export interface Toleration { key?: string; operator?: string; value?: string; effect?: string; tolerationSeconds?: number }
export interface Taint { key: string; value?: string; effect: string }

export interface ContainerPort { containerPort?: number; hostPort?: number; hostIP?: string; protocol?: string }
export interface Container {
  name?: string;
  resources?: { requests?: ResourceList; limits?: ResourceList };
  ports?: ContainerPort[];
  restartPolicy?: string;
}

export interface TopologySpreadConstraint {
  maxSkew: number;
  topologyKey: string;
  whenUnsatisfiable: string;
  labelSelector?: LabelSelector | null;
  minDomains?: number;
  nodeAffinityPolicy?: string;
  nodeTaintsPolicy?: string;
  matchLabelKeys?: string[];
}

export interface PodSpec {
  nodeName?: string;
  nodeSelector?: Record<string, string>;
  affinity?: Affinity;
  tolerations?: Toleration[];
  containers?: Container[];
  initContainers?: Container[];
  overhead?: ResourceList;
  topologySpreadConstraints?: TopologySpreadConstraint[];
  priority?: number;
  preemptionPolicy?: string;
}

export interface Pod extends KObject { spec?: PodSpec }

export interface NodeCondition { type: string; status: string }
export interface Node extends KObject {
  spec?: { unschedulable?: boolean; taints?: Taint[] };
  status?: { allocatable?: ResourceList; capacity?: ResourceList; conditions?: NodeCondition[] };
}

export type ScheduleResult = { node: string } | { node: undefined; message: string };

/** Labels of a namespace by name; namespaceSelector terms need them. */
export type NamespaceLabels = (name: string) => Record<string, string> | undefined;

export interface ScheduleOptions {
  namespaces?: NamespaceLabels;
  /** Like kube-scheduler's percentageOfNodesToScore; 0 or absent means its adaptive default. */
  percentageOfNodesToScore?: number;
}
