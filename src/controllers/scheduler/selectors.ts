// Label selectors (pods, namespaces) and node selector terms compiled once into predicates, so the
// per-node loop runs closures instead of re-reading specs.
import type { LabelSelector, NodeSelectorRequirement, NodeSelectorTerm } from './types.js';

export type Labels = Record<string, string> | undefined;
export type LabelMatcher = (labels: Labels) => boolean;

export const matchNothing: LabelMatcher = () => false;
export const matchEverything: LabelMatcher = () => true;

/** metav1.LabelSelector semantics: an absent selector matches nothing, an empty one everything. */
export function compileLabelSelector(sel: LabelSelector | null | undefined): LabelMatcher {
  if (!sel) return matchNothing;
  const checks: LabelMatcher[] = [];
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) checks.push((l) => l?.[k] === v);
  for (const e of sel.matchExpressions ?? []) {
    const key = e.key;
    const values = new Set(e.values ?? []);
    switch (e.operator) {
      case 'In': checks.push((l) => l?.[key] !== undefined && values.has(l[key]!)); break;
      case 'NotIn': checks.push((l) => l?.[key] === undefined || !values.has(l[key]!)); break;
      case 'Exists': checks.push((l) => l?.[key] !== undefined); break;
      case 'DoesNotExist': checks.push((l) => l?.[key] === undefined); break;
      default: return matchNothing; // an invalid operator makes the selector unusable, as in apimachinery
    }
  }
  if (checks.length === 0) return matchEverything;
  if (checks.length === 1) return checks[0]!;
  return (l) => {
    for (const c of checks) if (!c(l)) return false;
    return true;
  };
}

/** A label selector plus extra `key In/NotIn (value)` requirements (matchLabelKeys, mismatchLabelKeys). */
export function withLabelKeys(sel: LabelSelector | null | undefined, podLabels: Labels, matchKeys?: string[], mismatchKeys?: string[]): LabelSelector | null | undefined {
  if (!sel || (!matchKeys?.length && !mismatchKeys?.length)) return sel;
  const extra: LabelSelector['matchExpressions'] = [];
  for (const k of matchKeys ?? []) if (podLabels?.[k] !== undefined) extra.push({ key: k, operator: 'In', values: [podLabels[k]!] });
  for (const k of mismatchKeys ?? []) if (podLabels?.[k] !== undefined) extra.push({ key: k, operator: 'NotIn', values: [podLabels[k]!] });
  return { matchLabels: sel.matchLabels, matchExpressions: [...(sel.matchExpressions ?? []), ...extra] };
}

export interface NodeView { name: string; labels: Labels }
export type NodeMatcher = (node: NodeView) => boolean;

function requirement(r: NodeSelectorRequirement, read: (n: NodeView) => string | undefined): NodeMatcher | undefined {
  const values = r.values ?? [];
  const set = new Set(values);
  switch (r.operator) {
    case 'In': return (n) => { const v = read(n); return v !== undefined && set.has(v); };
    case 'NotIn': return (n) => { const v = read(n); return v === undefined || !set.has(v); };
    case 'Exists': return (n) => read(n) !== undefined;
    case 'DoesNotExist': return (n) => read(n) === undefined;
    case 'Gt':
    case 'Lt': {
      // Both sides must be integers; anything else never matches.
      if (values.length !== 1 || !/^-?\d+$/.test(values[0]!)) return undefined;
      const bound = Number(values[0]);
      const gt = r.operator === 'Gt';
      return (n) => {
        const v = read(n);
        if (v === undefined || !/^-?\d+$/.test(v)) return false;
        return gt ? Number(v) > bound : Number(v) < bound;
      };
    }
    default: return undefined;
  }
}

/** One NodeSelectorTerm: its expressions and fields ANDed; an empty or invalid term matches nothing. */
export function compileNodeSelectorTerm(t: NodeSelectorTerm): NodeMatcher {
  const checks: NodeMatcher[] = [];
  for (const r of t.matchExpressions ?? []) {
    const key = r.key;
    const c = requirement(r, (n) => n.labels?.[key]);
    if (!c) return () => false;
    checks.push(c);
  }
  for (const r of t.matchFields ?? []) {
    // metadata.name is the only field a node selector may name, and only with In/NotIn.
    if (r.key !== 'metadata.name' || (r.operator !== 'In' && r.operator !== 'NotIn')) return () => false;
    checks.push(requirement(r, (n) => n.name)!);
  }
  if (checks.length === 0) return () => false;
  return (n) => {
    for (const c of checks) if (!c(n)) return false;
    return true;
  };
}

/** Terms are ORed. */
export function compileNodeSelectorTerms(terms: NodeSelectorTerm[]): NodeMatcher {
  const compiled = terms.map(compileNodeSelectorTerm);
  return (n) => {
    for (const c of compiled) if (c(n)) return true;
    return false;
  };
}
