// The ApiClient over HTTPS, for agents and hollow nodes (and any loop run outside the server):
// JSON bodies, one keep-alive connection pool per client, client-certificate or bearer-token
// credentials. Failures the server answers with a Status become ApiErrors with the same code,
// reason and message; transport failures (refused, reset, timed out) reject with Node's own errors,
// which callers treat as "try again later".
import https from 'node:https';
import { createSecureContext } from 'node:tls';
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import type { KObject } from '../api/object.js';
import { ApiError, type StatusDetails } from '../api/status.js';
import type {
  ApiClient, ClientWatchEvent, DeleteOptions, ListOptions, ListResult, PatchOptions, PatchType, ResourceRef,
  ServedResource, WatchHandle, WatchOptions, WriteOptions,
} from './types.js';
import { Resources } from './types.js';
import type { Reachability } from './reachability.js';

export interface HttpClientOptions {
  /** e.g. https://127.0.0.1:6443 */
  server: string;
  caPem: string;
  certPem?: string;
  keyPem?: string;
  token?: string;
  /** Its first word is the default field manager the server records (as for client-go programs). */
  userAgent?: string;
  /** For every request but watches (default 30 s). */
  timeoutMs?: number;
  /**
   * A new connection's TCP connect, for requests and watches (default 30 s, as client-go's dialer).
   * Past it the attempt is dropped, and the caller's retry dials afresh: a SYN dropped by a server's
   * full accept queue is otherwise retried by the kernel with a doubling backoff, for up to two
   * minutes. The TLS handshake is not limited by it: a connection the kernel took waits in the accept
   * queue, and giving it up would waste the server's handshake on it when its turn comes.
   */
  connectTimeoutMs?: number;
  /** Requests in flight at once, watches apart (default 8); more wait for a free connection. */
  maxConnections?: number;
  /**
   * Request connections kept open while idle, for up to 30 s (default 2). Past it, a connection is
   * closed as its request ends, and the next busy moment pays a TLS handshake on both ends for each
   * new one. A node's client keeps few: 5,000 nodes each keeping 8 would hold 40,000 connections
   * open on the server after a burst. A client busy with many requests at once keeps as many as it
   * uses (client-go keeps up to 25 idle per host).
   */
  idleConnections?: number;
  /** Shared with other clients of the same server: after a refused dial, attempts fail without dialling until it listens again. */
  reachability?: Reachability;
}

const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  json: 'application/json-patch+json',
  // JSON is YAML, so the apply body needs no YAML encoder.
  apply: 'application/apply-patch+yaml',
};

/** Reasons Kubernetes gives each code, for replies that carry no Status (e.g. from a proxy). */
const REASONS: Record<number, string> = {
  400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 405: 'MethodNotAllowed',
  409: 'Conflict', 410: 'Expired', 415: 'UnsupportedMediaType', 422: 'Invalid', 429: 'TooManyRequests',
  500: 'InternalError', 503: 'ServiceUnavailable', 504: 'Timeout',
};

// The YAML parser (about 1.5 MB of a process's memory) is loaded only to read a kubeconfig: a node
// agent builds its client from join credentials and never needs it.
const requireOnDemand = createRequire(import.meta.url);

/** Silence on a watch for this long past its own timeout means the connection is dead. */
const WATCH_IDLE_GRACE_MS = 30_000;

interface Reply { status: number; body: string; what: string }

export class HttpClient implements ApiClient {
  private agent: https.Agent;
  private watchAgent: https.Agent;
  /** Pools replaced by useCredentials: their open connections finish, close() ends them. */
  private readonly retired: https.Agent[] = [];
  private readonly maxConnections: number;
  private readonly idleConnections: number;
  private readonly base: URL;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly reachability?: Reachability;

  constructor(opts: HttpClientOptions) {
    this.base = new URL(opts.server);
    if (this.base.protocol !== 'https:') throw new Error(`server must be an https URL: ${opts.server}`);
    // One TLS context for every connection: given only ca/cert/key, Node would parse them into a new
    // one per connection.
    this.maxConnections = opts.maxConnections ?? 8;
    this.idleConnections = Math.min(opts.idleConnections ?? 2, this.maxConnections);
    [this.agent, this.watchAgent] = this.pools(opts);
    this.headers = { accept: 'application/json', 'user-agent': opts.userAgent ?? 'skiff' };
    if (opts.token) this.headers.authorization = `Bearer ${opts.token}`;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 30_000;
    this.reachability = opts.reachability;
  }

  /** Destroys `req` if the new connection it got is not connected (TCP) in time. */
  private limitConnect(req: ClientRequest, what: string): void {
    req.once('socket', (socket: Socket) => {
      if (!socket.connecting) return;   // a kept-alive connection
      const timer = setTimeout(() => req.destroy(new Error(`${what}: not connected within ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs);
      const done = () => clearTimeout(timer);
      socket.once('connect', done);
      socket.once('close', done);
    });
  }

  /** A transport error: a refused dial is remembered for the other clients sharing the reachability. */
  private noteTransportError(err: Error): void {
    if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED') this.reachability?.refused();
  }

  private pools(opts: Pick<HttpClientOptions, 'caPem' | 'certPem' | 'keyPem'>): [https.Agent, https.Agent] {
    const secureContext = createSecureContext({ ca: opts.caPem, cert: opts.certPem, key: opts.keyPem });
    // Unbounded, a burst of status writes (100 pods starting on a node) opened 37 TLS connections that
    // then idled in the pool, on both ends; a few serve the same burst as fast, since the server
    // answers in milliseconds. Idle ones are closed after 30 s, before the server's keep-alive
    // timeout (90 s) could close one under a request being sent on it.
    // No TLS session cache (maxCachedSessions 0), as client-go keeps none: connections live long, and
    // after a server restart every cached session is one the new server cannot resume, yet applying
    // it to each new socket decoded it again (12 % of a hollow process's CPU while 1,000 nodes
    // reconnected, docs/scale.md).
    const kept = { keepAlive: true, timeout: 30_000, secureContext, maxCachedSessions: 0 };
    const agent = new https.Agent({ ...kept, maxSockets: this.maxConnections, maxFreeSockets: this.idleConnections });
    // Watches hold their connection for minutes, so they must not take the requests' places. A watch
    // the server ends (its timeout) leaves its connection to the next one, which an informer starts
    // at once: 5,000 nodes renewing their pod watches every few minutes made 17 TLS handshakes a
    // second on the server otherwise.
    return [agent, new https.Agent({ ...kept, maxFreeSockets: 2 })];
  }

  /**
   * New TLS credentials (a renewed client certificate, a rotated CA bundle) for every new connection;
   * requests and watches under way finish on the connections they have.
   */
  useCredentials(c: Pick<HttpClientOptions, 'caPem' | 'certPem' | 'keyPem'>): void {
    this.retired.push(this.agent, this.watchAgent);
    [this.agent, this.watchAgent] = this.pools(c);
  }

  /** From a kubeconfig's current context (embedded `*-data` or file paths, relative to the file). */
  static fromKubeconfig(path: string, opts: Pick<HttpClientOptions, 'userAgent' | 'timeoutMs' | 'maxConnections' | 'idleConnections'> = {}): HttpClient {
    const { parse: parseYaml } = requireOnDemand('yaml') as typeof import('yaml');
    const kc = parseYaml(readFileSync(path, 'utf8')) as any;
    const ctxName = kc?.['current-context'] || kc?.contexts?.[0]?.name;
    const ctx = kc?.contexts?.find((c: any) => c.name === ctxName)?.context;
    const cluster = kc?.clusters?.find((c: any) => c.name === ctx?.cluster)?.cluster;
    const user = kc?.users?.find((u: any) => u.name === ctx?.user)?.user ?? {};
    if (!cluster?.server) throw new Error(`${path}: no cluster for the current context "${ctxName}"`);
    const base = dirname(path);
    const pem = (data: string | undefined, file: string | undefined): string | undefined =>
      data ? Buffer.from(data, 'base64').toString('utf8') : file ? readFileSync(resolve(base, file), 'utf8') : undefined;
    const caPem = pem(cluster['certificate-authority-data'], cluster['certificate-authority']);
    if (!caPem) throw new Error(`${path}: the cluster has no certificate authority`);
    return new HttpClient({
      ...opts,
      server: cluster.server,
      caPem,
      certPem: pem(user['client-certificate-data'], user['client-certificate']),
      keyPem: pem(user['client-key-data'], user['client-key']),
      token: user.token ?? (user.tokenFile ? readFileSync(resolve(base, user.tokenFile), 'utf8').trim() : undefined),
    });
  }

  async get<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, name: string): Promise<T | undefined> {
    const r = await this.send('GET', objectPath(ref, ns, name));
    if (r.status === 404) return undefined;
    return decode<T>(r);
  }

  async list<T extends KObject = KObject>(ref: ResourceRef, ns?: string, opts: ListOptions = {}): Promise<ListResult<T>> {
    const q = new URLSearchParams();
    if (opts.labelSelector) q.set('labelSelector', opts.labelSelector);
    if (opts.fieldSelector) q.set('fieldSelector', opts.fieldSelector);
    if (opts.limit) q.set('limit', String(opts.limit));
    if (opts.continue) q.set('continue', opts.continue);
    const list = decode<any>(await this.send('GET', collectionPath(ref, ns), q));
    const out: ListResult<T> = { items: list.items ?? [], resourceVersion: String(list.metadata?.resourceVersion ?? '') };
    if (list.metadata?.continue) out.continue = list.metadata.continue;
    return out;
  }

  watch<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, resourceVersion: string | undefined,
    onEvent: (e: ClientWatchEvent<T>) => void, opts: WatchOptions = {}): WatchHandle {
    const q = new URLSearchParams({ watch: 'true', allowWatchBookmarks: 'true' });
    if (resourceVersion) q.set('resourceVersion', resourceVersion);
    if (opts.labelSelector) q.set('labelSelector', opts.labelSelector);
    if (opts.fieldSelector) q.set('fieldSelector', opts.fieldSelector);
    // As client-go: 5 to 10 minutes, spread so that many watchers don't all come back at once.
    const timeoutSeconds = opts.timeoutSeconds ?? 300 + Math.floor(Math.random() * 300);
    q.set('timeoutSeconds', String(timeoutSeconds));
    const path = `${collectionPath(ref, ns)}?${q}`;

    const refusal = this.reachability?.refusal();
    if (refusal) return { stop: () => {}, done: Promise.resolve(refusal) };
    let ended = false;
    let finish!: (err: Error | undefined) => void;
    const done = new Promise<Error | undefined>((res) => { finish = (err) => { if (!ended) { ended = true; res(err); } }; });
    const req = https.request(this.url(path), { method: 'GET', agent: this.watchAgent, headers: this.headers });
    const end = (err: Error | undefined) => { finish(err); req.destroy(); };
    this.limitConnect(req, `watch ${path}`);
    req.setTimeout(timeoutSeconds * 1000 + WATCH_IDLE_GRACE_MS, () => end(new Error(`watch ${path}: no data for ${timeoutSeconds + WATCH_IDLE_GRACE_MS / 1000} s`)));
    req.on('error', (err) => { this.noteTransportError(err); end(err); });
    req.on('response', (res: IncomingMessage) => {
      res.setEncoding('utf8');
      if (res.statusCode !== 200) {
        let text = '';
        res.on('data', (c: string) => { text += c; });
        res.on('end', () => end(replyError({ status: res.statusCode ?? 0, body: text, what: `watch ${path}` })));
        res.on('error', (err) => end(err));
        return;
      }
      let buf = '';
      res.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while (!ended && (nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line === '') continue;
          let e: { type: string; object: any };
          try {
            e = JSON.parse(line);
          } catch {
            end(new Error(`watch ${path}: undecodable event: ${line.slice(0, 200)}`));
            return;
          }
          if (e.type === 'ERROR') { end(statusError(e.object, 500)); return; }
          try {
            onEvent(e as ClientWatchEvent<T>);
          } catch (err) {
            end(err instanceof Error ? err : new Error(String(err)));
            return;
          }
        }
      });
      res.on('error', (err) => end(err));
      // A stream that closes before its end (server killed, connection reset) is a failure; a
      // complete one is the server ending the watch, after which the caller resumes.
      res.on('close', () => end(res.complete ? undefined : new Error(`watch ${path}: connection lost`)));
    });
    req.end();
    return { stop: () => end(undefined), done };
  }

  async create<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, body: KObject, opts: WriteOptions = {}): Promise<T> {
    return decode<T>(await this.send('POST', collectionPath(ref, ns), writeQuery(opts), body));
  }

  async update<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, body: KObject, opts: WriteOptions = {}): Promise<T> {
    return decode<T>(await this.send('PUT', objectPath(ref, ns, nameOf(body)), writeQuery(opts), body));
  }

  async updateStatus<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, body: KObject, opts: WriteOptions = {}): Promise<T> {
    return decode<T>(await this.send('PUT', `${objectPath(ref, ns, nameOf(body))}/status`, writeQuery(opts), body));
  }

  async patch<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, name: string, type: PatchType,
    body: unknown, opts: PatchOptions = {}): Promise<T> {
    const q = writeQuery(opts);
    if (opts.force !== undefined) q.set('force', String(opts.force));
    const path = objectPath(ref, ns, name) + (opts.subresource ? `/${opts.subresource}` : '');
    return decode<T>(await this.send('PATCH', path, q, body, PATCH_CONTENT_TYPES[type]));
  }

  async delete<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, name: string, opts: DeleteOptions = {}): Promise<T> {
    const body: Record<string, unknown> = { kind: 'DeleteOptions', apiVersion: 'v1' };
    if (opts.propagationPolicy) body.propagationPolicy = opts.propagationPolicy;
    if (opts.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = opts.gracePeriodSeconds;
    if (opts.preconditions) body.preconditions = opts.preconditions;
    if (opts.dryRun) body.dryRun = ['All'];
    return decode<T>(await this.send('DELETE', objectPath(ref, ns, name), undefined, body));
  }

  async bind(ns: string, pod: string, node: string): Promise<void> {
    const body = { apiVersion: 'v1', kind: 'Binding', metadata: { name: pod, namespace: ns }, target: { apiVersion: 'v1', kind: 'Node', name: node } };
    decode(await this.send('POST', `${objectPath(Resources.pods, ns, pod)}/binding`, undefined, body));
  }

  async evict(ns: string, pod: string, opts: DeleteOptions = {}): Promise<void> {
    const body = { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: pod, namespace: ns }, deleteOptions: opts };
    decode(await this.send('POST', `${objectPath(Resources.pods, ns, pod)}/eviction`, undefined, body));
  }

  async finalizeNamespace<T extends KObject = KObject>(body: KObject, opts: WriteOptions = {}): Promise<T> {
    return decode<T>(await this.send('PUT', `${objectPath(Resources.namespaces, undefined, nameOf(body))}/finalize`, writeQuery(opts), body));
  }

  async preferredResources(): Promise<ServedResource[]> {
    const core = decode<{ versions?: string[] }>(await this.send('GET', '/api'));
    const groups = decode<{ groups?: { name: string; versions?: { version: string }[]; preferredVersion?: { version: string } }[] }>(await this.send('GET', '/apis'));
    const versions: { group: string; version: string }[] = (core.versions ?? []).map((version) => ({ group: '', version }));
    for (const g of groups.groups ?? []) {
      const all = (g.versions ?? []).map((v) => v.version);
      const preferred = g.preferredVersion?.version;
      for (const version of preferred ? [preferred, ...all.filter((v) => v !== preferred)] : all) versions.push({ group: g.name, version });
    }
    const lists = await Promise.all(versions.map(async ({ group, version }) => {
      const r = await this.send('GET', group ? `/apis/${group}/${version}` : `/api/${version}`);
      // A version gone between the two reads (a CRD deleted) has nothing to offer.
      if (r.status === 404) return { group, version, resources: [] };
      return { group, version, resources: decode<{ resources?: any[] }>(r).resources ?? [] };
    }));
    const out: ServedResource[] = [];
    const seen = new Set<string>();
    for (const { group, version, resources } of lists) {
      for (const r of resources) {
        const name = String(r.name ?? '');
        if (!name || name.includes('/') || seen.has(`${group}/${name}`)) continue;
        seen.add(`${group}/${name}`);
        out.push({ group, version, resource: name, kind: String(r.kind ?? ''), namespaced: r.namespaced === true, verbs: r.verbs ?? [] });
      }
    }
    return out;
  }

  close(): void {
    this.agent.destroy();
    this.watchAgent.destroy();
    for (const a of this.retired.splice(0)) a.destroy();
  }

  private url(pathAndQuery: string): URL {
    return new URL(this.base.pathname.replace(/\/$/, '') + pathAndQuery, this.base);
  }

  private send(method: string, path: string, q?: URLSearchParams, body?: unknown, contentType = 'application/json'): Promise<Reply> {
    const qs = q && [...q.keys()].length ? `?${q}` : '';
    const headers = { ...this.headers };
    let payload: Buffer | undefined;
    if (body !== undefined) {
      payload = Buffer.from(JSON.stringify(body));
      headers['content-type'] = contentType;
      headers['content-length'] = String(payload.length);
    }
    const refusal = this.reachability?.refusal();
    if (refusal) return Promise.reject(refusal);
    return new Promise<Reply>((resolveReply, reject) => {
      const req = https.request(this.url(path + qs), { method, agent: this.agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolveReply({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), what: `${method} ${path}` }));
        res.on('error', reject);
      });
      this.limitConnect(req, `${method} ${path}`);
      req.setTimeout(this.timeoutMs, () => req.destroy(new Error(`${method} ${path}: no answer within ${this.timeoutMs} ms`)));
      req.on('error', (err) => { this.noteTransportError(err); reject(err); });
      req.end(payload);
    });
  }
}

/** The reply's object, or the ApiError its status stands for. */
function decode<T>(r: Reply): T {
  if (r.status < 200 || r.status > 299) throw replyError(r);
  try {
    return JSON.parse(r.body) as T;
  } catch {
    throw new ApiError(500, 'InternalError', `${r.what}: undecodable reply: ${r.body.slice(0, 200)}`);
  }
}

function collectionPath(ref: ResourceRef, ns: string | undefined): string {
  const base = ref.group ? `/apis/${ref.group}/${ref.version}` : `/api/${ref.version}`;
  return ns ? `${base}/namespaces/${encodeURIComponent(ns)}/${ref.resource}` : `${base}/${ref.resource}`;
}

function objectPath(ref: ResourceRef, ns: string | undefined, name: string): string {
  if (!name) throw new ApiError(400, 'BadRequest', 'resource name may not be empty');
  return `${collectionPath(ref, ns)}/${encodeURIComponent(name)}`;
}

function nameOf(body: KObject): string {
  return body.metadata?.name ?? '';
}

function writeQuery(opts: WriteOptions): URLSearchParams {
  const q = new URLSearchParams();
  if (opts.fieldManager) q.set('fieldManager', opts.fieldManager);
  if (opts.dryRun) q.set('dryRun', 'All');
  return q;
}

/** A Status object as the error it describes. */
function statusError(s: any, fallbackCode: number): ApiError {
  const code = typeof s?.code === 'number' ? s.code : fallbackCode;
  return new ApiError(code, s?.reason ?? REASONS[code] ?? 'Unknown', s?.message ?? `status ${code}`, s?.details as StatusDetails | undefined);
}

function replyError(r: Reply): ApiError {
  let parsed: any;
  try { parsed = JSON.parse(r.body); } catch { /* not JSON: described below */ }
  if (parsed?.kind === 'Status') return statusError(parsed, r.status);
  return new ApiError(r.status, REASONS[r.status] ?? 'Unknown', `${r.what}: ${r.status} ${r.body.slice(0, 200).trim()}`);
}
