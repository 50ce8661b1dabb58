// A node's client certificate renewed before it expires, without a restart, as the kubelet's
// certificate manager does: at a random point between 70 % and 90 % of its lifetime (pki/renewal.ts)
// the agent makes a new key, asks for a certificate through the certificates API (signer
// kubernetes.io/kube-apiserver-client-kubelet, which the server's csr-approving loop approves for a
// node's own name and csr-signing signs), stores it with the node's credentials and swaps it into its
// clients. The same check picks up a rotated CA bundle (`skiff certificate rotate-ca`): /cacerts is
// read over a connection verified with the CA the node already trusts, and a changed bundle is
// adopted and the certificate renewed at once, so it comes from the new client CA before the old
// one stops being trusted.
import https from 'node:https';
import { randomInt } from 'node:crypto';
import type { HttpClient } from '../client/http.js';
import type { KObject } from '../api/object.js';
import type { ResourceRef } from '../client/types.js';
import { newClientCsr } from '../pki/csr-request.js';
import { clientRenewalDeadline, validityOf } from '../pki/renewal.js';
import { SECRET_MODE, writeFileAtomic } from '../pki/pem-files.js';
import { SIGNER_KUBELET_CLIENT } from '../api/csr.js';
import type { NodeCredentials } from './join.js';
import { logger } from '../util/log.js';

const log = logger('client-cert');
const CSRS: ResourceRef = { group: 'certificates.k8s.io', version: 'v1', resource: 'certificatesigningrequests' };
const NODES_GROUP = 'system:nodes';
/** How often the deadline and the CA bundle are looked at. */
const CHECK_EVERY_MS = 10 * 60 * 1000;

export interface ClientCertRotationOptions {
  client: Pick<HttpClient, 'create' | 'get' | 'useCredentials'>;
  server: string;
  nodeName: string;
  /** The node's credentials file (join.ts credentialsPath). */
  credentialsPath: string;
  creds: NodeCredentials;
  /** Called with the renewed credentials, after the client switched to them (e.g. the tunnel's). */
  onRotated?(creds: NodeCredentials): void;
  checkEveryMs?: number;
  /** In [0, 1): where between 70 % and 90 % of the lifetime the renewal falls (random by default). */
  jitter?: number;
  pollMs?: number;
  timeoutMs?: number;
  /** The server's bundle as verified with the CA trusted now (default: GET /cacerts; tests replace it). */
  fetchCaBundle?(trusted: string): Promise<string>;
}

export type CheckResult = 'unchanged' | 'renewed';

/** /cacerts over TLS verified with `trusted` (so a changed bundle comes from the real server). */
export function fetchVerifiedCaBundle(server: string, trusted: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.request(new URL('/cacerts', server), { method: 'GET', ca: trusted, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8'))
        : reject(new Error(`GET /cacerts: HTTP ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('GET /cacerts: no answer within 30 s')));
    req.on('error', reject);
    req.end();
  });
}

/** Asks the certificates API for a new client certificate for this node; waits until it is issued. */
export async function requestClientCertificate(client: Pick<HttpClient, 'create' | 'get'>, nodeName: string,
  o: { pollMs?: number; timeoutMs?: number } = {}): Promise<{ certPem: string; keyPem: string }> {
  const { csrPem, keyPem } = newClientCsr(`system:node:${nodeName}`, [NODES_GROUP]);
  const created = await client.create(CSRS, undefined, {
    apiVersion: 'certificates.k8s.io/v1', kind: 'CertificateSigningRequest',
    metadata: { generateName: 'csr-' },
    spec: {
      request: Buffer.from(csrPem).toString('base64'), signerName: SIGNER_KUBELET_CLIENT,
      usages: ['digital signature', 'client auth'],
    },
  } as KObject);
  const name = created.metadata.name!;
  const deadline = Date.now() + (o.timeoutMs ?? 15 * 60 * 1000);
  for (;;) {
    const csr = await client.get<KObject & { status?: Record<string, any> }>(CSRS, undefined, name);
    const conditions: { type: string; message?: string }[] = csr?.status?.conditions ?? [];
    const refused = conditions.find((c) => c.type === 'Denied' || c.type === 'Failed');
    if (refused) throw new Error(`certificate request ${name} ${refused.type.toLowerCase()}: ${refused.message ?? ''}`);
    if (csr?.status?.certificate) return { certPem: Buffer.from(String(csr.status.certificate), 'base64').toString('utf8'), keyPem };
    if (!csr) throw new Error(`certificate request ${name} was deleted before it was issued`);
    if (Date.now() > deadline) throw new Error(`certificate request ${name} was not issued in time (is the csr-approving loop running?)`);
    await new Promise((r) => setTimeout(r, o.pollMs ?? 1000));
  }
}

export interface ClientCertRotation {
  check(now?: Date): Promise<CheckResult>;
  current(): NodeCredentials;
  stop(): void;
}

export function startClientCertRotation(o: ClientCertRotationOptions): ClientCertRotation {
  let creds = o.creds;
  const jitter = o.jitter ?? randomInt(1_000_000) / 1_000_000;
  let running: Promise<CheckResult> | undefined;
  const adopt = (next: NodeCredentials) => {
    writeFileAtomic(o.credentialsPath, JSON.stringify(next) + '\n', SECRET_MODE);
    creds = next;
    o.client.useCredentials(next);
    o.onRotated?.(next);
  };
  const check = (now = new Date()): Promise<CheckResult> => {
    running ??= (async (): Promise<CheckResult> => {
      const bundle = await (o.fetchCaBundle ?? ((t: string) => fetchVerifiedCaBundle(o.server, t)))(creds.caPem);
      const caChanged = bundle.trim() !== creds.caPem.trim();
      const due = now.getTime() >= clientRenewalDeadline(validityOf(creds.certPem), jitter).getTime();
      if (!due && !caChanged) return 'unchanged';
      // The new bundle is adopted together with the certificate, never before: should the request
      // fail, the next check sees the changed bundle again and retries (the request itself verifies
      // the server with the CA trusted so far, through the cross-signed chain of the overlap).
      const issued = await requestClientCertificate(o.client, o.nodeName, o);
      adopt({ ...creds, caPem: caChanged ? bundle : creds.caPem, certPem: issued.certPem, keyPem: issued.keyPem });
      log.info({ node: o.nodeName, notAfter: validityOf(issued.certPem).notAfter.toISOString(), reason: caChanged ? 'new CA bundle' : 'expiry' },
        'client certificate renewed');
      return 'renewed';
    })().finally(() => { running = undefined; });
    return running;
  };
  const tick = () => {
    check().catch((err: unknown) => log.warn({ node: o.nodeName, err: err instanceof Error ? err.message : String(err) }, 'client certificate check failed; retrying later'));
  };
  const timer = setInterval(tick, o.checkEveryMs ?? CHECK_EVERY_MS);
  timer.unref();
  // Once at start too: a CA rotated while the node was down is noticed now, not minutes later.
  const first = setTimeout(tick, 1000);
  first.unref();
  return { check, current: () => creds, stop: () => { clearInterval(timer); clearTimeout(first); } };
}
