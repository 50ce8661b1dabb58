// OpenAPI v3 (`GET /openapi/v3` and `/openapi/v3/<api/v1|apis/g/v>`), built from the schema model.
// kubectl reads it for two things: `kubectl explain` (components.schemas with
// x-kubernetes-group-version-kind) and validation: when a GV's PATCH operation for a kind accepts
// the `fieldValidation` query parameter, kubectl leaves validation to the server (`?fieldValidation=Strict`).
// Documents are large, so each is built on first request and cached with its serialized bytes.

import { createHash } from 'node:crypto';
import type { KindInfo } from '../api/kinds.js';
import type { FieldSchema, SchemaSet, TypeSchema } from '../api/schema-types.js';
import { loadSchemaDocs, type SchemaDocs } from '../api/schema.js';
import { ATOMIC_STRUCTS } from '../api/patch-metadata.js';
import type { OpenApiSchema } from './field-validation.js';
import { VERSION } from '../version.js';

/** A custom resource's structural schema for one served version, if the CRD gives one. */
export type CrdSchemaSource = (group: string, version: string, kind: string) => OpenApiSchema | undefined;

type Obj = Record<string, unknown>;

export interface OpenApiDocument {
  /** The document, serialized once. */
  json: string;
  hash: string;
}

const META = 'io.k8s.apimachinery.pkg.apis.meta.v1';
const PATCH_REF = `${META}.Patch`;
const DELETE_OPTIONS_REF = `${META}.DeleteOptions`;
const STATUS_REF = `${META}.Status`;
const OBJECT_META_REF = `${META}.ObjectMeta`;
const INT_OR_STRING_REF = 'io.k8s.apimachinery.pkg.util.intstr.IntOrString';
const QUANTITY_REF = 'io.k8s.apimachinery.pkg.api.resource.Quantity';

export class OpenApiV3 {
  private readonly cache = new Map<string, OpenApiDocument>();
  private docs?: SchemaDocs;

  constructor(
    private readonly kinds: () => KindInfo[],
    private readonly schemas: SchemaSet,
    private readonly crdSchemas?: CrdSchemaSource,
  ) {}

  /** `GET /openapi/v3`: every group-version with the URL (and content hash) of its document. */
  index(): { paths: Record<string, { serverRelativeURL: string }> } {
    const paths: Record<string, { serverRelativeURL: string }> = {};
    for (const gv of this.groupVersions()) {
      const doc = this.get(gv)!;
      paths[gv] = { serverRelativeURL: `/openapi/v3/${gv}?hash=${doc.hash}` };
    }
    return { paths };
  }

  /** The document for `api/v1` or `apis/<group>/<version>`, or undefined if nothing is served there. */
  get(gvPath: string): OpenApiDocument | undefined {
    let doc = this.cache.get(gvPath);
    if (doc) return doc;
    const kinds = this.kinds().filter((k) => gvPathOf(k) === gvPath);
    if (!kinds.length) return undefined;
    const json = JSON.stringify(this.build(kinds));
    doc = { json, hash: createHash('sha512').update(json).digest('hex').toUpperCase() };
    this.cache.set(gvPath, doc);
    return doc;
  }

  /** The document as an object (tests and callers that post-process it). */
  document(gvPath: string): Obj | undefined {
    const doc = this.get(gvPath);
    return doc && (JSON.parse(doc.json) as Obj);
  }

  /** Drops cached documents, e.g. when a CRD in `group` changes (all of them without a group). */
  invalidate(group?: string): void {
    if (group === undefined) { this.cache.clear(); return; }
    for (const key of this.cache.keys()) if (key.startsWith(`apis/${group}/`)) this.cache.delete(key);
  }

  private groupVersions(): string[] {
    return [...new Set(this.kinds().map(gvPathOf))];
  }

  private build(kinds: KindInfo[]): Obj {
    this.docs ??= loadSchemaDocs();
    const components: Record<string, Obj> = {};
    const paths: Record<string, Obj> = {};
    addMetaComponents(components);
    for (const k of kinds) {
      const refs = k.crd ? this.addCrdSchemas(k, components) : this.addBuiltinSchemas(k, components);
      if (!refs) continue;
      const scale = k.subresources?.includes('scale') ? this.addType('V1Scale', components) : undefined;
      addPaths(paths, k, { ...refs, scale }, !k.crd);
    }
    return {
      openapi: '3.0.0',
      info: { title: 'Kubernetes', version: VERSION.gitVersion },
      paths,
      components: {
        schemas: components,
        securitySchemes: { BearerToken: { type: 'apiKey', description: 'Bearer Token authentication', name: 'authorization', in: 'header' } },
      },
      security: [{ BearerToken: [] }],
    };
  }

  private addBuiltinSchemas(k: KindInfo, components: Record<string, Obj>): { item: string; list: string } | undefined {
    if (!this.schemas.type(k.modelType)) return undefined;
    const item = this.addType(k.modelType, components);
    const list = this.schemas.type(`${k.modelType}List`) ? this.addType(`${k.modelType}List`, components) : item;
    return { item, list };
  }

  /** A custom resource: its CRD schema with Kubernetes' typed apiVersion/kind/metadata, and its List. */
  private addCrdSchemas(k: KindInfo, components: Record<string, Obj>): { item: string; list: string } {
    const base = `${k.group.split('.').reverse().join('.')}.${k.version}`;
    const item = `${base}.${k.kind}`;
    const list = `${base}.${k.kind}List`;
    const gvk = { group: k.group, version: k.version, kind: k.kind };
    const schema = structuredClone(this.crdSchemas?.(k.group, k.version, k.kind) ?? { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }) as Obj;
    const props = { ...(schema.properties as Obj | undefined) };
    props.apiVersion = { type: 'string', description: this.fieldDoc('V1Deployment', 'apiVersion') };
    props.kind = { type: 'string', description: this.fieldDoc('V1Deployment', 'kind') };
    props.metadata = { allOf: [{ $ref: ref(OBJECT_META_REF) }], description: this.fieldDoc('V1Deployment', 'metadata') };
    components[item] = { ...schema, type: 'object', properties: props, 'x-kubernetes-group-version-kind': [gvk] };
    components[list] = {
      type: 'object', required: ['items'],
      description: `${k.kind}List is a list of ${k.kind}`,
      properties: {
        apiVersion: { type: 'string' }, kind: { type: 'string' },
        items: { type: 'array', items: { $ref: ref(item) } },
        metadata: { allOf: [{ $ref: ref(`${META}.ListMeta`) }] },
      },
      'x-kubernetes-group-version-kind': [{ ...gvk, kind: `${k.kind}List` }],
    };
    this.addType('V1ObjectMeta', components);
    this.addType('V1ListMeta', components);
    return { item, list };
  }

  /** Adds a type and everything it references; returns its component name. */
  private addType(model: string, components: Record<string, Obj>): string {
    const name = this.componentName(model);
    if (components[name]) return name;
    const t = this.schemas.type(model);
    if (!t) return name;
    components[name] = {}; // reserve first: types may reference themselves (JSONSchemaProps)
    components[name] = this.typeSchema(t, components);
    return name;
  }

  private typeSchema(t: TypeSchema, components: Record<string, Obj>): Obj {
    const properties: Obj = {};
    for (const [field, f] of Object.entries(t.properties)) {
      const s = this.fieldSchema(f, components);
      const description = this.fieldDoc(t.name, field);
      // A $ref cannot carry siblings in OpenAPI 3.0, hence Kubernetes' allOf wrapper.
      properties[field] = description ? ('$ref' in s ? { allOf: [s], description } : { ...s, description }) : s;
    }
    const out: Obj = { type: 'object', properties };
    const description = this.docs!.descriptions[t.name]?.[''];
    if (description) out.description = description;
    if (t.required.length) out.required = t.required;
    if (t.gvk) out['x-kubernetes-group-version-kind'] = t.gvk;
    if (ATOMIC_STRUCTS.has(t.name)) out['x-kubernetes-map-type'] = 'atomic';
    return out;
  }

  private fieldSchema(f: FieldSchema, components: Record<string, Obj>): Obj {
    let s: Obj;
    switch (f.kind) {
      case 'string': s = f.format ? { type: 'string', format: f.format } : { type: 'string' }; break;
      case 'integer': s = { type: 'integer', format: f.format ?? 'int64' }; break;
      case 'number': s = { type: 'number', format: f.format ?? 'double' }; break;
      case 'boolean': s = { type: 'boolean' }; break;
      case 'date-time': s = { type: 'string', format: 'date-time' }; break;
      case 'int-or-string': s = { $ref: ref(INT_OR_STRING_REF) }; break;
      case 'quantity': s = { $ref: ref(QUANTITY_REF) }; break;
      case 'any': s = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }; break;
      case 'object': s = { $ref: ref(this.addType(f.ref!, components)) }; break;
      case 'array': s = { type: 'array', items: this.fieldSchema(f.items!, components) }; break;
      case 'map': s = { type: 'object', additionalProperties: this.fieldSchema(f.values!, components) }; break;
    }
    const ext: Obj = {};
    if (f.patchStrategy) ext['x-kubernetes-patch-strategy'] = f.patchStrategy;
    if (f.patchMergeKey) ext['x-kubernetes-patch-merge-key'] = f.patchMergeKey;
    if (f.listType) ext['x-kubernetes-list-type'] = f.listType;
    if (f.listMapKeys) ext['x-kubernetes-list-map-keys'] = f.listMapKeys;
    if (f.mapType && f.kind === 'map') ext['x-kubernetes-map-type'] = f.mapType;
    if (!Object.keys(ext).length) return s;
    return '$ref' in s ? { allOf: [s], ...ext } : { ...s, ...ext };
  }

  private componentName(model: string): string {
    return this.docs!.openApiNames[model] ?? model;
  }

  private fieldDoc(type: string, field: string): string | undefined {
    return this.docs!.descriptions[type]?.[field];
  }
}

function ref(name: string): string {
  return `#/components/schemas/${name}`;
}

function gvPathOf(k: Pick<KindInfo, 'group' | 'version'>): string {
  return k.group ? `apis/${k.group}/${k.version}` : `api/${k.version}`;
}

/** Types every document references from its operations (request and response bodies). */
function addMetaComponents(components: Record<string, Obj>): void {
  components[PATCH_REF] = { type: 'object', description: 'Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.' };
  components[INT_OR_STRING_REF] = { type: 'string', format: 'int-or-string', description: 'IntOrString is a type that can hold an int32 or a string.' };
  components[QUANTITY_REF] = { type: 'string', description: 'Quantity is a fixed-point representation of a number, e.g. 100m, 1Gi, 2.' };
  components[DELETE_OPTIONS_REF] = {
    type: 'object', description: 'DeleteOptions may be provided when deleting an API object.',
    properties: {
      apiVersion: { type: 'string' }, kind: { type: 'string' },
      dryRun: { type: 'array', items: { type: 'string' } },
      gracePeriodSeconds: { type: 'integer', format: 'int64' },
      orphanDependents: { type: 'boolean' },
      preconditions: { type: 'object', properties: { resourceVersion: { type: 'string' }, uid: { type: 'string' } } },
      propagationPolicy: { type: 'string' },
    },
  };
  components[STATUS_REF] = {
    type: 'object', description: 'Status is a return value for calls that don\'t return other objects.',
    properties: {
      apiVersion: { type: 'string' }, kind: { type: 'string' }, code: { type: 'integer', format: 'int32' },
      details: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }, message: { type: 'string' },
      metadata: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }, reason: { type: 'string' }, status: { type: 'string' },
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Paths and operations

const JSON_TYPES = ['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf'];

function queryParam(name: string, description: string, type = 'string'): Obj {
  return { name, in: 'query', description, schema: { type, uniqueItems: true } };
}

const P = {
  pretty: queryParam('pretty', "If 'true', then the output is pretty printed."),
  dryRun: queryParam('dryRun', 'When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed'),
  fieldManager: queryParam('fieldManager', 'fieldManager is a name associated with the actor or entity that is making these changes.'),
  fieldValidation: queryParam('fieldValidation', 'fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn (the default), Strict.'),
  force: queryParam('force', 'Force is going to "force" Apply requests. It means user will re-acquire conflicting fields owned by other people.', 'boolean'),
  gracePeriodSeconds: queryParam('gracePeriodSeconds', 'The duration in seconds before the object should be deleted.', 'integer'),
  propagationPolicy: queryParam('propagationPolicy', "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'."),
  list: [
    queryParam('allowWatchBookmarks', 'allowWatchBookmarks requests watch events with type "BOOKMARK".', 'boolean'),
    queryParam('continue', 'The continue option should be set when retrieving more results from the server.'),
    queryParam('fieldSelector', 'A selector to restrict the list of returned objects by their fields. Defaults to everything.'),
    queryParam('labelSelector', 'A selector to restrict the list of returned objects by their labels. Defaults to everything.'),
    queryParam('limit', 'limit is a maximum number of responses to return for a list call.', 'integer'),
    queryParam('resourceVersion', 'resourceVersion sets a constraint on what resource versions a request may be served from.'),
    queryParam('resourceVersionMatch', 'resourceVersionMatch determines how resourceVersion is applied to list calls.'),
    queryParam('sendInitialEvents', 'sendInitialEvents=true may be set together with watch=true.', 'boolean'),
    queryParam('timeoutSeconds', 'Timeout for the list/watch call.', 'integer'),
    queryParam('watch', 'Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.', 'boolean'),
  ],
};

function pathParam(name: string, description: string): Obj {
  return { name, in: 'path', description, required: true, schema: { type: 'string', uniqueItems: true } };
}

function body(schemaRef: string, types: string[] = ['*/*']): Obj {
  return { content: Object.fromEntries(types.map((t) => [t, { schema: { $ref: ref(schemaRef) } }])), required: true };
}

function responses(schemaRef: string, codes: string[]): Obj {
  const content = Object.fromEntries(JSON_TYPES.map((t) => [t, { schema: { $ref: ref(schemaRef) } }]));
  const out: Obj = {};
  for (const c of codes) out[c] = { description: c === '201' ? 'Created' : c === '202' ? 'Accepted' : 'OK', content };
  out['401'] = { description: 'Unauthorized' };
  return out;
}

/** `rbac.authorization.k8s.io` → `RbacAuthorization`, '' → `Core`, as Kubernetes names operations. */
function groupTag(group: string): string {
  if (!group) return 'Core';
  return group.replace(/\.k8s\.io$/, '').split('.').map((p) => p[0].toUpperCase() + p.slice(1)).join('');
}

/** The component names an API resource's operations refer to. */
interface ResourceRefs {
  item: string;
  list: string;
  /** autoscaling/v1 Scale, when the resource has a scale subresource. */
  scale?: string;
}

function addPaths(paths: Record<string, Obj>, k: KindInfo, refs: ResourceRefs, strategicMerge: boolean): void {
  const { item: itemRef, list: listRef } = refs;
  const prefix = k.group ? `/apis/${k.group}/${k.version}` : `/api/${k.version}`;
  const ns = k.namespaced ? 'Namespaced' : '';
  const idBase = `${groupTag(k.group)}${k.version[0].toUpperCase()}${k.version.slice(1)}`;
  const tag = `${k.group ? groupTag(k.group).toLowerCase() : 'core'}_${k.version}`;
  const gvk = { group: k.group, version: k.version, kind: k.kind };
  const collection = k.namespaced ? `${prefix}/namespaces/{namespace}/${k.plural}` : `${prefix}/${k.plural}`;
  const scope = k.namespaced ? [pathParam('namespace', 'object name and auth scope, such as for teams and projects')] : [];
  const nameParam = pathParam('name', `name of the ${k.kind}`);
  const verbs = new Set(k.verbs);
  const op = (verb: string, action: string, description: string, extra: Obj, opGvk: Obj = gvk): Obj => ({
    tags: [tag], description, operationId: `${verb}${idBase}${extra.idSuffix ?? `${ns}${k.kind}`}`,
    'x-kubernetes-action': action, 'x-kubernetes-group-version-kind': opGvk,
    ...Object.fromEntries(Object.entries(extra).filter(([key]) => key !== 'idSuffix')),
  });
  const patchTypes = ['application/apply-patch+yaml', 'application/json-patch+json', 'application/merge-patch+json',
    ...(strategicMerge ? ['application/strategic-merge-patch+json'] : [])];

  const coll: Obj = { parameters: [...scope, P.pretty] };
  if (verbs.has('list')) {
    coll.get = op('list', 'list', `list or watch objects of kind ${k.kind}`, { parameters: P.list, responses: responses(listRef, ['200']) });
  }
  if (verbs.has('create')) {
    coll.post = op('create', 'post', `create a ${k.kind}`, {
      parameters: [P.dryRun, P.fieldManager, P.fieldValidation], requestBody: body(itemRef), responses: responses(itemRef, ['200', '201', '202']),
    });
  }
  if (verbs.has('deletecollection')) {
    coll.delete = op('delete', 'deletecollection', `delete collection of ${k.kind}`, {
      idSuffix: `Collection${ns}${k.kind}`, parameters: [P.dryRun, P.gracePeriodSeconds, P.propagationPolicy, ...P.list],
      requestBody: body(DELETE_OPTIONS_REF), responses: responses(STATUS_REF, ['200']),
    });
  }
  if (Object.keys(coll).length > 1) paths[collection] = coll;

  if (k.namespaced && verbs.has('list')) {
    paths[`${prefix}/${k.plural}`] = {
      parameters: [P.pretty],
      get: op('list', 'list', `list or watch objects of kind ${k.kind}`, {
        idSuffix: `${k.kind}ForAllNamespaces`, parameters: P.list, responses: responses(listRef, ['200']),
      }),
    };
  }

  const itemOps = (path: string, schemaRef: string, what: string, idSuffix: string, withDelete: boolean, opGvk: Obj = gvk) => {
    const item: Obj = { parameters: [nameParam, ...scope, P.pretty] };
    if (verbs.has('get')) {
      item.get = op('read', 'get', `read ${what} of the specified ${k.kind}`, { idSuffix, responses: responses(schemaRef, ['200']) }, opGvk);
    }
    if (verbs.has('update')) {
      item.put = op('replace', 'put', `replace ${what} of the specified ${k.kind}`, {
        idSuffix, parameters: [P.dryRun, P.fieldManager, P.fieldValidation], requestBody: body(schemaRef), responses: responses(schemaRef, ['200', '201']),
      }, opGvk);
    }
    if (verbs.has('patch')) {
      item.patch = op('patch', 'patch', `partially update ${what} of the specified ${k.kind}`, {
        idSuffix, parameters: [P.dryRun, P.fieldManager, P.fieldValidation, P.force],
        requestBody: body(PATCH_REF, patchTypes), responses: responses(schemaRef, ['200', '201']),
      }, opGvk);
    }
    if (withDelete && verbs.has('delete')) {
      item.delete = op('delete', 'delete', `delete a ${k.kind}`, {
        idSuffix, parameters: [P.dryRun, P.gracePeriodSeconds, P.propagationPolicy],
        requestBody: { content: { '*/*': { schema: { $ref: ref(DELETE_OPTIONS_REF) } } } }, responses: responses(STATUS_REF, ['200', '202']),
      });
    }
    if (Object.keys(item).length > 1) paths[path] = item;
  };
  itemOps(`${collection}/{name}`, itemRef, k.kind, `${ns}${k.kind}`, true);
  if (k.subresources?.includes('status')) itemOps(`${collection}/{name}/status`, itemRef, 'status', `${ns}${k.kind}Status`, false);
  if (refs.scale) {
    itemOps(`${collection}/{name}/scale`, refs.scale, 'scale', `${ns}${k.kind}Scale`, false,
      { group: 'autoscaling', version: 'v1', kind: 'Scale' });
  }
}
