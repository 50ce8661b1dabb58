// The manager's bundle loop (informer → queue → reconcile, keyed by Bundle): assemble the bundle's
// content (inline resources and ConfigMaps), store it content-addressed in chunks (content.ts),
// pick its clusters (targets.ts), decide who gets the new version now (rollout.ts, dependsOn,
// paused), and keep one BundleDeployment per cluster × bundle in the bundle's namespace. The
// Bundle's status only sums those small objects (counts, at most a few names), so it never grows
// with the fleet. BundleShipper (bundle-shipper.ts) carries the deployments to the sites.
import type { ApiClient } from '../client/types.js';
import { isAlreadyExists, isNotFound, Resources } from '../client/types.js';
import type { InformerFactory } from '../client/informer-factory.js';
import type { Informer } from '../client/informer.js';
import { WorkQueue } from '../client/workqueue.js';
import { runController, type RunningController } from '../client/controller.js';
import { compileLabelSelector, type LabelSelector } from '../api/selectors.js';
import type { KObject } from '../api/object.js';
import { logger } from '../util/log.js';
import { nowRfc3339 } from '../util/time.js';
import {
  BUNDLES, BUNDLE_DEPLOYMENTS, BUNDLE_LABEL, BUNDLE_NAMESPACE_LABEL, CLUSTERS, CLUSTER_GROUPS, CLUSTER_LABEL, FLEET_API_VERSION,
  type Bundle, type BundleDeployment, type BundleResource, type BundleSummary, type Cluster, type FleetCondition, type ShippedOptions,
} from './api.js';
import { CONTENT_LABEL, contentConfigMaps, contentHash, deploymentId } from './content.js';
import { parseResources } from './customize.js';
import { groupsOf, matchTargets, optionsFor, type GroupInfo } from './targets.js';
import { planRollout, type RolloutCluster } from './rollout.js';
import { deploymentState } from './status.js';

const log = logger('fleet-bundles');
/** At most this many cluster names in a status (the counts are exact; the names are a hint). */
const MAX_LISTED = 10;
/**
 * ConfigMaps named in resourcesFrom are read at each reconcile, not cached (a cluster-wide ConfigMap
 * cache would cost every server memory): a bundle using them is looked at again this often, and at
 * once when the bundle itself changes (a GitRepo touches its bundle's commit annotation).
 */
const RESOURCES_FROM_RECHECK_MS = 30_000;
/** BundleDeployment writes in flight at once: a change to a bundle on thousands of clusters is thousands of writes. */
const WRITE_CONCURRENCY = 16;
/**
 * A BundleDeployment's status change looks at its bundle again after this long, so the reports of
 * a whole fleet are summed a few times a second rather than once each: a reconcile costs O(clusters),
 * and one per report made a change on 6,000 clusters cost the manager a minute of CPU (measured,
 * docs/benchmarks.md). A rollout's gate step waits at most this much longer.
 */
const STATUS_COALESCE_MS = 250;

/** Runs `fn` over `items`, at most `limit` at a time; rejects with the first failure once all settled. */
export async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const lane = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      try { await fn(item); } catch (e) { failure ??= e; }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failure !== undefined) throw failure;
}

type ConfigMap = KObject & { data?: Record<string, string> };
type ClusterGroupObj = KObject & { spec?: { selector?: LabelSelector } };

export const bdName = (bundle: string, cluster: string) => `${bundle}.${cluster}`;
const isReady = (c: Cluster | undefined) => c?.status?.conditions?.find((x) => x.type === 'Ready')?.status === 'True';

/** Conditions keep lastTransitionTime while their status stays. */
export function setCondition(list: FleetCondition[] | undefined, c: FleetCondition): FleetCondition[] {
  const old = list?.find((x) => x.type === c.type);
  const next = { ...c, lastTransitionTime: old && old.status === c.status ? old.lastTransitionTime : nowRfc3339() };
  return [...(list ?? []).filter((x) => x.type !== c.type), next];
}

export class BundleController {
  readonly name = 'fleet-bundle-controller';
  private readonly queue = new WorkQueue<string>();
  readonly bundles: Informer<Bundle>;
  readonly deployments: Informer<BundleDeployment>;
  private readonly clusters: Informer<Cluster>;
  private readonly groups: Informer<ClusterGroupObj>;
  readonly configMaps: Informer<ConfigMap>;
  private controller: RunningController | undefined;

  constructor(private readonly client: ApiClient, informers: InformerFactory) {
    this.bundles = informers.informerFor<Bundle>(BUNDLES);
    this.deployments = informers.informerFor<BundleDeployment>(BUNDLE_DEPLOYMENTS, {
      indexers: {
        bundle: (d) => [`${d.metadata.namespace}/${d.metadata.labels?.[BUNDLE_LABEL] ?? ''}`],
        cluster: (d) => [d.spec?.cluster ?? ''],
      },
    });
    this.clusters = informers.informerFor<Cluster>(CLUSTERS);
    this.groups = informers.informerFor<ClusterGroupObj>(CLUSTER_GROUPS);
    // Only content chunks (labelled): a cluster-wide ConfigMap cache would cost every server memory.
    this.configMaps = informers.informerFor<ConfigMap>(Resources.configMaps, {
      labelSelector: CONTENT_LABEL,
      indexers: { content: (c) => (c.metadata.labels?.[CONTENT_LABEL] ? [`${c.metadata.namespace}/${c.metadata.labels[CONTENT_LABEL]}`] : []) },
    });
  }

  start(): void {
    const key = (o: KObject) => `${o.metadata.namespace}/${o.metadata.name}`;
    // The bundle's own status writes (this loop's) are no reason to look again.
    const changed = (o: Bundle, b: Bundle) => o.metadata.generation !== b.metadata.generation || o.metadata.deletionTimestamp !== b.metadata.deletionTimestamp
      || JSON.stringify(o.metadata.labels) !== JSON.stringify(b.metadata.labels) || JSON.stringify(o.metadata.annotations) !== JSON.stringify(b.metadata.annotations);
    this.bundles.addHandlers({ onAdd: (b) => this.queue.add(key(b)), onUpdate: (o, b) => { if (changed(o, b)) this.queue.add(key(b)); }, onDelete: (b) => this.queue.add(key(b)) });
    const ofBd = (d: BundleDeployment, delayMs: number) => {
      this.queue.addAfter(`${d.metadata.namespace}/${d.metadata.labels?.[BUNDLE_LABEL] ?? ''}`, delayMs);
      // Bundles that depend on others (by name or selector) may be waiting on this one's readiness.
      for (const b of this.bundles.list()) if (b.metadata.namespace === d.metadata.namespace && b.spec?.dependsOn?.length) this.queue.addAfter(key(b), delayMs);
    };
    this.deployments.addHandlers({
      onUpdate: (o, d) => { if (JSON.stringify(o.status) !== JSON.stringify(d.status)) ofBd(d, STATUS_COALESCE_MS); },
      onDelete: (d) => ofBd(d, 0),
    });
    const all = () => { for (const b of this.bundles.list()) this.queue.add(key(b)); };
    this.clusters.addHandlers({
      onAdd: all, onDelete: all,
      onUpdate: (o, c) => { if (JSON.stringify(o.metadata.labels) !== JSON.stringify(c.metadata.labels) || isReady(o) !== isReady(c)) all(); },
    });
    this.groups.addHandlers({ onAdd: all, onUpdate: all, onDelete: all });
    this.controller = runController({
      name: 'fleet-bundles', queue: this.queue, workers: 2,
      informers: [this.bundles, this.deployments, this.clusters, this.groups, this.configMaps],
      reconcile: (k) => this.reconcile(k),
    });
  }

  async stop(): Promise<void> {
    await this.controller?.stop();
  }

  /** The stored content of a version (what the shipper sends), or undefined when its chunks are gone. */
  contentChunks(namespace: string, hash: string): KObject[] {
    return this.configMaps.byIndex('content', `${namespace}/${hash}`);
  }

  private async reconcile(key: string): Promise<{ requeueAfterMs?: number } | void> {
    const [ns, name] = key.split('/') as [string, string];
    const b = this.bundles.getByName(ns, name);
    const mine = this.deployments.byIndex('bundle', key);
    if (!b || b.metadata.deletionTimestamp) {
      for (const d of mine) await this.client.delete(BUNDLE_DEPLOYMENTS, ns, d.metadata.name!).catch((e) => { if (!isNotFound(e)) throw e; });
      // Its contents too (owner references would, but only where a garbage collector runs).
      for (const cm of this.configMaps.list()) {
        if (cm.metadata.namespace === ns && cm.metadata.labels?.[BUNDLE_LABEL] === name) await this.client.delete(Resources.configMaps, ns, cm.metadata.name!).catch(() => undefined);
      }
      return;
    }
    // 1. Content.
    let resources: BundleResource[];
    try {
      resources = await this.assemble(b);
      parseResources(resources);
    } catch (e) {
      await this.writeStatus(b, { contentError: (e as Error).message, deployments: mine });
      return b.spec?.resourcesFrom?.length ? { requeueAfterMs: RESOURCES_FROM_RECHECK_MS } : undefined;
    }
    const hash = contentHash(resources);
    if (!this.contentChunks(ns, hash).length) {
      for (const cm of contentConfigMaps(ns, hash, resources, b)) {
        cm.metadata.labels![BUNDLE_LABEL] = name;
        await this.client.create(Resources.configMaps, ns, cm).catch((e) => { if (!isAlreadyExists(e)) throw e; });
      }
    }
    // 2. Targets.
    const clusters = this.clusters.list();
    const infos = clusters.map((c) => ({ name: c.metadata.name!, labels: c.metadata.labels ?? {} }));
    const groups: GroupInfo[] = this.groups.list().map((g) => ({ name: g.metadata.name!, labels: g.metadata.labels ?? {}, selector: g.spec?.selector }));
    const member = groupsOf(infos, groups);
    const matches = matchTargets(b.spec?.targets, infos, groups);
    const byCluster = new Map(mine.map((d) => [d.spec?.cluster ?? '', d]));
    const desired = new Map<string, { id: string; options: ShippedOptions }>();
    for (const c of infos) {
      const m = matches.get(c.name);
      if (!m) continue;
      const options: ShippedOptions = { ...optionsFor(b.spec ?? {}, m.target), clusterName: c.name, clusterLabels: c.labels };
      desired.set(c.name, { id: deploymentId(hash, options), options });
    }
    // 3. Who gets it now: dependsOn holds a cluster until the bundles it depends on are Ready there.
    const waitingDeps = new Map<string, string[]>();
    for (const c of desired.keys()) {
      const missing = this.dependenciesNotReady(b, c);
      if (missing.length) waitingDeps.set(c, missing);
    }
    const rc: RolloutCluster[] = [];
    for (const [c, want] of desired) {
      if (waitingDeps.has(c)) continue;
      const d = byCluster.get(c);
      const cl = this.clusters.getByName(undefined, c);
      rc.push({
        name: c, labels: cl?.metadata.labels ?? {}, groups: member.get(c) ?? [], online: isReady(cl), desired: want.id,
        deployed: d?.spec?.deploymentID, applied: d?.status?.appliedDeploymentID, ready: d?.status?.ready,
      });
    }
    const plan = b.spec?.paused ? { release: new Set<string>(), partitions: [] } : planRollout(b.spec?.rolloutStrategy, rc);
    // 4. BundleDeployments.
    const owner = { apiVersion: FLEET_API_VERSION, kind: 'Bundle', name, uid: b.metadata.uid!, controller: true, blockOwnerDeletion: true };
    await inParallel([...desired], WRITE_CONCURRENCY, async ([c, want]) => {
      const d = byCluster.get(c);
      const release = plan.release.has(c);
      const spec: NonNullable<BundleDeployment['spec']> = {
        bundle: name, cluster: c, stagedDeploymentID: want.id,
        ...(release ? { deploymentID: want.id, contentHash: hash, options: want.options }
          : d?.spec?.deploymentID ? { deploymentID: d.spec.deploymentID, contentHash: d.spec.contentHash, options: d.spec.options } : {}),
        ...(b.spec?.paused ? { paused: true } : {}),
      };
      if (!d) {
        await this.client.create(BUNDLE_DEPLOYMENTS, ns, {
          apiVersion: FLEET_API_VERSION, kind: 'BundleDeployment',
          metadata: { name: bdName(name, c), namespace: ns, labels: { [BUNDLE_LABEL]: name, [BUNDLE_NAMESPACE_LABEL]: ns, [CLUSTER_LABEL]: c }, ownerReferences: [owner] },
          spec,
        }).catch((e) => { if (!isAlreadyExists(e)) throw e; });
      } else if (JSON.stringify(d.spec) !== JSON.stringify(spec)) {
        // The whole spec, without a resourceVersion precondition: the site's status writes change the
        // object all through a rollout, and only this loop writes the spec.
        await this.client.patch(BUNDLE_DEPLOYMENTS, ns, d.metadata.name!, 'json', [{ op: 'replace', path: '/spec', value: spec }]);
      }
    });
    await inParallel(mine.filter((d) => !desired.has(d.spec?.cluster ?? '')), WRITE_CONCURRENCY, async (d) => {
      await this.client.delete(BUNDLE_DEPLOYMENTS, ns, d.metadata.name!).catch((e) => { if (!isNotFound(e)) throw e; });
    });
    // 5. Old contents no deployment names any more.
    const inUse = new Set([hash, ...mine.filter((d) => desired.has(d.spec?.cluster ?? '')).map((d) => d.spec?.contentHash)]);
    for (const cm of this.configMaps.list()) {
      const h = cm.metadata.labels?.[CONTENT_LABEL];
      if (h && cm.metadata.namespace === ns && cm.metadata.labels?.[BUNDLE_LABEL] === name && !inUse.has(h)) {
        await this.client.delete(Resources.configMaps, ns, cm.metadata.name!).catch(() => undefined);
      }
    }
    await this.writeStatus(b, { hash, deployments: this.deployments.byIndex('bundle', key).filter((d) => desired.has(d.spec?.cluster ?? '')), desired, plan, waitingDeps });
    return b.spec?.resourcesFrom?.length ? { requeueAfterMs: RESOURCES_FROM_RECHECK_MS } : undefined;
  }

  /** Inline resources, then each referenced ConfigMap's keys in name order. Throws with a clear message. */
  private async assemble(b: Bundle): Promise<BundleResource[]> {
    const out: BundleResource[] = [...(b.spec?.resources ?? [])];
    for (const [i, r] of (b.spec?.resourcesFrom ?? []).entries()) {
      const n = r.configMapRef?.name;
      if (!n) throw new Error(`resourcesFrom[${i}]: configMapRef.name is required`);
      const cm = await this.client.get<ConfigMap>(Resources.configMaps, b.metadata.namespace, n);
      if (!cm) throw new Error(`resourcesFrom[${i}]: ConfigMap "${n}" not found`);
      for (const k of Object.keys(cm.data ?? {}).sort()) out.push({ name: k, content: cm.data![k] });
    }
    return out;
  }

  private dependenciesNotReady(b: Bundle, cluster: string): string[] {
    const ns = b.metadata.namespace!;
    const names = new Set<string>();
    for (const dep of b.spec?.dependsOn ?? []) {
      if (dep.name) names.add(dep.name);
      if (dep.selector) {
        const m = compileLabelSelector(dep.selector);
        for (const o of this.bundles.list()) if (o.metadata.namespace === ns && o.metadata.name !== b.metadata.name && m(o.metadata.labels)) names.add(o.metadata.name!);
      }
    }
    return [...names].filter((n) => {
      const d = this.deployments.getByName(ns, bdName(n, cluster));
      return !(d?.status?.ready && d.status.appliedDeploymentID && d.status.appliedDeploymentID === d.spec?.stagedDeploymentID);
    });
  }

  private async writeStatus(b: Bundle, o: {
    contentError?: string; hash?: string; deployments: BundleDeployment[];
    desired?: Map<string, unknown>; plan?: ReturnType<typeof planRollout>; waitingDeps?: Map<string, string[]>;
  }): Promise<void> {
    const s: BundleSummary = { desiredReady: o.desired?.size ?? o.deployments.length, ready: 0, notReady: 0, pending: 0, waitApplied: 0, errApplied: 0, offline: 0 };
    const nonReady: string[] = [];
    const errors: string[] = [];
    for (const d of o.deployments) {
      const c = d.spec?.cluster ?? '';
      const online = isReady(this.clusters.getByName(undefined, c));
      // An offline cluster is not counted Ready on its last report (Fleet's users see offline clusters shown Ready).
      const state = deploymentState(d, online);
      s[state]++;
      if (state === 'ready') continue;
      nonReady.push(c);
      if (state === 'errApplied') errors.push(`${c}: ${d.status?.message ?? ''}`);
    }
    if (nonReady.length) s.nonReadyClusters = nonReady.sort().slice(0, MAX_LISTED);
    let conditions = b.status?.conditions;
    let state: string;
    let message = '';
    if (o.contentError) {
      state = 'InvalidContent';
      message = o.contentError;
      conditions = setCondition(conditions, { type: 'Ready', status: 'False', reason: 'InvalidContent', message });
    } else {
      const plan = o.plan;
      const waiting = plan?.waiting;
      const list = (names: string[]) => names.slice(0, MAX_LISTED).join(', ') + (names.length > MAX_LISTED ? ` and ${names.length - MAX_LISTED} more` : '');
      let partitionMessage = '';
      if (waiting) {
        const why = waiting.clusters.slice(0, 3).map((c) => this.deployments.getByName(b.metadata.namespace, bdName(b.metadata.name!, c))?.status?.message).filter(Boolean);
        partitionMessage = `partition "${waiting.partition}" is not Ready on ${list(waiting.clusters)}${why.length ? ` (${why.join('; ')})` : ''}`;
      }
      // Paused only while the gate holds clusters back: a first deployment (every cluster gets it at
      // once) or a last partition not yet Ready holds nobody, and is just not Ready yet.
      const paused = !!waiting && waiting.holding > 0;
      if (paused) {
        conditions = setCondition(conditions, {
          type: 'RolloutPaused', status: 'True', reason: 'PartitionNotReady',
          message: `${partitionMessage}; the next partitions wait (${waiting.holding} cluster${waiting.holding === 1 ? '' : 's'})`,
        });
      } else {
        conditions = setCondition(conditions, {
          type: 'RolloutPaused', status: 'False',
          reason: !plan?.partitions.length ? 'NoRolloutStrategy' : waiting ? 'AllPartitionsReleased' : 'AllPartitionsReady',
        });
      }
      const ready = s.ready === s.desiredReady;
      state = b.spec?.paused ? 'Paused' : ready ? 'Ready' : paused ? 'RolloutPaused' : s.errApplied ? 'ErrApplied' : s.waitApplied || s.pending ? 'WaitApplied' : s.offline ? 'Offline' : 'NotReady';
      if (paused) message = conditions.find((x) => x.type === 'RolloutPaused')!.message!;
      else if (waiting && !ready && !errors.length) message = partitionMessage;
      else if (errors.length) message = errors.slice(0, 3).join('; ');
      else if (o.waitingDeps?.size) message = `waiting for dependencies on ${list([...o.waitingDeps.keys()])}`;
      else if (!ready && nonReady.length) message = `not ready: ${list(nonReady)}`;
      conditions = setCondition(conditions, { type: 'Ready', status: ready ? 'True' : 'False', reason: state, ...(message ? { message } : {}) });
    }
    const status: Bundle['status'] = {
      ...b.status, conditions, summary: s,
      ...(o.hash ? { contentHash: o.hash } : {}),
      ...(o.plan?.partitions.length ? {
        partitions: o.plan.partitions.map((p) => ({ name: p.name, count: p.clusters.length, maxUnavailable: p.maxUnavailable, unavailable: p.unavailable, summary: this.partSummary(b, p.clusters) })),
      } : { partitions: undefined }),
      observedGeneration: b.metadata.generation,
      display: { readyClusters: `${s.ready}/${s.desiredReady}`, state, ...(message ? { message: message.slice(0, 300) } : {}) },
    };
    if (!status.partitions) delete status.partitions;
    if (JSON.stringify(status) === JSON.stringify(b.status ?? {})) return;
    try {
      await this.client.updateStatus(BUNDLES, b.metadata.namespace, { ...b, status } as KObject);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    if (b.status?.display?.state !== state) log.info({ bundle: `${b.metadata.namespace}/${b.metadata.name}`, state, ready: status.display!.readyClusters }, 'bundle state');
  }

  private partSummary(b: Bundle, names: string[]): BundleSummary {
    const s: BundleSummary = { desiredReady: names.length, ready: 0, notReady: 0, pending: 0, waitApplied: 0, errApplied: 0, offline: 0 };
    for (const c of names) {
      const d = this.deployments.getByName(b.metadata.namespace, bdName(b.metadata.name!, c));
      if (!isReady(this.clusters.getByName(undefined, c))) s.offline++;
      else if (d?.status?.ready && d.status.appliedDeploymentID === d.spec?.stagedDeploymentID) s.ready++;
      else if (d?.spec?.deploymentID !== d?.spec?.stagedDeploymentID) s.pending++;
      else s.notReady++;
    }
    return s;
  }
}
