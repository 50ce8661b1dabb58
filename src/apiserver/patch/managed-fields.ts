// `metadata.managedFields`: which manager (field manager name + operation + subresource, and the API
// version for updates) owns which fields, as Kubernetes' field manager keeps it. Every write that is
// not an apply goes through `updateManagedFields`: the writer gains the fields it changed and every
// other manager loses them (and loses fields that were removed). Apply is in apply.ts.

import type { KObject, ManagedFieldsEntry } from '../../api/object.js';
import { isPlainObject } from '../../api/object.js';
import type { SchemaSet, TypeSchema } from '../../api/schema-types.js';
import { FieldSet, pathElement } from './fieldpath.js';
import { FieldType } from './field-types.js';
import { compare, toFieldSet, TypedError } from './typed.js';

export interface ManagerEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  subresource?: string;
  time?: string;
  set: FieldSet;
}

/** Entries keyed by `managerId`. */
export type Managers = Map<string, ManagerEntry>;

/** Update entries beyond this many are folded, oldest first, into `ancient-changes` entries. */
export const MAX_UPDATE_MANAGERS = 10;

/** Fields nobody owns: identity and system-maintained metadata. */
const UNTRACKED = FieldSet.fromPaths([
  ['apiVersion'], ['kind'], ['metadata'],
  ...['name', 'namespace', 'creationTimestamp', 'selfLink', 'uid', 'clusterName', 'generation', 'managedFields', 'resourceVersion']
    .map((f) => ['metadata', f]),
].map((p) => p.map(pathElement.field)));

/**
 * An entry's identity: Kubernetes keeps one entry per manager, operation and subresource, and for
 * updates also per API version (an applier keeps one entry whatever version it applies with).
 */
export function managerId(e: Pick<ManagerEntry, 'manager' | 'operation' | 'apiVersion' | 'subresource'>): string {
  return JSON.stringify({
    manager: e.manager || undefined,
    operation: e.operation,
    apiVersion: e.operation === 'Update' ? e.apiVersion : undefined,
    subresource: e.subresource || undefined,
  });
}

/**
 * Field sets decoded from the watch cache's frozen `fieldsV1` values, and back: an entry written
 * again soon (a pod is written four or five times on its way to Running) is decoded once, and an
 * entry a write leaves as it was is written back as the same value. Sets are never changed once
 * built, so sharing them is safe. Only the most recent decodes are kept: a decoded set is several
 * times the size of its `fieldsV1`, and keeping one for every stored object cost 4.5 KB per pod.
 */
const RECENT_DECODES = 2048;
const decodedSets = new Map<object, FieldSet>();
const encodedSets = new WeakMap<FieldSet, Record<string, unknown>>();

/**
 * Small field sets by their text, most recently used last. Many objects carry entries of the same
 * content: every node's kubelet renews its Lease with the same fields, and 5,000 Leases renewed
 * every 10 s are more than the recent decodes above keep, so each renewal decoded its entry again.
 */
const SHARED_DECODES = 256;
const SHARED_TEXT_CHARS = 1024;
const sharedSets = new Map<string, FieldSet>();

function decodeFieldsV1(v: unknown): FieldSet {
  const frozen = typeof v === 'object' && v !== null && Object.isFrozen(v);
  if (!frozen) return FieldSet.fromFieldsV1(v);
  const known = decodedSets.get(v);
  if (known) return known;
  const text = JSON.stringify(v);
  const small = text.length <= SHARED_TEXT_CHARS;
  let set = small ? sharedSets.get(text) : undefined;
  if (set) {
    sharedSets.delete(text);
  } else {
    set = FieldSet.fromFieldsV1(v);
    encodedSets.set(set, v as Record<string, unknown>);
  }
  if (small) {
    sharedSets.set(text, set);
    if (sharedSets.size > SHARED_DECODES) sharedSets.delete(sharedSets.keys().next().value!);
  }
  decodedSets.set(v, set);
  if (decodedSets.size > RECENT_DECODES) decodedSets.delete(decodedSets.keys().next().value!);
  return set;
}

/** Decodes `metadata.managedFields`; throws an Error saying what is invalid. */
export function decodeManagedFields(entries: unknown): Managers {
  const managers: Managers = new Map();
  if (entries === undefined || entries === null) return managers;
  if (!Array.isArray(entries)) throw new Error('managedFields must be a list');
  entries.forEach((raw: unknown, i) => {
    if (!isPlainObject(raw)) throw new Error(`managed fields entry ${i} must be an object`);
    const e = raw as ManagedFieldsEntry;
    if (e.operation !== 'Apply' && e.operation !== 'Update') throw new Error('operation must be `Apply` or `Update`');
    if (!e.apiVersion) throw new Error('apiVersion must not be empty');
    if (!e.fieldsType) throw new Error(`missing fieldsType in managed fields entry ${i}`);
    if (e.fieldsType !== 'FieldsV1') throw new Error(`invalid fieldsType "${e.fieldsType}" in managed fields entry ${i}`);
    const entry: ManagerEntry = {
      manager: e.manager ?? '',
      operation: e.operation,
      apiVersion: e.apiVersion,
      subresource: e.subresource || undefined,
      time: e.time || undefined,
      set: decodeFieldsV1(e.fieldsV1 ?? {}),
    };
    managers.set(managerId(entry), entry);
  });
  return managers;
}

/** Encodes entries in Kubernetes' order: operation, time, manager, API version, subresource. */
export function encodeManagedFields(managers: Managers): ManagedFieldsEntry[] {
  const seconds = (t?: string) => (t ? Math.floor(Date.parse(t) / 1000) || 0 : 0);
  const cmp = (a: string | undefined, b: string | undefined) => ((a ?? '') < (b ?? '') ? -1 : (a ?? '') > (b ?? '') ? 1 : 0);
  return [...managers.values()]
    .sort((p, q) => cmp(p.operation, q.operation) || seconds(p.time) - seconds(q.time) ||
      cmp(p.manager, q.manager) || cmp(p.apiVersion, q.apiVersion) || cmp(p.subresource, q.subresource))
    .map((e) => {
      const out: ManagedFieldsEntry = { manager: e.manager, operation: e.operation, apiVersion: e.apiVersion };
      if (e.time) out.time = e.time;
      out.fieldsType = 'FieldsV1';
      out.fieldsV1 = encodedSets.get(e.set) ?? e.set.toFieldsV1();
      if (e.subresource) out.subresource = e.subresource;
      return out;
    });
}

/** Drops the fields nobody owns from a manager's set. */
export function untracked(set: FieldSet): FieldSet {
  return set.difference(UNTRACKED);
}

/** The fields an object sets, as ownership sees them (system metadata excluded). */
export function objectFieldSet(obj: KObject, schema: TypeSchema | undefined, schemas: SchemaSet | undefined): FieldSet {
  return untracked(toFieldSet(withoutManagedFields(obj), FieldType.root(schema, schemas)));
}

/** A shallow copy without `metadata.managedFields` (ownership data is not itself owned). */
export function withoutManagedFields(obj: KObject): KObject {
  if (!isPlainObject(obj.metadata) || !Object.hasOwn(obj.metadata, 'managedFields')) return obj;
  const { managedFields: _, ...metadata } = obj.metadata;
  return { ...obj, metadata };
}

/**
 * Top-level fields whose changes a write through this endpoint does not own, because the strategy
 * resets them: `status` on the main resource, `spec` on the status subresource. Kinds whose status
 * is written through the main resource (custom resources without a status subresource) pass [].
 */
export function defaultResetFields(subresource: string | undefined): string[][] {
  return subresource === 'status' ? [['spec']] : [['status']];
}

export function resetFieldSet(paths: string[][]): FieldSet {
  return FieldSet.fromPaths(paths.map((p) => p.map(pathElement.field)));
}

export interface UpdateManagedFieldsOptions {
  manager: string;
  /** The API version of the request (`apps/v1`). */
  apiVersion: string;
  subresource?: string;
  /** RFC 3339 time of the write (seconds precision, as Kubernetes writes it). */
  time: string;
  schema?: TypeSchema;
  schemas?: SchemaSet;
  /** Field paths (by name) not tracked for this write; defaults to `defaultResetFields(subresource)`. */
  resetFields?: string[][];
}

/**
 * The `metadata.managedFields` to store for a create, update or non-apply patch from `oldObj`
 * (undefined on create) to `newObj`. Entries sent in `newObj` replace the stored ones (an empty list
 * clears them) unless the write is to a subresource. Undefined means no entries (omit the field).
 * Like Kubernetes, a value it cannot track (e.g. duplicate list keys) keeps the stored entries.
 */
export function updateManagedFields(
  oldObj: KObject | undefined, newObj: KObject, opts: UpdateManagedFieldsOptions,
): ManagedFieldsEntry[] | undefined {
  const managers = liveOrRequested(oldObj, newObj, opts.subresource !== undefined && opts.subresource !== '');
  const writerId = managerId({ manager: opts.manager, operation: 'Update', apiVersion: opts.apiVersion, subresource: opts.subresource || undefined });
  const writerBefore = managers.get(writerId)?.set;
  const t = FieldType.root(opts.schema, opts.schemas);
  const reset = resetFieldSet(opts.resetFields ?? defaultResetFields(opts.subresource));
  try {
    const c = compare(oldObj ? withoutManagedFields(oldObj) : {}, withoutManagedFields(newObj), t);
    const changed = c.modified.union(c.added).withoutPrefixes(reset);
    const removed = c.removed.withoutPrefixes(reset);
    for (const [id, e] of managers) {
      const kept = e.set.difference(changed).difference(removed);
      if (kept.empty) managers.delete(id);
      else e.set = kept;
    }
    const gained = untracked(changed);
    if (!gained.empty) {
      const entry: ManagerEntry = {
        manager: opts.manager, operation: 'Update', apiVersion: opts.apiVersion,
        subresource: opts.subresource || undefined, time: opts.time, set: gained,
      };
      const prev = managers.get(writerId);
      if (prev) entry.set = gained.union(prev.set);
      // A write of fields its manager owns already (a Lease renewal, a condition's new time) leaves
      // the set as it was: keep the decoded one, whose encoding is the stored entry's.
      if (writerBefore && entry.set !== writerBefore && entry.set.subsetOf(writerBefore) && writerBefore.subsetOf(entry.set)) entry.set = writerBefore;
      managers.set(writerId, entry);
    }
  } catch (e) {
    if (e instanceof TypedError) return oldObj?.metadata.managedFields;
    throw e;
  }
  capUpdateManagers(managers);
  return managers.size ? encodeManagedFields(managers) : undefined;
}

function liveOrRequested(oldObj: KObject | undefined, newObj: KObject, subresource: boolean): Managers {
  const stored = () => {
    try {
      return decodeManagedFields(oldObj?.metadata.managedFields);
    } catch {
      return new Map() as Managers;
    }
  };
  if (subresource) return stored();
  const sent: unknown = newObj.metadata.managedFields;
  if (Array.isArray(sent) && (sent.length === 0 || (sent.length === 1 && isPlainObject(sent[0]) && Object.keys(sent[0]).length === 0))) {
    return new Map();
  }
  try {
    const requested = decodeManagedFields(sent);
    if (requested.size) return requested;
  } catch {
    // invalid entries in a request are ignored, as Kubernetes does
  }
  return stored();
}

/** Folds the oldest update entries into one `ancient-changes` entry per API version. */
function capUpdateManagers(managers: Managers): void {
  const seconds = (t?: string) => (t ? Math.floor(Date.parse(t) / 1000) || 0 : 0);
  const updaters = [...managers].filter(([, e]) => e.operation === 'Update')
    .sort(([ia, a], [ib, b]) => seconds(a.time) - seconds(b.time) || (ia < ib ? -1 : ia > ib ? 1 : 0));
  let count = updaters.length;
  const firstOfVersion = new Map<string, string>();
  for (const [id, e] of updaters) {
    if (count <= MAX_UPDATE_MANAGERS) break;
    const bucket: Omit<ManagerEntry, 'set'> = { manager: 'ancient-changes', operation: 'Update', apiVersion: e.apiVersion };
    const bucketId = managerId(bucket);
    const first = firstOfVersion.get(e.apiVersion);
    if (first === undefined) {
      firstOfVersion.set(e.apiVersion, id);
      continue;
    }
    if (!managers.has(bucketId)) {
      managers.set(bucketId, { ...bucket, time: managers.get(first)!.time, set: managers.get(first)!.set });
      managers.delete(first);
    }
    const b = managers.get(bucketId)!;
    b.set = e.set.union(b.set);
    b.time = e.time;
    managers.delete(id);
    count--;
  }
}
