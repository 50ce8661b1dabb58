// The in-process ApiClient for the control loops inside `skiff server`: the same REST semantics as
// the HTTP API (it calls the ObjectService the handlers call), without sockets or encoding.
//
// Objects it returns are the watch cache's own: deep-frozen and shared with every other reader, never
// copied. Never mutate them; `structuredClone` one before changing it and sending it back.
// Watch events are delivered synchronously from the store's commit path (for resourceVersion '0',
// the initial ADDED events even before watch() returns).
//
// Writes are made as the actor given at construction (user, groups, field manager), as the HTTP
// path makes them as the authenticated user. Authorization is not checked in process: the server's
// own loops hold system:masters-equivalent rights, as kube-controller-manager's do in practice.
//
// A client given a LoopBudget (`withBudget`) waits for a seat in it before each write, as
// kube-controller-manager's client waits for its rate limiter (see src/util/loop-budget.ts).
import type { KindInfo } from '../api/kinds.js';
import type { KObject } from '../api/object.js';
import type { Actor, ObjectService, WriteOptions as ServiceWriteOptions } from './objects.js';
import { converterFor } from './conversion.js';
import { parseResourceVersion } from './list-watch-filter.js';
import { ApiError, errors } from '../api/status.js';
import { patchObject } from './patching.js';
import { bindPod, evictPod } from './pod-actions.js';
import type { LoopBudget } from '../util/loop-budget.js';
import {
  Resources, refName, type ApiClient, type ClientWatchEvent, type DeleteOptions, type ListOptions, type ListResult, type PatchOptions,
  type PatchType, type ResourceRef, type ServedResource, type WatchHandle, type WatchOptions, type WriteOptions,
} from '../client/types.js';

export class LocalClient implements ApiClient {
  private closed = false;

  constructor(private readonly objects: ObjectService, private readonly actor: Actor, private readonly budget?: LoopBudget) {}

  /** The same service as another actor (e.g. one client per controller, each its own field manager), with the same budget. */
  as(actor: Actor): LocalClient {
    return new LocalClient(this.objects, actor, this.budget);
  }

  /** The same client, its writes waiting for seats in `budget`. */
  withBudget(budget: LoopBudget): LocalClient {
    return new LocalClient(this.objects, this.actor, budget);
  }

  /** A write, through the budget when there is one. */
  private write<T>(fn: () => Promise<T>): Promise<T> {
    return this.budget ? this.budget.run(fn) : fn();
  }

  async get<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, name: string): Promise<T | undefined> {
    const info = this.info(ref);
    return this.objects.tryGet(info, ns, name)?.obj as T | undefined;
  }

  async list<T extends KObject = KObject>(ref: ResourceRef, ns?: string, opts: ListOptions = {}): Promise<ListResult<T>> {
    const info = this.info(ref);
    const page = this.objects.listPage(info, ns, { filter: this.objects.filterFor(info, opts), limit: opts.limit, continue: opts.continue });
    const out: ListResult<T> = { items: page.items.map((o) => o.obj as T), resourceVersion: String(page.revision) };
    if (page.continue !== undefined) out.continue = page.continue;
    return out;
  }

  watch<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, resourceVersion: string | undefined,
    onEvent: (e: ClientWatchEvent<T>) => void, opts: WatchOptions = {}): WatchHandle {
    let stopped = false;
    let finish!: (err: Error | undefined) => void;
    const done = new Promise<Error | undefined>((resolve) => { finish = resolve; });
    let watcher: { stop(): void } | undefined;
    const handle: WatchHandle = {
      stop: () => {
        if (stopped) return;
        stopped = true;
        watcher?.stop();
        finish(undefined);
      },
      done,
    };
    try {
      const info = this.info(ref);
      const filter = this.objects.filterFor(info, opts);
      watcher = this.objects.watch(info, ns, { filter, resourceVersion: parseResourceVersion(resourceVersion) }, (type, o) => {
        if (!stopped) onEvent({ type, object: o.obj as T });
      });
      if (stopped) watcher.stop();    // stop() called from inside a replayed event
    } catch (e) {
      stopped = true;
      finish(e instanceof Error ? e : new Error(String(e)));
    }
    return handle;
  }

  async create<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, body: KObject, opts: WriteOptions = {}): Promise<T> {
    const info = this.info(ref);
    const sent = asSent(body);
    const r = await this.write(() => this.objects.create(info, ns, sent, this.writeOptions(opts)));
    return r.obj as T;
  }

  async update<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, body: KObject, opts: WriteOptions = {}): Promise<T> {
    return this.put(ref, ns, body, opts, undefined);
  }

  async updateStatus<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, body: KObject, opts: WriteOptions = {}): Promise<T> {
    return this.put(ref, ns, body, opts, 'status');
  }

  async patch<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, name: string, type: PatchType,
    body: unknown, opts: PatchOptions = {}): Promise<T> {
    const info = this.info(ref);
    const sub = opts.subresource;
    if (sub && !(info.subresources ?? []).includes(sub)) throw errors.notFoundPath();
    if (!['json', 'merge', 'strategic', 'apply'].includes(type)) throw errors.unsupportedMediaType(String(type));
    const sent = asSent(body);
    const { result } = await this.write(() => patchObject(this.objects, info, ns, name, {
      kind: type, body: sent, force: opts.force, subresource: sub, fieldManagerGiven: Boolean(opts.fieldManager),
    }, this.writeOptions(opts)));
    return result.obj as T;
  }

  async bind(ns: string, pod: string, node: string): Promise<void> {
    await this.write(() => bindPod(this.objects, ns, pod, node, this.writeOptions({})));
  }

  async evict(ns: string, pod: string, opts: DeleteOptions = {}): Promise<void> {
    await this.write(() => evictPod(this.objects, ns, pod, opts, this.actor));
  }

  async delete<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, name: string, opts: DeleteOptions = {}): Promise<T> {
    const info = this.info(ref);
    const r = await this.write(() => this.objects.delete(info, ns, name, opts, this.actor));
    return r.obj as T;
  }

  async finalizeNamespace<T extends KObject = KObject>(body: KObject, opts: WriteOptions = {}): Promise<T> {
    return this.put(Resources.namespaces, undefined, body, opts, 'finalize');
  }

  async preferredResources(): Promise<ServedResource[]> {
    if (this.closed) throw new Error('client is closed');
    const registry = this.objects.registry;
    const out: ServedResource[] = [];
    const seen = new Set<string>();
    // The same walk as HTTP discovery: groups in discovery order, each group's versions preferred first.
    for (const { group, versions } of registry.groups()) {
      for (const version of versions) {
        for (const k of registry.kindsIn(group, version)) {
          if (seen.has(`${group}/${k.plural}`)) continue;
          seen.add(`${group}/${k.plural}`);
          out.push({ group, version, resource: k.plural, kind: k.kind, namespaced: k.namespaced, verbs: k.verbs });
        }
      }
    }
    return out;
  }

  close(): void {
    this.closed = true;
  }

  private async put<T extends KObject>(ref: ResourceRef, ns: string | undefined, body: KObject, opts: WriteOptions,
    subresource: 'status' | 'finalize' | undefined): Promise<T> {
    const info = this.info(ref);
    if (subresource && !(info.subresources ?? []).includes(subresource)) throw errors.notFoundPath();
    const name = body.metadata?.name;
    if (!name) throw errors.badRequest('name is required for update');
    // The service may retry the write; each try must start from the caller's object as it was at
    // this call (the write may wait for the budget first), untouched.
    const sent = JSON.stringify(body);
    const r = await this.write(() => this.objects.update(info, ns, name, () => JSON.parse(sent) as KObject, { ...this.writeOptions(opts), subresource }));
    return r.obj as T;
  }

  private writeOptions(opts: WriteOptions): ServiceWriteOptions {
    const actor = opts.fieldManager ? { ...this.actor, manager: opts.fieldManager } : this.actor;
    return { actor, dryRun: opts.dryRun };
  }

  private info(ref: ResourceRef): KindInfo {
    if (this.closed) throw new Error('client is closed');
    const info = this.objects.registry.lookup(ref.group, ref.version, ref.resource);
    if (!info || info.virtual) throw errors.notFoundPath();
    // Versions served by conversion (autoscaling/v1) would need converting both ways; the loops use
    // the stored version instead.
    if (converterFor(info)) {
      throw new ApiError(400, 'BadRequest', `${refName(ref)}/${ref.version} is served by conversion; use the stored version in process`);
    }
    return info;
  }
}

/**
 * A request body as the server would receive it over HTTP: a private copy (the service mutates
 * what it is given) without the `undefined` members that JSON cannot carry, so that an object
 * built with `{ labels: maybe }` means the same in process as on the wire.
 */
function asSent<V>(body: V): V {
  return JSON.parse(JSON.stringify(body)) as V;
}

