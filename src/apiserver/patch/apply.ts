// Server-side apply (`application/apply-patch+yaml`): the applied configuration is merged into the
// live object and becomes the applier's field set. Fields the applier applied last time but no
// longer does are removed unless some manager still owns them; fields another manager owns that
// would change are conflicts (409) unless `force` moves them to the applier; setting a field to the
// value it already has shares its ownership. Applying to a missing object creates it.

import type { KObject } from '../../api/object.js';
import { isPlainObject } from '../../api/object.js';
import type { SchemaSet, TypeSchema } from '../../api/schema-types.js';
import { ApiError } from '../../api/status.js';
import { jsonKindWord, patchErrors } from './errors.js';
import { FieldSet, pathString, type Path } from './fieldpath.js';
import { FieldType } from './field-types.js';
import {
  decodeManagedFields, defaultResetFields, encodeManagedFields, managerId, resetFieldSet, untracked,
  withoutManagedFields, type ManagerEntry, type Managers,
} from './managed-fields.js';
import { compare, merge, removeFields, toFieldSet, TypedError, withNamedFields } from './typed.js';
import { deepEqual } from './values.js';

export interface ApplyOptions {
  /** The field manager (`?fieldManager=`); Kubernetes requires one for apply. */
  manager: string;
  force?: boolean;
  /** The API version of the request (`apps/v1`); the configuration must use it. */
  apiVersion: string;
  /** The kind of the request; when given, the configuration must be of this kind. */
  kind?: string;
  schema?: TypeSchema;
  schemas?: SchemaSet;
  subresource?: string;
  /** RFC 3339 time of the write. */
  time: string;
  /** Field paths (by name) the applier does not own through this endpoint; see defaultResetFields. */
  resetFields?: string[][];
}

/**
 * Applies `applied` over `live` (undefined: the object does not exist) and returns the resulting
 * object with its new `metadata.managedFields`. Throws ApiError: 400 for an unusable configuration,
 * 409 for conflicts with other managers, 500 where Kubernetes fails the same way.
 */
export function serverSideApply(live: KObject | undefined, applied: unknown, opts: ApplyOptions): KObject {
  const config = checkConfiguration(applied, opts);
  let managers: Managers;
  try {
    managers = decodeManagedFields(live?.metadata.managedFields);
  } catch (e) {
    throw patchErrors.unconverted(`failed to decode managed fields: ${(e as Error).message}`);
  }
  const t = FieldType.root(opts.schema, opts.schemas);
  const reset = resetFieldSet(opts.resetFields ?? defaultResetFields(opts.subresource));
  const liveBody: KObject = live ? withoutManagedFields(live) : { metadata: {} };
  const id = managerId({ manager: opts.manager, operation: 'Apply', apiVersion: opts.apiVersion, subresource: opts.subresource });

  let result: KObject;
  let appliedSet: FieldSet;
  try {
    appliedSet = toFieldSet(config, t, true).withoutPrefixes(reset);
    result = merge(liveBody, config, t) as KObject;
  } catch (e) {
    if (!(e instanceof TypedError)) throw e;
    throw patchErrors.unconverted(`failed to create typed patch object (${describe(config, opts)}): ${e.message}`);
  }
  const previous = managers.get(id);
  managers.set(id, {
    manager: opts.manager, operation: 'Apply', apiVersion: opts.apiVersion,
    subresource: opts.subresource || undefined, time: previous?.time, set: appliedSet,
  });
  if (previous && !previous.set.empty) result = prune(result, managers, previous.set, t);

  const c = compare(liveBody, result, t);
  const changed = c.modified.union(c.added).withoutPrefixes(reset);
  const removed = c.removed.withoutPrefixes(reset);
  const conflicts: [ManagerEntry, Path[]][] = [];
  for (const [otherId, e] of [...managers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (otherId === id) continue;
    const overlap = e.set.intersection(changed);
    if (!overlap.empty) conflicts.push([e, overlap.paths()]);
  }
  if (conflicts.length && !opts.force) {
    // `kubectl apply --server-side` over an object client-side apply made: fields the last-applied
    // annotation still describes (same value as live) are the applier's own, not a conflict (as
    // kube-apiserver's last-applied manager upgrades them, for the `kubectl` manager only).
    const allowed = opts.manager === 'kubectl' && live ? lastAppliedFields(live, t, opts.apiVersion) : undefined;
    const left = allowed
      ? conflicts.map(([e, paths]) => [e, paths.filter((p) => !allowed.has(p))] as [ManagerEntry, Path[]]).filter(([, paths]) => paths.length)
      : conflicts;
    if (left.length) throw applyConflict(left);
  }
  for (const [otherId, e] of managers) {
    if (otherId === id) continue;
    const kept = e.set.difference(changed).difference(removed);
    if (kept.empty) managers.delete(otherId);
    else e.set = kept;
  }

  const own = managers.get(id)!;
  own.set = untracked(own.set);
  if (own.set.empty) managers.delete(id);
  // Like Kubernetes, a no-op apply leaves the entry's time alone.
  else if (!deepEqual(liveBody, result) || !own.time) own.time = opts.time;

  const metadata = { ...(isPlainObject(result.metadata) ? result.metadata : {}) };
  if (managers.size) metadata.managedFields = encodeManagedFields(managers);
  // An object client-side apply still tracks gets its annotation rewritten to what `kubectl` applied
  // server-side, so a later client-side apply diffs against the truth (kube-apiserver does the same).
  const lastApplied = live?.metadata.annotations?.[LAST_APPLIED];
  if (opts.manager === 'kubectl' && typeof lastApplied === 'string' && lastApplied !== '') {
    metadata.annotations = { ...(isPlainObject(metadata.annotations) ? metadata.annotations : {}), [LAST_APPLIED]: lastAppliedOf(config) };
  }
  return { ...result, metadata };
}

/** The applied configuration as the annotation holds it: without the annotation itself, encoded as Go encodes a map. */
function lastAppliedOf(config: KObject): string {
  const copy = structuredClone(config) as KObject;
  if (isPlainObject(copy.metadata.annotations)) delete copy.metadata.annotations[LAST_APPLIED];
  return goJson(copy);
}

/** encoding/json of a decoded value: map keys sorted, <, > and & escaped. */
function goJson(v: unknown): string {
  const sorted = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(sorted);
    if (!isPlainObject(x)) return x;
    return Object.fromEntries(Object.keys(x).sort().filter((k) => x[k] !== undefined).map((k) => [k, sorted(x[k])]));
  };
  return JSON.stringify(sorted(v)).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * The fields of the live object's last-applied annotation whose values the live object still has:
 * what client-side apply last set and nobody changed since. Undefined when there is no usable annotation.
 */
function lastAppliedFields(live: KObject, t: FieldType, apiVersion: string): FieldSet | undefined {
  const text = live.metadata.annotations?.[LAST_APPLIED];
  if (typeof text !== 'string' || text === '') return undefined;
  try {
    const last = JSON.parse(text) as unknown;
    if (!isPlainObject(last) || last.apiVersion !== apiVersion) return undefined;
    const c = compare(last, withoutManagedFields(live), t);
    return toFieldSet(last, t).difference(c.modified).difference(c.added).difference(c.removed);
  } catch {
    return undefined;
  }
}

/** The configuration as a JSON object of the request's kind, without managedFields. */
function checkConfiguration(applied: unknown, opts: ApplyOptions): KObject {
  if (!isPlainObject(applied)) {
    throw patchErrors.badRequest(`error decoding YAML: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal ${jsonKindWord(applied)} into Go value of type map[string]interface {}`);
  }
  const apiVersion = typeof applied.apiVersion === 'string' ? applied.apiVersion : '';
  const kind = typeof applied.kind === 'string' ? applied.kind : '';
  // Kubernetes checks the whole group/version/kind first when it knows the kind.
  if (opts.kind !== undefined && (kind !== opts.kind || apiVersion !== opts.apiVersion)) {
    throw patchErrors.badRequest(`invalid object type: ${gvkString(apiVersion, kind)}`);
  }
  if (apiVersion !== opts.apiVersion) {
    throw patchErrors.badRequest(`Incorrect version specified in apply patch. Specified patch version: ${apiVersion}, expected: ${opts.apiVersion}`);
  }
  const metadata = applied.metadata;
  if (isPlainObject(metadata) && metadata.managedFields !== undefined && metadata.managedFields !== null) {
    throw patchErrors.badRequest('metadata.managedFields must be nil');
  }
  return { ...applied, metadata: isPlainObject(metadata) ? metadata : {} } as KObject;
}

/** Go's GroupVersionKind.String(): `apps/v1, Kind=Deployment`, `/v1, Kind=Pod`. */
function gvkString(apiVersion: string, kind: string): string {
  const slash = apiVersion.indexOf('/');
  const gv = slash < 0 ? `/${apiVersion}` : apiVersion;
  return `${gv}, Kind=${kind}`;
}

function describe(config: KObject, opts: ApplyOptions): string {
  const m = config.metadata;
  return `${m.namespace ?? ''}/${m.name ?? ''}; ${gvkString(opts.apiVersion, opts.kind ?? String(config.kind ?? ''))}`;
}

/**
 * Removes what the applier applied last time (`lastSet`) and no longer owns, unless another manager
 * owns it. A struct field counts as owned by whoever owns something inside it.
 */
function prune(merged: KObject, managers: Managers, lastSet: FieldSet, t: FieldType): KObject {
  let owned = new FieldSet();
  for (const e of managers.values()) owned = owned.union(e.set);
  const present = withNamedFields(toFieldSet(merged, t), t);
  const toRemove = withNamedFields(lastSet, t).intersection(present).difference(withNamedFields(owned, t));
  return toRemove.empty ? merged : removeFields(merged, toRemove, t) as KObject;
}

/** Kubernetes' description of a manager in conflict messages. */
function printManager(e: ManagerEntry): string {
  let s = JSON.stringify(e.manager);
  if (e.subresource) s += ` with subresource ${JSON.stringify(e.subresource)}`;
  if (e.operation === 'Update') s += ` using ${e.apiVersion}`;
  return s;
}

/** 409 Conflict naming each conflicting field and its manager, worded as Kubernetes words it. */
function applyConflict(conflicts: [ManagerEntry, Path[]][]): ApiError {
  const causes = conflicts.flatMap(([e, paths]) =>
    paths.map((p) => ({ reason: 'FieldManagerConflict', message: `conflict with ${printManager(e)}`, field: pathString(p) })));
  let message: string;
  if (causes.length === 1) {
    message = `Apply failed with 1 conflict: ${causes[0].message}: ${causes[0].field}`;
  } else {
    const lines = conflicts.flatMap(([e, paths]) => [`conflicts with ${printManager(e)}:`, ...paths.map((p) => `- ${pathString(p)}`)]);
    message = `Apply failed with ${causes.length} conflicts: ${lines.join('\n')}`;
  }
  return new ApiError(409, 'Conflict', message, { causes });
}
