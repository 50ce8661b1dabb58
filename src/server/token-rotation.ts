// The running server's side of `skiff token rotate` (k3s's): POST /v1-skiff/token {newToken}, by an
// admin (system:masters) or by a caller presenting the current join token, as k3s authenticates it.
// The new secret is persisted (pki/token.ts rotateServerToken: the old one is recorded as revoked)
// and takes effect at once for joins; nodes that joined keep their certificates and are unaffected.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError, errors } from '../api/status.js';
import { readBody, sendJson } from '../apiserver/http.js';
import { parseJson } from '../apiserver/decode.js';
import type { UserInfo } from '../apiserver/authn.js';
import { rotateServerToken, sameSecret, type ServerToken } from '../pki/token.js';
import { GuessLimiter } from '../util/guess-limiter.js';
import { logger } from '../util/log.js';

export const TOKEN_PATH = '/v1-skiff/token';
const log = logger('token');
const guesses = new GuessLimiter(10, 60_000);

export interface TokenRouteDeps {
  dataDir: string;
  caBundlePem: string;
  /** The live token: its fields are replaced on rotation, so every route reading it sees the new one. */
  token: ServerToken;
  /** Called with the new secret (the join and agent-config routes read theirs from here). */
  onRotated(password: string): void;
}

/** Handles the token route; false (synchronously) for any other path, so route chains stay `a || b`. */
export function handleTokenRoute(deps: TokenRouteDeps, req: IncomingMessage, res: ServerResponse, user: UserInfo | null): false | Promise<true> {
  if ((req.url ?? '').split('?')[0] !== TOKEN_PATH) return false;
  return rotate(deps, req, res, user);
}

async function rotate(deps: TokenRouteDeps, req: IncomingMessage, res: ServerResponse, user: UserInfo | null): Promise<true> {
  if (req.method !== 'POST') throw errors.methodNotAllowed(req.method ?? '');
  const auth = String(req.headers.authorization ?? '');
  const bearer = auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';
  const admin = user?.groups.includes('system:masters') ?? false;
  if (!admin) {
    const source = req.socket.remoteAddress ?? '';
    const wait = guesses.blockedFor(source);
    if (wait > 0) throw errors.tooManyRequests('too many failed attempts from this address, please try again later', wait);
    if (!bearer || !sameSecret(bearer, deps.token.password)) {
      guesses.fail(source);
      throw user ? new ApiError(403, 'Forbidden', 'token rotate needs an admin credential or the current token') : errors.unauthorized('invalid token');
    }
  }
  const body = parseJson(await readBody(req, 16 * 1024)) as { newToken?: unknown };
  if (typeof body?.newToken !== 'string' || !body.newToken.trim()) throw errors.badRequest('newToken: required');
  let next: ServerToken;
  try {
    next = rotateServerToken(deps.dataDir, deps.caBundlePem, deps.token.password, body.newToken);
  } catch (e) {
    throw errors.badRequest(e instanceof Error ? e.message : String(e));
  }
  deps.token.token = next.token;
  deps.token.password = next.password;
  deps.onRotated(next.password);
  log.info({}, 'join token rotated');
  sendJson(res, 200, { token: next.token });
  return true;
}
