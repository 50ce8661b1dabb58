// Subresources that act on an object: pods/binding (the scheduler's write), pods/eviction (drain's,
// honouring PodDisruptionBudgets) and serviceaccounts/token (TokenRequest).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KindInfo } from '../../api/kinds.js';
import { BUILTIN_KINDS } from '../../api/kinds.js';
import type { RequestInfo } from '../request-info.js';
import { ApiError, errors } from '../status.js';
import { readBody, sendJson } from '../http.js';
import { decodeObject } from '../decode.js';
import type { ApiContext } from '../context.js';
import type { Actor } from '../objects.js';
import { matchLabelSelectorObject } from '../selectors.js';
import { writeOptions } from './resources.js';

const PDB = BUILTIN_KINDS.find((k) => k.plural === 'poddisruptionbudgets')!;
const SA = BUILTIN_KINDS.find((k) => k.plural === 'serviceaccounts' && k.group === '')!;

export async function handlePodAction(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, ri: RequestInfo,
  info: KindInfo, ns: string, q: URLSearchParams, actor: Actor): Promise<void> {
  if (ri.verb !== 'create') throw errors.methodNotAllowed(ri.verb);
  const body = decodeObject(await readBody(req), req.headers['content-type']);
  if (ri.subresource === 'binding') {
    const target = body.target?.name;
    if (!target) throw errors.invalid('Binding', '', ri.name, [{ reason: 'FieldValueRequired', field: 'target.name', message: 'Required value' }]);
    await ctx.objects.update(info, ns, ri.name, (current) => {
      if (!current) throw errors.notFound('pods', '', ri.name);
      const pod = structuredClone(current.obj) as Record<string, any>;
      if (pod.metadata.deletionTimestamp) throw errors.conflict('pods', '', ri.name, 'pod is being deleted, cannot be assigned to a host');
      if (pod.spec.nodeName) throw errors.conflict('pods', '', ri.name, `pod ${ri.name} is already assigned to node "${pod.spec.nodeName}"`);
      pod.spec.nodeName = target;
      delete pod.metadata.resourceVersion;
      return pod;
    }, { ...writeOptions(q, actor), subresource: 'binding' });
    return sendJson(res, 201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 });
  }
  // Eviction: a delete that a PodDisruptionBudget may refuse.
  const pod = ctx.objects.get(info, ns, ri.name).obj;
  if (!pod.metadata.deletionTimestamp && pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed') {
    for (const pdb of ctx.objects.list(PDB, ns)) {
      if (!matchLabelSelectorObject(pdb.obj.spec?.selector, pod.metadata.labels)) continue;
      const allowed = pdb.obj.status?.disruptionsAllowed ?? 0;
      if (allowed < 1) {
        throw new ApiError(429, 'TooManyRequests', `Cannot evict pod as it would violate the pod's disruption budget.`, {
          causes: [{ reason: 'DisruptionBudget', message: `The disruption budget ${pdb.obj.metadata.name} needs ${pdb.obj.status?.desiredHealthy ?? 0} healthy pods and has ${pdb.obj.status?.currentHealthy ?? 0} currently` }],
        });
      }
      // Spend one disruption now so concurrent evictions can't all pass (Kubernetes does the same).
      const next = structuredClone(pdb.obj) as Record<string, any>;
      next.status = { ...(next.status ?? {}), disruptionsAllowed: allowed - 1, disruptedPods: { ...(next.status?.disruptedPods ?? {}), [ri.name]: new Date().toISOString().replace(/\.\d+Z$/, 'Z') } };
      try {
        await ctx.store.update(pdb.key, next, pdb.modRevision);
      } catch {
        throw errors.conflict('poddisruptionbudgets', 'policy', pdb.obj.metadata.name);
      }
    }
  }
  const d = body.deleteOptions ?? {};
  await ctx.objects.delete(info, ns, ri.name, {
    gracePeriodSeconds: d.gracePeriodSeconds, propagationPolicy: d.propagationPolicy, preconditions: d.preconditions,
    dryRun: Array.isArray(d.dryRun) && d.dryRun.length > 0,
  }, actor);
  sendJson(res, 201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 });
}

export async function handleTokenRequest(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, ri: RequestInfo,
  ns: string, _actor: Actor): Promise<void> {
  if (ri.verb !== 'create') throw errors.methodNotAllowed(ri.verb);
  const body = decodeObject(await readBody(req), req.headers['content-type']);
  const sa = ctx.objects.get(SA, ns, ri.name).obj;
  const spec = body.spec ?? {};
  const expirationSeconds = Number(spec.expirationSeconds ?? 3600);
  if (!Number.isInteger(expirationSeconds) || expirationSeconds < 600) {
    throw errors.invalid('TokenRequest', 'authentication.k8s.io', ri.name, [{ reason: 'FieldValueInvalid', field: 'spec.expirationSeconds', message: `Invalid value: ${spec.expirationSeconds}: may not specify a duration less than 10 minutes` }]);
  }
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
