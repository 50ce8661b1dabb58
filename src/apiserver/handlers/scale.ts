// The scale subresource: an autoscaling/v1 Scale view of a workload's replicas (built-ins and CRDs
// with a scale subresource). Writes change only the replica count of the parent.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KindInfo } from '../../api/kinds.js';
import type { RequestInfo } from '../request-info.js';
import { errors } from '../../api/status.js';
import { readBody, sendJson } from '../http.js';
import { decodeObject, mediaType, parseJson } from '../decode.js';
import type { ApiContext } from '../context.js';
import type { Actor } from '../objects.js';
import { applyJsonPatch, applyMergePatch } from '../patch/index.js';
import { writeOptions } from './request-options.js';
import { selectorString } from '../label-selector-string.js';

interface ScalePaths { spec: string; status: string; selector?: string }

function pathsFor(ctx: ApiContext, info: KindInfo): ScalePaths {
  if (info.crd) {
    const s = ctx.crds.versionInfo(info)?.scale;
    if (!s) throw errors.notFoundPath();
    return { spec: s.specReplicasPath, status: s.statusReplicasPath, selector: s.labelSelectorPath };
  }
  return { spec: '.spec.replicas', status: '.status.replicas', selector: '.spec.selector' };
}

function getPath(obj: any, path: string): any {
  return path.replace(/^\./, '').split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
}
function setPath(obj: any, path: string, value: unknown): void {
  const parts = path.replace(/^\./, '').split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) cur = cur[p] ??= {};
  cur[parts[parts.length - 1]] = value;
}

function toScale(info: KindInfo, obj: Readonly<Record<string, any>>, paths: ScalePaths): Record<string, any> {
  let selector = '';
  if (paths.selector) {
    const sel = getPath(obj, paths.selector);
    selector = typeof sel === 'string' ? sel : sel ? selectorString(sel) : '';
  }
  const m = obj.metadata;
  return {
    kind: 'Scale', apiVersion: 'autoscaling/v1',
    metadata: { name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion, creationTimestamp: m.creationTimestamp },
    spec: { replicas: getPath(obj, paths.spec) ?? 0 },
    status: { replicas: getPath(obj, paths.status) ?? 0, ...(selector ? { selector } : {}) },
  };
}

export async function handleScale(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, ri: RequestInfo,
  info: KindInfo, ns: string | undefined, q: URLSearchParams, actor: Actor): Promise<void> {
  const paths = pathsFor(ctx, info);
  if (ri.verb === 'get') return sendJson(res, 200, toScale(info, ctx.objects.get(info, ns, ri.name).obj, paths));
  if (ri.verb !== 'update' && ri.verb !== 'patch') throw errors.methodNotAllowed(ri.verb);
  const raw = await readBody(req);
  const type = mediaType(req.headers['content-type']);
  const r = await ctx.objects.update(info, ns, ri.name, (current) => {
    if (!current) throw errors.notFound(info.plural, info.group, ri.name);
    const scale = toScale(info, current.obj, paths);
    let next: Record<string, any>;
    if (ri.verb === 'update') next = decodeObject(raw, req.headers['content-type']);
    else if (type === 'application/json-patch+json') next = applyJsonPatch(scale, parseJson(raw)) as Record<string, any>;
    else if (type === 'application/merge-patch+json' || type === 'application/strategic-merge-patch+json') next = applyMergePatch(scale, parseJson(raw)) as Record<string, any>;
    else throw errors.unsupportedMediaType(type);
    const replicas = next?.spec?.replicas;
    if (!Number.isInteger(replicas)) throw errors.invalid('Scale', 'autoscaling', ri.name, [{ reason: 'FieldValueInvalid', field: 'spec.replicas', message: `Invalid value: ${JSON.stringify(replicas)}: must be an integer` }]);
    if (replicas < 0) throw errors.invalid('Scale', 'autoscaling', ri.name, [{ reason: 'FieldValueInvalid', field: 'spec.replicas', message: `Invalid value: ${replicas}: must be greater than or equal to 0` }]);
    const rv = next.metadata?.resourceVersion;
    const obj = structuredClone(current.obj) as Record<string, any>;
    setPath(obj, paths.spec, replicas);
    if (rv && rv !== current.obj.metadata.resourceVersion) throw errors.conflict(info.plural, info.group, ri.name);
    delete obj.metadata.resourceVersion;
    return obj;
  }, { ...writeOptions(q, actor), subresource: 'scale' });
  sendJson(res, 200, toScale(info, r.obj, paths));
}
