// Table printers for workloads: pods and the controllers that make them. Columns and cell rules are
// Kubernetes' (pkg/printers/internalversion), so `kubectl get` reads as it does against Kubernetes.

import {
  type J, type Printer, ageCol, col, containerCells, formatLabels, formatSelector, humanDuration,
  nameCol, selectorString, since, boolPtr,
} from './format.js';
import { isPodReady, isPodTerminal } from '../../api/pod.js';

const containersCol = () => col('Containers', 'string', 'Names of each container in the template.', 1);
const imagesCol = () => col('Images', 'string', 'Images referenced by each container in the template.', 1);

export const pods: Printer = {
  columns: () => [
    nameCol(),
    col('Ready', 'string', 'The aggregate readiness state of this pod for accepting traffic.'),
    col('Status', 'string', 'The aggregate status of the containers in this pod.'),
    col('Restarts', 'string', 'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.'),
    ageCol(),
    col('IP', 'string', 'V1PodStatus.podIP', 1),
    col('Node', 'string', 'V1PodSpec.nodeName', 1),
    col('Nominated Node', 'string', 'V1PodStatus.nominatedNodeName', 1),
    col('Readiness Gates', 'string', 'V1PodSpec.readinessGates', 1),
  ],
  row: podRow,
};

/** READY, STATUS and RESTARTS as kubectl derives them from container statuses (printPod). */
function podRow(pod: J, now: number): unknown[] {
  const spec = pod.spec ?? {};
  const status = pod.status ?? {};
  const initContainers: J[] = spec.initContainers ?? [];
  const restartable = new Set(initContainers.filter((c) => c.restartPolicy === 'Always').map((c) => c.name));
  const total = (spec.containers ?? []).length + restartable.size;
  let ready = 0;
  let restarts = 0;
  let sidecarRestarts = 0;
  let lastRestart = 0;
  let lastSidecarRestart = 0;
  let reason: string = status.reason || status.phase || '';
  if ((status.conditions ?? []).some((c: J) => c.type === 'PodScheduled' && c.reason === 'SchedulingGated')) {
    reason = 'SchedulingGated';
  }
  const finishedAt = (cs: J) => Date.parse(cs.lastState?.terminated?.finishedAt ?? '') || 0;

  let initializing = false;
  const initStatuses: J[] = status.initContainerStatuses ?? [];
  for (let i = 0; i < initStatuses.length; i++) {
    const cs = initStatuses[i];
    restarts += cs.restartCount ?? 0;
    lastRestart = Math.max(lastRestart, finishedAt(cs));
    const isSidecar = restartable.has(cs.name);
    if (isSidecar) {
      sidecarRestarts += cs.restartCount ?? 0;
      lastSidecarRestart = Math.max(lastSidecarRestart, finishedAt(cs));
    }
    const term = cs.state?.terminated;
    const wait = cs.state?.waiting;
    if (term && (term.exitCode ?? 0) === 0) continue;
    if (isSidecar && cs.started) {
      if (cs.ready) ready++;
      continue;
    }
    if (term) {
      reason = term.reason ? `Init:${term.reason}` : term.signal ? `Init:Signal:${term.signal}` : `Init:ExitCode:${term.exitCode ?? 0}`;
    } else if (wait?.reason && wait.reason !== 'PodInitializing') {
      reason = `Init:${wait.reason}`;
    } else {
      reason = `Init:${i}/${initContainers.length}`;
    }
    initializing = true;
    break;
  }

  const initialized = (status.conditions ?? []).some((c: J) => c.type === 'Initialized' && c.status === 'True');
  if (!initializing || initialized) {
    restarts = sidecarRestarts;
    lastRestart = lastSidecarRestart;
    let hasRunning = false;
    const statuses: J[] = status.containerStatuses ?? [];
    for (let i = statuses.length - 1; i >= 0; i--) {
      const cs = statuses[i];
      restarts += cs.restartCount ?? 0;
      lastRestart = Math.max(lastRestart, finishedAt(cs));
      const term = cs.state?.terminated;
      if (cs.state?.waiting?.reason) reason = cs.state.waiting.reason;
      else if (term?.reason) reason = term.reason;
      else if (term) reason = term.signal ? `Signal:${term.signal}` : `ExitCode:${term.exitCode ?? 0}`;
      else if (cs.ready && cs.state?.running) { hasRunning = true; ready++; }
    }
    if (reason === 'Completed' && hasRunning) {
      reason = isPodReady(pod) ? 'Running' : 'NotReady';
    }
  }

  const terminal = isPodTerminal(pod);
  if (pod.metadata?.deletionTimestamp && status.reason === 'NodeLost') reason = 'Unknown';
  else if (pod.metadata?.deletionTimestamp && !terminal) reason = 'Terminating';

  const restartsCell = restarts !== 0 && lastRestart > 0 ? `${restarts} (${humanDuration(now - lastRestart)} ago)` : String(restarts);
  const gates: J[] = spec.readinessGates ?? [];
  let gatesCell = '<none>';
  if (gates.length) {
    const conds: J[] = status.conditions ?? [];
    const trueCount = gates.filter((g) => conds.find((c) => c.type === g.conditionType)?.status === 'True').length;
    gatesCell = `${trueCount}/${gates.length}`;
  }
  return [
    pod.metadata?.name, `${ready}/${total}`, reason, restartsCell, since(pod.metadata?.creationTimestamp, now),
    status.podIPs?.[0]?.ip || '<none>', spec.nodeName || '<none>', status.nominatedNodeName || '<none>', gatesCell,
  ];
}

export const deployments: Printer = {
  columns: () => [
    nameCol(),
    col('Ready', 'string', 'Number of the pod with ready state'),
    col('Up-to-date', 'string', 'V1DeploymentStatus.updatedReplicas'),
    col('Available', 'string', 'V1DeploymentStatus.availableReplicas'),
    ageCol(), containersCol(), imagesCol(),
    col('Selector', 'string', 'V1DeploymentSpec.selector', 1),
  ],
  row: (d, now) => {
    const s = d.status ?? {};
    return [
      d.metadata?.name, `${s.readyReplicas ?? 0}/${d.spec?.replicas ?? 0}`, s.updatedReplicas ?? 0, s.availableReplicas ?? 0,
      since(d.metadata?.creationTimestamp, now), ...containerCells(d.spec?.template?.spec?.containers), selectorString(d.spec?.selector),
    ];
  },
};

export const replicasets: Printer = {
  columns: () => [
    nameCol(),
    col('Desired', 'integer', 'V1ReplicaSetSpec.replicas'),
    col('Current', 'integer', 'V1ReplicaSetStatus.replicas'),
    col('Ready', 'integer', 'V1ReplicaSetStatus.readyReplicas'),
    ageCol(), containersCol(), imagesCol(),
    col('Selector', 'string', 'V1ReplicaSetSpec.selector', 1),
  ],
  row: (r, now) => [
    r.metadata?.name, r.spec?.replicas ?? 0, r.status?.replicas ?? 0, r.status?.readyReplicas ?? 0,
    since(r.metadata?.creationTimestamp, now), ...containerCells(r.spec?.template?.spec?.containers), formatSelector(r.spec?.selector),
  ],
};

export const replicationcontrollers: Printer = {
  columns: () => [
    nameCol(),
    col('Desired', 'integer', 'V1ReplicationControllerSpec.replicas'),
    col('Current', 'integer', 'V1ReplicationControllerStatus.replicas'),
    col('Ready', 'integer', 'V1ReplicationControllerStatus.readyReplicas'),
    ageCol(), containersCol(), imagesCol(),
    col('Selector', 'string', 'V1ReplicationControllerSpec.selector', 1),
  ],
  row: (r, now) => [
    r.metadata?.name, r.spec?.replicas ?? 0, r.status?.replicas ?? 0, r.status?.readyReplicas ?? 0,
    since(r.metadata?.creationTimestamp, now), ...containerCells(r.spec?.template?.spec?.containers), formatLabels(r.spec?.selector),
  ],
};

export const daemonsets: Printer = {
  columns: () => [
    nameCol(),
    col('Desired', 'integer', 'V1DaemonSetStatus.desiredNumberScheduled'),
    col('Current', 'integer', 'V1DaemonSetStatus.currentNumberScheduled'),
    col('Ready', 'integer', 'V1DaemonSetStatus.numberReady'),
    col('Up-to-date', 'integer', 'V1DaemonSetStatus.updatedNumberScheduled'),
    col('Available', 'integer', 'V1DaemonSetStatus.numberAvailable'),
    col('Node Selector', 'string', 'V1PodSpec.nodeSelector'),
    ageCol(), containersCol(), imagesCol(),
    col('Selector', 'string', 'V1DaemonSetSpec.selector', 1),
  ],
  row: (d, now) => {
    const s = d.status ?? {};
    return [
      d.metadata?.name, s.desiredNumberScheduled ?? 0, s.currentNumberScheduled ?? 0, s.numberReady ?? 0,
      s.updatedNumberScheduled ?? 0, s.numberAvailable ?? 0, formatLabels(d.spec?.template?.spec?.nodeSelector),
      since(d.metadata?.creationTimestamp, now), ...containerCells(d.spec?.template?.spec?.containers), formatSelector(d.spec?.selector),
    ];
  },
};

export const statefulsets: Printer = {
  columns: () => [
    nameCol(), col('Ready', 'string', 'Number of the pod with ready state'), ageCol(), containersCol(), imagesCol(),
  ],
  row: (s, now) => [
    s.metadata?.name, `${s.status?.readyReplicas ?? 0}/${s.spec?.replicas ?? 0}`, since(s.metadata?.creationTimestamp, now),
    ...containerCells(s.spec?.template?.spec?.containers),
  ],
};

export const controllerrevisions: Printer = {
  columns: () => [
    nameCol(), col('Controller', 'string', 'Controller of the object'), col('Revision', 'string', 'V1ControllerRevision.revision'), ageCol(),
  ],
  row: (r, now) => {
    const owner = (r.metadata?.ownerReferences ?? []).find((o: J) => o.controller);
    let controller = '<none>';
    if (owner) {
      const group = String(owner.apiVersion ?? '').includes('/') ? String(owner.apiVersion).split('/')[0] : '';
      controller = `${String(owner.kind).toLowerCase()}${group ? '.' + group : ''}/${owner.name}`;
    }
    return [r.metadata?.name, controller, r.revision ?? 0, since(r.metadata?.creationTimestamp, now)];
  },
};

function jobCondition(job: J, type: string): boolean {
  return (job.status?.conditions ?? []).find((c: J) => c.type === type)?.status === 'True';
}

export const jobs: Printer = {
  columns: () => [
    nameCol(),
    col('Status', 'string', 'Status of the job.'),
    col('Completions', 'string', 'V1JobStatus.succeeded'),
    col('Duration', 'string', 'Time required to complete the job.'),
    ageCol(), containersCol(), imagesCol(),
    col('Selector', 'string', 'V1JobSpec.selector', 1),
  ],
  row: (j, now) => {
    const succeeded = j.status?.succeeded ?? 0;
    let completions: string;
    if (j.spec?.completions != null) completions = `${succeeded}/${j.spec.completions}`;
    else if ((j.spec?.parallelism ?? 0) > 1) completions = `${succeeded}/1 of ${j.spec.parallelism}`;
    else completions = `${succeeded}/1`;
    const start = Date.parse(j.status?.startTime ?? '');
    const end = Date.parse(j.status?.completionTime ?? '');
    const duration = Number.isNaN(start) ? '' : humanDuration((Number.isNaN(end) ? now : end) - start);
    let status = 'Running';
    if (jobCondition(j, 'Complete')) status = 'Complete';
    else if (jobCondition(j, 'Failed')) status = 'Failed';
    else if (j.metadata?.deletionTimestamp) status = 'Terminating';
    else if (jobCondition(j, 'Suspended')) status = 'Suspended';
    else if (jobCondition(j, 'FailureTarget')) status = 'FailureTarget';
    return [
      j.metadata?.name, status, completions, duration, since(j.metadata?.creationTimestamp, now),
      ...containerCells(j.spec?.template?.spec?.containers), formatSelector(j.spec?.selector),
    ];
  },
};

export const cronjobs: Printer = {
  columns: () => [
    nameCol(),
    col('Schedule', 'string', 'V1CronJobSpec.schedule'),
    col('Timezone', 'string', 'V1CronJobSpec.timeZone'),
    col('Suspend', 'boolean', 'V1CronJobSpec.suspend'),
    col('Active', 'integer', 'V1CronJobStatus.active'),
    col('Last Schedule', 'string', 'V1CronJobStatus.lastScheduleTime'),
    ageCol(), containersCol(), imagesCol(),
    col('Selector', 'string', 'V1JobSpec.selector', 1),
  ],
  row: (c, now) => {
    const jobSpec = c.spec?.jobTemplate?.spec ?? {};
    return [
      c.metadata?.name, c.spec?.schedule ?? '', c.spec?.timeZone ?? '<none>', boolPtr(c.spec?.suspend),
      (c.status?.active ?? []).length, c.status?.lastScheduleTime ? since(c.status.lastScheduleTime, now) : '<none>',
      since(c.metadata?.creationTimestamp, now), ...containerCells(jobSpec.template?.spec?.containers), formatSelector(jobSpec.selector),
    ];
  },
};

export const poddisruptionbudgets: Printer = {
  columns: () => [
    nameCol(),
    col('Min Available', 'string', 'The minimum number of pods that must be available.'),
    col('Max Unavailable', 'string', 'The maximum number of pods that may be unavailable.'),
    col('Allowed Disruptions', 'integer', 'Calculated number of pods that may be disrupted at this time.'),
    ageCol(),
  ],
  row: (p, now) => [
    p.metadata?.name, p.spec?.minAvailable != null ? String(p.spec.minAvailable) : 'N/A',
    p.spec?.maxUnavailable != null ? String(p.spec.maxUnavailable) : 'N/A', p.status?.disruptionsAllowed ?? 0,
    since(p.metadata?.creationTimestamp, now),
  ],
};

export const horizontalpodautoscalers: Printer = {
  columns: () => [
    nameCol(),
    col('Reference', 'string', 'V2HorizontalPodAutoscalerSpec.scaleTargetRef'),
    col('Targets', 'string', 'V2HorizontalPodAutoscalerSpec.metrics'),
    col('MinPods', 'string', 'V2HorizontalPodAutoscalerSpec.minReplicas'),
    col('MaxPods', 'string', 'V2HorizontalPodAutoscalerSpec.maxReplicas'),
    col('Replicas', 'string', 'V2HorizontalPodAutoscalerStatus.currentReplicas'),
    ageCol(),
  ],
  row: (h, now) => [
    h.metadata?.name, `${h.spec?.scaleTargetRef?.kind ?? ''}/${h.spec?.scaleTargetRef?.name ?? ''}`, hpaTargets(h),
    h.spec?.minReplicas != null ? String(h.spec.minReplicas) : '<unset>', h.spec?.maxReplicas ?? 0,
    h.status?.currentReplicas ?? 0, since(h.metadata?.creationTimestamp, now),
  ],
};

/** TARGETS: `cpu: 40%/80%` per metric, at most two then `+ N more...`. Reads v2 and v1 objects. */
function hpaTargets(h: J): string {
  if (h.spec?.targetCPUUtilizationPercentage != null || (h.apiVersion === 'autoscaling/v1')) {
    const target = h.spec?.targetCPUUtilizationPercentage;
    const current = h.status?.currentCPUUtilizationPercentage;
    return `cpu: ${current != null ? `${current}%` : '<unknown>'}/${target != null ? `${target}%` : '<auto>'}`;
  }
  const specs: J[] = h.spec?.metrics ?? [];
  if (!specs.length) return '<none>';
  const statuses: J[] = h.status?.currentMetrics ?? [];
  const list = specs.map((m, i) => {
    const st = statuses[i];
    const avg = (src: J, cur: J) => `${cur ?? '<unknown>'}/${src?.target?.averageValue}`;
    switch (m.type) {
      case 'External': case 'Object': {
        const key = m.type === 'External' ? 'external' : 'object';
        const t = m[key]?.target ?? {};
        const cur = st?.[key]?.current;
        return t.averageValue != null ? `${cur?.averageValue ?? '<unknown>'}/${t.averageValue} (avg)` : `${cur?.value ?? '<unknown>'}/${t.value}`;
      }
      case 'Pods': return avg(m.pods, st?.pods?.current?.averageValue);
      case 'Resource': case 'ContainerResource': {
        const key = m.type === 'Resource' ? 'resource' : 'containerResource';
        const src = m[key] ?? {};
        const cur = st?.[key]?.current;
        if (src.target?.averageValue != null) return `${src.name}: ${cur?.averageValue ?? '<unknown>'}/${src.target.averageValue}`;
        const c = cur?.averageUtilization != null ? `${cur.averageUtilization}%` : '<unknown>';
        const t = src.target?.averageUtilization != null ? `${src.target.averageUtilization}%` : '<auto>';
        return `${src.name}: ${c}/${t}`;
      }
      default: return '<unknown type>';
    }
  });
  return list.length > 2 ? `${list.slice(0, 2).join(', ')} + ${list.length - 2} more...` : list.join(', ');
}
