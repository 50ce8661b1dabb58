// skiff's fleet API group, `fleet.skiff.io/v1alpha1`, installed by every server at bootstrap as CRDs
// (so a server becomes a manager by being given a registration token, nothing else):
//
// - Cluster (cluster-scoped): one per registered site. Labels are the site's `--cluster-label`s;
//   status is written by the manager from the site's heartbeats (nodes, capacity, version, last
//   seen, Ready/Offline). Cluster-scoped rather than in a `fleet-default` namespace as Rancher's
//   Fleet does: a site is infrastructure like a Node, its name is unique per manager, and reach is
//   granted as for nodes/proxy, with a ClusterRole naming the Cluster (resourceNames). Namespaced
//   workspaces can come later as a field without moving the objects.
// - ClusterGroup (cluster-scoped): a label selector over Clusters, with counts in its status.
// - Bundle and GitRepo (namespaced, schema only for now): shaped as Fleet's so its users read them
//   at once; the controllers that deploy them come next.
import type { KObject } from '../api/object.js';
import type { ResourceRef } from '../client/types.js';

export const FLEET_GROUP = 'fleet.skiff.io';
export const FLEET_VERSION = 'v1alpha1';
export const FLEET_API_VERSION = `${FLEET_GROUP}/${FLEET_VERSION}`;

export const CLUSTERS: ResourceRef = Object.freeze({ group: FLEET_GROUP, version: FLEET_VERSION, resource: 'clusters' });
export const CLUSTER_GROUPS: ResourceRef = Object.freeze({ group: FLEET_GROUP, version: FLEET_VERSION, resource: 'clustergroups' });
export const BUNDLES: ResourceRef = Object.freeze({ group: FLEET_GROUP, version: FLEET_VERSION, resource: 'bundles' });
export const GIT_REPOS: ResourceRef = Object.freeze({ group: FLEET_GROUP, version: FLEET_VERSION, resource: 'gitrepos' });

/** The user name a site's client certificate carries on the manager: `fleet:cluster:<name>`. */
export const CLUSTER_USER_PREFIX = 'fleet:cluster:';
/** The group of every site certificate (bound to nothing: a site's identity can do nothing but connect). */
export const CLUSTERS_GROUP = 'skiff:fleet-clusters';

export interface ClusterCondition {
  type: 'Ready' | 'Offline' | 'RegistrationConflict';
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  lastHeartbeatTime?: string;
}

export interface ClusterStatus {
  /** The site's skiff/Kubernetes version (its /version gitVersion). */
  version?: string;
  nodes?: { ready: number; total: number };
  /** Sums over the site's nodes, as quantities. */
  capacity?: { cpu?: string; memory?: string; pods?: string };
  /** The last heartbeat the manager wrote down (kept to within LAST_SEEN_RESOLUTION; see manager.ts). */
  lastSeen?: string;
  /** What binds the name to the site that first registered it. Delete the Cluster to free the name. */
  identity?: { secretHash: string; certificateFingerprint: string; registeredAt: string };
  conditions?: ClusterCondition[];
  /** Preformatted printer columns (kubectl cannot compute `3/4` from two fields). */
  display?: { nodes?: string; state?: string };
}

export type Cluster = KObject & { spec?: { paused?: boolean; description?: string }; status?: ClusterStatus };

const str = { type: 'string' } as const;
const int = { type: 'integer', format: 'int32' } as const;
const labelSelector = {
  type: 'object',
  properties: {
    matchLabels: { type: 'object', additionalProperties: str },
    matchExpressions: {
      type: 'array',
      items: {
        type: 'object', required: ['key', 'operator'],
        properties: { key: str, operator: str, values: { type: 'array', items: str } },
      },
    },
  },
};
const conditions = {
  type: 'array',
  'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'],
  items: {
    type: 'object', required: ['type', 'status'],
    properties: {
      type: str, status: str, reason: str, message: str,
      lastTransitionTime: { type: 'string', format: 'date-time' }, lastHeartbeatTime: { type: 'string', format: 'date-time' },
    },
  },
};

interface Column { name: string; type: string; jsonPath: string; priority?: number; description?: string }

function crd(plural: string, kind: string, scope: 'Cluster' | 'Namespaced', spec: Record<string, unknown>, status: Record<string, unknown>,
  columns: Column[], shortNames: string[] = []): KObject {
  return {
    apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${FLEET_GROUP}`, labels: { 'app.kubernetes.io/managed-by': 'skiff' } },
    spec: {
      group: FLEET_GROUP, scope,
      names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List`, categories: ['fleet'], ...(shortNames.length ? { shortNames } : {}) },
      versions: [{
        name: FLEET_VERSION, served: true, storage: true,
        subresources: { status: {} },
        schema: { openAPIV3Schema: { type: 'object', properties: { spec, status } } },
        additionalPrinterColumns: [...columns, { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }],
      }],
    },
  };
}

const bundleTargets = {
  type: 'array',
  items: {
    type: 'object',
    properties: {
      name: str, clusterName: str, clusterSelector: labelSelector, clusterGroup: str, clusterGroupSelector: labelSelector,
      // Per-target customization (values substituted into the manifests, patches): next session.
      'x-skiff-customization': { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
    },
  },
};

/** The fleet CRDs every server installs at bootstrap. */
export function fleetCrds(): KObject[] {
  return [
    crd('clusters', 'Cluster', 'Cluster', {
      type: 'object',
      properties: { paused: { type: 'boolean' }, description: str },
    }, {
      type: 'object',
      properties: {
        version: str,
        nodes: { type: 'object', properties: { ready: int, total: int } },
        capacity: { type: 'object', properties: { cpu: str, memory: str, pods: str } },
        lastSeen: { type: 'string', format: 'date-time' },
        identity: { type: 'object', properties: { secretHash: str, certificateFingerprint: str, registeredAt: { type: 'string', format: 'date-time' } } },
        conditions,
        display: { type: 'object', properties: { nodes: str, state: str } },
      },
    }, [
      { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
      { name: 'Nodes', type: 'string', jsonPath: '.status.display.nodes', description: 'ready/total nodes' },
      { name: 'Version', type: 'string', jsonPath: '.status.version' },
      { name: 'Last-Seen', type: 'date', jsonPath: '.status.lastSeen' },
      { name: 'State', type: 'string', jsonPath: '.status.display.state', priority: 1 },
    ], ['fc']),
    crd('clustergroups', 'ClusterGroup', 'Cluster', {
      type: 'object',
      properties: { selector: labelSelector },
    }, {
      type: 'object',
      properties: {
        clusterCount: int, nonReadyClusterCount: int, nonReadyClusters: { type: 'array', items: str },
        display: { type: 'object', properties: { readyClusters: str } },
      },
    }, [
      { name: 'Clusters-Ready', type: 'string', jsonPath: '.status.display.readyClusters' },
    ], ['cg']),
    // Schema only: the bundle deployer and rollouts are the next step (issue 17 items 2 and 3).
    crd('bundles', 'Bundle', 'Namespaced', {
      type: 'object',
      properties: {
        resources: { type: 'array', items: { type: 'object', properties: { name: str, content: str, encoding: str } } },
        targets: bundleTargets,
        defaultNamespace: str,
        paused: { type: 'boolean' },
        keepResources: { type: 'boolean' },
        dependsOn: { type: 'array', items: { type: 'object', properties: { name: str, selector: labelSelector } } },
        rolloutStrategy: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
      },
    }, {
      type: 'object', 'x-kubernetes-preserve-unknown-fields': true,
      properties: { conditions, display: { type: 'object', properties: { readyClusters: str } } },
    }, [
      { name: 'Clusters-Ready', type: 'string', jsonPath: '.status.display.readyClusters' },
    ]),
    crd('gitrepos', 'GitRepo', 'Namespaced', {
      type: 'object', required: ['repo'],
      properties: {
        repo: str, branch: str, revision: str, paths: { type: 'array', items: str },
        pollingInterval: str, clientSecretName: str, paused: { type: 'boolean' },
        targets: bundleTargets,
      },
    }, {
      type: 'object', 'x-kubernetes-preserve-unknown-fields': true,
      properties: { commit: str, conditions, display: { type: 'object', properties: { readyClusters: str } } },
    }, [
      { name: 'Repo', type: 'string', jsonPath: '.spec.repo' },
      { name: 'Commit', type: 'string', jsonPath: '.status.commit' },
    ]),
  ];
}
