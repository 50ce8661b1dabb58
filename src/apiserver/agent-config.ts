// The server's half of AGENT_CONFIG_PATH: the cluster-wide settings agents apply at start (k3s serves
// the same at /v1-k3s/config). Answered to holders of the join token, as the join route, or of a node
// certificate (an agent that already joined), never to anyone else.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { AGENT_CONFIG_PATH, type AgentClusterConfig } from '../api/agent-config.js';
import { errors } from '../api/status.js';
import { sendJson } from './http.js';
import { NODES_GROUP } from './node-authorizer.js';

export interface AgentConfigDeps {
  tokenSecret: string;
  config: AgentClusterConfig;
}

/** Handles the config route; returns false for any other path. */
export function handleAgentConfig(deps: AgentConfigDeps, req: IncomingMessage, res: ServerResponse, user: { groups?: string[] } | null): boolean {
  if ((req.url ?? '').split('?')[0] !== AGENT_CONFIG_PATH) return false;
  if (req.method !== 'GET') throw errors.methodNotAllowed(req.method ?? '');
  const auth = String(req.headers.authorization ?? '');
  const given = Buffer.from(auth.startsWith('Bearer ') ? auth.slice(7).trim() : '');
  const secret = Buffer.from(deps.tokenSecret);
  const tokenOk = given.length === secret.length && timingSafeEqual(given, secret);
  if (!tokenOk && !user?.groups?.includes(NODES_GROUP)) throw errors.unauthorized('the agent config needs the join token or a node certificate');
  sendJson(res, 200, deps.config);
  return true;
}
