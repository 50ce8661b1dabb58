// One container's CRI config from its spec: command and args with $(VAR) expansion, env, mounts from
// the prepared volumes, resources as cgroup settings, the merged pod/container security context, and
// the labels/annotations (restart count, spec hash) a restarted agent reads back.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tryParseQuantity } from '../../api/quantity.js';
import type { QosClass } from '../../api/pod.js';
import type { ContainerConfig, LinuxContainerResources, LinuxContainerSecurityContext, Mount, MountPropagation, SecurityProfile } from '../runtime/cri-types.js';
import { ContainerConfigError, expandVars } from './env.js';
import {
  CONTAINER_HASH_ANNOTATION, CONTAINER_NAME_LABEL, CONTAINER_TYPE_ANNOTATION, GRACE_PERIOD_ANNOTATION, RESTART_COUNT_ANNOTATION,
  TERMINATION_MESSAGE_PATH_ANNOTATION, podLabels,
} from './labels.js';
import type { Obj } from './pod-api.js';
import { namespaceOptions } from './sandbox.js';
import { validateFilePath } from './atomic-writer.js';
import type { PreparedVolume } from './volumes.js';

/** Ephemeral containers (`kubectl debug`) run once in the existing sandbox, never restarted. */
export type ContainerKind = 'init' | 'regular' | 'ephemeral';

const CPU_PERIOD_US = 100_000;
const MIN_CPU_SHARES = 2;
const MIN_QUOTA_US = 1_000;

/** What the kubelet hides or freezes in /proc and /sys of an unprivileged container. */
const MASKED_PATHS = ['/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap'];
const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

const PROPAGATION: Record<string, MountPropagation> = {
  None: 'PROPAGATION_PRIVATE', HostToContainer: 'PROPAGATION_HOST_TO_CONTAINER', Bidirectional: 'PROPAGATION_BIDIRECTIONAL',
};

/** Changes of these restart the container (the only mutable container field is the image). */
export function containerHash(c: Obj): string {
  return createHash('sha256').update(`${c.name}\0${c.image}`).digest('hex').slice(0, 8);
}

/**
 * cgroup settings: shares from the cpu request, CFS quota from the cpu limit, the memory limit, and an
 * OOM score by QoS class. Guaranteed pods get 0, not the kubelet's -997: this kind of host refuses
 * negative scores, and 0 still ranks them below every other class (2..1000).
 */
export function linuxResources(c: Obj, qos: QosClass, nodeMemoryBytes: number): LinuxContainerResources {
  const out: LinuxContainerResources = {};
  // Millicores and bytes rounded up, as the kubelet reads them (MilliValue, Value).
  const cpuReq = tryParseQuantity(c.resources?.requests?.cpu ?? c.resources?.limits?.cpu, 3);
  const cpuLim = tryParseQuantity(c.resources?.limits?.cpu, 3);
  const memReq = tryParseQuantity(c.resources?.requests?.memory ?? c.resources?.limits?.memory);
  const memLim = tryParseQuantity(c.resources?.limits?.memory);
  out.cpuShares = cpuReq ? Math.max(MIN_CPU_SHARES, Math.floor((cpuReq * 1024) / 1000)) : MIN_CPU_SHARES;
  if (cpuLim) {
    out.cpuPeriod = CPU_PERIOD_US;
    out.cpuQuota = Math.max(MIN_QUOTA_US, Math.floor((cpuLim * CPU_PERIOD_US) / 1000));
  }
  if (memLim) out.memoryLimitInBytes = memLim;
  if (qos === 'Guaranteed') out.oomScoreAdj = 0;
  else if (qos === 'BestEffort') out.oomScoreAdj = 1000;
  else out.oomScoreAdj = Math.min(999, Math.max(2, 1000 - Math.floor((1000 * (memReq ?? 0)) / nodeMemoryBytes)));
  return out;
}

function profile(p: Obj | undefined): SecurityProfile | undefined {
  if (!p?.type) return undefined;
  return { profileType: p.type, ...(p.localhostProfile ? { localhostRef: p.localhostProfile } : {}) };
}

export function securityContext(pod: Obj, c: Obj): LinuxContainerSecurityContext {
  const psc = pod.spec.securityContext ?? {};
  const sc = c.securityContext ?? {};
  const privileged = sc.privileged === true;
  const runAsUser = sc.runAsUser ?? psc.runAsUser;
  const runAsGroup = sc.runAsGroup ?? psc.runAsGroup;
  if ((sc.runAsNonRoot ?? psc.runAsNonRoot) && runAsUser === 0) {
    throw new ContainerConfigError('container\'s runAsUser breaks non-root policy');
  }
  const unmasked = privileged || sc.procMount === 'Unmasked';
  const seccomp = profile(sc.seccompProfile ?? psc.seccompProfile);
  return {
    privileged,
    namespaceOptions: namespaceOptions(pod.spec),
    ...(runAsUser !== undefined ? { runAsUser: { value: runAsUser } } : {}),
    ...(runAsGroup !== undefined ? { runAsGroup: { value: runAsGroup } } : {}),
    supplementalGroups: [...(psc.supplementalGroups ?? []), ...(psc.fsGroup !== undefined ? [psc.fsGroup] : [])],
    readonlyRootfs: sc.readOnlyRootFilesystem === true,
    noNewPrivs: sc.allowPrivilegeEscalation === false,
    capabilities: { addCapabilities: sc.capabilities?.add ?? [], dropCapabilities: sc.capabilities?.drop ?? [] },
    maskedPaths: unmasked ? [] : MASKED_PATHS,
    readonlyPaths: unmasked ? [] : READONLY_PATHS,
    ...(seccomp ? { seccomp } : {}),
  };
}

/** Bind mounts of the container's volumeMounts (subPath inside the volume, created when missing). */
export function containerMounts(c: Obj, volumes: Map<string, PreparedVolume>, env: ReadonlyMap<string, string>): Mount[] {
  const out: Mount[] = [];
  for (const vm of c.volumeMounts ?? []) {
    const vol = volumes.get(vm.name);
    if (!vol) throw new ContainerConfigError(`cannot find volume "${vm.name}" to mount into container "${c.name}"`);
    let hostPath = vol.hostPath;
    const sub: string = vm.subPathExpr ? expandVars(vm.subPathExpr, env) : vm.subPath ?? '';
    if (sub) {
      try {
        validateFilePath(sub);
      } catch (err) {
        throw new ContainerConfigError(`invalid subPath of volume "${vm.name}": ${(err as Error).message}`);
      }
      hostPath = join(hostPath, sub);
      if (!existsSync(hostPath)) mkdirSync(hostPath, { recursive: true, mode: 0o755 });
    }
    out.push({
      containerPath: vm.mountPath,
      hostPath,
      readonly: vm.readOnly === true || vol.readOnly,
      propagation: PROPAGATION[vm.mountPropagation ?? 'None'] ?? 'PROPAGATION_PRIVATE',
    });
  }
  return out;
}

export interface ContainerSettings {
  kind: ContainerKind;
  nodeName: string;
  restartCount: number;
  /** The image to run (as resolved by the pull). */
  image: string;
  envs: { key: string; value: string }[];
  mounts: Mount[];
  /** Relative to the sandbox's log directory. */
  logPath: string;
  qos: QosClass;
  nodeMemoryBytes: number;
  /** An ephemeral container's target: the runtime ID of the container whose process namespace it joins. */
  targetId?: string;
}

export function containerConfig(pod: Obj, c: Obj, s: ContainerSettings): ContainerConfig {
  const vars = new Map(s.envs.map((e) => [e.key, e.value] as const));
  const expand = (list: unknown): string[] => (Array.isArray(list) ? list.map((x) => expandVars(String(x), vars)) : []);
  const terminationMessagePath: string = c.terminationMessagePath ?? '/dev/termination-log';
  return {
    metadata: { name: c.name, attempt: s.restartCount },
    image: { image: s.image, userSpecifiedImage: c.image },
    command: expand(c.command),
    args: expand(c.args),
    workingDir: c.workingDir ?? '',
    envs: s.envs,
    mounts: s.mounts,
    labels: { ...podLabels(pod, s.nodeName), [CONTAINER_NAME_LABEL]: c.name },
    annotations: {
      [RESTART_COUNT_ANNOTATION]: String(s.restartCount),
      [CONTAINER_HASH_ANNOTATION]: containerHash(c),
      [TERMINATION_MESSAGE_PATH_ANNOTATION]: terminationMessagePath,
      [CONTAINER_TYPE_ANNOTATION]: s.kind,
      [GRACE_PERIOD_ANNOTATION]: String(pod.spec.terminationGracePeriodSeconds ?? 30),
    },
    logPath: s.logPath,
    stdin: c.stdin === true,
    stdinOnce: c.stdinOnce === true,
    tty: c.tty === true,
    linux: { resources: linuxResources(c, s.qos, s.nodeMemoryBytes), securityContext: targeted(securityContext(pod, c), s.targetId) },
  };
}

/** `targetContainerName`: the PID namespace of that container (CRI's TARGET mode), so its processes are visible. */
function targeted(sc: LinuxContainerSecurityContext, targetId: string | undefined): LinuxContainerSecurityContext {
  if (!targetId) return sc;
  return { ...sc, namespaceOptions: { ...sc.namespaceOptions, pid: 'TARGET', targetId } };
}
