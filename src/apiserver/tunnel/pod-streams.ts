// The pod subresources that reach a node: log, exec, attach, portforward. The API server checks the
// request against the pod object (container names, options), then opens a stream on the tunnel of
// the pod's node. Logs come back as a plain text body. exec/attach/portforward are upgrades: the
// agent replays the client's upgrade request against the container runtime's streaming server, and
// from then on the client's socket and the runtime's are spliced byte for byte, so the client and
// containerd negotiate the protocol between themselves (SPDY, or WebSocket channel.k8s.io v4), as
// with a kubelet behind the apiserver. The protocols containerd 1.6 does not speak, kubectl 1.32's
// first choices, are served by the server itself over a SPDY session with containerd, as
// kube-apiserver ≥ 1.30 does: WebSocket v5 exec/attach (exec-v5.ts) and SPDY tunnelled through a
// WebSocket for port-forward (portforward-ws.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiContext } from '../context.js';
import type { RequestInfo } from '../request-info.js';
import { isTrue } from '../request-info.js';
import type { UserInfo } from '../authn.js';
import { ApiError, cause, errors, type StatusCause } from '../../api/status.js';
import type { KObject } from '../../api/object.js';
import type { TunnelServer } from './registry.js';
import { splice } from './registry.js';
import { upgradeHead } from './upgrade.js';
import type { ExecRequest, LogsRequest, PortForwardRequest, UpgradeHead } from '../../tunnel/protocol.js';
import { spdyUpgradeHead } from './runtime-spdy.js';
import { offersV5, serveExecV5, V4_PROTOCOL } from './exec-v5.js';
import { servePortForwardTunnel, tunnelledSpdyProtocols } from './portforward-ws.js';

type Pod = KObject & { spec?: any; status?: any };

export const POD_STREAM_SUBRESOURCES = new Set(['log', 'exec', 'attach', 'portforward']);

const tunnelsByContext = new WeakMap<ApiContext, TunnelServer>();

/** Makes `tunnels` the route to nodes for requests served with `ctx`. */
export function attachTunnels(ctx: ApiContext, tunnels: TunnelServer): void {
  tunnelsByContext.set(ctx, tunnels);
}

/**
 * Serves `pods/{name}/log|exec|attach|portforward` after the server authenticated the caller and
 * authorized the request's verb on the subresource.
 */
export async function handlePodStream(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, ri: RequestInfo,
  q: URLSearchParams, user: UserInfo): Promise<void> {
  const sub = ri.subresource;
  const ns = ri.namespace;
  const podInfo = ctx.registry.lookup('', 'v1', 'pods')!;
  const pod = ctx.objects.get(podInfo, ns, ri.name).obj as Pod;

  if (sub === 'log') {
    if (ri.verb !== 'get') throw errors.methodNotAllowed(ri.verb);
    const logReq = logsRequest(pod, q);
    const stream = await tunnelsFor(ctx).open(nodeOf(pod), logReq);
    // The client may have gone while the node was answering: then nobody would ever close the stream.
    if (req.socket.destroyed) { stream.destroy(); return; }
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
    stream.pipe(res);
    stream.once('error', () => res.destroy());
    res.once('close', () => stream.destroy());
    return;
  }

  const head = upgradeHead(req);
  if (!head) throw errors.badRequest('Upgrade request required');
  // A WebSocket upgrade is a GET, which RBAC sees as `get`; running commands needs `create` too
  // (Kubernetes checks the same since 1.30), so a read-only role cannot exec over WebSocket.
  if (ri.verb === 'get') {
    const d = ctx.authz.authorize({
      user, verb: 'create', apiGroup: '', resource: 'pods', subresource: sub, namespace: ns, name: ri.name,
      path: ri.path, resourceRequest: true,
    });
    if (!d.allowed) throw errors.forbidden(user.name, 'create', 'pods', '', ns, ri.name, sub);
  } else if (ri.verb !== 'create') {
    throw errors.methodNotAllowed(ri.verb);
  }
  const node = nodeOf(pod);
  const tunnelled = sub === 'portforward' ? tunnelledSpdyProtocols(req) : [];
  if (tunnelled.length) {
    const stream = await tunnelsFor(ctx).open(node, portForwardRequest(pod, q, spdyUpgradeHead(tunnelled)));
    req.socket.once('close', () => stream.destroy());
    return servePortForwardTunnel(req, head, stream);
  }
  if (sub !== 'portforward' && offersV5(req)) {
    const execReq = execRequest(sub as 'exec' | 'attach', pod, q, spdyUpgradeHead([V4_PROTOCOL]));
    const stream = await tunnelsFor(ctx).open(node, execReq);
    req.socket.once('close', () => stream.destroy());
    return serveExecV5(req, head, stream, execReq);
  }
  // Everything else (SPDY, WebSocket v4 and older) the runtime serves itself.
  const replay: UpgradeHead = { method: req.method ?? 'GET', rawHeaders: forwardedHeaders(req.rawHeaders) };
  const streamReq = sub === 'portforward' ? portForwardRequest(pod, q, replay) : execRequest(sub as 'exec' | 'attach', pod, q, replay);
  const stream = await tunnelsFor(ctx).open(node, streamReq);
  splice(req.socket, stream, head);
}

function tunnelsFor(ctx: ApiContext): TunnelServer {
  const t = tunnelsByContext.get(ctx);
  if (!t) throw new ApiError(500, 'InternalError', 'error dialing backend: this server accepts no agent tunnels');
  return t;
}

function nodeOf(pod: KObject & { spec?: any }): string {
  const node = pod.spec?.nodeName;
  if (!node) throw errors.badRequest(`pod ${pod.metadata.name} does not have a host assigned`);
  return node;
}

interface ContainerRef { name: string; status?: any }

/** The named container (or the only one), with its status, as Kubernetes resolves it for log/exec. */
function selectContainer(pod: Pod, requested: string | null): ContainerRef {
  const name = pod.metadata.name;
  const containers: any[] = pod.spec?.containers ?? [];
  const inits: any[] = pod.spec?.initContainers ?? [];
  const ephemeral: any[] = pod.spec?.ephemeralContainers ?? [];
  let chosen = requested ?? '';
  if (!chosen) {
    if (containers.length === 1) chosen = containers[0].name;
    else {
      const names = containers.map((c) => c.name).join(' ');
      const initNames = inits.map((c) => c.name).join(' ');
      throw errors.badRequest(`a container name must be specified for pod ${name}, choose one of: [${names}]${initNames ? ` or one of the init containers: [${initNames}]` : ''}`);
    }
  }
  const known = [...containers, ...inits, ...ephemeral].some((c) => c.name === chosen);
  if (!known) throw errors.badRequest(`container ${chosen} is not valid for pod ${name}`);
  const statuses: any[] = [
    ...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.ephemeralContainerStatuses ?? []),
  ];
  return { name: chosen, status: statuses.find((s) => s.name === chosen) };
}

/** `containerd://<id>` → `<id>`. */
function runtimeId(containerID: string | undefined): string | undefined {
  if (!containerID) return undefined;
  const i = containerID.indexOf('://');
  return i >= 0 ? containerID.slice(i + 3) : containerID;
}

function intParam(q: URLSearchParams, key: string): number | undefined {
  const v = q.get(key);
  if (v === null || v === '') return undefined;
  if (!/^-?\d+$/.test(v)) throw errors.badRequest(`${key}: invalid value "${v}": must be an integer`);
  return Number(v);
}

function logsRequest(pod: Pod, q: URLSearchParams): LogsRequest {
  const name = pod.metadata.name ?? '';
  const tailLines = intParam(q, 'tailLines');
  const sinceSeconds = intParam(q, 'sinceSeconds');
  const limitBytes = intParam(q, 'limitBytes');
  const sinceTimeRaw = q.get('sinceTime');
  const problems: StatusCause[] = [];
  if (tailLines !== undefined && tailLines < 0) problems.push(cause.invalid('tailLines', tailLines, 'must be greater than or equal to 0'));
  if (limitBytes !== undefined && limitBytes < 1) problems.push(cause.invalid('limitBytes', limitBytes, 'must be greater than 0'));
  if (sinceSeconds !== undefined && sinceSeconds < 1) problems.push(cause.invalid('sinceSeconds', sinceSeconds, 'must be greater than 0'));
  if (sinceSeconds !== undefined && sinceTimeRaw) problems.push(cause.forbidden('', 'at most one of `sinceTime` or `sinceSeconds` may be specified'));
  if (problems.length) throw errors.invalid('PodLogOptions', '', name, problems);
  let sinceTime: string | undefined;
  if (sinceTimeRaw) {
    const t = Date.parse(sinceTimeRaw);
    if (Number.isNaN(t)) throw errors.badRequest(`sinceTime: invalid value "${sinceTimeRaw}": must be an RFC 3339 time`);
    sinceTime = sinceTimeRaw;
  } else if (sinceSeconds !== undefined) {
    sinceTime = new Date(Date.now() - sinceSeconds * 1000).toISOString();
  }

  const c = selectContainer(pod, q.get('container'));
  const previous = isTrue(q.get('previous'));
  let containerId: string | undefined;
  if (previous) {
    containerId = runtimeId(c.status?.lastState?.terminated?.containerID);
    if (!containerId) throw errors.badRequest(`previous terminated container "${c.name}" in pod "${name}" not found`);
  } else {
    containerId = runtimeId(c.status?.containerID);
    if (!containerId) {
      const reason = c.status?.state?.waiting?.reason ?? 'ContainerCreating';
      throw errors.badRequest(`container "${c.name}" in pod "${name}" is waiting to start: ${reason}`);
    }
  }
  return {
    op: 'logs', containerId, pod: `${pod.metadata.namespace}/${name}`, container: c.name,
    follow: isTrue(q.get('follow')), timestamps: isTrue(q.get('timestamps')),
    tailLines, sinceTime, limitBytes,
  };
}

function execRequest(op: 'exec' | 'attach', pod: Pod, q: URLSearchParams, head: UpgradeHead): ExecRequest {
  const stdin = isTrue(q.get('stdin'));
  // Kubernetes' ExecOptions default stdout and stderr to true when the client leaves them out.
  const stdout = q.has('stdout') ? isTrue(q.get('stdout')) : true;
  const stderr = q.has('stderr') ? isTrue(q.get('stderr')) : true;
  const tty = isTrue(q.get('tty'));
  if (!stdin && !stdout && !stderr) throw errors.badRequest('you must specify at least 1 of stdin, stdout, stderr');
  const cmd = q.getAll('command');
  if (op === 'exec' && cmd.length === 0) throw errors.badRequest('you must specify at least one command for the container');
  const c = selectContainer(pod, q.get('container'));
  const containerId = runtimeId(c.status?.containerID);
  if (!containerId || !c.status?.state?.running) throw errors.badRequest(`container not found ("${c.name}")`);
  return { op, containerId, cmd: op === 'exec' ? cmd : undefined, stdin, stdout, stderr: tty ? false : stderr, tty, head };
}

function portForwardRequest(pod: Pod, q: URLSearchParams, head: UpgradeHead): PortForwardRequest {
  const ports: number[] = [];
  for (const list of q.getAll('ports')) {
    for (const p of list.split(',')) {
      const n = Number(p.trim());
      if (!Number.isInteger(n) || n < 1 || n > 65535) throw errors.badRequest(`invalid port "${p.trim()}": must be between 1 and 65535, inclusive`);
      ports.push(n);
    }
  }
  const statuses: any[] = [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])];
  const containerId = statuses.map((s) => runtimeId(s.containerID)).find((id) => id);
  return { op: 'portforward', containerId, podUid: pod.metadata.uid ?? '', ports, head };
}

/** What of the client's request head the runtime sees: the upgrade negotiation, never credentials. */
function forwardedHeaders(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (lower === 'host' || lower === 'authorization' || lower === 'cookie' || lower.startsWith('impersonate-') || lower.startsWith('proxy-')) continue;
    let value = raw[i + 1]!;
    if (lower === 'sec-websocket-protocol') {
      // Browsers carry bearer tokens as a subprotocol; it authenticated us and goes no further.
      value = value.split(',').map((p) => p.trim()).filter((p) => !p.startsWith('base64url.bearer.authorization.k8s.io.')).join(', ');
      if (!value) continue;
    }
    out.push(name, value);
  }
  return out;
}
