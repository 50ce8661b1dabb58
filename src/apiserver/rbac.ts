// Role-based access control with Kubernetes' semantics: deny by default; ClusterRoleBindings grant
// everywhere; RoleBindings grant inside their namespace (referring to a Role there or to a ClusterRole);
// the first rule that allows wins. Aggregated ClusterRoles (admin/edit/view and anything a CRD author
// labels into them) are resolved here at evaluation time instead of by a controller rewriting objects.
import type { KObject } from '../api/object.js';
import { matchLabelSelectorObject, type LabelSelector } from '../api/selectors.js';
import type { UserInfo } from './authn.js';

export interface RbacSource {
  clusterRoles(): KObject[];
  clusterRoleBindings(): KObject[];
  roles(ns: string): KObject[];
  roleBindings(ns: string): KObject[];
  clusterRole(name: string): KObject | undefined;
  role(ns: string, name: string): KObject | undefined;
}

export interface Attributes {
  user: UserInfo;
  verb: string;
  apiGroup: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  /** The request path; what nonResourceURLs match. */
  path: string;
  resourceRequest: boolean;
}

export interface Decision {
  allowed: boolean;
  /** For allows, which binding and role granted it (as Kubernetes words it); for denies, any lookup errors. */
  reason: string;
}

export interface PolicyRule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

export interface ResourceRule {
  verbs: string[];
  apiGroups: string[];
  resources: string[];
  resourceNames?: string[];
}

export interface NonResourceRule {
  verbs: string[];
  nonResourceURLs: string[];
}

export interface RulesReview {
  resourceRules: ResourceRule[];
  nonResourceRules: NonResourceRule[];
  /** True when some binding referred to a missing role, so the list may be short. */
  incomplete: boolean;
  evaluationError?: string;
}

interface Subject {
  kind: string;
  name: string;
  namespace?: string;
}

interface RoleRef {
  kind: string;
  name: string;
}

/** Kubernetes' superuser group: its members pass every check, before and regardless of RBAC objects. */
export const SYSTEM_MASTERS = 'system:masters';

/** Called for each rule granted to the user in the namespace; return false to stop. */
type RuleVisitor = (rule: PolicyRule, source: () => string) => boolean;

export class RbacAuthorizer {
  constructor(private readonly source: RbacSource) {}

  authorize(a: Attributes): Decision {
    if (a.user.groups.includes(SYSTEM_MASTERS)) return { allowed: true, reason: '' };
    let reason = '';
    const errors = this.visitRules(a.user, a.namespace ?? '', (rule, source) => {
      if (!ruleAllows(a, rule)) return true;
      reason = `RBAC: allowed by ${source()}`;
      return false;
    });
    if (reason) return { allowed: true, reason };
    return { allowed: false, reason: errors.length ? `RBAC: ${errors.join(', ')}` : '' };
  }

  /** Everything the user may do in `namespace` (cluster-wide grants included), for SelfSubjectRulesReview. */
  rulesFor(user: UserInfo, namespace: string): RulesReview {
    if (user.groups.includes(SYSTEM_MASTERS)) {
      return {
        resourceRules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }],
        nonResourceRules: [{ verbs: ['*'], nonResourceURLs: ['*'] }],
        incomplete: false,
      };
    }
    const resourceRules: ResourceRule[] = [];
    const nonResourceRules: NonResourceRule[] = [];
    const errors = this.visitRules(user, namespace, (rule) => {
      if (rule.resources?.length) {
        resourceRules.push({
          verbs: rule.verbs, apiGroups: rule.apiGroups ?? [], resources: rule.resources,
          ...(rule.resourceNames?.length ? { resourceNames: rule.resourceNames } : {}),
        });
      }
      if (rule.nonResourceURLs?.length) nonResourceRules.push({ verbs: rule.verbs, nonResourceURLs: rule.nonResourceURLs });
      return true;
    });
    return { resourceRules, nonResourceRules, incomplete: errors.length > 0, ...(errors.length ? { evaluationError: errors.join(', ') } : {}) };
  }

  /** Walks the rules that apply to the user, cluster bindings first; returns lookup errors met on the way. */
  private visitRules(user: UserInfo, namespace: string, visit: RuleVisitor): string[] {
    const errors: string[] = [];
    const resolver = new RoleResolver(this.source);
    for (const binding of this.source.clusterRoleBindings()) {
      const subject = appliesTo(user, subjectsOf(binding), '');
      if (!subject) continue;
      const ref = roleRefOf(binding);
      const rules = ref.kind === 'ClusterRole' ? resolver.clusterRoleRules(ref.name) : undefined;
      if (!rules) {
        errors.push(missingRole(ref, ''));
        continue;
      }
      const source = () => `ClusterRoleBinding "${binding.metadata.name}" of ${ref.kind} "${ref.name}" to ${describeSubject(subject, '')}`;
      for (const rule of rules) if (!visit(rule, source)) return errors;
    }
    if (!namespace) return errors;
    for (const binding of this.source.roleBindings(namespace)) {
      const subject = appliesTo(user, subjectsOf(binding), namespace);
      if (!subject) continue;
      const ref = roleRefOf(binding);
      const rules = ref.kind === 'Role' ? rulesOf(this.source.role(namespace, ref.name))
        : ref.kind === 'ClusterRole' ? resolver.clusterRoleRules(ref.name) : undefined;
      if (!rules) {
        errors.push(missingRole(ref, namespace));
        continue;
      }
      const source = () => `RoleBinding "${binding.metadata.name}/${namespace}" of ${ref.kind} "${ref.name}" to ${describeSubject(subject, namespace)}`;
      for (const rule of rules) if (!visit(rule, source)) return errors;
    }
    return errors;
  }
}

/**
 * Resolves ClusterRole rules, expanding aggregation: an aggregated role's rules are the union of the rules
 * of every other ClusterRole its selectors match, followed transitively (admin takes edit, which takes
 * view), as the aggregation controller would converge to. One resolver serves one decision, so the
 * role list is read at most once per request.
 */
class RoleResolver {
  private all: KObject[] | undefined;
  private readonly aggregated = new Map<string, PolicyRule[]>();

  constructor(private readonly source: RbacSource) {}

  clusterRoleRules(name: string): PolicyRule[] | undefined {
    const role = this.source.clusterRole(name);
    if (!role) return undefined;
    return role.aggregationRule ? this.aggregate(role, new Set()) : rulesOf(role);
  }

  private aggregate(role: KObject, visiting: Set<string>): PolicyRule[] {
    const name = role.metadata.name ?? '';
    const cached = this.aggregated.get(name);
    if (cached) return cached;
    visiting.add(name);
    const selectors = ((role.aggregationRule as { clusterRoleSelectors?: LabelSelector[] }).clusterRoleSelectors ?? []);
    const out: PolicyRule[] = [];
    const seen = new Set<string>();
    this.all ??= [...this.source.clusterRoles()].sort((x, y) => (x.metadata.name ?? '').localeCompare(y.metadata.name ?? ''));
    for (const selector of selectors) {
      for (const other of this.all) {
        const otherName = other.metadata.name ?? '';
        if (otherName === name || visiting.has(otherName) || !matchLabelSelectorObject(selector, other.metadata.labels)) continue;
        const rules = other.aggregationRule ? this.aggregate(other, visiting) : rulesOf(other) ?? [];
        for (const rule of rules) {
          const key = JSON.stringify(rule);
          if (!seen.has(key)) {
            seen.add(key);
            out.push(rule);
          }
        }
      }
    }
    visiting.delete(name);
    this.aggregated.set(name, out);
    return out;
  }
}

export function ruleAllows(a: Attributes, rule: PolicyRule): boolean {
  if (!matchesVerb(rule.verbs, a.verb)) return false;
  if (!a.resourceRequest) return nonResourceUrlMatches(rule.nonResourceURLs ?? [], a.path);
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  return matchesAny(rule.apiGroups ?? [], a.apiGroup)
    && resourceMatches(rule.resources ?? [], resource, a.subresource ?? '')
    && resourceNameMatches(rule.resourceNames ?? [], a.name ?? '');
}

function matchesVerb(verbs: string[], verb: string): boolean {
  return verbs.includes('*') || verbs.includes(verb);
}

function matchesAny(list: string[], value: string): boolean {
  return list.includes('*') || list.includes(value);
}

function resourceMatches(ruleResources: string[], resource: string, subresource: string): boolean {
  for (const r of ruleResources) {
    if (r === '*' || r === resource) return true;
    // `*/scale` grants the scale subresource of every resource.
    if (subresource && r === `*/${subresource}`) return true;
  }
  return false;
}

function resourceNameMatches(names: string[], name: string): boolean {
  // A rule restricted to names never matches a request without one (list, create, deletecollection).
  return names.length === 0 || (name !== '' && names.includes(name));
}

function nonResourceUrlMatches(urls: string[], path: string): boolean {
  for (const u of urls) {
    if (u === '*' || u === path) return true;
    if (u.endsWith('*') && path.startsWith(u.slice(0, -1))) return true;
  }
  return false;
}

/** The first subject of a binding that names the user, or undefined. */
function appliesTo(user: UserInfo, subjects: Subject[], bindingNamespace: string): Subject | undefined {
  return subjects.find((s) => subjectMatches(user, s, bindingNamespace));
}

function subjectMatches(user: UserInfo, s: Subject, bindingNamespace: string): boolean {
  switch (s.kind) {
    case 'User':
      return user.name === s.name;
    case 'Group':
      return user.groups.includes(s.name);
    case 'ServiceAccount': {
      // In a RoleBinding a service account without a namespace means one in the binding's namespace.
      const ns = s.namespace || bindingNamespace;
      return ns !== '' && user.name === `system:serviceaccount:${ns}:${s.name}`;
    }
    default:
      return false;
  }
}

function describeSubject(s: Subject, bindingNamespace: string): string {
  if (s.kind === 'ServiceAccount') return `ServiceAccount "${s.namespace || bindingNamespace}/${s.name}"`;
  return `${s.kind} "${s.name}"`;
}

function missingRole(ref: RoleRef, namespace: string): string {
  if (ref.kind === 'Role') return `role.rbac.authorization.k8s.io "${ref.name}" not found in namespace "${namespace}"`;
  if (ref.kind === 'ClusterRole') return `clusterrole.rbac.authorization.k8s.io "${ref.name}" not found`;
  return `unsupported role reference kind: "${ref.kind}"`;
}

function subjectsOf(binding: KObject): Subject[] {
  return Array.isArray(binding.subjects) ? (binding.subjects as Subject[]) : [];
}

function roleRefOf(binding: KObject): RoleRef {
  const ref = binding.roleRef as Partial<RoleRef> | undefined;
  return { kind: ref?.kind ?? '', name: ref?.name ?? '' };
}

function rulesOf(role: KObject | undefined): PolicyRule[] | undefined {
  if (!role) return undefined;
  return Array.isArray(role.rules) ? (role.rules as PolicyRule[]) : [];
}
