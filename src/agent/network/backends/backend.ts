// What a pod network backend does for the agent, whichever it is (flannel's backend split): it owns
// the kernel state that carries pod traffic to other nodes, says which MTU pods get, publishes this
// node's endpoint in flannel's Node annotations, and follows the other Nodes' annotations.
import type { KObject } from '../../../api/object.js';

export const ANNOTATIONS = {
  backendType: 'flannel.alpha.coreos.com/backend-type',
  backendData: 'flannel.alpha.coreos.com/backend-data',
  publicIp: 'flannel.alpha.coreos.com/public-ip',
  subnetManager: 'flannel.alpha.coreos.com/kube-subnet-manager',
} as const;

export interface PodNetworkBackend {
  readonly type: 'vxlan' | 'host-gw';
  /** The MTU pods get (written into the CNI config). */
  readonly mtu: number;
  /** The Node annotations that publish this node's endpoint. */
  annotations(): Record<string, string>;
  /** Makes the kernel's routes match the other nodes' published endpoints. */
  sync(nodes: KObject[], self: string): Promise<void>;
  /** The pod CIDRs of the peers routed now (traffic to them is not masqueraded). */
  peerCidrs(): string[];
}

/** A Node's pod CIDR and flannel annotations, when it publishes an endpoint of backend `type`. */
export function endpointOf(n: KObject, type: string): { name: string; podCidr: string; publicIp: string; data: string | undefined } | undefined {
  const a = n.metadata.annotations ?? {};
  const podCidr = (n as { spec?: { podCIDR?: string } }).spec?.podCIDR;
  const publicIp = a[ANNOTATIONS.publicIp];
  if (!n.metadata.name || !podCidr || a[ANNOTATIONS.backendType] !== type || !publicIp || !/^\d{1,3}(\.\d{1,3}){3}$/.test(publicIp)) return undefined;
  return { name: n.metadata.name, podCidr, publicIp, data: a[ANNOTATIONS.backendData] };
}

/**
 * What an agent keeps of another Node: its name, resourceVersion, pod CIDR and flannel annotations,
 * nothing else (status, images, labels, managed fields). A Node of some kilobytes becomes a few
 * hundred bytes, so an agent's memory grows by that much per node in the cluster, not by the Nodes'
 * size; the backends read nothing more (endpointOf).
 */
export function peerView(n: KObject): KObject {
  const a = n.metadata.annotations;
  let annotations: Record<string, string> | undefined;
  if (a) {
    for (const k of Object.values(ANNOTATIONS)) {
      if (a[k] !== undefined) (annotations ??= {})[k] = a[k];
    }
  }
  const podCIDR = (n as { spec?: { podCIDR?: string } }).spec?.podCIDR;
  return {
    apiVersion: 'v1', kind: 'Node',
    metadata: { name: n.metadata.name, resourceVersion: n.metadata.resourceVersion, ...(annotations ? { annotations } : {}) },
    ...(podCIDR ? { spec: { podCIDR } } : {}),
  } as KObject;
}

/** The part of a peer view that routes depend on: equal signatures need no reprogramming. */
export function peerSignature(n: KObject | undefined): string {
  if (!n) return '';
  const a = n.metadata.annotations ?? {};
  return JSON.stringify([(n as { spec?: { podCIDR?: string } }).spec?.podCIDR, ...Object.values(ANNOTATIONS).map((k) => a[k])]);
}
