// What a hollow node writes, as pure functions: its Node (as a kubelet registers it), its Lease, and
// the status of a pod it "runs". Field names, reasons and messages are the kubelet's, since kubectl,
// the scheduler and the node lifecycle controller read them.
import { release } from 'node:os';
import { createHash, randomBytes } from 'node:crypto';
import type { KObject } from '../api/object.js';
import { VERSION } from '../version.js';
import { goArch, leaseObject, nodeConditions, parseLabel, parseTaint, LEASE_DURATION_SECONDS, LEASE_NAMESPACE, type Taint } from '../agent/node-objects.js';
import { rfc3339 } from '../util/time.js';

export { goArch, leaseObject, nodeConditions, parseLabel, parseTaint, LEASE_DURATION_SECONDS, LEASE_NAMESPACE, type Taint };

export const CONTAINER_RUNTIME_VERSION = 'hollow://1.0';
export const CAPACITY: Readonly<Record<string, string>> = Object.freeze({
  cpu: '4', memory: '16Gi', pods: '110', 'ephemeral-storage': '100Gi',
});

/** A pod (or node) as plain JSON: the fields read here are checked where they are used. */
export type Obj = KObject & { spec?: any; status?: any };

/** The nth IPv4 address after `base` (dotted quad). */
export function ipv4Add(base: string, n: number): string {
  const v = (base.split('.').reduce((acc, o) => acc * 256 + Number(o), 0) + n) >>> 0;
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
}

/**
 * Fake addresses: node `ordinal` gets InternalIP 172.16.0.0 + ordinal + 1 and pod block
 * 100.64.0.0/10's ordinal-th /24, out of the cluster CIDR so they can't be mistaken for real pods.
 */
export function nodeAddresses(ordinal: number): { internalIP: string; podBlockBase: string } {
  return { internalIP: ipv4Add('172.16.0.0', ordinal + 1), podBlockBase: ipv4Add('100.64.0.0', (ordinal % 16384) * 256) };
}

export interface NodeSpecInput {
  name: string;
  ordinal: number;
  labels: Record<string, string>;
  taints: Taint[];
}

function stableId(name: string, salt: string): string {
  return createHash('sha256').update(`${salt}/${name}`).digest('hex').slice(0, 32);
}

/** The Node as a kubelet registers it: labels, taints, capacity, addresses, nodeInfo and Ready. */
export function nodeObject(input: NodeSpecInput, now = new Date()): Obj {
  const arch = input.labels['kubernetes.io/arch'] ?? goArch();
  const labels = {
    'kubernetes.io/hostname': input.name,
    'kubernetes.io/os': 'linux',
    'kubernetes.io/arch': arch,
    'node.kubernetes.io/instance-type': 'hollow',
    ...input.labels,
  };
  const t = rfc3339(now);
  const { internalIP } = nodeAddresses(input.ordinal);
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: input.name, labels, annotations: { 'node.alpha.kubernetes.io/ttl': '0', 'skiff.io/hollow': 'true' } },
    spec: input.taints.length ? { taints: input.taints.map((x) => ({ ...x })) } : {},
    status: {
      capacity: { ...CAPACITY },
      allocatable: { ...CAPACITY },
      conditions: nodeConditions(t, t),
      addresses: [{ type: 'InternalIP', address: internalIP }, { type: 'Hostname', address: input.name }],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        machineID: stableId(input.name, 'machine'),
        systemUUID: stableId(input.name, 'system'),
        // A fresh boot id per process, as a real reboot gives one.
        bootID: randomBytes(16).toString('hex'),
        kernelVersion: release(),
        osImage: 'skiff hollow node',
        containerRuntimeVersion: CONTAINER_RUNTIME_VERSION,
        kubeletVersion: VERSION.gitVersion,
        operatingSystem: 'linux',
        architecture: arch,
      },
      images: [],
    },
  };
}

/**
 * Annotations that make a hollow container exit, so Jobs can complete: after `exit-after-ms` of
 * running it terminates with `exit-code` (default 0). Honoured where the kubelet would then leave the
 * pod terminal: restartPolicy Never, or OnFailure with exit code 0.
 */
export const EXIT_AFTER_ANNOTATION = 'hollow.skiff.io/exit-after-ms';
export const EXIT_CODE_ANNOTATION = 'hollow.skiff.io/exit-code';

export interface PlannedExit { afterMs: number; code: number }

export function plannedExit(pod: Obj): PlannedExit | undefined {
  const a = pod.metadata.annotations ?? {};
  const after = Number(a[EXIT_AFTER_ANNOTATION]);
  if (a[EXIT_AFTER_ANNOTATION] === undefined || !Number.isFinite(after) || after < 0) return undefined;
  const code = a[EXIT_CODE_ANNOTATION] === undefined ? 0 : Math.trunc(Number(a[EXIT_CODE_ANNOTATION])) || 0;
  const policy = pod.spec?.restartPolicy ?? 'Always';
  if (policy === 'Never' || (policy === 'OnFailure' && code === 0)) return { afterMs: after, code };
  return undefined;
}

export interface RunningInput {
  hostIP: string;
  podIP: string;
  /** When the node admitted the pod (status.startTime). */
  startTime: Date;
  /** When the containers "started". */
  startedAt: Date;
}

function condition(type: string, status: string, at: string, reason?: string, message?: string): Record<string, unknown> {
  return { type, status, lastProbeTime: null, lastTransitionTime: at, ...(reason ? { reason } : {}), ...(message ? { message } : {}) };
}

function containerId(pod: Obj, name: string): string {
  return `hollow://${createHash('sha256').update(`${pod.metadata.uid}/${name}`).digest('hex')}`;
}

/**
 * The status a kubelet reports once every container runs: phase Running, the five conditions,
 * running containerStatuses (init containers completed), pod and host IPs. Ready honours the pod's
 * readinessGates, as the kubelet's does: every gate's condition must be True.
 */
export function runningStatus(pod: Obj, input: RunningInput): Record<string, unknown> {
  const old = pod.status ?? {};
  const at = rfc3339(input.startedAt);
  const started = rfc3339(input.startTime);
  const scheduled = (old.conditions ?? []).find((c: any) => c.type === 'PodScheduled') ?? condition('PodScheduled', 'True', started);
  const gates: string[] = (pod.spec?.readinessGates ?? []).map((g: any) => g.conditionType);
  const gateConditions = (old.conditions ?? []).filter((c: any) => gates.includes(c.type));
  const missing = gates.filter((g) => !gateConditions.some((c: any) => c.type === g && c.status === 'True'));
  const ready = missing.length === 0
    ? condition('Ready', 'True', at)
    : condition('Ready', 'False', at, 'ReadinessGatesNotReady', `corresponding condition of pod readiness gate "${missing[0]}" does not exist.`);
  const image = (c: any) => ({ image: c.image, imageID: `${c.image}@sha256:${createHash('sha256').update(String(c.image)).digest('hex')}` });
  return {
    ...old,
    phase: 'Running',
    conditions: [
      condition('PodReadyToStartContainers', 'True', started),
      condition('Initialized', 'True', started),
      ready,
      condition('ContainersReady', 'True', at),
      scheduled,
      ...gateConditions,
    ],
    hostIP: input.hostIP,
    hostIPs: [{ ip: input.hostIP }],
    podIP: input.podIP,
    podIPs: [{ ip: input.podIP }],
    startTime: started,
    ...((pod.spec?.initContainers ?? []).length ? {
      initContainerStatuses: pod.spec!.initContainers.map((c: any) => ({
        name: c.name, ...image(c), containerID: containerId(pod, c.name), ready: true, restartCount: 0, started: false,
        state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: started, finishedAt: started, containerID: containerId(pod, c.name) } },
        lastState: {},
      })),
    } : {}),
    containerStatuses: (pod.spec?.containers ?? []).map((c: any) => ({
      name: c.name, ...image(c), containerID: containerId(pod, c.name), ready: true, restartCount: 0, started: true,
      state: { running: { startedAt: at } }, lastState: {},
    })),
  };
}

/** The status once the containers have exited with `code`: phase Succeeded or Failed, not ready. */
export function exitedStatus(pod: Obj, code: number, finished: Date): Record<string, unknown> {
  const old = pod.status ?? {};
  const at = rfc3339(finished);
  const reason = code === 0 ? 'Completed' : 'Error';
  const notReady = (type: string) => condition(type, 'False', at, 'PodCompleted');
  return {
    ...old,
    phase: code === 0 ? 'Succeeded' : 'Failed',
    conditions: (old.conditions ?? []).map((c: any) =>
      c.type === 'Ready' || c.type === 'ContainersReady' ? notReady(c.type)
        : c.type === 'PodReadyToStartContainers' ? condition(c.type, 'False', at) : c),
    containerStatuses: (old.containerStatuses ?? []).map((s: any) => ({
      ...s, ready: false, started: false,
      state: { terminated: { exitCode: code, reason, startedAt: s.state?.running?.startedAt ?? at, finishedAt: at, containerID: s.containerID } },
    })),
  };
}
