// The generic object service: Kubernetes REST semantics for any kind (built-in or custom) on top of
// the Store. HTTP handlers and in-process controllers both call it, so the rules live in one place:
// metadata bookkeeping, defaults, validation, optimistic concurrency, generation, finalizers,
// graceful deletion, dry run and managed fields.
import { randomUUID, randomInt } from 'node:crypto';
import type { KindInfo } from '../api/kinds.js';
import { apiVersionOf } from '../api/kinds.js';
import type { Store, StoredObject } from '../storage/types.js';
import { KeyExistsError, KeyNotFoundError, RevisionConflictError } from '../storage/types.js';
import { ApiError, errors, type StatusCause } from '../api/status.js';
import { collectionPrefix, objectKey, type ResourceRegistry } from './registry.js';
import { hasStatusSubresource, isNamespace, isPod, resetStatusOnCreate, specChanged, tracksGeneration } from './strategy.js';
import type { ServiceAllocator } from './allocators.js';
import { applyDefaults, applyCreateDefaults } from '../api/defaults/index.js';
import { validateObject } from '../api/validation/index.js';
import { updateManagedFields } from './patch/index.js';
import { loadSchemaSet } from '../api/schema.js';
import type { Admission } from './admission.js';
import { checkFields, type FieldValidation } from './fields.js';
import { nowRfc3339 } from '../util/time.js';
import { isCsr, prepareCsrUpdate } from './csr-strategy.js';

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

const GENERATE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
const MAX_CONFLICT_RETRIES = 8;

export class ObjectService {
  constructor(
    readonly store: Store,
    readonly registry: ResourceRegistry,
    private readonly services: ServiceAllocator,
    private readonly admission: Admission,
  ) {}

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
    if (info.group === 'apps' && info.plural === 'daemonsets') stampDaemonSetTemplateGeneration(obj);
    resetStatusOnCreate(info, obj);
    if (!info.crd) {
      applyDefaults(info.group, info.plural, obj as any);
      applyCreateDefaults(info.group, info.plural, obj as any);
    }

    const causes = this.validate(info, obj);
    if (causes.length) throw errors.invalid(info.kind, info.group, meta.name ?? '', causes);

    await this.admission.admitCreate(info, obj, opts);
    let release = () => {};
    if (info.group === '' && info.plural === 'services') {
      const a = this.services.assign(obj);
      release = a.release;
      if (a.causes.length) { release(); throw errors.invalid(info.kind, info.group, meta.name, a.causes); }
    }
    if (!opts.preManaged) setManagedFields(obj, updateManagedFields(undefined, obj as any, managerOptions(info, opts)));
    try {
      if (opts.dryRun) return { obj, json: () => JSON.stringify(obj), warnings, created: true };
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
    if (isCsr(info)) {
      result = { ...obj, metadata: opts.subresource ? { ...structuredClone(old.metadata) } : meta };
      prepareCsrUpdate(opts.subresource, result, obj, old);
    } else if (opts.subresource === 'status') {
      // A status write changes status only (and nothing in metadata but what Kubernetes allows there).
      result = { ...structuredClone(old), status: obj.status };
      result.metadata = { ...structuredClone(old.metadata) };
    } else if (hasStatusSubresource(info) && opts.subresource !== 'finalize' && opts.subresource !== 'binding') {
      // (finalize writes spec.finalizers; binding writes spec.nodeName and the PodScheduled condition)
      if (old.status !== undefined) result.status = structuredClone(old.status); else delete result.status;
    }
    if (info.group === '' && info.plural === 'services') keepServiceAllocations(result, old);
    if (tracksGeneration(info) && opts.subresource !== 'status' && specChanged(result, old)) {
      result.metadata.generation = (old.metadata.generation ?? 0) + 1;
    }
    if (info.group === 'apps' && info.plural === 'daemonsets') stampDaemonSetTemplateGeneration(result, old);
    if (!info.crd) applyDefaults(info.group, info.plural, result as any);
    // pods/binding is the one sanctioned change of an immutable pod field (spec.nodeName).
    const causes = opts.subresource === 'binding' ? [] : this.validate(info, result, old);
    if (causes.length) throw errors.invalid(info.kind, info.group, name, causes);
    await this.admission.admitUpdate(info, result, old, opts);

    let release = () => {};
    if (info.group === '' && info.plural === 'services' && opts.subresource !== 'status') {
      const a = this.services.assign(result, old);
      release = a.release;
      if (a.causes.length) { release(); throw errors.invalid(info.kind, info.group, name, a.causes); }
    }
    if (!opts.preManaged) {
      setManagedFields(result, updateManagedFields(old as any, result as any, managerOptions(info, opts)));
    }
    try {
      // Unchanged objects are not written: no new resourceVersion, no watch event (as Kubernetes).
      if (sameContent(result, old)) return { obj: old, json: () => current.json(), warnings };
      if (opts.dryRun) return { obj: { ...result, metadata: { ...result.metadata, resourceVersion: old.metadata.resourceVersion } }, json: () => JSON.stringify(result), warnings };
      // A terminating object whose last finalizer is gone is deleted for real.
      if (result.metadata.deletionTimestamp && !(result.metadata.finalizers?.length) && !this.waitsForKubelet(info, result)) {
        if (!(isNamespace(info) && result.spec?.finalizers?.length)) {
          const gone = await this.store.delete(current.key, current.modRevision);
          return { obj: gone.obj, json: () => gone.json(), warnings };
        }
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
      const pre = opts.preconditions;
      if (pre?.uid && pre.uid !== old.metadata.uid) {
        throw errors.conflict(info.plural, info.group, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old.metadata.uid}`);
      }
      if (pre?.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion) {
        throw errors.conflict(info.plural, info.group, name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${old.metadata.resourceVersion}`);
      }
      const next = structuredClone(old) as Record<string, any>;
      const meta = next.metadata;
      let graceful = false;
      const finalizers = new Set<string>(meta.finalizers ?? []);
      // Propagation policies become finalizers the garbage collector acts on.
      if (opts.propagationPolicy === 'Orphan') finalizers.add('orphan');
      if (opts.propagationPolicy === 'Foreground') finalizers.add('foregroundDeletion');
      if (opts.propagationPolicy === 'Background') { finalizers.delete('orphan'); finalizers.delete('foregroundDeletion'); }
      if (isPod(info) && this.waitsForKubelet(info, old)) {
        const grace = opts.gracePeriodSeconds ?? old.spec?.terminationGracePeriodSeconds ?? 30;
        if (grace > 0) {
          graceful = true;
          const prev = meta.deletionGracePeriodSeconds;
          if (prev === undefined || grace < prev) {
            meta.deletionGracePeriodSeconds = grace;
            meta.deletionTimestamp = nowRfc3339(grace);
          }
        }
      }
      if (isNamespace(info) && (old.spec?.finalizers?.length ?? 0) > 0) {
        graceful = true;
        next.status = { ...(next.status ?? {}), phase: 'Terminating' };
      }
      if (finalizers.size > 0 || graceful) {
        meta.finalizers = finalizers.size ? [...finalizers] : undefined;
        if (meta.finalizers === undefined) delete meta.finalizers;
        meta.deletionTimestamp ??= nowRfc3339();
        meta.deletionGracePeriodSeconds ??= 0;
        if (opts.dryRun) return { obj: next, json: () => JSON.stringify(next), warnings: [], deleted: false };
        if (sameContent(next, old)) return { obj: old, json: () => current.json(), warnings: [], deleted: false };
        next.metadata.managedFields = old.metadata.managedFields;
        try {
          const stored = await this.store.update(current.key, next, current.modRevision);
          return { obj: stored.obj, json: () => stored.json(), warnings: [], deleted: false };
        } catch (e) {
          if (e instanceof RevisionConflictError) continue;
          throw this.mapStoreError(e, info, name);
        }
      }
      if (opts.dryRun) return { obj: old, json: () => current.json(), warnings: [], deleted: true };
      try {
        const gone = await this.store.delete(current.key, current.modRevision);
        await this.admission.afterDelete(info, gone.obj, actor);
        return { obj: gone.obj, json: () => gone.json(), warnings: [], deleted: true };
      } catch (e) {
        if (e instanceof RevisionConflictError) continue;
        throw this.mapStoreError(e, info, name);
      }
    }
    throw errors.conflict(info.plural, info.group, name);
  }

  /** A pod bound to an existing node is deleted by that node's agent after its containers stop. */
  private waitsForKubelet(info: KindInfo, pod: Readonly<Record<string, any>>): boolean {
    if (!isPod(info) || !pod.spec?.nodeName) return false;
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return false;
    if (pod.metadata?.deletionGracePeriodSeconds === 0) return false;
    return this.store.get(`/core/nodes/${pod.spec.nodeName}`) !== undefined;
  }

  // ---- helpers ---------------------------------------------------------------------------------

  private validate(info: KindInfo, obj: Record<string, any>, old?: Readonly<Record<string, any>>): StatusCause[] {
    if (info.crd) return this.admission.validateCustom(info, obj, old);
    return validateObject(info, obj as any, old as any);
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

/**
 * DaemonSets carry the generation at which their pod template last changed (Kubernetes' strategy
 * keeps it in this annotation; the DaemonSet controller labels pods with it).
 */
function stampDaemonSetTemplateGeneration(ds: Record<string, any>, old?: Readonly<Record<string, any>>): void {
  const key = 'deprecated.daemonset.template.generation';
  const ann = (ds.metadata.annotations ??= {});
  if (!old) { ann[key] = String(ds.metadata.generation ?? 1); return; }
  const changed = JSON.stringify(ds.spec?.template) !== JSON.stringify(old.spec?.template);
  ann[key] = changed ? String(ds.metadata.generation) : (old.metadata.annotations?.[key] ?? String(ds.metadata.generation));
}

/** A Service update that omits its allocated IPs and ports keeps them (Kubernetes does the same). */
function keepServiceAllocations(svc: Record<string, any>, old: Readonly<Record<string, any>>): void {
  const spec = svc.spec ?? (svc.spec = {});
  const o = old.spec ?? {};
  if ((spec.type ?? 'ClusterIP') === 'ExternalName') return;
  if (!spec.clusterIP && o.clusterIP) spec.clusterIP = o.clusterIP;
  if (!spec.clusterIPs && o.clusterIPs) spec.clusterIPs = [...o.clusterIPs];
  if (!spec.ipFamilies && o.ipFamilies) spec.ipFamilies = [...o.ipFamilies];
  if (spec.healthCheckNodePort === undefined && o.healthCheckNodePort !== undefined) spec.healthCheckNodePort = o.healthCheckNodePort;
  for (const p of spec.ports ?? []) {
    if (p.nodePort) continue;
    const prev = (o.ports ?? []).find((q: any) => q.port === p.port && (q.protocol ?? 'TCP') === (p.protocol ?? 'TCP'));
    if (prev?.nodePort) p.nodePort = prev.nodePort;
  }
}

function setManagedFields(obj: Record<string, any>, entries: unknown[] | undefined): void {
  if (entries === undefined) delete obj.metadata.managedFields;
  else obj.metadata.managedFields = entries;
}

/** Equal ignoring resourceVersion and the timestamps inside managedFields. */
function sameContent(a: Readonly<Record<string, any>>, b: Readonly<Record<string, any>>): boolean {
  const norm = (o: Readonly<Record<string, any>>) => JSON.stringify({
    ...o,
    metadata: { ...o.metadata, resourceVersion: undefined, managedFields: (o.metadata?.managedFields ?? []).map((m: any) => ({ ...m, time: undefined })) },
  });
  return norm(a) === norm(b);
}

export function randomSuffix(n = 5): string {
  let s = '';
  for (let i = 0; i < n; i++) s += GENERATE_ALPHABET[randomInt(GENERATE_ALPHABET.length)];
  return s;
}

