// The pods a Job makes and how it tracks them: every pod carries the job-tracking finalizer until
// its outcome is counted in the Job's status.
import type { KObject } from '../../api/object.js';
import { podFromTemplate } from '../workload-pods.js';
import { COMPLETION_INDEX_KEY } from './indexes.js';


type Obj = Record<string, any>;

export const JOB_TRACKING_FINALIZER = 'batch.kubernetes.io/job-tracking';

export const hasTrackingFinalizer = (p: KObject): boolean => p.metadata.finalizers?.includes(JOB_TRACKING_FINALIZER) === true;

/** Failed, or being deleted before it succeeded (podReplacementPolicy TerminatingOrFailed). */
export const isFailedPod = (p: KObject): boolean =>
  (p as Obj).status?.phase === 'Failed' || (p.metadata.deletionTimestamp !== undefined && (p as Obj).status?.phase !== 'Succeeded');

/** A pod for the Job (and for Indexed Jobs, for completion index `ix`). */
export function jobPod(job: Obj, ix: number | undefined): Obj {
  const name = String(job.metadata.name);
  const template = job.spec?.template ?? {};
  if (ix === undefined) {
    return podFromTemplate(template, { namespace: job.metadata.namespace, owner: job as KObject, finalizers: [JOB_TRACKING_FINALIZER] });
  }
  const index = String(ix);
  // Generated names stay within 63 characters: 58 of prefix plus 5 random.
  const prefix = `${name.slice(0, Math.max(0, 58 - index.length - 2))}-${index}-`;
  const pod = podFromTemplate(template, {
    namespace: job.metadata.namespace, owner: job as KObject, generateName: prefix, finalizers: [JOB_TRACKING_FINALIZER],
    annotations: { [COMPLETION_INDEX_KEY]: index }, labels: { [COMPLETION_INDEX_KEY]: index },
  });
  pod.spec.hostname ??= `${name}-${index}`;
  const env = { name: 'JOB_COMPLETION_INDEX', valueFrom: { fieldRef: { fieldPath: `metadata.annotations['${COMPLETION_INDEX_KEY}']` } } };
  for (const c of [...(pod.spec.containers ?? []), ...(pod.spec.initContainers ?? [])]) {
    if (!(c.env ?? []).some((e: Obj) => e.name === env.name)) c.env = [...(c.env ?? []), structuredClone(env)];
  }
  return pod;
}
