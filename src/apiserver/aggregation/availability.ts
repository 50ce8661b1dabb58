// The APIService status controller (kube-aggregator's AvailableConditionController and its local
// twin): informers on APIServices, Services and EndpointSlices → one queue of APIService names →
// reconcile, which sets the Available condition. Local APIServices (no spec.service) are
// Available=True "Local"; the others are checked (Service present, port served, a ready endpoint,
// the discovery document answering 2xx) and re-checked every 30 s, as kube-aggregator resyncs, so a
// backend that stops answering turns Available=False (FailedDiscoveryCheck) even when no object
// changes. Each check also refreshes the group version's cached discovery document.
import type { ApiClient } from '../../client/types.js';
import type { InformerFactory } from '../../client/informer-factory.js';
import { Resources, type ResourceRef } from '../../client/types.js';
import { runController, type RunningController } from '../../client/controller.js';
import { WorkQueue } from '../../client/workqueue.js';
import { counter, currentMetricsRegistry, gauge } from '../../client/metrics-scope.js';
import type { KObject } from '../../api/object.js';
import { nowRfc3339 } from '../../util/time.js';
import { logger } from '../../util/log.js';
import { serviceRefOf, type ApiServiceObject } from './backend.js';
import type { Aggregator, CheckOutcome } from './index.js';

const log = logger('apiservice-availability');
const APISERVICES: ResourceRef = { group: 'apiregistration.k8s.io', version: 'v1', resource: 'apiservices' };
/** kube-aggregator's resync of service-backed APIServices. */
export const RESYNC_MS = 30_000;
/** A failing backend is looked at again sooner (kube-aggregator requeues failures with backoff). */
const RETRY_FAILED_MS = 5_000;

type Condition = NonNullable<NonNullable<ApiServiceObject['status']>['conditions']>[number];

export interface AvailabilityContext {
  client: ApiClient;
  informers: InformerFactory;
}

/**
 * `onGone` hears of deleted APIServices: a user's APIService that had taken over one of skiff's own
 * group versions (metrics.k8s.io) gives it back to the Local one.
 */
export function startApiServiceAvailability(ctx: AvailabilityContext, aggregator: Pick<Aggregator, 'check' | 'forget'>,
  onGone?: (name: string) => void): RunningController {
  const apiServices = ctx.informers.informerFor<KObject & ApiServiceObject>(APISERVICES);
  const services = ctx.informers.informerFor(Resources.services);
  const slices = ctx.informers.informerFor(Resources.endpointSlices);
  const queue = new WorkQueue<string>();
  const enqueue = (o: KObject) => queue.add(o.metadata.name!);
  // kube-aggregator's metrics, which the usual "aggregated API down" alerts read.
  const registry = currentMetricsRegistry();
  const unavailable = registry && gauge(registry, 'aggregator_unavailable_apiservice', 'Gauge of APIServices which are marked as unavailable broken down by APIService name.', ['name']);
  const unavailableTotal = registry && counter(registry, 'aggregator_unavailable_apiservice_total', 'Counter of APIServices which are marked as unavailable broken down by APIService name and reason.', ['name', 'reason']);
  const record = (a: ApiServiceObject, c: Omit<Condition, 'type' | 'lastTransitionTime'>) => {
    unavailable?.labels(a.metadata.name).set(c.status === 'True' ? 0 : 1);
    if (c.status !== 'True' && availableCondition(a)?.status !== c.status) unavailableTotal?.labels(a.metadata.name, c.reason ?? '').inc();
  };
  // A status write comes back as an update: only spec changes (and the periodic resync) re-check.
  apiServices.addHandlers({
    onAdd: enqueue,
    onUpdate: (o, n) => { if (JSON.stringify(o.spec) !== JSON.stringify(n.spec) || !availableCondition(n)) enqueue(n); },
    onDelete: enqueue,
  });
  /** APIServices backed by a Service (by namespace/name): a change of one re-checks them. */
  const backedBy = (ns: string | undefined, name: string | undefined) => {
    for (const a of apiServices.list()) {
      const ref = serviceRefOf(a);
      if (ref && ref.namespace === ns && ref.name === name) queue.add(a.metadata.name);
    }
  };
  services.addHandlers({
    onAdd: (s) => backedBy(s.metadata.namespace, s.metadata.name),
    onUpdate: (_o, s) => backedBy(s.metadata.namespace, s.metadata.name),
    onDelete: (s) => backedBy(s.metadata.namespace, s.metadata.name),
  });
  const sliceOwner = (s: KObject) => backedBy(s.metadata.namespace, s.metadata.labels?.['kubernetes.io/service-name']);
  slices.addHandlers({ onAdd: sliceOwner, onUpdate: (_o, s) => sliceOwner(s), onDelete: sliceOwner });

  return runController({
    name: 'apiservice-availability', queue, informers: [apiServices, services, slices], workers: 2,
    async reconcile(name) {
      const a = apiServices.getByName(undefined, name);
      if (!a) { aggregator.forget(name); unavailable?.remove(name); onGone?.(name); return; }
      if (!serviceRefOf(a)) {
        aggregator.forget(name);
        const local = { status: 'True', reason: 'Local', message: 'Local APIServices are always available' };
        record(a, local);
        await writeCondition(ctx.client, a, local);
        return;
      }
      const outcome = await aggregator.check(a);
      record(a, conditionOf(outcome));
      await writeCondition(ctx.client, a, conditionOf(outcome));
      return { requeueAfterMs: outcome.available ? RESYNC_MS : RETRY_FAILED_MS };
    },
  });
}

function conditionOf(o: CheckOutcome): Omit<Condition, 'type' | 'lastTransitionTime'> {
  return { status: o.available ? 'True' : 'False', reason: o.reason, message: o.message };
}

function availableCondition(a: ApiServiceObject): Condition | undefined {
  return (a.status?.conditions ?? []).find((c) => c.type === 'Available');
}

/** Writes the Available condition only when it differs (a tight resync must not write every time). */
async function writeCondition(client: ApiClient, a: KObject & ApiServiceObject, want: Omit<Condition, 'type' | 'lastTransitionTime'>): Promise<void> {
  const have = availableCondition(a);
  if (have && have.status === want.status && have.reason === want.reason && have.message === want.message) return;
  if (have?.status !== want.status) log.info({ apiservice: a.metadata.name, from: have?.status ?? 'Unknown', to: want.status, reason: want.reason, message: want.message }, 'APIService availability changed');
  const condition: Condition = {
    type: 'Available', status: want.status,
    lastTransitionTime: have && have.status === want.status && have.lastTransitionTime ? have.lastTransitionTime : nowRfc3339(),
    reason: want.reason, message: want.message,
  };
  const others = (a.status?.conditions ?? []).filter((c) => c.type !== 'Available');
  // A conflict (someone wrote meanwhile) fails the reconcile, which retries on fresh state.
  await client.updateStatus(APISERVICES, undefined, { ...structuredClone(a), status: { ...a.status, conditions: [...others, condition] } } as KObject);
}
