// Node selector terms compiled once into predicates, so the per-node loop runs closures instead of
// re-reading specs; label selectors compile in api/selectors.ts.
import type { LabelSelector, Labels } from '../../api/selectors.js';
import type { NodeSelectorRequirement, NodeSelectorTerm } from './types.js';

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
