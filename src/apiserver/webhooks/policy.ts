// ValidatingAdmissionPolicy with its bindings: for each binding whose policy's matchConstraints (and
// the binding's matchResources) select the request, the policy's matchConditions, variables and
// validations run in CEL with `object`, `oldObject`, `request`, `params` and `namespaceObject`.
// A failed validation is denied, warned or audited as the binding's validationActions say, in
// Kubernetes' words: `ValidatingAdmissionPolicy 'p' with binding 'b' denied request: <message>`.
import type { Store } from '../../storage/types.js';
import type { KindInfo } from '../../api/kinds.js';
import { collectionPrefix, objectKey } from '../registry.js';
import { ApiError } from '../../api/status.js';
import { matchLabelSelectorObject } from '../../api/selectors.js';
import { logger } from '../../util/log.js';
import { compile, evalBool, toCel } from '../cel/evaluate.js';
import { buildAdmissionRequest } from './review.js';
import { namespaceSelectorMatches, objectSelectorMatches, rulesMatch, type AdmissionAttributes } from './matching.js';
import { evaluateMatchConditions } from './dispatcher.js';

const log = logger('validating-admission-policy');

const REASON_CODES: Record<string, number> = { Unauthorized: 401, Forbidden: 403, Invalid: 422, RequestEntityTooLarge: 413 };

/** Finds the KindInfo of a `paramKind` (apiVersion + kind). */
export type KindResolver = (apiVersion: string, kind: string) => KindInfo | undefined;

function matchResources(m: any, a: AdmissionAttributes, nsLabels: (ns: string) => Record<string, string> | undefined): boolean {
  if (!m) return true;
  if (!namespaceSelectorMatches(m.namespaceSelector, a, nsLabels) || !objectSelectorMatches(m.objectSelector, a)) return false;
  if (m.resourceRules?.length && !rulesMatch(resourceRules(m.resourceRules, a), m.matchPolicy, a)) return false;
  if (m.excludeResourceRules?.length && rulesMatch(resourceRules(m.excludeResourceRules, a), 'Exact', a)) return false;
  return true;
}

/** NamedRuleWithOperations: a rule that lists resourceNames applies to those names only. */
function resourceRules(rules: any[], a: AdmissionAttributes): any[] {
  return rules.filter((r) => !r.resourceNames?.length || r.resourceNames.includes(a.name));
}

function paramsFor(store: Store, resolve: KindResolver, policy: any, binding: any, a: AdmissionAttributes): { params: unknown[]; error?: string } {
  const pk = policy.spec?.paramKind;
  if (!pk) return { params: [null] };
  const ref = binding.spec?.paramRef;
  if (!ref) return { params: [], error: `failed to configure binding: paramRef is required when paramKind is set` };
  const info = resolve(pk.apiVersion, pk.kind);
  if (!info) return { params: [], error: `failed to configure policy: failed to find resource referenced by paramKind: '${pk.apiVersion}, Kind=${pk.kind}'` };
  const ns = info.namespaced ? (ref.namespace || a.namespace) : undefined;
  let found: unknown[];
  if (ref.name) {
    const o = store.get(objectKey(info, ns, ref.name));
    found = o ? [o.obj] : [];
  } else {
    found = store.list(collectionPrefix(info, ns)).items.map((o) => o.obj)
      .filter((o) => matchLabelSelectorObject(ref.selector ?? {}, o.metadata?.labels ?? {}));
  }
  if (!found.length) {
    if (ref.parameterNotFoundAction === 'Allow') return { params: [] };
    return { params: [], error: `failed to configure binding: no params found for policy binding with \`Deny\` parameterNotFoundAction` };
  }
  return { params: found };
}

/** Evaluates every binding; throws the first denial, returns warnings for Warn actions. */
export function runValidatingPolicies(store: Store, resolve: KindResolver, policies: readonly Readonly<Record<string, any>>[],
  bindings: readonly Readonly<Record<string, any>>[], a: AdmissionAttributes, warnings: string[]): void {
  if (!bindings.length || !policies.length) return;
  const byName = new Map(policies.map((p) => [p.metadata.name as string, p]));
  const nsLabels = (ns: string) => store.get(`/core/namespaces/${ns}`)?.obj.metadata?.labels;
  let request: unknown;
  let base: Record<string, unknown> | undefined;
  for (const binding of bindings) {
    const policy = byName.get(binding.spec?.policyName);
    if (!policy) continue;
    const spec = policy.spec ?? {};
    if (!matchResources(spec.matchConstraints, a, nsLabels) || !matchResources(binding.spec?.matchResources, a, nsLabels)) continue;
    const actions: string[] = binding.spec?.validationActions ?? ['Deny'];
    const ignore = spec.failurePolicy === 'Ignore';
    const who = `ValidatingAdmissionPolicy '${policy.metadata.name}' with binding '${binding.metadata.name}'`;
    const deny = (message: string, reason = 'Invalid') => {
      if (actions.includes('Warn')) warnings.push(`Validation failed for ${who}: ${message}`);
      if (actions.includes('Audit')) log.info({ policy: policy.metadata.name, binding: binding.metadata.name, message }, 'validation failed (audit)');
      if (actions.includes('Deny')) throw new ApiError(REASON_CODES[reason] ?? 422, reason, `${who} denied request: ${message}`);
    };
    const failed = (message: string) => { if (!ignore) deny(message); else log.warn({ who, err: message }, 'policy error ignored (failurePolicy Ignore)'); };

    if (!base) {
      request = toCel(buildAdmissionRequest(a, ''));
      const nsObj = a.info.namespaced ? store.get(`/core/namespaces/${a.namespace}`)?.obj : undefined;
      base = {
        object: toCel(a.operation === 'DELETE' ? null : a.object ?? null),
        oldObject: toCel(a.operation === 'CREATE' ? null : a.oldObject ?? null),
        request, namespaceObject: toCel(nsObj ?? null),
      };
    }
    const { params, error } = paramsFor(store, resolve, policy, binding, a);
    if (error) { failed(error); continue; }
    for (const param of params) {
      const vars: Record<string, unknown> = { ...base, params: toCel(param ?? null) };
      const m = evaluateMatchConditions(spec.matchConditions, vars);
      if (m.error) { failed(m.error); continue; }
      if (!m.match) continue;
      const variables: Record<string, unknown> = {};
      vars.variables = variables;
      for (const v of spec.variables ?? []) {
        try {
          const r = compile(v.expression)(vars);
          variables[v.name] = r.ok ? toCel(r.value) : null;
        } catch { variables[v.name] = null; }
      }
      for (const val of spec.validations ?? []) {
        let r;
        try { r = evalBool(compile(val.expression), vars); } catch (e) { failed(`compilation error: ${(e as Error).message}`); continue; }
        if (!r.ok) { failed(`expression '${val.expression}' resulted in error: ${r.error}`); continue; }
        if (r.value) continue;
        let message = val.message || `failed expression: ${val.expression}`;
        if (val.messageExpression) {
          try {
            const mr = compile(val.messageExpression)(vars);
            if (mr.ok && typeof mr.value === 'string' && mr.value.trim()) message = mr.value;
          } catch { /* falls back to message */ }
        }
        deny(message, val.reason);
      }
      // auditAnnotations: `<policy>/<key>` = value, logged (skiff's audit log is not wired to admission yet).
      for (const an of spec.auditAnnotations ?? []) {
        try {
          const r = compile(an.valueExpression)(vars);
          if (!r.ok) { failed(`valueExpression '${an.valueExpression}' resulted in error: ${r.error}`); continue; }
          if (typeof r.value === 'string' && r.value) log.info({ annotation: `${policy.metadata.name}/${an.key}`, value: r.value }, 'audit annotation');
        } catch (e) { failed(`compilation error: ${(e as Error).message}`); }
      }
    }
  }
}
