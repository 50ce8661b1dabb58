// A bundle's content, content-addressed and stored in chunks. The manager keeps every version a
// BundleDeployment still names (a staged rollout runs two at once; a cluster that returns after a
// week may still be on an old one) as ConfigMaps `content-<hash>-<i>` holding gzip'd JSON in chunks
// of at most CHUNK_BYTES, so no API object limit caps a bundle; the tunnel then ships it to the
// site in its own frames. IDs are Fleet's shape: `s-<content hash>:<options hash>`.
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { KObject } from '../api/object.js';
import type { BundleResource } from './api.js';

/** Below the API's 1 MiB object limit with room for metadata and base64. */
export const CHUNK_BYTES = 512 * 1024;
export const CONTENT_LABEL = 'fleet.skiff.io/content';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

export function contentHash(resources: BundleResource[]): string {
  return sha(JSON.stringify(resources.map((r) => [r.name ?? '', r.encoding ?? '', r.content ?? '']))).slice(0, 32);
}

/** Stable JSON (sorted keys), so equal options hash equal. */
export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

export function deploymentId(content: string, options: unknown): string {
  return `s-${content}:${sha(stableJson(options)).slice(0, 16)}`;
}

export function contentOf(deploymentID: string | undefined): string | undefined {
  const m = /^s-([0-9a-f]+):/.exec(deploymentID ?? '');
  return m?.[1];
}

/** ConfigMaps holding one content (binaryData chunks), labelled with its hash. */
export function contentConfigMaps(namespace: string, hash: string, resources: BundleResource[], owner?: KObject): KObject[] {
  const packed = gzipSync(Buffer.from(JSON.stringify(resources)));
  const out: KObject[] = [];
  const count = Math.max(1, Math.ceil(packed.length / CHUNK_BYTES));
  for (let i = 0; i < count; i++) {
    out.push({
      apiVersion: 'v1', kind: 'ConfigMap',
      metadata: {
        name: `content-${hash}-${i}`, namespace,
        labels: { [CONTENT_LABEL]: hash, 'app.kubernetes.io/managed-by': 'skiff-fleet' },
        annotations: { 'fleet.skiff.io/chunks': String(count) },
        ...(owner ? { ownerReferences: [{ apiVersion: owner.apiVersion, kind: owner.kind, name: owner.metadata.name!, uid: owner.metadata.uid!, blockOwnerDeletion: false }] } : {}),
      },
      binaryData: { data: packed.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES).toString('base64') },
    } as KObject);
  }
  return out;
}

/** The resources back from a content's ConfigMaps, or undefined when a chunk is missing. */
export function unpackContent(chunks: KObject[]): BundleResource[] | undefined {
  if (!chunks.length) return undefined;
  const count = Number(chunks[0]!.metadata.annotations?.['fleet.skiff.io/chunks'] ?? chunks.length);
  const byIndex = new Map(chunks.map((c) => [Number(/-(\d+)$/.exec(c.metadata.name!)?.[1]), c]));
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const c = byIndex.get(i) as (KObject & { binaryData?: Record<string, string> }) | undefined;
    if (!c?.binaryData?.data) return undefined;
    parts.push(Buffer.from(c.binaryData.data, 'base64'));
  }
  return JSON.parse(gunzipSync(Buffer.concat(parts)).toString('utf8')) as BundleResource[];
}
