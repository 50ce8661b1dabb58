// OpenAPI v2 (`GET /openapi/v2`): one Swagger 2.0 document for every served kind, as JSON or as
// gnostic's protobuf `openapi.v2.Document`. kubectl before 1.30 downloads it (protobuf only) for
// every `create -f` / `apply -f` (client-side validation), for `explain`, and for the strategic
// merge metadata of `apply`; without it those commands fail. Newer clients read OpenAPI v3.
//
// The document is derived from the v3 documents rather than from the schema model, so names,
// descriptions, patch extensions and CRD schemas are the same in both, and a change that
// invalidates v3 (a CRD) is seen here too: the cache key is the set of v3 document hashes.
// What v2 cannot say is reduced the way kube-apiserver reduces CRD schemas for v2, so that
// kubectl's schema parser (k8s.io/kube-openapi/pkg/util/proto) accepts every definition.

import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { stringify as toYaml } from 'yaml';
import type { OpenApiV3 } from './openapi.js';
import { openApiV2DocumentType } from './openapi-v2-proto.js';
import { errors } from '../api/status.js';
import { VERSION } from '../version.js';
import { logger } from '../util/log.js';

const log = logger('openapi');

type Obj = Record<string, any>;

/**
 * The media type kubectl asks for. It is not a valid Content-Type ('@' is not a token character; Go's
 * mime parser rejects it), so the reply is labelled with the dotted spelling, as Kubernetes does.
 */
export const OPENAPI_V2_PROTOBUF_ACCEPT = 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf';
export const OPENAPI_V2_PROTOBUF = 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf';

const V3_REF = '#/components/schemas/';
const V2_REF = '#/definitions/';

interface Built {
  /** The v3 document hashes this was built from. */
  key: string;
  doc: Obj;
  json: string;
  /** The JSON as sent, so a request does not re-encode a megabyte string. */
  jsonBytes: Buffer;
  etag: string;
  protobuf?: { bytes: Buffer; etag: string };
}

/** Size and build time of the cached document (logged at debug level when built). */
export interface OpenApiV2Stats {
  definitions: number;
  paths: number;
  jsonBytes: number;
  protobufBytes?: number;
  buildMs: number;
  protobufMs?: number;
}

export class OpenApiV2 {
  private built?: Built;
  private lastStats?: OpenApiV2Stats;

  constructor(private readonly v3: OpenApiV3) {}

  /** The Swagger 2.0 document as an object (do not mutate: it is the cached one). */
  document(): Obj {
    return this.current().doc;
  }

  json(): string {
    return this.current().json;
  }

  jsonBytes(): Buffer {
    return this.current().jsonBytes;
  }

  /** The document as gnostic's `openapi.v2.Document`, encoded once per document. */
  protobuf(): Buffer {
    return this.encoded().bytes;
  }

  /** A strong ETag (quoted) of the JSON form; `protobufEtag()` is the protobuf form's. */
  etag(): string {
    return this.current().etag;
  }

  protobufEtag(): string {
    return this.encoded().etag;
  }

  /** Forgets the cached document; the next request rebuilds it. */
  invalidate(): void {
    this.built = undefined;
  }

  stats(): OpenApiV2Stats | undefined {
    return this.lastStats;
  }

  private encoded(): { bytes: Buffer; etag: string } {
    const b = this.current();
    if (!b.protobuf) {
      const started = performance.now();
      const bytes = Buffer.from(openApiV2DocumentType().encode(documentMessage(b.doc)).finish());
      b.protobuf = { bytes, etag: quotedHash(bytes) };
      this.lastStats = { ...this.lastStats!, protobufBytes: bytes.length, protobufMs: Math.round(performance.now() - started) };
      log.debug(this.lastStats, 'encoded OpenAPI v2 document');
    }
    return b.protobuf;
  }

  private current(): Built {
    const index = this.v3.index().paths;
    const key = Object.values(index).map((p) => p.serverRelativeURL).join('\n');
    if (this.built?.key === key) return this.built;
    const started = performance.now();
    const doc = this.build(Object.keys(index));
    const json = JSON.stringify(doc);
    this.built = { key, doc, json, jsonBytes: Buffer.from(json), etag: quotedHash(json) };
    this.lastStats = {
      definitions: Object.keys(doc.definitions).length, paths: Object.keys(doc.paths).length,
      jsonBytes: this.built.jsonBytes.length, buildMs: Math.round(performance.now() - started),
    };
    log.debug(this.lastStats, 'built OpenAPI v2 document');
    return this.built;
  }

  private build(groupVersions: string[]): Obj {
    const definitions: Obj = {};
    const paths: Obj = {};
    for (const gv of groupVersions) {
      const v3 = this.v3.document(gv) as Obj | undefined;
      if (!v3) continue;
      // Shared types (ObjectMeta, ...) come out of the same builder in every group-version.
      for (const [name, schema] of Object.entries(v3.components.schemas as Obj)) definitions[name] ??= v2Schema(schema);
      for (const [path, item] of Object.entries(v3.paths as Obj)) paths[path] = v2PathItem(item);
    }
    dropDanglingRefs(definitions, paths);
    return {
      swagger: '2.0',
      info: { title: 'Kubernetes', version: VERSION.gitVersion },
      paths: sortKeys(paths),
      definitions: sortKeys(definitions),
      securityDefinitions: { BearerToken: { description: 'Bearer Token authentication', type: 'apiKey', name: 'authorization', in: 'header' } },
      security: [{ BearerToken: [] }],
    };
  }
}

/** Answers `GET /openapi/v2`: protobuf when asked for, else JSON; 304 for a matching If-None-Match. */
export function serveOpenApiV2(v2: OpenApiV2, req: IncomingMessage, res: ServerResponse): void {
  const type = negotiateV2(req.headers.accept);
  const etag = type === OPENAPI_V2_PROTOBUF ? v2.protobufEtag() : v2.etag();
  const headers = { ETag: etag, Vary: 'Accept', 'Cache-Control': 'no-cache, private' };
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  const body = type === 'application/json' ? v2.jsonBytes() : v2.protobuf();
  res.writeHead(200, { ...headers, 'Content-Type': type, 'Content-Length': body.length });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function negotiateV2(accept: string | undefined): string {
  if (!accept) return 'application/json';
  for (const part of accept.split(',')) {
    const type = part.split(';')[0].trim().toLowerCase();
    if (type === OPENAPI_V2_PROTOBUF_ACCEPT || type === OPENAPI_V2_PROTOBUF) return OPENAPI_V2_PROTOBUF;
    if (type === 'application/json' || type === 'application/*' || type === '*/*') return 'application/json';
  }
  throw errors.notAcceptable(accept);
}

// ---------------------------------------------------------------------------------------------------
// v3 → v2, as JSON

/**
 * A v3 schema in v2 terms. Beyond renaming refs: a lone `allOf: [{$ref}]` (v3's way to put a
 * description or extensions next to a ref) becomes the ref itself; the other junctors do not exist
 * in v2 and are dropped; and, like kube-apiserver does for CRDs, nullable and
 * preserve-unknown-fields values lose their type, properties and items, because kubectl's
 * validation would otherwise reject null values and unknown fields that the server accepts.
 */
function v2Schema(v3: Obj): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(v3)) {
    switch (k) {
      case 'allOf':
        if (v.length === 1 && typeof v[0].$ref === 'string') Object.assign(out, v2Schema(v[0]));
        break;
      case 'oneOf': case 'anyOf': case 'not': case 'nullable': case 'writeOnly': case 'deprecated': case 'xml': case 'externalDocs':
        break;
      case '$ref': out.$ref = v.startsWith(V3_REF) ? V2_REF + v.slice(V3_REF.length) : v; break;
      case 'properties': out.properties = Object.fromEntries(Object.entries(v as Obj).map(([p, s]) => [p, v2Schema(s)])); break;
      case 'items': out.items = Array.isArray(v) ? v.map(v2Schema) : v2Schema(v); break;
      case 'additionalProperties': out.additionalProperties = typeof v === 'boolean' ? v : v2Schema(v); break;
      default: out[k] = v;
    }
  }
  if (v3.nullable === true) {
    delete out.type; delete out.items; delete out.properties;
  }
  if (out['x-kubernetes-preserve-unknown-fields'] === true) {
    delete out.items; delete out.properties;
    if (out.type === 'object') delete out.type;
  }
  // kubectl cannot parse an array without an item schema.
  if (out.type === 'array' && out.items === undefined) delete out.type;
  if (out.properties && Array.isArray(out.required)) {
    const nullable = new Set(Object.entries(v3.properties as Obj).filter(([, s]) => s?.nullable === true).map(([p]) => p));
    if (nullable.size) out.required = out.required.filter((r: string) => !nullable.has(r));
    if (!out.required.length) delete out.required;
  }
  return out;
}

const OPERATIONS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch'] as const;

function v2PathItem(item: Obj): Obj {
  const out: Obj = {};
  for (const verb of OPERATIONS) if (item[verb]) out[verb] = v2Operation(item[verb]);
  if (item.parameters) out.parameters = item.parameters.map(v2Parameter);
  return out;
}

/** v3's requestBody becomes a `body` parameter; response content types become `produces`. */
function v2Operation(op: Obj): Obj {
  const out: Obj = { description: op.description };
  const content = op.requestBody?.content as Obj | undefined;
  if (content) out.consumes = Object.keys(content);
  const produces = new Set<string>();
  for (const r of Object.values((op.responses ?? {}) as Obj)) for (const t of Object.keys(r.content ?? {})) produces.add(t);
  if (produces.size) out.produces = [...produces];
  out.schemes = ['https'];
  out.tags = op.tags;
  out.operationId = op.operationId;
  const parameters = (op.parameters ?? []).map(v2Parameter);
  if (content) {
    const schema = Object.values(content)[0]?.schema;
    parameters.unshift({ name: 'body', in: 'body', required: op.requestBody.required === true, schema: schema ? v2Schema(schema) : {} });
  }
  if (parameters.length) out.parameters = parameters;
  out.responses = Object.fromEntries(Object.entries((op.responses ?? {}) as Obj).map(([code, r]) => {
    const schema = Object.values((r.content ?? {}) as Obj)[0]?.schema;
    return [code, schema ? { description: r.description, schema: v2Schema(schema) } : { description: r.description }];
  }));
  for (const [k, v] of Object.entries(op)) if (k.startsWith('x-')) out[k] = v;
  return out;
}

/** Query and path parameters carry their type inline in v2 instead of in a schema. */
function v2Parameter(p: Obj): Obj {
  const out: Obj = { name: p.name, in: p.in };
  if (p.description) out.description = p.description;
  if (p.required) out.required = true;
  if (p.schema?.type) out.type = p.schema.type;
  if (p.schema?.format) out.format = p.schema.format;
  if (p.schema?.uniqueItems) out.uniqueItems = true;
  return out;
}

/**
 * kubectl refuses the whole document if one `$ref` names a missing definition, so a ref the
 * builder could not resolve is turned into an arbitrary value rather than risking every command.
 */
function dropDanglingRefs(definitions: Obj, paths: Obj): void {
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) { node.forEach(visit); return; }
    if (!node || typeof node !== 'object') return;
    const o = node as Obj;
    if (typeof o.$ref === 'string' && !(o.$ref.startsWith(V2_REF) && o.$ref.slice(V2_REF.length) in definitions)) delete o.$ref;
    for (const v of Object.values(o)) visit(v);
  };
  visit(definitions);
  visit(paths);
}

function quotedHash(data: string | Buffer): string {
  return `"${createHash('sha256').update(data).digest('hex').toUpperCase()}"`;
}

function sortKeys(o: Obj): Obj {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

// ---------------------------------------------------------------------------------------------------
// v2 JSON → the `openapi.v2.Document` message (plain objects in protobufjs' keepCase shape)

function documentMessage(doc: Obj): Obj {
  return {
    swagger: doc.swagger,
    info: { title: doc.info.title, version: doc.info.version },
    paths: { path: Object.entries(doc.paths as Obj).map(([name, item]) => ({ name, value: pathItemMessage(item) })) },
    definitions: { additional_properties: named(doc.definitions, schemaMessage) },
    security: (doc.security as Obj[]).map((req) => ({
      additional_properties: Object.entries(req).map(([name, scopes]) => ({ name, value: { value: scopes } })),
    })),
    security_definitions: {
      additional_properties: Object.entries(doc.securityDefinitions as Obj).map(([name, s]) => ({
        name, value: { api_key_security: { type: s.type, name: s.name, in: s.in, description: s.description } },
      })),
    },
  };
}

function pathItemMessage(item: Obj): Obj {
  const out: Obj = {};
  for (const verb of OPERATIONS) if (item[verb]) out[verb] = operationMessage(item[verb]);
  if (item.parameters) out.parameters = item.parameters.map(parameterMessage);
  return out;
}

function operationMessage(op: Obj): Obj {
  return {
    tags: op.tags ?? [], description: op.description ?? '', operation_id: op.operationId ?? '',
    consumes: op.consumes ?? [], produces: op.produces ?? [], schemes: op.schemes ?? [],
    parameters: (op.parameters ?? []).map(parameterMessage),
    responses: {
      response_code: Object.entries(op.responses as Obj).map(([name, r]) => ({
        name, value: { response: { description: r.description ?? '', ...(r.schema ? { schema: { schema: schemaMessage(r.schema) } } : {}) } },
      })),
    },
    vendor_extension: extensions(op),
  };
}

function parameterMessage(p: Obj): Obj {
  if (p.in === 'body') {
    return { parameter: { body_parameter: { name: p.name, in: p.in, required: p.required === true, description: p.description ?? '', schema: schemaMessage(p.schema) } } };
  }
  const sub = {
    name: p.name, in: p.in, description: p.description ?? '', required: p.required === true,
    type: p.type ?? '', format: p.format ?? '', unique_items: p.uniqueItems === true,
  };
  const which = p.in === 'path' ? 'path_parameter_sub_schema' : 'query_parameter_sub_schema';
  return { parameter: { non_body_parameter: { [which]: sub } } };
}

/** JSON Schema keyword → gnostic field, for the keywords that map one to one. */
const SCALAR_FIELDS: Record<string, string> = {
  $ref: '_ref', format: 'format', title: 'title', description: 'description', multipleOf: 'multiple_of',
  maximum: 'maximum', exclusiveMaximum: 'exclusive_maximum', minimum: 'minimum', exclusiveMinimum: 'exclusive_minimum',
  maxLength: 'max_length', minLength: 'min_length', pattern: 'pattern', maxItems: 'max_items', minItems: 'min_items',
  uniqueItems: 'unique_items', maxProperties: 'max_properties', minProperties: 'min_properties', required: 'required',
  discriminator: 'discriminator', readOnly: 'read_only',
};

function schemaMessage(s: Obj): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(s)) {
    const field = SCALAR_FIELDS[k];
    if (field) { out[field] = v; continue; }
    switch (k) {
      case 'type': out.type = { value: Array.isArray(v) ? v : [v] }; break;
      case 'items': out.items = { schema: (Array.isArray(v) ? v : [v]).map(schemaMessage) }; break;
      case 'properties': out.properties = { additional_properties: named(v, schemaMessage) }; break;
      case 'additionalProperties': out.additional_properties = typeof v === 'boolean' ? { boolean: v } : { schema: schemaMessage(v) }; break;
      case 'allOf': out.all_of = v.map(schemaMessage); break;
      case 'default': out.default = anyMessage(v); break;
      case 'example': out.example = anyMessage(v); break;
      case 'enum': out.enum = (v as unknown[]).map(anyMessage); break;
    }
  }
  const ext = extensions(s);
  if (ext.length) out.vendor_extension = ext;
  return out;
}

function named(o: Obj, convert: (v: any) => Obj): Obj[] {
  return Object.entries(o).map(([name, value]) => ({ name, value: convert(value) }));
}

/** `x-` keys as gnostic's NamedAny, the value written as YAML as Kubernetes does. */
function extensions(o: Obj): Obj[] {
  return Object.entries(o).filter(([k]) => k.startsWith('x-')).map(([name, v]) => ({ name, value: anyMessage(v) }));
}

function anyMessage(v: unknown): Obj {
  return { yaml: toYaml(v) };
}
