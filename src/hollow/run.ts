// `skiff hollow`: joins N simulated nodes through the real join flow and runs them as a fleet. Joins
// go a few at a time (k3s advises joining agents in batches), each node then talks to the API server
// over its own keep-alive HTTPS client with its own certificate.
import https from 'node:https';
import { HttpClient } from '../client/http.js';
import { Reachability } from '../client/reachability.js';
import { parseToken } from '../pki/token.js';
import { logger } from '../util/log.js';
import { VERSION } from '../version.js';
import { join } from 'node:path';
import { ensureNodeCredentials, fetchTrustedCaBundle } from '../agent/join.js';
import { NODE_CONNECT_TIMEOUT_MS } from '../agent/node-objects.js';
import { HollowFleet, type FleetTimings } from './fleet.js';
import type { Taint } from './objects.js';

export interface HollowConfig extends FleetTimings {
  server: string;
  token: string;
  count: number;
  namePrefix: string;
  /** Index (name suffix and address ordinal) of the first node, so several processes can split one fleet. */
  firstIndex?: number;
  labels: Record<string, string>;
  taints: Taint[];
  dataDir: string;
  /** Nodes joining at once. */
  joinConcurrency: number;
}

const log = logger('hollow');

/** Joins and starts every node; rejects (stopping what started) if the CA pin or a join fails. */
export async function runHollow(c: HollowConfig): Promise<HollowFleet> {
  const token = parseToken(c.token, 'node');
  if (!token.caHash) log.warn('the token pins no CA hash: trusting whatever certificate the server presents at /cacerts');
  const caBundle = await fetchTrustedCaBundle(c.server, token);
  const joinAgent = new https.Agent({ keepAlive: true, ca: caBundle, maxSockets: c.joinConcurrency });
  // One per process: while the server is down, the nodes' retries fail without each dialling it.
  const url = new URL(c.server);
  const reachability = new Reachability({ host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 443) });
  const fleet = new HollowFleet(c, reachability);
  const started = Date.now();
  let next = 0;
  let failed = false;
  const joiner = async (): Promise<void> => {
    for (let i = next++; i < c.count && !failed; i = next++) {
      const ordinal = (c.firstIndex ?? 0) + i;
      const name = `${c.namePrefix}${ordinal}`;
      const creds = await ensureNodeCredentials(name, { server: c.server, credentialsDir: join(c.dataDir, 'hollow', 'nodes'), token, caBundle, agent: joinAgent });
      const client = new HttpClient({
        server: c.server, caPem: creds.caPem, certPem: creds.certPem, keyPem: creds.keyPem,
        userAgent: `kubelet/${VERSION.gitVersion} (linux/hollow) skiff-hollow`, reachability, connectTimeoutMs: NODE_CONNECT_TIMEOUT_MS,
      });
      await fleet.startNode({ name, ordinal, client, labels: c.labels, taints: c.taints });
    }
  };
  // Settled, not raced: after a failure the other joiners finish their current node before the
  // fleet is stopped, so nothing is left running.
  const results = await Promise.allSettled(Array.from({ length: Math.max(1, Math.min(c.joinConcurrency, c.count)) },
    () => joiner().catch((err: unknown) => { failed = true; throw err; })));
  joinAgent.destroy();
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) {
    await fleet.stop();
    throw failure.reason;
  }
  log.info({ nodes: fleet.size, ms: Date.now() - started }, 'hollow nodes registered');
  return fleet;
}
