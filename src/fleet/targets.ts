// Which clusters a Bundle targets, and with which customization: Fleet's rules. `targets` are tried
// in order and the first one a cluster matches decides its options (a later, broader target does not
// override an earlier, narrower one); a target's criteria (clusterName, clusterSelector,
// clusterGroup, clusterGroupSelector) must all match; a target with none matches nothing (an empty
// selector `{}` matches every cluster, as a Kubernetes label selector does); `doNotDeploy` excludes.
// Pure: the bundle controller and the unit tests call it with plain lists.
import { compileLabelSelector } from '../api/selectors.js';
import type { LabelSelector } from '../api/selectors.js';
import type { BundleTarget, ClusterMatch, DeploymentOptions } from './api.js';

export interface ClusterInfo {
  name: string;
  labels: Record<string, string>;
}

export interface GroupInfo {
  name: string;
  labels?: Record<string, string>;
  selector?: LabelSelector;
}

/** The names of the groups each cluster belongs to (a group without a selector has no members). */
export function groupsOf(clusters: ClusterInfo[], groups: GroupInfo[]): Map<string, GroupInfo[]> {
  const out = new Map<string, GroupInfo[]>();
  const matchers = groups.map((g) => ({ g, m: g.selector ? compileLabelSelector(g.selector) : () => false }));
  for (const c of clusters) out.set(c.name, matchers.filter(({ m }) => m(c.labels)).map(({ g }) => g));
  return out;
}

/** Whether one cluster matches a target's (or a partition's) criteria. */
export function matchesCluster(m: ClusterMatch, c: ClusterInfo, groups: GroupInfo[]): boolean {
  const any = m.clusterName !== undefined || m.clusterSelector !== undefined || m.clusterGroup !== undefined || m.clusterGroupSelector !== undefined;
  if (!any) return false;
  if (m.clusterName !== undefined && m.clusterName !== c.name) return false;
  if (m.clusterSelector !== undefined && !compileLabelSelector(m.clusterSelector)(c.labels)) return false;
  if (m.clusterGroup !== undefined && !groups.some((g) => g.name === m.clusterGroup)) return false;
  if (m.clusterGroupSelector !== undefined) {
    const sel = compileLabelSelector(m.clusterGroupSelector);
    if (!groups.some((g) => sel(g.labels ?? {}))) return false;
  }
  return true;
}

export interface TargetMatch {
  /** Index of the target that matched first. */
  index: number;
  target: BundleTarget;
}

/** Cluster name → the first target it matches (clusters matched by none, or by a doNotDeploy target, are absent). */
export function matchTargets(targets: BundleTarget[] | undefined, clusters: ClusterInfo[], groups: GroupInfo[]): Map<string, TargetMatch> {
  const member = groupsOf(clusters, groups);
  const out = new Map<string, TargetMatch>();
  for (const c of clusters) {
    const i = (targets ?? []).findIndex((t) => matchesCluster(t, c, member.get(c.name) ?? []));
    if (i >= 0 && !targets![i]!.doNotDeploy) out.set(c.name, { index: i, target: targets![i]! });
  }
  return out;
}

/** The options a cluster deploys with: the bundle's defaults overridden by its target's. */
export function optionsFor(bundle: DeploymentOptions, target: BundleTarget): DeploymentOptions {
  const out: DeploymentOptions = {};
  const ns = target.defaultNamespace ?? bundle.defaultNamespace;
  if (ns) out.defaultNamespace = ns;
  const values = { ...(bundle.values ?? {}), ...(target.values ?? {}) };
  if (Object.keys(values).length) out.values = values;
  if (target.patches?.length) out.patches = target.patches;
  const keep = target.keepResources ?? bundle.keepResources;
  if (keep) out.keepResources = true;
  return out;
}
