// The Job controller (pkg/controller/job, as of Kubernetes 1.32) and the TTL-after-finished cleanup.
//
// Pods are `<job>-<random>` (Indexed: `<job>-<index>-<random>`, with the index as annotation, label,
// hostname and JOB_COMPLETION_INDEX). Every pod carries the `batch.kubernetes.io/job-tracking`
// finalizer, and a finished pod is counted exactly once by the same three steps Kubernetes takes:
// its uid goes into `status.uncountedTerminatedPods`, then its finalizer is removed, then it moves from
// the uncounted list to `succeeded`/`failed` (Indexed successes go straight into `completedIndexes`).
// A loop killed between any two steps resumes from what the status and the pods say.
//
// A Job that has met its goal first gets SuccessCriteriaMet (or, failing, FailureTarget with reason
// BackoffLimitExceeded or DeadlineExceeded), its remaining pods are deleted, and only once none is
// left terminating does it get Complete (with completionTime) or Failed. Pods that fail are replaced
// after an exponential backoff (10 s doubling to 10 min), and a pod being deleted counts as failed
// (podReplacementPolicy TerminatingOrFailed). Not implemented: podFailurePolicy, successPolicy,
// backoffLimitPerIndex, podReplacementPolicy Failed, managedBy, adopting orphan pods.
//
// This file is the wiring (informers, queue, event handlers); one Job's reconcile is sync.ts, its
// status arithmetic status.ts, its pods pods.ts and indexes.ts.
import type { KObject } from '../../api/object.js';
import { Resources } from '../../client/types.js';
import { enqueueOnChange, runController, type RunningController } from '../../client/controller.js';
import { keyOf } from '../../client/informer.js';
import { WorkQueue } from '../../client/workqueue.js';
import type { ControllerContext } from '../context.js';
import { controllerUidIndex } from '../workload-pods.js';
import { hasTrackingFinalizer } from './pods.js';
import { JOB_KIND, JOB_PODS_INDEX, JobMemory, JobSync, ORPHAN_PREFIX, ownerJob } from './sync.js';
import { controllerOf } from '../../api/object.js';


export { COMPLETION_INDEX_KEY, formatIndexes, parseIndexes } from './indexes.js';
export { JOB_TRACKING_FINALIZER, jobPod } from './pods.js';
export { isJobFinished } from './status.js';

export interface JobControllerOptions {
  workers?: number;
  now?: () => number;
  /** First delay before a failed pod is replaced; doubles per failure since the last success. */
  podFailureBackoffMs?: number;
  maxPodFailureBackoffMs?: number;
}

export function startJobController(ctx: ControllerContext, opts: JobControllerOptions = {}): RunningController {
  const jobInf = ctx.informers.informerFor(Resources.jobs);
  const podInf = ctx.informers.informerFor(Resources.pods, { indexers: { [JOB_PODS_INDEX]: controllerUidIndex(JOB_KIND) } });
  const queue = new WorkQueue<string>();
  const memory = new JobMemory();
  const sync = new JobSync({
    client: ctx.client, events: ctx.events, listers: { jobs: jobInf, pods: podInf }, memory,
    now: opts.now ?? Date.now,
    podFailureBackoffMs: opts.podFailureBackoffMs ?? 10_000,
    maxPodFailureBackoffMs: opts.maxPodFailureBackoffMs ?? 10 * 60_000,
  });

  const onPod = (p: KObject, change: 'add' | 'deleting' | 'gone' | 'update') => {
    const job = ownerJob(jobInf, p);
    if (!job) {
      // A tracked pod whose Job is gone would keep its finalizer forever.
      if (hasTrackingFinalizer(p) && change !== 'gone' && controllerOf(p)?.kind === JOB_KIND) queue.add(ORPHAN_PREFIX + keyOf(p));
      return;
    }
    const key = keyOf(job);
    if (change === 'add') memory.expectations.creationObserved(key);
    if (change === 'deleting') memory.expectations.deletionObserved(key, keyOf(p));
    if (change === 'gone' || !hasTrackingFinalizer(p)) memory.removing.get(key)?.delete(String(p.metadata.uid));
    queue.add(key);
  };
  jobInf.addHandlers(enqueueOnChange(queue));
  podInf.addHandlers({
    onAdd: (p) => onPod(p, p.metadata.deletionTimestamp ? 'update' : 'add'),
    onUpdate: (o, p) => onPod(p, !o.metadata.deletionTimestamp && p.metadata.deletionTimestamp ? 'deleting' : 'update'),
    onDelete: (p) => { if (!p.metadata.deletionTimestamp) onPod(p, 'deleting'); onPod(p, 'gone'); },
  });

  // Acting on a half-filled pod cache would create pods that exist already.
  return runController({
    name: 'job-controller', workers: opts.workers ?? 2, queue, informers: [jobInf, podInf], reconcile: (key) => sync.reconcile(key),
  });
}
