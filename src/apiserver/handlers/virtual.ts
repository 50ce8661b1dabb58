// Two core kinds kube-apiserver lists that are not stored objects: `bindings` (a POST to the
// collection binds the pod named in the body, the older form of pods/binding) and `componentstatuses`
// (deprecated since 1.19; answered from the server's own health, as the control plane's parts run in
// this process).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KindInfo } from '../../api/kinds.js';
import { ApiError, errors } from '../../api/status.js';
import { readBody, sendJson, type Negotiated } from '../http.js';
import { decodeObject } from '../decode.js';
import type { ApiContext } from '../context.js';
import type { RequestInfo } from '../request-info.js';
import type { Actor } from '../objects.js';
import { bindPod } from '../pod-actions.js';
import { writeOptions } from './request-options.js';

export const VIRTUAL_CORE = new Set(['bindings', 'componentstatuses']);

/** The components kube-apiserver reports (k3s and skiff run them in the server process). */
const COMPONENTS = ['scheduler', 'controller-manager', 'etcd-0'];

export async function handleVirtualCore(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, ri: RequestInfo,
  info: KindInfo, ns: string | undefined, q: URLSearchParams, actor: Actor, neg: Negotiated): Promise<void> {
  if (info.plural === 'bindings') {
    if (ri.verb !== 'create' || ri.name) throw errors.methodNotAllowed(ri.verb);
    const body = decodeObject(await readBody(req), req.headers['content-type']);
    const name = body.metadata?.name;
    if (!name) throw errors.invalid('Binding', '', '', [{ reason: 'FieldValueRequired', field: 'metadata.name', message: 'Required value: name or generateName is required' }]);
    await bindPod(ctx.objects, ns!, name, body.target?.name, writeOptions(q, actor));
    return sendJson(res, 201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 });
  }
  // Every component lives in this process, so each reports the server's own readiness checks.
  const healthy = (await Promise.all(ctx.health.readyz.map(async (c) => { try { await c.check(); return true; } catch { return false; } }))).every(Boolean);
  const status = (name: string) => ({
    kind: 'ComponentStatus', apiVersion: 'v1', metadata: { name, creationTimestamp: null },
    conditions: [healthy ? { type: 'Healthy', status: 'True', message: 'ok' } : { type: 'Healthy', status: 'False', error: 'readyz check failed' }],
  });
  if (ri.verb !== 'get' && ri.verb !== 'list') throw errors.methodNotAllowed(ri.verb);
  if (ri.verb === 'get' && !COMPONENTS.includes(ri.name)) {
    throw new ApiError(404, 'NotFound', `componentstatuses "${ri.name}" not found`, { name: ri.name, kind: 'componentstatuses' });
  }
  const items = (ri.verb === 'get' ? [ri.name] : COMPONENTS).map(status);
  if (neg.as === 'Table') {
    // kubectl get cs: NAME STATUS MESSAGE ERROR, as kube-apiserver's printer.
    const col = (name: string, description: string, format = '') => ({ name, type: 'string', format, description, priority: 0 });
    return sendJson(res, 200, {
      kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: {},
      columnDefinitions: [col('Name', 'Name of the component', 'name'), col('Status', 'Status of the component conditions'),
        col('Message', 'Message of the component conditions'), col('Error', 'Error of the component conditions')],
      rows: items.map((i) => ({ cells: [i.metadata.name, 'Healthy', i.conditions[0].message, ''], object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: i.metadata } })),
    });
  }
  if (ri.verb === 'get') return sendJson(res, 200, items[0]);
  return sendJson(res, 200, { kind: 'ComponentStatusList', apiVersion: 'v1', metadata: {}, items });
}
