// A typed, promise-based CRI v1 client over gRPC on a unix socket: the only way the agent talks to a
// container runtime (containerd today, any CRI runtime through --container-runtime-endpoint).
import * as grpc from '@grpc/grpc-js';
import { criPackageDefinition } from './cri-proto.js';
import type {
  AuthConfig, Container, ContainerConfig, ContainerFilter, ContainerStats, ContainerStatusResponse,
  ExecSyncResponse, FilesystemUsage, Image, ImageSpec, LinuxContainerResources, PodSandbox,
  PodSandboxConfig, PodSandboxFilter, PodSandboxStats, PodSandboxStatusResponse, StatusResponse,
  VersionResponse,
} from './cri-types.js';

export interface CriClientOptions {
  /** Deadline of an ordinary call; kubelet's default runtime request timeout is 2 minutes. */
  timeoutMs?: number;
  /** Deadline of a pull, which downloads whole images. */
  pullTimeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 120_000;
const DEFAULT_PULL_TIMEOUT_MS = 30 * 60_000;
/** ExecSync's own timeout is enforced by the runtime; give the call a little longer so its answer arrives. */
const EXEC_SYNC_MARGIN_MS = 5_000;
/** Container lists of a busy node exceed gRPC's 4 MiB default; kubelet allows 16 MiB. */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** A failed CRI call: which RPC, the gRPC status, and the runtime's own message. */
export class CriError extends Error {
  constructor(
    readonly rpc: string,
    readonly code: grpc.status,
    readonly details: string,
    readonly endpoint: string,
  ) {
    const what = code === grpc.status.UNAVAILABLE ? `runtime not reachable at ${endpoint}: ${details}`
      : code === grpc.status.DEADLINE_EXCEEDED ? `timed out: ${details}`
      : details;
    super(`CRI ${rpc} failed (${grpc.status[code] ?? code}): ${what}`);
    this.name = 'CriError';
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof CriError && err.code === grpc.status.NOT_FOUND;
}

export function isUnavailable(err: unknown): boolean {
  return err instanceof CriError && err.code === grpc.status.UNAVAILABLE;
}

/** `/run/x.sock`, `unix:///run/x.sock` and `unix:/run/x.sock` all name the same socket. */
export function criTarget(endpoint: string): string {
  const path = endpoint.replace(/^unix:(\/\/)?/, '');
  if (!path.startsWith('/')) throw new Error(`CRI endpoint must be an absolute unix socket path: ${endpoint}`);
  return `unix://${path}`;
}

type Unary = (req: unknown, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: any) => void) => void;

export class CriClient {
  private readonly runtime: grpc.Client;
  private readonly images: grpc.Client;
  private readonly timeoutMs: number;
  private readonly pullTimeoutMs: number;

  constructor(readonly endpoint: string, opts: CriClientOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.pullTimeoutMs = opts.pullTimeoutMs ?? DEFAULT_PULL_TIMEOUT_MS;
    const pkg = grpc.loadPackageDefinition(criPackageDefinition()) as any;
    const target = criTarget(endpoint);
    const channelOptions: grpc.ChannelOptions = {
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
      // A restarted containerd is back within a second or two; gRPC's default backoff (up to 120 s)
      // would leave the agent blind long after that.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 2_000,
    };
    const creds = grpc.credentials.createInsecure();
    this.runtime = new pkg.runtime.v1.RuntimeService(target, creds, channelOptions);
    // Share one connection: the second client reuses the first one's channel.
    this.images = new pkg.runtime.v1.ImageService(target, creds, { ...channelOptions, channelOverride: this.runtime.getChannel() });
  }

  /** Told of every CRI call's duration (the agent's kubelet_runtime_operations_* metrics). */
  onCall?: (rpc: string, seconds: number, failed: boolean) => void;

  private call<T>(client: grpc.Client, rpc: string, req: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    const method = (client as unknown as Record<string, Unary>)[rpc];
    if (typeof method !== 'function') throw new Error(`CRI method ${rpc} is not defined`);
    const t0 = performance.now();
    return new Promise<T>((resolve, reject) => {
      method.call(client, req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
        this.onCall?.(rpc, (performance.now() - t0) / 1000, err !== null);
        if (err) reject(new CriError(rpc, err.code, err.details || err.message, this.endpoint));
        else resolve(res as T);
      });
    });
  }

  private rt<T>(rpc: string, req: unknown, timeoutMs?: number): Promise<T> {
    return this.call<T>(this.runtime, rpc, req, timeoutMs);
  }

  private img<T>(rpc: string, req: unknown, timeoutMs?: number): Promise<T> {
    return this.call<T>(this.images, rpc, req, timeoutMs);
  }

  // ── runtime ──────────────────────────────────────────────────────────────

  version(timeoutMs?: number): Promise<VersionResponse> {
    return this.rt('Version', { version: 'v1' }, timeoutMs);
  }

  /** RuntimeReady and NetworkReady conditions (NetworkReady is false until a CNI config exists). */
  status(verbose = false): Promise<StatusResponse> {
    return this.rt('Status', { verbose });
  }

  /** Resolves once the runtime answers Version, retrying while its socket is absent or not serving. */
  async waitReady(timeoutMs: number): Promise<VersionResponse> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await this.version(Math.max(100, Math.min(2_000, until - Date.now())));
      } catch (err) {
        // Something serves the socket but not CRI v1 (e.g. containerd with its CRI plugin failed):
        // waiting will not help.
        if (err instanceof CriError && err.code === grpc.status.UNIMPLEMENTED) throw err;
        if (Date.now() >= until) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  async runPodSandbox(config: PodSandboxConfig, runtimeHandler = ''): Promise<string> {
    const res = await this.rt<{ podSandboxId: string }>('RunPodSandbox', { config, runtimeHandler });
    return res.podSandboxId;
  }

  /** Idempotent: stopping a stopped sandbox succeeds. Kills its containers and tears down its network. */
  async stopPodSandbox(podSandboxId: string): Promise<void> {
    await this.rt('StopPodSandbox', { podSandboxId });
  }

  /** Idempotent: removing an absent sandbox succeeds. */
  async removePodSandbox(podSandboxId: string): Promise<void> {
    await this.rt('RemovePodSandbox', { podSandboxId });
  }

  podSandboxStatus(podSandboxId: string, verbose = false): Promise<PodSandboxStatusResponse> {
    return this.rt('PodSandboxStatus', { podSandboxId, verbose });
  }

  async listPodSandbox(filter?: PodSandboxFilter): Promise<PodSandbox[]> {
    const res = await this.rt<{ items: PodSandbox[] }>('ListPodSandbox', { filter });
    return res.items;
  }

  async createContainer(podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string> {
    const res = await this.rt<{ containerId: string }>('CreateContainer', { podSandboxId, config, sandboxConfig });
    return res.containerId;
  }

  async startContainer(containerId: string): Promise<void> {
    await this.rt('StartContainer', { containerId });
  }

  /** Signals the stop signal, then SIGKILL after `timeoutSec` (0: at once). */
  async stopContainer(containerId: string, timeoutSec: number): Promise<void> {
    await this.rt('StopContainer', { containerId, timeout: timeoutSec }, timeoutSec * 1000 + this.timeoutMs);
  }

  async removeContainer(containerId: string): Promise<void> {
    await this.rt('RemoveContainer', { containerId });
  }

  async listContainers(filter?: ContainerFilter): Promise<Container[]> {
    const res = await this.rt<{ containers: Container[] }>('ListContainers', { filter });
    return res.containers;
  }

  containerStatus(containerId: string, verbose = false): Promise<ContainerStatusResponse> {
    return this.rt('ContainerStatus', { containerId, verbose });
  }

  async updateContainerResources(containerId: string, linux: LinuxContainerResources): Promise<void> {
    await this.rt('UpdateContainerResources', { containerId, linux });
  }

  /** Asks the runtime to reopen the container's log file, after the agent rotated it. */
  async reopenContainerLog(containerId: string): Promise<void> {
    await this.rt('ReopenContainerLog', { containerId });
  }

  /** Runs `cmd` in the container and returns its output; `timeoutSec` 0 means no runtime-side limit. */
  execSync(containerId: string, cmd: string[], timeoutSec = 0): Promise<ExecSyncResponse> {
    const deadline = timeoutSec > 0 ? timeoutSec * 1000 + EXEC_SYNC_MARGIN_MS : this.timeoutMs;
    return this.rt('ExecSync', { containerId, cmd, timeout: timeoutSec }, deadline);
  }

  /** A one-time URL on the runtime's streaming server that runs `cmd` (SPDY/WebSocket, as kubelet proxies). */
  async exec(req: { containerId: string; cmd: string[]; tty?: boolean; stdin?: boolean; stdout?: boolean; stderr?: boolean }): Promise<string> {
    const res = await this.rt<{ url: string }>('Exec', req);
    return res.url;
  }

  async attach(req: { containerId: string; tty?: boolean; stdin?: boolean; stdout?: boolean; stderr?: boolean }): Promise<string> {
    const res = await this.rt<{ url: string }>('Attach', req);
    return res.url;
  }

  async portForward(podSandboxId: string, ports: number[]): Promise<string> {
    const res = await this.rt<{ url: string }>('PortForward', { podSandboxId, port: ports });
    return res.url;
  }

  async containerStats(containerId: string): Promise<ContainerStats | null> {
    const res = await this.rt<{ stats: ContainerStats | null }>('ContainerStats', { containerId });
    return res.stats;
  }

  async listContainerStats(filter?: { id?: string; podSandboxId?: string; labelSelector?: Record<string, string> }): Promise<ContainerStats[]> {
    const res = await this.rt<{ stats: ContainerStats[] }>('ListContainerStats', { filter });
    return res.stats;
  }

  async podSandboxStats(podSandboxId: string): Promise<PodSandboxStats | null> {
    const res = await this.rt<{ stats: PodSandboxStats | null }>('PodSandboxStats', { podSandboxId });
    return res.stats;
  }

  async listPodSandboxStats(filter?: { id?: string; labelSelector?: Record<string, string> }): Promise<PodSandboxStats[]> {
    const res = await this.rt<{ stats: PodSandboxStats[] }>('ListPodSandboxStats', { filter });
    return res.stats;
  }

  // ── images ───────────────────────────────────────────────────────────────

  async listImages(filter?: ImageSpec): Promise<Image[]> {
    const res = await this.img<{ images: Image[] }>('ListImages', { filter: filter ? { image: filter } : undefined });
    return res.images;
  }

  /** The image, or null when the runtime does not have it (CRI answers with an empty image, not an error). */
  async imageStatus(image: string | ImageSpec): Promise<Image | null> {
    const spec = typeof image === 'string' ? { image } : image;
    const res = await this.img<{ image: Image | null }>('ImageStatus', { image: spec });
    return res.image && res.image.id ? res.image : null;
  }

  /** ImageStatus's verbose details (containerd: `info` is JSON with the image config, chain ID...). */
  async imageStatusInfo(image: string | ImageSpec): Promise<Record<string, string>> {
    const spec = typeof image === 'string' ? { image } : image;
    const res = await this.img<{ info: Record<string, string> }>('ImageStatus', { image: spec, verbose: true });
    return res.info;
  }

  /** Pulls and returns the image reference (its ID, `sha256:…`). */
  async pullImage(image: string | ImageSpec, auth?: AuthConfig, sandboxConfig?: PodSandboxConfig): Promise<string> {
    const spec = typeof image === 'string' ? { image } : image;
    const res = await this.img<{ imageRef: string }>('PullImage', { image: spec, auth, sandboxConfig }, this.pullTimeoutMs);
    return res.imageRef;
  }

  async removeImage(image: string | ImageSpec): Promise<void> {
    await this.img('RemoveImage', { image: typeof image === 'string' ? { image } : image });
  }

  async imageFsInfo(): Promise<{ imageFilesystems: FilesystemUsage[]; containerFilesystems: FilesystemUsage[] }> {
    return this.img('ImageFsInfo', {});
  }

  close(): void {
    this.images.close();
    this.runtime.close();
  }
}

/** A CRI int64 nanosecond timestamp as a Date (0 → null: "never"). */
export function nanosToDate(ns: string | number): Date | null {
  const n = BigInt(ns);
  return n === 0n ? null : new Date(Number(n / 1_000_000n));
}
