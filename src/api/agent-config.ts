// The cluster-wide settings an agent takes from its server rather than from its own flags, as a k3s
// agent reads `/v1-k3s/config` at start: the pod network backend is chosen once for the whole
// cluster (`skiff server --flannel-backend`), since nodes on different backends cannot reach each
// other's pods.

/** Served by the server to agents holding the join token (or a node certificate). */
export const AGENT_CONFIG_PATH = '/v1-skiff/config';

/** k3s's `--flannel-backend` values that skiff implements (k3s also has wireguard-native). */
export const FLANNEL_BACKENDS = ['vxlan', 'host-gw', 'none'] as const;
export type FlannelBackend = typeof FLANNEL_BACKENDS[number];
export const DEFAULT_FLANNEL_BACKEND: FlannelBackend = 'vxlan';

export interface AgentClusterConfig {
  flannelBackend: FlannelBackend;
  clusterCidr: string;
  /** `skiff server --disable ingress`: no agent runs the ingress proxy. */
  disableIngress?: boolean;
}

export function isFlannelBackend(v: unknown): v is FlannelBackend {
  return typeof v === 'string' && (FLANNEL_BACKENDS as readonly string[]).includes(v);
}

/** A flag value checked against the backends skiff has, with a message naming them. */
export function parseFlannelBackend(v: string): FlannelBackend {
  if (isFlannelBackend(v)) return v;
  throw new Error(`--flannel-backend: unknown backend "${v}": one of ${FLANNEL_BACKENDS.join(', ')}`);
}
