// RFC 6902 JSON patch (`application/json-patch+json`), with the behaviour of the library Kubernetes
// uses (evanphx/json-patch v4): `replace` of a missing object key adds it, negative array indices
// count from the end, and a failing operation (including `test`) rejects the whole patch with 422
// and Kubernetes' generic message. A body that is not a list of operations is a 400.

import { isPlainObject } from '../../api/object.js';
import { jsonKindWord, patchErrors } from './errors.js';
import { deepEqual } from './values.js';

/** Kubernetes refuses JSON patches with more operations than this (413). */
export const MAX_JSON_PATCH_OPERATIONS = 10000;

type Container = Record<string, unknown> | unknown[];

/** Applies `patchOps` to a copy of `doc`; throws ApiError (400 bad body, 413 too long, 422 failed op). */
export function applyJsonPatch(doc: unknown, patchOps: unknown): unknown {
  if (!Array.isArray(patchOps)) {
    throw patchErrors.badRequest(`json: cannot unmarshal ${jsonKindWord(patchOps)} into Go value of type jsonpatch.Patch`);
  }
  for (const op of patchOps) {
    if (op !== null && !isPlainObject(op)) {
      throw patchErrors.badRequest(`json: cannot unmarshal ${jsonKindWord(op)} into Go value of type jsonpatch.Operation`);
    }
  }
  if (patchOps.length > MAX_JSON_PATCH_OPERATIONS) {
    throw patchErrors.tooManyOperations(MAX_JSON_PATCH_OPERATIONS, patchOps.length);
  }
  const root = { doc: structuredClone(doc) };
  for (const op of patchOps as (Record<string, unknown> | null)[]) {
    const failure = applyOperation(root, op ?? {});
    if (failure) {
      // Kubernetes hides the library's reason from the client; keep it for the server's logs.
      const err = patchErrors.rejected();
      err.cause = failure;
      throw err;
    }
  }
  return root.doc;
}

/** Applies one operation in place; returns why it does not apply, or undefined. */
function applyOperation(root: { doc: unknown }, op: Record<string, unknown>): string | undefined {
  const kind = typeof op.op === 'string' ? op.op : 'unknown';
  const path = op.path;
  const value = op.value === undefined ? null : op.value;
  switch (kind) {
    case 'add': {
      if (typeof path !== 'string') return 'add operation failed to decode path: missing value';
      const at = locate(root.doc, path);
      if (!at) return `add operation does not apply: doc is missing path: "${path}": missing value`;
      return add(at[0], at[1], structuredClone(value)) ? `error in add for path: '${path}'` : undefined;
    }
    case 'remove': {
      if (typeof path !== 'string') return 'remove operation failed to decode path: missing value';
      const at = locate(root.doc, path);
      if (!at) return `remove operation does not apply: doc is missing path: "${path}": missing value`;
      return remove(at[0], at[1]) ? `error in remove for path: '${path}'` : undefined;
    }
    case 'replace': {
      if (typeof path !== 'string') return 'replace operation failed to decode path';
      if (path === '') {
        if (typeof value !== 'object' || value === null) return 'replace operation value must be object or array';
        root.doc = structuredClone(value);
        return undefined;
      }
      const at = locate(root.doc, path);
      if (!at) return `replace operation does not apply: doc is missing path: ${path}: missing value`;
      if (get(at[0], at[1]).error) return `replace operation does not apply: doc is missing key: ${path}: missing value`;
      set(at[0], at[1], structuredClone(value));
      return undefined;
    }
    case 'move':
    case 'copy': {
      const from = op.from;
      if (typeof from !== 'string') return `${kind} operation failed to decode from`;
      const src = locate(root.doc, from);
      if (!src) return `${kind} operation does not apply: doc is missing from path: ${from}: missing value`;
      const got = get(src[0], src[1]);
      if (got.error) return `error in ${kind} for path: '${from}'`;
      if (kind === 'move' && remove(src[0], src[1])) return `error in move for path: '${src[1]}'`;
      if (typeof path !== 'string') return `${kind} operation failed to decode path`;
      const dst = locate(root.doc, path);
      if (!dst) return `${kind} operation does not apply: doc is missing destination path: ${path}: missing value`;
      const moved = got.value === undefined ? null : kind === 'copy' ? structuredClone(got.value) : got.value;
      return add(dst[0], dst[1], moved) ? `error in ${kind} for path: '${path}'` : undefined;
    }
    case 'test': {
      if (typeof path !== 'string') return 'test operation failed to decode path';
      const failed = `testing value ${path} failed: test failed`;
      if (path === '') return deepEqual(root.doc, op.value) ? undefined : failed;
      const at = locate(root.doc, path);
      if (!at) return `test operation does not apply: is missing path: ${path}: missing value`;
      const got = get(at[0], at[1]);
      if (got.error) return `error in test for path: '${path}'`;
      // A missing member and an explicit null both match a test for null (or for no value at all).
      if (got.value === undefined || got.value === null) return op.value === undefined || op.value === null ? undefined : failed;
      return op.value !== undefined && deepEqual(got.value, op.value) ? undefined : failed;
    }
    default:
      return `Unexpected kind: ${kind}`;
  }
}

/** The container holding the last token of `path`, and that token; undefined if a parent is missing. */
function locate(doc: unknown, path: string): [Container, string] | undefined {
  const tokens = path.split('/');
  if (tokens.length < 2) return undefined;
  let cur: unknown = doc;
  for (const raw of tokens.slice(1, -1)) {
    if (!isContainer(cur)) return undefined;
    const next = get(cur, unescapeToken(raw));
    if (next.error || !isContainer(next.value)) return undefined;
    cur = next.value;
  }
  return isContainer(cur) ? [cur, unescapeToken(tokens[tokens.length - 1])] : undefined;
}

function isContainer(v: unknown): v is Container {
  return typeof v === 'object' && v !== null;
}

function unescapeToken(t: string): string {
  return t.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** Parses an array index the way Go's strconv.Atoi does (optional sign, decimal digits). */
function parseIndex(key: string): number | undefined {
  return /^[+-]?\d+$/.test(key) ? Number(key) : undefined;
}

/** Resolves an index into `arr` for reading or replacing (negative counts from the end). */
function existingIndex(arr: unknown[], key: string): number | undefined {
  let i = parseIndex(key);
  if (i === undefined) return undefined;
  if (i < 0) i += arr.length;
  return i >= 0 && i < arr.length ? i : undefined;
}

function get(c: Container, key: string): { value?: unknown; error?: true } {
  if (Array.isArray(c)) {
    const i = existingIndex(c, key);
    return i === undefined ? { error: true } : { value: c[i] };
  }
  return { value: Object.hasOwn(c, key) ? c[key] : undefined };
}

function set(c: Container, key: string, value: unknown): void {
  if (Array.isArray(c)) c[existingIndex(c, key)!] = value;
  else c[key] = value;
}

/** Returns true when the operation cannot apply. */
function add(c: Container, key: string, value: unknown): boolean {
  if (!Array.isArray(c)) {
    c[key] = value;
    return false;
  }
  if (key === '-') {
    c.push(value);
    return false;
  }
  let i = parseIndex(key);
  if (i === undefined) return true;
  if (i < 0) i += c.length + 1;
  if (i < 0 || i > c.length) return true;
  c.splice(i, 0, value);
  return false;
}

/** Returns true when the operation cannot apply. */
function remove(c: Container, key: string): boolean {
  if (!Array.isArray(c)) {
    if (!Object.hasOwn(c, key)) return true;
    delete c[key];
    return false;
  }
  const i = existingIndex(c, key);
  if (i === undefined) return true;
  c.splice(i, 1);
  return false;
}
