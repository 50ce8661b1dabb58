// Carries BundleDeployments to their sites over the sites' own tunnels (no inbound port on a site)
// and their status back. One `fleet-bundles` stream per connected site: the site says which
// versions it runs, the manager sends what differs (a delta) and the list of deployments to keep;
// afterwards every change of a BundleDeployment's released version is sent as it happens. Status
// lines are coalesced per deployment and written by a small control loop, only when they change.
import type { ApiClient } from '../client/types.js';
import { isNotFound } from '../client/types.js';
import { WorkQueue } from '../client/workqueue.js';
import { runController, type RunningController } from '../client/controller.js';
import type { TunnelMux, TunnelStream } from '../tunnel/mux.js';
import { logger } from '../util/log.js';
import { BUNDLE_DEPLOYMENTS, type BundleDeployment } from './api.js';
import { CONTENT_LABEL, unpackContent } from './content.js';
import { MAX_BUNDLE_LINE_BYTES, type DeploymentStatus, type FromSite, type ToSite } from './protocol.js';
import { readLines, writeLine } from './ndjson.js';
import { setCondition, type BundleController } from './bundle-controller.js';

const log = logger('fleet-bundle-shipper');
/** Decoded contents kept for sending (a rollout sends one version to many sites). */
const CONTENT_CACHE = 16;

interface Channel {
  stream: TunnelStream;
  /** Deployment key → the version the site runs or was last sent. */
  sent: Map<string, string>;
  ready: boolean;
}

const keyOf = (d: BundleDeployment) => `${d.metadata.namespace}/${d.metadata.name}`;

export class BundleShipper {
  readonly name = 'fleet-bundle-shipper';
  private readonly channels = new Map<string, Channel>();
  private readonly reported = new Map<string, DeploymentStatus>();
  private readonly queue = new WorkQueue<string>();
  /** Content hash → its resources as JSON, one Buffer shared by every stream it is written to. */
  private readonly cache = new Map<string, Buffer>();
  private controller: RunningController | undefined;
  /** Deployments sent, for the benchmark. */
  sentCount = 0;

  constructor(private readonly client: ApiClient, private readonly bundles: BundleController) {}

  start(): void {
    const d = this.bundles.deployments;
    d.addHandlers({
      onAdd: (bd) => this.push(bd),
      onUpdate: (o, bd) => { if (o.spec?.deploymentID !== bd.spec?.deploymentID) this.push(bd); },
      onDelete: (bd) => this.resync(bd.spec?.cluster ?? ''),
    });
    // A deployment can reach the informer before its content's chunks do.
    this.bundles.configMaps.addHandlers({ onAdd: (cm) => { if (cm.metadata.labels?.[CONTENT_LABEL]) this.retryPending(); } });
    this.controller = runController({
      // Status writes are independent per deployment, and a rollout reports thousands at once.
      name: 'fleet-bundle-status', queue: this.queue, workers: 8, informers: [d],
      reconcile: (k) => this.writeStatus(k),
    });
  }

  async stop(): Promise<void> {
    for (const c of this.channels.values()) c.stream.destroy();
    await this.controller?.stop();
  }

  /** A site connected: open its bundles stream. */
  attach(cluster: string, mux: TunnelMux): void {
    void mux.open({ op: 'fleet-bundles' }).then((stream) => {
      const ch: Channel = { stream, sent: new Map(), ready: false };
      this.channels.get(cluster)?.stream.destroy();
      this.channels.set(cluster, ch);
      stream.once('close', () => { if (this.channels.get(cluster) === ch) this.channels.delete(cluster); });
      readLines<FromSite>(stream, MAX_BUNDLE_LINE_BYTES, (m) => this.onLine(cluster, ch, m), (why) => {
        log.warn({ cluster, why }, 'bad line on the bundles stream; closing it');
        stream.destroy();
      });
    }, (err: Error) => log.info({ cluster, err: err.message }, 'the site has no bundles stream'));
  }

  private onLine(cluster: string, ch: Channel, m: FromSite): void {
    if (m.t === 'hello') {
      for (const [k, v] of Object.entries(m.applied ?? {})) if (typeof v === 'string') ch.sent.set(k, v);
      ch.ready = true;
      this.resync(cluster);
      return;
    }
    if (m.t === 'status' && typeof m.key === 'string') {
      const d = this.bundles.deployments.get(m.key);
      if (!d || d.spec?.cluster !== cluster) return;   // a site reports only its own deployments
      this.reported.set(m.key, {
        key: m.key, ready: m.ready === true, error: m.error === true,
        ...(typeof m.appliedDeploymentID === 'string' ? { appliedDeploymentID: m.appliedDeploymentID } : {}),
        ...(Number.isInteger(m.resources) ? { resources: m.resources } : {}),
        ...(typeof m.message === 'string' ? { message: m.message.slice(0, 1000) } : {}),
      });
      this.queue.add(m.key);
    }
  }

  /** Everything the site should run: what differs from what it has, then the keep-list. */
  private resync(cluster: string): void {
    const ch = this.channels.get(cluster);
    if (!ch?.ready) return;
    const mine = this.bundles.deployments.byIndex('cluster', cluster);
    for (const d of mine) this.push(d);
    writeLine(ch.stream, { t: 'sync', keys: mine.filter((d) => d.spec?.deploymentID).map(keyOf) } satisfies ToSite);
  }

  private push(d: BundleDeployment): void {
    const ch = this.channels.get(d.spec?.cluster ?? '');
    const id = d.spec?.deploymentID;
    if (!ch?.ready || !id || !d.spec?.options || !d.spec.contentHash) return;
    const key = keyOf(d);
    if (ch.sent.get(key) === id) return;
    const resources = this.content(d.metadata.namespace!, d.spec.contentHash);
    if (!resources) { log.warn({ deployment: key, content: d.spec.contentHash }, 'content not stored (yet); will send when it is'); return; }
    ch.sent.set(key, id);
    this.sentCount++;
    // The line is `{...head, "resources": <content>}`: the content part is one shared Buffer (a
    // Writable keeps Buffers by reference), so a version going to thousands of slow sites is held
    // in memory once, not once per site.
    const head = JSON.stringify({ t: 'deploy', key, deploymentID: id, options: d.spec.options } satisfies Omit<Extract<ToSite, { t: 'deploy' }>, 'resources'>);
    if (ch.stream.destroyed || ch.stream.writableEnded) return;
    ch.stream.write(Buffer.from(`${head.slice(0, -1)},"resources":`));
    ch.stream.write(resources);
    ch.stream.write(Buffer.from('}\n'));
  }

  private content(ns: string, hash: string): Buffer | undefined {
    const k = `${ns}/${hash}`;
    let r = this.cache.get(k);
    if (!r) {
      const resources = unpackContent(this.bundles.contentChunks(ns, hash));
      if (!resources) return undefined;
      r = Buffer.from(JSON.stringify(resources));
      this.cache.set(k, r);
      if (this.cache.size > CONTENT_CACHE) this.cache.delete(this.cache.keys().next().value!);
    }
    return r;
  }

  /** Re-sends deployments whose content arrived after them (content ConfigMaps and BDs race at creation). */
  retryPending(): void {
    for (const [cluster] of this.channels) for (const d of this.bundles.deployments.byIndex('cluster', cluster)) this.push(d);
  }

  private async writeStatus(key: string): Promise<void> {
    const r = this.reported.get(key);
    const d = this.bundles.deployments.get(key);
    if (!r || !d) { this.reported.delete(key); return; }
    const cur = d.status ?? {};
    const applied = r.appliedDeploymentID;
    const deployedOk = !r.error;
    const status: NonNullable<BundleDeployment['status']> = {
      ...(applied ? { appliedDeploymentID: applied } : {}),
      ready: r.ready && !r.error && applied === d.spec?.deploymentID,
      ...(r.resources !== undefined ? { resources: r.resources } : {}),
      ...(r.message ? { message: r.message } : {}),
      conditions: setCondition(setCondition(cur.conditions, {
        type: 'Deployed', status: deployedOk ? 'True' : 'False', reason: deployedOk ? 'Applied' : 'ApplyFailed', ...(deployedOk ? {} : { message: r.message }),
      }), { type: 'Ready', status: r.ready && !r.error ? 'True' : 'False', reason: r.ready ? 'Ready' : r.error ? 'ApplyFailed' : 'NotReady', ...(r.ready ? {} : { message: r.message }) }),
      display: {
        deployed: applied ? (applied === d.spec?.deploymentID ? 'Yes' : `${applied.slice(0, 14)}…`) : 'No',
        monitored: r.ready ? 'Yes' : 'No',
        state: r.error ? 'ErrApplied' : applied !== d.spec?.deploymentID ? 'WaitApplied' : r.ready ? 'Ready' : 'NotReady',
      },
    };
    const strip = (s: typeof status) => JSON.stringify({ ...s, conditions: s.conditions?.map(({ lastTransitionTime: _t, ...c }) => c) });
    if (strip(status) === strip(cur)) return;
    try {
      // No resourceVersion precondition: the bundle loop rewrites the spec meanwhile, and this is the status's only writer.
      await this.client.patch(BUNDLE_DEPLOYMENTS, d.metadata.namespace, d.metadata.name!, 'json', [{ op: 'replace', path: '/status', value: status }], { subresource: 'status' });
    } catch (e) {
      if (isNotFound(e)) return;
      throw e;
    }
  }
}
