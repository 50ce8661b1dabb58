// Keeps the agent's load balancer on the cluster's live servers: reads the `kubernetes` Endpoints in
// `default` (which list every live API server) every period, and whenever the set changes hands it
// to the balancer and writes it under the data dir. A node may `get` endpoints but not watch them
// (the kubelet's role), so this is a poll of one small object; k3s's agent watches the same object.
import { Resources } from '../../client/types.js';
import type { HttpClient } from '../../client/http.js';
import type { AgentLoadBalancer } from './balancer.js';
import { addressOfUrl, addressesFromEndpoints, mergeAddresses, saveServerList } from './server-list.js';
import { logger } from '../../util/log.js';

const log = logger('agent-lb');
const PERIOD_MS = 10_000;

export interface FollowOptions {
  client: Pick<HttpClient, 'get'>;
  balancer: AgentLoadBalancer;
  dataDir: string;
  /** The `--server` URL; always kept in the list, as k3s keeps its default server. */
  serverUrl: string;
  periodMs?: number;
}

export interface EndpointsFollower {
  /** One read now (the first one is awaited at start). */
  refresh(): Promise<void>;
  stop(): void;
}

export function followServerEndpoints(o: FollowOptions): EndpointsFollower {
  const joined = addressOfUrl(o.serverUrl);
  let last = o.balancer.servers().join(',');
  let stopped = false;
  const refresh = async () => {
    let ep: unknown;
    try {
      ep = await o.client.get(Resources.endpoints, 'default', 'kubernetes');
    } catch (err) {
      log.debug({ err: err instanceof Error ? err.message : String(err) }, 'reading the kubernetes endpoints failed; keeping the server list');
      return;
    }
    const found = addressesFromEndpoints(ep);
    // An empty or unreadable object says nothing about the servers: keep what is known.
    if (stopped || found.length === 0) return;
    const next = mergeAddresses(joined, found);
    if (next.join(',') === last) return;
    last = next.join(',');
    o.balancer.setServers(next);
    try {
      saveServerList(o.dataDir, o.serverUrl, next);
    } catch (err) {
      log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not store the server list');
    }
  };
  const timer = setInterval(() => { void refresh(); }, o.periodMs ?? PERIOD_MS);
  timer.unref();
  return { refresh, stop: () => { stopped = true; clearInterval(timer); } };
}
