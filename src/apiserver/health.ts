// /healthz, /livez and /readyz as Kubernetes serves them: each endpoint runs its list of named checks;
// `?verbose` lists them (`[+]etcd ok`, `[-]etcd failed: reason withheld`), `?exclude=<name>` skips
// one, `/<endpoint>/<check>` runs one. Any failure is HTTP 500 with the list and "<endpoint> check
// failed"; the reason goes to the log only (unauthenticated callers see these pages).
import type { ServerResponse } from 'node:http';
import { errors } from '../api/status.js';
import { sendRaw } from './http.js';
import { logger } from '../util/log.js';

const log = logger('health');

export interface HealthCheck {
  /** Kubernetes' names where one applies: ping, log, etcd, informer-sync, poststarthook/<hook>, shutdown. */
  name: string;
  /** Returns (or resolves) when healthy; throws (or rejects) with the reason otherwise. */
  check(): void | Promise<void>;
}

export type HealthEndpoint = 'healthz' | 'livez' | 'readyz';

export type HealthChecks = Record<HealthEndpoint, readonly HealthCheck[]>;

async function run(c: HealthCheck): Promise<Error | undefined> {
  try {
    await c.check();
    return undefined;
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}

/** Serves `/<endpoint>` or `/<endpoint>/<check>` (`rest` is the path after the endpoint name). */
export async function serveHealth(res: ServerResponse, endpoint: HealthEndpoint, checks: readonly HealthCheck[],
  rest: string, q: URLSearchParams): Promise<void> {
  if (rest) {
    const one = checks.find((c) => c.name === rest);
    if (!one) throw errors.notFoundPath();
    const err = await run(one);
    if (err) return sendRaw(res, 500, `internal server error: ${err.message}\n`, 'text/plain; charset=utf-8', { 'X-Content-Type-Options': 'nosniff' });
    return sendRaw(res, 200, 'ok', 'text/plain; charset=utf-8', { 'X-Content-Type-Options': 'nosniff' });
  }
  const excluded = new Set(q.getAll('exclude').flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean));
  // Checks run side by side: one slow check does not add its time to the others'.
  const results = await Promise.all(checks.map((c) => (excluded.has(c.name) ? Promise.resolve('excluded' as const) : run(c))));
  let out = '';
  const failed: string[] = [];
  checks.forEach((c, i) => {
    const r = results[i];
    if (r === 'excluded') { excluded.delete(c.name); out += `[+]${c.name} excluded: ok\n`; return; }
    if (r) { failed.push(`${c.name}: ${r.message}`); out += `[-]${c.name} failed: reason withheld\n`; return; }
    out += `[+]${c.name} ok\n`;
  });
  if (excluded.size) out += `warn: some health checks cannot be excluded: no matches for ${[...excluded].map((n) => `"${n}"`).join(',')}\n`;
  const headers = { 'X-Content-Type-Options': 'nosniff' };
  if (failed.length) {
    log.warn({ endpoint, failed }, `${endpoint} check failed`);
    return sendRaw(res, 500, `${out}${endpoint} check failed\n`, 'text/plain; charset=utf-8', headers);
  }
  if (!q.has('verbose')) return sendRaw(res, 200, 'ok', 'text/plain; charset=utf-8', headers);
  sendRaw(res, 200, `${out}${endpoint} check passed\n`, 'text/plain; charset=utf-8', headers);
}

/** Whether every check passes now (what the endpoint would answer 200 to). */
export async function passes(checks: readonly HealthCheck[]): Promise<boolean> {
  return (await Promise.all(checks.map(run))).every((err) => err === undefined);
}

/** A check that passes once `done()` says so (Kubernetes' post-start hooks report this way). */
export function flagCheck(name: string, done: () => boolean, pending = 'not finished'): HealthCheck {
  return { name, check: () => { if (!done()) throw new Error(pending); } };
}
