// Query parameters and option bodies every resource handler reads the same way (field manager,
// CreateOptions/UpdateOptions/PatchOptions, DeleteOptions, non-negative integers). A module of its
// own so the verb handlers and the subresource handlers (scale, binding, eviction) share them
// without importing each other.
import type { IncomingMessage } from 'node:http';
import { errors } from '../../api/status.js';
import { isTrue } from '../request-info.js';
import { readBody } from '../http.js';
import { decodeObject, mediaType } from '../decode.js';
import type { Actor, DeleteOptions, WriteOptions } from '../objects.js';
import { parseFieldValidation } from '../fields.js';
import { decodeProtobuf } from '../protobuf/decode.js';

export function fieldManager(q: URLSearchParams, req: IncomingMessage): string {
  const m = q.get('fieldManager');
  if (m !== null) {
    if (m.length > 128) throw errors.badRequest('fieldManager: Too long: may not be more than 128 bytes');
    return m;
  }
  // Kubernetes derives the default manager from the User-Agent's program name.
  const ua = String(req.headers['user-agent'] ?? 'unknown');
  return ua.split('/')[0].slice(0, 128) || 'unknown';
}

export function writeOptions(q: URLSearchParams, actor: Actor, optionsKind = 'CreateOptions'): WriteOptions {
  const dry = q.getAll('dryRun');
  for (const d of dry) {
    if (d !== 'All') throw errors.invalid(optionsKind, 'meta.k8s.io', '', [{ reason: 'FieldValueNotSupported', field: 'dryRun', message: `Unsupported value: "${d}": supported values: "All"` }]);
  }
  return { actor, dryRun: dry.length > 0, fieldValidation: parseFieldValidation(q.get('fieldValidation'), optionsKind) };
}

export async function deleteOptions(req: IncomingMessage, q: URLSearchParams): Promise<DeleteOptions> {
  const opts: DeleteOptions = {};
  const body = await readBody(req);
  if (body.length > 0) {
    const type = mediaType(req.headers['content-type']);
    const o = type === 'application/vnd.kubernetes.protobuf' ? decodeProtobuf(body).object : decodeObject(body, req.headers['content-type']);
    if (o.gracePeriodSeconds !== undefined) opts.gracePeriodSeconds = Number(o.gracePeriodSeconds);
    if (o.propagationPolicy) opts.propagationPolicy = o.propagationPolicy;
    if (o.orphanDependents === true) opts.propagationPolicy = 'Orphan';
    if (o.preconditions) opts.preconditions = o.preconditions;
    if (Array.isArray(o.dryRun) && o.dryRun.length) opts.dryRun = true;
  }
  const g = parseNonNegInt(q, 'gracePeriodSeconds');
  if (g !== undefined) opts.gracePeriodSeconds = g;
  const p = q.get('propagationPolicy');
  if (p !== null) opts.propagationPolicy = p as DeleteOptions['propagationPolicy'];
  if (isTrue(q.get('orphanDependents'))) opts.propagationPolicy = 'Orphan';
  if (q.getAll('dryRun').length) opts.dryRun = true;
  if (opts.propagationPolicy && !['Orphan', 'Background', 'Foreground'].includes(opts.propagationPolicy)) {
    throw errors.badRequest(`propagationPolicy: Unsupported value: "${opts.propagationPolicy}": supported values: "Foreground", "Background", "Orphan"`);
  }
  return opts;
}

export function parseNonNegInt(q: URLSearchParams, name: string, negativeMeansUnset = false): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  if (negativeMeansUnset && /^-\d+$/.test(v)) return undefined;
  if (!/^\d+$/.test(v)) throw errors.badRequest(`invalid value for ${name}: "${v}": must be a non-negative integer`);
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw errors.badRequest(`invalid value for ${name}: "${v}": out of range`);
  return n;
}

