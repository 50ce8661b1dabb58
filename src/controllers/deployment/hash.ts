// The pod-template-hash: what names a Deployment's ReplicaSets (`<deployment>-<hash>`) and labels
// their pods. As Kubernetes computes it: 32-bit FNV-1a over a deterministic rendering of the pod
// template, then the collision count (when set) as 8 little-endian bytes, then the decimal digits
// of the sum mapped into an alphabet without vowels (so no words appear in names).
//
// Kubernetes renders the Go struct with spew (fields in Go declaration order, zero values included);
// skiff renders the template's JSON with sorted keys and empty values dropped. The hash is therefore
// stable and shaped like Kubernetes' (up to 10 characters of the same alphabet) but not bit-identical
// to what kube-controller-manager would compute for the same template; nothing outside the
// controller recomputes it, so only stability matters.

export const POD_TEMPLATE_HASH_LABEL = 'pod-template-hash';

const SAFE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

export function fnv32a(bytes: Uint8Array, seed = FNV_OFFSET): number {
  let h = seed;
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, FNV_PRIME) >>> 0;
  }
  return h >>> 0;
}

/** apimachinery's SafeEncodeString: each character mapped into the vowel-free alphabet. */
export function safeEncode(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) out += SAFE_ALPHABET[s.charCodeAt(i) % SAFE_ALPHABET.length];
  return out;
}

export function computeHash(template: unknown, collisionCount?: number): string {
  let h = fnv32a(Buffer.from(canonicalJson(template), 'utf8'));
  if (collisionCount !== undefined && collisionCount !== null) {
    const extra = Buffer.alloc(8);
    extra.writeUInt32LE(collisionCount >>> 0, 0);
    h = fnv32a(extra, h);
  }
  return safeEncode(String(h));
}

/**
 * Template equality as the Deployment controller decides "is this ReplicaSet the new one": equal
 * apart from the pod-template-hash label, with absent, null and empty values the same (Go decodes
 * them to the same struct, and apimachinery's semantic equality treats nil and empty alike).
 */
export function equalIgnoreHash(a: unknown, b: unknown): boolean {
  return canonicalJson(withoutHash(a)) === canonicalJson(withoutHash(b));
}

function withoutHash(t: any): unknown {
  if (!t?.metadata?.labels || !(POD_TEMPLATE_HASH_LABEL in t.metadata.labels)) return t;
  const labels = { ...t.metadata.labels };
  delete labels[POD_TEMPLATE_HASH_LABEL];
  return { ...t, metadata: { ...t.metadata, labels } };
}

/** JSON with object keys sorted and null/empty values left out, so equal meanings render equal. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(normalize(v)) ?? '';
}

function normalize(v: unknown): unknown {
  if (v === null || v === undefined || v === '') return undefined;
  if (Array.isArray(v)) {
    if (v.length === 0) return undefined;
    // Elements keep their place: a null inside a list is still a member of it.
    return v.map((e) => normalize(e) ?? null);
  }
  if (typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) {
      const n = normalize((v as Record<string, unknown>)[k]);
      if (n !== undefined) out[k] = n;
    }
    return Object.keys(out).length ? out : undefined;
  }
  return v;
}
