// Small builders for the Pods and Nodes the scheduler tests place.
import type { Node, Pod, PodSpec, Taint } from '../../src/controllers/scheduler/types.js';

export interface NodeOpts {
  labels?: Record<string, string>;
  taints?: Taint[];
  unschedulable?: boolean;
  allocatable?: Record<string, string>;
  ready?: 'True' | 'False' | 'Unknown' | null;
}

export function node(name: string, o: NodeOpts = {}): Node {
  return {
    apiVersion: 'v1', kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...o.labels } },
    spec: { ...(o.taints ? { taints: o.taints } : {}), ...(o.unschedulable ? { unschedulable: true } : {}) },
    status: {
      allocatable: { cpu: '4', memory: '8Gi', pods: '110', 'ephemeral-storage': '50Gi', ...o.allocatable },
      conditions: o.ready === null ? [] : [{ type: 'Ready', status: o.ready ?? 'True' }],
    },
  };
}

export interface PodOpts extends PodSpec {
  namespace?: string;
  labels?: Record<string, string>;
  owner?: string;
  requests?: Record<string, string>;
}

export function pod(name: string, o: PodOpts = {}): Pod {
  const { namespace, labels, owner, requests, ...spec } = o;
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: {
      name, namespace: namespace ?? 'default', uid: `uid-${namespace ?? 'default'}-${name}`, labels,
      ...(owner ? { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: owner, uid: `rs-${owner}`, controller: true }] } : {}),
    },
    spec: { containers: [{ name: 'c', ...(requests ? { resources: { requests } } : {}) }], ...spec },
  };
}

/** A pod already bound to a node. */
export function placed(name: string, nodeName: string, o: PodOpts = {}): Pod {
  const p = pod(name, o);
  return { ...p, spec: { ...p.spec, nodeName } };
}

export function byNode(pods: Pod[]): Map<string, Pod[]> {
  const m = new Map<string, Pod[]>();
  for (const p of pods) {
    const n = p.spec!.nodeName!;
    m.set(n, [...(m.get(n) ?? []), p]);
  }
  return m;
}
