// `nodes/<node>/proxy/<path>`: the API server's way to the kubelet's own HTTP endpoints, here through
// the node's agent tunnel. The Summary API (`stats/summary`, read by metrics-server and
// `kubectl get --raw`) and the Prometheus endpoints (`metrics`, `metrics/cadvisor`) are served; authorization on `nodes/proxy` happened before this is reached.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiContext } from '../context.js';
import type { RequestInfo } from '../request-info.js';
import { ApiError, errors } from '../../api/status.js';
import { sendRaw } from '../http.js';
import type { TunnelServer } from './registry.js';
import type { TunnelStream } from '../../tunnel/mux.js';

/** The kubelet paths served, with their content types (metrics: Prometheus text). */
const PROXIED_PATHS = new Map([
  ['/stats/summary', 'application/json'],
  ['/metrics', 'text/plain; version=0.0.4; charset=utf-8'],
  ['/metrics/cadvisor', 'text/plain; version=0.0.4; charset=utf-8'],
]);
/** A Summary is a few KiB per pod; anything far larger is not one. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

const tunnelsByContext = new WeakMap<ApiContext, TunnelServer>();

/** Makes `tunnels` the route to nodes' proxy paths for requests served with `ctx`. */
export function attachNodeProxy(ctx: ApiContext, tunnels: TunnelServer): void {
  tunnelsByContext.set(ctx, tunnels);
}

/** A node's Summary API document, fetched through its tunnel (the metrics API's source). */
export function fetchNodeSummary(ctx: ApiContext, node: string): Promise<string> {
  return fetchNodePath(ctx, node, '/stats/summary');
}

async function fetchNodePath(ctx: ApiContext, node: string, path: string): Promise<string> {
  const tunnels = tunnelsByContext.get(ctx);
  if (!tunnels?.isConnected(node)) throw new ApiError(503, 'ServiceUnavailable', `no agent tunnel is connected for node "${node}"`);
  return readAll(await tunnels.open(node, { op: 'proxy', node, path }));
}

export async function handleNodeProxy(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, ri: RequestInfo): Promise<void> {
  if (ri.verb !== 'get') throw errors.methodNotAllowed(ri.verb);
  const path = '/' + ri.rest.join('/');
  const contentType = PROXIED_PATHS.get(path);
  if (!contentType) throw errors.notFoundPath();
  // A node that does not exist is a 404 for the node, as Kubernetes answers.
  ctx.objects.get(ctx.registry.lookup('', 'v1', 'nodes')!, undefined, ri.name);
  const body = await fetchNodePath(ctx, ri.name, path);
  if (!req.socket.destroyed) sendRaw(res, 200, body, contentType);
}

function readAll(stream: TunnelStream): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) { stream.destroy(); reject(errors.internal('the node\'s answer is too large')); return; }
      chunks.push(c);
    });
    stream.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.once('error', (err) => reject(errors.internal(`reading from the node: ${err.message}`)));
    stream.once('close', () => reject(errors.internal('the node closed the stream early')));
  });
}
