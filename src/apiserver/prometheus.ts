// The API server's Prometheus metrics (`GET /metrics`, authorized as the nonResourceURL /metrics:
// system:monitoring and admins), named and labelled as kube-apiserver's so existing dashboards and
// alerts work: request counts and latencies, in-flight and long-running requests, stored objects,
// storage latency, plus the control loops' workqueue and scheduler metrics and Node.js process
// metrics, all in one registry per server.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Gauge, Registry } from 'prom-client';
import { collectProcessMetrics } from '../util/process-metrics.js';
import type { Store } from '../storage/types.js';
import { storageResource } from '../api/kinds.js';
import type { KindInfo } from '../api/kinds.js';
import type { RequestInfo } from './request-info.js';
import { parsedRequest } from './request-target.js';
import { counter, gauge, histogram } from '../client/metrics-scope.js';
import { sendRaw } from './http.js';
import type { FlowControlObserver } from './connection-limits.js';

/** kube-apiserver's request latency buckets. */
const REQUEST_BUCKETS = [0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60];
/** etcd_request_duration_seconds' buckets. */
const STORAGE_BUCKETS = [0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60];
const REQUEST_LABELS = ['verb', 'dry_run', 'group', 'version', 'resource', 'subresource', 'scope', 'component'];
const LONG_RUNNING = new Set(['watch', 'proxy', 'exec', 'attach', 'portforward']);

/** The verb label as kube-apiserver reports it: LIST/WATCH/GET, else the HTTP method (APPLY for server-side apply). */
function reportedVerb(ri: RequestInfo, method: string, contentType: string | undefined): string {
  if (!ri.isResourceRequest) return method;
  if (ri.verb === 'list' || ri.verb === 'watch' || ri.verb === 'get') return ri.verb.toUpperCase();
  if (method === 'PATCH' && contentType?.startsWith('application/apply-patch')) return 'APPLY';
  if (ri.subresource === 'exec' || ri.subresource === 'attach' || ri.subresource === 'portforward' || ri.subresource === 'proxy') return 'CONNECT';
  return method;
}

function scopeOf(ri: RequestInfo): string {
  if (!ri.isResourceRequest) return '';
  if (ri.name) return 'resource';
  return ri.namespace ? 'namespace' : 'cluster';
}

export interface ApiServerMetricsOptions {
  /** Read when scraped (the metrics exist before the datastore is open). */
  store: () => Store | undefined;
  kinds: () => KindInfo[];
  /** The served kind of a request, if any: labels name only served resources (bounded cardinality). */
  lookup?: (group: string, version: string, resource: string) => KindInfo | undefined;
}

export class ApiServerMetrics {
  readonly registry = new Registry();
  private readonly requests = counter(this.registry, 'apiserver_request_total',
    'Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.', [...REQUEST_LABELS, 'code']);
  private readonly durations = histogram(this.registry, 'apiserver_request_duration_seconds',
    'Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.', REQUEST_LABELS, REQUEST_BUCKETS);
  private readonly inflight = gauge(this.registry, 'apiserver_current_inflight_requests',
    'Maximal number of currently used inflight request limit of this apiserver per request kind in last second.', ['request_kind']);
  private readonly longRunning = gauge(this.registry, 'apiserver_longrunning_requests',
    'Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, scope and component. Not all requests are tracked this way.', ['verb', 'group', 'version', 'resource', 'subresource', 'scope', 'component']);
  private readonly storage = histogram(this.registry, 'etcd_request_duration_seconds',
    'Etcd request latency in seconds for each operation and object type.', ['operation', 'type'], STORAGE_BUCKETS);

  private readonly executing = gauge(this.registry, 'apiserver_flowcontrol_current_executing_requests',
    'Requests holding a seat now, by priority level.', ['priority_level']);
  private readonly inQueue = gauge(this.registry, 'apiserver_flowcontrol_current_inqueue_requests',
    'Requests waiting for a seat now, by priority level.', ['priority_level']);
  private readonly rejected = counter(this.registry, 'apiserver_flowcontrol_rejected_requests_total',
    'Requests answered 429 by flow control, by priority level and reason (queue-full, time-out, cancelled).', ['priority_level', 'reason']);
  /** What the in-flight limiter reports (kube-apiserver's priority-and-fairness metric names). */
  readonly flowControl: FlowControlObserver = {
    executing: (level, delta) => this.executing.labels(level).inc(delta),
    inQueue: (level, delta) => this.inQueue.labels(level).inc(delta),
    rejected: (level, reason) => this.rejected.labels(level, reason).inc(),
  };

  private readonly lookup?: ApiServerMetricsOptions['lookup'];

  constructor(opts: ApiServerMetricsOptions) {
    this.lookup = opts.lookup;
    collectProcessMetrics(this.registry);
    this.inflight.labels('readOnly').set(0);
    this.inflight.labels('mutating').set(0);
    const { store, kinds } = opts;
    // Counted when scraped, from the watch cache (no datastore read).
    new Gauge({
      name: 'apiserver_storage_objects', help: 'Number of stored objects at the time of last check split by kind.',
      labelNames: ['resource'], registers: [this.registry],
      collect(this: Gauge<string>) {
        const seen = new Set<string>();
        const st = store();
        if (!st) return;
        for (const k of kinds()) {
          const s = storageResource(k);
          const prefix = `/${s.group || 'core'}/${s.resource}/`;
          if (seen.has(prefix)) continue;
          seen.add(prefix);
          const r = st.list(prefix, { limit: 1 });
          this.labels(s.group ? `${s.resource}.${s.group}` : s.resource).set(r.items.length + (r.remaining ?? 0));
        }
      },
    });
  }

  /** For the storage wrapper: one datastore call took `seconds`. */
  observeStorage = (operation: string, key: string, seconds: number): void => {
    const parts = key.split('/');   // ['', group, resource, ...]
    const type = parts.length > 2 ? (parts[1] === 'core' ? parts[2] : `${parts[2]}.${parts[1]}`) : '';
    this.storage.labels(operation, type).observe(seconds);
  };

  /** A request arrived: counted in flight, and in the totals and latencies once it is answered. */
  begin(req: IncomingMessage, res: ServerResponse): void {
    const t0 = performance.now();
    const method = req.method ?? 'GET';
    let ri: RequestInfo;
    let query: URLSearchParams;
    try {
      ({ info: ri, target: { searchParams: query } } = parsedRequest(req));
    } catch {
      return;   // a malformed target is answered (and not counted) by the request path
    }
    // A client can send any path: only served resources and subresources become label values.
    if (ri.isResourceRequest && this.lookup) {
      const info = this.lookup(ri.group, ri.version, ri.resource);
      if (!info) ri = { ...ri, group: '', version: '', resource: '', subresource: '' };
      else if (ri.subresource && !info.subresources?.includes(ri.subresource as never)) ri = { ...ri, subresource: '' };
    }
    const dryRun = query.getAll('dryRun').includes('All') ? 'All' : '';
    const labels = [reportedVerb(ri, method, req.headers['content-type']), dryRun, ri.group, ri.version, ri.resource, ri.subresource, scopeOf(ri), 'apiserver'];
    const long = LONG_RUNNING.has(ri.verb) || LONG_RUNNING.has(ri.subresource);
    const kind = method === 'GET' || method === 'HEAD' ? 'readOnly' : 'mutating';
    if (long) this.longRunning.labels(labels[0], ri.group, ri.version, ri.resource, ri.subresource, labels[6], 'apiserver').inc();
    else this.inflight.labels(kind).inc();
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      if (long) this.longRunning.labels(labels[0], ri.group, ri.version, ri.resource, ri.subresource, labels[6], 'apiserver').dec();
      else this.inflight.labels(kind).dec();
      this.requests.labels(...labels, String(res.statusCode)).inc();
      this.durations.labels(...labels).observe((performance.now() - t0) / 1000);
    };
    res.once('finish', finish);
    res.once('close', finish);
  }

  /** `GET /metrics` in Prometheus' text format. */
  async serve(res: ServerResponse): Promise<void> {
    sendRaw(res, 200, await this.registry.metrics(), this.registry.contentType);
  }
}
