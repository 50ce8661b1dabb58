// Review kinds: POSTed, answered, never stored (access reviews for `kubectl auth can-i`, token
// reviews, `kubectl auth whoami`).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KindInfo } from '../../api/kinds.js';
import { apiVersionOf } from '../../api/kinds.js';
import { errors } from '../../api/status.js';
import { readBody, sendJson } from '../http.js';
import { decodeObject } from '../decode.js';
import type { ApiContext } from '../context.js';
import type { UserInfo } from '../authn.js';

export async function handleReview(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, info: KindInfo,
  ns: string | undefined, user: UserInfo): Promise<void> {
  const body = decodeObject(await readBody(req), req.headers['content-type']);
  const spec = body.spec ?? {};
  const out: Record<string, any> = { kind: info.kind, apiVersion: apiVersionOf(info), metadata: { creationTimestamp: null, ...(body.metadata ?? {}) }, spec };
  switch (info.plural) {
    case 'selfsubjectaccessreviews':
      out.status = access(ctx, user, spec);
      break;
    case 'subjectaccessreviews':
    case 'localsubjectaccessreviews': {
      const subject: UserInfo = { name: spec.user ?? '', groups: spec.groups ?? [], uid: spec.uid, extra: spec.extra };
      if (info.plural === 'localsubjectaccessreviews') {
        if (spec.resourceAttributes?.namespace && spec.resourceAttributes.namespace !== ns) {
          throw errors.badRequest(`spec.resourceAttributes.namespace must match namespace: ${ns}`);
        }
        spec.resourceAttributes = { ...(spec.resourceAttributes ?? {}), namespace: ns };
      }
      out.status = access(ctx, subject, spec);
      break;
    }
    case 'selfsubjectrulesreview':
    case 'selfsubjectrulesreviews': {
      const rules = ctx.authz.rulesFor(user, spec.namespace ?? '');
      out.status = { resourceRules: rules.resourceRules, nonResourceRules: rules.nonResourceRules, incomplete: false };
      break;
    }
    case 'tokenreviews': {
      const reviewed = spec.token ? await ctx.authn.authenticateToken(spec.token) : null;
      out.status = reviewed
        ? { authenticated: true, user: { username: reviewed.name, uid: reviewed.uid, groups: reviewed.groups, extra: reviewed.extra }, audiences: spec.audiences }
        : { authenticated: false, user: {}, error: 'invalid bearer token' };
      break;
    }
    case 'selfsubjectreviews':
      out.status = { userInfo: { username: user.name, uid: user.uid, groups: user.groups, extra: user.extra } };
      delete out.spec;
      break;
    default:
      throw errors.notFoundPath();
  }
  sendJson(res, 201, out);
}

function access(ctx: ApiContext, user: UserInfo, spec: Record<string, any>): Record<string, unknown> {
  const ra = spec.resourceAttributes;
  const nra = spec.nonResourceAttributes;
  if (!ra && !nra) throw errors.invalid('SelfSubjectAccessReview', 'authorization.k8s.io', '', [{ reason: 'FieldValueRequired', field: 'spec.resourceAttributes', message: 'Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified' }]);
  const d = ctx.authz.authorize(ra ? {
    user, verb: ra.verb ?? '', apiGroup: ra.group ?? '', resource: ra.resource ?? '', subresource: ra.subresource || undefined,
    namespace: ra.namespace || undefined, name: ra.name || undefined, path: '', resourceRequest: true,
  } : {
    user, verb: nra.verb ?? '', apiGroup: '', resource: '', path: nra.path ?? '', resourceRequest: false,
  });
  return d.allowed ? { allowed: true, reason: d.reason } : { allowed: false, ...(d.reason ? { reason: d.reason } : {}) };
}
