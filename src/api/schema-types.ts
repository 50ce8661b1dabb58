// The structural schema of API types, derived (`npm run gen`) from @kubernetes/client-node's generated
// models (their attributeTypeMap and doc comments) by scripts/gen-schemas.mjs, plus Kubernetes'
// patch metadata (merge keys, list types). One model feeds: OpenAPI v3 (kubectl explain and
// validation), strict field validation, strategic merge patch and server-side apply.

export type FieldKind =
  | 'string' | 'integer' | 'number' | 'boolean'
  | 'object'        // a named type: see `ref`
  | 'array'         // see `items`
  | 'map'           // string-keyed map: see `values`
  | 'int-or-string' | 'quantity' | 'date-time' | 'any';

export interface FieldSchema {
  kind: FieldKind;
  ref?: string;             // for 'object': the type name (e.g. 'V1PodSpec')
  items?: FieldSchema;      // for 'array'
  values?: FieldSchema;     // for 'map'
  format?: string;          // 'int32', 'int64', 'byte', 'double', ...
  description?: string;
  /** Strategic merge patch: x-kubernetes-patch-strategy ('merge', 'retainKeys', 'merge,retainKeys'). */
  patchStrategy?: string;
  /** Strategic merge patch: x-kubernetes-patch-merge-key. */
  patchMergeKey?: string;
  /** Server-side apply: x-kubernetes-list-type ('atomic' | 'set' | 'map') and list-map-keys. */
  listType?: 'atomic' | 'set' | 'map';
  listMapKeys?: string[];
  /** 'atomic' for maps/structs replaced whole by apply. */
  mapType?: 'atomic' | 'granular';
}

export interface TypeSchema {
  name: string;             // client-node class name, e.g. 'V1Deployment'
  description?: string;
  properties: Record<string, FieldSchema>;
  required: string[];
  /** Set on top-level kinds. */
  gvk?: { group: string; version: string; kind: string }[];
}

export interface SchemaSet {
  type(name: string): TypeSchema | undefined;
  /** Type name of a kind's top-level object. */
  forKind(group: string, version: string, kind: string): TypeSchema | undefined;
  allTypes(): Iterable<TypeSchema>;
}
