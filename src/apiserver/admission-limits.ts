// LimitRanger admission, as kube-apiserver's plugin does it: a pod being created gets the `default`
// limits and `defaultRequest` requests of the namespace's `type: Container` LimitRanges for every
// resource its containers (and init containers) leave out, noted in the `kubernetes.io/limit-ranger`
// annotation; then each LimitRange's `min`, `max` and `maxLimitRequestRatio` are enforced per
// Container and per Pod, and `min`/`max` of storage per PersistentVolumeClaim (on create and update).
// Pods are not checked on update: their containers' resources cannot change there.
import type { KindInfo } from '../api/kinds.js';
import type { Store } from '../storage/types.js';
import { ApiError, qualifiedResource } from '../api/status.js';
import { format, podUsage } from '../api/quota.js';
import { parseQuantity } from '../api/quantity.js';

type Obj = Record<string, any>;
type ResourceList = Record<string, string | number>;
/** A quantity compared in thousandths, and written as Kubernetes' Quantity.String() writes it. */
interface Q { milli: number; text: string }

const ANNOTATION = 'kubernetes.io/limit-ranger';

/** The 403 an admission plugin answers: `pods "x" is forbidden: <why>`. */
export function admissionForbidden(info: KindInfo, obj: Obj, why: string): ApiError {
  const name: string = obj.metadata?.name || obj.metadata?.generateName || '';
  const res = qualifiedResource(info.plural, info.group);
  const message = name ? `${res} "${name}" is forbidden: ${why}` : `${res} is forbidden: ${why}`;
  return new ApiError(403, 'Forbidden', message, { ...(name ? { name } : {}), group: info.group, kind: info.plural });
}

/**
 * Admits a create (no `old`) or an update of a pod or claim against the LimitRanges of its namespace
 * (in name order, as Kubernetes' lister gives them): mutates a new pod's containers, throws 403 when
 * a range's constraint is broken.
 */
export function admitLimitRanges(store: Store, info: KindInfo, obj: Obj, old?: Readonly<Obj>): void {
  const isPod = info.plural === 'pods';
  if (info.group !== '' || !(isPod || info.plural === 'persistentvolumeclaims')) return;
  if (old?.metadata?.deletionTimestamp) return;
  const ranges = store.list(`/core/limitranges/${obj.metadata.namespace}/`).items.map((o) => o.obj);
  if (ranges.length === 0) return;
  if (isPod && !old) {
    for (const range of ranges) setContainerDefaults(obj, range);
    for (const range of ranges) throwIfAny(info, obj, podErrors(obj, range));
  } else if (!isPod) {
    for (const range of ranges) throwIfAny(info, obj, claimErrors(obj, range));
  }
}

function throwIfAny(info: KindInfo, obj: Obj, errs: string[]): void {
  // Rendered as apimachinery's error aggregate: one message alone, several in brackets, no repeats.
  const unique = [...new Set(errs)];
  if (unique.length === 1) throw admissionForbidden(info, obj, unique[0]!);
  if (unique.length > 1) throw admissionForbidden(info, obj, `[${unique.join(', ')}]`);
}

function setContainerDefaults(pod: Obj, range: Obj): void {
  const limits: ResourceList = {};
  const requests: ResourceList = {};
  for (const item of range.spec?.limits ?? []) {
    if (item?.type !== 'Container') continue;
    Object.assign(requests, item.defaultRequest ?? {});
    Object.assign(limits, item.default ?? {});
  }
  const notes: string[] = [];
  const fill = (c: Obj, what: string) => {
    const setLimits = fillMissing(c, 'limits', limits);
    const setRequests = fillMissing(c, 'requests', requests);
    if (setRequests.length) notes.push(`${setRequests.sort().join(', ')} request for ${what} ${c.name}`);
    if (setLimits.length) notes.push(`${setLimits.sort().join(', ')} limit for ${what} ${c.name}`);
  };
  for (const c of pod.spec?.containers ?? []) fill(c, 'container');
  for (const c of pod.spec?.initContainers ?? []) fill(c, 'init container');
  if (notes.length) {
    pod.metadata.annotations ??= {};
    pod.metadata.annotations[ANNOTATION] = `LimitRanger plugin set: ${notes.join('; ')}`;
  }
}

/** Copies the defaults a container lacks into its `resources[part]`; the names it set. */
function fillMissing(c: Obj, part: 'limits' | 'requests', defaults: ResourceList): string[] {
  const set: string[] = [];
  for (const [name, q] of Object.entries(defaults)) {
    if (c.resources?.[part]?.[name] !== undefined) continue;
    c.resources ??= {};
    c.resources[part] ??= {};
    c.resources[part][name] = q;
    set.push(name);
  }
  return set;
}

function quantity(q: string | number, name: string): Q {
  const milli = parseQuantity(q, 3);
  return { milli, text: format({ milli, binary: typeof q === 'string' && /i$/.test(q) }, name) };
}

function listOf(list: ResourceList | undefined): Map<string, Q> {
  const out = new Map<string, Q>();
  for (const [name, q] of Object.entries(list ?? {})) out.set(name, quantity(q, name));
  return out;
}

type Check = (type: string, name: string, enforced: Q, req: Map<string, Q>, lim: Map<string, Q>) => string | undefined;

const minCheck: Check = (type, name, enforced, req, lim) => {
  const r = req.get(name);
  const l = lim.get(name);
  if (!r) return `minimum ${name} usage per ${type} is ${enforced.text}.  No request is specified`;
  if (r.milli < enforced.milli) return `minimum ${name} usage per ${type} is ${enforced.text}, but request is ${r.text}`;
  if (l && l.milli < enforced.milli) return `minimum ${name} usage per ${type} is ${enforced.text}, but limit is ${l.text}`;
  return undefined;
};

const maxCheck: Check = (type, name, enforced, req, lim) => {
  const r = req.get(name);
  const l = lim.get(name);
  if (!l) return `maximum ${name} usage per ${type} is ${enforced.text}.  No limit is specified`;
  if (l.milli > enforced.milli) return `maximum ${name} usage per ${type} is ${enforced.text}, but limit is ${l.text}`;
  if (r && r.milli > enforced.milli) return `maximum ${name} usage per ${type} is ${enforced.text}, but request is ${r.text}`;
  return undefined;
};

/** Claims have no limits: their max applies to what they request. */
const maxRequestCheck: Check = (type, name, enforced, req) => {
  const r = req.get(name);
  if (!r) return `maximum ${name} usage per ${type} is ${enforced.text}.  No request is specified`;
  if (r.milli > enforced.milli) return `maximum ${name} usage per ${type} is ${enforced.text}, but request is ${r.text}`;
  return undefined;
};

const ratioCheck: Check = (type, name, enforced, req, lim) => {
  const r = req.get(name);
  const l = lim.get(name);
  if (!r || r.milli === 0) return `${name} max limit to request ratio per ${type} is ${enforced.text}, but no request is specified or request is 0`;
  if (!l || l.milli === 0) return `${name} max limit to request ratio per ${type} is ${enforced.text}, but no limit is specified or limit is 0`;
  const ratio = l.milli / r.milli;
  if (ratio * 1000 > enforced.milli) return `${name} max limit to request ratio per ${type} is ${enforced.text}, but provided ratio is ${ratio.toFixed(6)}`;
  return undefined;
};

function run(errs: string[], check: Check, type: string, bounds: ResourceList | undefined, req: Map<string, Q>, lim: Map<string, Q>): void {
  for (const [name, q] of Object.entries(bounds ?? {})) {
    const e = check(type, name, quantity(q, name), req, lim);
    if (e) errs.push(e);
  }
}

function podErrors(pod: Obj, range: Obj): string[] {
  const errs: string[] = [];
  for (const item of range.spec?.limits ?? []) {
    const type = item?.type;
    if (type === 'Container') {
      for (const c of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]) {
        const req = listOf(c.resources?.requests);
        const lim = listOf(c.resources?.limits);
        run(errs, minCheck, type, item.min, req, lim);
        run(errs, maxCheck, type, item.max, req, lim);
        run(errs, ratioCheck, type, item.maxLimitRequestRatio, req, lim);
      }
    } else if (type === 'Pod') {
      const [req, lim] = podTotals(pod);
      run(errs, minCheck, type, item.min, req, lim);
      run(errs, maxCheck, type, item.max, req, lim);
      run(errs, ratioCheck, type, item.maxLimitRequestRatio, req, lim);
    }
  }
  return errs;
}

/** What the pod as a whole requests and is limited to (init steps and sidecars counted), overhead left out. */
function podTotals(pod: Obj): [Map<string, Q>, Map<string, Q>] {
  const req = new Map<string, Q>();
  const lim = new Map<string, Q>();
  const { overhead: _overhead, ...spec } = pod.spec ?? {};
  for (const [key, a] of podUsage({ ...pod, spec } as any)) {
    const dot = key.indexOf('.');
    const name = key.slice(dot + 1);
    (key.startsWith('requests.') ? req : lim).set(name, { milli: a.milli, text: format(a, name) });
  }
  return [req, lim];
}

function claimErrors(claim: Obj, range: Obj): string[] {
  const errs: string[] = [];
  const req = listOf(claim.spec?.resources?.requests);
  for (const item of range.spec?.limits ?? []) {
    if (item?.type !== 'PersistentVolumeClaim') continue;
    run(errs, minCheck, item.type, item.min, req, new Map());
    run(errs, maxRequestCheck, item.type, item.max, req, new Map());
  }
  return errs;
}
