// Node join: an agent that knows the cluster token trades it for node credentials (a client
// certificate for `system:node:<name>` in group `system:nodes`). As with k3s, each node also proves a
// per-node password on every join, kept hashed in a kube-system Secret, so another machine cannot
// take over an existing node's name.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { BUILTIN_KINDS } from '../api/kinds.js';
import type { ObjectService, Actor } from './objects.js';
import { ApiError, errors } from '../api/status.js';
import { readBody, sendJson } from './http.js';
import { parseJson } from './decode.js';
import { logger } from '../util/log.js';
import { GuessLimiter } from '../util/guess-limiter.js';
import { sameSecret } from '../pki/token.js';
import { agentSkewRefusal, minorsBehind, releaseVersion } from '../release-version.js';

const log = logger('node-join');
export const JOIN_PATH = '/v1-skiff/node-credentials';
const SECRET = BUILTIN_KINDS.find((k) => k.group === '' && k.plural === 'secrets')!;
const NAME_RE = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const actor: Actor = { user: 'system:skiff-join', groups: ['system:masters'], manager: 'skiff-join' };

export interface JoinDeps {
  objects: ObjectService;
  /** The cluster token's secret part (what follows `::server:` in K10 tokens). */
  tokenSecret: string;
  issueNodeCert(name: string): Promise<{ certPem: string; keyPem: string }>;
  serverCaPem: string;
  /** This server's release version (default: the running program's); the skew rule compares with it. */
  serverVersion?: string;
}

/** `agentVersion`: the joining agent's release version (absent from agents predating the skew rule). */
export interface JoinRequest { nodeName: string; nodePassword: string; agentVersion?: string }

/** Handles the join route; returns false for any other path. */
export async function handleJoin(deps: JoinDeps, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const path = (req.url ?? '').split('?')[0];
  if (path !== JOIN_PATH) return false;
  if (req.method !== 'POST') throw errors.methodNotAllowed(req.method ?? '');
  const auth = String(req.headers.authorization ?? '');
  const given = auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';
  const source = req.socket.remoteAddress ?? '';
  const wait = guesses.blockedFor(source);
  if (wait > 0) throw errors.tooManyRequests('too many failed join attempts from this address, please try again later', wait);
  if (!given || !sameSecret(given, deps.tokenSecret)) { guesses.fail(source); throw errors.unauthorized('invalid join token'); }
  const body = parseJson(await readBody(req, 64 * 1024)) as Partial<JoinRequest>;
  const name = String(body?.nodeName ?? '');
  const password = String(body?.nodePassword ?? '');
  if (!NAME_RE.test(name) || name.length > 253) throw errors.badRequest(`invalid node name "${name}": must be a lowercase RFC 1123 subdomain`);
  if (password.length < 16) throw errors.badRequest('nodePassword: must be at least 16 characters');
  // Version skew (issue 14 item 6): checked before the node password is stored, so a refused agent
  // leaves nothing behind.
  const agentVersion = typeof body?.agentVersion === 'string' ? body.agentVersion : undefined;
  const serverVersion = deps.serverVersion ?? releaseVersion();
  const refusal = agentSkewRefusal(serverVersion, agentVersion);
  if (refusal) {
    log.warn({ node: name, agentVersion, serverVersion }, 'join refused: agent newer than server');
    throw new ApiError(403, 'Forbidden', `node "${name}": ${refusal}`);
  }
  if (agentVersion && minorsBehind(serverVersion, agentVersion) > 1) {
    log.warn({ node: name, agentVersion, serverVersion }, 'agent more than one minor behind the server: supported is one; upgrade it');
  }
  await checkNodePassword(deps.objects, name, password);
  const cert = await deps.issueNodeCert(name);
  log.info({ node: name }, 'issued node credentials');
  sendJson(res, 200, { nodeName: name, certPem: cert.certPem, keyPem: cert.keyPem, caPem: deps.serverCaPem });
  return true;
}

async function checkNodePassword(objects: ObjectService, node: string, password: string): Promise<void> {
  const secretName = `${node}.node-password.skiff`;
  const hash = createHash('sha256').update(password).digest('hex');
  const existing = objects.tryGet(SECRET, 'kube-system', secretName);
  if (existing) {
    const stored = Buffer.from(existing.obj.data?.hash ?? '', 'base64').toString('utf8');
    if (!sameSecret(stored, hash)) {
      throw new ApiError(403, 'Forbidden', `Node password rejected, duplicate hostname or contents of the node password file may not match the server's entry for node "${node}": give this machine a unique --node-name, or delete the secret kube-system/${secretName} if the node was rebuilt`);
    }
    return;
  }
  try {
    await objects.create(SECRET, 'kube-system', {
      apiVersion: 'v1', kind: 'Secret', type: 'skiff.io/node-password',
      metadata: { name: secretName, namespace: 'kube-system', labels: { 'skiff.io/node': node } },
      data: { hash: Buffer.from(hash).toString('base64') },
    }, { actor });
  } catch (e: any) {
    if (e?.code === 409) return checkNodePassword(objects, node, password);
    throw e;
  }
}

const guesses = new GuessLimiter(10, 60_000);

