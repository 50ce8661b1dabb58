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
// - Bundle and GitRepo (namespaced): shaped as Fleet's so its users read them at once. A Bundle's
//   per-cluster state lives in one BundleDeployment per cluster × bundle (in the bundle's namespace,
//   labelled with both), so no object grows with the fleet; the Bundle's status only sums them.
import type { KObject } from '../api/object.js';
import type { ResourceRef } from '../client/types.js';
import type { LabelSelector } from '../api/selectors.js';

export const FLEET_GROUP = 'fleet.skiff.io';
export const FLEET_VERSION = 'v1alpha1';
export const FLEET_API_VERSION = `${FLEET_GROUP}/${FLEET_VERSION}`;

export const CLUSTERS: ResourceRef = Object.freeze({ group: FLEET_GROUP, version: FLEET_VERSION, resource: 'clusters' });
export const CLUSTER_GROUPS: ResourceRef = Object.freeze({ group: FLEET_GROUP, version: FLEET_VERSION, resource: 'clustergroups' });
export const BUNDLES: ResourceRef = Object.freeze({ group: FLEET_GROUP, version: FLEET_VERSION, resource: 'bundles' });
export const GIT_REPOS: ResourceRef = Object.freeze({ group: FLEET_GROUP, version: FLEET_VERSION, resource: 'gitrepos' });
export const BUNDLE_DEPLOYMENTS: ResourceRef = Object.freeze({ group: FLEET_GROUP, version: FLEET_VERSION, resource: 'bundledeployments' });

/** Labels on a BundleDeployment (and the Bundles a GitRepo made): what it belongs to. */
export const BUNDLE_LABEL = 'fleet.skiff.io/bundle-name';
export const BUNDLE_NAMESPACE_LABEL = 'fleet.skiff.io/bundle-namespace';
export const CLUSTER_LABEL = 'fleet.skiff.io/cluster';
export const GITREPO_LABEL = 'fleet.skiff.io/repo-name';

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
  /**
   * The bundles deployed to this cluster, summed over its BundleDeployments (Fleet's Cluster
   * status.summary): counts only, plus at most a few names of the ones not Ready.
   */
  summary?: ClusterBundleSummary;
  /** Preformatted printer columns (kubectl cannot compute `3/4` from two fields). */
  display?: { nodes?: string; state?: string; readyBundles?: string };
}

/** Bundle counts on one cluster: the Bundle's summary fields, by BundleDeployment; `nonReadyBundles` as `namespace/name`. */
export interface ClusterBundleSummary {
  desiredReady: number; ready: number; notReady: number; pending: number; waitApplied: number; errApplied: number; offline: number;
  nonReadyBundles?: string[];
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

const intOrString = { 'x-kubernetes-int-or-string': true } as const;
const preserve = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } as const;
/** Per-target customization (Fleet's BundleDeploymentOptions, the parts skiff implements). */
const deploymentOptions = {
  defaultNamespace: str,
  /** Substituted into string values of the manifests as `${ .Values.key }` (themselves templated). */
  values: preserve,
  /** Per-target patches: `{kind, name, namespace?, type: json|merge|strategic, patch}`. */
  patches: {
    type: 'array',
    items: {
      type: 'object', required: ['patch'],
      properties: { apiVersion: str, kind: str, name: str, namespace: str, type: str, patch: { 'x-kubernetes-preserve-unknown-fields': true } },
    },
  },
  keepResources: { type: 'boolean' },
};
const clusterMatch = { clusterName: str, clusterSelector: labelSelector, clusterGroup: str, clusterGroupSelector: labelSelector };
const bundleTargets = {
  type: 'array',
  items: { type: 'object', properties: { name: str, ...clusterMatch, ...deploymentOptions, doNotDeploy: { type: 'boolean' } } },
};
const rolloutStrategy = {
  type: 'object',
  properties: {
    maxUnavailable: intOrString, maxUnavailablePartitions: intOrString, autoPartitionSize: intOrString,
    partitions: { type: 'array', items: { type: 'object', properties: { name: str, maxUnavailable: intOrString, ...clusterMatch } } },
    /** skiff's: what an offline cluster is to a partition's gate: Skip (default) or CountUnavailable. */
    offlineClusters: { type: 'string', enum: ['Skip', 'CountUnavailable'] },
  },
};
const bundleSpecProps = {
  defaultNamespace: str,
  paused: { type: 'boolean' },
  keepResources: { type: 'boolean' },
  dependsOn: { type: 'array', items: { type: 'object', properties: { name: str, selector: labelSelector } } },
  rolloutStrategy,
};
const summary = {
  type: 'object',
  properties: {
    desiredReady: int, ready: int, notReady: int, pending: int, waitApplied: int, errApplied: int, offline: int,
    nonReadyClusters: { type: 'array', items: str },
  },
};

const clusterSummary = {
  type: 'object',
  properties: {
    desiredReady: int, ready: int, notReady: int, pending: int, waitApplied: int, errApplied: int, offline: int,
    nonReadyBundles: { type: 'array', items: str },
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
        summary: clusterSummary,
        display: { type: 'object', properties: { nodes: str, state: str, readyBundles: str } },
      },
    }, [
      { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
      { name: 'Nodes', type: 'string', jsonPath: '.status.display.nodes', description: 'ready/total nodes' },
      { name: 'Version', type: 'string', jsonPath: '.status.version' },
      { name: 'Last-Seen', type: 'date', jsonPath: '.status.lastSeen' },
      // Fleet's column name and field (display.readyBundles): ready/total of the BundleDeployments on the cluster.
      { name: 'Bundles-Ready', type: 'string', jsonPath: '.status.display.readyBundles', description: 'ready/total bundles deployed to the cluster' },
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
    crd('bundles', 'Bundle', 'Namespaced', {
      type: 'object',
      properties: {
        resources: { type: 'array', items: { type: 'object', properties: { name: str, content: str, encoding: str } } },
        /** Manifests kept in ConfigMaps (each key a file): how content past an object's size limit is stored, in chunks. */
        resourcesFrom: { type: 'array', items: { type: 'object', properties: { configMapRef: { type: 'object', required: ['name'], properties: { name: str } } } } },
        targets: bundleTargets,
        ...bundleSpecProps,
      },
    }, {
      type: 'object',
      properties: {
        conditions, summary,
        /** The deployment the bundle's content and options currently make (`s-<sha256>`). */
        contentHash: str,
        partitions: {
          type: 'array',
          items: { type: 'object', properties: { name: str, count: int, maxUnavailable: int, unavailable: int, summary } },
        },
        observedGeneration: { type: 'integer', format: 'int64' },
        display: { type: 'object', properties: { readyClusters: str, state: str, message: str } },
      },
    }, [
      { name: 'Clusters-Ready', type: 'string', jsonPath: '.status.display.readyClusters' },
      { name: 'State', type: 'string', jsonPath: '.status.display.state' },
      { name: 'Message', type: 'string', jsonPath: '.status.display.message', priority: 1 },
    ]),
    crd('bundledeployments', 'BundleDeployment', 'Namespaced', {
      type: 'object',
      properties: {
        bundle: str, cluster: str,
        /** What the cluster should run: content hash and options hash (`s-<content>:<options>`). */
        deploymentID: str,
        /** The version waiting for its partition's turn in a staged rollout (not applied yet). */
        stagedDeploymentID: str,
        contentHash: str,
        options: { type: 'object', properties: { ...deploymentOptions, clusterName: str, clusterLabels: { type: 'object', additionalProperties: str } } },
        paused: { type: 'boolean' },
      },
    }, {
      type: 'object',
      properties: {
        appliedDeploymentID: str, ready: { type: 'boolean' }, nonModified: { type: 'boolean' },
        resources: int, message: str, conditions,
        display: { type: 'object', properties: { deployed: str, monitored: str, state: str } },
      },
    }, [
      { name: 'Cluster', type: 'string', jsonPath: '.spec.cluster' },
      { name: 'Deployed', type: 'string', jsonPath: '.status.display.deployed' },
      { name: 'Monitored', type: 'string', jsonPath: '.status.display.monitored' },
      { name: 'State', type: 'string', jsonPath: '.status.display.state' },
      { name: 'Message', type: 'string', jsonPath: '.status.message', priority: 1 },
    ], ['bd']),
    crd('gitrepos', 'GitRepo', 'Namespaced', {
      type: 'object', required: ['repo'],
      properties: {
        repo: str, branch: str, revision: str, paths: { type: 'array', items: str },
        pollingInterval: str, clientSecretName: str,
        targets: bundleTargets,
        ...bundleSpecProps,
      },
    }, {
      type: 'object',
      properties: {
        commit: str, conditions, lastPollingTime: { type: 'string', format: 'date-time' },
        bundles: { type: 'array', items: str },
        display: { type: 'object', properties: { readyBundles: str, state: str, message: str } },
      },
    }, [
      { name: 'Repo', type: 'string', jsonPath: '.spec.repo' },
      { name: 'Commit', type: 'string', jsonPath: '.status.commit' },
      { name: 'Bundles', type: 'string', jsonPath: '.status.display.readyBundles' },
      { name: 'State', type: 'string', jsonPath: '.status.display.state' },
      { name: 'Message', type: 'string', jsonPath: '.status.display.message', priority: 1 },
    ]),
  ];
}

// ---- Bundles (Fleet's shape) ----

export interface ClusterMatch {
  clusterName?: string;
  clusterSelector?: LabelSelector;
  clusterGroup?: string;
  clusterGroupSelector?: LabelSelector;
}

export interface BundlePatch {
  apiVersion?: string;
  kind?: string;
  name?: string;
  namespace?: string;
  /** `strategic` (default, as kubectl patch), `merge` or `json`. */
  type?: 'json' | 'merge' | 'strategic';
  patch: unknown;
}

export interface DeploymentOptions {
  defaultNamespace?: string;
  values?: Record<string, unknown>;
  patches?: BundlePatch[];
  keepResources?: boolean;
}

export interface BundleTarget extends ClusterMatch, DeploymentOptions {
  name?: string;
  doNotDeploy?: boolean;
}

export interface Partition extends ClusterMatch {
  name?: string;
  maxUnavailable?: number | string;
}

export interface RolloutStrategy {
  maxUnavailable?: number | string;
  maxUnavailablePartitions?: number | string;
  autoPartitionSize?: number | string;
  partitions?: Partition[];
  offlineClusters?: 'Skip' | 'CountUnavailable';
}

export interface BundleResource { name?: string; content?: string; encoding?: string }

export interface BundleSpec {
  resources?: BundleResource[];
  resourcesFrom?: { configMapRef?: { name?: string } }[];
  targets?: BundleTarget[];
  defaultNamespace?: string;
  paused?: boolean;
  keepResources?: boolean;
  dependsOn?: { name?: string; selector?: LabelSelector }[];
  rolloutStrategy?: RolloutStrategy;
}

export interface FleetCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

export interface BundleSummary {
  desiredReady: number; ready: number; notReady: number; pending: number; waitApplied: number; errApplied: number; offline: number;
  nonReadyClusters?: string[];
}

export type Bundle = KObject & {
  spec?: BundleSpec;
  status?: {
    conditions?: FleetCondition[]; summary?: BundleSummary; contentHash?: string; observedGeneration?: number;
    partitions?: { name: string; count: number; maxUnavailable: number; unavailable: number; summary: BundleSummary }[];
    display?: { readyClusters?: string; state?: string; message?: string };
  };
};

/** Options a BundleDeployment carries to its site: the target's customization plus the cluster's name and labels. */
export interface ShippedOptions extends DeploymentOptions {
  clusterName: string;
  clusterLabels: Record<string, string>;
}

export type BundleDeployment = KObject & {
  spec?: {
    bundle?: string; cluster?: string; deploymentID?: string; stagedDeploymentID?: string; contentHash?: string;
    options?: ShippedOptions; paused?: boolean;
  };
  status?: {
    appliedDeploymentID?: string; ready?: boolean; nonModified?: boolean; resources?: number; message?: string;
    conditions?: FleetCondition[]; display?: { deployed?: string; monitored?: string; state?: string };
  };
};

export type GitRepo = KObject & {
  spec?: BundleSpec & { repo?: string; branch?: string; revision?: string; paths?: string[]; pollingInterval?: string; clientSecretName?: string };
  status?: {
    commit?: string; conditions?: FleetCondition[]; lastPollingTime?: string; bundles?: string[];
    display?: { readyBundles?: string; state?: string; message?: string };
  };
};
