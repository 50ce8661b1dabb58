// The agent↔server tunnel's wire format. One WebSocket per node, dialled by the agent (nodes need no
// inbound port), carries many byte streams at once. Each binary WebSocket message is one frame:
//
//   [type: u8][stream id: u32 big-endian][payload]
//
// Only the server opens streams (OPEN with a JSON StreamRequest); the agent answers ACCEPT or RESET.
// Flow control is per stream and credit-based (as in HTTP/2): a sender may have at most WINDOW bytes
// unacknowledged, and the receiver returns credit as its consumer reads, so one slow kubectl cannot
// make the agent buffer another stream's data, and a fast producer cannot flood the server's memory.

export const CONNECT_PATH = '/v1-skiff/connect';
/** The node name the agent claims; the server refuses a connection whose certificate names another. */
export const NODE_NAME_HEADER = 'x-skiff-node-name';

export const FrameType = { Open: 1, Accept: 2, Data: 3, End: 4, Reset: 5, Credit: 6 } as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export const HEADER_BYTES = 5;
/** Largest DATA payload: bigger writes are split so streams interleave fairly on the one socket. */
export const MAX_DATA_BYTES = 64 * 1024;
/** Bytes a sender may have in flight per stream before the receiver grants more. */
export const WINDOW_BYTES = 256 * 1024;

export function encodeFrame(type: FrameType, id: number, payload?: Buffer | string): Buffer {
  const body = payload === undefined ? undefined : typeof payload === 'string' ? Buffer.from(payload) : payload;
  const frame = Buffer.allocUnsafe(HEADER_BYTES + (body?.length ?? 0));
  frame.writeUInt8(type, 0);
  frame.writeUInt32BE(id, 1);
  body?.copy(frame, HEADER_BYTES);
  return frame;
}

export interface Frame {
  type: FrameType;
  id: number;
  payload: Buffer;
}

export function decodeFrame(buf: Buffer): Frame {
  if (buf.length < HEADER_BYTES) throw new Error(`tunnel frame too short (${buf.length} bytes)`);
  const type = buf.readUInt8(0) as FrameType;
  if (type < FrameType.Open || type > FrameType.Credit) throw new Error(`unknown tunnel frame type ${type}`);
  return { type, id: buf.readUInt32BE(1), payload: buf.subarray(HEADER_BYTES) };
}

export function encodeCredit(id: number, bytes: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(bytes, 0);
  return encodeFrame(FrameType.Credit, id, b);
}

/** Why a stream was refused or aborted; `code` is the HTTP status the server answers with. */
export interface ResetReason {
  code: number;
  message: string;
}

/** The raw HTTP request head of an upgrade, replayed by the agent against the runtime's streaming URL. */
export interface UpgradeHead {
  method: string;
  /** Node's rawHeaders: name, value, name, value... (repeated headers stay separate, as SPDY needs). */
  rawHeaders: string[];
}

export interface LogsRequest {
  op: 'logs';
  containerId: string;
  /** For messages only: `<namespace>/<pod>` and the container's name. */
  pod: string;
  container: string;
  follow?: boolean;
  tailLines?: number;
  /** RFC 3339 with nanoseconds; entries before it are skipped. */
  sinceTime?: string;
  timestamps?: boolean;
  limitBytes?: number;
}

export interface ExecRequest {
  op: 'exec' | 'attach';
  containerId: string;
  /** exec only. */
  cmd?: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
  head: UpgradeHead;
}

export interface PortForwardRequest {
  op: 'portforward';
  /** Any container of the pod: the agent finds the sandbox through it... */
  containerId?: string;
  /** ...or through the sandbox's `io.kubernetes.pod.uid` label. */
  podUid: string;
  /** Ports named in the URL (WebSocket v4 clients); SPDY clients name them per stream instead. */
  ports: number[];
  head: UpgradeHead;
}

/** A GET of one of the node's own HTTP paths (`nodes/<node>/proxy/<path>`), e.g. `/stats/summary`. */
export interface ProxyRequest {
  op: 'proxy';
  /** The node the server meant, which the agent reports as its name. */
  node: string;
  path: string;
}

/** Removes a local-path volume's directory (the PersistentVolume controller reclaiming it). */
export interface RemoveLocalPathRequest {
  op: 'remove-local-path';
  path: string;
}

/**
 * A TCP connection from the node to one of its pods (k3s's egress selector): the server reaches a
 * webhook or APIService endpoint pod through the node running it, so nodes behind NAT work.
 */
export interface DialRequest {
  op: 'dial';
  host: string;
  port: number;
}

/**
 * Fleet (src/fleet): a site's server dials its manager the way an agent dials its server, and the
 * manager opens these on that tunnel: `fleet-status` once per connection (the site writes its
 * heartbeats and reports into it), `fleet-api` per request a user sends the site through the manager
 * (raw HTTP/1.1 bytes, relayed to the site's own API port).
 */
export interface FleetStatusRequest {
  op: 'fleet-status';
}
export interface FleetApiRequest {
  op: 'fleet-api';
}
/** Bundles: the manager sends the site its deployments, the site answers with their status (NDJSON both ways). */
export interface FleetBundlesRequest {
  op: 'fleet-bundles';
}

export type StreamRequest = LogsRequest | ExecRequest | PortForwardRequest | ProxyRequest | RemoveLocalPathRequest | DialRequest
  | FleetStatusRequest | FleetApiRequest | FleetBundlesRequest;
