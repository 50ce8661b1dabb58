// Objects kube-apiserver creates at start besides RBAC: the two system PriorityClasses (its
// scheduling post-start hook) and the API Priority and Fairness configuration (the mandatory
// `exempt` and `catch-all` pairs plus the suggested `probes` and `global-default`). skiff stores and
// serves the flow-control objects so tools that read them work; it does not enforce them.

type Obj = Record<string, any>;

export const SYSTEM_CLUSTER_CRITICAL = 2_000_000_000;
export const SYSTEM_NODE_CRITICAL = 2_000_001_000;

export function systemPriorityClasses(): Obj[] {
  const pc = (name: string, value: number, description: string): Obj => ({
    apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: { name },
    value, globalDefault: false, description, preemptionPolicy: 'PreemptLowerPriority',
  });
  return [
    pc('system-node-critical', SYSTEM_NODE_CRITICAL, 'Used for system critical pods that must not be moved from their current node.'),
    pc('system-cluster-critical', SYSTEM_CLUSTER_CRITICAL, 'Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.'),
  ];
}

const AUTOUPDATE = { 'apf.kubernetes.io/autoupdate-spec': 'true' };
const ALL_RESOURCES = [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'], clusterScope: true, namespaces: ['*'] }];
const ALL_NON_RESOURCES = [{ verbs: ['*'], nonResourceURLs: ['*'] }];
const group = (name: string) => ({ kind: 'Group', group: { name } });

function level(name: string, spec: Obj): Obj {
  return { apiVersion: 'flowcontrol.apiserver.k8s.io/v1', kind: 'PriorityLevelConfiguration', metadata: { name, annotations: AUTOUPDATE }, spec };
}

function schema(name: string, priorityLevel: string, matchingPrecedence: number, rules: Obj[], byUser: boolean): Obj {
  return {
    apiVersion: 'flowcontrol.apiserver.k8s.io/v1', kind: 'FlowSchema', metadata: { name, annotations: AUTOUPDATE },
    spec: {
      priorityLevelConfiguration: { name: priorityLevel }, matchingPrecedence,
      ...(byUser ? { distinguisherMethod: { type: 'ByUser' } } : {}), rules,
    },
  };
}

const limited = (shares: number, queuing: boolean, lendablePercent = 0): Obj => ({
  type: 'Limited',
  limited: {
    nominalConcurrencyShares: shares, lendablePercent,
    limitResponse: queuing ? { type: 'Queue', queuing: { queues: 128, handSize: 6, queueLengthLimit: 50 } } : { type: 'Reject' },
  },
});

export function flowControlDefaults(): { levels: Obj[]; schemas: Obj[] } {
  return {
    levels: [
      level('exempt', { type: 'Exempt', exempt: { nominalConcurrencyShares: 0, lendablePercent: 0 } }),
      level('catch-all', limited(5, false)),
      level('global-default', limited(20, true, 50)),
    ],
    schemas: [
      schema('exempt', 'exempt', 1, [{ subjects: [group('system:masters')], resourceRules: ALL_RESOURCES, nonResourceRules: ALL_NON_RESOURCES }], false),
      schema('probes', 'exempt', 2, [{
        subjects: [group('system:unauthenticated'), group('system:authenticated')],
        nonResourceRules: [{ verbs: ['get'], nonResourceURLs: ['/healthz', '/readyz', '/livez'] }],
      }], false),
      schema('global-default', 'global-default', 9900, [{
        subjects: [group('system:unauthenticated'), group('system:authenticated')], resourceRules: ALL_RESOURCES, nonResourceRules: ALL_NON_RESOURCES,
      }], true),
      schema('catch-all', 'catch-all', 10000, [{
        subjects: [group('system:unauthenticated'), group('system:authenticated')], resourceRules: ALL_RESOURCES, nonResourceRules: ALL_NON_RESOURCES,
      }], true),
    ],
  };
}

/** The status kube-apiserver's APF config controller writes on a FlowSchema whose level exists. */
export function flowSchemaStatus(fs: Obj, now: string): Obj {
  const pl = fs.spec?.priorityLevelConfiguration?.name;
  return {
    conditions: [{
      type: 'Dangling', status: 'False', lastTransitionTime: now, reason: 'Found',
      message: `This FlowSchema references the PriorityLevelConfiguration object named "${pl}" and it exists`,
    }],
  };
}
