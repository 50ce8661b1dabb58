// The generic object service: Kubernetes REST semantics for any kind (built-in or custom) on top of
// the Store. HTTP handlers and in-process controllers both call it, so the rules live in one place:
// metadata bookkeeping, defaults, validation, optimistic concurrency, generation, finalizers,
// graceful deletion, dry run and managed fields; and lists and watches through selectors, with the
// filtered-watch translation (list-watch-filter.ts).
import { randomUUID, randomInt } from 'node:crypto';
import type { KindInfo } from '../api/kinds.js';
import { apiVersionOf } from '../api/kinds.js';
import type { Store, StoredObject, WatchEvent, WatchIndex, Watcher } from '../storage/types.js';
import { CompactedError, KeyExistsError, KeyNotFoundError, RevisionConflictError } from '../storage/types.js';
import { ApiError, errors, type StatusCause } from '../api/status.js';
import { collectionPrefix, objectKey, type ResourceRegistry } from './registry.js';
import { hasStatusSubresource, resetStatusOnCreate, specChanged, strategyFor, tracksGeneration, type StrategyContext } from './strategy.js';
import type { ServiceAllocator } from './allocators.js';
import { applyDefaults, applyCreateDefaults } from '../api/defaults/index.js';
import { validateObject } from '../api/validation/index.js';
import { updateManagedFields } from './patch/index.js';
import { loadSchemaSet } from '../api/schema.js';
import type { Admission } from './admission.js';
import { checkFields, type FieldValidation } from './fields.js';
import { nowRfc3339 } from '../util/time.js';
import { decodeContinue, encodeContinue, filteredEventType, selectorFilter, type ObjectFilter, type Selection, type WatchEventType } from './list-watch-filter.js';

export interface Actor {
  user: string;
  groups: string[];
  /** Field manager for managedFields: the `fieldManager` parameter or one derived from the User-Agent. */
  manager: string;
}

export interface WriteOptions {
  actor: Actor;
  dryRun?: boolean;
  fieldValidation?: FieldValidation;
  subresource?: string;
  /** managedFields were already computed (server-side apply). */
  preManaged?: boolean;
  /** The new object came from a patch (decoding errors are then 422 on `patch`). */
  isPatch?: boolean;
}

export interface WriteResult {
  obj: Readonly<Record<string, any>>;
  json: () => string;
  warnings: string[];
  created?: boolean;
}

export interface DeleteOptions {
  gracePeriodSeconds?: number;
  propagationPolicy?: 'Orphan' | 'Background' | 'Foreground';
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: boolean;
}

/** Where ObjectService finds what lives outside the store: a CRD's selectable fields, the compaction point. */
export interface ObjectServiceOptions {
  selectableFields?: (info: KindInfo) => readonly string[];
  compactedRevision?: () => number;
}

export interface ListPageOptions {
  filter?: ObjectFilter;
  /** 0 or unset: no limit. */
  limit?: number;
  continue?: string;
  /** Objects with this index value only (ListOptions.index); `filter` must select no more than it. */
  index?: WatchIndex;
}

export interface ListPage {
  items: StoredObject[];
  /** The revision the list reflects (the first page's, for every page of a paged list). */
  revision: number;
  continue?: string;
  /** Objects after this page; only when no filter made the count uncertain (as Kubernetes). */
  remainingItemCount?: number;
}

export interface WatchRequest {
  filter?: ObjectFilter;
  /** Changes after this revision; unset or 0: the current state first, as ADDED events. */
  resourceVersion?: number;
  /** sendInitialEvents: the current state first even with a resourceVersion. */
  initialEvents?: boolean;
  /** Registers the watcher under an index value (see WatchIndex). */
  index?: WatchIndex;
  /** Called after the initial ADDED events with the revision they reflect. */
  onListed?: (revision: number) => void;
  /** Takes the initial state whole instead of one `emit('ADDED')` per object (a caller that paces its writes). */
  onInitial?: (items: readonly StoredObject[]) => void;
}

const GENERATE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
const MAX_CONFLICT_RETRIES = 8;

/**
 * A stored object made ready for a write that replaces only top-level members: copies of the top
 * level and of metadata, with its labels and annotations (defaulting and strategies stamp those on
 * every write: a namespace's name label, a DaemonSet's template generation). Spec and the rest stay
 * shared with the frozen stored object, so the write must replace them, never change them in place;
 * defaulting only fills what is absent, and a stored object has it. A deep clone of the whole object
 * was most of a status write's, a binding's and a graceful delete's own cost.
 */
export function writableTop(old: Readonly<Record<string, any>>): Record<string, any> {
  const { labels, annotations } = old.metadata ?? {};
  const metadata: Record<string, any> = { ...old.metadata };
  if (labels) metadata.labels = { ...labels };
  if (annotations) metadata.annotations = { ...annotations };
  return { ...old, metadata };
}

export class ObjectService {
  private readonly strategyContext: StrategyContext;

  constructor(
    readonly store: Store,
    readonly registry: ResourceRegistry,
    services: ServiceAllocator,
    private readonly admission: Admission,
    private readonly options: ObjectServiceOptions = {},
  ) {
    this.strategyContext = { store, services };
  }

  key(info: KindInfo, ns: string | undefined, name: string): string {
    return objectKey(info, info.namespaced ? ns : undefined, name);
  }

  get(info: KindInfo, ns: string | undefined, name: string): StoredObject {
    const o = this.store.get(this.key(info, ns, name));
    if (!o) throw errors.notFound(info.plural, info.group, name);
    return o;
  }

  tryGet(info: KindInfo, ns: string | undefined, name: string): StoredObject | undefined {
    return this.store.get(this.key(info, ns, name));
  }

  list(info: KindInfo, ns: string | undefined, filter?: (o: StoredObject) => boolean): StoredObject[] {
    return this.store.list(collectionPrefix(info, info.namespaced ? ns : undefined), { filter }).items;
  }

  // ---- list and watch through selectors ----------------------------------------------------------

  /** Label and field selectors (a CRD's selectableFields included) as one predicate. */
  filterFor(info: KindInfo, sel: Selection): ObjectFilter | undefined {
    return selectorFilter(info, sel, info.crd ? this.options.selectableFields?.(info) ?? [] : []);
  }

  /** One page of a collection; `continue` comes from the previous page. */
  listPage(info: KindInfo, ns: string | undefined, opts: ListPageOptions = {}): ListPage {
    const prefix = collectionPrefix(info, info.namespaced ? ns || undefined : undefined);
    let afterKey: string | undefined;
    let listRevision: number | undefined;
    if (opts.continue) {
      const token = decodeContinue(opts.continue, this.options.compactedRevision?.() ?? 0);
      afterKey = prefix + token.start;
      listRevision = token.rv;
    }
    const filter = opts.filter;
    // Later pages show the collection as it was at the first page's revision (rebuilt from the watch
    // cache's event rings), so a paged list is one consistent snapshot; too old is 410, as etcd.
    let result;
    try {
      result = this.store.list(prefix, { afterKey, limit: opts.limit || undefined, filter, atRevision: listRevision, index: opts.index });
    } catch (e) {
      if (e instanceof CompactedError) {
        throw errors.gone(`The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.`);
      }
      throw e;
    }
    // Every page of a paged list reports the first page's revision, so a watch that follows it
    // replays anything that changed while the pages were read.
    const revision = listRevision ?? result.revision;
    const page: ListPage = { items: result.items, revision };
    if (result.lastKey !== undefined) {
      page.continue = encodeContinue(revision, result.lastKey.slice(prefix.length));
      // With a filter the count is only an upper bound; Kubernetes omits it then too.
      if (result.remaining !== undefined && !filter) page.remainingItemCount = result.remaining;
    }
    return page;
  }

  /**
   * Watches a collection through `req.filter`, calling `emit` with each change as this watcher sees it
   * (see filteredEventType). Events are delivered synchronously from the store's commit path; the
   * initial ADDED events before this returns. A compacted resourceVersion is 410 Gone.
   */
  watch(info: KindInfo, ns: string | undefined, req: WatchRequest, emit: (type: WatchEventType, o: StoredObject) => void): Watcher {
    const prefix = collectionPrefix(info, info.namespaced ? ns || undefined : undefined);
    const { filter, resourceVersion: rv } = req;
    let from: number;
    if (rv === undefined || rv === 0 || req.initialEvents) {
      const listed = this.store.list(prefix, { filter });
      from = listed.revision;
      if (req.onInitial) req.onInitial(listed.items);
      else for (const o of listed.items) emit('ADDED', o);
      req.onListed?.(from);
      if (rv !== undefined && rv > from) from = rv;
    } else {
      from = rv;
    }
    try {
      return this.store.watch(prefix, from, (e: WatchEvent) => {
        const type = filteredEventType(e, filter);
        if (type) emit(type, e.object);
      }, req.index);
    } catch (e) {
      if (e instanceof CompactedError) throw errors.gone(`too old resource version: ${e.requested} (${e.compacted})`);
      throw e;
    }
  }

  // ---- create ----------------------------------------------------------------------------------

  async create(info: KindInfo, ns: string | undefined, body: Record<string, any>, opts: WriteOptions): Promise<WriteResult> {
    const obj = body;
    const warnings: string[] = [];
    this.checkTypeMeta(info, obj);
    const meta = (obj.metadata ??= {});
    if (typeof meta !== 'object' || Array.isArray(meta)) throw errors.badRequest('metadata: expected an object');
    this.checkNamespace(info, ns, meta);
    warnings.push(...checkFields(info, obj, opts.fieldValidation ?? 'Warn', this.admission.crdSchema(info)));

    if (meta.resourceVersion) throw errors.badRequest('resourceVersion should not be set on objects to be created');
    if (!meta.name && meta.generateName) meta.name = meta.generateName + randomSuffix();
    delete meta.uid; delete meta.deletionTimestamp; delete meta.deletionGracePeriodSeconds; delete meta.selfLink;
    meta.uid = randomUUID();
    meta.creationTimestamp = nowRfc3339();
    if (tracksGeneration(info)) meta.generation = 1; else delete meta.generation;
    const strategy = strategyFor(info);
    strategy.afterGeneration?.(obj);
    resetStatusOnCreate(info, obj);
    if (!info.crd) {
      applyDefaults(info.group, info.plural, obj as any);
      applyCreateDefaults(info.group, info.plural, obj as any);
    }

    const causes = this.validate(info, obj);
    if (causes.length) throw errors.invalid(info.kind, info.group, meta.name ?? '', causes);

    await this.admission.admitCreate(info, obj, opts);
    warnings.push(...await this.admission.admitDynamic(info, 'CREATE', obj, undefined, opts, () => {
      // A patched object is defaulted again, as kube-apiserver decodes a webhook's result.
      if (!info.crd) applyDefaults(info.group, info.plural, obj as any);
      const again = this.validate(info, obj);
      if (again.length) throw errors.invalid(info.kind, info.group, meta.name ?? '', again);
    }));
    const release = this.allocate(info, obj, undefined);
    if (!opts.preManaged) setManagedFields(obj, updateManagedFields(undefined, obj as any, managerOptions(info, opts)));
    try {
      if (opts.dryRun) {
        // A dry-run create of an existing name fails as the real one would.
        if (this.store.get(this.key(info, ns, meta.name))) throw errors.alreadyExists(info.plural, info.group, meta.name);
        return { obj, json: () => JSON.stringify(obj), warnings, created: true };
      }
      const stored = await this.store.create(this.key(info, ns, meta.name), obj);
      return { obj: stored.obj, json: () => stored.json(), warnings, created: true };
    } catch (e) {
      throw this.mapStoreError(e, info, meta.name);
    } finally {
      release();
      this.admission.afterCreate(obj);
    }
  }

  // ---- update ----------------------------------------------------------------------------------

  /**
   * PUT semantics. `mutate` (for patches) recomputes the new object from the current one on every
   * try, so concurrent writers are retried instead of failing; a plain PUT with a resourceVersion
   * fails with 409 when it is stale.
   */
  async update(info: KindInfo, ns: string | undefined, name: string,
    mutate: (current: StoredObject | undefined) => Record<string, any> | Promise<Record<string, any>>,
    opts: WriteOptions & { allowCreate?: boolean; operation?: 'Update' | 'Apply' }): Promise<WriteResult> {
    const key = this.key(info, ns, name);
    for (let attempt = 0; ; attempt++) {
      const current = this.store.get(key);
      const obj = await mutate(current);
      if (!current) {
        if (!opts.allowCreate) throw errors.notFound(info.plural, info.group, name);
        obj.metadata ??= {};
        if (obj.metadata.name && obj.metadata.name !== name) throw errors.badRequest(`the name of the object (${obj.metadata.name}) does not match the name on the URL (${name})`);
        obj.metadata.name = name;
        delete obj.metadata.resourceVersion;
        return this.create(info, ns, obj, opts);
      }
      try {
        return await this.updateFrom(info, ns, name, current, obj, opts);
      } catch (e) {
        if (e instanceof RetryableConflict && attempt < MAX_CONFLICT_RETRIES) continue;
        if (e instanceof RetryableConflict) throw errors.conflict(info.plural, info.group, name);
        throw e;
      }
    }
  }

  private async updateFrom(info: KindInfo, ns: string | undefined, name: string, current: StoredObject,
    obj: Record<string, any>, opts: WriteOptions & { operation?: 'Update' | 'Apply' }): Promise<WriteResult> {
    const warnings: string[] = [];
    const old = current.obj;
    this.checkTypeMeta(info, obj);
    const meta = (obj.metadata ??= {});
    if (typeof meta !== 'object' || Array.isArray(meta)) throw errors.badRequest('metadata: expected an object');
    if (meta.name !== undefined && meta.name !== name) throw errors.badRequest(`the name of the object (${meta.name}) does not match the name on the URL (${name})`);
    meta.name = name;
    this.checkNamespace(info, ns, meta);
    warnings.push(...checkFields(info, obj, opts.fieldValidation ?? 'Warn', this.admission.crdSchema(info), opts.isPatch));

    // "0" (like "") is an unconditional update: kube-apiserver parses it to 0, which means "no precondition".
    const pinned = meta.resourceVersion !== undefined && meta.resourceVersion !== '' && String(meta.resourceVersion) !== '0';
    if (pinned && String(meta.resourceVersion) !== old.metadata.resourceVersion) {
      throw errors.conflict(info.plural, info.group, name);
    }
    // System-owned metadata is carried over from the stored object whatever the client sent.
    meta.uid = old.metadata.uid;
    meta.creationTimestamp = old.metadata.creationTimestamp;
    if (old.metadata.deletionTimestamp) {
      meta.deletionTimestamp = old.metadata.deletionTimestamp;
      meta.deletionGracePeriodSeconds = old.metadata.deletionGracePeriodSeconds;
    } else {
      delete meta.deletionTimestamp; delete meta.deletionGracePeriodSeconds;
    }
    if (old.metadata.generation !== undefined) meta.generation = old.metadata.generation; else delete meta.generation;

    let result: Record<string, any> = obj;
    const strategy = strategyFor(info);
    const prepared = strategy.prepareUpdate?.(opts.subresource, obj, old);
    if (prepared) {
      result = prepared;
    } else if (opts.subresource === 'status') {
      // A status write changes status only (and nothing in metadata but what Kubernetes allows there).
      result = writableTop(old);
      result.status = obj.status;
    } else if (hasStatusSubresource(info) && opts.subresource !== 'finalize' && opts.subresource !== 'binding') {
      // (finalize writes spec.finalizers; binding writes spec.nodeName and the PodScheduled condition)
      if (old.status !== undefined) result.status = structuredClone(old.status); else delete result.status;
    }
    strategy.keepOnUpdate?.(result, old);
    if (tracksGeneration(info) && opts.subresource !== 'status' && specChanged(result, old)) {
      result.metadata.generation = (old.metadata.generation ?? 0) + 1;
    }
    strategy.afterGeneration?.(result, old);
    if (!info.crd) applyDefaults(info.group, info.plural, result as any);
    // pods/binding is the one sanctioned change of an immutable pod field (spec.nodeName).
    const causes = opts.subresource === 'binding' ? [] : this.validate(info, result, old, opts.subresource);
    if (causes.length) throw errors.invalid(info.kind, info.group, name, causes);
    await this.admission.admitUpdate(info, result, old, opts);
    warnings.push(...await this.admission.admitDynamic(info, 'UPDATE', result, old, opts, () => {
      if (!info.crd) applyDefaults(info.group, info.plural, result as any);
      const again = opts.subresource === 'binding' ? [] : this.validate(info, result, old, opts.subresource);
      if (again.length) throw errors.invalid(info.kind, info.group, name, again);
    }));

    // A status write leaves the spec (and so the allocations) as stored.
    const release = opts.subresource === 'status' ? () => {} : this.allocate(info, result, old);
    if (!opts.preManaged) {
      setManagedFields(result, updateManagedFields(old as any, result as any, managerOptions(info, opts)));
    }
    try {
      // Unchanged objects are not written: no new resourceVersion, no watch event (as Kubernetes).
      if (sameContent(result, old)) return { obj: old, json: () => current.json(), warnings };
      if (opts.dryRun) {
        // What the write would store, with the resourceVersion the object still has: `kubectl diff
        // --server-side` compares this with the live object, so a missing one is a difference.
        const dry = { ...result, metadata: { ...result.metadata, resourceVersion: old.metadata.resourceVersion } };
        return { obj: dry, json: () => JSON.stringify(dry), warnings };
      }
      // A terminating object whose last finalizer is gone is deleted for real.
      if (result.metadata.deletionTimestamp && !(result.metadata.finalizers?.length) && !strategy.deletionPending?.(this.strategyContext, result)) {
        const gone = await this.store.delete(current.key, current.modRevision);
        return { obj: gone.obj, json: () => gone.json(), warnings };
      }
      const stored = await this.store.update(current.key, result, current.modRevision);
      return { obj: stored.obj, json: () => stored.json(), warnings };
    } catch (e) {
      if (e instanceof RevisionConflictError) {
        if (pinned) throw errors.conflict(info.plural, info.group, name);
        throw new RetryableConflict();
      }
      throw this.mapStoreError(e, info, name);
    } finally {
      release();
    }
  }

  // ---- delete ----------------------------------------------------------------------------------

  async delete(info: KindInfo, ns: string | undefined, name: string, opts: DeleteOptions, actor: Actor): Promise<WriteResult & { deleted: boolean }> {
    for (let attempt = 0; attempt < MAX_CONFLICT_RETRIES; attempt++) {
      const current = this.get(info, ns, name);
      const old = current.obj;
      this.admission.admitDelete(info, old);
      const warnings = await this.admission.admitDynamic(info, 'DELETE', undefined, old, { actor, dryRun: opts.dryRun }, () => {});
      const pre = opts.preconditions;
      if (pre?.uid && pre.uid !== old.metadata.uid) {
        throw errors.conflict(info.plural, info.group, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old.metadata.uid}`);
      }
      if (pre?.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion) {
        throw errors.conflict(info.plural, info.group, name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${old.metadata.resourceVersion}`);
      }
      // A deletion changes nothing below metadata in place (a strategy replaces a member, as the
      // namespace's status). A deep clone of a pod cost more than the rest of its graceful delete.
      const next = writableTop(old);
      const meta = next.metadata;
      const finalizers = new Set<string>(meta.finalizers ?? []);
      // Propagation policies become finalizers the garbage collector acts on.
      if (opts.propagationPolicy === 'Orphan') finalizers.add('orphan');
      if (opts.propagationPolicy === 'Foreground') finalizers.add('foregroundDeletion');
      if (opts.propagationPolicy === 'Background') { finalizers.delete('orphan'); finalizers.delete('foregroundDeletion'); }
      const graceful = strategyFor(info).beginGracefulDeletion?.(this.strategyContext, next, old, opts) ?? false;
      if (finalizers.size > 0 || graceful) {
        meta.finalizers = finalizers.size ? [...finalizers] : undefined;
        if (meta.finalizers === undefined) delete meta.finalizers;
        meta.deletionTimestamp ??= nowRfc3339();
        meta.deletionGracePeriodSeconds ??= 0;
        if (opts.dryRun) return { obj: next, json: () => JSON.stringify(next), warnings, deleted: false };
        if (sameContent(next, old)) return { obj: old, json: () => current.json(), warnings, deleted: false };
        next.metadata.managedFields = old.metadata.managedFields;
        try {
          const stored = await this.store.update(current.key, next, current.modRevision);
          return { obj: stored.obj, json: () => stored.json(), warnings, deleted: false };
        } catch (e) {
          if (e instanceof RevisionConflictError) continue;
          throw this.mapStoreError(e, info, name);
        }
      }
      if (opts.dryRun) return { obj: old, json: () => current.json(), warnings, deleted: true };
      try {
        const gone = await this.store.delete(current.key, current.modRevision);
        await this.admission.afterDelete(info, gone.obj, actor);
        return { obj: gone.obj, json: () => gone.json(), warnings, deleted: true };
      } catch (e) {
        if (e instanceof RevisionConflictError) continue;
        throw this.mapStoreError(e, info, name);
      }
    }
    throw errors.conflict(info.plural, info.group, name);
  }

  // ---- helpers ---------------------------------------------------------------------------------

  /** The kind's reservations for a write (none for most kinds); returns their release. */
  private allocate(info: KindInfo, obj: Record<string, any>, old: Readonly<Record<string, any>> | undefined): () => void {
    const a = strategyFor(info).allocate?.(this.strategyContext, obj, old);
    if (!a) return () => {};
    if (a.causes.length) { a.release(); throw errors.invalid(info.kind, info.group, obj.metadata?.name ?? '', a.causes); }
    return a.release;
  }

  private validate(info: KindInfo, obj: Record<string, any>, old?: Readonly<Record<string, any>>, subresource?: string): StatusCause[] {
    if (info.crd) return this.admission.validateCustom(info, obj, old);
    return validateObject(info, obj as any, old as any, subresource);
  }

  checkTypeMeta(info: KindInfo, obj: Record<string, any>): void {
    const want = apiVersionOf(info);
    if (obj.apiVersion === undefined && obj.kind === undefined) { obj.apiVersion = want; obj.kind = info.kind; return; }
    if (obj.kind !== undefined && obj.kind !== info.kind) {
      throw errors.badRequest(`the kind in the data (${obj.kind}) does not match the expected kind (${info.kind})`);
    }
    if (obj.apiVersion !== undefined && obj.apiVersion !== want) {
      throw errors.badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${want})`);
    }
    obj.apiVersion = want;
    obj.kind = info.kind;
  }

  private checkNamespace(info: KindInfo, ns: string | undefined, meta: Record<string, any>): void {
    if (info.namespaced) {
      if (meta.namespace && ns && meta.namespace !== ns) {
        throw errors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      if (ns) meta.namespace = ns;
    } else {
      delete meta.namespace;
    }
  }

  mapStoreError(e: unknown, info: KindInfo, name: string): unknown {
    if (e instanceof ApiError) return e;
    if (e instanceof KeyExistsError) return errors.alreadyExists(info.plural, info.group, name);
    if (e instanceof KeyNotFoundError) return errors.notFound(info.plural, info.group, name);
    if (e instanceof RevisionConflictError) return errors.conflict(info.plural, info.group, name);
    return e;
  }
}

class RetryableConflict extends Error {}

function managerOptions(info: KindInfo, opts: WriteOptions) {
  const schemas = loadSchemaSet();
  return {
    manager: opts.actor.manager, apiVersion: apiVersionOf(info), subresource: opts.subresource, time: nowRfc3339(),
    schema: info.crd ? undefined : schemas.type(info.modelType), schemas,
    // Custom resources without a status subresource own their status through the main resource.
    ...(info.crd && !hasStatusSubresource(info) ? { resetFields: [] } : {}),
  };
}

function setManagedFields(obj: Record<string, any>, entries: unknown[] | undefined): void {
  if (entries === undefined) delete obj.metadata.managedFields;
  else obj.metadata.managedFields = entries;
}

/**
 * Equal ignoring resourceVersion, the timestamps inside managedFields, key order and undefined
 * members: a patch or apply rebuilds objects with keys in another order, and that is no change.
 */
function sameContent(a: Readonly<Record<string, any>>, b: Readonly<Record<string, any>>): boolean {
  const skipTop = (k: string) => k === 'metadata';
  const skipMeta = (k: string) => k === 'resourceVersion' || k === 'managedFields';
  if (!jsonEqual(a, b, skipTop) || !jsonEqual(a.metadata ?? {}, b.metadata ?? {}, skipMeta)) return false;
  const ma: any[] = a.metadata?.managedFields ?? [];
  const mb: any[] = b.metadata?.managedFields ?? [];
  return ma.length === mb.length && ma.every((m, i) => jsonEqual(m, mb[i], (k) => k === 'time'));
}

/** Structural equality of JSON values: key order and undefined members do not count; `skip` names top-level keys left out. */
function jsonEqual(a: unknown, b: unknown, skip?: (key: string) => boolean): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => jsonEqual(x, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  let n = 0;
  for (const k in ao) {
    if (ao[k] === undefined || skip?.(k)) continue;
    n++;
    if (!jsonEqual(ao[k], bo[k])) return false;
  }
  for (const k in bo) if (bo[k] !== undefined && !skip?.(k)) n--;
  return n === 0;
}

export function randomSuffix(n = 5): string {
  let s = '';
  for (let i = 0; i < n; i++) s += GENERATE_ALPHABET[randomInt(GENERATE_ALPHABET.length)];
  return s;
}

