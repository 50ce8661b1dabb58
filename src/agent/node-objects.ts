// What every node agent writes about itself, real or hollow: its Lease, its conditions, and the
// parsing of the --node-label / --node-taint flags. Field names, reasons and messages are the
// kubelet's, since kubectl, the scheduler and the node lifecycle controller read them.
import { arch as osArch } from 'node:os';
import type { KObject } from '../api/object.js';
import { microTime } from '../util/time.js';

export const LEASE_NAMESPACE = 'kube-node-lease';
/** The kubelet's default: the node lifecycle controller's grace period. */
export const LEASE_DURATION_SECONDS = 40;
/**
 * A node's new connection to the server must be connected (TCP) within this: the kubelet gives its
 * heartbeat requests 10 s in all (its nodeStatusUpdateFrequency), dial included. After a server
 * restart, a connection attempt whose SYNs the full accept queue dropped is dialled again after 10 s
 * instead of waiting out the kernel's SYN backoff (1, 2, 4, 8, 16... s between tries).
 */
export const NODE_CONNECT_TIMEOUT_MS = 10_000;

export interface Taint { key: string; value?: string; effect: string }

const EFFECTS = new Set(['NoSchedule', 'PreferNoSchedule', 'NoExecute']);

/** `k=v` (k3s's --node-label). */
export function parseLabel(s: string): [string, string] {
  const eq = s.indexOf('=');
  if (eq <= 0) throw new Error(`--node-label ${JSON.stringify(s)}: expected key=value`);
  return [s.slice(0, eq), s.slice(eq + 1)];
}

/** `key=value:Effect` or `key:Effect` (k3s's --node-taint). */
export function parseTaint(s: string): Taint {
  const colon = s.lastIndexOf(':');
  const effect = colon > 0 ? s.slice(colon + 1) : '';
  if (!EFFECTS.has(effect)) throw new Error(`--node-taint ${JSON.stringify(s)}: expected key[=value]:Effect with Effect one of ${[...EFFECTS].join(', ')}`);
  const kv = s.slice(0, colon);
  const eq = kv.indexOf('=');
  const key = eq < 0 ? kv : kv.slice(0, eq);
  if (!key) throw new Error(`--node-taint ${JSON.stringify(s)}: empty key`);
  return eq < 0 ? { key, effect } : { key, value: kv.slice(eq + 1), effect };
}

/** Node's GOARCH spelling of this machine's architecture. */
export function goArch(): string {
  const a = osArch();
  return a === 'x64' ? 'amd64' : a === 'ia32' ? '386' : a;
}

/** The four node conditions a healthy kubelet posts, with Ready's transition at `readySince`. */
/** What the kubelet says while its runtime is not up yet (pods cannot start, so the node is not Ready). */
export const RUNTIME_NOT_READY = 'container runtime status check may not have completed yet';

/** The node's conditions; `notReady` is why it is not Ready (the Ready condition's message), if it is not. */
export function nodeConditions(now: string, readySince: string, notReady?: string): Record<string, unknown>[] {
  const c = (type: string, status: string, reason: string, message: string, since: string) =>
    ({ type, status, lastHeartbeatTime: now, lastTransitionTime: since, reason, message });
  return [
    c('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available', readySince),
    c('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure', readySince),
    c('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available', readySince),
    notReady ? c('Ready', 'False', 'KubeletNotReady', notReady, readySince) : c('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status', readySince),
  ];
}

/** The node's Lease in kube-node-lease, owned by the Node so it goes when the Node is deleted. */
export function leaseObject(node: string, nodeUid: string | undefined, renewTime: Date): KObject {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: node,
      namespace: LEASE_NAMESPACE,
      ...(nodeUid ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: node, uid: nodeUid }] } : {}),
    },
    spec: { holderIdentity: node, leaseDurationSeconds: LEASE_DURATION_SECONDS, renewTime: microTime(renewTime) },
  };
}
