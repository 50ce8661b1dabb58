// PATCH semantics shared by the HTTP handler and the in-process client: the four patch types applied to
// the current object inside ObjectService.update, so a conflict re-applies the patch to the newer object.
import type { KindInfo } from '../api/kinds.js';
import { apiVersionOf } from '../api/kinds.js';
import { loadSchemaSet } from '../api/schema.js';
import type { KObject } from '../api/object.js';
import { errors } from '../api/status.js';
import type { ObjectService, WriteOptions, WriteResult } from './objects.js';
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch, patchErrors, serverSideApply } from './patch/index.js';
import { nowRfc3339 } from '../util/time.js';

export type PatchKind = 'json' | 'merge' | 'strategic' | 'apply';

export interface PatchRequest {
  kind: PatchKind;
  body: unknown;
  force?: boolean;
  subresource?: string;
  /** Apply needs an explicit field manager (Kubernetes refuses to derive one). */
  fieldManagerGiven: boolean;
}

export async function patchObject(objects: ObjectService, info: KindInfo, ns: string | undefined, name: string,
  req: PatchRequest, opts: WriteOptions): Promise<{ result: WriteResult; created: boolean }> {
  const schemas = loadSchemaSet();
  const schema = info.crd ? undefined : schemas.type(info.modelType);
  if (req.kind === 'strategic' && info.crd) throw patchErrors.strategicMergeUnsupported();
  if (req.kind === 'apply') {
    if (!req.fieldManagerGiven) throw errors.badRequest('PATCH requests of type application/apply-patch+yaml must have a fieldManager');
    if (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body)) throw errors.badRequest('the body of an apply patch must be an object');
  } else if (req.force) {
    throw errors.badRequest('force: Forbidden: may not be specified for non-apply patch');
  }
  const missing = (): never => { throw errors.notFound(info.plural, info.group, name); };
  let created = false;
  const result = await objects.update(info, ns, name, (current) => {
    const live = current ? structuredClone(current.obj) as Record<string, any> : undefined;
    // Each try (after a conflict) patches the then-current object with a fresh copy of the patch.
    const patch = structuredClone(req.body) as any;
    let out: Record<string, any>;
    switch (req.kind) {
      case 'json': out = applyJsonPatch(live ?? missing(), patch) as Record<string, any>; break;
      case 'merge': out = applyMergePatch(live ?? missing(), patch) as Record<string, any>; break;
      case 'strategic': out = applyStrategicMergePatch(live ?? missing(), patch, schema, schemas) as Record<string, any>; break;
      case 'apply': {
        created = !live;
        patch.metadata ??= {};
        if (ns && info.namespaced) patch.metadata.namespace ??= ns;
        patch.metadata.name ??= name;
        out = serverSideApply(live as KObject | undefined, patch, {
          manager: opts.actor.manager, force: req.force ?? false, apiVersion: apiVersionOf(info), kind: info.kind,
          schema, schemas, subresource: req.subresource, time: nowRfc3339(),
          // A custom resource without a status subresource owns its status through the main resource.
          ...(info.crd && !(info.subresources ?? []).includes('status') ? { resetFields: [] } : {}),
        }) as Record<string, any>;
        break;
      }
    }
    // A patch that leaves resourceVersion as it was is not a precondition: conflicts are retried.
    if (live && out?.metadata?.resourceVersion === live.metadata.resourceVersion) delete out.metadata.resourceVersion;
    return out;
  }, {
    ...opts, subresource: req.subresource, allowCreate: req.kind === 'apply', isPatch: req.kind !== 'apply',
    operation: req.kind === 'apply' ? 'Apply' : 'Update', preManaged: req.kind === 'apply',
  });
  return { result, created };
}
