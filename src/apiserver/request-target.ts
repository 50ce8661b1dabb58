// The request target as the client sent it. A WHATWG URL would resolve dot segments (`..`,
// `%2e%2e`) and treat `//x` as a host, so a resource name could climb to its parent path; here the
// path stays as sent and names from it are checked as Kubernetes checks path segment names.
import type { IncomingMessage } from 'node:http';
import { errors } from '../api/status.js';
import { parseRequestInfo, type RequestInfo } from './request-info.js';

export interface RequestTarget {
  /** The path, trailing slashes removed (`/` stays `/`), still percent-encoded. */
  pathname: string;
  searchParams: URLSearchParams;
}

/** Origin form (`/path?query`) or absolute form (`https://host/path`); anything else is 400. */
export function parseRequestTarget(raw: string): RequestTarget {
  let target = raw;
  const abs = /^https?:\/\/[^/?#]*/i.exec(target);
  if (abs) target = target.slice(abs[0].length) || '/';
  if (!target.startsWith('/')) throw errors.badRequest(`malformed request target: ${JSON.stringify(raw.slice(0, 100))}`);
  const hash = target.indexOf('#');
  if (hash >= 0) target = target.slice(0, hash);
  const q = target.indexOf('?');
  let pathname = q >= 0 ? target.slice(0, q) : target;
  const query = q >= 0 ? target.slice(q + 1) : '';
  let end = pathname.length;
  while (end > 1 && pathname.charCodeAt(end - 1) === 47) end--;
  pathname = pathname.slice(0, end) || '/';
  if (pathname === '') pathname = '/';
  let searchParams: URLSearchParams;
  try { searchParams = new URLSearchParams(query); } catch { throw errors.badRequest('malformed query string'); }
  return { pathname, searchParams };
}

/** A request's target and what it asks for, from its method and raw target. */
export interface ParsedRequest {
  target: RequestTarget;
  info: RequestInfo;
}

const parsed = new WeakMap<IncomingMessage, ParsedRequest>();

/**
 * The request's target and request info, parsed once: the metrics (which label every request) and
 * the handler both need them. Treat the result as read-only. Throws a 400 for a malformed target.
 */
export function parsedRequest(req: IncomingMessage): ParsedRequest {
  let p = parsed.get(req);
  if (!p) {
    const target = parseRequestTarget(req.url ?? '/');
    p = { target, info: parseRequestInfo(req.method ?? 'GET', target.pathname, target.searchParams) };
    parsed.set(req, p);
  }
  return p;
}

/** Kubernetes' path segment name rule (apimachinery's IsValidPathSegmentName): the reasons it fails. */
export function pathSegmentNameProblems(name: string): string[] {
  if (name === '.' || name === '..') return [`may not be '${name}'`];
  const out: string[] = [];
  for (const bad of ['/', '%']) if (name.includes(bad)) out.push(`may not contain '${bad}'`);
  return out;
}

/** The name and namespace a resource request addresses, checked before anything resolves them. */
export function checkPathSegmentNames(ri: RequestInfo): void {
  if (ri.name) {
    const p = pathSegmentNameProblems(ri.name);
    if (p.length) throw errors.badRequest(`Name parameter invalid: ${JSON.stringify(ri.name)}: ${p.join(';')}`);
  }
  if (ri.namespace) {
    const p = pathSegmentNameProblems(ri.namespace);
    if (p.length) throw errors.badRequest(`Namespace parameter invalid: ${JSON.stringify(ri.namespace)}: ${p.join(';')}`);
  }
}
