// ControllerRevisions: the template history DaemonSets and StatefulSets keep (apps/v1
// ControllerRevision), which `kubectl rollout history|undo` reads. Each revision is named
// `<owner>-<hash>`, labelled `controller-revision-hash=<hash>`, holds the template as the patch
// `{"spec":{"template":{..., "$patch":"replace"}}}` (what kubectl undo applies back), and carries a
// revision number one above the highest before it. A template that returns to an old revision
// (rollback) re-uses that revision object and moves its number to the top, as Kubernetes does.
//
// The hash is FNV-32a over a canonical JSON rendering of the template (plus the collision count),
// spelled with Kubernetes' SafeEncodeString alphabet. Kubernetes hashes its Go struct rendering
// instead, so the strings differ from a real cluster's; only their stability and uniqueness matter.
import { controllerOf, controllerRef, type KObject } from '../api/object.js';
import type { ApiClient } from '../client/types.js';
import { Resources, isAlreadyExists } from '../client/types.js';

type Obj = Record<string, any>;

export const REVISION_HASH_LABEL = 'controller-revision-hash';

/** JSON with object keys sorted, so equal values always render (and hash) the same. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v as Obj).filter((k) => (v as Obj)[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Obj)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export function fnv32a(bytes: Uint8Array, seed = 0x811c9dc5): number {
  let h = seed;
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

const SAFE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** rand.SafeEncodeString: each character mapped into an alphabet without vowels or look-alikes. */
export function safeEncode(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) out += SAFE_ALPHABET[s.charCodeAt(i) % SAFE_ALPHABET.length];
  return out;
}

/** The hash of a value and a collision count (written after it as a little-endian uint32). */
export function hashOf(value: unknown, collisionCount?: number): string {
  let h = fnv32a(Buffer.from(canonicalJson(value)));
  if (collisionCount) {
    const c = Buffer.alloc(4);
    c.writeUInt32LE(collisionCount >>> 0);
    h = fnv32a(c, h);
  }
  return safeEncode(String(h));
}

/** The revision data for a template: a strategic patch that replaces the owner's template. */
export function revisionData(template: Obj): Obj {
  return { spec: { template: { ...structuredClone(template), $patch: 'replace' } } };
}

/** The template a revision recorded, or undefined for data of another shape. */
export function templateOf(revision: KObject): Obj | undefined {
  const t = (revision as Obj).data?.spec?.template;
  if (!t || typeof t !== 'object') return undefined;
  const { $patch: _replace, ...template } = t as Obj;
  return template;
}

export function revisionNumber(r: KObject): number {
  return Number((r as Obj).revision ?? 0);
}

/** Kubernetes keeps the name within 253 characters by cutting the prefix at 223. */
export function revisionName(owner: string, hash: string): string {
  return `${owner.slice(0, 223)}-${hash}`;
}

export type EnsureResult = { revision: KObject; collision?: undefined } | { revision?: undefined; collision: true };

/**
 * The revision for `data` (hashed `hash`) among the owner's `revisions`: found, moved to the top of
 * the history when an older one matches, or created. A different object already holding the name
 * is a hash collision: the caller bumps `status.collisionCount` and tries again with a new hash.
 */
export async function ensureRevision(client: ApiClient, owner: KObject, revisions: KObject[], hash: string, data: Obj,
  labels: Record<string, string> | undefined): Promise<EnsureResult> {
  const ns = owner.metadata.namespace;
  const max = revisions.reduce((m, r) => Math.max(m, revisionNumber(r)), 0);
  const want = canonicalJson(data);
  const equal = revisions.find((r) => r.metadata.labels?.[REVISION_HASH_LABEL] === hash && canonicalJson((r as Obj).data) === want);
  if (equal) return { revision: await moveToTop(client, equal, max) };
  const body: Obj = {
    apiVersion: 'apps/v1', kind: 'ControllerRevision',
    metadata: {
      name: revisionName(String(owner.metadata.name), hash), namespace: ns,
      labels: { ...(labels ?? {}), [REVISION_HASH_LABEL]: hash },
      ownerReferences: [controllerRef(owner)],
    },
    data, revision: max + 1,
  };
  if (owner.metadata.annotations && Object.keys(owner.metadata.annotations).length) body.metadata.annotations = { ...owner.metadata.annotations };
  try {
    return { revision: await client.create(Resources.controllerRevisions, ns, body as KObject) };
  } catch (e) {
    if (!isAlreadyExists(e)) throw e;
    // Ours already (the informer had not seen it yet), or a collision with another template.
    const existing = await client.get(Resources.controllerRevisions, ns, body.metadata.name);
    if (existing && controllerOf(existing)?.uid === owner.metadata.uid && canonicalJson((existing as Obj).data) === want) {
      return { revision: await moveToTop(client, existing, max) };
    }
    return { collision: true };
  }
}

async function moveToTop(client: ApiClient, r: KObject, max: number): Promise<KObject> {
  if (revisionNumber(r) >= max) return r;
  const next = structuredClone(r) as Obj;
  next.revision = max + 1;
  return client.update(Resources.controllerRevisions, r.metadata.namespace, next as KObject);
}

/**
 * Deletes the oldest revisions beyond `limit` that no live object uses (`inUse` holds revision
 * names); the revisions the owner still names (current, update) are passed in `inUse` too.
 */
export async function truncateHistory(client: ApiClient, revisions: KObject[], inUse: Set<string>, limit: number): Promise<void> {
  const old = revisions.filter((r) => !inUse.has(String(r.metadata.name))).sort((a, b) => revisionNumber(a) - revisionNumber(b));
  const excess = old.length - Math.max(0, limit);
  for (let i = 0; i < excess; i++) {
    const r = old[i]!;
    try {
      await client.delete(Resources.controllerRevisions, r.metadata.namespace, String(r.metadata.name));
    } catch (e) {
      if ((e as { code?: number }).code !== 404) throw e;
    }
  }
}
