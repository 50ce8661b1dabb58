// nodeSelector and node affinity: the required part filters nodes, the preferred part scores them.
import { compileNodeSelectorTerm, compileNodeSelectorTerms, type NodeMatcher, type NodeView } from './selectors.js';
import { matchLabelSet } from '../../api/selectors.js';
import type { Pod } from './types.js';

export class NodeAffinity {
  /** Whether the pod names any node constraint at all (else the filter is skipped). */
  readonly constrained: boolean;
  readonly matches: NodeMatcher;
  /**
   * When every required term pins `metadata.name In [...]`, only those nodes are examined; the others
   * fail without evaluation, as kube-scheduler's NodeAffinity PreFilter does. Empty means the terms
   * contradict each other.
   */
  readonly nodeNames: Set<string> | undefined;
  readonly hasPreferred: boolean;
  private readonly preferred: { weight: number; match: NodeMatcher }[];

  constructor(pod: Pod) {
    const spec = pod.spec ?? {};
    const checks: NodeMatcher[] = [];
    const selector: Record<string, string> | undefined = spec.nodeSelector;
    if (selector && Object.keys(selector).length) checks.push((n) => matchLabelSet(selector, n.labels));
    const required = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
    if (required) checks.push(compileNodeSelectorTerms(required.nodeSelectorTerms ?? []));
    this.constrained = checks.length > 0;
    this.matches = checks.length === 0 ? () => true
      : checks.length === 1 ? checks[0]!
      : (n: NodeView) => checks[0]!(n) && checks[1]!(n);
    this.nodeNames = namesPinnedBy(required?.nodeSelectorTerms);
    this.preferred = (spec.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [])
      .filter((p) => p.weight !== 0)
      .map((p) => ({ weight: p.weight, match: compileNodeSelectorTerm(p.preference) }));
    this.hasPreferred = this.preferred.length > 0;
  }

  /** Sum of the weights of the preferred terms the node matches. */
  preferredScore(n: NodeView): number {
    let s = 0;
    for (const p of this.preferred) if (p.match(n)) s += p.weight;
    return s;
  }
}

function namesPinnedBy(terms: { matchFields?: { key: string; operator: string; values?: string[] }[] }[] | undefined): Set<string> | undefined {
  if (!terms?.length) return undefined;
  const union = new Set<string>();
  for (const t of terms) {
    let names: Set<string> | undefined;
    for (const f of t.matchFields ?? []) {
      if (f.key !== 'metadata.name' || f.operator !== 'In') continue;
      const s = new Set(f.values ?? []);
      names = names ? new Set([...names].filter((n) => s.has(n))) : s;
    }
    if (!names) return undefined; // this term may match any node, and terms are ORed
    for (const n of names) union.add(n);
  }
  return union;
}
