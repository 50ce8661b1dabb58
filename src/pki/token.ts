// The k3s join token: `K10<sha256 hex of the CA bundle>::<username>:<password>`. The hash lets a joining
// node trust the CA it downloads from an unverified /cacerts; the password authenticates it. A bare
// password is accepted too (no CA pin: the insecure form k3s also allows).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import { readIfExists, SECRET_MODE, writeFileAtomic } from './pem-files.js';

const PREFIX = 'K10';
const HASH_HEX_LENGTH = 64;

export interface ParsedToken {
  /** Lower-case hex sha256 of the CA bundle, absent for a bare password. */
  caHash?: string;
  username: string;
  password: string;
}

export interface ServerToken {
  /** The full K10 form written to <dataDir>/server/token and node-token. */
  token: string;
  password: string;
}

export function caHash(pem: string): string {
  return createHash('sha256').update(pem).digest('hex');
}

export function formatToken(caBundlePem: string, username: string, password: string): string {
  return `${PREFIX}${caHash(caBundlePem)}::${username}:${password}`;
}

/**
 * Parses a token. `defaultUsername` fills in for forms that carry none (a bare password), as k3s uses
 * `server` on servers and `node` on agents.
 */
export function parseToken(s: string, defaultUsername = 'server'): ParsedToken {
  const token = s.trim();
  if (!token) throw new Error('token must not be empty');
  if (!token.startsWith(PREFIX) || !token.includes('::')) return { username: defaultUsername, password: token };
  const sep = token.indexOf('::');
  const hash = token.slice(PREFIX.length, sep).toLowerCase();
  const credentials = token.slice(sep + 2);
  if (hash && (hash.length !== HASH_HEX_LENGTH || !/^[0-9a-f]+$/.test(hash))) {
    throw new Error(`invalid token: the CA hash after ${PREFIX} must be ${HASH_HEX_LENGTH} hex characters`);
  }
  // `<username>:<password>`, split at the first colon (the password may hold more); without a username
  // part (`K10<hash>::<password>` or `K10<hash>:::<password>`) the default one applies.
  const colon = credentials.indexOf(':');
  let username = defaultUsername;
  let password = credentials;
  if (colon > 0) {
    username = credentials.slice(0, colon);
    password = credentials.slice(colon + 1);
  } else if (colon === 0) {
    password = credentials.slice(1);
  }
  if (!password) throw new Error('invalid token: no password');
  return { ...(hash ? { caHash: hash } : {}), username, password };
}

/** Whether two secrets are equal, in time independent of where they differ and of their lengths. */
export function sameSecret(a: string, b: string): boolean {
  const h = (v: string) => createHash('sha256').update(v).digest();
  return timingSafeEqual(h(a), h(b));
}

/** The certificates of a PEM bundle, each exactly as it appears (with its line end), in order. */
export function pemBlocks(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\r?\n?/g) ?? [];
}

/**
 * The pinned certificate within a bundle: during a CA rotation's overlap /cacerts serves the new CA
 * followed by the old one, and tokens handed out before the rotation pin the old one alone.
 */
export function pinnedBlock(expected: string, bundle: string): string | undefined {
  return pemBlocks(bundle).find((b) => caHashMatches(expected, b));
}

/** Whether a CA bundle matches the hash a token pins (constant time; tokens are secrets). */
export function caHashMatches(expected: string, pem: string): boolean {
  const a = Buffer.from(expected.toLowerCase());
  const b = Buffer.from(caHash(pem));
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Reads or creates the server's join secret and writes `server/token` and `server/node-token`. A token
 * given on the command line wins over the stored one (and is persisted), so `--token` can rotate it; a
 * given token that pins a different CA is refused, since agents holding it could never join.
 */
export function ensureServerToken(dataDir: string, caBundlePem: string, given?: string): ServerToken {
  const tokenPath = join(dataDir, 'server', 'token');
  const nodeTokenPath = join(dataDir, 'server', 'node-token');
  let password: string;
  if (given) {
    const parsed = parseToken(given);
    if (parsed.caHash && !caHashMatches(parsed.caHash, caBundlePem) && !pinnedBlock(parsed.caHash, caBundlePem)) {
      throw new Error('the given token pins a CA hash that does not match this server\'s CA certificate; give the bare password or the token printed by this server');
    }
    // A token rotated away must not come back through a config file or unit that still holds it.
    if (isRevoked(dataDir, parsed.password)) {
      throw new Error('the given token was replaced by `skiff token rotate`: start the server with the new token (see `skiff token show`)');
    }
    password = parsed.password;
  } else {
    const stored = readIfExists(tokenPath);
    password = stored?.trim() ? parseToken(stored).password : randomBytes(16).toString('hex');
  }
  const token = formatToken(caBundlePem, 'server', password);
  // Rewritten every start so the files also regain mode 0600 if someone loosened it.
  for (const path of [tokenPath, nodeTokenPath]) writeFileAtomic(path, token + '\n', SECRET_MODE);
  return { token, password };
}

/** Hashes of the join secrets `skiff token rotate` replaced (one hex sha256 a line, 0600). */
function revokedPath(dataDir: string): string {
  return join(dataDir, 'server', 'token-revoked');
}

function secretHash(password: string): string {
  return createHash('sha256').update(`skiff-join-token:${password}`).digest('hex');
}

export function isRevoked(dataDir: string, password: string): boolean {
  const h = secretHash(password);
  return (readIfExists(revokedPath(dataDir)) ?? '').split('\n').some((line) => line.trim() && sameSecret(line.trim(), h));
}

/**
 * `skiff token rotate`: the join secret becomes `newToken`'s (a bare secret or a K10 token of this
 * server's CA). The files `server/token` and `server/node-token` are rewritten with the new secret
 * and the old one is recorded as revoked, so it joins no node again, not even after a restart with
 * the old `--token`. Nodes that joined keep their client certificates: nothing else changes.
 */
export function rotateServerToken(dataDir: string, caBundlePem: string, oldPassword: string, newToken: string): ServerToken {
  const parsed = parseToken(newToken);
  if (parsed.caHash && !caHashMatches(parsed.caHash, caBundlePem) && !pinnedBlock(parsed.caHash, caBundlePem)) {
    throw new Error('the new token pins a CA hash that does not match this server\'s CA certificate');
  }
  if (parsed.password.length < 8) throw new Error('the new token\'s secret must be at least 8 characters');
  if (sameSecret(parsed.password, oldPassword)) throw new Error('the new token is the current one');
  if (isRevoked(dataDir, parsed.password)) throw new Error('the new token was used before and revoked: choose another');
  const revoked = (readIfExists(revokedPath(dataDir)) ?? '') + secretHash(oldPassword) + '\n';
  writeFileAtomic(revokedPath(dataDir), revoked, SECRET_MODE);
  const token = formatToken(caBundlePem, 'server', parsed.password);
  for (const path of [join(dataDir, 'server', 'token'), join(dataDir, 'server', 'node-token')]) writeFileAtomic(path, token + '\n', SECRET_MODE);
  return { token, password: parsed.password };
}
