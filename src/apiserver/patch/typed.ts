// Schema-aware operations on JSON values that server-side apply is built from, following
// sigs.k8s.io/structured-merge-diff: the set of fields a value sets, the difference between two
// values as field sets, merging an applied configuration into a live object, and removing fields.
//
// Which paths are members of a value's field set: every scalar; every list element of a map-list or
// set (its `k:`/`v:` element) together with its fields; an atomic list or map as a whole; a map
// entry (labels, annotations, unknown and untyped fields) as a whole; a struct field only when its
// value is null or an empty object (otherwise its fields stand for it).

import { isPlainObject } from '../../api/object.js';
import { FieldSet, pathElement, pathString, type Path, type PathElement } from './fieldpath.js';
import { FieldType, type ListSemantics } from './field-types.js';
import { deepEqual } from './values.js';

/** A value does not fit its schema's list rules (missing keys, duplicates, ...). */
export class TypedError extends Error {}

/** Defaults Kubernetes declares for list-map key fields: an element without them is keyed by these. */
const KEY_FIELD_DEFAULTS: Record<string, unknown> = { protocol: 'TCP' };

type JMap = Record<string, unknown>;

function itemPathElement(item: unknown, sem: ListSemantics, path: Path, index: number): PathElement {
  const fail = (why: string) => new TypedError(`${pathString(path)}: element ${index}: ${why}`);
  if (sem.type === 'map') {
    if (item === null) throw fail('associative list with keys may not have a null element');
    if (!isPlainObject(item)) throw fail('associative list with keys may not have non-map elements');
    const fields: [string, unknown][] = [];
    for (const k of sem.keys) {
      if (Object.hasOwn(item, k)) fields.push([k, item[k]]);
      else if (Object.hasOwn(KEY_FIELD_DEFAULTS, k)) fields.push([k, KEY_FIELD_DEFAULTS[k]]);
    }
    if (fields.length === 0) {
      throw fail(`associative list with keys has an element that omits all key fields [${sem.keys.map((k) => JSON.stringify(k)).join(' ')}] (and doesn't have default values for any key fields)`);
    }
    return pathElement.key(fields);
  }
  if (isPlainObject(item)) throw fail("associative list without keys has an element that's a map type");
  if (Array.isArray(item)) throw fail('not supported: associative list with lists as elements');
  if (item === null) throw fail("associative list without keys has an element that's an explicit null");
  return pathElement.value(item);
}

/** Path elements of a granular list's items, and which of them occur more than once. */
function indexItems(list: unknown[], sem: ListSemantics, path: Path): { pes: PathElement[]; dups: Set<PathElement> } {
  const pes = list.map((item, i) => itemPathElement(item, sem, path, i));
  const seen = new Set<PathElement>();
  const dups = new Set<PathElement>();
  for (const pe of pes) (seen.has(pe) ? dups : seen).add(pe);
  return { pes, dups };
}

function duplicatesError(path: Path, dups: Set<PathElement>): TypedError {
  return new TypedError(`${pathString(path)}: duplicate entries for key ${[...dups].map((pe) => pathString([pe])).join(', ')}`);
}

/**
 * The set of fields `value` sets. Stored objects may hold duplicate list keys (owned as a whole);
 * an applied configuration may not (`rejectDuplicates`).
 */
export function toFieldSet(value: unknown, t: FieldType, rejectDuplicates = false): FieldSet {
  const set = new FieldSet();
  collect(value, t, [], set, rejectDuplicates);
  return set;
}

function collect(v: unknown, t: FieldType, path: Path, set: FieldSet, strict: boolean): void {
  if (Array.isArray(v)) {
    const sem = t.listSemantics();
    if (sem.type === 'atomic') {
      set.insert(path);
      return;
    }
    const { pes, dups } = indexItems(v, sem, path);
    if (strict && dups.size) throw duplicatesError(path, dups);
    const done = new Set<PathElement>();
    v.forEach((item, i) => {
      const p = [...path, pes[i]];
      // Duplicated elements (tolerated in stored objects) are owned as a whole, not field by field.
      if (!dups.has(pes[i])) collect(item, t.items(), p, set, strict);
      if (!done.has(pes[i])) set.insert(p);
      done.add(pes[i]);
    });
  } else if (isPlainObject(v)) {
    if (t.atomicMap) {
      set.insert(path);
      return;
    }
    for (const [k, x] of Object.entries(v)) {
      const p = [...path, pathElement.field(k)];
      collect(x, t.child(k), p, set, strict);
      if (x === null || (isPlainObject(x) && Object.keys(x).length === 0) || !t.isNamedField(k)) set.insert(p);
    }
  } else {
    set.insert(path);
  }
}

export interface Comparison {
  added: FieldSet;
  modified: FieldSet;
  removed: FieldSet;
}

/** The fields `after` adds, changes and removes relative to `before`. */
export function compare(before: unknown, after: unknown, t: FieldType): Comparison {
  const c: Comparison = { added: new FieldSet(), modified: new FieldSet(), removed: new FieldSet() };
  diff(before, after, t, [], c, false);
  return c;
}

type Shape = 'list' | 'map' | 'scalar';

function shapeOf(v: unknown): Shape {
  return Array.isArray(v) ? 'list' : isPlainObject(v) ? 'map' : 'scalar';
}

/** The shape both sides share (a null or absent side takes the other's), or undefined if they differ. */
function commonShape(l: unknown, r: unknown): Shape | undefined {
  const ls = l === undefined || l === null ? undefined : shapeOf(l);
  const rs = r === undefined || r === null ? undefined : shapeOf(r);
  if (ls && rs && ls !== rs) return undefined;
  return ls ?? rs ?? 'scalar';
}

const NO_MEMBERS: JMap = Object.freeze({}) as JMap;

/**
 * `named`: the position is a declared struct field. Kubernetes compares typed Go objects, whose
 * non-pointer structs and nil lists are never absent, so it does not record such a field itself as
 * added or removed, only what changes inside it; we follow that for declared struct and list fields
 * (pointer structs, which Kubernetes does record, are indistinguishable in the schema).
 *
 * This runs on every write (managed fields), so it allocates only what it records: `path` is one
 * stack, pushed and popped around each step (FieldSet.insert copies what it keeps), and a map's keys
 * are walked on both sides rather than gathered into a set.
 */
function diff(l: unknown, r: unknown, t: FieldType, path: PathElement[], c: Comparison, named: boolean): void {
  const shape = commonShape(l, r);
  if (shape === 'list' && t.listSemantics().type !== 'atomic') {
    const ll = Array.isArray(l) ? l : [];
    const rl = Array.isArray(r) ? r : [];
    if (ll.length === 0 && rl.length === 0) return diffLeaf(l, r, path, c);
    diffItems(ll, rl, t, path, c);
    if (!named) diffPresence(l, r, path, c);
    return;
  }
  if (shape === 'map' && !t.atomicMap) {
    const lm = isPlainObject(l) ? l : NO_MEMBERS;
    const rm = isPlainObject(r) ? r : NO_MEMBERS;
    let any = false;
    for (const k in lm) {
      if (!Object.hasOwn(lm, k)) continue;
      any = true;
      diffMember(lm[k], Object.hasOwn(rm, k) ? rm[k] : undefined, k, t, path, c);
    }
    for (const k in rm) {
      if (!Object.hasOwn(rm, k) || Object.hasOwn(lm, k)) continue;
      any = true;
      diffMember(undefined, rm[k], k, t, path, c);
    }
    if (!any) return diffLeaf(l, r, path, c);
    if (!named) diffPresence(l, r, path, c);
    return;
  }
  diffLeaf(l, r, path, c);
}

function diffMember(lv: unknown, rv: unknown, k: string, t: FieldType, path: PathElement[], c: Comparison): void {
  // Most of an object is the same on both sides (a status update leaves the spec alone): an equal
  // member holds no change, and comparing it costs no paths or sets.
  if (lv !== undefined && rv !== undefined && deepEqual(lv, rv)) return;
  const child = t.child(k);
  path.push(pathElement.field(k));
  diff(lv, rv, child, path, c, t.isNamedField(k) && child.structOrList);
  path.pop();
}

function diffLeaf(l: unknown, r: unknown, path: Path, c: Comparison): void {
  if (l === undefined) c.added.insert(path);
  else if (r === undefined) c.removed.insert(path);
  else if (!deepEqual(l, r)) c.modified.insert(path);
}

function diffPresence(l: unknown, r: unknown, path: Path, c: Comparison): void {
  if (l === undefined) c.added.insert(path);
  else if (r === undefined) c.removed.insert(path);
}

/** Several elements of one list under the same key (tolerated in stored objects). */
class Repeated {
  constructor(readonly items: unknown[]) {}
}

/** A granular list's elements by path element; an element whose key repeats is a `Repeated`. */
function groupItems(list: unknown[], sem: ListSemantics, path: Path): Map<PathElement, unknown> {
  const m = new Map<PathElement, unknown>();
  for (let i = 0; i < list.length; i++) {
    const item = list[i];
    const pe = itemPathElement(item, sem, path, i);
    if (!m.has(pe)) m.set(pe, item);
    else {
      const was = m.get(pe);
      if (was instanceof Repeated) was.items.push(item);
      else m.set(pe, new Repeated([was, item]));
    }
  }
  return m;
}

function diffItems(ll: unknown[], rl: unknown[], t: FieldType, path: PathElement[], c: Comparison): void {
  const sem = t.listSemantics();
  const lg = groupItems(ll, sem, path);
  const rg = groupItems(rl, sem, path);
  const items = t.items();
  for (const [pe, L] of lg) diffElement(pe, L, rg.has(pe) ? rg.get(pe) : ABSENT, items, path, c);
  for (const [pe, R] of rg) if (!lg.has(pe)) diffElement(pe, ABSENT, R, items, path, c);
}

/** No element under that key on one side. */
const ABSENT = Symbol('absent');

function diffElement(pe: PathElement, L: unknown, R: unknown, t: FieldType, path: PathElement[], c: Comparison): void {
  path.push(pe);
  if (!(L instanceof Repeated) && !(R instanceof Repeated)) {
    diff(L === ABSENT ? undefined : L, R === ABSENT ? undefined : R, t, path, c, false);
  } else if (L instanceof Repeated && R instanceof Repeated) {
    if (!deepEqual(L.items, R.items)) c.modified.insert(path);
  } else if (L instanceof Repeated) {
    if (R !== ABSENT) diff(undefined, R, t, path, c, false);
    c.removed.insert(path);
  } else {
    if (L !== ABSENT) diff(L, undefined, t, path, c, false);
    c.added.insert(path);
  }
  path.pop();
}

/**
 * Merges an applied configuration into a live object: the configuration's values win, maps and
 * granular lists merge element by element, atomic values are replaced. A null in the configuration
 * clears the field. Duplicate list keys in the configuration are an error.
 */
export function merge(live: unknown, config: unknown, t: FieldType): unknown {
  return mergeValue(structuredClone(live), structuredClone(config), t, []);
}

function mergeValue(l: unknown, r: unknown, t: FieldType, path: Path): unknown {
  if (r === undefined) return l;
  const shape = commonShape(l, r);
  if (l === undefined || l === null) return withoutNullFields(r);
  if (r === null || shape === undefined) return r;
  if (shape === 'list' && t.listSemantics().type !== 'atomic') {
    const ll = l as unknown[];
    const rl = r as unknown[];
    if (ll.length === 0 && rl.length === 0) return r;
    return mergeItems(ll, rl, t, path);
  }
  if (shape === 'map' && !t.atomicMap) {
    const lm = l as JMap;
    const rm = r as JMap;
    const out: JMap = {};
    for (const k of new Set([...Object.keys(lm), ...Object.keys(rm)])) {
      if (rm[k] === null) continue;
      const v = mergeValue(lm[k], rm[k], t.child(k), [...path, pathElement.field(k)]);
      if (v !== undefined) out[k] = v;
    }
    return out;
  }
  return r;
}

/**
 * Merges two granular lists. Elements only in the live list keep their place; elements in the
 * configuration appear in its order, shared ones moving to where the configuration puts them.
 */
function mergeItems(ll: unknown[], rl: unknown[], t: FieldType, path: Path): unknown[] {
  const sem = t.listSemantics();
  const { pes: rPEs, dups } = indexItems(rl, sem, path);
  if (dups.size > 0) throw duplicatesError(path, dups);
  const { pes: lPEs, dups: lDups } = indexItems(ll, sem, path);
  const lByPE = new Map<PathElement, unknown>();
  lPEs.forEach((pe, i) => lByPE.set(pe, lDups.has(pe) ? undefined : ll[i]));
  const rByPE = new Map(rPEs.map((pe, i) => [pe, rl[i]] as const));
  const shared = rPEs.filter((pe) => lByPE.has(pe));
  let nextShared = shared.shift();
  const emitted = new Set<PathElement>();
  const out: unknown[] = [];
  const emit = (pe: PathElement, l: unknown, r: unknown) => {
    const v = mergeValue(l, r, t.items(), [...path, pe]);
    if (v !== undefined) out.push(v);
  };
  let li = 0;
  let ri = 0;
  while (li < lPEs.length || ri < rPEs.length) {
    if (li < lPEs.length && ri < rPEs.length) {
      const pe = lPEs[li];
      if (pe === rPEs[ri]) {
        emitted.add(pe);
        emit(pe, lByPE.get(pe), rByPE.get(pe));
        li++;
        ri++;
        nextShared = shared.shift();
        continue;
      }
      // A shared element the configuration wants later: it is emitted when the configuration gets there.
      if (rByPE.has(pe) && nextShared !== undefined && nextShared !== pe) {
        li++;
        continue;
      }
    }
    if (li < lPEs.length) {
      const pe = lPEs[li];
      if (!rByPE.has(pe)) {
        emit(pe, ll[li], undefined);
        li++;
        continue;
      }
      if (emitted.has(pe)) li++;
    }
    if (ri < rPEs.length) {
      const pe = rPEs[ri];
      emitted.add(pe);
      emit(pe, lByPE.get(pe), rByPE.get(pe));
      ri++;
      if (nextShared === pe) nextShared = shared.shift();
    }
  }
  return out;
}

/** A configured value as stored: fields set to null are cleared, i.e. absent. */
function withoutNullFields(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutNullFields);
  if (!isPlainObject(v)) return v;
  const out: JMap = {};
  for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = withoutNullFields(x);
  return out;
}

/** A copy of `value` without the fields in `set` (a member removes the whole subtree below it). */
export function removeFields(value: unknown, set: FieldSet, t: FieldType): unknown {
  return removeIn(structuredClone(value), set, t, []) ?? {};
}

function removeIn(v: unknown, set: FieldSet, t: FieldType, path: Path): unknown {
  if (Array.isArray(v)) {
    const sem = t.listSemantics();
    if (sem.type === 'atomic' || v.length === 0) return v;
    const { pes } = indexItems(v, sem, path);
    const out: unknown[] = [];
    v.forEach((item, i) => {
      if (set.members.has(pes[i])) return;
      const sub = set.children.get(pes[i]);
      out.push(sub ? removeIn(item, sub, t.items(), [...path, pes[i]]) ?? {} : item);
    });
    return out.length ? out : undefined;
  }
  if (isPlainObject(v)) {
    if (t.atomicMap || Object.keys(v).length === 0) return v;
    const out: JMap = {};
    for (const [k, x] of Object.entries(v)) {
      const pe = pathElement.field(k);
      if (set.members.has(pe)) continue;
      const sub = set.children.get(pe);
      const kept = sub ? removeIn(x, sub, t.child(k), [...path, pe]) : x;
      if (kept !== undefined) out[k] = kept;
    }
    return Object.keys(out).length ? out : undefined;
  }
  return v;
}

/**
 * `set` plus, as members, the struct fields it reaches into: owning `spec.replicas` counts as owning
 * `spec` when deciding what an applier may remove (a map entry or list element is not implied).
 */
export function withNamedFields(set: FieldSet, t: FieldType): FieldSet {
  const out = new FieldSet();
  for (const m of set.members) out.members.add(m);
  for (const [pe, sub] of set.children) {
    const isField = pe.startsWith('f:');
    const name = pe.slice(2);
    if (isField && t.isNamedField(name)) out.members.add(pe);
    out.children.set(pe, withNamedFields(sub, isField ? t.child(name) : t.items()));
  }
  return out;
}
