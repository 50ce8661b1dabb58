// skiff's rolling-upgrade API, `upgrade.skiff.io/v1alpha1` Upgrade (cluster-scoped), installed by every
// server at bootstrap. Shaped after system-upgrade-controller's Plan (version, nodeSelector,
// concurrency, cordon, drain, window) so its users read it at once; what it adds is the health gate:
// a node not Ready on the new version within `healthTimeoutSeconds` is rolled back by its own agent
// and the plan pauses (issue 14 item 5, docs/install.md "Upgrades").
//
// The server's controller (controller.ts) and each node's agent (src/agent/upgrade-*.ts) talk through
// annotations on the Node, which the node may write on its own object (node authorizer) and which
// survive a restart of either side:
//   controller → node: TARGET_* (plan, version, file, sha256, deadline)
//   node → controller: RUNNING_VERSION at every start; STATE / STATE_VERSION / MESSAGE while upgrading.
import type { KObject } from '../../api/object.js';
import type { LabelSelector } from '../../api/selectors.js';
import type { ResourceRef } from '../../client/types.js';

export const UPGRADE_GROUP = 'upgrade.skiff.io';
export const UPGRADE_VERSION = 'v1alpha1';
export const UPGRADES: ResourceRef = Object.freeze({ group: UPGRADE_GROUP, version: UPGRADE_VERSION, resource: 'upgrades' });

const A = `${UPGRADE_GROUP}/`;
export const ANN = {
  /** Written by the controller: which plan drives this node, and what to run. */
  plan: `${A}plan`,
  targetVersion: `${A}target-version`,
  targetFile: `${A}target-file`,
  targetSha256: `${A}target-sha256`,
  /** Seconds the node has to come back Ready on the new version before its agent rolls back. */
  healthTimeout: `${A}health-timeout`,
  /** When the controller handed the node its target (RFC 3339); the controller's own deadline counts from it. */
  targetTime: `${A}target-time`,
  /** Set when the controller cordoned the node (so it uncordons only what it cordoned). */
  cordoned: `${A}cordoned`,
  /** Written by the agent: the release version it runs (at every start). */
  runningVersion: `${A}version`,
  /** Written by the agent: where its upgrade to STATE_VERSION is (AgentState). */
  state: `${A}state`,
  stateVersion: `${A}state-version`,
  message: `${A}message`,
} as const;

/**
 * On every Upgrade the controller has seen: deleting it first lets go of the nodes it holds (uncordons
 * what it cordoned, clears its annotations), so no node stays cordoned or half-targeted.
 */
export const FINALIZER = `${UPGRADE_GROUP}/cleanup`;

/** The annotations the controller writes on a node it drives (cleared when it lets go). */
export const CONTROLLER_ANNOTATIONS = [ANN.plan, ANN.targetVersion, ANN.targetFile, ANN.targetSha256, ANN.healthTimeout, ANN.targetTime, ANN.cordoned] as const;

/** What an agent reports about its own upgrade to `stateVersion`. */
export type AgentState = 'Downloading' | 'Installing' | 'Restarting' | 'Upgraded' | 'RolledBack' | 'Failed';

export interface UpgradeSpec {
  /** The release version to run (a `skiff-<version>-linux-<arch>.tar.gz` in the server's release dir). */
  version: string;
  /** Nodes it applies to; absent: every node. */
  nodeSelector?: LabelSelector;
  /** Agents upgraded at once (default 1). Servers always go one at a time, before any agent. */
  concurrency?: number;
  /** Mark the node unschedulable while it upgrades (implied by drain). */
  cordon?: boolean;
  /** Evict the node's pods first (kubectl drain's options). */
  drain?: { timeoutSeconds?: number; gracePeriodSeconds?: number; force?: boolean; ignoreDaemonSets?: boolean; deleteEmptydirData?: boolean };
  /** Only start nodes inside this window (system-upgrade-controller's shape); running ones finish. */
  window?: { days?: string[]; startTime?: string; endTime?: string; timeZone?: string };
  /** Seconds a node has to be Ready on the new version before its agent rolls it back (default 180). */
  healthTimeoutSeconds?: number;
  /** Start no further node. */
  paused?: boolean;
}

export type NodePhase = 'Pending' | 'Cordoning' | 'Draining' | 'Upgrading' | 'Upgraded' | 'Failed';

export interface NodeUpgradeStatus {
  name: string;
  role: 'server' | 'agent';
  phase: NodePhase;
  /** The release version the node runs now. */
  version?: string;
  /** The agent's own report (Downloading, Restarting, RolledBack...). */
  agentState?: string;
  message?: string;
}

export interface UpgradeCondition { type: string; status: 'True' | 'False' | 'Unknown'; reason?: string; message?: string; lastTransitionTime?: string }

export interface UpgradeStatus {
  observedGeneration?: number;
  /** The artifact per architecture the plan resolved (file and sha256 from the release dir's SHA256SUMS). */
  artifacts?: Record<string, { file: string; sha256: string }>;
  nodes?: NodeUpgradeStatus[];
  conditions?: UpgradeCondition[];
  /** Preformatted printer columns. */
  display?: { progress?: string; nodes?: string; state?: string; message?: string };
}

export type Upgrade = KObject & { spec: UpgradeSpec; status?: UpgradeStatus };

const str = { type: 'string' } as const;
const int = { type: 'integer', format: 'int32' } as const;
const bool = { type: 'boolean' } as const;
const labelSelector = {
  type: 'object',
  properties: {
    matchLabels: { type: 'object', additionalProperties: str },
    matchExpressions: { type: 'array', items: { type: 'object', required: ['key', 'operator'], properties: { key: str, operator: str, values: { type: 'array', items: str } } } },
  },
};

/** The Upgrade CRD every server installs at bootstrap. */
export function upgradeCrd(): KObject {
  return {
    apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition',
    metadata: { name: `upgrades.${UPGRADE_GROUP}`, labels: { 'app.kubernetes.io/managed-by': 'skiff' } },
    spec: {
      group: UPGRADE_GROUP, scope: 'Cluster',
      names: { plural: 'upgrades', singular: 'upgrade', kind: 'Upgrade', listKind: 'UpgradeList', shortNames: ['upg'] },
      versions: [{
        name: UPGRADE_VERSION, served: true, storage: true,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: {
              spec: {
                type: 'object', required: ['version'],
                properties: {
                  version: { type: 'string', minLength: 1, pattern: '^[0-9A-Za-z][0-9A-Za-z.+_-]*$' },
                  nodeSelector: labelSelector,
                  concurrency: { ...int, minimum: 1 },
                  cordon: bool,
                  drain: { type: 'object', properties: { timeoutSeconds: int, gracePeriodSeconds: int, force: bool, ignoreDaemonSets: bool, deleteEmptydirData: bool } },
                  window: { type: 'object', properties: { days: { type: 'array', items: str }, startTime: str, endTime: str, timeZone: str } },
                  healthTimeoutSeconds: { ...int, minimum: 10 },
                  paused: bool,
                },
              },
              status: {
                type: 'object',
                properties: {
                  observedGeneration: { type: 'integer', format: 'int64' },
                  artifacts: { type: 'object', additionalProperties: { type: 'object', properties: { file: str, sha256: str } } },
                  nodes: {
                    type: 'array',
                    items: { type: 'object', required: ['name'], properties: { name: str, role: str, phase: str, version: str, agentState: str, message: str } },
                  },
                  conditions: {
                    type: 'array', 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'],
                    items: { type: 'object', required: ['type', 'status'], properties: { type: str, status: str, reason: str, message: str, lastTransitionTime: { type: 'string', format: 'date-time' } } },
                  },
                  display: { type: 'object', properties: { progress: str, nodes: str, state: str, message: str } },
                },
              },
            },
          },
        },
        additionalPrinterColumns: [
          { name: 'Version', type: 'string', jsonPath: '.spec.version' },
          { name: 'State', type: 'string', jsonPath: '.status.display.state' },
          { name: 'Upgraded', type: 'string', jsonPath: '.status.display.progress', description: 'upgraded/selected nodes' },
          { name: 'Nodes', type: 'string', jsonPath: '.status.display.nodes', description: 'each node: its phase (or version once upgraded)' },
          { name: 'Message', type: 'string', jsonPath: '.status.display.message', priority: 1 },
          { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
        ],
      }],
    },
  };
}

/** The release file of `version` for a node architecture (as scripts/release.mjs names it). */
export function releaseFileName(version: string, arch: string): string {
  return `skiff-${version}-linux-${arch}.tar.gz`;
}
