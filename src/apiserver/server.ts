// The HTTPS front door: health and CA endpoints, authentication, discovery and OpenAPI, then
// authorization and the resource handlers. Every failure leaves as a Kubernetes Status.
import http from 'node:http';
import https from 'node:https';
import { constants } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestInfo } from './request-info.js';
import { ApiError, errors } from '../api/status.js';
import { negotiate, sendError, sendJson, sendRaw } from './http.js';
import { Discovery, aggregatedContentType, wantsAggregated } from './discovery.js';
import { handleResource } from './handlers/resources.js';
import type { ApiContext } from './context.js';
import type { UserInfo } from './authn.js';
import { VERSION } from '../version.js';
import { impersonate } from './impersonation.js';
import { OpenApiV2, serveOpenApiV2 } from './openapi-v2.js';
import { logger } from '../util/log.js';
import { serveHealth, type HealthEndpoint } from './health.js';
import type { Auditor } from './audit/index.js';
import type { ApiServerMetrics } from './prometheus.js';
import { alpnWithoutPooledCopies, answerClientError, applyConnectionLimits, connectionLimits, InflightLimiter, priorityLevel, serverTimeoutOptions, type ConnectionLimits } from './connection-limits.js';
import { checkPathSegmentNames, parsedRequest } from './request-target.js';
import type { Aggregator } from './aggregation/index.js';

const log = logger('apiserver');

export interface ApiServerOptions {
  cert: string;
  key: string;
  clientCa: string;
  /** Extra non-resource routes mounted by other components (e.g. the agent tunnel). */
  extraRoutes?: (req: IncomingMessage, res: ServerResponse, user: UserInfo | null) => boolean | Promise<boolean>;
  /** Audit logging (--audit-log-path / --audit-policy-file). */
  audit?: Auditor;
  /** Prometheus metrics: counted for every request, served at /metrics. */
  metrics?: ApiServerMetrics;
  /**
   * `<resource>/<name>/proxy/...` of kinds other components serve (fleet Clusters), called after the
   * caller was authorized on the subresource; returns false to fall through to the usual handling.
   */
  proxySubresource?: (ri: RequestInfo, req: IncomingMessage, res: ServerResponse, user: UserInfo) => Promise<boolean>;
  /**
   * TLS is run in front of this server (server/tls-front.ts), which accepts its connections: the
   * server is plain HTTP, never listens itself, and gets each connection already authenticated by
   * the TLS layer (cert, key and clientCa are then the front's to use).
   */
  behindFront?: boolean;
  /** Timeouts and per-client limits (default: connectionLimits(), which reads SKIFF_CONNECTION_LIMITS). */
  limits?: ConnectionLimits;
  /** API aggregation: group versions an APIService sends to a Service (and their discovery). */
  aggregator?: Pick<Aggregator, 'match' | 'proxy' | 'discovery' | 'openApiPaths' | 'serveOpenApi'>;
}

/**
 * OpenSSL options of the API server's TLS, also when its certificate is reloaded (cert-renewal.ts):
 * no stateless session tickets. OpenSSL sends two per TLS 1.3 handshake, each the session (client
 * certificate included) encoded, decoded and encoded again, then encrypted: 29 % of accepting a
 * connection (bench/tls-handshake.ts), and no client resumes with them (client-go and kubectl keep
 * no session cache, nor do skiff's own clients). With SSL_OP_NO_TICKET a ticket is a bare session
 * id that nothing stores, so a resumption attempt simply gets a full handshake.
 */
export const SERVER_TLS_SECURE_OPTIONS = constants.SSL_OP_NO_TICKET;

/** Paths served without credentials (health checks and the CA that joining nodes pin). */
const PUBLIC_PATHS = new Set(['/cacerts', '/ping', '/healthz', '/livez', '/readyz']);

export function createApiServer(ctx: ApiContext, opts: ApiServerOptions): https.Server | http.Server {
  const discovery = new Discovery(ctx.registry, opts.aggregator?.discovery);
  const openapiV2 = new OpenApiV2(ctx.openapi);
  const limits = opts.limits ?? connectionLimits();
  const inflight = new InflightLimiter(limits.maxInflightPerUser, limits, opts.metrics?.flowControl);
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    opts.audit?.begin(req, res);
    opts.metrics?.begin(req, res);
    handle(ctx, discovery, openapiV2, opts, inflight, req, res).catch((err) => {
      if (!(err instanceof ApiError)) { opts.audit?.panic(req, err); log.error({ err, method: req.method, url: req.url }, 'request failed'); }
      sendError(res, err);
    });
  };
  // Kubernetes serves HTTP/1.1 and h2; Node's https module speaks 1.1, which every client accepts.
  const server = opts.behindFront
    ? http.createServer(serverTimeoutOptions(limits), onRequest)
    : https.createServer({
      cert: opts.cert, key: opts.key, ca: opts.clientCa,
      requestCert: true, rejectUnauthorized: false,
      secureOptions: SERVER_TLS_SECURE_OPTIONS,
      ...serverTimeoutOptions(limits),
    }, onRequest);
  applyConnectionLimits(server, limits, { behindFront: opts.behindFront });
  if (server instanceof https.Server) {
    alpnWithoutPooledCopies(server);
    server.on('tlsClientError', (err) => log.debug({ err: err.message }, 'TLS handshake failed'));
  }
  server.on('clientError', (err, socket) => {
    answerClientError(err, socket);
    log.debug({ err: err.message }, 'client error');
  });
  // Bookmarks to every watcher that asked for them, once a minute (Kubernetes' cadence).
  const bookmarkTimer = setInterval(() => {
    const rev = ctx.store.revision();
    for (const w of ctx.bookmarks) w.send(rev);
  }, 60_000);
  bookmarkTimer.unref();
  // And sooner to a watcher about to fall behind what the rings (or a restart's rings) can replay.
  // With 5,000 nodes and pods churning, the pods ring held 12 s of events, less than the minute
  // between bookmarks: after a restart 3,500 of 5,000 nodes' pod watches were too old to resume and
  // listed again. A watcher gets one of these about once per ring's worth of its resource's events.
  const resumeTimer = setInterval(() => sendResumeBookmarks(ctx), RESUME_CHECK_MS);
  resumeTimer.unref();
  server.on('close', () => { clearInterval(bookmarkTimer); clearInterval(resumeTimer); });
  return server;
}

/** How often the watchers' positions are checked against what their rings can replay. */
const RESUME_CHECK_MS = 2000;

/** A bookmark (the current revision) to each watcher whose client knows only a revision near or past the replayable floor. */
export function sendResumeBookmarks(ctx: ApiContext): number {
  if (ctx.bookmarks.size === 0) return 0;
  const rev = ctx.store.revision();
  const floors = new Map<string, number>();
  let sent = 0;
  for (const w of ctx.bookmarks) {
    let floor = floors.get(w.prefix);
    if (floor === undefined) floors.set(w.prefix, floor = ctx.store.resumeFloor(w.prefix));
    if (w.lastRevision < floor && w.lastRevision < rev) { w.send(rev); sent++; }
  }
  return sent;
}

async function handle(ctx: ApiContext, discovery: Discovery, openapiV2: OpenApiV2, opts: ApiServerOptions, inflight: InflightLimiter,
  req: IncomingMessage, res: ServerResponse): Promise<void> {
  // The raw target, never a WHATWG URL: that would resolve `..` and `%2e%2e` segments (a DELETE of
  // a ConfigMap named `..` became a DELETE of its namespace).
  const { target: url, info: ri } = parsedRequest(req);
  const path = url.pathname;
  const method = req.method ?? 'GET';

  if (PUBLIC_PATHS.has(path) || path.startsWith('/livez/') || path.startsWith('/readyz/') || path.startsWith('/healthz/')) {
    return servePublic(ctx, path, url, res);
  }
  const authenticated = await ctx.authn.authenticate(req);
  if (opts.extraRoutes && await opts.extraRoutes(req, res, authenticated)) return;
  if (!authenticated) throw errors.unauthorized();
  const user = impersonate(req, authenticated, ctx.authz);

  opts.audit?.identify(req, authenticated, user, ri);
  if (ri.isResourceRequest) checkPathSegmentNames(ri);
  // Long-running requests (watches, streams, proxies) hold no slot: they are bounded by connections.
  // A short one waits for a seat of its priority level (429 past the queue's bounds).
  const leave = isLongRunning(ri) ? undefined : await inflight.admit(res, user.name, priorityLevel(user, ri));
  try {
    await route(ctx, discovery, openapiV2, opts, ri, path, url, user, method, req, res);
  } finally {
    leave?.();
  }
}

const LONG_RUNNING_SUBRESOURCES = new Set(['exec', 'attach', 'portforward', 'proxy', 'log']);

function isLongRunning(ri: RequestInfo): boolean {
  return ri.verb === 'watch' || LONG_RUNNING_SUBRESOURCES.has(ri.subresource) || ri.resource === 'proxy';
}

async function route(ctx: ApiContext, discovery: Discovery, openapiV2: OpenApiV2, opts: ApiServerOptions, ri: RequestInfo, path: string, url: { searchParams: URLSearchParams },
  user: UserInfo, method: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  // An aggregated group version: authenticated and authorized here as any request (the backend
  // authorizes again, through SubjectAccessReviews), then proxied.
  const aggregated = opts.aggregator?.match(path);
  if (aggregated) {
    authorize(ctx, ri, user, method);
    return opts.aggregator!.proxy(aggregated, req, res, user, isLongRunning(ri));
  }
  if (!ri.isResourceRequest) {
    authorize(ctx, ri, user, method);
    if (path === '/metrics' && opts.metrics && (method === 'GET' || method === 'HEAD')) return opts.metrics.serve(res);
    if (opts.aggregator && path.startsWith('/openapi/v3') && (method === 'GET' || method === 'HEAD')) {
      // Aggregated group versions' OpenAPI comes from their backends, listed in the same index.
      if (path === '/openapi/v3') {
        const remote = opts.aggregator.openApiPaths();
        if (Object.keys(remote).length) return sendJson(res, 200, { paths: { ...ctx.openapi.index().paths, ...remote } });
      } else if (await opts.aggregator.serveOpenApi(path, res)) {
        return;
      }
    }
    return serveNonResource(ctx, discovery, openapiV2, ri, path, url, req, res);
  }
  const info = ctx.registry.lookup(ri.group, ri.version, ri.resource);
  if (!info) throw errors.notFoundPath();
  authorize(ctx, ri, user, method);
  if (ri.subresource === 'proxy' && ri.name && opts.proxySubresource && await opts.proxySubresource(ri, req, res, user)) return;
  const started = Date.now();
  await handleResource(ctx, req, res, ri, info, url.searchParams, negotiate(req.headers.accept), user);
  if (ri.verb !== 'watch') log.trace({ verb: ri.verb, resource: ri.resource, ns: ri.namespace, name: ri.name, ms: Date.now() - started, user: user.name }, 'request');
}

function authorize(ctx: ApiContext, ri: RequestInfo, user: UserInfo, method: string): void {
  const d = ctx.authz.authorize(ri.isResourceRequest ? {
    user, verb: ri.verb, apiGroup: ri.group, resource: ri.resource, subresource: ri.subresource || undefined,
    namespace: ri.namespace || undefined, name: ri.name || ri.selectedName || undefined, path: ri.path, resourceRequest: true,
  } : {
    user, verb: method.toLowerCase(), apiGroup: '', resource: '', path: ri.path, resourceRequest: false,
  });
  if (d.allowed) return;
  if (!ri.isResourceRequest) {
    throw new ApiError(403, 'Forbidden', `forbidden: User "${user.name}" cannot ${method.toLowerCase()} path "${ri.path}"`);
  }
  throw errors.forbidden(user.name, ri.verb, ri.resource, ri.group, ri.namespace || undefined, ri.name || undefined, ri.subresource || undefined);
}

async function servePublic(ctx: ApiContext, path: string, url: { searchParams: URLSearchParams }, res: ServerResponse): Promise<void> {
  if (path === '/cacerts') return sendRaw(res, 200, ctx.caBundlePem, 'text/plain');
  if (path === '/ping') return sendRaw(res, 200, 'pong', 'text/plain');
  const m = /^\/(healthz|livez|readyz)(?:\/(.+))?$/.exec(path);
  if (!m) throw errors.notFoundPath();
  const endpoint = m[1] as HealthEndpoint;
  return serveHealth(res, endpoint, ctx.health[endpoint], m[2] ?? '', url.searchParams);
}

function serveNonResource(ctx: ApiContext, discovery: Discovery, openapiV2: OpenApiV2, ri: RequestInfo, path: string, url: { searchParams: URLSearchParams },
  req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') throw errors.methodNotAllowed(req.method ?? '');
  const accept = req.headers.accept;
  if (path === '/version') return sendJson(res, 200, VERSION);
  if (path === '/api') {
    const agg = wantsAggregated(accept);
    if (agg) return sendRaw(res, 200, discovery.aggregated('api', agg), aggregatedContentType(agg), { Vary: 'Accept' });
    return sendRaw(res, 200, discovery.apiVersions(), 'application/json', { Vary: 'Accept' });
  }
  if (path === '/apis') {
    const agg = wantsAggregated(accept);
    if (agg) return sendRaw(res, 200, discovery.aggregated('apis', agg), aggregatedContentType(agg), { Vary: 'Accept' });
    return sendRaw(res, 200, discovery.apiGroupList(), 'application/json', { Vary: 'Accept' });
  }
  if (ri.apiPrefix === 'api' && path === `/api/${ri.version}`) {
    const rl = discovery.resourceList('', ri.version);
    if (rl) return sendRaw(res, 200, rl, 'application/json');
  }
  if (ri.apiPrefix === 'apis') {
    if (path === `/apis/${ri.group}`) {
      const g = discovery.apiGroup(ri.group);
      if (g) return sendRaw(res, 200, g, 'application/json');
    } else if (path === `/apis/${ri.group}/${ri.version}`) {
      const rl = discovery.resourceList(ri.group, ri.version);
      if (rl) return sendRaw(res, 200, rl, 'application/json');
    }
  }
  if (path === '/openapi/v2') return serveOpenApiV2(openapiV2, req, res);
  if (path === '/openapi/v3') return sendJson(res, 200, ctx.openapi.index());
  if (path.startsWith('/openapi/v3/')) {
    const doc = ctx.openapi.get(path.slice('/openapi/v3/'.length));
    if (doc) {
      return sendRaw(res, 200, doc.json, 'application/json', {
        ETag: `"${doc.hash}"`,
        'Cache-Control': url.searchParams.has('hash') ? 'public, immutable' : 'no-cache, private',
      });
    }
  }
  throw errors.notFoundPath();
}
