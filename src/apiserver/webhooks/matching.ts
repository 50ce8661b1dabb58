// Which admission webhooks (and policies) a request reaches: rules (operations, apiGroups,
// apiVersions, resources with subresources, scope), matchPolicy, namespaceSelector and
// objectSelector, as kube-apiserver's webhook matcher decides it.
import type { KindInfo } from '../../api/kinds.js';
import { matchLabelSelectorObject, type LabelSelector } from '../../api/selectors.js';

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

/** One admission request, as webhooks and policies see it. */
export interface AdmissionAttributes {
  info: KindInfo;
  operation: Operation;
  name: string;
  namespace: string;
  subresource: string;
  object?: Record<string, any>;
  oldObject?: Readonly<Record<string, any>>;
  userInfo: { username: string; uid?: string; groups: string[]; extra?: Record<string, string[]> };
  dryRun: boolean;
  options?: Record<string, unknown>;
}

export interface RuleWithOperations {
  operations?: string[];
  apiGroups?: string[];
  apiVersions?: string[];
  resources?: string[];
  scope?: '*' | 'Cluster' | 'Namespaced';
}

const has = (list: string[] | undefined, v: string) => !!list && (list.includes('*') || list.includes(v));

function resourceMatches(patterns: string[] | undefined, resource: string, sub: string): boolean {
  for (const p of patterns ?? []) {
    if (p === '*/*') return true;
    const [r, s] = p.split('/', 2) as [string, string | undefined];
    if (s === undefined) { if (!sub && (r === '*' || r === resource)) return true; continue; }
    if ((r === '*' || r === resource) && (s === '*' || s === sub)) return true;
  }
  return false;
}

/** One rule against a request; `ignoreVersion` for matchPolicy Equivalent (same group and resource). */
export function ruleMatches(rule: RuleWithOperations, a: Pick<AdmissionAttributes, 'info' | 'operation' | 'subresource'>, ignoreVersion = false): boolean {
  if (!has(rule.operations, a.operation)) return false;
  if (!has(rule.apiGroups, a.info.group)) return false;
  if (!ignoreVersion && !has(rule.apiVersions, a.info.version)) return false;
  if (!resourceMatches(rule.resources, a.info.plural, a.subresource)) return false;
  const scope = rule.scope ?? '*';
  if (scope === 'Cluster' && a.info.namespaced) return false;
  if (scope === 'Namespaced' && !a.info.namespaced) return false;
  return true;
}

/** Rules of a webhook or policy's matchConstraints (with excludeResourceRules for policies). */
export function rulesMatch(rules: RuleWithOperations[] | undefined, matchPolicy: string | undefined,
  a: Pick<AdmissionAttributes, 'info' | 'operation' | 'subresource'>): boolean {
  const list = rules ?? [];
  if (list.some((r) => ruleMatches(r, a))) return true;
  // Equivalent (the default): a rule naming another version of the same group/resource still applies.
  return (matchPolicy ?? 'Equivalent') === 'Equivalent' && list.some((r) => ruleMatches(r, a, true));
}

/**
 * namespaceSelector: a namespaced request is matched on its namespace's labels; a Namespace on its own
 * labels; any other cluster-scoped object always matches (Kubernetes never skips it on this ground).
 */
export function namespaceSelectorMatches(sel: LabelSelector | undefined, a: AdmissionAttributes,
  namespaceLabels: (ns: string) => Record<string, string> | undefined): boolean {
  if (!sel || (!sel.matchLabels && !sel.matchExpressions?.length)) return true;
  if (a.info.group === '' && a.info.plural === 'namespaces') {
    return matchLabelSelectorObject(sel, (a.object ?? a.oldObject)?.metadata?.labels ?? {});
  }
  if (!a.info.namespaced) return true;
  return matchLabelSelectorObject(sel, namespaceLabels(a.namespace) ?? {});
}

/** objectSelector: the new or the old object's labels (either one matching calls the webhook). */
export function objectSelectorMatches(sel: LabelSelector | undefined, a: AdmissionAttributes): boolean {
  if (!sel || (!sel.matchLabels && !sel.matchExpressions?.length)) return true;
  return [a.object, a.oldObject].some((o) => o && matchLabelSelectorObject(sel, o.metadata?.labels ?? {}));
}

/** Kinds never sent to webhooks or policies, so a broken webhook cannot lock out its own repair. */
export function exemptFromAdmission(info: KindInfo): boolean {
  return info.group === 'admissionregistration.k8s.io';
}
