// What `skiff server`'s /healthz, /livez and /readyz check, by Kubernetes' names and in its order:
//   ping            the server answers at all;
//   log             log lines can still be written;
//   etcd            the datastore answers a read and takes a write (a probe commit, at most one per
//                   ETCD_CHECK_MAX_AGE_MS; a commit the server just made answers instead);
//   etcd-readiness  the same, on /readyz (Kubernetes keeps it apart for its separate timeout);
//   informer-sync   every shared informer of the control loops has listed its resource;
//   poststarthook/bootstrap-controller    the default namespaces, the kubernetes Service and
//                   the bootstrap RBAC objects exist;
//   poststarthook/start-controller-manager  every enabled control loop started and none stopped;
//   shutdown        the server is not shutting down (/readyz only: it turns red first, so load
//                   balancers drain the server while it still answers).
import type { Backend } from '../storage/types.js';
import { flagCheck, type HealthCheck, type HealthChecks } from '../apiserver/health.js';
import { checkLogOutput } from '../util/log.js';
import type { ControllerManager } from './controller-manager.js';

/** How long a datastore answer stands before the next check probes again. */
export const ETCD_CHECK_MAX_AGE_MS = 1000;

export interface HealthSources {
  backend: Pick<Backend, 'checkHealth'>;
  bootstrapped: () => boolean;
  /** Undefined until the controller manager is started. */
  controllers: () => ControllerManager | undefined;
  shuttingDown: () => boolean;
}

export function serverHealthChecks(src: HealthSources): HealthChecks {
  const ping: HealthCheck = { name: 'ping', check: () => {} };
  const log: HealthCheck = { name: 'log', check: checkLogOutput };
  const etcd: HealthCheck = { name: 'etcd', check: () => src.backend.checkHealth(ETCD_CHECK_MAX_AGE_MS) };
  const etcdReadiness: HealthCheck = { ...etcd, name: 'etcd-readiness' };
  const informerSync: HealthCheck = {
    name: 'informer-sync',
    check: () => {
      const cm = src.controllers();
      if (!cm) throw new Error('controller manager not started');
      const waiting = cm.unsyncedInformers();
      if (waiting.length) throw new Error(`informers not synced: ${waiting.join(', ')}`);
    },
  };
  const hooks: HealthCheck[] = [
    flagCheck('poststarthook/bootstrap-controller', src.bootstrapped),
    flagCheck('poststarthook/start-controller-manager', () => src.controllers()?.running() ?? false, 'control loops not running'),
  ];
  const shutdown = flagCheck('shutdown', () => !src.shuttingDown(), 'the server is shutting down');
  return {
    healthz: [ping, log, etcd, ...hooks],
    livez: [ping, log, etcd, ...hooks],
    readyz: [ping, log, etcd, etcdReadiness, informerSync, ...hooks, shutdown],
  };
}
