// Loads the API schema model that scripts/gen-schemas.mjs writes to `generated/` (committed), and
// folds Kubernetes' patch metadata (merge keys, list types) into it. Loaded lazily and once: the
// file is read only by the first request that needs a schema, not at every import.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SchemaSet, TypeSchema } from './schema-types.js';
import { ATOMIC_STRUCTS, PATCH_METADATA } from './patch-metadata.js';

/** On disk: type name → schema (without name, which is the key). */
export type SchemaFile = Record<string, Omit<TypeSchema, 'name'>>;

export interface SchemaDocs {
  /** Type name → { '': the type's description, <json field>: the field's description }. */
  descriptions: Record<string, Record<string, string>>;
  /** Type name → Kubernetes' OpenAPI definition name (io.k8s.api.apps.v1.Deployment), where known. */
  openApiNames: Record<string, string>;
}

// Both src/api/ (tsx) and dist/api/ (compiled) sit two levels below the repository root.
const GENERATED_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'generated');

let schemaSet: SchemaSet | undefined;
let schemaDocs: SchemaDocs | undefined;

export function loadSchemaSet(): SchemaSet {
  schemaSet ??= buildSchemaSet(JSON.parse(readFileSync(join(GENERATED_DIR, 'schemas.json'), 'utf8')) as SchemaFile);
  return schemaSet;
}

/** Descriptions, kept apart from the schemas because only OpenAPI documents need them. */
export function loadSchemaDocs(): SchemaDocs {
  schemaDocs ??= JSON.parse(readFileSync(join(GENERATED_DIR, 'schema-docs.json'), 'utf8')) as SchemaDocs;
  return schemaDocs;
}

/** Builds a SchemaSet from raw type schemas (exported for tests and for sets assembled at run time). */
export function buildSchemaSet(file: SchemaFile): SchemaSet {
  const types = new Map<string, TypeSchema>();
  const byGvk = new Map<string, TypeSchema>();
  for (const [name, raw] of Object.entries(file)) {
    const t: TypeSchema = { name, ...raw, required: raw.required ?? [] };
    types.set(name, t);
    for (const g of t.gvk ?? []) byGvk.set(gvkKey(g.group, g.version, g.kind), t);
  }
  for (const [key, meta] of Object.entries(PATCH_METADATA)) {
    const dot = key.indexOf('.');
    const field = types.get(key.slice(0, dot))?.properties[key.slice(dot + 1)];
    if (field) Object.assign(field, meta);
  }
  for (const t of types.values()) {
    for (const f of Object.values(t.properties)) {
      if (f.ref && ATOMIC_STRUCTS.has(f.ref)) f.mapType ??= 'atomic';
      if (f.items?.ref && ATOMIC_STRUCTS.has(f.items.ref)) f.items.mapType ??= 'atomic';
    }
  }
  return {
    type: (name) => types.get(name),
    forKind: (group, version, kind) => byGvk.get(gvkKey(group, version, kind)),
    allTypes: () => types.values(),
  };
}

function gvkKey(group: string, version: string, kind: string): string {
  return `${group}/${version}/${kind}`;
}
