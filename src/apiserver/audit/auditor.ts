// Audit events for every API request, in Kubernetes' audit.k8s.io/v1 Event format. The request path
// calls three hooks: `begin` when a request arrives (assigns the Audit-ID, also sent as the `Audit-Id`
// response header), `identify` once the user and request are known (the policy picks the level and
// RequestReceived is logged), and `panic` on an unexpected failure. ResponseStarted (watches) and
// ResponseComplete are logged from the response itself. Bodies are captured only at the levels that
// log them, so Secrets' data is never in an event at Metadata.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { UserInfo } from '../authn.js';
import { parseRequestInfo, type RequestInfo } from '../request-info.js';
import { evaluate, type AuditLevel, type AuditPolicy, type AuditStage } from './policy.js';
import type { AuditWriter } from './writer.js';
import { decodeObject, mediaType } from '../decode.js';
import { decodeProtobuf, PROTOBUF_CONTENT_TYPE } from '../protobuf/decode.js';

/** Bodies above this are not logged (Kubernetes refuses request bodies above 3 MiB anyway). */
const MAX_CAPTURE = 3 * 1024 * 1024;
const ANONYMOUS: UserInfo = { name: 'system:anonymous', groups: ['system:unauthenticated'] };

interface Pending {
  id: string;
  received: Date;
  req: IncomingMessage;
  res: ServerResponse;
  user?: UserInfo;
  impersonated?: UserInfo;
  ri?: RequestInfo;
  level?: AuditLevel;
  omit?: Set<AuditStage>;
  reqChunks?: Buffer[];
  resChunks?: Buffer[];
  captured: number;
  startedLogged?: boolean;
  done: boolean;
}

/** Kubernetes' MicroTime: RFC 3339 with microseconds. */
function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** A captured body as an object (JSON, YAML or protobuf as the request decoder reads them), if it is one. */
function decoded(chunks: Buffer[] | undefined, contentType: unknown): Record<string, any> | undefined {
  if (!chunks?.length) return undefined;
  const type = typeof contentType === 'string' ? contentType : undefined;
  try {
    const body = Buffer.concat(chunks);
    return mediaType(type) === PROTOBUF_CONTENT_TYPE ? decodeProtobuf(body).object as Record<string, any> : decodeObject(body, type);
  } catch {
    return undefined;
  }
}

export class Auditor {
  private readonly pending = new WeakMap<IncomingMessage, Pending>();

  constructor(private readonly policy: AuditPolicy, private readonly writer: AuditWriter) {}

  /** A request arrived: its Audit-ID is assigned and its response watched. */
  begin(req: IncomingMessage, res: ServerResponse): void {
    const p: Pending = { id: randomUUID(), received: new Date(), req, res, captured: 0, done: false };
    this.pending.set(req, p);
    res.setHeader('Audit-Id', p.id);
    // Request bodies are captured as they are read (the handler reads them), without changing the
    // stream's mode; kept only if the level turns out to log them.
    const emit = req.emit;
    req.emit = function (this: IncomingMessage, event: string | symbol, ...args: any[]) {
      if (event === 'data' && p.reqChunks && p.captured < MAX_CAPTURE) { p.reqChunks.push(args[0]); p.captured += args[0].length; }
      return emit.apply(this, [event, ...args] as any);
    } as typeof req.emit;
    const write = res.write;
    const end = res.end;
    const keep = (chunk: unknown) => {
      // Error bodies (small Status objects) are kept at every level for responseStatus's message.
      if (!p.resChunks && p.res.statusCode >= 400 && p.level && p.level !== 'None') p.resChunks = [];
      if (!p.resChunks || chunk === undefined || chunk === null || typeof chunk === 'function') return;
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
      if (p.captured + b.length <= MAX_CAPTURE * 2) { p.resChunks.push(b); p.captured += b.length; }
    };
    const self = this;
    // A watch's ResponseStarted is when its headers go out (its body may stay empty until it ends).
    const writeHead = res.writeHead;
    res.writeHead = function (this: ServerResponse, ...args: any[]) {
      const r = writeHead.apply(this, args as any);
      self.started(p);
      return r;
    } as typeof res.writeHead;
    res.write = function (this: ServerResponse, chunk: any, ...rest: any[]) {
      keep(chunk);
      return write.apply(this, [chunk, ...rest] as any);
    } as typeof res.write;
    res.end = function (this: ServerResponse, chunk?: any, ...rest: any[]) {
      keep(chunk);
      return end.apply(this, [chunk, ...rest] as any);
    } as typeof res.end;
    res.once('finish', () => this.complete(p));
    res.once('close', () => this.complete(p));
  }

  /** The user (after authentication and impersonation) and what the request is about are known. */
  identify(req: IncomingMessage, authenticated: UserInfo, user: UserInfo, ri: RequestInfo): void {
    const p = this.pending.get(req);
    if (!p || p.level) return;
    p.user = authenticated;
    if (user !== authenticated) p.impersonated = user;
    p.ri = ri;
    this.decide(p);
  }

  /** An unexpected failure in the handler (Kubernetes' Panic stage). */
  panic(req: IncomingMessage, err: unknown): void {
    const p = this.pending.get(req);
    if (!p) return;
    this.decide(p);
    // A panicked request ends with its Panic event (Kubernetes logs no ResponseComplete after it).
    p.done = true;
    if (p.level !== 'None' && !p.omit!.has('Panic')) {
      this.emit(p, 'Panic', { code: 500, message: `APIServer panic'd: ${err instanceof Error ? err.message : String(err)}` });
    }
  }

  private decide(p: Pending): void {
    if (p.level) return;
    const url = new URL(p.req.url ?? '/', 'https://x');
    p.ri ??= parseRequestInfo(p.req.method ?? 'GET', url.pathname, url.searchParams);
    const user = p.impersonated ?? p.user ?? ANONYMOUS;
    const ri = p.ri;
    const { level, omitStages } = evaluate(this.policy, {
      user, verb: ri.verb, resourceRequest: ri.isResourceRequest, path: ri.path, apiGroup: ri.group,
      resource: ri.resource, subresource: ri.subresource, namespace: ri.namespace, name: ri.name,
    });
    p.level = level;
    p.omit = omitStages;
    if (level === 'None') return;
    if (level === 'Request' || level === 'RequestResponse') p.reqChunks = [];
    if (level === 'RequestResponse' && ri.verb !== 'watch') p.resChunks = [];
    if (!omitStages.has('RequestReceived')) this.emit(p, 'RequestReceived');
  }

  private started(p: Pending): void {
    if (p.ri?.verb !== 'watch' || p.level === undefined || p.level === 'None' || p.omit!.has('ResponseStarted')) return;
    if (p.startedLogged) return;
    p.startedLogged = true;
    this.emit(p, 'ResponseStarted', { code: p.res.statusCode });
  }

  private complete(p: Pending): void {
    if (p.done) return;
    p.done = true;
    this.decide(p);
    if (p.level === 'None' || p.omit!.has('ResponseComplete')) return;
    const code = p.res.statusCode;
    const status: Record<string, unknown> = { code };
    if (code >= 400) {
      // Failures carry their Status's reason and message even when the body is not logged.
      const s = decoded(p.resChunks, p.res.getHeader('content-type'));
      if (s?.kind === 'Status') Object.assign(status, { status: s.status, message: s.message, reason: s.reason });
    }
    this.emit(p, 'ResponseComplete', status);
  }

  private emit(p: Pending, stage: AuditStage, responseStatus?: Record<string, unknown>): void {
    const ri = p.ri!;
    const level = p.level!;
    const user = p.user ?? ANONYMOUS;
    const requestObject = stage !== 'RequestReceived' && (level === 'Request' || level === 'RequestResponse') ? decoded(p.reqChunks, p.req.headers['content-type']) : undefined;
    const responseObject = stage === 'ResponseComplete' && level === 'RequestResponse' && ri.verb !== 'watch' ? decoded(p.resChunks, p.res.getHeader('content-type')) : undefined;
    let objectRef: Record<string, string> | undefined;
    if (ri.isResourceRequest) {
      const created = (requestObject ?? responseObject)?.metadata;
      objectRef = {
        resource: ri.resource,
        ...(ri.namespace ? { namespace: ri.namespace } : {}),
        ...(ri.name || (ri.verb === 'create' && created?.name) ? { name: ri.name || created.name } : {}),
        apiGroup: ri.group || undefined as unknown as string,
        apiVersion: ri.version,
        ...(ri.subresource ? { subresource: ri.subresource } : {}),
      };
      if (!ri.group) delete objectRef.apiGroup;
    }
    const forwarded = String(p.req.headers['x-forwarded-for'] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    const event: Record<string, unknown> = {
      kind: 'Event', apiVersion: 'audit.k8s.io/v1', level, auditID: p.id, stage,
      requestURI: p.req.url ?? '/', verb: ri.verb,
      user: { username: user.name, ...(user.uid ? { uid: user.uid } : {}), groups: user.groups, ...(user.extra ? { extra: user.extra } : {}) },
      ...(p.impersonated ? { impersonatedUser: { username: p.impersonated.name, groups: p.impersonated.groups } } : {}),
      sourceIPs: [...forwarded, ...(p.req.socket.remoteAddress ? [p.req.socket.remoteAddress.replace(/^::ffff:/, '')] : [])],
      ...(p.req.headers['user-agent'] ? { userAgent: p.req.headers['user-agent'] } : {}),
      ...(objectRef ? { objectRef } : {}),
      ...(responseStatus ? { responseStatus: { metadata: {}, ...responseStatus } } : {}),
      ...(requestObject !== undefined ? { requestObject } : {}),
      ...(responseObject !== undefined ? { responseObject } : {}),
      requestReceivedTimestamp: microTime(p.received),
      stageTimestamp: microTime(new Date()),
    };
    if (responseStatus && p.user) {
      const code = Number(responseStatus.code);
      event.annotations = {
        'authorization.k8s.io/decision': code === 403 ? 'forbid' : 'allow',
        'authorization.k8s.io/reason': code === 403 ? String(responseStatus.message ?? '') : '',
      };
    }
    this.writer.write(JSON.stringify(event));
  }

  close(): Promise<void> { return this.writer.close(); }
}
