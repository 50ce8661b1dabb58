// What the agent does with each stream the server opens on its tunnel. Logs are read from the
// container's CRI log file. exec, attach and port-forward get a one-time URL from the runtime's
// streaming server (containerd serves the kubelet's SPDY and WebSocket protocols itself); the agent
// replays the client's upgrade request there and splices the connection into the tunnel stream.
import { access, rm } from 'node:fs/promises';
import { basename, isAbsolute, normalize } from 'node:path';
import { connect } from 'node:net';
import { pipeline } from 'node:stream';
import type { CriClient } from '../runtime/cri-client.js';
import { isNotFound } from '../runtime/cri-client.js';
import type { TunnelStream } from '../../tunnel/mux.js';
import type { DialRequest, ExecRequest, LogsRequest, PortForwardRequest, StreamRequest, UpgradeHead } from '../../tunnel/protocol.js';

/** What a local-path volume's directory is named: `pvc-<uid>_<namespace>_<claim>`. */
const LOCAL_PATH_DIR = /^pvc-[0-9a-f-]{36}_[a-z0-9][a-z0-9.-]*_[a-z0-9][a-z0-9.-]*$/;
import { containerLogStream } from '../logs.js';
import { serveNodeProxy } from '../stats.js';
import { logger } from '../../util/log.js';

const log = logger('tunnel-streams');
const RUNNING = 'CONTAINER_RUNNING';

export interface StreamDeps {
  cri: CriClient;
  /** `/metrics` and `/metrics/cadvisor` through the node proxy. */
  metrics?: { render(path: string): Promise<string | undefined> };
  /** Addresses this node will dial for the server (its pods'); unset: any. */
  mayDial?: (host: string) => boolean;
}

/** Dials a TCP endpoint on the node's side (a webhook or APIService pod) and splices it to the stream. */
function serveDial(deps: StreamDeps, req: DialRequest, stream: TunnelStream): void {
  if (typeof req.host !== 'string' || !Number.isInteger(req.port) || req.port < 1 || req.port > 65535) {
    return stream.reject({ code: 400, message: 'dial needs a host and a port' });
  }
  if (deps.mayDial && !deps.mayDial(req.host)) return stream.reject({ code: 403, message: `this node does not dial ${req.host}` });
  const socket = connect({ host: req.host, port: req.port });
  let connected = false;
  socket.once('connect', () => {
    connected = true;
    stream.accept();
    socket.pipe(stream);
    stream.pipe(socket);
  });
  socket.once('error', (err) => {
    if (!connected) stream.reject({ code: 502, message: `dial tcp ${req.host}:${req.port}: ${err.message}` });
    else stream.destroy(err);
  });
  stream.once('error', () => socket.destroy());
  stream.once('close', () => socket.destroy());
}

/** Serves one stream; never throws (failures go back to the server as the stream's reset reason). */
export async function serveStream(deps: StreamDeps, req: StreamRequest, stream: TunnelStream): Promise<void> {
  try {
    switch (req.op) {
      case 'logs': return await serveLogs(deps, req, stream);
      case 'exec':
      case 'attach': return await serveExec(deps, req, stream);
      case 'portforward': return await servePortForward(deps, req, stream);
      case 'proxy': return await serveNodeProxy(deps.cri, req, stream, deps.metrics);
      case 'remove-local-path': return await removeLocalPath(req.path, stream);
      case 'dial': return serveDial(deps, req, stream);
      default: stream.reject({ code: 400, message: `unknown stream operation ${(req as { op?: string }).op}` });
    }
  } catch (err) {
    log.debug({ op: req.op, err: (err as Error).message }, 'stream failed');
    stream.reject(isNotFound(err) ? { code: 404, message: `container not found: ${(err as Error).message}` }
      : { code: 500, message: (err as Error).message });
  }
}

async function serveLogs({ cri }: StreamDeps, req: LogsRequest, stream: TunnelStream): Promise<void> {
  const st = await cri.containerStatus(req.containerId);
  const path = st.status?.logPath;
  // Checked before accepting, so a missing file is an error status rather than an empty body.
  if (!path || !(await access(path).then(() => true, () => false))) {
    return stream.reject({ code: 404, message: `container "${req.container}" in pod "${req.pod}" has no log file` });
  }
  const running = async () => {
    try {
      return (await cri.containerStatus(req.containerId)).status?.state === RUNNING;
    } catch {
      return false;
    }
  };
  const source = containerLogStream(path, {
    tailLines: req.tailLines,
    since: req.sinceTime ? new Date(req.sinceTime) : undefined,
    timestamps: req.timestamps,
    limitBytes: req.limitBytes,
    follow: req.follow && st.status?.state === RUNNING,
    isRunning: running,
  });
  stream.accept();
  pipeline(source, stream, () => undefined);
}

/**
 * Removes a local-path volume's directory. Only a directory named as the provisioner names them is
 * removed, so a confused or compromised caller cannot point this at anything else on the host.
 */
async function removeLocalPath(path: string, stream: TunnelStream): Promise<void> {
  if (typeof path !== 'string' || !isAbsolute(path) || normalize(path) !== path || !LOCAL_PATH_DIR.test(basename(path))) {
    return stream.reject({ code: 400, message: `not a local-path volume directory: ${JSON.stringify(path)}` });
  }
  await rm(path, { recursive: true, force: true });
  log.info({ path }, 'removed local-path volume');
  stream.accept();
  stream.end();
}

async function serveExec({ cri }: StreamDeps, req: ExecRequest, stream: TunnelStream): Promise<void> {
  const flags = { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, tty: req.tty };
  const url = req.op === 'exec'
    ? await cri.exec({ containerId: req.containerId, cmd: req.cmd ?? [], ...flags })
    : await cri.attach({ containerId: req.containerId, ...flags });
  await proxy(url, req.head, stream);
}

async function servePortForward({ cri }: StreamDeps, req: PortForwardRequest, stream: TunnelStream): Promise<void> {
  const sandboxId = await findSandbox(cri, req);
  if (!sandboxId) return stream.reject({ code: 404, message: 'pod sandbox not found on this node' });
  await proxy(await cri.portForward(sandboxId, req.ports), req.head, stream);
}

async function findSandbox(cri: CriClient, req: PortForwardRequest): Promise<string | undefined> {
  if (req.containerId) {
    const [c] = await cri.listContainers({ id: req.containerId });
    if (c?.podSandboxId) return c.podSandboxId;
  }
  if (!req.podUid) return undefined;
  const sandboxes = await cri.listPodSandbox({ labelSelector: { 'io.kubernetes.pod.uid': req.podUid } });
  return sandboxes.find((s) => s.state === 'SANDBOX_READY')?.id;
}

/** Connects to the runtime's streaming URL, replays the upgrade request, then splices. */
function proxy(rawUrl: string, head: UpgradeHead, stream: TunnelStream): Promise<void> {
  const url = new URL(rawUrl);
  if (url.protocol !== 'http:') {
    // containerd serves plain HTTP on loopback unless configured with TLS, which skiff never does.
    stream.reject({ code: 500, message: `unsupported streaming URL scheme ${url.protocol}` });
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const sock = connect(Number(url.port || 80), url.hostname);
    sock.once('error', (err) => {
      stream.reject({ code: 500, message: `error dialing the container runtime's streaming server: ${err.message}` });
      resolve();
    });
    sock.once('connect', () => {
      sock.removeAllListeners('error');
      sock.write(requestHead(head, `${url.pathname}${url.search}`, url.host));
      stream.accept();
      sock.pipe(stream);
      stream.pipe(sock);
      // When the runtime hangs up, it has often written more than the server's credit let through
      // yet: the end of a large output, then the exit status. So the stream is ended, which sends
      // what is queued first, never destroyed, which would reset it and drop the rest. That holds
      // for a reset too: containerd closes right after the status, and frames we send as it closes
      // (our half-closes) make its kernel answer with a reset.
      const hungUp = () => { sock.destroy(); if (!stream.writableEnded) stream.end(); };
      sock.on('error', hungUp);
      sock.once('close', hungUp);
      stream.once('close', () => sock.destroy());
      resolve();
    });
  });
}

function requestHead(head: UpgradeHead, path: string, host: string): string {
  let text = `${head.method} ${path} HTTP/1.1\r\nHost: ${host}\r\n`;
  for (let i = 0; i + 1 < head.rawHeaders.length; i += 2) {
    const name = head.rawHeaders[i]!;
    const value = head.rawHeaders[i + 1]!;
    // The server already dropped credentials; a header with a line break could smuggle a request.
    if (/[\r\n]/.test(name) || /[\r\n]/.test(value) || name.toLowerCase() === 'host') continue;
    text += `${name}: ${value}\r\n`;
  }
  return text + '\r\n';
}
