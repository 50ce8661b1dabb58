// Subresources that act on an object: pods/binding (the scheduler's write), pods/eviction (drain's,
// honouring PodDisruptionBudgets) and serviceaccounts/token (TokenRequest).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KindInfo } from '../../api/kinds.js';
import { BUILTIN_KINDS } from '../../api/kinds.js';
import type { RequestInfo } from '../request-info.js';
import { errors } from '../../api/status.js';
import { readBody, sendJson } from '../http.js';
import { decodeObject } from '../decode.js';
import { MAX_TOKEN_EXPIRATION_SECONDS } from '../serviceaccount-tokens.js';
import type { ApiContext } from '../context.js';
import type { Actor } from '../objects.js';
import { bindPod, evictPod } from '../pod-actions.js';
import { writeOptions } from './request-options.js';

const SA = BUILTIN_KINDS.find((k) => k.plural === 'serviceaccounts' && k.group === '')!;

export async function handlePodAction(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, ri: RequestInfo,
  _info: KindInfo, ns: string, q: URLSearchParams, actor: Actor): Promise<void> {
  if (ri.verb !== 'create') throw errors.methodNotAllowed(ri.verb);
  const body = decodeObject(await readBody(req), req.headers['content-type']);
  if (ri.subresource === 'binding') {
    await bindPod(ctx.objects, ns, ri.name, body.target?.name, writeOptions(q, actor));
  } else {
    const d = body.deleteOptions ?? {};
    await evictPod(ctx.objects, ns, ri.name, {
      gracePeriodSeconds: d.gracePeriodSeconds, propagationPolicy: d.propagationPolicy, preconditions: d.preconditions,
      dryRun: Array.isArray(d.dryRun) && d.dryRun.length > 0,
    }, actor);
  }
  sendJson(res, 201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 });
}

export async function handleTokenRequest(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, ri: RequestInfo,
  ns: string, _actor: Actor): Promise<void> {
  if (ri.verb !== 'create') throw errors.methodNotAllowed(ri.verb);
  const body = decodeObject(await readBody(req), req.headers['content-type']);
  const sa = ctx.objects.get(SA, ns, ri.name).obj;
  const spec = body.spec ?? {};
  let expirationSeconds = Number(spec.expirationSeconds ?? 3600);
  if (!Number.isInteger(expirationSeconds) || expirationSeconds < 600) {
    throw errors.invalid('TokenRequest', 'authentication.k8s.io', ri.name, [{ reason: 'FieldValueInvalid', field: 'spec.expirationSeconds', message: `Invalid value: ${spec.expirationSeconds}: may not specify a duration less than 10 minutes` }]);
  }
  // As Kubernetes with --service-account-max-token-expiration: longer requests are shortened, not
  // refused, and the answer says how long the token really lives.
  expirationSeconds = Math.min(expirationSeconds, MAX_TOKEN_EXPIRATION_SECONDS);
  const bound = spec.boundObjectRef;
  let boundObject: { kind: string; name: string; uid: string } | undefined;
  if (bound?.kind === 'Pod') {
    const pod = ctx.store.get(`/core/pods/${ns}/${bound.name}`);
    if (!pod || (bound.uid && pod.obj.metadata.uid !== bound.uid)) throw errors.notFound('pods', '', bound.name);
    boundObject = { kind: 'Pod', name: bound.name, uid: pod.obj.metadata.uid };
  }
  const issued = await ctx.saTokens.issue({
    namespace: ns, serviceAccountName: ri.name, serviceAccountUid: sa.metadata.uid,
    audiences: spec.audiences?.length ? spec.audiences : ['https://kubernetes.default.svc.cluster.local', 'k3s'],
    expirationSeconds, boundObject,
  });
  sendJson(res, 201, {
    kind: 'TokenRequest', apiVersion: 'authentication.k8s.io/v1',
    metadata: { name: ri.name, namespace: ns, creationTimestamp: null },
    spec: { audiences: spec.audiences ?? ['https://kubernetes.default.svc.cluster.local', 'k3s'], expirationSeconds, boundObjectRef: bound ?? null },
    status: { token: issued.token, expirationTimestamp: issued.expirationTimestamp },
  });
}
