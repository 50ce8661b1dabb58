// The manager's side of the fleet: every skiff server is one (a site registers once someone gave
// it a token from `skiff fleet token`). It serves the registration and connect routes, keeps one
// tunnel per site, turns the sites' heartbeats into Cluster status (a control loop: informer → queue
// → reconcile), and forwards `clusters/<name>/proxy/...` requests through the site's tunnel (proxy.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { WebSocketServer } from 'ws';
import { ApiError, errors } from '../api/status.js';
import type { KObject } from '../api/object.js';
import { isAlreadyExists, isNotFound, Resources, type ApiClient } from '../client/types.js';
import { InformerFactory } from '../client/informer-factory.js';
import { WorkQueue } from '../client/workqueue.js';
import { runController, type RunningController } from '../client/controller.js';
import { eventRecorder, type EventRecorder } from '../client/events.js';
import { TunnelMux } from '../tunnel/mux.js';
import { logger } from '../util/log.js';
import { nowRfc3339 } from '../util/time.js';
import { CLUSTERS, CLUSTER_USER_PREFIX, FLEET_API_VERSION, type BundleDeployment, type Cluster } from './api.js';
import {
  CLUSTER_NAME_RE, CONNECT_PATH, DEFAULT_OFFLINE_GRACE_SECONDS, MAX_CLUSTER_NAME, MAX_REPORT_BYTES, MIN_SECRET_LENGTH, REGISTER_PATH,
  sameReport, type RegisterRequest, type RegisterResponse, type Report,
} from './protocol.js';
import { deploymentState, desiredStatus } from './status.js';
import { FLEET_TOKENS_NAMESPACE, FLEET_TOKENS_SECRET, sha256, verifyFleetBearer } from './tokens.js';
import { forwardToSite, type ProxyCaller } from './proxy.js';
import { startClusterGroupController } from './cluster-groups.js';
import { validLabels } from './labels.js';
import { GuessLimiter } from '../util/guess-limiter.js';
import { BundleController } from './bundle-controller.js';
import { BundleShipper } from './bundle-shipper.js';
import { GitRepoController, WEBHOOK_PATH } from './gitrepo.js';

const log = logger('fleet-manager');
/** The manager pings each tunnel this often; a site that misses a whole interval is cut off. */
const TUNNEL_PING_MS = 30_000;
const MAX_FRAME_BYTES = 1024 * 1024;
/** Site-reported labels are remembered here, so a label the site stops reporting is removed (and only those). */
const SITE_LABELS_ANNOTATION = 'fleet.skiff.io/site-labels';
const MAX_REGISTER_BODY = 64 * 1024;
/**
 * A BundleDeployment change reaches its Cluster's status after this long, so the burst a bundle
 * change makes (the manager's spec write, then the site's applied and Ready reports) is summed in one
 * reconcile and at most one status write per cluster, not one per event.
 */
const BUNDLE_SUMMARY_DELAY_MS = 1000;

export interface FleetManagerOptions {
  /** In-process client with the rights to write Clusters, their status, Events and read the token Secret. */
  client: ApiClient;
  /** The manager's serving CA, given to sites with their certificate. */
  serverCaPem: string;
  /** A client certificate from the manager's client CA: CN `fleet:cluster:<name>`. */
  issueClusterCert(name: string): Promise<{ certPem: string; keyPem: string }>;
  /** The bytes read past an upgrade request's head (the API server's upgrade plumbing). */
  upgradeHead(req: IncomingMessage): Buffer | undefined;
  offlineGraceMs?: number;
  lastSeenResolutionMs?: number;
  /** Where GitRepo clones are kept (none: GitRepos are not served). */
  gitCacheDir?: string;
}

interface Seen {
  lastSeenMs?: number;
  report?: Report;
  /** Heartbeat bytes received on the status stream (the benchmark's figure). */
  bytes: number;
  lines: number;
}

export class FleetManager {
  private readonly tunnels = new Map<string, TunnelMux>();
  private readonly seen = new Map<string, Seen>();
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false });
  private readonly informers: InformerFactory;
  private readonly queue = new WorkQueue<string>();
  private readonly events: EventRecorder;
  private readonly graceMs: number;
  private readonly resolutionMs: number;
  private readonly startedAt = Date.now();
  private controllers: RunningController[] = [];
  private readonly guesses = new GuessLimiter(10, 60_000);
  readonly bundles: BundleController;
  readonly shipper: BundleShipper;
  private readonly gitRepos: GitRepoController | undefined;

  constructor(private readonly opts: FleetManagerOptions) {
    this.informers = new InformerFactory(opts.client, { backoff: { initialMs: 500, maxMs: 5000 } });
    this.events = eventRecorder(opts.client, 'skiff-fleet-manager');
    this.graceMs = opts.offlineGraceMs ?? DEFAULT_OFFLINE_GRACE_SECONDS * 1000;
    this.resolutionMs = opts.lastSeenResolutionMs ?? 300_000;
    this.bundles = new BundleController(opts.client, this.informers);
    this.shipper = new BundleShipper(opts.client, this.bundles);
    this.gitRepos = opts.gitCacheDir ? new GitRepoController({ client: opts.client, informers: this.informers, cacheDir: opts.gitCacheDir }) : undefined;
  }

  start(): void {
    const clusters = this.informers.informerFor<Cluster>(CLUSTERS);
    clusters.addHandlers({
      onAdd: (c) => this.queue.add(c.metadata.name!),
      // Our own status writes come back here: reconcile is cheap and writes nothing when in step.
      onUpdate: (_o, c) => this.queue.add(c.metadata.name!),
      // A deleted Cluster closes its tunnel; the site then registers again (with its own secret).
      onDelete: (c) => this.queue.add(c.metadata.name!),
    });
    // Bundles ready on each cluster (status.summary): BundleDeployment changes that move one between
    // ready / pending / ... queue its cluster, delayed so a burst coalesces into one reconcile.
    const bdChanged = (d: BundleDeployment) => { if (d.spec?.cluster) this.queue.addAfter(d.spec.cluster, BUNDLE_SUMMARY_DELAY_MS); };
    this.bundles.deployments.addHandlers({
      onAdd: bdChanged,
      onUpdate: (o, d) => {
        if (o.spec?.cluster !== d.spec?.cluster) bdChanged(o);
        if (o.spec?.cluster !== d.spec?.cluster || deploymentState(o, true) !== deploymentState(d, true)) bdChanged(d);
      },
      onDelete: bdChanged,
    });
    this.controllers.push(runController({
      name: 'fleet-clusters', queue: this.queue, informers: [clusters, this.bundles.deployments], workers: 2,
      reconcile: (name) => this.reconcile(name),
    }));
    this.controllers.push(startClusterGroupController(this.opts.client, this.informers));
    this.bundles.start();
    this.shipper.start();
    this.gitRepos?.start();
    this.controllers.push(this.bundles, this.shipper, ...(this.gitRepos ? [this.gitRepos] : []));
    this.informers.start();
  }

  async stop(): Promise<void> {
    for (const mux of this.tunnels.values()) mux.close(true);
    this.tunnels.clear();
    this.wss.close();
    await Promise.all(this.controllers.map((c) => c.stop()));
    await this.informers.stop();
  }

  isConnected(name: string): boolean {
    return this.tunnels.get(name)?.isOpen ?? false;
  }

  /** Heartbeat traffic received so far, summed over the sites (bench/fleet.ts reads it through metrics). */
  heartbeatStats(): { clusters: number; connected: number; bytes: number; lines: number } {
    let bytes = 0, lines = 0;
    for (const s of this.seen.values()) { bytes += s.bytes; lines += s.lines; }
    return { clusters: this.seen.size, connected: this.tunnels.size, bytes, lines };
  }

  /**
   * The `extraRoutes` hook: the registration and connect routes; false (synchronously, so the
   * server's `a || b || c` chain goes on to the next route) for any other path.
   */
  handleRoute(req: IncomingMessage, res: ServerResponse, user: { name: string } | null): false | Promise<true> {
    const path = (req.url ?? '').split('?')[0];
    if (path === REGISTER_PATH) return this.register(req, res).then(() => true);
    if (path === CONNECT_PATH) return this.connect(req, user).then(() => true);
    if (path === WEBHOOK_PATH) return this.webhook(req, res).then(() => true);
    return false;
  }

  /** Serves `clusters/<name>/proxy/...` once the API server has authorized the caller on it. */
  async proxy(req: IncomingMessage, res: ServerResponse, name: string, caller: ProxyCaller): Promise<void> {
    const mux = this.tunnels.get(name);
    if (!mux?.isOpen) {
      const seen = this.seen.get(name)?.lastSeenMs;
      throw new ApiError(503, 'ServiceUnavailable', `cluster "${name}" is not connected to this manager${seen ? ` (last heartbeat ${new Date(seen).toISOString()})` : ''}`);
    }
    await forwardToSite(mux, name, req, res, caller, this.opts.upgradeHead(req));
  }

  private async register(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') throw errors.methodNotAllowed(req.method ?? '');
    const source = req.socket.remoteAddress ?? '';
    const wait = this.guesses.blockedFor(source);
    if (wait > 0) throw errors.tooManyRequests('too many failed fleet registrations from this address, please try again later', wait);
    const auth = String(req.headers.authorization ?? '');
    const bearer = auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';
    const tokens = await this.opts.client.get(Resources.secrets, FLEET_TOKENS_NAMESPACE, FLEET_TOKENS_SECRET);
    if (!bearer || !verifyFleetBearer(bearer, (tokens as any)?.data)) {
      this.guesses.fail(source);
      throw errors.unauthorized('invalid fleet registration token: ask the manager\'s admin for one (`skiff fleet token` on the manager)');
    }
    const body = parseBody(await readLimited(req, MAX_REGISTER_BODY));
    const name = String(body.name ?? '');
    const secret = String(body.secret ?? '');
    if (!CLUSTER_NAME_RE.test(name) || name.length > MAX_CLUSTER_NAME) {
      throw errors.badRequest(`invalid cluster name "${name}": must be a lowercase DNS label (a-z, 0-9, '-', at most ${MAX_CLUSTER_NAME} characters)`);
    }
    if (secret.length < MIN_SECRET_LENGTH) throw errors.badRequest(`secret: must be at least ${MIN_SECRET_LENGTH} characters`);
    const labels = body.labels ?? {};
    const bad = validLabels(labels);
    if (bad) throw errors.badRequest(`labels: ${bad}`);

    const secretHash = sha256(secret);
    const existing = await this.opts.client.get<Cluster>(CLUSTERS, undefined, name);
    const bound = existing?.status?.identity?.secretHash;
    if (bound && bound !== secretHash) {
      const message = `a site with another identity tried to register as "${name}" from ${source}; refused (the name stays bound to the site that registered first: delete this Cluster if that site was rebuilt)`;
      this.events.record(existing!, 'Warning', 'RegistrationConflict', message);
      await this.setConflict(name, message).catch(() => undefined);
      log.warn({ cluster: name, source }, 'registration refused: name bound to another identity');
      throw new ApiError(409, 'Conflict', `cluster name "${name}" is already registered by another site (another identity); choose another --cluster-name, or have the manager's admin delete Cluster "${name}" if this site replaces it`,
        { name, group: 'fleet.skiff.io', kind: 'clusters' });
    }
    const cert = await this.opts.issueClusterCert(name);
    const fingerprint = new X509Certificate(cert.certPem).fingerprint256;
    if (!existing) {
      try {
        await this.opts.client.create(CLUSTERS, undefined, {
          apiVersion: FLEET_API_VERSION, kind: 'Cluster',
          metadata: { name, labels, annotations: { [SITE_LABELS_ANNOTATION]: Object.keys(labels).sort().join(',') } },
          spec: {},
        });
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
      }
    }
    // Bind (or re-bind, for the same secret) the name to this certificate: older ones stop working.
    await this.updateStatus(name, (c) => {
      const conditions = (c.status?.conditions ?? []).filter((x) => x.type !== 'RegistrationConflict');
      return { ...c.status, conditions, identity: { secretHash, certificateFingerprint: fingerprint, registeredAt: nowRfc3339() } };
    });
    log.info({ cluster: name, source, labels }, existing ? 'site re-registered' : 'site registered');
    const reply: RegisterResponse = { name, certPem: cert.certPem, keyPem: cert.keyPem, caPem: this.opts.serverCaPem };
    const json = JSON.stringify(reply);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(json), 'Cache-Control': 'no-store' });
    res.end(json);
  }

  /**
   * A git host's push webhook: polls the GitRepos of the repository it names at once. It needs no
   * credentials (git hosts send none we could check without a shared secret): all it can do is
   * make the manager fetch, sooner, a repository it already polls.
   */
  private async webhook(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') throw errors.methodNotAllowed(req.method ?? '');
    if (!this.gitRepos) throw new ApiError(404, 'NotFound', 'this manager serves no GitRepos');
    let payload: unknown;
    try { payload = JSON.parse((await readLimited(req, 4 * 1024 * 1024)).toString('utf8')); } catch (e) {
      if (e instanceof ApiError) throw e;
      throw errors.badRequest('the webhook body must be a JSON push event');
    }
    const n = this.gitRepos.trigger(payload);
    const json = JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Success', message: `${n} GitRepo(s) polled`, code: 200 });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(json) });
    res.end(json);
  }

  private async connect(req: IncomingMessage, user: { name: string } | null): Promise<void> {
    if (!user) throw errors.unauthorized('a site connects with the client certificate it got at registration');
    if (!user.name.startsWith(CLUSTER_USER_PREFIX)) {
      throw new ApiError(403, 'Forbidden', `forbidden: User "${user.name}" is not a fleet cluster; only site certificates (CN ${CLUSTER_USER_PREFIX}<name>) may connect`);
    }
    const name = user.name.slice(CLUSTER_USER_PREFIX.length);
    const cluster = await this.opts.client.get<Cluster>(CLUSTERS, undefined, name);
    if (!cluster) throw errors.notFound('clusters', 'fleet.skiff.io', name);
    const fingerprint = (req.socket as TLSSocket).getPeerCertificate?.()?.fingerprint256;
    if (!fingerprint || fingerprint !== cluster.status?.identity?.certificateFingerprint) {
      throw new ApiError(403, 'Forbidden', `forbidden: this certificate is no longer bound to cluster "${name}" (the name was registered again); register again with this site's identity`);
    }
    const head = this.opts.upgradeHead(req);
    if (!head || String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket') throw errors.badRequest(`${CONNECT_PATH} needs a WebSocket upgrade`);
    this.wss.handleUpgrade(req, req.socket, head, (ws) => this.attach(name, new TunnelMux(ws, { heartbeatMs: TUNNEL_PING_MS })));
  }

  private attach(name: string, mux: TunnelMux): void {
    const old = this.tunnels.get(name);
    this.tunnels.set(name, mux);
    old?.close();
    mux.on('protocolError', (err: Error) => log.warn({ cluster: name, err: err.message }, 'fleet tunnel protocol error'));
    mux.once('close', () => {
      if (this.tunnels.get(name) === mux) this.tunnels.delete(name);
      log.info({ cluster: name }, 'site disconnected');
      this.queue.add(name);
    });
    log.info({ cluster: name }, 'site connected');
    void mux.open({ op: 'fleet-status' }).then((stream) => {
      const seen = this.seenOf(name);
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        seen.bytes += Buffer.byteLength(chunk);
        buf += chunk;
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          this.onLine(name, seen, line);
        }
        if (buf.length > MAX_REPORT_BYTES) { log.warn({ cluster: name }, 'oversized report; closing the tunnel'); mux.close(true); }
      });
      stream.once('error', () => undefined);
      if (this.tunnels.get(name) === mux) this.shipper.attach(name, mux);
    }, (err: Error) => {
      log.warn({ cluster: name, err: err.message }, 'the site refused the status stream');
      mux.close(true);
    });
  }

  private onLine(name: string, seen: Seen, line: string): void {
    const first = seen.lastSeenMs === undefined || !this.isFresh(seen.lastSeenMs);
    seen.lastSeenMs = Date.now();
    seen.lines++;
    if (line.length > 0) {
      let report: Report | undefined;
      try { report = normalizeReport(JSON.parse(line)); } catch { report = undefined; }
      if (!report) { log.warn({ cluster: name }, 'malformed report ignored'); return; }
      if (!sameReport(report, seen.report)) { seen.report = report; this.queue.add(name); return; }
    }
    if (first) this.queue.add(name);
  }

  private isFresh(ms: number): boolean {
    return Date.now() - ms <= this.graceMs;
  }

  private seenOf(name: string): Seen {
    let s = this.seen.get(name);
    if (!s) { s = { bytes: 0, lines: 0 }; this.seen.set(name, s); }
    return s;
  }

  private async reconcile(name: string): Promise<{ requeueAfterMs?: number } | void> {
    const cluster = this.informers.informerFor<Cluster>(CLUSTERS).getByName(undefined, name);
    if (!cluster) { this.seen.delete(name); this.tunnels.get(name)?.close(true); return; }
    const seen = this.seen.get(name);
    if (seen?.report) await this.syncLabels(cluster, seen.report.labels);
    const deployments = this.bundles.deployments.byIndex('cluster', name);
    const d = desiredStatus(cluster.status, { lastSeenMs: seen?.lastSeenMs, report: seen?.report, deployments }, {
      now: Date.now(), graceMs: this.graceMs, managerStartMs: this.startedAt, lastSeenResolutionMs: this.resolutionMs,
    });
    if (d.changed) {
      const prev = cluster.status?.display?.state;
      await this.opts.client.updateStatus(CLUSTERS, undefined, { ...cluster, status: d.status });
      if (prev !== d.status.display?.state) log.info({ cluster: name, state: d.status.display?.state }, 'cluster state');
      if (prev && prev !== d.status.display?.state && d.status.display?.state !== 'Pending') {
        this.events.record(cluster, d.status.display?.state === 'Ready' ? 'Normal' : 'Warning', d.status.display?.state === 'Ready' ? 'ClusterReady' : 'ClusterOffline',
          d.status.conditions?.find((c) => c.type === 'Ready')?.message ?? '');
      }
    }
    return d.recheckMs !== undefined ? { requeueAfterMs: d.recheckMs } : undefined;
  }

  private async syncLabels(cluster: Cluster, labels: Record<string, string>): Promise<void> {
    const owned = (cluster.metadata.annotations?.[SITE_LABELS_ANNOTATION] ?? '').split(',').filter(Boolean);
    const cur = cluster.metadata.labels ?? {};
    const patch: Record<string, string | null> = {};
    for (const k of owned) if (!(k in labels)) patch[k] = null;
    for (const [k, v] of Object.entries(labels)) if (cur[k] !== v) patch[k] = v;
    const keys = Object.keys(labels).sort().join(',');
    if (Object.keys(patch).length === 0 && keys === owned.join(',')) return;
    if (validLabels(labels)) return;
    await this.opts.client.patch(CLUSTERS, undefined, cluster.metadata.name!, 'merge', {
      metadata: { labels: patch, annotations: { [SITE_LABELS_ANNOTATION]: keys } },
    });
  }

  private async setConflict(name: string, message: string): Promise<void> {
    await this.updateStatus(name, (c) => {
      const others = (c.status?.conditions ?? []).filter((x) => x.type !== 'RegistrationConflict');
      return { ...c.status, conditions: [...others, { type: 'RegistrationConflict', status: 'True', reason: 'DuplicateName', message, lastTransitionTime: nowRfc3339() }] };
    });
  }

  private async updateStatus(name: string, mutate: (c: Cluster) => Cluster['status']): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const cur = await this.opts.client.get<Cluster>(CLUSTERS, undefined, name);
      if (!cur) throw errors.notFound('clusters', 'fleet.skiff.io', name);
      try {
        await this.opts.client.updateStatus(CLUSTERS, undefined, { ...cur, status: mutate(cur) } as KObject);
        return;
      } catch (e) {
        if (attempt < 5 && e instanceof ApiError && e.code === 409) continue;
        if (isNotFound(e)) throw e;
        throw e;
      }
    }
  }
}

function normalizeReport(r: any): Report | undefined {
  if (!r || typeof r !== 'object') return undefined;
  const n = (v: unknown) => (Number.isInteger(v) && (v as number) >= 0 ? (v as number) : 0);
  const s = (v: unknown) => (typeof v === 'string' ? v.slice(0, 64) : '');
  const labels: Record<string, string> = {};
  if (r.labels && typeof r.labels === 'object') for (const [k, v] of Object.entries(r.labels)) if (typeof v === 'string') labels[k] = v;
  return {
    version: s(r.version), labels,
    nodes: { ready: n(r.nodes?.ready), total: n(r.nodes?.total) },
    capacity: { cpu: s(r.capacity?.cpu), memory: s(r.capacity?.memory), pods: s(r.capacity?.pods) },
  };
}

function parseBody(buf: Buffer): Partial<RegisterRequest> {
  try {
    const v = JSON.parse(buf.toString('utf8'));
    if (v && typeof v === 'object' && !Array.isArray(v)) return v;
  } catch { /* answered below */ }
  throw errors.badRequest('the registration body must be a JSON object {name, secret, labels}');
}

function readLimited(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) { reject(errors.tooLarge()); req.destroy(); return; }
      chunks.push(c);
    });
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

