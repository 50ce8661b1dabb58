// The site's end of bundles: takes deployments from the manager's `fleet-bundles` stream, renders
// them for this cluster (customize.ts), applies every object with server-side apply under its own
// field manager (`skiff-fleet-agent`, forcing: the bundle owns what it sets), deletes objects a new
// version no longer has (unless keepResources), re-applies periodically so drift is corrected, and
// reports applied/Ready (workloads.ts) back. A control loop keyed by deployment: the stream only
// records what is wanted and queues the key.
//
// What it runs is kept in `<data-dir>/fleet/bundles/` (content, options, the objects applied), so a
// restarted site tells the manager which versions it has (it then gets only what changed) and can
// still delete objects of a bundle removed while it was down.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { KObject } from '../api/object.js';
import { isNotFound, Resources, type ApiClient, type ResourceRef, type ServedResource } from '../client/types.js';
import { WorkQueue } from '../client/workqueue.js';
import { runController, type RunningController } from '../client/controller.js';
import type { TunnelStream } from '../tunnel/mux.js';
import { writeFileAtomic } from '../pki/pem-files.js';
import { logger, type Logger } from '../util/log.js';
import type { BundleResource, ShippedOptions } from './api.js';
import { render, type Patcher } from './customize.js';
import { POD_OWNERS, readiness } from './workloads.js';
import { compileLabelSelector, type LabelSelector } from '../api/selectors.js';
import { MAX_BUNDLE_LINE_BYTES, type DeploymentStatus, type FromSite, type ToSite } from './protocol.js';
import { readLines, writeLine } from './ndjson.js';

export const FLEET_FIELD_MANAGER = 'skiff-fleet-agent';
export const DEPLOYMENT_ANNOTATION = 'fleet.skiff.io/bundle-deployment';

export interface AppliedRef { group: string; version: string; resource: string; kind: string; namespace?: string; name: string }

interface Deployment {
  key: string;
  deploymentID: string;
  options: ShippedOptions;
  resources: BundleResource[];
  /** The version applied last, and what it applied. */
  appliedID?: string;
  refs: AppliedRef[];
  appliedAt?: number;
  /** Removed from the manager's list: delete and forget. */
  removed?: boolean;
}

export interface SiteBundlesOptions {
  client: ApiClient;
  /** Where deployments are kept across restarts (none: memory only). */
  dataDir?: string;
  patcher?: Patcher;
  /** Re-apply everything this often (drift correction). Default 30 s. */
  resyncMs?: number;
  /** How often a deployment not yet Ready is looked at again. Default 2 s. */
  readyPollMs?: number;
  log?: Logger;
}

const refKey = (r: AppliedRef) => `${r.group}/${r.kind}/${r.namespace ?? ''}/${r.name}`;
/** Kinds other objects live in or are defined by: applied first. */
const FIRST = ['Namespace', 'CustomResourceDefinition', 'ServiceAccount', 'ConfigMap', 'Secret'];

export class SiteBundles {
  private readonly deployments = new Map<string, Deployment>();
  private readonly reported = new Map<string, string>();
  private readonly queue = new WorkQueue<string>();
  private stream: TunnelStream | undefined;
  private controller: RunningController | undefined;
  private discovery: Promise<Map<string, ServedResource>> | undefined;
  private readonly log: Logger;
  private readonly dir: string | undefined;

  constructor(private readonly o: SiteBundlesOptions) {
    this.log = o.log ?? logger('fleet-site-bundles');
    this.dir = o.dataDir ? join(o.dataDir, 'fleet', 'bundles') : undefined;
    if (this.dir) {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      for (const f of readdirSync(this.dir)) {
        if (!f.endsWith('.json')) continue;
        try {
          const d = JSON.parse(readFileSync(join(this.dir, f), 'utf8')) as Deployment;
          this.deployments.set(d.key, d);
        } catch { /* a torn file: the manager sends the deployment again */ }
      }
    }
  }

  start(): void {
    this.controller = runController({ name: 'fleet-site-bundles', queue: this.queue, reconcile: (k) => this.reconcile(k) });
    for (const k of this.deployments.keys()) this.queue.add(k);
  }

  async stop(): Promise<void> {
    this.stream?.destroy();
    await this.controller?.stop();
  }

  /** The manager opened the bundles stream (once per tunnel). */
  serve(stream: TunnelStream): void {
    stream.accept();
    this.stream?.destroy();
    this.stream = stream;
    this.reported.clear();   // report everything again on the new connection
    const applied: Record<string, string> = {};
    for (const d of this.deployments.values()) if (d.appliedID && !d.removed) applied[d.key] = d.appliedID;
    writeLine(stream, { t: 'hello', applied } satisfies FromSite);
    readLines<ToSite>(stream, MAX_BUNDLE_LINE_BYTES, (m) => this.onMessage(m), (why) => { this.log.warn({ why }, 'bad line from the manager'); stream.destroy(); });
    for (const k of this.deployments.keys()) this.queue.add(k);
  }

  private onMessage(m: ToSite): void {
    if (m.t === 'deploy') {
      const old = this.deployments.get(m.key);
      const d: Deployment = { key: m.key, deploymentID: m.deploymentID, options: m.options, resources: m.resources, refs: old?.refs ?? [], ...(old?.appliedID ? { appliedID: old.appliedID } : {}) };
      this.deployments.set(m.key, d);
      this.save(d);
      this.queue.add(m.key);
    } else if (m.t === 'sync') {
      const keep = new Set(m.keys);
      for (const d of this.deployments.values()) {
        if (!keep.has(d.key) && !d.removed) { d.removed = true; this.save(d); this.queue.add(d.key); }
      }
    }
  }

  private fileOf(key: string): string | undefined {
    return this.dir ? join(this.dir, `${createHash('sha256').update(key).digest('hex').slice(0, 32)}.json`) : undefined;
  }

  private save(d: Deployment): void {
    const f = this.fileOf(d.key);
    if (f) writeFileAtomic(f, JSON.stringify(d), 0o600);
  }

  private report(s: DeploymentStatus): void {
    const line = JSON.stringify(s);
    if (this.reported.get(s.key) === line || !this.stream) return;
    if (writeLine(this.stream, { t: 'status', ...s } satisfies FromSite)) this.reported.set(s.key, line);
  }

  private async reconcile(key: string): Promise<{ requeueAfterMs?: number } | void> {
    const d = this.deployments.get(key);
    if (!d) return;
    if (d.removed) {
      if (!d.options.keepResources) await this.deleteRefs(d.refs);
      this.deployments.delete(key);
      this.reported.delete(key);
      const f = this.fileOf(key);
      if (f) rmSync(f, { force: true });
      this.log.info({ deployment: key, kept: !!d.options.keepResources }, 'bundle deployment removed');
      return;
    }
    const resync = this.o.resyncMs ?? 30_000;
    try {
      if (d.appliedID !== d.deploymentID || Date.now() - (d.appliedAt ?? 0) >= resync) await this.apply(d);
    } catch (e) {
      this.report({ key, ...(d.appliedID ? { appliedDeploymentID: d.appliedID } : {}), ready: false, error: true, message: (e as Error).message });
      this.log.warn({ deployment: key, err: (e as Error).message }, 'bundle apply failed');
      return { requeueAfterMs: 10_000 };
    }
    const notReady: string[] = [];
    for (const r of d.refs) {
      const live = await this.o.client.get({ group: r.group, version: r.version, resource: r.resource }, r.namespace, r.name);
      if (!live) { notReady.push(`${r.kind.toLowerCase()} ${r.name}: missing`); continue; }
      let ready = readiness(live);
      // Not Ready: its pods say why (a broken image, a crash loop), which is what the manager's
      // paused rollout then names. Looked up only for workloads that are not Ready.
      if (!ready.ready && POD_OWNERS.has(r.kind)) ready = readiness(live, await this.podsOf(live).catch(() => []));
      if (!ready.ready) notReady.push(ready.message ?? `${r.kind} ${r.name}`);
    }
    this.report({ key, appliedDeploymentID: d.appliedID!, ready: notReady.length === 0, resources: d.refs.length, ...(notReady.length ? { message: notReady.slice(0, 5).join('; ') } : {}) });
    const untilResync = Math.max(1000, (d.appliedAt ?? 0) + resync - Date.now());
    return { requeueAfterMs: notReady.length ? Math.min(this.o.readyPollMs ?? 2000, untilResync) : untilResync };
  }

  private async apply(d: Deployment): Promise<void> {
    const objects = render(d.resources, d.options, this.o.patcher);
    objects.sort((a, b) => rank(a) - rank(b));
    const refs: AppliedRef[] = [];
    const namespaces = new Set<string>();
    for (const obj of objects) {
      const served = await this.resourceFor(obj);
      const [group, version] = obj.apiVersion!.includes('/') ? obj.apiVersion!.split('/') as [string, string] : ['', obj.apiVersion!];
      const ref: ResourceRef = { group, version, resource: served.resource };
      const ns = served.namespaced ? (obj.metadata.namespace ?? d.options.defaultNamespace ?? 'default') : undefined;
      if (ns && !namespaces.has(ns) && !objects.some((o) => o.kind === 'Namespace' && o.metadata.name === ns)) {
        namespaces.add(ns);
        await this.ensureNamespace(ns);
      }
      const body: KObject = {
        ...obj,
        metadata: { ...obj.metadata, ...(ns ? { namespace: ns } : {}), annotations: { ...obj.metadata.annotations, [DEPLOYMENT_ANNOTATION]: d.key } },
      };
      await this.o.client.patch(ref, ns, obj.metadata.name!, 'apply', body, { fieldManager: FLEET_FIELD_MANAGER, force: true });
      refs.push({ group, version, resource: served.resource, kind: obj.kind!, ...(ns ? { namespace: ns } : {}), name: obj.metadata.name! });
    }
    const now = new Set(refs.map(refKey));
    const gone = d.refs.filter((r) => !now.has(refKey(r)));
    if (gone.length && !d.options.keepResources) await this.deleteRefs(gone);
    const first = d.appliedID !== d.deploymentID;
    d.refs = refs;
    d.appliedID = d.deploymentID;
    d.appliedAt = Date.now();
    this.save(d);
    if (first) this.log.info({ deployment: d.key, id: d.deploymentID, objects: refs.length, deleted: d.options.keepResources ? 0 : gone.length }, 'bundle applied');
  }

  /** The pods a workload selects (its own namespace, its spec.selector). */
  private async podsOf(w: KObject & { spec?: { selector?: LabelSelector } }): Promise<KObject[]> {
    const sel = w.spec?.selector;
    if (!sel || !w.metadata.namespace) return [];
    // matchLabels narrows the list on the server; matchExpressions are checked here.
    const labelSelector = Object.entries(sel.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
    const list = await this.o.client.list(Resources.pods, w.metadata.namespace, labelSelector ? { labelSelector } : {});
    const matches = compileLabelSelector(sel);
    return list.items.filter((p) => matches(p.metadata.labels));
  }

  private async ensureNamespace(ns: string): Promise<void> {
    const ref = { group: '', version: 'v1', resource: 'namespaces' };
    if (await this.o.client.get(ref, undefined, ns)) return;
    await this.o.client.create(ref, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }).catch(() => undefined);
  }

  private async deleteRefs(refs: AppliedRef[]): Promise<void> {
    for (const r of [...refs].reverse()) {
      await this.o.client.delete({ group: r.group, version: r.version, resource: r.resource }, r.namespace, r.name).catch((e) => { if (!isNotFound(e)) throw e; });
    }
  }

  /** The resource serving an object's kind (discovery, refreshed once when a kind is unknown: a CRD the bundle just created). */
  private async resourceFor(obj: KObject): Promise<ServedResource> {
    const group = obj.apiVersion!.includes('/') ? obj.apiVersion!.split('/')[0]! : '';
    const k = `${group}/${obj.kind}`;
    for (let attempt = 0; attempt < 2; attempt++) {
      if (!this.discovery || attempt === 1) {
        this.discovery = this.o.client.preferredResources().then((list) => new Map(list.map((r) => [`${r.group}/${r.kind}`, r])));
        this.discovery.catch(() => { this.discovery = undefined; });
      }
      const hit = (await this.discovery).get(k);
      if (hit) return hit;
    }
    throw new Error(`no resource serves ${obj.apiVersion} ${obj.kind} on this cluster`);
  }
}

function rank(o: KObject): number {
  const i = FIRST.indexOf(o.kind ?? '');
  return i < 0 ? FIRST.length : i;
}
