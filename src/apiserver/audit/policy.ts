// The audit Policy (audit.k8s.io/v1): an ordered list of rules, the first that matches a request sets
// its level; omitStages from the policy and the matching rule are both honoured. Matching follows
// kube-apiserver's policy checker: users, userGroups and verbs narrow any rule; a rule with resources
// or namespaces matches only resource requests, one with nonResourceURLs only non-resource requests.
import { parse as parseYaml } from 'yaml';

export type AuditLevel = 'None' | 'Metadata' | 'Request' | 'RequestResponse';
export type AuditStage = 'RequestReceived' | 'ResponseStarted' | 'ResponseComplete' | 'Panic';

const LEVELS: AuditLevel[] = ['None', 'Metadata', 'Request', 'RequestResponse'];
const STAGES: AuditStage[] = ['RequestReceived', 'ResponseStarted', 'ResponseComplete', 'Panic'];

interface GroupResources { group?: string; resources?: string[]; resourceNames?: string[] }

export interface PolicyRule {
  level: AuditLevel;
  users?: string[];
  userGroups?: string[];
  verbs?: string[];
  resources?: GroupResources[];
  namespaces?: string[];
  nonResourceURLs?: string[];
  omitStages?: AuditStage[];
}

export interface AuditPolicy {
  rules: PolicyRule[];
  omitStages: AuditStage[];
}

/** What a rule is matched against. */
export interface AuditAttributes {
  user: { name: string; groups: string[] };
  verb: string;
  resourceRequest: boolean;
  path: string;
  apiGroup: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
}

function strings(v: unknown, what: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error(`audit policy: ${what} must be a list of strings`);
  return v as string[];
}

function stages(v: unknown, what: string): AuditStage[] {
  const s = strings(v, what) ?? [];
  for (const x of s) if (!STAGES.includes(x as AuditStage)) throw new Error(`audit policy: ${what}: unknown stage ${JSON.stringify(x)}`);
  return s as AuditStage[];
}

/** Parses a Policy document (YAML or JSON); throws an Error naming the first problem. */
export function parsePolicy(text: string): AuditPolicy {
  const doc = parseYaml(text) as Record<string, any> | null;
  if (!doc || doc.kind !== 'Policy' || !/^audit\.k8s\.io\/v1(beta1)?$/.test(String(doc.apiVersion))) {
    throw new Error('audit policy: want kind Policy, apiVersion audit.k8s.io/v1');
  }
  if (!Array.isArray(doc.rules) || doc.rules.length === 0) throw new Error('audit policy: rules must be a non-empty list');
  const rules = doc.rules.map((r: Record<string, any>, i: number): PolicyRule => {
    if (!LEVELS.includes(r?.level)) throw new Error(`audit policy: rules[${i}].level must be one of ${LEVELS.join(', ')}`);
    const rule: PolicyRule = {
      level: r.level, users: strings(r.users, `rules[${i}].users`), userGroups: strings(r.userGroups, `rules[${i}].userGroups`),
      verbs: strings(r.verbs, `rules[${i}].verbs`), namespaces: strings(r.namespaces, `rules[${i}].namespaces`),
      nonResourceURLs: strings(r.nonResourceURLs, `rules[${i}].nonResourceURLs`), omitStages: stages(r.omitStages, `rules[${i}].omitStages`),
    };
    if (r.resources !== undefined) {
      if (!Array.isArray(r.resources)) throw new Error(`audit policy: rules[${i}].resources must be a list`);
      rule.resources = r.resources.map((g: Record<string, unknown>, j: number) => ({
        group: typeof g?.group === 'string' ? g.group : '',
        resources: strings(g?.resources, `rules[${i}].resources[${j}].resources`),
        resourceNames: strings(g?.resourceNames, `rules[${i}].resources[${j}].resourceNames`),
      }));
    }
    if ((rule.resources || rule.namespaces) && rule.nonResourceURLs) {
      throw new Error(`audit policy: rules[${i}]: resources/namespaces and nonResourceURLs are mutually exclusive`);
    }
    return rule;
  });
  return { rules, omitStages: stages(doc.omitStages, 'omitStages') };
}

/** Logs everything at Metadata: what kube-apiserver's audit log does without a policy file. */
export const METADATA_POLICY: AuditPolicy = { rules: [{ level: 'Metadata' }], omitStages: [] };

function resourceMatches(pattern: string, resource: string, subresource: string): boolean {
  const full = subresource ? `${resource}/${subresource}` : resource;
  if (pattern === '*' || pattern === full) return true;
  if (!subresource) return false;
  return pattern === `*/${subresource}` || pattern === `${resource}/*`;
}

function matchesResource(r: PolicyRule, a: AuditAttributes): boolean {
  if (!a.resourceRequest) return false;
  if (r.namespaces?.length && !r.namespaces.includes(a.namespace)) return false;
  if (!r.resources?.length) return true;
  return r.resources.some((g) => (g.group ?? '') === a.apiGroup
    && (!g.resources?.length || (g.resources.some((p) => resourceMatches(p, a.resource, a.subresource))
      && (!g.resourceNames?.length || g.resourceNames.includes(a.name)))));
}

function matchesNonResource(r: PolicyRule, a: AuditAttributes): boolean {
  if (a.resourceRequest) return false;
  return r.nonResourceURLs!.some((u) => u === '*' || u === a.path || (u.endsWith('*') && a.path.startsWith(u.slice(0, -1))));
}

function ruleMatches(r: PolicyRule, a: AuditAttributes): boolean {
  if (r.users?.length && !r.users.includes(a.user.name)) return false;
  if (r.userGroups?.length && !a.user.groups.some((g) => r.userGroups!.includes(g))) return false;
  if (r.verbs?.length && !r.verbs.includes(a.verb)) return false;
  if (r.namespaces?.length || r.resources?.length) return matchesResource(r, a);
  if (r.nonResourceURLs?.length) return matchesNonResource(r, a);
  return true;
}

/** The level and omitted stages for a request (None when no rule matches). */
export function evaluate(policy: AuditPolicy, a: AuditAttributes): { level: AuditLevel; omitStages: Set<AuditStage> } {
  for (const r of policy.rules) {
    if (ruleMatches(r, a)) return { level: r.level, omitStages: new Set([...policy.omitStages, ...(r.omitStages ?? [])]) };
  }
  return { level: 'None', omitStages: new Set() };
}
