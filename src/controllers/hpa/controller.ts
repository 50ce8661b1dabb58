// The HorizontalPodAutoscaler controller (autoscaling/v2, Resource metrics): every sync period each
// HPA reads its target's replicas and selector, the usage of the target's pods from the resource
// metrics the server serves (metrics.k8s.io, see apiserver/metrics.ts), computes the replica count
// (recommend.ts), writes it to the target's spec.replicas, and reports status and conditions as
// kube-controller-manager does (`kubectl describe hpa` reads the same). Pods, Object and External
// metrics need a custom metrics API, which skiff does not serve: they are reported as unavailable.
import type { KObject } from '../../api/object.js';
import { parseQuantity } from '../../api/quantity.js';
import { isNotFound, Resources, type ResourceRef } from '../../client/types.js';
import { nowRfc3339 } from '../../util/time.js';
import type { ControllerContext } from '../context.js';
import { runController, type RunningController } from '../../client/controller.js';
import { keyOf } from '../../client/informer.js';
import { WorkQueue } from '../../client/workqueue.js';
import { compileLabelSelector } from '../../api/selectors.js';
import { bounded, replicasFor, type PodSample } from './recommend.js';

/** Per pod (`namespace/name`): CPU in millicores and memory in bytes, summed over its containers. */
export type PodUsage = (pods: KObject[]) => Promise<Map<string, { cpu: number; memory: number }>>;

export interface HpaOptions {
  podUsage: PodUsage;
  /** kube-controller-manager's --horizontal-pod-autoscaler-sync-period (15 s). */
  syncPeriodMs?: number;
}

type Obj = Record<string, any>;
type Hpa = KObject & { spec?: Obj; status?: Obj };
interface Condition { type: string; status: string; reason: string; message: string; lastTransitionTime?: string }

const TARGETS: Record<string, ResourceRef> = {
  'apps/Deployment': Resources.deployments,
  'apps/ReplicaSet': Resources.replicaSets,
  'apps/StatefulSet': Resources.statefulSets,
  '/ReplicationController': Resources.replicationControllers,
};
const DEFAULT_DOWN_WINDOW_S = 300;
const DEFAULT_METRICS = [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } }];

export function startHorizontalPodAutoscaler(ctx: ControllerContext, opts: HpaOptions): RunningController {
  const period = opts.syncPeriodMs ?? 15_000;
  const hpas = ctx.informers.informerFor<Hpa>(Resources.horizontalPodAutoscalers);
  const pods = ctx.informers.informerFor(Resources.pods);
  const queue = new WorkQueue<string>();
  hpas.addHandlers({ onAdd: (h) => queue.add(keyOf(h)), onUpdate: (_o, h) => queue.add(keyOf(h)), onDelete: (h) => history.delete(keyOf(h)) });
  /** Recommendations per HPA with their times, for the stabilization windows. */
  const history = new Map<string, { at: number; replicas: number }[]>();

  async function reconcile(key: string): Promise<void> {
    const hpa = hpas.get(key);
    if (!hpa) return;
    const ns = hpa.metadata.namespace!;
    const spec = hpa.spec ?? {};
    const conditions: Condition[] = [];
    const ref = spec.scaleTargetRef ?? {};
    const group = String(ref.apiVersion ?? '').includes('/') ? String(ref.apiVersion).split('/')[0] : '';
    const targetRef = TARGETS[`${group}/${ref.kind}`];
    const writeStatus = async (status: Obj) => {
      const next = { observedGeneration: hpa.metadata.generation, ...status, conditions: withTimes(hpa.status?.conditions ?? [], conditions) };
      // Every period recomputes the same status while nothing changes: only a change is written.
      const old = hpa.status ?? {};
      if (Object.entries(next).every(([k, v]) => JSON.stringify(v ?? undefined) === JSON.stringify(old[k] ?? undefined))) return;
      await ctx.client.patch(Resources.horizontalPodAutoscalers, ns, hpa.metadata.name!, 'merge', { status: next }, { subresource: 'status' });
    };
    if (!targetRef) {
      conditions.push({ type: 'AbleToScale', status: 'False', reason: 'FailedGetScale', message: `the HPA controller was unable to get the target's current scale: no matches for kind "${ref.kind}" in group "${group}"` });
      await writeStatus({ currentReplicas: 0, desiredReplicas: 0 });
      return;
    }
    const target = await ctx.client.get<KObject & { spec?: Obj }>(targetRef, ns, ref.name).catch((e) => { if (isNotFound(e)) return undefined; throw e; });
    if (!target) {
      conditions.push({ type: 'AbleToScale', status: 'False', reason: 'FailedGetScale', message: `the HPA controller was unable to get the target's current scale: ${targetRef.resource}${targetRef.group ? '.' + targetRef.group : ''} "${ref.name}" not found` });
      ctx.events.record(hpa, 'Warning', 'FailedGetScale', conditions[0]!.message);
      await writeStatus({ currentReplicas: 0, desiredReplicas: 0 });
      return;
    }
    const current: number = target.spec?.replicas ?? 1;
    conditions.push({ type: 'AbleToScale', status: 'True', reason: 'SucceededGetScale', message: 'the HPA controller was able to get the target\'s current scale' });
    if (current === 0) {
      conditions.push({ type: 'ScalingActive', status: 'False', reason: 'ScalingDisabled', message: 'scaling is disabled since the replica count of the target is zero' });
      await writeStatus({ currentReplicas: 0, desiredReplicas: 0 });
      return;
    }

    const selector = target.spec?.selector;
    const match = compileLabelSelector(ref.kind === 'ReplicationController' ? { matchLabels: selector } : selector);
    const live = pods.list().filter((p) => p.metadata.namespace === ns && !p.metadata.deletionTimestamp && match(p.metadata.labels)
      && !['Succeeded', 'Failed'].includes((p as Obj).status?.phase));
    const usage = await opts.podUsage(live);

    let recommended = -1;
    const currentMetrics: Obj[] = [];
    let failure: Condition | undefined;
    const metrics: Obj[] = spec.metrics?.length ? spec.metrics : DEFAULT_METRICS;
    for (const m of metrics) {
      if (m.type !== 'Resource' || !m.resource) {
        failure ??= { type: 'ScalingActive', status: 'False', reason: 'FailedGetExternalMetric', message: `unable to get metric of type ${m.type}: skiff serves no custom or external metrics API` };
        continue;
      }
      const resource: string = m.resource.name;
      const samples = new Map<string, PodSample>();
      for (const p of live) {
        const u = usage.get(keyOf(p));
        if (!u) continue;
        samples.set(p.metadata.name!, { usage: resource === 'cpu' ? u.cpu : u.memory * 1000, request: podRequest(p, resource) });
      }
      const t = m.resource.target ?? {};
      const r = replicasFor(resource, current, samples, t.type === 'Utilization' ? { utilization: t.averageUtilization } : { averageValue: milli(t.averageValue) });
      if (!r.ok) { failure ??= { type: 'ScalingActive', status: 'False', reason: r.reason, message: r.message }; continue; }
      recommended = Math.max(recommended, r.desired);
      currentMetrics.push({ type: 'Resource', resource: { name: resource, current: {
        ...(r.utilization !== undefined ? { averageUtilization: r.utilization } : {}),
        averageValue: resource === 'cpu' ? `${Math.round(r.averageValue)}m` : String(Math.round(r.averageValue / 1000)),
      } } });
    }
    if (recommended < 0) {
      conditions.push(failure!);
      ctx.events.record(hpa, 'Warning', failure!.reason, failure!.message);
      await writeStatus({ currentReplicas: current, desiredReplicas: current, currentMetrics: currentMetrics.length ? currentMetrics : null });
      return;
    }
    conditions.push({ type: 'ScalingActive', status: 'True', reason: 'ValidMetricFound', message: `the HPA was able to successfully calculate a replica count from ${(metrics[0]?.resource?.name ?? 'cpu')} resource utilization (percentage of request)` });

    const now = Date.now();
    const downWindow = (spec.behavior?.scaleDown?.stabilizationWindowSeconds ?? DEFAULT_DOWN_WINDOW_S) * 1000;
    const upWindow = (spec.behavior?.scaleUp?.stabilizationWindowSeconds ?? 0) * 1000;
    const past = [...(history.get(key) ?? []), { at: now, replicas: recommended }].filter((h) => now - h.at <= Math.max(downWindow, upWindow));
    history.set(key, past);
    const b = bounded(current, recommended, {
      min: spec.minReplicas ?? 1, max: spec.maxReplicas ?? current,
      recentDown: past.filter((h) => now - h.at <= downWindow).map((h) => h.replicas),
      recentUp: upWindow ? past.filter((h) => now - h.at <= upWindow).map((h) => h.replicas) : [],
    });
    conditions.push(b.limited
      ? { type: 'ScalingLimited', status: 'True', reason: b.limited.reason, message: b.limited.message }
      : { type: 'ScalingLimited', status: 'False', reason: 'DesiredWithinRange', message: 'the desired count is within the acceptable range' });

    let lastScaleTime = hpa.status?.lastScaleTime;
    if (b.replicas !== current) {
      await ctx.client.patch(targetRef, ns, ref.name, 'merge', { spec: { replicas: b.replicas } });
      lastScaleTime = nowRfc3339();
      const reason = b.replicas > current ? `${currentMetrics[0]?.resource?.name ?? 'cpu'} resource utilization (percentage of request) above target` : 'All metrics below target';
      ctx.events.record(hpa, 'Normal', 'SuccessfulRescale', `New size: ${b.replicas}; reason: ${reason}`);
      conditions[0] = { type: 'AbleToScale', status: 'True', reason: 'SucceededRescale', message: `the HPA controller was able to update the target scale to ${b.replicas}` };
    } else {
      conditions[0] = { type: 'AbleToScale', status: 'True', reason: 'ReadyForNewScale', message: 'recommended size matches current size' };
    }
    await writeStatus({ currentReplicas: current, desiredReplicas: b.replicas, currentMetrics, lastScaleTime: lastScaleTime ?? null });
  }

  return runController({
    name: 'horizontal-pod-autoscaler', queue, informers: [hpas, pods],
    async reconcile(key) {
      await reconcile(key);
      return hpas.get(key) ? { requeueAfterMs: period } : undefined;
    },
  });
}

/** The pod's request of `resource` summed over its containers, in milli-units; undefined if any lacks one. */
function podRequest(p: KObject, resource: string): number | undefined {
  let sum = 0;
  for (const c of ((p as Obj).spec?.containers ?? []) as Obj[]) {
    const q = c.resources?.requests?.[resource];
    if (q === undefined) return undefined;
    sum += parseQuantity(q, 3);
  }
  return sum;
}

const milli = (q: unknown): number | undefined => (q === undefined || q === null ? undefined : parseQuantity(String(q), 3));

/** lastTransitionTime carried over while a condition's status stays the same. */
function withTimes(old: Condition[], now: Condition[]): Condition[] {
  return now.map((c) => {
    const prev = old.find((o) => o.type === c.type);
    return { ...c, lastTransitionTime: prev && prev.status === c.status && prev.lastTransitionTime ? prev.lastTransitionTime : nowRfc3339() };
  });
}
