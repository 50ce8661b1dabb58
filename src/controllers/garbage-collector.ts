// The garbage collector: follows the ownerReferences graph over every stored kind (built-ins and
// custom resources) and carries out the three propagation policies, as kube-controller-manager's
// garbage collector does:
//  - an object whose owners are all gone (or all waiting for their dependents) is deleted, with the
//    policy its own finalizers ask for (Background otherwise); one with some live owners only loses
//    its references to the dead ones;
//  - an owner being deleted with the `foregroundDeletion` finalizer has its dependents deleted first
//    and loses the finalizer once no dependent with `blockOwnerDeletion` is left (the API server then
//    deletes it);
//  - an owner being deleted with the `orphan` finalizer has every dependent's reference to it removed,
//    then the finalizer.
// The graph is kept in memory, indexed by owner uid, from one informer per stored resource; the work
// queue holds object uids. Every decision re-reads the owner (from the graph, or from the API when the
// graph has not seen it), and every write carries uid and resourceVersion preconditions, so a stale
// graph can only delay the collector, never make it delete something that still has an owner.
import type { KindInfo } from '../api/kinds.js';
import type { KObject, OwnerReference } from '../api/object.js';
import { isNotFound, type DeleteOptions, type ResourceRef } from '../client/types.js';
import type { ControllerContext } from './context.js';
import { Informer } from '../client/informer.js';
import { runController, waitForCacheSync, type RunningController } from '../client/controller.js';
import { WorkQueue } from '../client/workqueue.js';
import { logger } from '../util/log.js';

const log = logger('garbage-collector');

const ORPHAN = 'orphan';
const FOREGROUND = 'foregroundDeletion';

/** The served kinds and news of their changes: `ResourceRegistry` is one. */
export interface KindSource {
  all(): KindInfo[];
  onChange(fn: () => void): void;
}

/** One stored resource the collector follows (the version it is read through, and its scope). */
interface Watched {
  ref: ResourceRef;
  group: string;
  kind: string;
  namespaced: boolean;
  informer: Informer;
  /** Custom resources get their own informer, stopped when their CRD goes away. */
  owned: boolean;
}

interface Node {
  uid: string;
  res: Watched;
  obj: KObject;
}

type OwnerState = 'solid' | 'dangling' | 'waiting';

/** Starter for the controller manager's table: `garbageCollector: garbageCollectorStarter(registry)`. */
export function garbageCollectorStarter(kinds: KindSource): (ctx: ControllerContext) => RunningController {
  return (ctx) => startGarbageCollector(ctx, kinds);
}

export function startGarbageCollector(ctx: ControllerContext, kinds: KindSource): RunningController {
  return new GarbageCollector(ctx, kinds).start();
}

/** `apps/v1` → `apps`, `v1` → ''. */
function groupOf(apiVersion: string): string {
  const i = apiVersion.indexOf('/');
  return i < 0 ? '' : apiVersion.slice(0, i);
}

function deletionMode(o: KObject): 'orphan' | 'foreground' | undefined {
  if (!o.metadata.deletionTimestamp) return undefined;
  const f = o.metadata.finalizers ?? [];
  if (f.includes(ORPHAN)) return 'orphan';
  if (f.includes(FOREGROUND)) return 'foreground';
  return undefined;
}

const isDeletingDependents = (o: KObject): boolean => Boolean(o.metadata.deletionTimestamp) && (o.metadata.finalizers ?? []).includes(FOREGROUND);

function sameRefs(a: OwnerReference[], b: OwnerReference[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i]!.uid !== b[i]!.uid || Boolean(a[i]!.blockOwnerDeletion) !== Boolean(b[i]!.blockOwnerDeletion)) return false;
  }
  return true;
}

class GarbageCollector {
  private readonly nodes = new Map<string, Node>();
  /** Owner uid → uids of the objects referring to it (whether or not the owner exists). */
  private readonly dependents = new Map<string, Set<string>>();
  /** Stored resource (`group/resource`) → what follows it. */
  private readonly watched = new Map<string, Watched>();
  /** `group/Kind` → how to read an owner of that kind. */
  private byGroupKind = new Map<string, Watched>();
  private readonly queue = new WorkQueue<string>();
  private worker!: RunningController;
  private stopped = false;

  constructor(private readonly ctx: ControllerContext, private readonly kinds: KindSource) {}

  start(): RunningController {
    this.syncKinds();
    this.kinds.onChange(() => { if (!this.stopped) this.syncKinds(); });
    // Deciding that an owner is gone needs the whole graph: work starts once every informer has listed.
    this.worker = runController({
      name: 'garbage-collector', queue: this.queue, workers: 2,
      informers: [{ waitForSync: () => this.waitForGraph() }], reconcile: (uid) => this.reconcile(uid),
    });
    return {
      name: 'garbage-collector',
      stop: async () => {
        this.stopped = true;
        await this.worker.stop();
        await Promise.all([...this.watched.values()].filter((w) => w.owned).map((w) => w.informer.stop()));
      },
    };
  }

  /** Every informer followed now has listed (a CRD that went away meanwhile no longer counts). */
  private async waitForGraph(): Promise<void> {
    for (;;) {
      const current = [...this.watched.values()].map((w) => w.informer);
      if (await waitForCacheSync(current)) return;
      const followed = new Set([...this.watched.values()].map((w) => w.informer));
      if (this.stopped || current.every((i) => followed.has(i))) throw new Error('informers stopped before they synced');
    }
  }

  // ---- following the served kinds ---------------------------------------------------------------

  /** One informer per stored resource; CRDs coming and going add and remove theirs. */
  private syncKinds(): void {
    const wanted = new Map<string, KindInfo>();
    for (const info of this.kinds.all()) {
      if (info.virtual) continue;
      const store = info.storage ?? { group: info.group, resource: info.plural };
      const key = `${store.group}/${store.resource}`;
      // A version served by conversion (it names its storage) is read through the stored version.
      if (!wanted.has(key) || (wanted.get(key)!.storage && !info.storage)) wanted.set(key, info);
    }
    for (const [key, w] of [...this.watched]) {
      if (wanted.has(key)) continue;
      this.watched.delete(key);
      for (const o of w.informer.list()) this.remove(o);
      if (w.owned) void w.informer.stop();
    }
    for (const [key, info] of wanted) {
      if (this.watched.has(key)) continue;
      const ref: ResourceRef = { group: info.group, version: info.version, resource: info.plural };
      const owned = Boolean(info.crd);
      const informer = owned
        ? new Informer({ client: this.ctx.client, resource: ref })
        : this.ctx.informers.informerFor(ref);
      const w: Watched = { ref, group: info.group, kind: info.kind, namespaced: info.namespaced, informer, owned };
      this.watched.set(key, w);
      informer.addHandlers({
        onAdd: (o) => this.upsert(w, o),
        onUpdate: (_old, o) => this.upsert(w, o),
        onDelete: (o) => this.remove(o),
      });
      if (owned) informer.start();
    }
    this.byGroupKind = new Map([...this.watched.values()].map((w) => [`${w.group}/${w.kind}`, w]));
  }

  // ---- the graph --------------------------------------------------------------------------------

  private upsert(res: Watched, obj: KObject): void {
    const uid = obj.metadata.uid;
    if (!uid) return;
    const prev = this.nodes.get(uid);
    this.nodes.set(uid, { uid, res, obj });
    const oldRefs = prev?.obj.metadata.ownerReferences ?? [];
    const refs = obj.metadata.ownerReferences ?? [];
    if (!prev || !sameRefs(oldRefs, refs)) {
      for (const r of oldRefs) {
        if (!refs.some((n) => n.uid === r.uid)) this.unlink(r.uid, uid);
        // An owner waiting for its dependents may be waiting for this one no longer.
        this.enqueueIfDeleting(r.uid);
      }
      for (const r of refs) {
        this.link(r.uid, uid);
        if (!this.nodes.has(r.uid)) this.queue.add(uid);
        else this.enqueueIfDeleting(r.uid);
      }
    }
    const mode = deletionMode(obj);
    if (mode && (!prev || deletionMode(prev.obj) !== mode)) this.queue.add(uid);
  }

  private remove(obj: KObject): void {
    const uid = obj.metadata.uid;
    if (!uid) return;
    const node = this.nodes.get(uid);
    if (!node) return;
    this.nodes.delete(uid);
    for (const r of node.obj.metadata.ownerReferences ?? []) {
      this.unlink(r.uid, uid);
      this.enqueueIfDeleting(r.uid);
    }
    for (const dep of this.dependents.get(uid) ?? []) this.queue.add(dep);
  }

  private link(owner: string, dep: string): void {
    let s = this.dependents.get(owner);
    if (!s) this.dependents.set(owner, s = new Set());
    s.add(dep);
  }

  private unlink(owner: string, dep: string): void {
    const s = this.dependents.get(owner);
    if (!s) return;
    s.delete(dep);
    if (s.size === 0) this.dependents.delete(owner);
  }

  private enqueueIfDeleting(uid: string): void {
    const n = this.nodes.get(uid);
    if (n && deletionMode(n.obj)) this.queue.add(uid);
  }

  private dependentNodes(uid: string): Node[] {
    const out: Node[] = [];
    for (const d of this.dependents.get(uid) ?? []) {
      const n = this.nodes.get(d);
      if (n) out.push(n);
    }
    return out;
  }

  // ---- reconcile --------------------------------------------------------------------------------

  private async reconcile(uid: string): Promise<void> {
    const node = this.nodes.get(uid);
    if (!node) return;
    const mode = deletionMode(node.obj);
    if (mode === 'orphan') return this.orphanDependents(node);
    if (mode === 'foreground') return this.deleteDependentsFirst(node);
    if (node.obj.metadata.deletionTimestamp) return;
    const refs = node.obj.metadata.ownerReferences ?? [];
    if (refs.length === 0) return;

    const solid: OwnerReference[] = [], dangling: OwnerReference[] = [], waiting: OwnerReference[] = [];
    for (const r of refs) {
      const state = await this.ownerState(node, r);
      (state === 'solid' ? solid : state === 'dangling' ? dangling : waiting).push(r);
    }
    if (solid.length) {
      // Live owners keep the object; references to dead or departing owners are dropped.
      if (dangling.length || waiting.length) await this.removeOwnerRefs(node, new Set([...dangling, ...waiting].map((r) => r.uid)));
      return;
    }
    const obj = node.obj;
    let policy: DeleteOptions['propagationPolicy'];
    if (waiting.length && this.dependentNodes(uid).length > 0) {
      // An owner waits for this object, which has dependents of its own: they go first too.
      policy = 'Foreground';
    } else {
      const f = obj.metadata.finalizers ?? [];
      policy = f.includes(ORPHAN) ? 'Orphan' : f.includes(FOREGROUND) ? 'Foreground' : 'Background';
    }
    log.debug({ uid, name: obj.metadata.name, namespace: obj.metadata.namespace, policy }, 'deleting object whose owners are gone');
    await this.deleteNode(node, policy);
  }

  /** Whether the owner `r` of `dep` exists (and is not waiting for its dependents to go). */
  private async ownerState(dep: Node, r: OwnerReference): Promise<OwnerState> {
    const ns = dep.obj.metadata.namespace;
    const known = this.nodes.get(r.uid);
    // An owner must live in its dependent's namespace or be cluster-scoped; anything else is absent.
    if (known && (known.res.namespaced ? known.obj.metadata.namespace === ns : true)) {
      return isDeletingDependents(known.obj) ? 'waiting' : 'solid';
    }
    const res = this.byGroupKind.get(`${groupOf(r.apiVersion)}/${r.kind}`);
    if (!res) throw new Error(`owner ${r.kind} ${r.name} (${r.apiVersion}) of ${dep.obj.metadata.name} is of a kind the server does not serve`);
    if (res.namespaced && !ns) return 'dangling';
    // The graph may not have seen the owner yet (another informer): ask the API.
    const live = await this.ctx.client.get(res.ref, res.namespaced ? ns : undefined, r.name);
    if (!live || live.metadata.uid !== r.uid) return 'dangling';
    return isDeletingDependents(live) ? 'waiting' : 'solid';
  }

  private async deleteDependentsFirst(owner: Node): Promise<void> {
    const deps = this.dependentNodes(owner.uid);
    const blocking = deps.filter((d) => (d.obj.metadata.ownerReferences ?? []).some((r) => r.uid === owner.uid && r.blockOwnerDeletion));
    if (blocking.length === 0) {
      // Nothing holds the owner any more; non-blocking dependents are collected once it is gone.
      await this.removeFinalizer(owner, FOREGROUND);
      return;
    }
    for (const d of deps) if (!d.obj.metadata.deletionTimestamp) this.queue.add(d.uid);
  }

  private async orphanDependents(owner: Node): Promise<void> {
    for (const d of this.dependentNodes(owner.uid)) await this.removeOwnerRefs(d, new Set([owner.uid]));
    await this.removeFinalizer(owner, ORPHAN);
  }

  // ---- writes (each guarded by uid and resourceVersion) ---------------------------------------------

  private preconditions(n: Node): { op: 'test'; path: string; value: string }[] {
    return [
      { op: 'test', path: '/metadata/uid', value: n.uid },
      { op: 'test', path: '/metadata/resourceVersion', value: String(n.obj.metadata.resourceVersion) },
    ];
  }

  private async removeOwnerRefs(n: Node, uids: Set<string>): Promise<void> {
    const refs = (n.obj.metadata.ownerReferences ?? []).filter((r) => !uids.has(r.uid));
    const ops = [
      ...this.preconditions(n),
      refs.length ? { op: 'replace', path: '/metadata/ownerReferences', value: refs } : { op: 'remove', path: '/metadata/ownerReferences' },
    ];
    await this.write(() => this.ctx.client.patch(n.res.ref, n.obj.metadata.namespace, n.obj.metadata.name!, 'json', ops));
  }

  private async removeFinalizer(n: Node, finalizer: string): Promise<void> {
    const rest = (n.obj.metadata.finalizers ?? []).filter((f) => f !== finalizer);
    const ops = [
      ...this.preconditions(n),
      rest.length ? { op: 'replace', path: '/metadata/finalizers', value: rest } : { op: 'remove', path: '/metadata/finalizers' },
    ];
    await this.write(() => this.ctx.client.patch(n.res.ref, n.obj.metadata.namespace, n.obj.metadata.name!, 'json', ops));
  }

  private async deleteNode(n: Node, propagationPolicy: DeleteOptions['propagationPolicy']): Promise<void> {
    await this.write(() => this.ctx.client.delete(n.res.ref, n.obj.metadata.namespace, n.obj.metadata.name!, {
      propagationPolicy, preconditions: { uid: n.uid, resourceVersion: n.obj.metadata.resourceVersion },
    }));
  }

  /**
   * A write whose object is gone is done. One whose preconditions failed (409, or 422 from a failed
   * `test`) throws, so the key being reconciled is retried with backoff against the newer state.
   */
  private async write(fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
}
