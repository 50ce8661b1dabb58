// The fleet site's per-target patches use the API server's own patch rules (JSON patch, merge
// patch, strategic merge with the built-in types' merge keys): one rule, one place. src/fleet may
// not import the API server, so the server hands it this function.
import type { KObject } from '../api/object.js';
import type { SchemaSet } from '../api/schema-types.js';
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch, supportsStrategicMerge } from '../apiserver/patch/index.js';
import type { Patcher } from '../fleet/customize.js';

export function fleetPatcher(schemas: SchemaSet): Patcher {
  return (obj, type, patch) => {
    if (type === 'json') return applyJsonPatch(obj, patch) as KObject;
    if (type === 'merge') return applyMergePatch(obj, patch) as KObject;
    const [group, version] = obj.apiVersion!.includes('/') ? obj.apiVersion!.split('/') as [string, string] : ['', obj.apiVersion!];
    const schema = schemas.forKind(group, version, obj.kind!);
    // As the API server answers for custom resources (415): no merge keys known, use merge or json.
    if (!supportsStrategicMerge(schema)) throw new Error(`strategic merge patch is not supported for ${obj.kind}; use type: merge or json`);
    return applyStrategicMergePatch(obj, patch, schema, schemas) as KObject;
  };
}
