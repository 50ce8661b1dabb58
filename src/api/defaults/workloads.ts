// Defaults of apps/v1 and batch/v1 workloads (pkg/apis/apps/v1 and pkg/apis/batch/v1 defaults.go),
// plus the selector and labels the Job strategy generates.
import { defaultPodTemplate, isObj, setDefault } from './pod.js';

type Obj = Record<string, any>;
const MAX_INT32 = 2147483647;
const spec = (o: Obj): Obj => (isObj(o.spec) ? o.spec : (o.spec = {}));

export function defaultDeployment(d: Obj): void {
  const s = spec(d);
  setDefault(s, 'replicas', 1, false);
  if (!isObj(s.strategy)) s.strategy = {};
  setDefault(s.strategy, 'type', 'RollingUpdate');
  if (s.strategy.type === 'RollingUpdate') {
    if (!isObj(s.strategy.rollingUpdate)) s.strategy.rollingUpdate = {};
    setDefault(s.strategy.rollingUpdate, 'maxUnavailable', '25%', false);
    setDefault(s.strategy.rollingUpdate, 'maxSurge', '25%', false);
  }
  setDefault(s, 'revisionHistoryLimit', 10, false);
  setDefault(s, 'progressDeadlineSeconds', 600, false);
  defaultPodTemplate(s, 'template');
}

export function defaultReplicaSet(rs: Obj): void {
  const s = spec(rs);
  setDefault(s, 'replicas', 1, false);
  defaultPodTemplate(s, 'template');
}

export function defaultDaemonSet(ds: Obj): void {
  const s = spec(ds);
  if (!isObj(s.updateStrategy)) s.updateStrategy = {};
  setDefault(s.updateStrategy, 'type', 'RollingUpdate');
  if (s.updateStrategy.type === 'RollingUpdate') {
    if (!isObj(s.updateStrategy.rollingUpdate)) s.updateStrategy.rollingUpdate = {};
    setDefault(s.updateStrategy.rollingUpdate, 'maxUnavailable', 1, false);
    setDefault(s.updateStrategy.rollingUpdate, 'maxSurge', 0, false);
  }
  setDefault(s, 'revisionHistoryLimit', 10, false);
  defaultPodTemplate(s, 'template');
}

export function defaultStatefulSet(sts: Obj): void {
  const s = spec(sts);
  setDefault(s, 'podManagementPolicy', 'OrderedReady');
  if (!isObj(s.updateStrategy)) s.updateStrategy = {};
  if (!s.updateStrategy.type) {
    s.updateStrategy.type = 'RollingUpdate';
    if (!isObj(s.updateStrategy.rollingUpdate)) s.updateStrategy.rollingUpdate = {};
  }
  if (s.updateStrategy.type === 'RollingUpdate' && isObj(s.updateStrategy.rollingUpdate)) {
    setDefault(s.updateStrategy.rollingUpdate, 'partition', 0, false);
  }
  if (!isObj(s.persistentVolumeClaimRetentionPolicy)) s.persistentVolumeClaimRetentionPolicy = {};
  setDefault(s.persistentVolumeClaimRetentionPolicy, 'whenDeleted', 'Retain');
  setDefault(s.persistentVolumeClaimRetentionPolicy, 'whenScaled', 'Retain');
  setDefault(s, 'replicas', 1, false);
  setDefault(s, 'revisionHistoryLimit', 10, false);
  defaultPodTemplate(s, 'template');
  // Claim templates are defaulted as PersistentVolumeClaims.
  if (Array.isArray(s.volumeClaimTemplates)) {
    for (const pvc of s.volumeClaimTemplates) if (isObj(pvc)) defaultPersistentVolumeClaimShape(pvc);
  }
}

/** A claim's own defaults (shared with the PersistentVolumeClaim kind). */
export function defaultPersistentVolumeClaimShape(pvc: Obj): void {
  setDefault(spec(pvc), 'volumeMode', 'Filesystem', false);
  if (!isObj(pvc.status)) pvc.status = {};
  setDefault(pvc.status, 'phase', 'Pending');
}

/** Defaults a JobSpec shares wherever it appears (a Job's, or a CronJob's job template). */
function defaultJobSpecShape(s: Obj): void {
  if (isObj(s.podFailurePolicy)) {
    for (const rule of Array.isArray(s.podFailurePolicy.rules) ? s.podFailurePolicy.rules : []) {
      for (const pattern of Array.isArray(rule?.onPodConditions) ? rule.onPodConditions : []) if (isObj(pattern)) setDefault(pattern, 'status', 'True');
    }
  }
  defaultPodTemplate(s, 'template', { noRestartPolicy: true });
}

const JOB_LABELS = ['batch.kubernetes.io/controller-uid', 'batch.kubernetes.io/job-name', 'controller-uid', 'job-name'];

/**
 * The selector and template labels the Job strategy generates when the selector is not manual. It
 * needs the Job's uid, which the apiserver assigns before defaulting; without one nothing is generated
 * (validation then reports the missing selector).
 */
function generateJobSelector(job: Obj, s: Obj): void {
  const uid = job.metadata?.uid;
  if (s.manualSelector === true || !uid) return;
  const name = String(job.metadata?.name ?? '');
  const t = s.template;
  if (!isObj(t.metadata)) t.metadata = {};
  if (!isObj(t.metadata.labels)) t.metadata.labels = {};
  const want: Record<string, string> = {
    'batch.kubernetes.io/controller-uid': uid, 'batch.kubernetes.io/job-name': name, 'controller-uid': uid, 'job-name': name,
  };
  // Labels the user set are left alone; a conflicting one is reported by validation.
  for (const k of JOB_LABELS) if (!(k in t.metadata.labels)) t.metadata.labels[k] = want[k];
  if (!isObj(s.selector)) s.selector = {};
  if (!isObj(s.selector.matchLabels)) s.selector.matchLabels = {};
  if (!('batch.kubernetes.io/controller-uid' in s.selector.matchLabels)) s.selector.matchLabels['batch.kubernetes.io/controller-uid'] = uid;
}

export function defaultJob(job: Obj): void {
  const s = spec(job);
  // Both unset means one pod; parallelism alone means a work queue with no completion count.
  if (s.completions == null && s.parallelism == null) s.completions = 1;
  setDefault(s, 'parallelism', 1, false);
  setDefault(s, 'backoffLimit', s.backoffLimitPerIndex != null ? MAX_INT32 : 6, false);
  setDefault(s, 'completionMode', 'NonIndexed');
  setDefault(s, 'suspend', false, false);
  setDefault(s, 'podReplacementPolicy', isObj(s.podFailurePolicy) ? 'Failed' : 'TerminatingOrFailed');
  defaultJobSpecShape(s);
  generateJobSelector(job, s);
  // A Job without labels of its own is labelled like its pods (Kubernetes shares the map).
  const labels = s.template.metadata?.labels;
  if (isObj(labels) && Object.keys(labels).length && !(isObj(job.metadata?.labels) && Object.keys(job.metadata.labels).length)) {
    if (!isObj(job.metadata)) job.metadata = {};
    job.metadata.labels = { ...labels };
  }
}

export function defaultCronJob(cj: Obj): void {
  const s = spec(cj);
  setDefault(s, 'concurrencyPolicy', 'Allow');
  setDefault(s, 'suspend', false, false);
  setDefault(s, 'successfulJobsHistoryLimit', 3, false);
  setDefault(s, 'failedJobsHistoryLimit', 1, false);
  if (!isObj(s.jobTemplate)) s.jobTemplate = {};
  // A job template gets the pod-template defaults only; the Job-level ones apply when the Job is made.
  defaultJobSpecShape(spec(s.jobTemplate));
}
