// Objects as the watch cache holds them: parsed once, deep-frozen and shared by every reader, with
// their JSON text encoded at most once. Freezing is what makes handing out the same object to every
// list and watch safe without defensive copies.
//
// Memory: the cache holds every live object and, in its rings, recent superseded versions. A new
// version shares with the version before it every part that did not change (a pod's status update
// leaves its spec, labels and most managed fields as they were), so a version costs what changed,
// not a whole parse. A superseded version drops its JSON text: the watchers it was written to have
// it, and a replay from the ring encodes it again.
import type { KeyValue, StoredObject } from './types.js';

class Stored implements StoredObject {
  text?: string;

  constructor(
    readonly key: string,
    readonly obj: Readonly<Record<string, any>>,
    readonly createRevision: number,
    readonly modRevision: number,
  ) {}

  json(): string {
    return (this.text ??= JSON.stringify(this.obj));
  }
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null) {
    for (const child of Object.values(v)) deepFreeze(child);
    Object.freeze(v);
  }
  return v;
}

/**
 * `next` deep-frozen, with every part equal to the part of `prev` at the same path replaced by
 * prev's (already frozen) one: equal strings, and objects and arrays whose members are all shared
 * (same keys in the same order, so the JSON text is the same too). Returns `prev` itself when all
 * of `next` equals it.
 */
function frozenSharing(next: unknown, prev: unknown): unknown {
  if (typeof next !== 'object' || next === null) return next === prev ? prev : next;
  if (typeof prev !== 'object' || prev === null || Array.isArray(next) !== Array.isArray(prev)) return deepFreeze(next);
  let same = true;
  if (Array.isArray(next)) {
    const before = prev as unknown[];
    if (next.length !== before.length) same = false;
    for (let i = 0; i < next.length; i++) {
      const v = frozenSharing(next[i], i < before.length ? before[i] : undefined);
      if (v !== next[i]) next[i] = v;
      if (v !== before[i]) same = false;
    }
  } else {
    const before = prev as Record<string, unknown>;
    const beforeKeys = Object.keys(before);
    const keys = Object.keys(next);
    if (keys.length !== beforeKeys.length) same = false;
    const o = next as Record<string, unknown>;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      const was = Object.hasOwn(before, k) ? before[k] : undefined;
      const v = frozenSharing(o[k], was);
      if (v !== o[k]) o[k] = v;
      if (v !== was || beforeKeys[i] !== k) same = false;
    }
  }
  return same ? prev : Object.freeze(next);
}

/**
 * Parses a stored value and stamps `metadata.resourceVersion` with its modRevision. Given the same
 * key's previous version, the new one shares every unchanged part with it.
 */
export function storedFromKv(kv: KeyValue, previous?: StoredObject): StoredObject {
  const obj = JSON.parse(kv.value);
  (obj.metadata ??= {}).resourceVersion = String(kv.modRevision);
  const frozen = previous ? frozenSharing(obj, previous.obj) as Record<string, any> : deepFreeze(obj);
  return new Stored(kv.key, frozen, kv.createRevision, kv.modRevision);
}

/** `s` was replaced by a newer version: its text was written to its watchers; a replay encodes it again. */
export function superseded(s: StoredObject): void {
  if (s instanceof Stored) s.text = undefined;
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
