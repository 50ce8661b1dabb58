// ResourceQuota admission, as kube-apiserver's plugin does it: a create that would take a namespace
// past a quota's `hard` amount is refused with 403 `exceeded quota: ...`, and a pod that leaves out a
// cpu or memory request or limit a quota constrains is refused with `failed quota: ...`.
//
// Usage is recomputed from the watch cache on each admitted create (the resource quota controller's
// `computeUsage`), not read from `status.used`: the cache is in memory, and a quota is then enforced
// from the moment it exists, before its controller has written a status. Kubernetes compares against
// `status.hard`; ours is `spec.hard`, which is what the controller copies there.
//
// Concurrent creates: an admitted object is not in the cache until ObjectService has written it, so
// it is held as a reservation in the meantime and counted with what is stored. Checking and reserving
// run in one synchronous step, so two creates racing for the last unit cannot both pass. A
// reservation ends when the object's ADDED event arrives (a watch per resource), or after
// RESERVATION_TTL_MS when its create failed; until then it is over-counted, much as Kubernetes keeps
// a failed create's charge in `status.used` until its controller recounts.
import type { KindInfo } from '../api/kinds.js';
import type { KObject } from '../api/object.js';
import type { Store, Watcher } from '../storage/types.js';
import { collectionPrefix } from './registry.js';
import { admissionForbidden } from './admission-limits.js';
import { computeUsage, format, matchesScopes } from '../api/quota.js';
import { parseQuantity } from '../api/quantity.js';

type Obj = KObject & Record<string, any>;

const RESERVATION_TTL_MS = 10_000;

// Quota has compelled pods to state cpu and memory since before QoS classes existed; Kubernetes keeps
// the rule for exactly these names and no others.
const MUST_SPECIFY = new Set(['cpu', 'memory', 'requests.cpu', 'requests.memory', 'limits.cpu', 'limits.memory']);

/** Kinds quota never counts (Kubernetes' default ignored resources). */
const IGNORED = new Set(['/events', 'events.k8s.io/events']);

interface Reservation { collection: string; key: string; obj: Obj; at: number }

export class QuotaAdmission {
  private readonly reserved = new Map<string, Reservation>();   // by uid
  private readonly watches = new Map<string, Watcher>();        // by resource key prefix

  constructor(private readonly store: Store, private readonly now: () => number = Date.now,
    private readonly ttlMs = RESERVATION_TTL_MS) {}

  /** Refuses the create of `obj` (a namespaced object about to be stored) if it breaks a quota; else reserves its usage. */
  admitCreate(info: KindInfo, body: Record<string, any>, opts: { dryRun?: boolean; subresource?: string }): void {
    const obj = body as Obj;
    const ns: string | undefined = obj.metadata?.namespace;
    if (!info.namespaced || !ns || info.virtual || opts.subresource || IGNORED.has(`${info.group}/${info.plural}`)) return;
    const quotas = this.store.list(`/core/resourcequotas/${ns}/`).items.map((o) => o.obj as Obj);
    if (quotas.length === 0) return;
    const isPod = info.group === '' && info.plural === 'pods';
    const groupResource = info.group ? `${info.plural}.${info.group}` : info.plural;
    const now = this.now();

    const pertinent: { quota: Obj; delta: Record<string, string> }[] = [];
    for (const quota of quotas) {
      const scoped = (quota.spec?.scopes?.length ?? 0) > 0 || (quota.spec?.scopeSelector?.matchExpressions?.length ?? 0) > 0;
      // Scopes describe pods only: a scoped quota matches no other kind.
      if (scoped && (!isPod || !matchesScopes(quota, obj))) continue;
      const hard = Object.keys(quota.spec?.hard ?? {});
      if (isPod) this.checkSpecified(info, obj, quota, hard);
      const delta = computeUsage(quota, hard, (gr) => (gr === groupResource ? [obj] : []), now);
      for (const [name, v] of Object.entries(delta)) if (parseQuantity(v, 3) === 0) delete delta[name];
      if (Object.keys(delta).length) pertinent.push({ quota, delta });
    }
    if (pertinent.length === 0) return;

    const collection = collectionPrefix(info, ns);
    const existing = this.objectsIn(collection, now);
    for (const { quota, delta } of pertinent) {
      const names = Object.keys(delta).sort();
      const used = computeUsage(quota, names, (gr) => (gr === groupResource ? existing : []), now);
      const hard: Record<string, string | number> = quota.spec.hard;
      const exceeded = names.filter((n) => parseQuantity(used[n] ?? '0', 3) + parseQuantity(delta[n]!, 3) > parseQuantity(hard[n]!, 3));
      if (exceeded.length) {
        const list = (value: (n: string) => string) => exceeded.map((n) => `${n}=${value(n)}`).join(',');
        throw admissionForbidden(info, obj, `exceeded quota: ${quota.metadata.name}, requested: ${list((n) => delta[n]!)}, `
          + `used: ${list((n) => used[n] ?? '0')}, limited: ${list((n) => canonical(hard[n]!, n))}`);
      }
    }
    const key = collection + obj.metadata.name;
    // A create of a name already taken fails in storage: nothing to hold for it.
    if (!opts.dryRun && !this.store.get(key)) this.reserve({ collection, key, obj, at: now });
  }

  /** Stops counting a reservation: its object is stored (or its create failed). */
  release(uid: string): void {
    this.reserved.delete(uid);
  }

  /** `failed quota: q: must specify limits.cpu for: a,b; requests.memory for: a` */
  private checkSpecified(info: KindInfo, pod: Obj, quota: Obj, hard: string[]): void {
    const required = hard.filter((n) => MUST_SPECIFY.has(n));
    if (required.length === 0) return;
    const missing = new Map<string, Set<string>>();
    for (const c of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]) {
      const has = (n: string) => {
        const [part, res] = n.includes('.') ? n.split('.') as [string, string] : ['requests', n];
        return c.resources?.[part]?.[res] !== undefined;
      };
      for (const n of required) {
        if (has(n)) continue;
        if (!missing.has(n)) missing.set(n, new Set());
        missing.get(n)!.add(c.name);
      }
    }
    if (missing.size === 0) return;
    const parts = [...missing.keys()].sort().map((n) => `${n} for: ${[...missing.get(n)!].sort().join(',')}`);
    throw admissionForbidden(info, pod, `failed quota: ${quota.metadata.name}: must specify ${parts.join('; ')}`);
  }

  /** What a collection holds now: stored objects plus admitted ones not stored yet. */
  private objectsIn(collection: string, now: number): Obj[] {
    const out = this.store.list(collection).items.map((o) => o.obj as Obj);
    for (const [uid, r] of this.reserved) {
      if (now - r.at > this.ttlMs) { this.reserved.delete(uid); continue; }
      if (r.collection !== collection) continue;
      // Stored already (its event not delivered yet): the list has it.
      if (this.store.get(r.key)?.obj.metadata.uid === uid) continue;
      out.push(r.obj);
    }
    return out;
  }

  private reserve(r: Reservation): void {
    const resource = r.collection.slice(0, r.collection.indexOf('/', r.collection.indexOf('/', 1) + 1) + 1);
    if (!this.watches.has(resource)) {
      this.watches.set(resource, this.store.watch(resource, this.store.revision(), (e) => {
        if (e.type === 'ADDED') this.release(e.object.obj.metadata.uid);
      }));
    }
    this.reserved.set(r.obj.metadata.uid!, r);
  }
}

function canonical(q: string | number, name: string): string {
  return format({ milli: parseQuantity(q, 3), binary: typeof q === 'string' && /i$/.test(q) }, name);
}
