#!/usr/bin/env node
// Generator (`npm run gen`; its output is committed, see "Generated files" in README.md): derives
// skiff's API schema model (see src/api/schema-types.ts) from the generated models of
// @kubernetes/client-node and the kinds table in src/api/kinds.ts. Each model class carries a static
// `attributeTypeMap` (JSON name, type, format); its .d.ts carries the doc comments and marks optional
// fields with `?`.
// Writes generated/schemas.json (loaded by the server: kept small, no descriptions) and
// generated/schema-docs.json (descriptions and OpenAPI definition names: only OpenAPI needs them).
// Patch metadata (merge keys, list types) is folded in at load time from src/api/patch-metadata.ts.
//
//   node scripts/gen-schemas.mjs           rewrite generated/*.json
//   node scripts/gen-schemas.mjs --check   exit 1 if the committed files differ from what it would write

import { readdirSync, readFileSync, writeFileSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const modelsDir = join(root, 'node_modules/@kubernetes/client-node/dist/gen/models');
const outDir = join(root, 'generated');

// Fields whose Go type is resource.Quantity (or a map of them, such as ResourceList); client-node
// types them as plain strings. Recorded from k8s.io/api 1.36.
const QUANTITY_FIELDS = new Set([
  'V1CSIStorageCapacity.capacity', 'V1CSIStorageCapacity.maximumVolumeSize',
  'V1CapacityRequestPolicy.default', 'V1CapacityRequestPolicyRange.max', 'V1CapacityRequestPolicyRange.min',
  'V1CapacityRequestPolicyRange.step', 'V1CapacityRequirements.requests', 'V1ContainerStatus.allocatedResources',
  'V1Counter.value', 'V1DeviceCapacity.value', 'V1DeviceRequestAllocationResult.consumedCapacity',
  'V1EmptyDirVolumeSource.sizeLimit', 'V1LimitRangeItem.default', 'V1LimitRangeItem.defaultRequest',
  'V1LimitRangeItem.max', 'V1LimitRangeItem.maxLimitRequestRatio', 'V1LimitRangeItem.min',
  'V1NodeAllocatableResourceClaimStatus.resources', 'V1NodeAllocatableResourceMapping.allocationMultiplier',
  'V1NodeStatus.allocatable', 'V1NodeStatus.capacity', 'V1Overhead.podFixed',
  'V1PersistentVolumeClaimStatus.allocatedResources', 'V1PersistentVolumeClaimStatus.capacity',
  'V1PersistentVolumeSpec.capacity', 'V1PodSpec.overhead', 'V1PodStatus.allocatedResources',
  'V1ResourceFieldSelector.divisor', 'V1ResourceQuotaSpec.hard', 'V1ResourceQuotaStatus.hard',
  'V1ResourceQuotaStatus.used', 'V1ResourceRequirements.limits', 'V1ResourceRequirements.requests',
  'V1VolumeResourceRequirements.limits', 'V1VolumeResourceRequirements.requests', 'V2HPAScalingRules.tolerance',
  'V2MetricTarget.averageValue', 'V2MetricTarget.value', 'V2MetricValueStatus.averageValue',
  'V2MetricValueStatus.value',
]);

// Kinds that are not rows of the kinds table but are still sent and received as objects.
const EXTRA_KINDS = [
  ['V1Scale', 'autoscaling', 'v1', 'Scale'],
  ['V1Eviction', 'policy', 'v1', 'Eviction'],
  ['V1Binding', '', 'v1', 'Binding'],
  ['AuthenticationV1TokenRequest', 'authentication.k8s.io', 'v1', 'TokenRequest'],
  ['V1Status', '', 'v1', 'Status'],
];

// apimachinery's meta/v1 types: their OpenAPI names live under io.k8s.apimachinery, not io.k8s.api.
const META_TYPES = [
  'APIGroup', 'APIGroupList', 'APIResource', 'APIResourceList', 'APIVersions', 'Condition', 'DeleteOptions',
  'FieldSelectorRequirement', 'GroupVersionForDiscovery', 'LabelSelector', 'LabelSelectorRequirement', 'ListMeta',
  'ManagedFieldsEntry', 'ObjectMeta', 'OwnerReference', 'Preconditions', 'ServerAddressByClientCIDR', 'Status',
  'ShardInfo', 'StatusCause', 'StatusDetails', 'WatchEvent',
];

const started = performance.now();

/** Model name → { attrs: attributeTypeMap }. */
const models = new Map();
for (const file of readdirSync(modelsDir)) {
  if (!file.endsWith('.js') || file === 'ObjectSerializer.js' || file === 'all.js') continue;
  const mod = await import(pathToFileURL(join(modelsDir, file)).href);
  for (const [name, cls] of Object.entries(mod)) {
    if (Array.isArray(cls?.attributeTypeMap)) models.set(name, cls.attributeTypeMap);
  }
}

/** Maps a client-node type string (with its format) to a FieldSchema. */
function fieldSchema(type, format) {
  const arr = /^Array<(.+)>$/.exec(type);
  if (arr) return { kind: 'array', items: fieldSchema(arr[1], '') };
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) return { kind: 'map', values: fieldSchema(map[1], '') };
  switch (type) {
    case 'string': return format === 'byte' ? { kind: 'string', format } : { kind: 'string' };
    case 'number':
      if (format === 'int32' || format === 'int64') return { kind: 'integer', format };
      return format ? { kind: 'number', format } : { kind: 'number' };
    case 'boolean': return { kind: 'boolean' };
    case 'Date': case 'V1MicroTime': return { kind: 'date-time' };
    case 'IntOrString': return { kind: 'int-or-string' };
    case 'any': case 'object': return { kind: 'any' };
  }
  if (!models.has(type)) throw new Error(`gen-schemas: unknown type ${type}`);
  return { kind: 'object', ref: type };
}

/** Quantity fields: a string becomes a quantity, a map's values become quantities. */
function markQuantity(f) {
  if (f.kind === 'map') return { ...f, values: { kind: 'quantity' } };
  return { kind: 'quantity' };
}

/** Doc comments and required fields, read from a model's .d.ts. */
function readDeclarations(name) {
  const text = readFileSync(join(modelsDir, `${name}.d.ts`), 'utf8');
  const unescape = (s) => s.replace(/\\(['"\\])/g, '$1').trim();
  const docs = {};
  // A doc comment's text may not run past its own `*/` (the file header is a comment too).
  const classDoc = /\/\*\*\n\* ((?:(?!\*\/)[^])*?)\n\*\/\nexport declare class/.exec(text);
  if (classDoc) docs[''] = unescape(classDoc[1]);
  const required = [];
  const body = text.slice(text.indexOf('export declare class'));
  const field = /(?:\/\*\*\n\s*\* ((?:(?!\*\/)[^])*?)\n\s*\*\/\n)?\s*'([^']+)'(\?)?:/g;
  for (let m; (m = field.exec(body));) {
    if (m[1]) docs[m[2]] = unescape(m[1]);
    if (!m[3]) required.push(m[2]);
  }
  return { docs, required };
}

// Top-level kinds: the rows of src/api/kinds.ts (read by pattern, so the table stays the one source),
// their List kinds, and a few more.
const kindsSource = readFileSync(join(root, 'src/api/kinds.ts'), 'utf8');
const kindRows = [...kindsSource.matchAll(/k\('([^']*)', '([^']+)', '([^']+)', '[^']+', (?:true|false), '([^']+)'/g)]
  .map(([, group, version, kind, model]) => [model, group, version, kind]);
/** Model name → [{group, version, kind}]. */
const gvks = new Map();
for (const [model, group, version, kind] of [...kindRows, ...EXTRA_KINDS]) {
  const add = (m, k) => { if (models.has(m)) gvks.set(m, [...(gvks.get(m) ?? []), { group, version, kind: k }]); };
  add(model, kind);
  add(`${model}List`, `${kind}List`);
}

const schemas = {};
const descriptions = {};
// Code-point order, not localeCompare: the committed output must not depend on the locale.
for (const [name, attrs] of [...models].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
  const { docs, required } = readDeclarations(name);
  // .d.ts names differ from JSON names where those are not identifiers ($ref → ref, x-kubernetes-* →
  // x_kubernetes_*) or are reserved words (the classes use _default, .d.ts uses default).
  const jsonName = new Map(attrs.flatMap((a) => [[a.name, a.baseName], [a.name.replace(/^_/, ''), a.baseName],
    [a.baseName.replace(/^\$/, ''), a.baseName]]));
  const properties = {};
  for (const a of attrs) {
    let f = fieldSchema(a.type, a.format);
    if (QUANTITY_FIELDS.has(`${name}.${a.baseName}`)) f = markQuantity(f);
    properties[a.baseName] = f;
  }
  const t = { properties, required: required.map((r) => jsonName.get(r) ?? r) };
  if (gvks.has(name)) t.gvk = gvks.get(name);
  schemas[name] = t;
  const d = {};
  for (const [k, v] of Object.entries(docs)) d[k === '' ? '' : (jsonName.get(k) ?? k)] = v;
  descriptions[name] = d;
}

// OpenAPI definition names (io.k8s.api.apps.v1.Deployment). A model's package is not recorded by
// client-node; Kubernetes keeps types in the package of the kinds that use them, so each type takes
// the group of the first kind (in the kinds table's order, core first) that reaches it.
function packageOf(group) {
  if (group === '') return 'io.k8s.api.core';
  if (group === 'apiextensions.k8s.io') return 'io.k8s.apiextensions-apiserver.pkg.apis.apiextensions';
  if (group === 'apiregistration.k8s.io') return 'io.k8s.kube-aggregator.pkg.apis.apiregistration';
  if (group === 'rbac.authorization.k8s.io') return 'io.k8s.api.rbac';
  return `io.k8s.api.${group.split('.')[0]}`;
}
const MODEL_NAME = /^(?:[A-Z][a-z]+)?(V\d+(?:alpha\d+|beta\d+)?)([A-Z]\w*)$/;
const openApiNames = {};
const taken = new Set();
function claim(model, pkg) {
  const m = MODEL_NAME.exec(model);
  if (!m || openApiNames[model]) return false;
  const name = `${pkg}.${m[1].toLowerCase()}.${m[2]}`;
  if (taken.has(name)) return false;
  openApiNames[model] = name;
  taken.add(name);
  return true;
}
for (const t of META_TYPES) claim(`V1${t}`, 'io.k8s.apimachinery.pkg.apis.meta');
for (const [model, group] of [...kindRows, ...EXTRA_KINDS]) {
  const pkg = packageOf(group);
  const queue = [model, `${model}List`];
  while (queue.length) {
    const name = queue.shift();
    if (!schemas[name] || !claim(name, pkg)) continue;
    for (const f of Object.values(schemas[name].properties)) {
      const ref = f.ref ?? f.items?.ref ?? f.values?.ref;
      if (ref) queue.push(ref);
    }
  }
}

/**
 * JSON with one line per entry for the first `depth` levels of objects (one line per type), so that
 * the diff of a regenerated, committed file shows which types changed. Parses like compact JSON.
 */
function jsonLines(v, depth, indent = '') {
  if (depth === 0 || v === null || typeof v !== 'object' || Array.isArray(v)) return JSON.stringify(v);
  const inner = `${indent} `;
  const items = Object.entries(v).map(([k, x]) => `${inner}${JSON.stringify(k)}:${jsonLines(x, depth - 1, inner)}`);
  return `{\n${items.join(',\n')}\n${indent}}`;
}

const outputs = {
  'schemas.json': `${jsonLines(schemas, 1)}\n`,
  'schema-docs.json': `${jsonLines({ descriptions, openApiNames }, 2)}\n`,
};

if (process.argv.includes('--check')) {
  const stale = Object.entries(outputs).filter(([file, text]) => {
    try { return readFileSync(join(outDir, file), 'utf8') !== text; } catch { return true; }
  }).map(([file]) => `generated/${file}`);
  if (stale.length) {
    console.error(`gen-schemas: ${stale.join(', ')} not current (inputs: @kubernetes/client-node, src/api/kinds.ts, ` +
      'scripts/gen-schemas.mjs): run `npm run gen` and commit the result');
    process.exit(1);
  }
  console.log(`gen-schemas: generated/*.json current (${models.size} types, ${(performance.now() - started).toFixed(0)} ms)`);
} else {
  mkdirSync(outDir, { recursive: true });
  // Written aside and renamed, so a server or test reading the files never sees half of one.
  const writeAtomic = (file, text) => {
    const tmp = join(outDir, `.${file}.${process.pid}`);
    writeFileSync(tmp, text);
    renameSync(tmp, join(outDir, file));
  };
  for (const [file, text] of Object.entries(outputs)) writeAtomic(file, text);
  console.log(`gen-schemas: ${models.size} types, schemas.json ${(outputs['schemas.json'].length / 1024).toFixed(0)} KiB, ` +
    `${(performance.now() - started).toFixed(0)} ms`);
}
