// Objects as the watch cache holds them: parsed once, deep-frozen and shared by every reader, with
// their JSON text encoded at most once. Freezing is what makes handing out the same object to every
// list and watch safe without defensive copies.
import type { KeyValue, StoredObject } from './types.js';

class Stored implements StoredObject {
  private text?: string;

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

/** Parses a stored value and stamps `metadata.resourceVersion` with its modRevision. */
export function storedFromKv(kv: KeyValue): StoredObject {
  const obj = JSON.parse(kv.value);
  (obj.metadata ??= {}).resourceVersion = String(kv.modRevision);
  return new Stored(kv.key, deepFreeze(obj), kv.createRevision, kv.modRevision);
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
