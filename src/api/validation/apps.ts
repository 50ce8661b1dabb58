// apps/v1 workloads (pkg/apis/apps/validation plus the selector immutability their strategies add).
import type { StatusCause } from '../status.js';
import type { KObject } from '../object.js';
import { fe, goIntOrString, goLabelSelector, goStringMap, GoValue, IMMUTABLE, jsonValue, nonNegative, semanticEqual, isObj } from './field.js';
import {
  immutableSelector, isEmptySelector, selectorParses, validateAnnotations, validateLabels, validateLabelSelector,
} from './meta.js';
import { isValidPercent } from './names.js';
import { matchLabelSelectorObject, type LabelSelector } from '../selectors.js';
import { validatePodTemplateSpec } from './pod.js';

type Obj = Record<string, any>;
const spec = (o: KObject | undefined): Obj => (isObj(o?.spec) ? o!.spec as Obj : {});
const templateLabels = (s: Obj) => s.template?.metadata?.labels as Record<string, string> | undefined;

/** A selector with no requirements selects everything, so there is nothing to match the template against. */
function selectorMismatch(sel: unknown, labels: Record<string, string> | undefined): boolean {
  const everything = sel !== undefined && sel !== null && isEmptySelector(sel);
  return !everything && selectorParses(sel) && !matchLabelSelectorObject(sel as LabelSelector, labels);
}

function mismatchCause(labels: unknown): StatusCause {
  return fe.invalid('spec.template.metadata.labels', goStringMap(labels), '`selector` does not match template `labels`');
}

/** selector presence, form and non-emptiness, as Deployments, ReplicaSets and StatefulSets require. */
function requiredSelector(sel: unknown, what: string): StatusCause[] {
  if (sel === undefined || sel === null) return [fe.required('spec.selector')];
  const out = validateLabelSelector(sel, 'spec.selector');
  if (isEmptySelector(sel)) out.push(fe.invalid('spec.selector', goLabelSelector(sel), `empty selector is invalid for ${what}`));
  return out;
}

/** ValidatePodTemplateSpecForReplicaSet: shared by Deployments and ReplicaSets (hence its wording). */
function replicaSetTemplate(s: Obj): StatusCause[] {
  const out: StatusCause[] = [];
  if (selectorMismatch(s.selector, templateLabels(s))) out.push(mismatchCause(templateLabels(s)));
  out.push(...validatePodTemplateSpec(s.template, 'spec.template'));
  const rp = s.template?.spec?.restartPolicy ?? '';
  if (rp !== 'Always') out.push(fe.notSupported('spec.template.spec.restartPolicy', rp, ['Always']));
  if (s.template?.spec?.activeDeadlineSeconds !== undefined) {
    out.push(fe.forbidden('spec.template.spec.activeDeadlineSeconds', 'activeDeadlineSeconds in ReplicaSet is not Supported'));
  }
  return out;
}

/** Deployments check minReadySeconds later, with their strategy; ReplicaSets check it up front. */
function replicaSetLikeSpec(s: Obj, isReplicaSet: boolean): StatusCause[] {
  const out = [...nonNegative(s.replicas, 'spec.replicas')];
  if (isReplicaSet) out.push(...nonNegative(s.minReadySeconds, 'spec.minReadySeconds'));
  // Kubernetes says "deployment" for ReplicaSets too.
  out.push(...requiredSelector(s.selector, 'deployment'));
  if (!selectorParses(s.selector)) out.push(fe.invalid('spec.selector', goLabelSelector(s.selector), 'invalid label selector'));
  else out.push(...replicaSetTemplate(s));
  return out;
}

// ---- int-or-percent ------------------------------------------------------------------------------

export function validatePositiveIntOrPercent(v: unknown, field: string): StatusCause[] {
  if (typeof v === 'string') return isValidPercent(v).map((m) => fe.invalid(field, goIntOrString(v), m));
  if (typeof v === 'number') return nonNegative(v, field);
  return [];
}

function percentValue(v: unknown): number | undefined {
  return typeof v === 'string' && isValidPercent(v).length === 0 ? Number(v.slice(0, -1)) : undefined;
}

/** getIntOrPercentValue: a percent's number, else the integer (a non-numeric string counts as 0). */
function intOrPercentValue(v: unknown): number {
  const p = percentValue(v);
  if (p !== undefined) return p;
  if (typeof v === 'number') return v;
  const n = Number.parseInt(String(v ?? '0'), 10);
  return Number.isNaN(n) ? 0 : n;
}

export function notMoreThan100Percent(v: unknown, field: string): StatusCause[] {
  const p = percentValue(v);
  return p !== undefined && p > 100 ? [fe.invalid(field, goIntOrString(v), 'must not be greater than 100%')] : [];
}

// ---- Deployment ----------------------------------------------------------------------------------

function deploymentStrategy(strategy: unknown): StatusCause[] {
  const st: Obj = isObj(strategy) ? strategy : {};
  const path = 'spec.strategy';
  switch (st.type) {
    case 'Recreate':
      return st.rollingUpdate ? [fe.forbidden(`${path}.rollingUpdate`, "may not be specified when strategy `type` is 'Recreate'")] : [];
    case 'RollingUpdate': {
      const ru = st.rollingUpdate;
      if (!isObj(ru)) return [fe.required(`${path}.rollingUpdate`, 'this should be defaulted and never be nil')];
      const out = [
        ...validatePositiveIntOrPercent(ru.maxUnavailable, `${path}.rollingUpdate.maxUnavailable`),
        ...validatePositiveIntOrPercent(ru.maxSurge, `${path}.rollingUpdate.maxSurge`),
      ];
      if (intOrPercentValue(ru.maxUnavailable) === 0 && intOrPercentValue(ru.maxSurge) === 0) {
        out.push(fe.invalid(`${path}.rollingUpdate.maxUnavailable`, goIntOrString(ru.maxUnavailable), 'may not be 0 when `maxSurge` is 0'));
      }
      out.push(...notMoreThan100Percent(ru.maxUnavailable, `${path}.rollingUpdate.maxUnavailable`));
      return out;
    }
    default: {
      const value = st.rollingUpdate ? jsonValue(st) : new GoValue(`apps.DeploymentStrategy{Type:${JSON.stringify(st.type ?? '')}, RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}`);
      return [fe.notSupported(path, value, ['Recreate', 'RollingUpdate'])];
    }
  }
}

export function validateDeployment(obj: KObject, old?: KObject): StatusCause[] {
  const s = spec(obj);
  const out = replicaSetLikeSpec(s, false);
  out.push(...deploymentStrategy(s.strategy));
  out.push(...nonNegative(s.minReadySeconds, 'spec.minReadySeconds'));
  out.push(...nonNegative(s.revisionHistoryLimit, 'spec.revisionHistoryLimit'));
  if (typeof s.progressDeadlineSeconds === 'number') {
    out.push(...nonNegative(s.progressDeadlineSeconds, 'spec.progressDeadlineSeconds'));
    if (s.progressDeadlineSeconds <= (s.minReadySeconds ?? 0)) {
      out.push(fe.invalid('spec.progressDeadlineSeconds', s.progressDeadlineSeconds, 'must be greater than minReadySeconds'));
    }
  }
  if (old) out.push(...immutableSelector(s.selector, spec(old).selector, 'spec.selector'));
  return out;
}

export function validateReplicaSet(obj: KObject, old?: KObject): StatusCause[] {
  const s = spec(obj);
  const out = replicaSetLikeSpec(s, true);
  if (old) out.push(...immutableSelector(s.selector, spec(old).selector, 'spec.selector'));
  return out;
}

// ---- DaemonSet -----------------------------------------------------------------------------------

function daemonSetUpdateStrategy(strategy: unknown): StatusCause[] {
  const st: Obj = isObj(strategy) ? strategy : {};
  const path = 'spec.updateStrategy';
  switch (st.type) {
    case 'OnDelete':
      return [];
    case 'RollingUpdate': {
      const ru = st.rollingUpdate;
      if (!isObj(ru)) return [fe.required(`${path}.rollingUpdate`)];
      const p = `${path}.rollingUpdate`;
      const out = [
        ...validatePositiveIntOrPercent(ru.maxUnavailable, `${p}.maxUnavailable`),
        ...validatePositiveIntOrPercent(ru.maxSurge, `${p}.maxSurge`),
        ...notMoreThan100Percent(ru.maxUnavailable, `${p}.maxUnavailable`),
        ...notMoreThan100Percent(ru.maxSurge, `${p}.maxSurge`),
      ];
      const hasUnavailable = intOrPercentValue(ru.maxUnavailable) !== 0;
      const hasSurge = intOrPercentValue(ru.maxSurge) !== 0;
      if (hasUnavailable && hasSurge) out.push(fe.invalid(`${p}.maxSurge`, goIntOrString(ru.maxSurge), 'may not be set when maxUnavailable is non-zero'));
      if (!hasUnavailable && !hasSurge) out.push(fe.required(`${p}.maxUnavailable`, 'cannot be 0 when maxSurge is 0'));
      return out;
    }
    default: {
      const value = st.rollingUpdate ? jsonValue(st) : new GoValue(`apps.DaemonSetUpdateStrategy{Type:${JSON.stringify(st.type ?? '')}, RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}`);
      return [fe.notSupported(path, value, ['RollingUpdate', 'OnDelete'])];
    }
  }
}

export function validateDaemonSet(obj: KObject, old?: KObject): StatusCause[] {
  const s = spec(obj);
  const out = validateLabelSelector(s.selector, 'spec.selector');
  // A DaemonSet has no "selector required" rule: an absent selector selects nothing, so it fails to match.
  if (selectorParses(s.selector) && !matchLabelSelectorObject(s.selector, templateLabels(s))) out.push(mismatchCause(templateLabels(s)));
  if (s.selector && isEmptySelector(s.selector)) out.push(fe.invalid('spec.selector', goLabelSelector(s.selector), 'empty selector is invalid for daemonset'));
  out.push(...validatePodTemplateSpec(s.template, 'spec.template'));
  const rp = s.template?.spec?.restartPolicy ?? '';
  if (rp !== 'Always') out.push(fe.notSupported('spec.template.spec.restartPolicy', rp, ['Always']));
  if (s.template?.spec?.activeDeadlineSeconds !== undefined) {
    out.push(fe.forbidden('spec.template.spec.activeDeadlineSeconds', 'activeDeadlineSeconds in DaemonSet is not Supported'));
  }
  out.push(...nonNegative(s.minReadySeconds, 'spec.minReadySeconds'));
  out.push(...daemonSetUpdateStrategy(s.updateStrategy));
  out.push(...nonNegative(s.revisionHistoryLimit, 'spec.revisionHistoryLimit'));
  if (old) out.push(...immutableSelector(s.selector, spec(old).selector, 'spec.selector'));
  return out;
}

// ---- StatefulSet ---------------------------------------------------------------------------------

function statefulSetUpdateStrategy(strategy: unknown): StatusCause[] {
  const st: Obj = isObj(strategy) ? strategy : {};
  const path = 'spec.updateStrategy';
  const ru = st.rollingUpdate;
  switch (st.type ?? '') {
    case '':
      return [fe.required(path)];
    case 'OnDelete':
      if (!isObj(ru)) return [];
      return [fe.invalid(`${path}.rollingUpdate`, new GoValue(`apps.RollingUpdateStatefulSetStrategy{Partition:${ru.partition ?? 0}, MaxUnavailable:(*intstr.IntOrString)(nil)}`), "only allowed for updateStrategy 'RollingUpdate'")];
    case 'RollingUpdate': {
      if (!isObj(ru)) return [];
      const p = `${path}.rollingUpdate`;
      const out = nonNegative(ru.partition, `${p}.partition`);
      if (ru.maxUnavailable !== undefined && ru.maxUnavailable !== null) {
        out.push(...validatePositiveIntOrPercent(ru.maxUnavailable, `${p}.maxUnavailable`));
        if (intOrPercentValue(ru.maxUnavailable) === 0) out.push(fe.invalid(`${p}.maxUnavailable`, goIntOrString(ru.maxUnavailable), 'cannot be 0'));
        out.push(...notMoreThan100Percent(ru.maxUnavailable, `${p}.maxUnavailable`));
      }
      return out;
    }
    default:
      return [fe.invalid(path, jsonValue(st), "must be 'RollingUpdate' or 'OnDelete'")];
  }
}

const PVC_RETENTION = ['Retain', 'Delete'];

function statefulSetSpec(s: Obj): StatusCause[] {
  const out: StatusCause[] = [];
  const pmp = s.podManagementPolicy ?? '';
  if (pmp === '') out.push(fe.required('spec.podManagementPolicy'));
  else if (pmp !== 'OrderedReady' && pmp !== 'Parallel') out.push(fe.invalid('spec.podManagementPolicy', pmp, "must be 'OrderedReady' or 'Parallel'"));
  out.push(...statefulSetUpdateStrategy(s.updateStrategy));
  const retention = s.persistentVolumeClaimRetentionPolicy;
  if (isObj(retention)) {
    for (const f of ['whenDeleted', 'whenScaled']) {
      if (!PVC_RETENTION.includes(retention[f])) out.push(fe.notSupported(`spec.persistentVolumeClaimRetentionPolicy.${f}`, retention[f] ?? '', PVC_RETENTION));
    }
  }
  out.push(...nonNegative(s.replicas, 'spec.replicas'));
  out.push(...nonNegative(s.minReadySeconds, 'spec.minReadySeconds'));
  if (isObj(s.ordinals)) out.push(...nonNegative(s.ordinals.start, 'spec.ordinals.start'));
  out.push(...requiredSelector(s.selector, 'statefulset'));
  if (!selectorParses(s.selector)) {
    out.push(fe.invalid('spec.selector', goLabelSelector(s.selector), ''));
  } else {
    // Kubernetes does not validate a StatefulSet's pod spec here: its volumeMounts may name
    // volumeClaimTemplates, which are not volumes of the template.
    if (selectorMismatch(s.selector, templateLabels(s))) out.push(mismatchCause(templateLabels(s)));
    out.push(...validateLabels(templateLabels(s), 'spec.template.labels'));
    out.push(...validateAnnotations(s.template?.metadata?.annotations, 'spec.template.annotations'));
  }
  const rp = s.template?.spec?.restartPolicy ?? '';
  if (rp !== 'Always') out.push(fe.notSupported('spec.template.spec.restartPolicy', rp, ['Always']));
  if (s.template?.spec?.activeDeadlineSeconds !== undefined) {
    out.push(fe.forbidden('spec.template.spec.activeDeadlineSeconds', 'activeDeadlineSeconds in StatefulSet is not Supported'));
  }
  return out;
}

const STATEFULSET_MUTABLE = ['replicas', 'template', 'updateStrategy', 'minReadySeconds', 'ordinals', 'persistentVolumeClaimRetentionPolicy'];

export function validateStatefulSet(obj: KObject, old?: KObject): StatusCause[] {
  const s = spec(obj);
  const out = statefulSetSpec(s);
  if (old) {
    const strip = (o: Obj) => Object.fromEntries(Object.entries(o).filter(([k]) => !STATEFULSET_MUTABLE.includes(k)));
    if (!semanticEqual(strip(s), strip(spec(old)))) {
      out.push(fe.forbidden('spec', "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"));
    }
  }
  return out;
}

// ---- ControllerRevision --------------------------------------------------------------------------

export function validateControllerRevision(obj: KObject, old?: KObject): StatusCause[] {
  const out: StatusCause[] = [];
  if (obj.data === undefined || obj.data === null) out.push(fe.required('data', 'data is mandatory'));
  out.push(...nonNegative(obj.revision, 'revision'));
  if (old && !semanticEqual(obj.data, old.data)) out.push(fe.invalid('data', jsonValue(obj.data), IMMUTABLE));
  return out;
}
