// Whether an applied object is Ready, as `kubectl rollout status` judges workloads: a Deployment
// whose controller has seen its generation, with every replica updated, no old replica left and
// every updated one available; a StatefulSet or DaemonSet fully updated and ready, a Pod Ready (or
// Succeeded), a Job complete. Other kinds are ready once applied. Pure; the site calls it on the
// live objects, with the workload's pods when it is not Ready, so the message says why (an image
// that does not pull, a container crashing, a pod nobody can schedule): that message is what a
// paused rollout shows on the manager.
import type { KObject } from '../api/object.js';

export interface Readiness { ready: boolean; message?: string }

type Obj = KObject & { spec?: any; status?: any };

/** Kinds whose readiness depends on pods they own (the site lists those pods when one is not Ready). */
export const POD_OWNERS: ReadonlySet<string> = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job']);
/** Pod reasons named in a message (the rest of the pods are summed up by the counts). */
const MAX_POD_REASONS = 2;

export function readiness(obj: Obj, pods: Obj[] = []): Readiness {
  const s = obj.status ?? {};
  const gen = obj.metadata.generation ?? 0;
  const seen = (s.observedGeneration ?? 0) >= gen;
  const id = `${(obj.kind ?? '').toLowerCase()} ${obj.metadata.namespace ? obj.metadata.namespace + '/' : ''}${obj.metadata.name}`;
  const notReady = (why: string): Readiness => {
    const reasons = podProblems(pods).slice(0, MAX_POD_REASONS);
    return { ready: false, message: `${id}: ${why}${reasons.length ? ` (${reasons.join('; ')})` : ''}` };
  };
  switch (obj.kind) {
    case 'Deployment': {
      // kubectl's DeploymentStatusViewer, in its order.
      if (!seen) return notReady('spec update not yet observed');
      const progressing = (s.conditions ?? []).find((c: any) => c.type === 'Progressing');
      if (progressing?.reason === 'ProgressDeadlineExceeded') return notReady('exceeded its progress deadline');
      const want = obj.spec?.replicas ?? 1;
      const updated = s.updatedReplicas ?? 0;
      const replicas = s.replicas ?? 0;
      const available = s.availableReplicas ?? 0;
      if (updated < want) return notReady(`${updated} of ${want} new replicas updated`);
      if (replicas > updated) return notReady(`${replicas - updated} old replicas pending termination`);
      if (available < updated) return notReady(`${available} of ${updated} updated replicas available`);
      return { ready: true };
    }
    case 'StatefulSet': {
      const want = obj.spec?.replicas ?? 1;
      const ok = seen && (s.readyReplicas ?? 0) >= want && (s.updatedReplicas ?? 0) >= want && (!s.updateRevision || s.currentRevision === s.updateRevision);
      return ok ? { ready: true } : notReady(`${s.readyReplicas ?? 0}/${want} ready`);
    }
    case 'DaemonSet': {
      const want = s.desiredNumberScheduled ?? 0;
      const ok = seen && (s.numberReady ?? 0) >= want && (s.updatedNumberScheduled ?? 0) >= want;
      return ok ? { ready: true } : notReady(`${s.numberReady ?? 0}/${want} ready`);
    }
    case 'Pod': {
      if (s.phase === 'Succeeded') return { ready: true };
      const ready = (s.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True');
      if (ready) return { ready: true };
      const why = podProblems([obj]);
      return { ready: false, message: `${id}: ${why.length ? why[0]!.replace(/^pod [^:]+: /, '') : s.phase ?? 'Pending'}` };
    }
    case 'Job': {
      const done = (s.conditions ?? []).some((c: any) => c.type === 'Complete' && c.status === 'True');
      return done ? { ready: true } : notReady('not complete');
    }
    default:
      return { ready: true };
  }
}

/**
 * Why pods are not Ready, one line per pod that says something: a container waiting with a reason
 * (ErrImagePull, ImagePullBackOff, CrashLoopBackOff, CreateContainerConfigError...) and its image,
 * a container that terminated with an error, or a pod the scheduler cannot place. Ready pods and
 * pods being deleted (an old replica going away) say nothing. Pods without a reason are left out:
 * the workload's counts already say they are not Ready.
 */
export function podProblems(pods: Obj[]): string[] {
  const out: string[] = [];
  for (const p of pods) {
    if (p.metadata.deletionTimestamp) continue;
    const s = p.status ?? {};
    if (s.phase === 'Succeeded' || (s.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')) continue;
    const reasons: string[] = [];
    const specImage = (name: string) => [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].find((c: any) => c.name === name)?.image;
    for (const c of [...(s.initContainerStatuses ?? []), ...(s.containerStatuses ?? [])]) {
      const w = c.state?.waiting;
      const t = c.state?.terminated;
      if (w?.reason && w.reason !== 'ContainerCreating' && w.reason !== 'PodInitializing') reasons.push(`${w.reason}: ${c.image || specImage(c.name) || c.name}`);
      else if (t && t.exitCode !== 0) reasons.push(`${t.reason ?? 'Error'} (exit ${t.exitCode}): ${c.name}`);
    }
    if (!reasons.length) {
      const sched = (s.conditions ?? []).find((c: any) => c.type === 'PodScheduled' && c.status === 'False');
      if (sched) reasons.push(`${sched.reason ?? 'Unschedulable'}${sched.message ? `: ${String(sched.message).slice(0, 120)}` : ''}`);
    }
    if (reasons.length) out.push(`pod ${p.metadata.name}: ${[...new Set(reasons)].join(', ')}`);
  }
  return out.sort();
}
