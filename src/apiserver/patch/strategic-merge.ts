// Kubernetes' strategic merge patch (`application/strategic-merge-patch+json`, what `kubectl apply`
// (client-side), `patch`, `taint`, `set image` and `rollout restart` send). Like a JSON merge patch,
// except that lists whose field declares `patchStrategy: merge` are merged: lists of objects by their
// `patchMergeKey`, lists of scalars as sets. Directives inside the patch:
//   `$patch: replace | delete` on an object (replace it / empty it), and as a list element
//   (`replace`: the list becomes the patch's other elements; `delete` with the merge key: drop that
//   element); `$deleteFromPrimitiveList/<field>: [...]` removes scalars from a merged list;
//   `$setElementOrder/<field>: [...]` fixes the order of the resulting list; `$retainKeys: [...]`
//   clears every other key of the object (for union types such as a Deployment's strategy).
// Result order of a merged list: patch items in patch order, interleaved with server-only items in
// their live order, as Kubernetes does. Errors are reported with Kubernetes' codes and wording.

import { isPlainObject } from '../../api/object.js';
import type { SchemaSet, TypeSchema } from '../../api/schema-types.js';
import { goFormat, goTypeName, jsonKindWord, patchErrors } from './errors.js';
import { FieldType } from './field-types.js';

const DIRECTIVE = '$patch';
const RETAIN_KEYS = '$retainKeys';
const DELETE_FROM_PRIMITIVE_LIST = '$deleteFromPrimitiveList';
const SET_ELEMENT_ORDER = '$setElementOrder';

type JMap = Record<string, unknown>;

/** Whether strategic merge patch is available for a kind (it needs the kind's schema). */
export function supportsStrategicMerge(schema: TypeSchema | undefined): schema is TypeSchema {
  return schema !== undefined;
}

/**
 * Applies a strategic merge patch to a copy of `doc`. Without a schema (custom resources) this is
 * the 415 Kubernetes answers; callers that want another answer check `supportsStrategicMerge` first.
 */
export function applyStrategicMergePatch(doc: unknown, patch: unknown, schema: TypeSchema | undefined, schemas: SchemaSet): unknown {
  if (!supportsStrategicMerge(schema)) throw patchErrors.strategicMergeUnsupported();
  if (patch === null) return structuredClone(doc);
  if (!isPlainObject(patch)) {
    throw patchErrors.badRequest(`json: cannot unmarshal ${jsonKindWord(patch)} into Go value of type map[string]interface {}`);
  }
  const original = isPlainObject(doc) ? structuredClone(doc) : {};
  // Both copies are ours from here on: the merge works in place.
  return mergeMap(original, structuredClone(patch), FieldType.root(schema, schemas));
}

function mergeMap(original: JMap, patch: JMap, t: FieldType): JMap {
  if (Object.hasOwn(patch, DIRECTIVE)) return mapDirective(patch);
  applyRetainKeys(original, patch);
  applyElementOrders(original, patch, t);
  for (const [patchKey, pv] of Object.entries(patch)) {
    const deleteList = patchKey.startsWith(DELETE_FROM_PRIMITIVE_LIST);
    const key = deleteList ? directiveTarget(patchKey, DELETE_FROM_PRIMITIVE_LIST) : patchKey;
    if (pv === null) {
      delete original[key];
      continue;
    }
    const ov = original[key];
    const bothMaps = isPlainObject(ov) && isPlainObject(pv);
    const bothLists = Array.isArray(ov) && Array.isArray(pv);
    if (!Object.hasOwn(original, key) || !(bothMaps || bothLists)) {
      // A deletion list for a missing (or non-list) field deletes nothing.
      if (!deleteList) setFromPatch(original, key, pv);
      continue;
    }
    const ft = t.child(key);
    if (bothMaps) {
      original[key] = nonRetainStrategy(ft) === 'replace' ? clean(pv) : mergeMap(ov as JMap, pv as JMap, ft);
    } else {
      original[key] = mergeListField(ov as unknown[], pv as unknown[], ft, deleteList);
    }
  }
  return original;
}

/** `$patch` on an object: `replace` substitutes the patch for it, `delete` empties it. */
function mapDirective(patch: JMap): JMap {
  const directive = patch[DIRECTIVE];
  if (directive === 'replace') {
    delete patch[DIRECTIVE];
    return clean(patch) as JMap;
  }
  if (directive === 'delete') return {};
  throw patchErrors.unconverted(`unknown patch type: ${goFormat(directive)} in map: ${goFormat(patch)}`);
}

/** The field a `$directive/<field>` key names. */
function directiveTarget(key: string, prefix: string): string {
  const slash = key.indexOf('/');
  if (slash < 0 || key.slice(0, slash) !== prefix) {
    throw patchErrors.badRequest(prefix === SET_ELEMENT_ORDER
      ? 'invalid patch format of setElementOrder list'
      : 'invalid patch format of primitive list');
  }
  return key.slice(slash + 1);
}

/** Stores a patch value where the original has nothing to merge with (directive-only values vanish). */
function setFromPatch(original: JMap, key: string, pv: unknown): void {
  const v = clean(pv);
  if (v === undefined) delete original[key];
  else original[key] = v;
}

/**
 * A patch value as it lands in the object: nulls mean nothing where there is nothing to delete,
 * objects carrying `$patch` vanish, and other directive keys are dropped. Undefined: nothing to store.
 */
function clean(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(clean).filter((x) => x !== undefined);
  if (!isPlainObject(v)) return v;
  if (Object.hasOwn(v, DIRECTIVE)) return undefined;
  const out: JMap = {};
  for (const [k, x] of Object.entries(v)) {
    if (x === null || k === RETAIN_KEYS || k.startsWith(`${SET_ELEMENT_ORDER}/`) || k.startsWith(`${DELETE_FROM_PRIMITIVE_LIST}/`)) continue;
    const c = clean(x);
    if (c !== undefined) out[k] = c;
  }
  return out;
}

/** `$retainKeys`: drop every original key the list does not name (the patch may only set named keys). */
function applyRetainKeys(original: JMap, patch: JMap): void {
  if (!Object.hasOwn(patch, RETAIN_KEYS)) return;
  const list = patch[RETAIN_KEYS];
  delete patch[RETAIN_KEYS];
  if (!Array.isArray(list)) throw patchErrors.badRequest('invalid patch format of retainKeys');
  const keep = new Set(list);
  for (const [k, v] of Object.entries(patch)) {
    if (v === null || k.startsWith(DELETE_FROM_PRIMITIVE_LIST) || k.startsWith(SET_ELEMENT_ORDER)) continue;
    if (!keep.has(k)) throw patchErrors.badRequest('invalid patch format of retainKeys');
  }
  for (const k of Object.keys(original)) if (!keep.has(k)) delete original[k];
}

/**
 * `$setElementOrder/<field>`: merges that field's list now and orders the result as the directive
 * says, with server-only elements placed by their live order.
 */
function applyElementOrders(original: JMap, patch: JMap, t: FieldType): void {
  for (const key of Object.keys(patch)) {
    if (!key.startsWith(SET_ELEMENT_ORDER)) continue;
    const order = patch[key];
    delete patch[key];
    if (!Array.isArray(order)) throw badArgType([], order);
    const field = directiveTarget(key, SET_ELEMENT_ORDER);
    const hasOriginal = Object.hasOwn(original, field);
    const hasPatch = Object.hasOwn(patch, field);
    const ov = original[field];
    const pv = patch[field];
    if (hasOriginal && !Array.isArray(ov)) throw badArgType([], ov);
    if (hasPatch && !Array.isArray(pv)) throw badArgType([], pv);
    const ft = t.child(field);
    const mergeKey = ft.patchMergeKey ?? '';
    const originalList = (ov ?? []) as unknown[];
    const patchList = (pv ?? []) as unknown[];
    validateAgainstOrder(patchList, order, mergeKey);
    let merged: unknown[];
    if (hasOriginal && hasPatch) merged = mergeListField(originalList, patchList, ft, false);
    else if (hasOriginal) merged = originalList;
    else if (hasPatch) merged = clean(patchList) as unknown[];
    else continue;
    delete patch[field];
    if (merged.length === 0) {
      original[field] = merged;
      continue;
    }
    const isMap = elementsAreMaps(originalList, patchList);
    const [listed, serverOnly] = partition(merged, order, mergeKey, isMap);
    original[field] = normalizeOrder(listed, serverOnly, order, originalList, mergeKey, isMap);
  }
}

/** The patch's elements must appear in the same relative order as in `$setElementOrder`. */
function validateAgainstOrder(patchList: unknown[], order: unknown[], mergeKey: string): void {
  if (order.length === 0 || patchList.length === 0) return;
  const items = mergeKey ? withoutDeletions(patchList)[0] : patchList;
  let pi = 0;
  let oi = 0;
  while (pi < items.length && oi < order.length) {
    if (isPlainObject(items[pi]) && Object.hasOwn(items[pi] as JMap, DIRECTIVE)) {
      pi++;
      continue;
    }
    if (mergeKeyEqual(items[pi], order[oi], mergeKey)) pi++;
    oi++;
  }
  if (pi < items.length && oi >= order.length) {
    throw patchErrors.unconverted(
      `The order in patch list:\n${goFormat(patchList)}\n doesn't match ${SET_ELEMENT_ORDER} list:\n${goFormat(order)}\n`);
  }
}

function mergeKeyEqual(left: unknown, right: unknown, mergeKey: string): boolean {
  if (!mergeKey) return left === right;
  if (!isPlainObject(left)) throw badArgType({}, left);
  if (!isPlainObject(right)) throw badArgType({}, right);
  if (!Object.hasOwn(left, mergeKey)) throw noMergeKey(left, mergeKey);
  if (!Object.hasOwn(right, mergeKey)) throw noMergeKey(right, mergeKey);
  return left[mergeKey] === right[mergeKey];
}

/** The field's strategy other than retainKeys ('merge', 'replace' or ''). */
function nonRetainStrategy(ft: FieldType): string {
  return ft.patchStrategies().find((s) => s !== 'retainKeys') ?? '';
}

function mergeListField(ov: unknown[], pv: unknown[], ft: FieldType, deleteList: boolean): unknown[] {
  if (deleteList || nonRetainStrategy(ft) === 'merge') return mergeList(ov, pv, ft, ft.patchMergeKey ?? '', deleteList);
  return clean(pv) as unknown[];
}

function mergeList(original: unknown[], patch: unknown[], ft: FieldType, mergeKey: string, deleteList: boolean): unknown[] {
  if (original.length === 0 && patch.length === 0) return original;
  const isMap = elementsAreMaps(original, patch);
  let merged: unknown[];
  if (!isMap) {
    if (deleteList) return original.filter((v) => !patch.includes(v));
    merged = [...new Set([...original, ...patch])];
  } else {
    if (!mergeKey) throw patchErrors.unconverted(`cannot merge lists without merge key for ${ft.name}`);
    [original, patch] = applyListDirectives(original, patch, mergeKey);
    merged = [...original];
    for (const item of patch as JMap[]) {
      if (!Object.hasOwn(item, mergeKey)) throw noMergeKey(item, mergeKey);
      const i = findByKey(merged, mergeKey, item[mergeKey]);
      if (i >= 0) merged[i] = mergeMap(merged[i] as JMap, item, ft.items());
      else {
        const v = clean(item);
        if (v !== undefined) merged.push(v);
      }
    }
  }
  const [inPatch, serverOnly] = partition(merged, patch, mergeKey, isMap);
  return normalizeOrder(inPatch, serverOnly, patch, original, mergeKey, isMap);
}

/**
 * Handles `$patch` elements of a merged list of objects: `delete` drops the elements with that key,
 * `replace` makes the list exactly the patch's other elements. Returns the new original and patch.
 */
function applyListDirectives(original: unknown[], patch: unknown[], mergeKey: string): [unknown[], unknown[]] {
  const rest: unknown[] = [];
  let replace = false;
  for (const item of patch as JMap[]) {
    if (!Object.hasOwn(item, DIRECTIVE)) {
      rest.push(item);
      continue;
    }
    const directive = item[DIRECTIVE];
    if (directive === 'delete') {
      if (!Object.hasOwn(item, mergeKey)) throw noMergeKey(item, mergeKey);
      const key = item[mergeKey];
      original = original.filter((o, i) => {
        if (!isPlainObject(o)) throw patchErrors.unconverted(`value for key ${i} is not a map`);
        return !(Object.hasOwn(o, mergeKey) && o[mergeKey] === key);
      });
    } else if (directive === 'replace') {
      replace = true;
    } else if (directive === 'merge') {
      throw patchErrors.unconverted('merging lists cannot yet be specified in the patch');
    } else {
      throw patchErrors.unconverted(`unknown patch type: ${goFormat(directive)} in map: ${goFormat(item)}`);
    }
  }
  return replace ? [clean(rest) as unknown[], []] : [original, rest];
}

function findByKey(list: unknown[], mergeKey: string, value: unknown): number {
  return list.findIndex((o, i) => {
    if (!isPlainObject(o)) throw patchErrors.unconverted(`value for key ${i} is not a map`);
    return Object.hasOwn(o, mergeKey) && o[mergeKey] === value;
  });
}

/** Whether the lists hold objects; they must hold one JSON type, and not lists. */
function elementsAreMaps(...lists: unknown[][]): boolean {
  let first: string | undefined;
  for (const list of lists) {
    for (const v of list) {
      const t = goTypeName(v);
      if (first === undefined) {
        first = t;
        if (Array.isArray(v)) throw patchErrors.rejected();
      } else if (t !== first) {
        throw patchErrors.unconverted(`list element types are not identical: ${goFormat(lists)}`);
      }
    }
  }
  return first === 'map[string]interface {}';
}

/** Splits `list` into the elements `by` mentions and the rest, keeping their order. */
function partition(list: unknown[], by: unknown[], mergeKey: string, isMap: boolean): [unknown[], unknown[]] {
  const inBy: unknown[] = [];
  const rest: unknown[] = [];
  for (const v of list) {
    if (isMap) {
      if (!isPlainObject(v)) throw badArgType({}, v);
      if (!Object.hasOwn(v, mergeKey)) throw noMergeKey(v, mergeKey);
    }
    (indexIn(by, v, mergeKey, isMap) >= 0 ? inBy : rest).push(v);
  }
  return [inBy, rest];
}

function indexIn(list: unknown[], v: unknown, mergeKey: string, isMap: boolean): number {
  if (!isMap) return list.indexOf(v);
  const key = (v as JMap)[mergeKey];
  return list.findIndex((x) => isPlainObject(x) && x[mergeKey] === key);
}

/**
 * Orders patch elements by `patchOrder` and server-only elements by `serverOrder`, then interleaves
 * them: a server-only element goes before a patch element only when both are live and it was first.
 */
function normalizeOrder(
  patchItems: unknown[], serverOnly: unknown[], patchOrder: unknown[], serverOrder: unknown[], mergeKey: string, isMap: boolean,
): unknown[] {
  const right = sortBy(patchItems, patchOrder, mergeKey, isMap);
  const left = sortBy(serverOnly, serverOrder, mergeKey, isMap);
  const out: unknown[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length || j < right.length) {
    if (i >= left.length) out.push(right[j++]);
    else if (j >= right.length) out.push(left[i++]);
    else {
      const li = indexIn(serverOrder, left[i], mergeKey, isMap);
      const ri = indexIn(serverOrder, right[j], mergeKey, isMap);
      out.push(li >= 0 && ri >= 0 && li < ri ? left[i++] : right[j++]);
    }
  }
  return out;
}

/** Stable sort of `items` by their position in `order`; `$patch: delete` elements go last. */
function sortBy(items: unknown[], order: unknown[], mergeKey: string, isMap: boolean): unknown[] {
  let keep = items;
  let deletions: unknown[] = [];
  if (isMap) {
    for (const v of [...items, ...order]) {
      if (!isPlainObject(v)) throw badArgType({}, v);
      if (!Object.hasOwn(v, mergeKey)) throw noMergeKey(v, mergeKey);
    }
    [keep, deletions] = withoutDeletions(items);
  }
  const pos = (v: unknown) => indexIn(order, v, mergeKey, isMap);
  const sorted = [...keep].sort((a, b) => {
    const pa = pos(a);
    const pb = pos(b);
    return pa >= 0 && pb >= 0 ? pa - pb : 0;
  });
  return [...sorted, ...deletions];
}

/** Splits list elements into ordinary ones and `$patch: delete` ones. */
function withoutDeletions(list: unknown[]): [unknown[], unknown[]] {
  const keep: unknown[] = [];
  const deletions: unknown[] = [];
  for (const v of list) {
    if (!isPlainObject(v)) throw badArgType({}, v);
    (v[DIRECTIVE] === 'delete' ? deletions : keep).push(v);
  }
  return [keep, deletions];
}

function noMergeKey(m: JMap, key: string) {
  return patchErrors.unconverted(`map: ${goFormat(m)} does not contain declared merge key: ${key}`);
}

function badArgType(expected: unknown, actual: unknown) {
  return patchErrors.unconverted(`expected a ${goTypeName(expected)}, but received a ${goTypeName(actual)}`);
}
