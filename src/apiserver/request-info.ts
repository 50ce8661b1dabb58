// Turns a URL path and method into what the request is about, as Kubernetes' RequestInfoFactory does:
// API group/version, resource, namespace, name, subresource, and the verb authorization checks.

export interface RequestInfo {
  isResourceRequest: boolean;
  path: string;
  verb: string;          // get list watch create update patch delete deletecollection (or HTTP verb for non-resource)
  apiPrefix?: 'api' | 'apis';
  group: string;
  version: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
  /** Path segments after the subresource (e.g. proxy paths). */
  rest: string[];
  /**
   * A list or watch narrowed to one object by `fieldSelector=metadata.name=X`: authorized as a request
   * for that name, as Kubernetes' RequestInfoFactory does (a kubelet watches one Secret this way).
   */
  selectedName?: string;
}

const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);
const METHOD_VERBS: Record<string, string> = { POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete', GET: 'get', HEAD: 'get' };

export function parseRequestInfo(method: string, path: string, query: URLSearchParams): RequestInfo {
  const parts = path.split('/').filter((p) => p !== '').map(safeDecode);
  const info: RequestInfo = {
    isResourceRequest: false, path, verb: method.toLowerCase(), group: '', version: '', resource: '',
    subresource: '', namespace: '', name: '', rest: [],
  };
  let i = 0;
  if (parts[0] === 'api') {
    info.apiPrefix = 'api';
    info.version = parts[1] ?? '';
    if (parts.length < 3) return info;            // /api, /api/v1 are discovery
    i = 2;
  } else if (parts[0] === 'apis') {
    info.apiPrefix = 'apis';
    if (parts.length < 4) { info.group = parts[1] ?? ''; info.version = parts[2] ?? ''; return info; }
    info.group = parts[1];
    info.version = parts[2];
    i = 3;
  } else {
    return info;
  }
  info.isResourceRequest = true;
  let rest = parts.slice(i);
  let watchPath = false;
  if (rest[0] === 'watch') { watchPath = true; rest = rest.slice(1); }   // legacy /watch/ paths
  if (rest[0] === 'namespaces' && rest.length > 1) {
    info.namespace = rest[1];
    // /namespaces/{ns}/{resource}...: a namespaced resource, unless it is the namespace's own
    // subresource (/namespaces/{ns}/status|finalize).
    if (rest.length > 2 && !NAMESPACE_SUBRESOURCES.has(rest[2])) rest = rest.slice(2);
  }
  info.resource = rest[0] ?? '';
  info.name = rest[1] ?? '';
  info.subresource = rest[2] ?? '';
  info.rest = rest.slice(3);

  let verb = METHOD_VERBS[method] ?? method.toLowerCase();
  if (method === 'GET' || method === 'HEAD') {
    if (!info.name) verb = 'list';
    if (watchPath || isTrue(query.get('watch'))) verb = 'watch';
  } else if (method === 'DELETE' && !info.name) {
    verb = 'deletecollection';
  }
  info.verb = verb;
  if ((verb === 'list' || verb === 'watch') && !info.name) {
    const name = exactNameSelected(query.get('fieldSelector'));
    if (name !== undefined) info.selectedName = name;
  }
  return info;
}

/** `X` when a field selector requires `metadata.name` to equal X (alone or among ANDed terms). */
function exactNameSelected(selector: string | null): string | undefined {
  for (const term of (selector ?? '').split(',')) {
    const m = /^\s*metadata\.name\s*==?\s*([^\s=!]+)\s*$/.exec(term);
    // The same check the path names get: no '/', '%', '.' or '..'.
    if (m && !/[/%]/.test(m[1]!) && m[1] !== '.' && m[1] !== '..') return m[1];
  }
  return undefined;
}

/** Kubernetes' query booleans: anything but "0"/"false" (any case) is true; absent is false. */
export function isTrue(v: string | null | undefined): boolean {
  if (v === null || v === undefined) return false;
  const l = v.toLowerCase();
  return l !== '0' && l !== 'false';
}

function safeDecode(s: string): string {
  try { return decodeURIComponent(s); } catch { return s; }
}
