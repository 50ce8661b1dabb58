// Calls the webhooks a request matches, as kube-apiserver does: mutating webhooks one after the other
// (configurations by name, webhooks in order), each patch applied before the next call, and one
// reinvocation round for `reinvocationPolicy: IfNeeded` webhooks whose object was changed after they
// saw it; validating webhooks all at once. failurePolicy decides what a failed call means; a
// dry-run request is refused by a webhook that may have side effects.
import { randomUUID } from 'node:crypto';
import type { Store } from '../../storage/types.js';
import { ApiError, errors } from '../../api/status.js';
import { logger } from '../../util/log.js';
import { applyJsonPatch } from '../patch/index.js';
import { compile, evalBool, toCel } from '../cel/evaluate.js';
import { admissionReview, buildAdmissionRequest, parseAdmissionResponse, type AdmissionRequest, type AdmissionResponse } from './review.js';
import { namespaceSelectorMatches, objectSelectorMatches, rulesMatch, type AdmissionAttributes, type RuleWithOperations } from './matching.js';
import { CallPool, postReview, resolveTarget, WebhookCallError, type Dialer, type WebhookClientConfig } from './client.js';

const log = logger('webhooks');

export interface Webhook {
  name: string;
  clientConfig: WebhookClientConfig;
  rules?: RuleWithOperations[];
  failurePolicy?: 'Fail' | 'Ignore';
  matchPolicy?: 'Exact' | 'Equivalent';
  namespaceSelector?: any;
  objectSelector?: any;
  sideEffects?: string;
  timeoutSeconds?: number;
  admissionReviewVersions?: string[];
  reinvocationPolicy?: 'Never' | 'IfNeeded';
  matchConditions?: { name: string; expression: string }[];
}

export interface WebhookEnv {
  store: Store;
  /** The server's CA, trusted when a webhook gives no caBundle. */
  defaultCa: () => string;
  pool: CallPool;
  /** The node tunnels, for endpoint pods (unset in tests without agents). */
  dialer?: Dialer;
}

/** Whether a webhook applies to a request (rules, selectors; matchConditions are checked later). */
export function webhookMatches(w: Webhook, a: AdmissionAttributes, nsLabels: (ns: string) => Record<string, string> | undefined): boolean {
  return rulesMatch(w.rules, w.matchPolicy, a)
    && namespaceSelectorMatches(w.namespaceSelector, a, nsLabels)
    && objectSelectorMatches(w.objectSelector, a);
}

/** matchConditions: all true → call; any false → skip; an error → failurePolicy decides. */
export function evaluateMatchConditions(conds: { name: string; expression: string }[] | undefined, vars: Record<string, unknown>): { match: boolean; error?: string } {
  for (const c of conds ?? []) {
    let r;
    try { r = evalBool(compile(c.expression), vars); } catch (e) { return { match: false, error: `compilation failed for matchCondition "${c.name}": ${(e as Error).message}` }; }
    if (!r.ok) return { match: false, error: `matchCondition "${c.name}" evaluation error: ${r.error}` };
    if (!r.value) return { match: false };
  }
  return { match: true };
}

function celVars(a: AdmissionAttributes, req: AdmissionRequest): Record<string, unknown> {
  return { object: toCel(req.object), oldObject: toCel(req.oldObject), request: toCel(req) };
}

function denied(name: string, r: AdmissionResponse): ApiError {
  const code = r.status?.code && r.status.code >= 400 ? r.status.code : 403;
  const msg = r.status?.message
    ? `admission webhook "${name}" denied the request: ${r.status.message}`
    : `admission webhook "${name}" denied the request without explanation`;
  return new ApiError(code, (r.status?.reason as any) || (code === 403 ? 'Forbidden' : 'BadRequest'), msg);
}

/** One call; resolves to the response, or undefined when an Ignore webhook failed. */
async function call(env: WebhookEnv, w: Webhook, a: AdmissionAttributes, mutating: boolean, warnings: string[]): Promise<AdmissionResponse | undefined> {
  const nsLabels = (ns: string) => env.store.get(`/core/namespaces/${ns}`)?.obj.metadata?.labels;
  if (!webhookMatches(w, a, nsLabels)) return undefined;
  const ignore = w.failurePolicy === 'Ignore';
  const uid = randomUUID();
  const req = buildAdmissionRequest(a, uid);
  if (w.matchConditions?.length) {
    const m = evaluateMatchConditions(w.matchConditions, celVars(a, req));
    if (m.error) {
      if (ignore) { log.warn({ webhook: w.name, err: m.error }, 'matchCondition failed; ignored'); return undefined; }
      throw errors.internal(`failed calling webhook "${w.name}": ${m.error}`);
    }
    if (!m.match) return undefined;
  }
  if (a.dryRun && w.sideEffects !== 'None' && w.sideEffects !== 'NoneOnDryRun') {
    throw new ApiError(400, 'BadRequest', `admission webhook "${w.name}" does not support dry run`);
  }
  const timeoutSeconds = w.timeoutSeconds ?? 10;
  try {
    const target = resolveTarget(env.store, w.clientConfig, timeoutSeconds);
    const ca = w.clientConfig.caBundle ? Buffer.from(w.clientConfig.caBundle, 'base64').toString() : env.defaultCa();
    const deadline = Date.now() + timeoutSeconds * 1000;
    const body = await env.pool.run(() => postReview(target, ca, admissionReview(req), Math.max(1, deadline - Date.now()), env.dialer));
    const r = parseAdmissionResponse(body, uid, mutating);
    for (const wmsg of r.warnings ?? []) warnings.push(wmsg);
    return r;
  } catch (e) {
    const why = e instanceof WebhookCallError ? e.message : `received invalid webhook response: ${(e as Error).message}`;
    if (ignore) {
      log.warn({ webhook: w.name, err: why }, 'webhook call failed; failurePolicy Ignore');
      return undefined;
    }
    throw errors.internal(`failed calling webhook "${w.name}": ${why}`);
  }
}

/** Runs the matching mutating webhooks; `a.object` is replaced in place. Returns whether it changed. */
export async function runMutatingWebhooks(env: WebhookEnv, configs: readonly Readonly<Record<string, any>>[], a: AdmissionAttributes, warnings: string[]): Promise<boolean> {
  if (!a.object || a.operation === 'DELETE') return false;
  const hooks: Webhook[] = configs.flatMap((c) => (c.webhooks ?? []) as Webhook[]);
  if (!hooks.length) return false;
  const initial = JSON.stringify(a.object);
  const seenAfter = new Map<Webhook, string>();
  const invoke = async (w: Webhook): Promise<void> => {
    const r = await call(env, w, a, true, warnings);
    if (!r) return;
    if (!r.allowed) throw denied(w.name, r);
    if (r.patch) {
      let patched: Record<string, any>;
      try {
        const ops = JSON.parse(Buffer.from(r.patch, 'base64').toString());
        patched = applyJsonPatch(structuredClone(a.object), ops) as Record<string, any>;
      } catch (e) {
        const why = `JSON Patch: ${(e as Error).message}`;
        if (w.failurePolicy === 'Ignore') { log.warn({ webhook: w.name, err: why }, 'webhook patch failed; ignored'); return; }
        throw errors.internal(`failed calling webhook "${w.name}": ${why}`);
      }
      replaceContent(a.object!, patched);
    }
    seenAfter.set(w, JSON.stringify(a.object));
  };
  for (const w of hooks) await invoke(w);
  const final = JSON.stringify(a.object);
  if (final !== initial) {
    // One reinvocation round, for IfNeeded webhooks that did not see the latest object.
    for (const w of hooks) {
      if (w.reinvocationPolicy === 'IfNeeded' && seenAfter.has(w) && seenAfter.get(w) !== JSON.stringify(a.object)) await invoke(w);
    }
  }
  return JSON.stringify(a.object) !== initial;
}

/** Runs the matching validating webhooks in parallel; the first denial (in order) is the answer. */
export async function runValidatingWebhooks(env: WebhookEnv, configs: readonly Readonly<Record<string, any>>[], a: AdmissionAttributes, warnings: string[]): Promise<void> {
  const hooks: Webhook[] = configs.flatMap((c) => (c.webhooks ?? []) as Webhook[]);
  if (!hooks.length) return;
  const results = await Promise.allSettled(hooks.map((w) => call(env, w, a, false, warnings)));
  results.forEach((r, i) => {
    if (r.status === 'rejected') throw r.reason;
    if (r.value && !r.value.allowed) throw denied(hooks[i]!.name, r.value);
  });
}

function replaceContent(target: Record<string, any>, next: Record<string, any>): void {
  for (const k of Object.keys(target)) delete target[k];
  Object.assign(target, next);
}
