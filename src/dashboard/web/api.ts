// Talking to the API server as the signed-in user: every request carries the user's bearer token in
// the Authorization header (never in a URL), so RBAC and audit see the user. Failures become ApiErrors
// holding the Status message the server sent, which the UI shows as is. A 401 anywhere ends the
// session (the token expired or was revoked) and brings back the sign-in page with a message.
const TOKEN_KEY = 'skiff.dashboard.token';
const USER_KEY = 'skiff.dashboard.user';

export class ApiError extends Error {
  constructor(readonly code: number, readonly reason: string, message: string) { super(message); }
}

let onUnauthorized: (message: string) => void = () => {};
export function setUnauthorizedHandler(fn: (message: string) => void): void { onUnauthorized = fn; }

export const session = {
  token(): string | null { return sessionStorage.getItem(TOKEN_KEY); },
  user(): string { return sessionStorage.getItem(USER_KEY) ?? ''; },
  save(token: string, user: string): void { sessionStorage.setItem(TOKEN_KEY, token); sessionStorage.setItem(USER_KEY, user); },
  clear(): void { sessionStorage.removeItem(TOKEN_KEY); sessionStorage.removeItem(USER_KEY); permCache.clear(); },
};

export const EXPIRED_MESSAGE = 'Your session has ended: the API server no longer accepts the token (it expired or was revoked). Sign in again.';

export interface RequestOptions {
  body?: unknown;
  contentType?: string;
  accept?: string;
  signal?: AbortSignal;
  /** Use this token instead of the session's (signing in). */
  token?: string;
}

export async function request(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
  const token = opts.token ?? session.token();
  const headers: Record<string, string> = { Accept: opts.accept ?? 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    headers['Content-Type'] = opts.contentType ?? 'application/json';
  }
  // credentials 'omit': the API must see only the token, never a client certificate the browser may hold.
  const init: RequestInit = { method, headers, body, signal: opts.signal, credentials: 'omit', cache: 'no-store' };
  // Reads and access reviews are safe to repeat: retry them when the connection drops (the browser
  // aborts requests in flight when the host's network interfaces change, ERR_NETWORK_CHANGED).
  const retries = method === 'GET' || /\/selfsubject\w+reviews$/.test(path) ? 3 : 0;
  let res: Response;
  for (let i = 0; ; i++) {
    try {
      res = await fetch(path, init);
      break;
    } catch (e) {
      if (i >= retries || opts.signal?.aborted || !(e instanceof TypeError)) throw e;
      await new Promise((r) => setTimeout(r, 250 * (i + 1)));
    }
  }
  if (res.ok) return res;
  const err = await errorOf(res);
  if (res.status === 401 && opts.token === undefined) onUnauthorized(EXPIRED_MESSAGE);
  throw err;
}

async function errorOf(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  try {
    const s = JSON.parse(text);
    if (s && s.kind === 'Status') return new ApiError(res.status, s.reason ?? '', s.message ?? `${res.status} ${res.statusText}`);
  } catch { /* not a Status */ }
  return new ApiError(res.status, res.statusText, text.trim() || `${res.status} ${res.statusText}`);
}

export async function getJson<T = any>(path: string, opts: RequestOptions = {}): Promise<T> {
  return (await request('GET', path, opts)).json() as Promise<T>;
}

export async function send<T = any>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
  return (await request(method, path, { body, contentType })).json() as Promise<T>;
}

export const MERGE_PATCH = 'application/merge-patch+json';

/** Calls `onLine` with each complete line of a streamed response body (watch events, log lines). */
export async function readLines(res: Response, onLine: (line: string) => void): Promise<void> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        onLine(line);
      }
    }
    if (buf) onLine(buf);
  } catch (e) {
    reader.cancel().catch(() => {});
    throw e;
  }
}

/** Who the token stands for (SelfSubjectReview), or an ApiError (401 for a bad or expired token). */
export async function whoAmI(token: string): Promise<string> {
  const r = await request('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
    token, body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
  });
  const review = await r.json();
  return review?.status?.userInfo?.username ?? '';
}

// ---- what the user may do ------------------------------------------------------------------------

export interface Access { verb: string; group?: string; resource: string; subresource?: string; namespace?: string }

const permCache = new Map<string, boolean | Promise<boolean>>();
const permListeners = new Set<() => void>();
export function onPermissionsChange(fn: () => void): () => void { permListeners.add(fn); return () => permListeners.delete(fn); }

/**
 * Whether the user may do something, from a SelfSubjectAccessReview cached per verb, resource and
 * namespace: true/false once known, undefined while asking (listeners are told when the answer comes,
 * so buttons appear then). Buttons the user may not use are never drawn.
 */
export function can(a: Access): boolean | undefined {
  const key = `${a.verb} ${a.group ?? ''} ${a.resource} ${a.subresource ?? ''} ${a.namespace ?? ''}`;
  const known = permCache.get(key);
  if (typeof known === 'boolean') return known;
  if (known) return undefined;
  const p = send('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
    apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview',
    spec: { resourceAttributes: { verb: a.verb, group: a.group ?? '', resource: a.resource, subresource: a.subresource ?? '', namespace: a.namespace ?? '' } },
  }).then((r: any) => Boolean(r?.status?.allowed), (e) => (e instanceof ApiError ? false : undefined));
  permCache.set(key, p as Promise<boolean>);
  p.then((allowed) => {
    if (permCache.get(key) !== p) return;
    // No answer (the connection dropped): forget the question, so the next redraw asks again.
    if (allowed === undefined) { permCache.delete(key); setTimeout(() => { for (const l of permListeners) l(); }, 1000); return; }
    permCache.set(key, allowed);
    for (const l of permListeners) l();
  });
  return undefined;
}
