// Objects as the watch cache holds them: parsed once, deep-frozen and shared by every reader.
// Freezing is what makes handing out the same object to every list and watch safe without
// defensive copies.
//
// Memory: the cache holds every live object and, in its rings, recent superseded versions.
// - A new version shares with the version before it every part that did not change (a pod's status
//   update leaves its spec, labels and most managed fields as they were), so a version costs what
//   changed, not a whole parse.
// - A new object shares the parts equal to those of another object of its resource, the one the
//   cache parsed last: pods of one Deployment have the same containers, tolerations and managed
//   fields' sets. The latest objects of a 5,000-node, 50,000-pod datastore: 360 → 195 MB of heap.
// - Empty objects and arrays are one shared frozen `{}` and `[]` (managed fields' field sets are
//   mostly `{}`: a pod has a hundred of them).
// - Short strings are shared across objects through a bounded table: a thousand pods of one
//   Deployment hold one "IfNotPresent", not a thousand.
// - JSON text is not kept with the object, which would double what a pod costs; the texts of the
//   most recently encoded objects are (bounded in count and length), so that a write's watchers
//   and its response share one encoding.
import type { KeyValue, StoredObject } from './types.js';
import { jsonStringEnd, jsonValueEnd } from '../util/json-text.js';

/**
 * Objects whose text is kept, newest last; the oldest is forgotten first once there are more than
 * RECENT_TEXTS or their texts are longer than RECENT_TEXT_CHARS in all (a few big objects, such as
 * CRDs or Helm's release Secrets, must not hold hundreds of megabytes).
 */
const RECENT_TEXTS = 512;
const RECENT_TEXT_CHARS = 8 * 1024 * 1024;
/** A stored value's text (without resourceVersion), kept until the object's own text is asked for. */
class StorageText {
  constructor(readonly text: string) {}
}
const recentTexts = new Map<StoredObject, string | StorageText>();
let recentChars = 0;

function lengthOf(t: string | StorageText): number {
  return typeof t === 'string' ? t.length : t.text.length;
}

function rememberText(o: StoredObject, text: string | StorageText): void {
  const was = recentTexts.get(o);
  if (was !== undefined) recentChars -= lengthOf(was);
  recentTexts.set(o, text);
  recentChars += lengthOf(text);
  while (recentTexts.size > RECENT_TEXTS || (recentChars > RECENT_TEXT_CHARS && recentTexts.size > 1)) {
    const [oldest, t] = recentTexts.entries().next().value!;
    recentTexts.delete(oldest);
    recentChars -= lengthOf(t);
  }
}

/**
 * Keeps the text a write stored for `o` (the text `storedFromKv` parsed), so that `o.json()` is that
 * text with the resourceVersion put in rather than a second encoding of the whole object: a pod's
 * status update is encoded once, for the database, and its watchers and its writer get those bytes.
 */
export function keepStorageText(o: StoredObject, text: string): void {
  rememberText(o, new StorageText(text));
}

class Stored implements StoredObject {
  constructor(
    readonly key: string,
    readonly obj: Readonly<Record<string, any>>,
    readonly createRevision: number,
    readonly modRevision: number,
  ) {}

  json(): string {
    const kept = recentTexts.get(this);
    if (typeof kept === 'string') return kept;
    const text = (kept && withResourceVersion(kept.text, this.obj.metadata?.resourceVersion)) ?? JSON.stringify(this.obj);
    rememberText(this, text);
    return text;
  }
}

const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;

/**
 * `JSON.stringify` of what `storedFromKv` makes of `text`, without encoding anything: that object is
 * the parse of `text` (JSON.stringify's own output, which encodes back to itself) with
 * `resourceVersion` added as metadata's last member. Undefined when `text` has no top-level metadata
 * object or is not compact JSON; the caller then encodes the object.
 */
export function withResourceVersion(text: string, resourceVersion: unknown): string | undefined {
  if (typeof resourceVersion !== 'string' || text.charCodeAt(0) !== OPEN_BRACE) return undefined;
  let i = 1;
  while (text.charCodeAt(i) === QUOTE) {
    const keyEnd = jsonStringEnd(text, i);
    if (keyEnd < 0 || text.charCodeAt(keyEnd) !== COLON) return undefined;
    const isMetadata = keyEnd - i === 10 && text.startsWith('"metadata"', i);
    const start = keyEnd + 1;
    const end = jsonValueEnd(text, start);
    if (end < 0) return undefined;
    if (isMetadata) {
      if (text.charCodeAt(start) !== OPEN_BRACE) return undefined;
      const close = end - 1;
      const member = `"resourceVersion":${JSON.stringify(resourceVersion)}`;
      return text.slice(0, close) + (close === start + 1 ? member : `,${member}`) + text.slice(close);
    }
    if (text.charCodeAt(end) !== COMMA) return undefined;
    i = end + 1;
  }
  return undefined;
}

/** Strings up to this length are looked up in the table; longer ones are rarely repeated verbatim. */
const INTERN_MAX_LENGTH = 64;
/** Entries before the table starts over (names, UIDs and times are unique and would fill it for good). */
const INTERN_MAX_ENTRIES = 50_000;
let interned = new Map<string, string>();

function intern(s: string): string {
  if (s.length > INTERN_MAX_LENGTH) return s;
  const known = interned.get(s);
  if (known !== undefined) return known;
  if (interned.size >= INTERN_MAX_ENTRIES) interned = new Map();
  interned.set(s, s);
  return s;
}

const EMPTY_OBJECT = Object.freeze({});
const EMPTY_ARRAY = Object.freeze([]);

/** `v` deep-frozen, its empty objects and arrays and its short strings replaced by the shared ones. */
function deepFreeze(v: unknown): unknown {
  if (typeof v === 'string') return intern(v);
  if (typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) {
    if (v.length === 0) return EMPTY_ARRAY;
    // Assigned even when `===`: for strings that compares contents, and the point is the instance.
    for (let i = 0; i < v.length; i++) v[i] = deepFreeze(v[i]);
    return Object.freeze(v);
  }
  const o = v as Record<string, unknown>;
  let n = 0;
  for (const k in o) {
    n++;
    o[k] = deepFreeze(o[k]);
  }
  return n === 0 ? EMPTY_OBJECT : Object.freeze(o);
}

/**
 * `next` deep-frozen, with every part equal to the part of `prev` at the same path replaced by
 * prev's (already frozen) one: equal strings, and objects and arrays whose members are all shared
 * (same keys in the same order, so the JSON text is the same too). Returns `prev` itself when all
 * of `next` equals it.
 */
function frozenSharing(next: unknown, prev: unknown): unknown {
  if (typeof next !== 'object' || next === null) {
    if (next === prev) return prev;
    return typeof next === 'string' ? intern(next) : next;
  }
  if (typeof prev !== 'object' || prev === null || Array.isArray(next) !== Array.isArray(prev)) return deepFreeze(next);
  if (Array.isArray(next)) {
    const before = prev as unknown[];
    let same = next.length === before.length;
    for (let i = 0; i < next.length; i++) {
      const v = frozenSharing(next[i], i < before.length ? before[i] : undefined);
      next[i] = v; // even when `===`: a string's instance is what is shared
      if (v !== before[i]) same = false;
    }
    if (same) return prev;
    return next.length === 0 ? EMPTY_ARRAY : Object.freeze(next);
  }
  const before = prev as Record<string, unknown>;
  const o = next as Record<string, unknown>;
  // No Object.keys arrays: this runs on every member of every object written (a parse's objects
  // have only their own keys, so for-in sees exactly those, in order).
  let same = true;
  let n = 0;
  for (const k in o) {
    const was = Object.hasOwn(before, k) ? before[k] : undefined;
    const v = frozenSharing(o[k], was);
    o[k] = v; // even when `===`: a string's instance is what is shared
    if (v !== was) same = false;
    n++;
  }
  if (same && sameKeyOrder(o, before, n)) return prev;
  return n === 0 ? EMPTY_OBJECT : Object.freeze(o);
}

/** Keys of the object being compared, in order; one array reused (the check never recurses). */
const scratchKeys: string[] = [];

/**
 * Whether `before` has the `n` keys of `o` and no other, in the same order. Called only when every
 * member of `o` is `before`'s (so each of o's keys is one of before's).
 */
function sameKeyOrder(o: Record<string, unknown>, before: Record<string, unknown>, n: number): boolean {
  scratchKeys.length = 0;
  for (const k in o) scratchKeys.push(k);
  let i = 0;
  let same = true;
  for (const k in before) {
    if (i >= n || scratchKeys[i] !== k) { same = false; break; }
    i++;
  }
  scratchKeys.length = 0;
  return same && i === n;
}

/**
 * Parses a stored value and stamps `metadata.resourceVersion` with its modRevision. The new object
 * shares every part equal to the same part of `like`: the same key's previous version (a status
 * update leaves the spec as it was), or for a new key another object of its resource (pods of one
 * Deployment differ in their names, UIDs, node and times; the cache passes the one it parsed last).
 */
export function storedFromKv(kv: KeyValue, like?: StoredObject): StoredObject {
  const obj = JSON.parse(kv.value);
  (obj.metadata ??= {}).resourceVersion = String(kv.modRevision);
  // Never `like.obj` itself: the resourceVersion just stamped differs from like's (an earlier revision).
  const frozen = (like ? frozenSharing(obj, like.obj) : deepFreeze(obj)) as Record<string, any>;
  return new Stored(kv.key, frozen, kv.createRevision, kv.modRevision);
}

/** The same object at another revision (a deletion's last state): shares everything but metadata. */
export function storedAtRevision(s: StoredObject, revision: number): StoredObject {
  const metadata = Object.freeze({ ...s.obj.metadata, resourceVersion: String(revision) });
  return new Stored(s.key, Object.freeze({ ...s.obj, metadata }), s.createRevision, revision);
}

/** The text the backend stores: the object without metadata.resourceVersion (the revision is the row). */
export function encodeForStorage(obj: Record<string, any>): string {
  const meta = obj.metadata;
  if (!meta || typeof meta !== 'object' || !('resourceVersion' in meta)) return JSON.stringify(obj);
  const { resourceVersion: _dropped, ...rest } = meta;
  return JSON.stringify({ ...obj, metadata: rest });
}
