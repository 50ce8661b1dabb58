// Resource requests after authentication and authorization: one function per verb, plus the
// subresources that read or write a part of an object (status, scale) or act on it (binding, eviction,
// token, finalize).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KindInfo } from '../../api/kinds.js';
import { apiVersionOf } from '../../api/kinds.js';
import type { RequestInfo } from '../request-info.js';
import { isTrue } from '../request-info.js';
import { errors } from '../../api/status.js';
import { readBody, sendJson, sendRaw, warningHeader, type Negotiated } from '../http.js';
import { decodeObject, mediaType, PATCH_TYPES, parseJson, parseYamlBody } from '../decode.js';
import type { ApiContext } from '../context.js';
import type { Actor, DeleteOptions, WriteOptions, WriteResult } from '../objects.js';
import { serveList, serveWatch, tableRowOf } from './list-watch.js';
import { selectionOf } from '../list-watch-filter.js';
import { deleteOptions, fieldManager, writeOptions } from './request-options.js';
import { tableFor } from '../table-view.js';
import { applyJsonPatch, applyMergePatch, patchErrors } from '../patch/index.js';
import { patchObject, type PatchKind } from '../patching.js';
import { handleScale } from './scale.js';
import { handlePodAction, handleTokenRequest } from './actions.js';
import { handleReview } from './reviews.js';
import type { UserInfo } from '../authn.js';
import { conversionFor, type VersionConversion } from '../conversion.js';
import { handlePodStream, POD_STREAM_SUBRESOURCES } from '../tunnel/pod-streams.js';
import { handleNodeProxy } from '../tunnel/node-proxy.js';
import { handleMetrics, METRICS_GROUP } from '../metrics.js';
import { handleVirtualCore, VIRTUAL_CORE } from './virtual.js';

export async function handleResource(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, ri: RequestInfo,
  info: KindInfo, q: URLSearchParams, neg: Negotiated, user: UserInfo): Promise<void> {
  const ns = info.namespaced ? ri.namespace || undefined : undefined;
  if (info.namespaced && !ns && ri.name) throw errors.notFoundPath();
  const actor: Actor = { user: user.name, groups: user.groups, manager: fieldManager(q, req) };
  const sub = ri.subresource;

  if (info.virtual) {
    if (info.group === METRICS_GROUP) return handleMetrics(ctx, res, ri, info, ns, q);
    if (info.group === '' && VIRTUAL_CORE.has(info.plural)) return handleVirtualCore(ctx, req, res, ri, info, ns, q, actor, neg);
    if (ri.verb !== 'create') throw errors.methodNotAllowed(ri.verb);
    return handleReview(ctx, req, res, info, ns, user);
  }
  if (sub) {
    if (!(info.subresources ?? []).includes(sub as any)) throw errors.notFoundPath();
    if (sub === 'scale') return handleScale(ctx, req, res, ri, info, ns, q, actor);
    if (sub === 'token') return handleTokenRequest(ctx, req, res, ri, ns!, actor);
    if (sub === 'binding' || sub === 'eviction') return handlePodAction(ctx, req, res, ri, info, ns!, q, actor);
    if (POD_STREAM_SUBRESOURCES.has(sub)) return handlePodStream(ctx, req, res, ri, q, user);
    if (sub === 'proxy' && info.plural === 'nodes') return handleNodeProxy(ctx, req, res, ri);
    if (sub !== 'status' && sub !== 'finalize' && sub !== 'approval' && sub !== 'ephemeralcontainers') throw errors.badRequest(`${sub} is not available yet`);
  }

  const conv = ri.verb !== 'get' && ri.verb !== 'list' && ri.verb !== 'watch'
    ? conversionFor(info, (i) => ctx.registry.lookup(i.group, 'v2', i.plural)!) : undefined;
  if (conv) return handleConverted(ctx, req, res, ri, info, conv, ns, q, actor);

  switch (ri.verb) {
    case 'get': {
      const o = ctx.objects.get(info, ns, ri.name);
      if (neg.as === 'Table') {
        const view = tableFor(ctx, info);
        const t = { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: { resourceVersion: o.obj.metadata.resourceVersion }, columnDefinitions: view.columns, rows: [tableRowOf(view, o, q.get('includeObject') ?? 'Metadata', Date.now())] };
        return sendJson(res, 200, t);
      }
      if (neg.as === 'PartialObjectMetadata') return sendJson(res, 200, { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.obj.metadata });
      const conv = ctx.converter(info);
      return sendRaw(res, 200, conv ? JSON.stringify(conv(o.obj)) : o.json(), 'application/json');
    }
    case 'list':
      return serveList(ctx, res, info, ns, q, neg);
    case 'watch':
      return serveWatch(ctx, req, res, info, ns, ri.name || undefined, q, neg);
    case 'create': {
      if (ri.name) throw errors.methodNotAllowed('POST');
      const body = decodeObject(await readBody(req), req.headers['content-type']);
      const r = await ctx.objects.create(info, ns, body, writeOptions(q, actor));
      return reply(res, 201, r);
    }
    case 'update': {
      if (!ri.name) throw errors.methodNotAllowed('PUT');
      const body = decodeObject(await readBody(req), req.headers['content-type']);
      const opts = { ...writeOptions(q, actor, 'UpdateOptions'), subresource: sub || undefined, allowCreate: allowCreateOnUpdate(info) };
      const existed = ctx.objects.tryGet(info, ns, ri.name) !== undefined;
      const r = await ctx.objects.update(info, ns, ri.name, () => body, opts);
      return reply(res, existed ? 200 : 201, r);
    }
    case 'patch':
      if (!ri.name) throw errors.methodNotAllowed('PATCH');
      return handlePatch(ctx, req, res, info, ns, ri.name, q, actor, sub || undefined);
    case 'delete': {
      const opts = await deleteOptions(req, q);
      const r = await ctx.objects.delete(info, ns, ri.name, opts, actor);
      return sendRaw(res, r.deleted ? 200 : 202, r.json(), 'application/json');
    }
    case 'deletecollection': {
      const opts = await deleteOptions(req, q);
      const filter = ctx.objects.filterFor(info, selectionOf(q));
      const items: string[] = [];
      for (const o of ctx.objects.list(info, ns, filter)) {
        try {
          const r = await ctx.objects.delete(info, o.obj.metadata.namespace, o.obj.metadata.name, opts, actor);
          items.push(r.json());
        } catch (e: any) {
          if (e?.code !== 404) throw e;
        }
      }
      const head = `{"kind":${JSON.stringify(info.kind + 'List')},"apiVersion":${JSON.stringify(apiVersionOf(info))},"metadata":{"resourceVersion":"${ctx.store.revision()}"},"items":[`;
      return sendRaw(res, 200, head + items.join(',') + ']}', 'application/json');
    }
    default:
      throw errors.methodNotAllowed(ri.verb);
  }
}

function reply(res: ServerResponse, code: number, r: WriteResult): void {
  sendRaw(res, code, r.json(), 'application/json', warningHeader(r.warnings) ?? {});
}

/** Kinds Kubernetes lets a PUT create (AllowCreateOnUpdate in their strategies). */
function allowCreateOnUpdate(info: KindInfo): boolean {
  const gr = `${info.group}/${info.plural}`;
  return gr === '/endpoints' || gr === 'coordination.k8s.io/leases' || gr === '/events' || gr === 'events.k8s.io/events';
}

async function handlePatch(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, info: KindInfo, ns: string | undefined,
  name: string, q: URLSearchParams, actor: Actor, subresource: string | undefined): Promise<void> {
  const type = mediaType(req.headers['content-type']);
  const kind = (PATCH_TYPES as Record<string, string>)[type];
  if (!kind || kind === 'apply-cbor') throw errors.unsupportedMediaType(type || '(none)');
  if (kind === 'strategic' && info.crd) throw patchErrors.strategicMergeUnsupported();
  const raw = await readBody(req);
  const body = kind === 'apply' ? parseYamlBody(raw) : parseJson(raw);
  const { result, created } = await patchObject(ctx.objects, info, ns, name, {
    kind: kind as PatchKind, body, force: isTrue(q.get('force')), subresource, fieldManagerGiven: q.get('fieldManager') !== null,
  }, writeOptions(q, actor, 'PatchOptions'));
  reply(res, created ? 201 : 200, result);
}

/** Writes through a served version that is not the stored one (HPA autoscaling/v1). */
async function handleConverted(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, ri: RequestInfo, info: KindInfo,
  conv: VersionConversion, ns: string | undefined, q: URLSearchParams, actor: Actor): Promise<void> {
  const send = (code: number, r: WriteResult) => sendJson(res, code, conv.toServed(r.obj), warningHeader(r.warnings) ?? {});
  switch (ri.verb) {
    case 'create': {
      const body = decodeObject(await readBody(req), req.headers['content-type']);
      ctx.objects.checkTypeMeta(info, body);
      return send(201, await ctx.objects.create(conv.storage, ns, conv.toStored(body), writeOptions(q, actor)));
    }
    case 'update': {
      const body = decodeObject(await readBody(req), req.headers['content-type']);
      ctx.objects.checkTypeMeta(info, body);
      const r = await ctx.objects.update(conv.storage, ns, ri.name, (cur) => conv.toStored(structuredClone(body), cur?.obj), { ...writeOptions(q, actor), subresource: ri.subresource || undefined });
      return send(200, r);
    }
    case 'patch': {
      const type = mediaType(req.headers['content-type']);
      const patch = parseJson(await readBody(req));
      const r = await ctx.objects.update(conv.storage, ns, ri.name, (cur) => {
        if (!cur) missing(info, ri.name);
        const served = conv.toServed(cur!.obj);
        const out: Record<string, any> = type === 'application/json-patch+json' ? applyJsonPatch(served, patch) as Record<string, any>
          : type === 'application/merge-patch+json' || type === 'application/strategic-merge-patch+json' ? applyMergePatch(served, patch) as Record<string, any>
          : (() => { throw errors.unsupportedMediaType(type); })();
        if (out.metadata?.resourceVersion === cur!.obj.metadata.resourceVersion) delete out.metadata.resourceVersion;
        return conv.toStored(out, cur!.obj);
      }, { ...writeOptions(q, actor), subresource: ri.subresource || undefined });
      return send(200, r);
    }
    case 'delete': {
      const r = await ctx.objects.delete(conv.storage, ns, ri.name, await deleteOptions(req, q), actor);
      return sendJson(res, r.deleted ? 200 : 202, conv.toServed(r.obj));
    }
    default:
      throw errors.methodNotAllowed(ri.verb);
  }
}

function missing(info: KindInfo, name: string): never {
  throw errors.notFound(info.plural, info.group, name);
}
