// HTTP plumbing: bounded body reading, response writing, content negotiation.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError, errors } from '../api/status.js';
import { DatastoreUnavailableError } from '../storage/driver.js';

/** Kubernetes refuses request bodies above 3 MiB. */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > limit) { drain(req); reject(errors.tooLarge()); return; }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > limit) { failed = true; drain(req); reject(errors.tooLarge()); return; }
      chunks.push(c);
    });
    req.on('end', () => { if (!failed) resolve(Buffer.concat(chunks)); });
    req.on('error', (e) => { if (!failed) { failed = true; reject(errors.badRequest(`error reading request body: ${e.message}`)); } });
  });
}

function drain(req: IncomingMessage): void {
  // Keep reading (and discarding) so the response can still be written on this connection.
  req.removeAllListeners('data');
  req.resume();
}

export function sendJson(res: ServerResponse, code: number, body: unknown, headers: Record<string, string | string[]> = {}): void {
  sendRaw(res, code, typeof body === 'string' ? body : JSON.stringify(body), 'application/json', headers);
}

export function sendRaw(res: ServerResponse, code: number, text: string, contentType: string, headers: Record<string, string | string[]> = {}): void {
  if (res.headersSent) { res.end(); return; }
  const buf = Buffer.from(text);
  res.writeHead(code, { 'Content-Type': contentType, 'Content-Length': buf.length, 'Cache-Control': 'no-cache, private', ...headers });
  res.end(buf);
}

/** A list body up to this many characters goes out whole, with a Content-Length; a longer one in pieces of about this size. */
export const LIST_CHUNK_CHARS = 256 * 1024;

/**
 * A 200 whose JSON body is `head`, the items encoded and separated by commas, then `tail`: the shape
 * of every list. A body longer than one chunk is encoded as it is sent, each chunk after the socket
 * took the one before (chunked transfer encoding), so a list costs the server one chunk of memory
 * whatever its length and however slowly its client reads, and the thread serves other requests
 * between chunks. Built whole, an unpaged list of 50,000 pods (an informer's first) was about 250 MB
 * of JSON held four times over (the items' texts, the joined text, its bytes, the encrypted bytes)
 * and seconds of the thread (bench/list-memory.ts). Kubernetes streams list encoding too, since 1.33.
 */
export async function sendListBody<T>(res: ServerResponse, head: string, items: readonly T[], encode: (item: T) => string, tail: string): Promise<void> {
  let i = 0;
  /** `start` and the next items, up to about a chunk's length. */
  const fill = (start: string): string => {
    let chunk = start;
    for (; i < items.length && chunk.length < LIST_CHUNK_CHARS; i++) chunk += (i === 0 ? '' : ',') + encode(items[i]!);
    return chunk;
  };
  let chunk = fill(head);
  if (i === items.length) { sendRaw(res, 200, chunk + tail, 'application/json'); return; }
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
  try {
    for (;;) {
      if (!res.write(chunk)) await drained(res);
      if (res.destroyed) return;   // the client went away: nothing more to encode
      if (i === items.length) break;
      chunk = fill('');
    }
    res.end(tail);
  } catch (err) {
    // The status line is gone: a truncated body must not look like a whole list.
    res.destroy(err instanceof Error ? err : new Error(String(err)));
  }
}

/** Resolves once `res` can take more (or is gone). */
export function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => { res.off('drain', done); res.off('close', done); resolve(); };
    res.on('drain', done);
    res.on('close', done);
  });
}

export function sendError(res: ServerResponse, err: unknown): void {
  const e = err instanceof ApiError ? err
    // A datastore outage is temporary: 503 tells clients to retry (etcd's "etcdserver: ..." errors do the same).
    : err instanceof DatastoreUnavailableError ? new ApiError(503, 'ServiceUnavailable', err.message, { retryAfterSeconds: 1 })
    : errors.internal(err instanceof Error ? err.message : String(err));
  const retry = e.details?.retryAfterSeconds;
  sendJson(res, e.code, e.toStatus(), retry !== undefined ? { 'Retry-After': String(retry) } : {});
}

/** The parts of an Accept header skiff cares about: Table / PartialObjectMetadata conversions. */
export interface Negotiated {
  as?: 'Table' | 'PartialObjectMetadata' | 'PartialObjectMetadataList';
  yaml: boolean;
}

export function negotiate(accept: string | undefined): Negotiated {
  if (!accept) return { yaml: false };
  for (const part of accept.split(',')) {
    const [type, ...params] = part.trim().split(';').map((s) => s.trim());
    const p = Object.fromEntries(params.map((kv) => kv.split('=') as [string, string]));
    if ((type === 'application/json' || type === 'application/vnd.kubernetes.protobuf') && p.as) {
      if (p.g === 'meta.k8s.io' && (p.v === 'v1' || p.v === 'v1beta1')) {
        if (p.as === 'Table' || p.as === 'PartialObjectMetadata' || p.as === 'PartialObjectMetadataList') return { as: p.as, yaml: false };
      }
      continue;   // an `as=` form we don't serve: try the next alternative
    }
    if (type === 'application/json' || type === '*/*' || type === 'application/*' || type === 'application/vnd.kubernetes.protobuf') return { yaml: false };
    if (type === 'application/yaml') return { yaml: true };
  }
  return { yaml: false };
}

/** Warning headers as Kubernetes sends them (`299 - "text"`). */
export function warningHeader(messages: string[]): Record<string, string[]> | undefined {
  if (messages.length === 0) return undefined;
  return { Warning: messages.map((m) => `299 - ${JSON.stringify(m)}`) };
}
