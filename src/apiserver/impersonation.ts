// Impersonation (`kubectl --as`, `--as-group`): the Impersonate-* headers replace the requester's
// identity after RBAC allows the requester the `impersonate` verb on each piece, as in Kubernetes.
import type { IncomingMessage } from 'node:http';
import type { UserInfo } from './authn.js';
import type { Authorizer } from './authorizer.js';
import { ApiError } from '../api/status.js';

const SA_PREFIX = 'system:serviceaccount:';

export function impersonate(req: IncomingMessage, user: UserInfo, authz: Authorizer): UserInfo {
  const h = req.headers;
  const name = header(h['impersonate-user']);
  const groups = list(h['impersonate-group']);
  const uid = header(h['impersonate-uid']);
  const extra: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(h)) {
    if (k.startsWith('impersonate-extra-')) extra[unescapeExtraKey(k.slice('impersonate-extra-'.length))] = list(v);
  }
  if (name === undefined) {
    if (groups.length || uid !== undefined || Object.keys(extra).length) {
      throw new ApiError(500, 'InternalError', 'Internal error occurred: requested impersonation of groups or extras without impersonating a user');
    }
    return user;
  }
  const check = (resource: string, resourceName: string, apiGroup = '', namespace?: string, subresource?: string) => {
    const d = authz.authorize({ user, verb: 'impersonate', apiGroup, resource, subresource, namespace, name: resourceName, path: req.url ?? '', resourceRequest: true });
    if (!d.allowed) {
      const what = subresource ? `${resource}/${subresource}` : resource;
      throw new ApiError(403, 'Forbidden', `${what}${apiGroup ? '.' + apiGroup : ''} "${resourceName}" is forbidden: User "${user.name}" cannot impersonate resource "${what}" in API group "${apiGroup}"${namespace ? ` in the namespace "${namespace}"` : ' at the cluster scope'}`, { name: resourceName, group: apiGroup, kind: resource });
    }
  };
  const out: UserInfo = { name, groups: [], uid, extra: Object.keys(extra).length ? extra : undefined };
  if (name.startsWith(SA_PREFIX)) {
    const [ns, sa] = name.slice(SA_PREFIX.length).split(':');
    check('serviceaccounts', sa ?? '', '', ns);
    out.groups.push('system:serviceaccounts', `system:serviceaccounts:${ns}`);
  } else {
    check('users', name);
  }
  for (const g of groups) { check('groups', g); out.groups.push(g); }
  if (uid !== undefined) check('uids', uid, 'authentication.k8s.io');
  for (const [k, vs] of Object.entries(extra)) for (const v of vs) check('userextras', v, 'authentication.k8s.io', undefined, k);
  if (name !== 'system:anonymous' && !out.groups.includes('system:authenticated')) out.groups.push('system:authenticated');
  return out;
}

/** As Kubernetes: the key percent-decoded, or kept as sent when it is not valid percent-encoding. */
function unescapeExtraKey(k: string): string {
  try { return decodeURIComponent(k); } catch { return k; }
}

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
function list(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
}
