// Registration tokens: what `skiff fleet token` prints and a site's `--fleet-token` takes. Separate
// from the node join token (a leaked fleet token lets a machine register a site, never join a node).
// The K10 form of the join token is reused, `K10<sha256 of the manager's CA bundle>::fleet-<id>:<secret>`,
// so a site pins the manager's CA from the token alone. The manager keeps only sha256(secret), under
// the token's id, in the kube-system Secret FLEET_TOKENS_SECRET: reading the Secret gives no token,
// several tokens can be valid at once, and deleting a key revokes that token (sites that already
// registered hold certificates and are not affected).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { formatToken, parseToken, type ParsedToken } from '../pki/token.js';

export const FLEET_TOKENS_NAMESPACE = 'kube-system';
export const FLEET_TOKENS_SECRET = 'skiff-fleet-registration-tokens';
export const FLEET_TOKENS_TYPE = 'skiff.io/fleet-registration-tokens';
const USER_PREFIX = 'fleet-';
const ID_RE = /^[a-z0-9]{6,32}$/;

export interface NewFleetToken {
  id: string;
  /** The printed token. */
  token: string;
  /** What goes into the Secret's data under `id` (base64 of the hex sha256). */
  storedHash: string;
}

export function newFleetToken(caBundlePem: string): NewFleetToken {
  const id = randomBytes(4).toString('hex');
  const secret = randomBytes(24).toString('hex');
  return { id, token: formatToken(caBundlePem, USER_PREFIX + id, secret), storedHash: Buffer.from(sha256(secret)).toString('base64') };
}

/** A token as the site parsed it: the bearer credential it presents (`fleet-<id>:<secret>`). */
export function bearerOf(parsed: ParsedToken): string {
  return `${parsed.username}:${parsed.password}`;
}

export function parseFleetToken(token: string): ParsedToken {
  const p = parseToken(token, '');
  if (!p.username.startsWith(USER_PREFIX)) throw new Error('not a fleet registration token (expected K10<hash>::fleet-<id>:<secret>, as `skiff fleet token` prints)');
  return p;
}

/**
 * Whether `bearer` (`fleet-<id>:<secret>`) matches a stored token. `data` is the Secret's data
 * (base64 values). Constant time in the secret.
 */
export function verifyFleetBearer(bearer: string, data: Record<string, string> | undefined): boolean {
  const colon = bearer.indexOf(':');
  if (colon < 0) return false;
  const user = bearer.slice(0, colon);
  const secret = bearer.slice(colon + 1);
  if (!user.startsWith(USER_PREFIX) || !secret) return false;
  const id = user.slice(USER_PREFIX.length);
  if (!ID_RE.test(id)) return false;
  const stored = data?.[id];
  if (!stored) return false;
  const want = Buffer.from(Buffer.from(stored, 'base64').toString('utf8'));
  const got = Buffer.from(sha256(secret));
  return want.length === got.length && timingSafeEqual(want, got);
}

export function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
