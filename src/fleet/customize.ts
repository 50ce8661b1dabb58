// A bundle's manifests for one cluster: parse the resources (YAML, several documents a file),
// substitute the cluster's values into string fields, and apply the target's patches. Runs on the
// site (each site renders its own copy, so the manager ships one content to all and a small set of
// options per cluster). Pure except for the patcher, which the server injects (the JSON, merge and
// strategic merge patch rules live in the API server; one rule, one place).
//
// Substitution is Fleet's templating syntax, on parsed string values (never on the text, so a value
// cannot inject YAML): `${ .ClusterName }`, `${ .ClusterLabels.region }`, `${ .Values.key }`
// (`.ClusterValues.key` too, Fleet's name). A label or value the cluster lacks is an error naming
// it, not an empty string: a missing label is a targeting mistake better seen than deployed.
import { parseAllDocuments } from 'yaml';
import type { KObject } from '../api/object.js';
import type { BundlePatch, BundleResource, ShippedOptions } from './api.js';

export type Patcher = (obj: KObject, type: 'json' | 'merge' | 'strategic', patch: unknown) => KObject;

export class RenderError extends Error {}

const MANIFEST_RE = /\.(ya?ml|json)$/i;

/** Whether a resource name is a manifest (other files of a git path, READMEs, are skipped). Unnamed inline resources are manifests. */
export function isManifest(name: string | undefined): boolean {
  return !name || MANIFEST_RE.test(name);
}

/** The objects of a bundle's resources; throws RenderError naming the file for invalid YAML or a non-object document. */
export function parseResources(resources: BundleResource[]): KObject[] {
  const out: KObject[] = [];
  for (const [i, r] of resources.entries()) {
    if (!isManifest(r.name) || r.name?.endsWith('fleet.yaml')) continue;
    const label = r.name ?? `resources[${i}]`;
    let text = r.content ?? '';
    if (r.encoding === 'base64') text = Buffer.from(text, 'base64').toString('utf8');
    else if (r.encoding && r.encoding !== '') throw new RenderError(`${label}: unsupported encoding "${r.encoding}"`);
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors.length) throw new RenderError(`${label}: invalid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
      const v = doc.toJS();
      if (v === null || v === undefined) continue;
      if (typeof v !== 'object' || Array.isArray(v)) throw new RenderError(`${label}: a document is not an object`);
      if (v.kind === 'List' && Array.isArray(v.items)) { out.push(...(v.items as KObject[])); continue; }
      if (typeof v.apiVersion !== 'string' || typeof v.kind !== 'string' || typeof v.metadata?.name !== 'string') {
        throw new RenderError(`${label}: every object needs apiVersion, kind and metadata.name`);
      }
      out.push(v as KObject);
    }
  }
  return out;
}

const TEMPLATE_RE = /\$\{\s*\.(ClusterName|ClusterNamespace|ClusterLabels\.([A-Za-z0-9_./-]+)|(?:Values|ClusterValues)\.([A-Za-z0-9_.-]+))\s*\}/g;

/** Substitutes `${ ... }` in one string. */
export function substituteString(s: string, o: ShippedOptions, depth = 0): string {
  return s.replace(TEMPLATE_RE, (_m, what: string, label?: string, value?: string) => {
    if (what === 'ClusterName') return o.clusterName;
    if (what === 'ClusterNamespace') return 'fleet-default';
    if (label !== undefined) {
      const v = o.clusterLabels[label];
      if (v === undefined) throw new RenderError(`cluster "${o.clusterName}" has no label "${label}" (used as \${ .ClusterLabels.${label} })`);
      return v;
    }
    let v: unknown = o.values;
    for (const part of value!.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
    if (v === undefined || v === null) throw new RenderError(`no value "${value}" for cluster "${o.clusterName}" (used as \${ .Values.${value} })`);
    const text = typeof v === 'string' ? v : JSON.stringify(v);
    // Values may themselves name labels (`region-${ .ClusterLabels.region }`); once, not recursively.
    return depth === 0 ? substituteString(text, o, 1) : text;
  });
}

export function substitute<T>(v: T, o: ShippedOptions): T {
  if (typeof v === 'string') return substituteString(v, o) as T;
  if (Array.isArray(v)) return v.map((x) => substitute(x, o)) as T;
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = substitute(x, o);
    return out as T;
  }
  return v;
}

function patchMatches(p: BundlePatch, obj: KObject): boolean {
  if (p.kind !== undefined && p.kind !== obj.kind) return false;
  if (p.apiVersion !== undefined && p.apiVersion !== obj.apiVersion) return false;
  if (p.name !== undefined && p.name !== obj.metadata.name) return false;
  if (p.namespace !== undefined && p.namespace !== obj.metadata.namespace) return false;
  return true;
}

/** The cluster's objects: parsed, substituted, patched. */
export function render(resources: BundleResource[], o: ShippedOptions, patcher: Patcher | undefined): KObject[] {
  let objects = parseResources(resources).map((obj) => substitute(obj, o));
  for (const [i, p] of (o.patches ?? []).entries()) {
    if (p.kind === undefined && p.name === undefined) throw new RenderError(`patches[${i}]: name the object it patches (kind and/or name)`);
    let hit = false;
    objects = objects.map((obj) => {
      if (!patchMatches(p, obj)) return obj;
      hit = true;
      if (!patcher) throw new RenderError('this site cannot apply patches');
      try {
        return patcher(obj, p.type ?? 'strategic', substitute(p.patch, o));
      } catch (e) {
        throw new RenderError(`patches[${i}] on ${obj.kind}/${obj.metadata.name}: ${(e as Error).message}`);
      }
    });
    if (!hit) throw new RenderError(`patches[${i}] (${p.kind ?? '*'}/${p.name ?? '*'}) matches no object of the bundle`);
  }
  return objects;
}
