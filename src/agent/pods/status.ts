// A pod's status from what the runtime reports, computed afresh at every sync (level-triggered, as
// the kubelet's generateAPIPodStatus): phase, conditions (keeping transition times that did not
// change), IPs, and one status per container with its state, last state, readiness and restarts.
import type { ContainerState } from '../runtime/cri-types.js';
import type { ContainerKind } from './containers.js';
import type { QosClass } from '../../api/pod.js';
import type { Obj } from './pod-api.js';
import { rfc3339 } from '../../util/time.js';

export interface ObservedContainer {
  name: string;
  kind: ContainerKind;
  id: string;
  state: ContainerState;
  startedAt: Date | null;
  finishedAt: Date | null;
  exitCode: number;
  /** The runtime's reason (e.g. OOMKilled), empty for a plain exit. */
  reason: string;
  /** The termination message the container wrote (or the runtime's message). */
  message: string;
  /** The image as the runtime names it, and its ID. */
  image: string;
  imageRef: string;
  restartCount: number;
}

/** The newest instance of a container and the one it replaced. */
export interface ContainerHistory { latest?: ObservedContainer; previous?: ObservedContainer }

export interface StatusInput {
  pod: Obj;
  now: Date;
  hostIPs: string[];
  podIPs: string[];
  /** The sandbox runs with its network set up. */
  sandboxReady: boolean;
  init: Map<string, ContainerHistory>;
  regular: Map<string, ContainerHistory>;
  /** Ephemeral containers (spec.ephemeralContainers), by name. */
  ephemeral?: Map<string, ContainerHistory>;
  /** Why a container waits (`init/name` or `regular/name` → reason, message), e.g. CrashLoopBackOff. */
  waiting: Map<string, { reason: string; message?: string }>;
  /** Probe state of a running container, by container ID. */
  probes(id: string): { ready: boolean; started: boolean } | undefined;
  startTime: string;
  qosClass: QosClass;
}

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';

function terminated(o: ObservedContainer): Obj {
  const t: Obj = {
    exitCode: o.exitCode,
    reason: o.reason || (o.exitCode === 0 ? 'Completed' : 'Error'),
    ...(o.message ? { message: o.message } : {}),
    startedAt: o.startedAt ? rfc3339(o.startedAt) : null,
    finishedAt: o.finishedAt ? rfc3339(o.finishedAt) : null,
    containerID: `containerd://${o.id}`,
  };
  return t;
}

function containerStatus(spec: Obj, kind: ContainerKind, h: ContainerHistory | undefined, input: StatusInput, initDone: boolean): Obj {
  const w = input.waiting.get(`${kind}/${spec.name}`);
  const latest = h?.latest;
  const base = { name: spec.name, image: latest?.image || spec.image, imageID: latest?.imageRef ?? '' };
  if (!latest) {
    const reason = w?.reason ?? (kind === 'regular' && !initDone ? 'PodInitializing' : 'ContainerCreating');
    return {
      ...base, state: { waiting: { reason, ...(w?.message ? { message: w.message } : {}) } }, lastState: {},
      ready: false, restartCount: 0, started: false,
    };
  }
  const last = h?.previous && h.previous.state === 'CONTAINER_EXITED' ? { terminated: terminated(h.previous) } : {};
  const out: Obj = { ...base, containerID: `containerd://${latest.id}`, restartCount: latest.restartCount };
  if (latest.state === 'CONTAINER_RUNNING') {
    // Ephemeral containers are never ready: nothing of the pod's service may depend on them.
    const p = kind === 'ephemeral' ? { ready: false, started: true } : input.probes(latest.id) ?? { ready: true, started: true };
    return {
      ...out, state: { running: { startedAt: latest.startedAt ? rfc3339(latest.startedAt) : rfc3339(input.now) } }, lastState: last,
      ready: p.started && p.ready, started: p.started,
    };
  }
  if (latest.state === 'CONTAINER_EXITED') {
    // Waiting to be restarted (back-off, pulling...): the exit it restarts from is the last state.
    if (w) return { ...out, state: { waiting: { reason: w.reason, ...(w.message ? { message: w.message } : {}) } }, lastState: { terminated: terminated(latest) }, ready: false, started: false };
    return { ...out, state: { terminated: terminated(latest) }, lastState: last, ready: false, started: false };
  }
  return { ...out, state: { waiting: { reason: w?.reason ?? 'ContainerCreating', ...(w?.message ? { message: w.message } : {}) } }, lastState: last, ready: false, started: false };
}

/** The kubelet's getPhase over the container statuses. */
export function podPhase(spec: Obj, init: Obj[], regular: Obj[], initDone: boolean): PodPhase {
  const restartPolicy = spec.restartPolicy ?? 'Always';
  const initFailed = init.some((s) => s.state.terminated && s.state.terminated.exitCode !== 0
    || s.state.waiting && s.lastState?.terminated && s.lastState.terminated.exitCode !== 0);
  if (!initDone) {
    if (initFailed && restartPolicy === 'Never') return 'Failed';
    return 'Pending';
  }
  let running = 0, waiting = 0, stopped = 0, succeeded = 0;
  for (const s of regular) {
    if (s.state.running) running++;
    else if (s.state.terminated) {
      stopped++;
      if (s.state.terminated.exitCode === 0) succeeded++;
    } else if (s.state.waiting) {
      if (s.lastState?.terminated) stopped++;
      else waiting++;
    }
  }
  if (waiting > 0) return 'Pending';
  if (running > 0) return 'Running';
  if (stopped > 0) {
    if (restartPolicy === 'Always') return 'Running';
    if (stopped === succeeded) return 'Succeeded';
    if (restartPolicy === 'Never') return 'Failed';
    return 'Running';
  }
  return 'Pending';
}

function condition(prev: Obj[] | undefined, type: string, ok: boolean, now: Date, reason?: string, message?: string): Obj {
  const status = ok ? 'True' : 'False';
  const old = prev?.find((c) => c.type === type);
  return {
    type, status, lastProbeTime: null,
    lastTransitionTime: old?.status === status && old.lastTransitionTime ? old.lastTransitionTime : rfc3339(now),
    ...(reason ? { reason } : {}),
    ...(message ? { message } : {}),
  };
}

export function computePodStatus(input: StatusInput): Obj {
  const { pod, now } = input;
  const spec = pod.spec;
  const prev: Obj = pod.status ?? {};
  const initSpecs: Obj[] = spec.initContainers ?? [];
  const regularSpecs: Obj[] = spec.containers ?? [];
  const anyRegular = regularSpecs.some((c) => input.regular.get(c.name)?.latest);
  const initIncomplete = initSpecs
    .filter((c) => { const l = input.init.get(c.name)?.latest; return !(l?.state === 'CONTAINER_EXITED' && l.exitCode === 0); })
    .map((c) => c.name);
  const initDone = initIncomplete.length === 0 || anyRegular;
  const initStatuses = initSpecs.map((c) => containerStatus(c, 'init', input.init.get(c.name), input, initDone));
  const statuses = regularSpecs.map((c) => containerStatus(c, 'regular', input.regular.get(c.name), input, initDone));
  // A terminal phase is final: containers of a finished pod are never started again.
  let phase: PodPhase = prev.phase === 'Succeeded' || prev.phase === 'Failed' ? prev.phase : podPhase(spec, initStatuses, statuses, initDone);
  if (phase === 'Running' && !input.sandboxReady && statuses.every((s) => !s.state.running)) phase = 'Pending';
  const terminal = phase === 'Succeeded' || phase === 'Failed';

  const unready = statuses.filter((s) => !s.ready).map((s) => s.name);
  const ready = !terminal && unready.length === 0;
  const notReadyReason = terminal ? 'PodCompleted' : 'ContainersNotReady';
  const notReadyMessage = terminal ? undefined : `containers with unready status: [${unready.join(' ')}]`;
  const conditions: Obj[] = [
    condition(prev.conditions, 'PodReadyToStartContainers', input.sandboxReady, now),
    condition(prev.conditions, 'Initialized', initDone, now, initDone ? (terminal ? 'PodCompleted' : undefined) : 'ContainersNotInitialized',
      initDone ? undefined : `containers with incomplete status: [${initIncomplete.join(' ')}]`),
    condition(prev.conditions, 'Ready', ready, now, ready ? undefined : notReadyReason, ready ? undefined : notReadyMessage),
    condition(prev.conditions, 'ContainersReady', ready, now, ready ? undefined : notReadyReason, ready ? undefined : notReadyMessage),
  ];
  const scheduled = prev.conditions?.find((c: Obj) => c.type === 'PodScheduled');
  conditions.push(scheduled ?? condition(undefined, 'PodScheduled', true, now));

  const status: Obj = {
    phase,
    conditions,
    hostIP: input.hostIPs[0] ?? '',
    hostIPs: input.hostIPs.map((ip) => ({ ip })),
    startTime: input.startTime,
    containerStatuses: statuses,
    qosClass: prev.qosClass ?? input.qosClass,
  };
  if (input.podIPs.length) {
    status.podIP = input.podIPs[0];
    status.podIPs = input.podIPs.map((ip) => ({ ip }));
  }
  if (initStatuses.length) status.initContainerStatuses = initStatuses;
  const ephemeralSpecs: Obj[] = spec.ephemeralContainers ?? [];
  if (ephemeralSpecs.length) {
    status.ephemeralContainerStatuses = ephemeralSpecs.map((c) => containerStatus(c, 'ephemeral', input.ephemeral?.get(c.name), input, initDone));
  }
  return status;
}
