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
    if (parsed.caHash && !caHashMatches(parsed.caHash, caBundlePem)) {
      throw new Error('the given token pins a CA hash that does not match this server\'s CA certificate; give the bare password or the token printed by this server');
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
