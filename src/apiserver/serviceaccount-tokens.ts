// Service-account tokens: ES256 JWTs with Kubernetes' claim layout, signed by a key kept at
// <dataDir>/server/tls/service.key. The same tokens are what TokenRequest (`kubectl create token`) returns and
// what pods mount, so in-cluster clients and client libraries authenticate with them unchanged.
// service.key may hold several keys (k3s's layout): the first signs, every one verifies, so a rotated
// key (`skiff certificate rotate-ca` with a service.key) keeps the tokens signed by the old one valid.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign, verify as verifySignature,
  type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { privateKeyPems, readIfExists, SECRET_MODE, writeFileAtomic } from '../pki/pem-files.js';
import type { UserInfo } from './authn.js';
import { rfc3339 } from '../util/time.js';

export const DEFAULT_ISSUER = 'https://kubernetes.default.svc.cluster.local';
/** go-jose's default clock-skew allowance, which Kubernetes' validator inherits. */
const LEEWAY_SECONDS = 60;

export interface BoundObject {
  /** Pod, Secret or Node: the kinds a TokenRequest may bind to. */
  kind: string;
  name: string;
  uid: string;
}

export interface IssueRequest {
  namespace: string;
  serviceAccountName: string;
  serviceAccountUid: string;
  /** Defaults to the API server's own audiences. */
  audiences?: string[];
  expirationSeconds: number;
  boundObject?: BoundObject;
  /** For pod-bound tokens: the node the pod runs on (Kubernetes adds it as a claim). */
  node?: { name: string; uid: string };
}

export interface IssuedToken {
  token: string;
  /** RFC 3339, as TokenRequest's status.expirationTimestamp. */
  expirationTimestamp: string;
}

interface Ref {
  name: string;
  uid: string;
}

export interface ServiceAccountClaims {
  iss: string;
  sub: string;
  aud: string[];
  exp: number;
  iat: number;
  nbf: number;
  jti: string;
  'kubernetes.io': {
    namespace: string;
    serviceaccount: Ref;
    pod?: Ref;
    secret?: Ref;
    node?: Ref;
  };
}

export interface ServiceAccountTokensOptions {
  issuer?: string;
  /** Audiences the API server accepts; a token must name at least one. Default: [issuer]. */
  apiAudiences?: string[];
  /** Seconds since the epoch; injectable for expiry tests. */
  now?: () => number;
}

export class ServiceAccountTokens {
  readonly issuer: string;
  readonly apiAudiences: string[];
  /** `kid` header: base64url sha256 of the public key's DER, as Kubernetes computes it. */
  readonly keyId: string;
  private readonly privateKey: KeyObject;
  private readonly publicKey: KeyObject;
  private readonly now: () => number;

  /** Every verifying key by its kid (the signing key's first). */
  private readonly verifying = new Map<string, KeyObject>();

  constructor(privateKeyPem: string, opts: ServiceAccountTokensOptions = {}) {
    const keys = privateKeyPems(privateKeyPem).map((pem) => createPrivateKey(pem));
    if (!keys.length) throw new Error('no service account key');
    for (const k of keys) if (k.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Error('service account key must be EC P-256 (ES256)');
    this.privateKey = keys[0];
    for (const k of keys) {
      const pub = createPublicKey(k);
      const kid = createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('base64url');
      if (!this.verifying.has(kid)) this.verifying.set(kid, pub);
    }
    [[this.keyId, this.publicKey]] = this.verifying;
    this.issuer = opts.issuer ?? DEFAULT_ISSUER;
    this.apiAudiences = opts.apiAudiences ?? [this.issuer];
    this.now = opts.now ?? (() => Math.floor(Date.now() / 1000));
  }

  /** Loads <dataDir>/server/tls/service.key, creating it on first start. */
  static open(dataDir: string, opts: ServiceAccountTokensOptions = {}): ServiceAccountTokens {
    const path = join(dataDir, 'server', 'tls', 'service.key');
    let pem = readIfExists(path);
    if (!pem) {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      pem = privateKey.export({ type: 'sec1', format: 'pem' }) as string;
      writeFileAtomic(path, pem, SECRET_MODE);
    }
    return new ServiceAccountTokens(pem, opts);
  }

  issue(req: IssueRequest): IssuedToken {
    const iat = this.now();
    const exp = iat + req.expirationSeconds;
    const k8s: ServiceAccountClaims['kubernetes.io'] = {
      namespace: req.namespace,
      serviceaccount: { name: req.serviceAccountName, uid: req.serviceAccountUid },
    };
    if (req.boundObject) {
      const ref = { name: req.boundObject.name, uid: req.boundObject.uid };
      if (req.boundObject.kind === 'Pod') k8s.pod = ref;
      else if (req.boundObject.kind === 'Secret') k8s.secret = ref;
      else if (req.boundObject.kind === 'Node') k8s.node = ref;
      else throw new Error(`cannot bind a token to a ${req.boundObject.kind}`);
    }
    if (req.node) k8s.node = { name: req.node.name, uid: req.node.uid };
    const claims: ServiceAccountClaims = {
      aud: req.audiences?.length ? req.audiences : this.apiAudiences,
      exp,
      iat,
      iss: this.issuer,
      jti: randomUUID(),
      'kubernetes.io': k8s,
      nbf: iat,
      sub: serviceAccountUsername(req.namespace, req.serviceAccountName),
    };
    const signingInput = `${b64json({ alg: 'ES256', kid: this.keyId })}.${b64json(claims)}`;
    const signature = sign('sha256', Buffer.from(signingInput), { key: this.privateKey, dsaEncoding: 'ieee-p1363' });
    return { token: `${signingInput}.${signature.toString('base64url')}`, expirationTimestamp: rfc3339(exp * 1000) };
  }

  /** The verified claims of a token this server issued for one of its audiences, or null. */
  claims(token: string): ServiceAccountClaims | null {
    const parts = token.split('.');
    if (parts.length !== 3) return null;
    const header = parseJson(parts[0]);
    if (header?.alg !== 'ES256') return null;
    const candidates = header.kid !== undefined ? [this.verifying.get(String(header.kid))].filter((k) => k !== undefined) : [...this.verifying.values()];
    if (!candidates.some((key) => this.signatureValid(`${parts[0]}.${parts[1]}`, parts[2], key))) return null;
    const c = parseJson(parts[1]) as Partial<ServiceAccountClaims> | null;
    if (!c || c.iss !== this.issuer || !isWellFormed(c)) return null;
    const now = this.now();
    if (now > c.exp + LEEWAY_SECONDS || now < c.nbf - LEEWAY_SECONDS) return null;
    const aud = typeof c.aud === 'string' ? [c.aud] : c.aud;
    if (!aud.some((a) => this.apiAudiences.includes(a))) return null;
    return c;
  }

  private signatureValid(signingInput: string, signature: string, key: KeyObject): boolean {
    try {
      return verifySignature('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' },
        Buffer.from(signature, 'base64url'));
    } catch {
      return false; // malformed signature bytes
    }
  }

  verify(token: string): UserInfo | null {
    const c = this.claims(token);
    return c ? userInfoFromClaims(c) : null;
  }

  /** The public key set, as served at /openid/v1/jwks for service-account issuer discovery. */
  jwks(): { keys: Record<string, unknown>[] } {
    return { keys: [...this.verifying].map(([kid, key]) => ({ ...key.export({ format: 'jwk' }), use: 'sig', alg: 'ES256', kid })) };
  }
}

/** The longest TokenRequest skiff issues (Kubernetes: --service-account-max-token-expiration; skiff: 24 h). */
export const MAX_TOKEN_EXPIRATION_SECONDS = 24 * 3600;

/**
 * Whether the objects a token names still exist as they were when it was issued: the
 * ServiceAccount with the same uid (deleted or recreated revokes it), and the Pod or Secret it is
 * bound to with the same uid (Kubernetes' legacy and bound token validators). `get` reads the store.
 */
export function serviceAccountTokenLive(get: (key: string) => { metadata?: { uid?: string; deletionTimestamp?: string } } | undefined,
  c: ServiceAccountClaims): boolean {
  const k = c['kubernetes.io'];
  const sa = get(`/core/serviceaccounts/${k.namespace}/${k.serviceaccount.name}`);
  if (!sa || (k.serviceaccount.uid && sa.metadata?.uid !== k.serviceaccount.uid)) return false;
  if (k.pod) {
    const pod = get(`/core/pods/${k.namespace}/${k.pod.name}`);
    // A pod being deleted keeps its token until it is gone (its containers are still stopping).
    if (!pod || pod.metadata?.uid !== k.pod.uid) return false;
  }
  if (k.secret) {
    const secret = get(`/core/secrets/${k.namespace}/${k.secret.name}`);
    if (!secret || secret.metadata?.uid !== k.secret.uid || secret.metadata?.deletionTimestamp) return false;
  }
  return true;
}

export function serviceAccountUsername(namespace: string, name: string): string {
  return `system:serviceaccount:${namespace}:${name}`;
}

/** The user a service-account token stands for, with the groups and extras Kubernetes attaches. */
export function userInfoFromClaims(c: ServiceAccountClaims): UserInfo {
  const k = c['kubernetes.io'];
  const extra: Record<string, string[]> = {};
  if (typeof c.jti === 'string') extra['authentication.kubernetes.io/credential-id'] = [`JTI=${c.jti}`];
  if (k.pod) {
    extra['authentication.kubernetes.io/pod-name'] = [k.pod.name];
    extra['authentication.kubernetes.io/pod-uid'] = [k.pod.uid];
  }
  if (k.node) {
    extra['authentication.kubernetes.io/node-name'] = [k.node.name];
    extra['authentication.kubernetes.io/node-uid'] = [k.node.uid];
  }
  return {
    name: serviceAccountUsername(k.namespace, k.serviceaccount.name),
    uid: k.serviceaccount.uid,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${k.namespace}`, 'system:authenticated'],
    extra,
  };
}

function isWellFormed(c: Partial<ServiceAccountClaims>): c is ServiceAccountClaims {
  const k = c['kubernetes.io'];
  return typeof c.exp === 'number' && typeof c.nbf === 'number' && typeof c.sub === 'string'
    && (typeof c.aud === 'string' || Array.isArray(c.aud))
    && typeof k?.namespace === 'string' && typeof k.serviceaccount?.name === 'string'
    && c.sub === serviceAccountUsername(k.namespace, k.serviceaccount.name);
}

function b64json(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

function parseJson(part: string): Record<string, any> | null {
  try {
    const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, any>) : null;
  } catch {
    return null;
  }
}
