// Request bodies: JSON, YAML or Kubernetes protobuf in; a plain object out, or a 4xx Status.
import { parseAllDocuments, isMap, visit } from 'yaml';
import { errors } from '../api/status.js';
import { decodeProtobuf } from './protobuf/decode.js';
import { isPlainObject } from '../api/object.js';
import { MAX_NESTING_DEPTH, MAX_YAML_BYTES, MAX_YAML_FLOW_DEPTH, tooDeep, valueDepth, yamlDepth } from './decode-limits.js';
import { jsonDepth } from '../util/json-text.js';

export const PATCH_TYPES = {
  'application/json-patch+json': 'json',
  'application/merge-patch+json': 'merge',
  'application/strategic-merge-patch+json': 'strategic',
  'application/apply-patch+yaml': 'apply',
  'application/apply-patch+cbor': 'apply-cbor',
} as const;
export type PatchType = 'json' | 'merge' | 'strategic' | 'apply';

export function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0].trim().toLowerCase();
}

/** Decodes an object body (POST/PUT, DeleteOptions, reviews). */
export function decodeObject(body: Buffer, contentType: string | undefined): Record<string, any> {
  const type = mediaType(contentType) || 'application/json';
  let value: unknown;
  switch (type) {
    case 'application/json':
      value = parseJson(body);
      break;
    case 'application/yaml':
    case 'application/x-yaml':
    case 'text/yaml':
      value = parseYamlBody(body);
      break;
    case 'application/vnd.kubernetes.protobuf':
      value = decodeProtobuf(body).object;
      // Messages nest only as their schema allows, but embedded raw JSON (RawExtension, JSON
      // fields) does not: checked on the result, iteratively.
      if (valueDepth(value) > MAX_NESTING_DEPTH) throw tooDeep('protobuf');
      break;
    default:
      throw errors.unsupportedMediaType(type);
  }
  if (!isPlainObject(value)) throw errors.badRequest(`the body of the request must be a JSON or YAML object, got ${describe(value)}`);
  return value as Record<string, any>;
}

export function parseJson(body: Buffer): unknown {
  const text = body.toString('utf8');
  if (text.trim() === '') throw errors.badRequest('the request body is empty');
  // JSON.parse itself copes with any depth, but everything after it (validation, cloning,
  // serialization) recurses: refuse before parsing.
  if (jsonDepth(text, MAX_NESTING_DEPTH) > MAX_NESTING_DEPTH) throw tooDeep('JSON');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw errors.badRequest(`the body of the request could not be decoded as JSON: ${(e as Error).message}`);
  }
}

export function parseYamlBody(body: Buffer): unknown {
  const text = body.toString('utf8');
  if (text.trim() === '') throw errors.badRequest('the request body is empty');
  // JSON is YAML, and what kubectl sends (also for server-side apply): the native parser, with the
  // JSON limits, and none of the YAML parser's cost.
  const first = text.trimStart()[0];
  if (first === '{' || first === '[') {
    if (jsonDepth(text, MAX_NESTING_DEPTH) > MAX_NESTING_DEPTH) throw tooDeep('YAML');
    try { return JSON.parse(text); } catch { /* YAML flow syntax that is not JSON: parse it as YAML */ }
  }
  if (body.length > MAX_YAML_BYTES) throw errors.tooLarge(`Request entity too large: limit is ${MAX_YAML_BYTES} for YAML that is not JSON`);
  const depth = yamlDepth(text);
  if (depth.flow > MAX_YAML_FLOW_DEPTH) throw tooDeep('YAML', MAX_YAML_FLOW_DEPTH);
  if (depth.block + depth.flow > MAX_NESTING_DEPTH) throw tooDeep('YAML');
  try {
    // One parse. Duplicate keys are checked below in one pass: the parser's own check compares
    // every key of a map with every other.
    const docs = parseAllDocuments(text, { uniqueKeys: false });
    const list = Array.isArray(docs) ? docs : [docs];
    const real = list.filter((d) => d.contents !== null);
    if (real.length > 1) throw new Error('a single YAML document is expected, found several');
    for (const d of list) if (d.errors.length) throw d.errors[0];
    const doc = real[0] ?? list[0];
    if (!doc) return null;
    visit(doc, {
      Map(_, map) {
        if (!isMap(map)) return;
        const seen = new Set<string>();
        for (const item of map.items) {
          const k = item.key as { value?: unknown } | null;
          const key = k && typeof k === 'object' && 'value' in k ? String(k.value) : String(k);
          if (seen.has(key)) throw new Error(`Map keys must be unique; "${key}" is repeated`);
          seen.add(key);
        }
      },
    });
    return doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw errors.badRequest(`the body of the request could not be decoded as YAML: ${(e as Error).message.split('\n')[0]}`);
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}
