// RFC 7386 JSON merge patch (`application/merge-patch+json`, what `kubectl label|annotate|scale` and
// `patch --type=merge` send): objects merge recursively, `null` deletes a member, anything else
// (including lists) replaces.

import { isPlainObject } from '../../api/object.js';
import { jsonKindWord, patchErrors } from './errors.js';

/**
 * Applies a merge patch to a copy of `doc`. Kubernetes decodes the patch into a map first, so a patch
 * that is not a JSON object is a 400 with Go's decoding message; a `null` patch changes nothing.
 */
export function applyMergePatch(doc: unknown, patch: unknown): unknown {
  if (patch === null) return structuredClone(doc);
  if (!isPlainObject(patch)) {
    throw patchErrors.badRequest(
      `error decoding patch: json: cannot unmarshal ${jsonKindWord(patch)} into Go value of type map[string]interface {}`);
  }
  return mergeValue(doc, patch);
}

function mergeValue(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = isPlainObject(target) ? structuredClone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergeValue(out[k], v);
  }
  return out;
}
