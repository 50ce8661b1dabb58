// Joining a server to an embedded etcd cluster (`skiff server --server https://first:6443 --token T`).
// As with k3s, the joining server authenticates with the cluster token against the first server, which
// adds it as an etcd member through its own etcd client and answers with the initial-cluster list and
// the cluster's CAs (etcd's two, plus the API server's and the service-account key, which k3s shares as
// bootstrap data), so every server issues its own certificates from the same authorities. The joining
// side checks the first server's CA against the token's pin before it sends the token.
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { ApiError, errors } from '../api/status.js';
import { readBody, sendJson } from '../apiserver/http.js';
import { parseJson } from '../apiserver/decode.js';
import { fetchTrustedCaBundle } from '../agent/join.js';
import { parseToken, sameSecret } from '../pki/token.js';
import { installEtcdCas, readEtcdCas, type EtcdCas } from '../pki/etcd-certs.js';
import { readIfExists, PUBLIC_MODE, SECRET_MODE, writeFileAtomic } from '../pki/pem-files.js';
import { SHARED_FILES } from './datastore-bootstrap.js';
import { logger } from '../util/log.js';
import { GuessLimiter } from '../util/guess-limiter.js';

const log = logger('etcd-join');

export const ETCD_JOIN_PATH = '/v1-skiff/etcd/members';
const NAME_RE = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/**
 * The API server's authorities and service-account key, shared by every server of a cluster (files
 * under server/tls): the required files of the one shared set, datastore-bootstrap.ts's.
 */
export const CLUSTER_FILES: readonly [string, number][] = SHARED_FILES
  .filter((f) => f.required && f.path.startsWith('tls/')).map((f): [string, number] => [f.path.slice('tls/'.length), f.mode]);

export interface EtcdJoinReply {
  /** `name=peerURL,...`, the new member included: its --initial-cluster. */
  initialCluster: string;
  etcdCas: EtcdCas;
  /** File name under server/tls → PEM text. */
  clusterFiles: Record<string, string>;
  /** The new member's id (it joins as a learner and is promoted once in sync). */
  memberId: string;
  /** Client URLs of the voting members, for the promotion. */
  clientURLs: string[];
}

export interface EtcdJoinDeps {
  dataDir: string;
  tokenSecret: string;
  etcd: () => Etcd3;
}


/** Failed token attempts per source address: ten a minute, then 429 (tokens are secrets). */
const guesses = new GuessLimiter(10, 60_000);

/** The first server's side; returns false (synchronously) for any other path. */
export function handleEtcdJoin(deps: EtcdJoinDeps | undefined, req: IncomingMessage, res: ServerResponse): false | Promise<true> {
  if ((req.url ?? '').split('?')[0] !== ETCD_JOIN_PATH) return false;
  return (async () => {
    if (!deps) throw new ApiError(400, 'BadRequest', 'this server does not run embedded etcd (start the first server with --cluster-init)');
    if (req.method !== 'POST') throw errors.methodNotAllowed(req.method ?? '');
    const source = req.socket.remoteAddress ?? '';
    const wait = guesses.blockedFor(source);
    if (wait > 0) throw errors.tooManyRequests('too many failed join attempts from this address, please try again later', wait);
    const auth = String(req.headers.authorization ?? '');
    const given = auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';
    if (!given || !sameSecret(given, deps.tokenSecret)) {
      guesses.fail(source);
      throw errors.unauthorized('invalid join token');
    }
    const body = parseJson(await readBody(req, 16 * 1024)) as { name?: unknown; peerURL?: unknown };
    const name = String(body?.name ?? '');
    const peerURL = String(body?.peerURL ?? '');
    if (!NAME_RE.test(name) || name.length > 253) throw errors.badRequest(`invalid member name "${name}"`);
    let u: URL;
    try { u = new URL(peerURL); } catch { throw errors.badRequest(`invalid peerURL "${peerURL}"`); }
    if (u.protocol !== 'https:' || !u.port || (u.pathname !== '/' && u.pathname !== '')) throw errors.badRequest(`invalid peerURL "${peerURL}": expected https://ip:port`);
    const client = deps.etcd();
    const { members } = await client.cluster.memberList({});
    const same = members.find((m) => m.peerURLs.includes(peerURL));
    let list = members;
    if (same && same.name && same.name !== name) {
      throw new ApiError(409, 'AlreadyExists', `etcd member ${same.name} already uses ${peerURL}: remove it first (etcdctl member remove) or give the new server another address`);
    }
    let memberId = same?.ID ?? '';
    if (!same) {
      // As a learner (k3s does the same): the quorum does not grow until the new member has caught
      // up, so a joiner that never starts cannot stall the cluster.
      const added = await addLearnerWhenReady(() => client.cluster.memberAdd({ peerURLs: [peerURL], isLearner: true }));
      list = added.members;
      memberId = added.member.ID;
      log.info({ name, peerURL }, 'added etcd learner member');
    }
    const initialCluster = list.flatMap((m) => m.peerURLs.map((p) => `${m.name || (m.peerURLs.includes(peerURL) ? name : '')}=${p}`))
      .filter((e) => !e.startsWith('=')).join(',');
    const clusterFiles: Record<string, string> = {};
    for (const [f] of CLUSTER_FILES) {
      const pem = readIfExists(join(deps.dataDir, 'server', 'tls', f));
      if (pem) clusterFiles[f] = pem;
    }
    const clientURLs = list.filter((m) => !m.isLearner).flatMap((m) => m.clientURLs);
    const reply: EtcdJoinReply = { initialCluster, etcdCas: readEtcdCas(deps.dataDir), clusterFiles, memberId, clientURLs };
    sendJson(res, 200, reply);
    return true as const;
  })();
}

function post(url: URL, ca: string, token: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      method: 'POST', ca, timeout: 60_000,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 60 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * etcd refuses a member change for a while after the last one: "unhealthy cluster" until the leader
 * has been connected to every member for 5 s, and "too many learner members" while the previous
 * joiner is still a learner. Servers started one after another hit both, so the add is retried for
 * 45 s (inside the joiner's 60 s request timeout) before the joiner is told.
 */
async function addLearnerWhenReady<T>(add: () => Promise<T>, ms = 45_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await add();
    } catch (err) {
      const transient = /unhealthy cluster|too many learner members|not enough started members/i.test((err as Error).message);
      if (!transient || Date.now() > until) throw err;
      log.info({ err: (err as Error).message }, 'etcd not ready for another member yet; retrying');
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/**
 * The joining side: checks the first server, asks it to add this member, installs the cluster's
 * CAs here. Returns the --initial-cluster for this member. Writes nothing before the first server
 * said yes.
 */
export async function joinEtcdCluster(server: string, token: string, dataDir: string, name: string, peerURL: string): Promise<EtcdJoinReply> {
  let parsed;
  try { parsed = parseToken(token); } catch (err) { throw new Error(`--token: ${(err as Error).message}`); }
  let caBundle: string;
  try {
    caBundle = await fetchTrustedCaBundle(server, parsed);
  } catch (err) {
    throw new Error(`joining ${server}: ${(err as Error).message}`);
  }
  let r;
  try {
    r = await post(new URL(ETCD_JOIN_PATH, server), caBundle, parsed.password, JSON.stringify({ name, peerURL }));
  } catch (err) {
    throw new Error(`joining ${server}: ${(err as Error).message}`);
  }
  if (r.status !== 200) {
    let message = r.body.slice(0, 300);
    try { message = JSON.parse(r.body).message ?? message; } catch { /* not a Status */ }
    throw new Error(`joining ${server}: refused (HTTP ${r.status}): ${message}`);
  }
  const reply = JSON.parse(r.body) as EtcdJoinReply;
  installEtcdCas(dataDir, reply.etcdCas);
  const tls = join(dataDir, 'server', 'tls');
  mkdirSync(tls, { recursive: true, mode: 0o700 });
  for (const [f, mode] of CLUSTER_FILES) {
    const pem = reply.clusterFiles[f];
    if (!pem) continue;
    const have = readIfExists(join(tls, f));
    if (have !== undefined && have !== pem) throw new Error(`${join(tls, f)} belongs to another cluster: this data dir cannot join ${server}`);
    if (have === undefined) writeFileAtomic(join(tls, f), pem, mode);
  }
  log.info({ server, name, initialCluster: reply.initialCluster }, 'joined the etcd cluster as a learner');
  return reply;
}

/**
 * Promotes this learner to a voting member once etcd says it has caught up (it refuses before:
 * "can only promote a learner member which is in sync with leader"). Retries for up to `ms`.
 */
export async function promoteLearner(reply: EtcdJoinReply, tls: { ca: Buffer; cert: Buffer; key: Buffer }, ms = 120_000): Promise<void> {
  const { Etcd3 } = await import('etcd3');
  const client = new Etcd3({ hosts: reply.clientURLs, credentials: { rootCertificate: tls.ca, certChain: tls.cert, privateKey: tls.key } });
  const deadline = Date.now() + ms;
  try {
    for (;;) {
      try {
        await client.cluster.memberPromote({ ID: reply.memberId });
        log.info({ id: reply.memberId }, 'promoted to a voting etcd member');
        return;
      } catch (err) {
        if (/not a learner/.test(String(err))) return;
        if (Date.now() > deadline) throw new Error(`etcd learner ${reply.memberId} was not promoted within ${ms / 1000} s: ${String(err)}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  } finally {
    client.close();
  }
}
