// APIService objects for the group versions this server serves itself, as kube-apiserver's
// autoregistration does: every built-in group version gets `<version>.<group>` (`v1.` for core) with
// no service ("Local") and Available=True, labelled automanaged=onstart; each custom resource group
// version gets one labelled automanaged=true, removed again when its CRD goes. metrics.k8s.io is
// served by skiff itself, so it is Local here too, until a user's APIService of the same name (one
// with spec.service, e.g. metrics-server's) takes it over: then requests for it are proxied to that
// Service (aggregation/), and the Local one comes back when the user's is deleted.
import type { KindInfo } from '../api/kinds.js';
import type { ObjectService, Actor } from './objects.js';
import type { ResourceRegistry } from './registry.js';
import { nowRfc3339 } from '../util/time.js';
import { logger } from '../util/log.js';

const log = logger('apiservices');
const AUTOMANAGED = 'kube-aggregator.kubernetes.io/automanaged';
const ACTOR: Actor = { user: 'system:apiserver', groups: ['system:masters'], manager: 'kube-apiserver' };

/** kube-apiserver's priorities for its built-in group versions ([groupPriorityMinimum, versionPriority]). */
const PRIORITIES: Record<string, [number, number]> = {
  '/v1': [18000, 1], 'apiregistration.k8s.io/v1': [18000, 15], 'apps/v1': [17800, 15], 'events.k8s.io/v1': [17750, 15],
  'authentication.k8s.io/v1': [17700, 15], 'authentication.k8s.io/v1beta1': [17700, 9], 'authorization.k8s.io/v1': [17600, 15],
  'autoscaling/v1': [17500, 15], 'autoscaling/v2': [17500, 30], 'batch/v1': [17400, 15], 'certificates.k8s.io/v1': [17300, 15],
  'networking.k8s.io/v1': [17200, 15], 'policy/v1': [17100, 15], 'rbac.authorization.k8s.io/v1': [17000, 15],
  'storage.k8s.io/v1': [16800, 15], 'admissionregistration.k8s.io/v1': [16700, 15], 'apiextensions.k8s.io/v1': [16700, 15],
  'scheduling.k8s.io/v1': [16600, 15], 'coordination.k8s.io/v1': [16500, 15], 'node.k8s.io/v1': [16300, 15],
  'discovery.k8s.io/v1': [16200, 15], 'flowcontrol.apiserver.k8s.io/v1': [16100, 21], 'metrics.k8s.io/v1beta1': [100, 100],
};

export class LocalApiServices {
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly objects: ObjectService, private readonly registry: ResourceRegistry) {}

  private info(): KindInfo {
    return this.registry.lookup('apiregistration.k8s.io', 'v1', 'apiservices')!;
  }

  /** Brings the stored local APIServices in line with the served set; calls are serialized. */
  sync(): Promise<void> {
    this.chain = this.chain.then(() => this.syncNow()).catch((e) => log.warn({ err: String(e) }, 'apiservice sync failed'));
    return this.chain;
  }

  /** Keeps them in line whenever CRDs change what is served. */
  watchRegistry(): void {
    this.registry.onChange(() => { void this.sync(); });
  }

  private async syncNow(): Promise<void> {
    const info = this.info();
    const want = new Map<string, { group: string; version: string; crd: boolean }>();
    for (const k of this.registry.all()) {
      const name = `${k.version}.${k.group}`;
      if (!want.has(name)) want.set(name, { group: k.group, version: k.version, crd: Boolean(k.crd) });
    }
    for (const [name, gv] of want) {
      const existing = this.objects.tryGet(info, undefined, name)?.obj;
      if (existing && existing.spec?.service) continue;    // a user's APIService for this group version stays theirs
      if (!existing) {
        const [gp, vp] = PRIORITIES[`${gv.group}/${gv.version}`] ?? (gv.crd ? [1000, 100] : [1000, 15]);
        await this.objects.create(info, undefined, {
          apiVersion: 'apiregistration.k8s.io/v1', kind: 'APIService',
          metadata: { name, labels: { [AUTOMANAGED]: gv.crd ? 'true' : 'onstart' } },
          spec: { group: gv.group, version: gv.version, groupPriorityMinimum: gp, versionPriority: vp },
        }, { actor: ACTOR }).catch((e) => { if (e?.code !== 409) throw e; });
      }
      const current = this.objects.tryGet(info, undefined, name)?.obj;
      if (current && !current.status?.conditions?.some((c: any) => c.type === 'Available' && c.status === 'True')) {
        await this.objects.update(info, undefined, name, (cur) => ({
          ...structuredClone(cur!.obj),
          status: { conditions: [{ type: 'Available', status: 'True', lastTransitionTime: nowRfc3339(), reason: 'Local', message: 'Local APIServices are always available' }] },
        }), { actor: ACTOR, subresource: 'status' }).catch((e) => {
          // The availability controller wrote it meanwhile (it sets the same Local condition).
          if (e?.code !== 409) throw e;
        });
      }
    }
    for (const o of this.objects.list(info, undefined)) {
      const name = o.obj.metadata.name;
      if (want.has(name) || o.obj.metadata.labels?.[AUTOMANAGED] !== 'true') continue;
      await this.objects.delete(info, undefined, name, {}, ACTOR).catch((e) => { if (e?.code !== 404) throw e; });
    }
  }
}
