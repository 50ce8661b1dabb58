// Request bodies: JSON, YAML or Kubernetes protobuf in; a plain object out, or a 4xx Status.
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { errors } from '../api/status.js';
import { decodeProtobuf } from './protobuf/decode.js';
import { isPlainObject } from '../api/object.js';

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
  try {
    return JSON.parse(text);
  } catch (e) {
    throw errors.badRequest(`the body of the request could not be decoded as JSON: ${(e as Error).message}`);
  }
}

export function parseYamlBody(body: Buffer): unknown {
  const text = body.toString('utf8');
  if (text.trim() === '') throw errors.badRequest('the request body is empty');
  try {
    const docs = parseAllDocuments(text);
    const list = Array.isArray(docs) ? docs : [docs];
    const real = list.filter((d) => d.contents !== null);
    if (real.length > 1) throw new Error('a single YAML document is expected, found several');
    for (const d of list) if (d.errors.length) throw d.errors[0];
    return parseYaml(text, { maxAliasCount: 100, uniqueKeys: true });
  } catch (e) {
    throw errors.badRequest(`the body of the request could not be decoded as YAML: ${(e as Error).message.split('\n')[0]}`);
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}
