// Whether an applied object is Ready, as `kubectl rollout status` judges workloads: a Deployment
// whose controller has seen its generation and whose updated replicas are all available, a
// StatefulSet or DaemonSet fully updated and ready, a Pod Ready (or Succeeded), a Job complete.
// Other kinds are ready once applied. Pure; the site calls it on the live objects.
import type { KObject } from '../api/object.js';

export interface Readiness { ready: boolean; message?: string }

export function readiness(obj: KObject & { spec?: any; status?: any }): Readiness {
  const s = obj.status ?? {};
  const gen = obj.metadata.generation ?? 0;
  const seen = (s.observedGeneration ?? 0) >= gen;
  const id = `${(obj.kind ?? '').toLowerCase()} ${obj.metadata.namespace ? obj.metadata.namespace + '/' : ''}${obj.metadata.name}`;
  switch (obj.kind) {
    case 'Deployment': {
      const want = obj.spec?.replicas ?? 1;
      const ok = seen && (s.updatedReplicas ?? 0) >= want && (s.availableReplicas ?? 0) >= want && (s.replicas ?? 0) <= want;
      return ok ? { ready: true } : { ready: false, message: `${id}: ${s.availableReplicas ?? 0}/${want} available, ${s.updatedReplicas ?? 0} updated` };
    }
    case 'StatefulSet': {
      const want = obj.spec?.replicas ?? 1;
      const ok = seen && (s.readyReplicas ?? 0) >= want && (s.updatedReplicas ?? 0) >= want && (!s.updateRevision || s.currentRevision === s.updateRevision);
      return ok ? { ready: true } : { ready: false, message: `${id}: ${s.readyReplicas ?? 0}/${want} ready` };
    }
    case 'DaemonSet': {
      const want = s.desiredNumberScheduled ?? 0;
      const ok = seen && (s.numberReady ?? 0) >= want && (s.updatedNumberScheduled ?? 0) >= want;
      return ok ? { ready: true } : { ready: false, message: `${id}: ${s.numberReady ?? 0}/${want} ready` };
    }
    case 'Pod': {
      if (s.phase === 'Succeeded') return { ready: true };
      const ready = (s.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True');
      if (ready) return { ready: true };
      const waiting = (s.containerStatuses ?? []).map((c: any) => c.state?.waiting?.reason).filter(Boolean);
      return { ready: false, message: `${id}: ${waiting.length ? waiting.join(', ') : s.phase ?? 'Pending'}` };
    }
    case 'Job': {
      const done = (s.conditions ?? []).some((c: any) => c.type === 'Complete' && c.status === 'True');
      return done ? { ready: true } : { ready: false, message: `${id}: not complete` };
    }
    default:
      return { ready: true };
  }
}
