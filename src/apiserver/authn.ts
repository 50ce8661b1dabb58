// Who is calling. Credentials are tried in Kubernetes' order: a client certificate verified by the TLS
// layer against the client CA, then a bearer token (static table, then service-account JWTs). A request
// that proves nothing gets null; the caller answers 401 (skiff has no anonymous access).
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { ServiceAccountClaims, ServiceAccountTokens } from './serviceaccount-tokens.js';
import { userInfoFromClaims } from './serviceaccount-tokens.js';

export interface UserInfo {
  name: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

export const AUTHENTICATED_GROUP = 'system:authenticated';

const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';
const ANY_EKU_OID = '2.5.29.37.0';
/** Browsers cannot set headers on WebSockets, so Kubernetes also reads the token from a subprotocol. */
const WS_TOKEN_PROTOCOL_PREFIX = 'base64url.bearer.authorization.k8s.io.';

export interface AuthenticatorOptions {
  saTokens?: ServiceAccountTokens;
  /**
   * Checks a verified service-account token against live objects (the service account still exists with
   * that uid, a bound pod or secret still exists). Without it, a signature and expiry check is all.
   */
  validateServiceAccount?: (claims: ServiceAccountClaims) => boolean | Promise<boolean>;
}

export class Authenticator {
  private readonly tokens = new Map<string, UserInfo>();

  constructor(private readonly opts: AuthenticatorOptions = {}) {}

  /** Adds (or replaces) a static bearer token. */
  addToken(token: string, user: UserInfo): void {
    if (!token) throw new Error('a static token must not be empty');
    this.tokens.set(token, withAuthenticatedGroup(user));
  }

  removeToken(token: string): boolean {
    return this.tokens.delete(token);
  }

  async authenticate(req: IncomingMessage): Promise<UserInfo | null> {
    return clientCertificateUser(req) ?? (await this.tokenUser(req));
  }

  /** The user a bearer token stands for, or null (also for tokens outside a request, e.g. TokenReview). */
  async authenticateToken(token: string): Promise<UserInfo | null> {
    const known = this.tokens.get(token);
    if (known) return known;
    const sa = this.opts.saTokens?.claims(token);
    if (!sa) return null;
    if (this.opts.validateServiceAccount && !(await this.opts.validateServiceAccount(sa))) return null;
    return userInfoFromClaims(sa);
  }

  private async tokenUser(req: IncomingMessage): Promise<UserInfo | null> {
    const token = bearerToken(req);
    return token ? this.authenticateToken(token) : null;
  }
}

/**
 * What a connection's client certificate proves, read once per connection: the certificate cannot
 * change on a connection, and `getPeerCertificate` builds a fresh object (every field parsed) on
 * each call, a few percent of the server's time under a node heartbeat load. `notAfter` keeps the
 * per-request expiry check a keep-alive connection would otherwise skip after its handshake.
 */
const certUsers = new WeakMap<TLSSocket, { user: UserInfo | null; notAfter: number }>();

/** The user named by a client certificate the TLS layer verified, or null. */
function clientCertificateUser(req: IncomingMessage): UserInfo | null {
  const socket = req.socket as TLSSocket;
  // `authorized` is only true when the server asked for a certificate and it chained to the client CA.
  if (!socket.encrypted || !socket.authorized) return null;
  let known = certUsers.get(socket);
  if (!known) {
    const cert = socket.getPeerCertificate();
    known = { user: certificateUser(cert), notAfter: cert?.valid_to ? Date.parse(cert.valid_to) : NaN };
    certUsers.set(socket, known);
  }
  // An expired certificate proves nothing, also on a connection opened while it was valid.
  if (!(Date.now() <= known.notAfter)) return null;
  return known.user;
}

function certificateUser(cert: ReturnType<TLSSocket['getPeerCertificate']> | undefined): UserInfo | null {
  if (!cert || !cert.subject) return null;
  // A certificate without extended key usage may be used for anything; one with it must allow client auth.
  const eku = cert.ext_key_usage;
  if (eku && eku.length && !eku.includes(CLIENT_AUTH_OID) && !eku.includes(ANY_EKU_OID)) return null;
  const cn = first(cert.subject.CN);
  if (!cn) return null;
  // Frozen: one object serves every request of the connection, so nobody may change it for the next.
  const user = withAuthenticatedGroup({ name: cn, groups: all(cert.subject.O) });
  Object.freeze(user.groups);
  return Object.freeze(user);
}

function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization?.trim();
  if (header) {
    const [scheme, token] = header.split(' ', 3);
    if (scheme.toLowerCase() === 'bearer' && token) return token;
  }
  if (req.headers.upgrade?.toLowerCase() === 'websocket') {
    const protocols = req.headers['sec-websocket-protocol'];
    for (const p of (protocols ?? '').split(',')) {
      const v = p.trim();
      if (v.startsWith(WS_TOKEN_PROTOCOL_PREFIX)) {
        const token = Buffer.from(v.slice(WS_TOKEN_PROTOCOL_PREFIX.length), 'base64url').toString('utf8');
        if (token) return token;
      }
    }
  }
  return undefined;
}

function withAuthenticatedGroup(user: UserInfo): UserInfo {
  return user.groups.includes(AUTHENTICATED_GROUP) ? user : { ...user, groups: [...user.groups, AUTHENTICATED_GROUP] };
}

// Node gives a single value as a string and repeated attributes (several O=) as an array.
function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function all(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}
