// The join flow every node goes through (the agent's, and the hollow node's): download the CA bundle from
// /cacerts without trusting anything, check it against the hash the token pins (refusing before any
// secret is sent when it differs), then trade the token and the node's own password for a client
// certificate. Password and credentials are kept under the data dir and reused on restart, so a
// restarted hollow process keeps its node names.
import https from 'node:https';
import { X509Certificate, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { caHashMatches, pemBlocks, pinnedBlock, type ParsedToken } from '../pki/token.js';
import { AGENT_CONFIG_PATH, DEFAULT_FLANNEL_BACKEND, isFlannelBackend, type AgentClusterConfig } from '../api/agent-config.js';
import { releaseVersion } from '../release-version.js';

export const JOIN_PATH = '/v1-skiff/node-credentials';
/** How long a join keeps retrying a busy or silent server before it gives up. */
const JOIN_RETRY_MS = 5 * 60_000;
const TRANSIENT = /ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|EAI_AGAIN|socket hang up|no answer within/;
/** Renew (rejoin) when the certificate has less than this left. */
const RENEW_BEFORE_MS = 24 * 3600 * 1000;

export interface NodeCredentials {
  nodeName: string;
  nodePassword: string;
  certPem: string;
  keyPem: string;
  /** The serving CA, which the node's HTTPS client trusts. */
  caPem: string;
}

export class CaMismatchError extends Error {}

/** One unauthenticated GET over TLS; `ca` undefined means no verification (only for /cacerts). */
function request(url: URL, opts: { method: string; ca?: string; headers?: Record<string, string>; body?: string; agent?: https.Agent;
  cert?: { certPem: string; keyPem: string } }): Promise<{ status: number; body: string; retryAfter?: number }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      method: opts.method,
      headers: opts.headers,
      agent: opts.agent,
      ...(opts.cert ? { cert: opts.cert.certPem, key: opts.cert.keyPem } : {}),
      ...(opts.agent ? {} : opts.ca ? { ca: opts.ca } : { rejectUnauthorized: false }),
      timeout: 30_000,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      const retryAfter = Number(res.headers['retry-after']);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'),
        ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfter } : {}) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${opts.method} ${url.pathname}: no answer within 30 s`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/**
 * The server's CA bundle, checked against the token's pin. A bare-password token has no pin: the
 * bundle is then taken on trust (k3s allows that too; it is the insecure form).
 */
export async function fetchTrustedCaBundle(server: string, token: ParsedToken, trusted?: string): Promise<string> {
  const r = await request(new URL('/cacerts', server), { method: 'GET' });
  if (r.status !== 200) throw new Error(`GET ${server}/cacerts: HTTP ${r.status} ${r.body.slice(0, 200)}`);
  if (token.caHash && !caHashMatches(token.caHash, r.body)) {
    // After a CA rotation (`skiff certificate rotate-ca`) the bundle no longer hashes to the pin. It is
    // still trusted when the server proves it over TLS: with a chain to the pinned CA (during the
    // overlap the bundle holds it and the server presents the new CA cross-signed by it), or to the
    // bundle this node adopted earlier (`trusted`, from its stored credentials).
    const pinned = pinnedBlock(token.caHash, r.body);
    for (const ca of [pinned, trusted]) {
      if (!ca) continue;
      const verified = await request(new URL('/cacerts', server), { method: 'GET', ca }).catch(() => undefined);
      if (verified?.status === 200) return verified.body;
    }
    throw new CaMismatchError(`the CA certificate served by ${server} does not match the hash in the token: wrong server address, `
      + 'a rebuilt server (get its current token with `skiff token show`), or someone in between; refusing to send the token');
  }
  return r.body;
}

/**
 * Joins through the server's join endpoint. `agent` (trusting the fetched bundle) lets many joins
 * share connections; the token's password goes only to a server whose certificate chains to it.
 */
export async function requestNodeCredentials(server: string, caBundle: string, tokenPassword: string,
  nodeName: string, nodePassword: string, agent?: https.Agent, retryForMs = JOIN_RETRY_MS): Promise<NodeCredentials> {
  const body = JSON.stringify({ nodeName, nodePassword, agentVersion: releaseVersion() });
  const send = () => request(new URL(JOIN_PATH, server), {
    method: 'POST', ca: caBundle, agent, body,
    headers: { authorization: `Bearer ${tokenPassword}`, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
  });
  // A busy server (a join storm: certificates are issued a few at a time) answers 429 with
  // Retry-After, or not within the request timeout: try again, spread out, until `retryForMs` has
  // passed. A join is safe to repeat: the same node password gets a fresh certificate.
  const deadline = Date.now() + retryForMs;
  let r: { status: number; body: string; retryAfter?: number } | undefined;
  for (let attempt = 0; ; attempt++) {
    let failure: unknown;
    r = undefined;
    try {
      r = await send();
      if (r.status !== 429 && r.status !== 503) break;
    } catch (err) {
      // Only what a busy or restarting server causes; a certificate that does not verify is final.
      if (!TRANSIENT.test(String((err as NodeJS.ErrnoException).code ?? '') + ' ' + String((err as Error).message))) throw err;
      failure = err;
    }
    const waitMs = Math.min(30_000, r?.retryAfter ? r.retryAfter * 1000 : 1000 * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random());
    if (Date.now() + waitMs > deadline) {
      if (!r) throw failure;
      break;
    }
    await new Promise((res) => setTimeout(res, waitMs));
  }
  if (r.status !== 200) {
    let message = r.body.slice(0, 500);
    try { message = JSON.parse(r.body).message ?? message; } catch { /* not a Status */ }
    throw new Error(`node ${nodeName}: join refused (HTTP ${r.status}): ${message}`);
  }
  const reply = JSON.parse(r.body) as { certPem: string; keyPem: string; caPem: string };
  return { nodeName, nodePassword, certPem: reply.certPem, keyPem: reply.keyPem, caPem: reply.caPem };
}

/** The CA bundle a node trusted last (its stored credentials'), for fetchTrustedCaBundle. */
export function storedCaBundle(dir: string, nodeName: string): string | undefined {
  return readStored(credentialsPath(dir, nodeName))?.caPem;
}

/** Where a node's password and credentials live: one 0600 JSON file per node, in `dir`. */
export function credentialsPath(dir: string, nodeName: string): string {
  return join(dir, `${nodeName}.json`);
}

function readStored(path: string): Partial<NodeCredentials> | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Partial<NodeCredentials>;
  } catch {
    return undefined;
  }
}

function writeStored(path: string, creds: NodeCredentials): void {
  mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(creds) + '\n', { mode: 0o600 });
  renameSync(tmp, path);
}

/** Whether stored credentials can be used as they are: complete, not near expiry, from this server's CA. */
function usable(c: Partial<NodeCredentials>, caBundle: string, now: number): c is NodeCredentials {
  if (!c.certPem || !c.keyPem || !c.caPem || !c.nodePassword) return false;
  try {
    const cert = new X509Certificate(c.certPem);
    if (Date.parse(cert.validTo) - now < RENEW_BEFORE_MS) return false;
    // The serving CA must still be one the server publishes, else the server was rebuilt (after a
    // CA rotation the stored bundle may hold a CA the server no longer serves: one of them suffices).
    return pemBlocks(c.caPem).some((b) => caBundle.includes(b.trim()));
  } catch {
    return false;
  }
}

export interface EnsureOptions {
  server: string;
  /** Folder of the credential files (the agent's: <data-dir>/agent/credentials). */
  credentialsDir: string;
  token: ParsedToken;
  caBundle: string;
  agent?: https.Agent;
  now?: number;
}

/** Stored credentials when still good, else a (re)join with the stored or a new node password. */
export async function ensureNodeCredentials(nodeName: string, o: EnsureOptions): Promise<NodeCredentials> {
  const path = credentialsPath(o.credentialsDir, nodeName);
  const stored = readStored(path) ?? {};
  if (usable(stored, o.caBundle, o.now ?? Date.now())) return stored;
  const nodePassword = stored.nodePassword ?? randomBytes(16).toString('hex');
  const creds = await requestNodeCredentials(o.server, o.caBundle, o.token.password, nodeName, nodePassword, o.agent);
  writeStored(path, creds);
  return creds;
}

/**
 * The cluster-wide settings this node must follow (the pod network backend), from its server. A
 * server that predates the route (404) means the defaults; an unknown backend is refused rather
 * than guessed, since a node on the wrong backend cannot reach the other nodes' pods.
 */
export async function fetchAgentConfig(server: string, caBundle: string, tokenPassword: string,
  creds?: { certPem: string; keyPem: string }): Promise<AgentClusterConfig> {
  // With the node's certificate too: a joined node still reads it after `skiff token rotate`.
  const r = await request(new URL(AGENT_CONFIG_PATH, server), { method: 'GET', ca: caBundle, cert: creds, headers: { authorization: `Bearer ${tokenPassword}` } });
  if (r.status === 404) return { flannelBackend: DEFAULT_FLANNEL_BACKEND, clusterCidr: '10.42.0.0/16' };
  if (r.status !== 200) throw new Error(`GET ${server}${AGENT_CONFIG_PATH}: HTTP ${r.status} ${r.body.slice(0, 200)}`);
  const c = JSON.parse(r.body) as Partial<AgentClusterConfig>;
  if (!isFlannelBackend(c.flannelBackend)) throw new Error(`the server asks for pod network backend "${String(c.flannelBackend)}", which this agent does not have`);
  return { flannelBackend: c.flannelBackend, clusterCidr: String(c.clusterCidr ?? '10.42.0.0/16'), disableIngress: c.disableIngress === true };
}
