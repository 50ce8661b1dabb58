// batch/v1 Jobs and CronJobs (pkg/apis/batch/validation).
import type { StatusCause } from '../status.js';
import type { KObject } from '../object.js';
import { cronScheduleError } from './cron.js';
import { isKnownTimeZone } from '../../util/time.js';
import { fe, goLabelSelector, goStringMap, IMMUTABLE, jsonValue, nonNegative, semanticEqual, isObj } from './field.js';
import { immutableSelector, selectorParses, validateLabelSelector } from './meta.js';
import { matchLabelSelectorObject } from '../selectors.js';
import { isDNS1123Label } from './names.js';
import { validatePodTemplateSpec } from './pod.js';

type Obj = Record<string, any>;
const asObj = (v: unknown): Obj => (isObj(v) ? v : {});
const MAX_PARALLELISM_INDEXED = 100000;
const MAX_FAILED_INDEXES = 100000;
const MAX_MANAGED_BY_LENGTH = 63;

/** Labels the Job strategy puts on the template and selects on, unless the selector is manual. */
const JOB_LABELS = {
  legacyControllerUid: 'controller-uid',
  legacyJobName: 'job-name',
  controllerUid: 'batch.kubernetes.io/controller-uid',
  jobName: 'batch.kubernetes.io/job-name',
};

/** validateJobSpec: the rules a Job spec and a CronJob's job template share. `p` is the spec's path. */
function jobSpecCommon(s: Obj, p: string): StatusCause[] {
  const out: StatusCause[] = [];
  for (const f of ['parallelism', 'completions', 'activeDeadlineSeconds', 'backoffLimit', 'ttlSecondsAfterFinished', 'backoffLimitPerIndex']) {
    out.push(...nonNegative(s[f], `${p}.${f}`));
  }
  if (typeof s.maxFailedIndexes === 'number') {
    out.push(...nonNegative(s.maxFailedIndexes, `${p}.maxFailedIndexes`));
    if (s.backoffLimitPerIndex === undefined || s.backoffLimitPerIndex === null) out.push(fe.required(`${p}.backoffLimitPerIndex`, 'when maxFailedIndexes is specified'));
  }
  if (typeof s.managedBy === 'string') {
    const parts = s.managedBy.split('/');
    if (parts.length < 2 || !parts[0] || !parts.slice(1).join('/')) out.push(fe.invalid(`${p}.managedBy`, s.managedBy, 'must be a domain-prefixed path (such as "acme.io/foo")'));
    if (s.managedBy.length > MAX_MANAGED_BY_LENGTH) out.push(fe.tooLong(`${p}.managedBy`, MAX_MANAGED_BY_LENGTH));
  }
  const mode = s.completionMode;
  if (mode !== undefined && mode !== null) {
    if (mode !== 'NonIndexed' && mode !== 'Indexed') out.push(fe.notSupported(`${p}.completionMode`, mode, ['NonIndexed', 'Indexed']));
    if (mode === 'Indexed') {
      if (s.completions === undefined || s.completions === null) out.push(fe.required(`${p}.completions`, 'when completion mode is Indexed'));
      if (typeof s.parallelism === 'number' && s.parallelism > MAX_PARALLELISM_INDEXED) {
        out.push(fe.invalid(`${p}.parallelism`, s.parallelism, `must be less than or equal to ${MAX_PARALLELISM_INDEXED} when completion mode is Indexed`));
      }
      if (typeof s.maxFailedIndexes === 'number' && typeof s.completions === 'number' && s.maxFailedIndexes > s.completions) {
        out.push(fe.invalid(`${p}.maxFailedIndexes`, s.maxFailedIndexes, 'must be less than or equal to completions'));
      }
      if (typeof s.maxFailedIndexes === 'number' && s.maxFailedIndexes > MAX_FAILED_INDEXES) {
        out.push(fe.invalid(`${p}.maxFailedIndexes`, s.maxFailedIndexes, `must be less than or equal to ${MAX_FAILED_INDEXES}`));
      }
    }
  }
  if (mode === undefined || mode === null || mode === 'NonIndexed') {
    if (typeof s.backoffLimitPerIndex === 'number') out.push(fe.invalid(`${p}.backoffLimitPerIndex`, s.backoffLimitPerIndex, 'requires indexed completion mode'));
    if (typeof s.maxFailedIndexes === 'number') out.push(fe.invalid(`${p}.maxFailedIndexes`, s.maxFailedIndexes, 'requires indexed completion mode'));
  }
  if (isObj(s.successPolicy) && mode !== 'Indexed') out.push(fe.invalid(`${p}.successPolicy`, jsonValue(s.successPolicy), 'requires indexed completion mode'));
  const prp = s.podReplacementPolicy;
  if (prp !== undefined && prp !== null) {
    if (isObj(s.podFailurePolicy)) {
      if (prp !== 'Failed') out.push(fe.notSupported(`${p}.podReplacementPolicy`, prp, ['Failed']));
    } else if (prp !== 'Failed' && prp !== 'TerminatingOrFailed') {
      out.push(fe.notSupported(`${p}.podReplacementPolicy`, prp, ['Failed', 'TerminatingOrFailed']));
    }
  }
  out.push(...validatePodTemplateSpec(s.template, `${p}.template`));
  const rp = s.template?.spec?.restartPolicy ?? '';
  if (rp === 'Always' || rp === '') {
    out.push(fe.required(`${p}.template.spec.restartPolicy`, 'valid values: "OnFailure", "Never"'));
  } else if (rp !== 'OnFailure' && rp !== 'Never') {
    out.push(fe.notSupported(`${p}.template.spec.restartPolicy`, rp, ['OnFailure', 'Never']));
  } else if (isObj(s.podFailurePolicy) && rp !== 'Never') {
    out.push(fe.invalid(`${p}.template.spec.restartPolicy`, rp, 'only "Never" is supported when podFailurePolicy is specified'));
  }
  return out;
}

function jobSpec(s: Obj): StatusCause[] {
  const out = jobSpecCommon(s, 'spec');
  if (s.selector === undefined || s.selector === null) out.push(fe.required('spec.selector'));
  else out.push(...validateLabelSelector(s.selector, 'spec.selector'));
  const labels = s.template?.metadata?.labels;
  if (selectorParses(s.selector) && !matchLabelSelectorObject(s.selector, labels)) {
    out.push(fe.invalid('spec.template.metadata.labels', goStringMap(labels), '`selector` does not match template `labels`'));
  }
  return out;
}

/** With a generated selector, the template must carry the generated labels and the selector select them. */
function generatedSelector(job: KObject, s: Obj): StatusCause[] {
  if (s.manualSelector === true || s.selector === undefined || s.selector === null) return [];
  const uid = String(job.metadata?.uid ?? '');
  const name = String(job.metadata?.name ?? '');
  const out: StatusCause[] = [];
  if (!uid) out.push(fe.required('metadata.uid'));
  const labels: Record<string, string> | undefined = s.template?.metadata?.labels;
  const expected: [string, string][] = [
    [JOB_LABELS.legacyControllerUid, uid], [JOB_LABELS.legacyJobName, name],
    [JOB_LABELS.controllerUid, uid], [JOB_LABELS.jobName, name],
  ];
  for (const [k, v] of expected) {
    const field = `spec.template.metadata.labels[${k}]`;
    if (!labels || !(k in labels)) out.push(fe.required(field, `must be '${v}'`));
    else if (labels[k] !== v) out.push(fe.invalid(field, goStringMap(labels), `must be '${v}'`));
  }
  if (selectorParses(s.selector) && !matchLabelSelectorObject(s.selector, Object.fromEntries(expected))) {
    out.push(fe.invalid('spec.selector', goLabelSelector(s.selector), '`selector` not auto-generated'));
  }
  return out;
}

/** Scheduling directives of a suspended Job that never started may still change (JobMutableNodeSchedulingDirectives). */
function templateWithoutSchedulingDirectives(t: unknown): Obj {
  const copy: Obj = structuredClone(isObj(t) ? t : {});
  copy.metadata = { ...(copy.metadata ?? {}), labels: undefined, annotations: undefined };
  copy.spec = { ...(copy.spec ?? {}), nodeSelector: undefined, tolerations: undefined, schedulingGates: undefined };
  if (isObj(copy.spec.affinity)) copy.spec.affinity = { ...copy.spec.affinity, nodeAffinity: undefined };
  return copy;
}

export function validateJob(obj: KObject, old?: KObject): StatusCause[] {
  const s: Obj = isObj(obj.spec) ? obj.spec : {};
  if (!old) {
    const out = [...generatedSelector(obj, s), ...jobSpec(s)];
    if (s.completionMode === 'Indexed' && typeof s.completions === 'number' && s.completions > 0) {
      const hostname = `${obj.metadata?.name}-${s.completions - 1}`;
      if (isDNS1123Label(hostname).length) {
        out.push(fe.invalid('metadata.name', obj.metadata?.name ?? '', `will not able to create pod with invalid DNS label: ${hostname}`));
      }
    }
    return out;
  }
  const o: Obj = isObj(old.spec) ? old.spec : {};
  const out = jobSpec(s);
  // Completions may change only on Indexed Jobs, and then in step with parallelism (ElasticIndexedJob).
  if (!semanticEqual(s.completions, o.completions)) {
    if (s.completionMode !== 'Indexed') out.push(fe.invalid('spec.completions', s.completions ?? null, IMMUTABLE));
    else if (typeof s.completions === 'number' && s.completions !== s.parallelism) {
      out.push(fe.invalid('spec.completions', s.completions, 'can only be modified in tandem with spec.parallelism'));
    }
  }
  out.push(...immutableSelector(s.selector, o.selector, 'spec.selector'));
  const mutableScheduling = o.suspend === true && !asObj(old.status).startTime;
  const [now, before] = mutableScheduling
    ? [templateWithoutSchedulingDirectives(s.template), templateWithoutSchedulingDirectives(o.template)]
    : [s.template, o.template];
  if (!semanticEqual(now, before)) out.push(fe.invalid('spec.template', jsonValue(s.template), IMMUTABLE));
  for (const f of ['completionMode', 'podFailurePolicy', 'backoffLimitPerIndex', 'managedBy', 'successPolicy']) {
    if (!semanticEqual(s[f], o[f])) {
      const v = s[f];
      out.push(fe.invalid(`spec.${f}`, typeof v === 'object' && v !== null ? jsonValue(v) : v ?? null, IMMUTABLE));
    }
  }
  return out;
}

// ---- CronJob -------------------------------------------------------------------------------------

const CONCURRENCY_POLICIES = ['Allow', 'Forbid', 'Replace'];
const TIME_ZONE_PART = /^[A-Za-z.\-_0-9+]{1,14}$/;

function validateTimeZone(tz: unknown): StatusCause[] {
  if (tz === undefined || tz === null) return [];
  const v = String(tz);
  const f = 'spec.timeZone';
  if (v.length === 0) return [fe.invalid(f, v, 'timeZone must be nil or non-empty string')];
  for (const part of v.split('/')) {
    if (part === '.' || part === '..' || part.startsWith('-') || !TIME_ZONE_PART.test(part)) return [fe.invalid(f, v, `unknown time zone ${v}`)];
  }
  const out: StatusCause[] = [];
  if (v.toLowerCase() === 'local') out.push(fe.invalid(f, v, 'timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones'));
  else if (!isKnownTimeZone(v)) out.push(fe.invalid(f, v, `unknown time zone ${v}`));
  return out;
}

function validateSchedule(schedule: string, allowTZ: boolean, timeZone: unknown): StatusCause[] {
  const f = 'spec.schedule';
  const out: StatusCause[] = [];
  const err = cronScheduleError(schedule);
  if (err) out.push(fe.invalid(f, schedule, err));
  if (allowTZ && schedule.includes('TZ') && timeZone !== undefined && timeZone !== null) {
    out.push(fe.invalid(f, schedule, 'cannot use both timeZone field and TZ or CRON_TZ in schedule'));
  } else if (!allowTZ && schedule.includes('TZ')) {
    out.push(fe.invalid(f, schedule, 'cannot use TZ or CRON_TZ in schedule, use timeZone field instead'));
  }
  return out;
}

export function validateCronJob(obj: KObject, old?: KObject): StatusCause[] {
  const s: Obj = isObj(obj.spec) ? obj.spec : {};
  const o: Obj | undefined = old && isObj(old.spec) ? old.spec : undefined;
  const out: StatusCause[] = [];
  if (!s.schedule) out.push(fe.required('spec.schedule'));
  // A TZ prefix already stored is tolerated on update, so old objects stay editable.
  else out.push(...validateSchedule(String(s.schedule), String(o?.schedule ?? '').includes('TZ'), s.timeZone));
  out.push(...nonNegative(s.startingDeadlineSeconds, 'spec.startingDeadlineSeconds'));
  if (!o || o.timeZone !== s.timeZone) out.push(...validateTimeZone(s.timeZone));
  const cp = s.concurrencyPolicy ?? '';
  if (cp === '') out.push(fe.required('spec.concurrencyPolicy'));
  else if (!CONCURRENCY_POLICIES.includes(cp)) out.push(fe.notSupported('spec.concurrencyPolicy', cp, CONCURRENCY_POLICIES));
  const js: Obj = isObj(s.jobTemplate?.spec) ? s.jobTemplate.spec : {};
  out.push(...jobSpecCommon(js, 'spec.jobTemplate.spec'));
  if (js.selector !== undefined && js.selector !== null) out.push(fe.invalid('spec.jobTemplate.spec.selector', goLabelSelector(js.selector), '`selector` will be auto-generated'));
  if (js.manualSelector === true) out.push(fe.notSupported('spec.jobTemplate.spec.manualSelector', true, ['nil', 'false']));
  out.push(...nonNegative(s.successfulJobsHistoryLimit, 'spec.successfulJobsHistoryLimit'));
  out.push(...nonNegative(s.failedJobsHistoryLimit, 'spec.failedJobsHistoryLimit'));
  // The controller names Jobs `<cronjob>-<11 characters>`, and a Job name must fit 63.
  if (!old && String(obj.metadata?.name ?? '').length > 52) out.push(fe.invalid('metadata.name', obj.metadata!.name!, 'must be no more than 52 characters'));
  return out;
}
