// The default ClusterRoles and ClusterRoleBindings every Kubernetes cluster starts with (Kubernetes'
// bootstrap policy, re-expressed): users and tools expect `cluster-admin`, `admin`/`edit`/`view` (built by
// aggregation, so CRD authors can extend them), the `system:*` roles for discovery and for each component.
import type { KObject } from '../api/object.js';
import type { PolicyRule } from './rbac.js';

const RBAC = 'rbac.authorization.k8s.io';
const API_VERSION = `${RBAC}/v1`;
const BOOTSTRAP_LABELS = { 'kubernetes.io/bootstrapping': 'rbac-defaults' };
const AUTOUPDATE = { 'rbac.authorization.kubernetes.io/autoupdate': 'true' };

const READ = ['get', 'list', 'watch'];
const WRITE = ['create', 'delete', 'deletecollection', 'patch', 'update'];
const READ_WRITE = [...READ, ...WRITE];
const EVENT_WRITE = ['create', 'patch', 'update'];

const AGGREGATE_TO_ADMIN = `${RBAC}/aggregate-to-admin`;
const AGGREGATE_TO_EDIT = `${RBAC}/aggregate-to-edit`;
const AGGREGATE_TO_VIEW = `${RBAC}/aggregate-to-view`;

const sorted = (xs: string[]) => [...new Set(xs)].sort();

/** Kubernetes keeps every list in a bootstrap rule sorted; so do we, so `get -o yaml` reads the same. */
function rule(verbs: string[], apiGroups: string[], resources: string[], resourceNames?: string[]): PolicyRule {
  return { verbs: sorted(verbs), apiGroups: sorted(apiGroups), resources: sorted(resources), ...(resourceNames ? { resourceNames: sorted(resourceNames) } : {}) };
}

function urls(verbs: string[], nonResourceURLs: string[]): PolicyRule {
  return { verbs: sorted(verbs), nonResourceURLs: sorted(nonResourceURLs) };
}

const eventsRule = () => rule(EVENT_WRITE, ['', 'events.k8s.io'], ['events']);

interface RoleSpec {
  name: string;
  rules?: PolicyRule[];
  labels?: Record<string, string>;
  aggregateFrom?: string;
}

function clusterRole(spec: RoleSpec): KObject {
  return {
    apiVersion: API_VERSION,
    kind: 'ClusterRole',
    metadata: { name: spec.name, labels: { ...BOOTSTRAP_LABELS, ...spec.labels }, annotations: { ...AUTOUPDATE } },
    ...(spec.aggregateFrom ? { aggregationRule: { clusterRoleSelectors: [{ matchLabels: { [spec.aggregateFrom]: 'true' } }] } } : {}),
    rules: spec.rules ?? [],
  };
}

type SubjectSpec = ['User' | 'Group', string] | ['ServiceAccount', string, string];

function clusterRoleBinding(name: string, role: string, subjects: SubjectSpec[]): KObject {
  return {
    apiVersion: API_VERSION,
    kind: 'ClusterRoleBinding',
    metadata: { name, labels: { ...BOOTSTRAP_LABELS }, annotations: { ...AUTOUPDATE } },
    roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: role },
    // Kubernetes omits an empty subjects list rather than storing [].
    ...(subjects.length ? {
      subjects: subjects.map((s) => (s[0] === 'ServiceAccount'
        ? { kind: 'ServiceAccount', name: s[2], namespace: s[1] }
        : { apiGroup: RBAC, kind: s[0], name: s[1] })),
    } : {}),
  };
}

function clusterRoles(): KObject[] {
  return [
    clusterRole({ name: 'cluster-admin', rules: [rule(['*'], ['*'], ['*']), urls(['*'], ['*'])] }),

    // The user-facing roles are empty shells filled by aggregation: admin ⊇ edit ⊇ view.
    clusterRole({ name: 'admin', aggregateFrom: AGGREGATE_TO_ADMIN }),
    clusterRole({ name: 'edit', aggregateFrom: AGGREGATE_TO_EDIT, labels: { [AGGREGATE_TO_ADMIN]: 'true' } }),
    clusterRole({ name: 'view', aggregateFrom: AGGREGATE_TO_VIEW, labels: { [AGGREGATE_TO_EDIT]: 'true' } }),
    clusterRole({
      name: 'system:aggregate-to-admin', labels: { [AGGREGATE_TO_ADMIN]: 'true' }, rules: [
        rule(['create'], ['authorization.k8s.io'], ['localsubjectaccessreviews']),
        rule(READ_WRITE, [RBAC], ['roles', 'rolebindings']),
      ],
    }),
    clusterRole({
      name: 'system:aggregate-to-edit', labels: { [AGGREGATE_TO_EDIT]: 'true' }, rules: [
        // Reading secrets and reaching into pods is where edit starts: view must never get these.
        rule(READ, [''], ['pods/attach', 'pods/proxy', 'pods/exec', 'pods/portforward', 'secrets', 'services/proxy']),
        rule(['impersonate'], [''], ['serviceaccounts']),
        rule(WRITE, [''], ['pods', 'pods/attach', 'pods/proxy', 'pods/exec', 'pods/portforward']),
        rule(['create'], [''], ['pods/eviction']),
        rule(WRITE, [''], ['replicationcontrollers', 'replicationcontrollers/scale', 'serviceaccounts', 'services', 'services/proxy',
          'persistentvolumeclaims', 'configmaps', 'secrets']),
        rule(['create'], [''], ['serviceaccounts/token']),
        rule(WRITE, ['', 'events.k8s.io'], ['events']),
        rule(WRITE, ['apps'], ['statefulsets', 'statefulsets/scale', 'daemonsets', 'deployments', 'deployments/scale', 'deployments/rollback',
          'replicasets', 'replicasets/scale']),
        rule(WRITE, ['autoscaling'], ['horizontalpodautoscalers']),
        rule(WRITE, ['batch'], ['jobs', 'cronjobs']),
        rule(WRITE, ['extensions'], ['daemonsets', 'deployments', 'deployments/scale', 'deployments/rollback', 'ingresses', 'replicasets',
          'replicasets/scale', 'replicationcontrollers/scale', 'networkpolicies']),
        rule(WRITE, ['policy'], ['poddisruptionbudgets']),
        rule(WRITE, ['networking.k8s.io'], ['ingresses', 'networkpolicies']),
        rule(READ_WRITE, ['coordination.k8s.io'], ['leases']),
        rule(WRITE, ['resource.k8s.io'], ['resourceclaims', 'resourceclaimtemplates']),
      ],
    }),
    // What metrics-server's manifest adds (k3s ships it): resource metrics for view, edit and admin.
    clusterRole({
      name: 'system:aggregated-metrics-reader',
      labels: { [AGGREGATE_TO_VIEW]: 'true', [AGGREGATE_TO_EDIT]: 'true', [AGGREGATE_TO_ADMIN]: 'true' },
      rules: [rule(READ, ['metrics.k8s.io'], ['pods', 'nodes'])],
    }),
    clusterRole({
      name: 'system:aggregate-to-view', labels: { [AGGREGATE_TO_VIEW]: 'true' }, rules: [
        rule(READ, [''], ['pods', 'replicationcontrollers', 'replicationcontrollers/scale', 'serviceaccounts', 'services', 'services/status',
          'endpoints', 'persistentvolumeclaims', 'persistentvolumeclaims/status', 'configmaps']),
        rule(READ, [''], ['limitranges', 'resourcequotas', 'bindings', 'pods/status', 'resourcequotas/status', 'namespaces/status',
          'replicationcontrollers/status', 'pods/log']),
        // Reading namespaces at namespace scope means reading *this* namespace.
        rule(READ, [''], ['namespaces']),
        rule(READ, ['', 'events.k8s.io'], ['events']),
        rule(READ, ['discovery.k8s.io'], ['endpointslices']),
        rule(READ, ['apps'], ['controllerrevisions', 'statefulsets', 'statefulsets/status', 'statefulsets/scale', 'daemonsets', 'daemonsets/status',
          'deployments', 'deployments/status', 'deployments/scale', 'replicasets', 'replicasets/status', 'replicasets/scale']),
        rule(READ, ['autoscaling'], ['horizontalpodautoscalers', 'horizontalpodautoscalers/status']),
        rule(READ, ['batch'], ['jobs', 'jobs/status', 'cronjobs', 'cronjobs/status']),
        rule(READ, ['extensions'], ['daemonsets', 'daemonsets/status', 'deployments', 'deployments/scale', 'deployments/status', 'ingresses',
          'ingresses/status', 'replicasets', 'replicasets/scale', 'replicasets/status', 'replicationcontrollers/scale', 'networkpolicies']),
        rule(READ, ['policy'], ['poddisruptionbudgets', 'poddisruptionbudgets/status']),
        rule(READ, ['networking.k8s.io'], ['ingresses', 'ingresses/status', 'networkpolicies']),
        rule(READ, ['resource.k8s.io'], ['resourceclaims', 'resourceclaims/status', 'resourceclaimtemplates']),
      ],
    }),

    clusterRole({
      name: 'system:basic-user', rules: [
        rule(['create'], ['authorization.k8s.io'], ['selfsubjectaccessreviews', 'selfsubjectrulesreviews']),
        rule(['create'], ['authentication.k8s.io'], ['selfsubjectreviews']),
      ],
    }),
    clusterRole({
      name: 'system:discovery', rules: [
        urls(['get'], ['/healthz', '/livez', '/readyz', '/version', '/version/', '/api', '/api/*', '/apis', '/apis/*', '/openapi', '/openapi/*']),
      ],
    }),
    clusterRole({ name: 'system:public-info-viewer', rules: [urls(['get'], ['/healthz', '/livez', '/readyz', '/version', '/version/'])] }),
    clusterRole({
      name: 'system:monitoring', rules: [
        urls(['get'], ['/metrics', '/metrics/slis', '/livez', '/readyz', '/healthz', '/livez/*', '/readyz/*', '/healthz/*', '/statusz']),
        rule(['get'], [''], ['nodes/metrics']),
      ],
    }),
    clusterRole({
      name: 'system:auth-delegator', rules: [
        rule(['create'], ['authentication.k8s.io'], ['tokenreviews']),
        rule(['create'], ['authorization.k8s.io'], ['subjectaccessreviews']),
      ],
    }),
    clusterRole({
      name: 'system:service-account-issuer-discovery', rules: [
        urls(['get'], ['/.well-known/openid-configuration', '/.well-known/openid-configuration/', '/openid/v1/jwks', '/openid/v1/jwks/']),
      ],
    }),

    // What a kubelet (a skiff agent) needs; Kubernetes narrows it per node with the Node authorizer.
    clusterRole({
      name: 'system:node', rules: [
        rule(['create'], ['authentication.k8s.io'], ['tokenreviews']),
        rule(['create'], ['authorization.k8s.io'], ['subjectaccessreviews', 'localsubjectaccessreviews']),
        rule(READ, [''], ['services']),
        rule(['create', 'get', 'list', 'watch'], [''], ['nodes']),
        rule(['update', 'patch'], [''], ['nodes/status']),
        rule(['update', 'patch'], [''], ['nodes']),
        eventsRule(),
        rule(READ, [''], ['pods']),
        rule(['create', 'delete'], [''], ['pods']),
        rule(['update', 'patch'], [''], ['pods/status']),
        rule(['create'], [''], ['pods/eviction']),
        rule(READ, [''], ['secrets', 'configmaps']),
        rule(['get'], [''], ['persistentvolumeclaims', 'persistentvolumes']),
        rule(['get'], [''], ['endpoints']),
        rule(['create', 'get', 'list', 'watch'], ['certificates.k8s.io'], ['certificatesigningrequests']),
        rule(['get', 'create', 'update', 'patch', 'delete'], ['coordination.k8s.io'], ['leases']),
        rule(['get'], ['storage.k8s.io'], ['volumeattachments']),
        rule(['create'], [''], ['serviceaccounts/token']),
        rule(['get', 'update', 'patch'], [''], ['persistentvolumeclaims/status']),
        rule(READ, ['storage.k8s.io'], ['csidrivers']),
        rule(['get', 'create', 'update', 'patch', 'delete'], ['storage.k8s.io'], ['csinodes']),
        rule(READ, ['node.k8s.io'], ['runtimeclasses']),
        rule(['get'], ['resource.k8s.io'], ['resourceclaims']),
        rule(['deletecollection'], ['resource.k8s.io'], ['resourceslices']),
        rule(['get'], [''], ['serviceaccounts']),
      ],
    }),
    clusterRole({
      name: 'system:node-proxier', rules: [
        rule(['list', 'watch'], [''], ['services', 'endpoints']),
        rule(READ, [''], ['nodes']),
        eventsRule(),
        rule(['list', 'watch'], ['networking.k8s.io'], ['servicecidrs']),
        rule(['list', 'watch'], ['discovery.k8s.io'], ['endpointslices']),
      ],
    }),
    clusterRole({ name: 'system:node-bootstrapper', rules: [rule(['create', 'get', 'list', 'watch'], ['certificates.k8s.io'], ['certificatesigningrequests'])] }),
    // Certificate approvers, one per built-in signer (bind one to let a user approve that signer's requests).
    clusterRole({ name: 'system:certificates.k8s.io:certificatesigningrequests:nodeclient', rules: [rule(['create'], ['certificates.k8s.io'], ['certificatesigningrequests/nodeclient'])] }),
    clusterRole({ name: 'system:certificates.k8s.io:certificatesigningrequests:selfnodeclient', rules: [rule(['create'], ['certificates.k8s.io'], ['certificatesigningrequests/selfnodeclient'])] }),
    ...['kube-apiserver-client', 'kube-apiserver-client-kubelet', 'kubelet-serving', 'legacy-unknown'].map((signer) => clusterRole({
      name: `system:certificates.k8s.io:${signer}-approver`, rules: [rule(['approve'], ['certificates.k8s.io'], ['signers'], [`kubernetes.io/${signer}`])],
    })),
    clusterRole({
      name: 'system:node-problem-detector', rules: [
        rule(['get'], [''], ['nodes']),
        rule(['patch'], [''], ['nodes/status']),
        eventsRule(),
      ],
    }),
    clusterRole({
      name: 'system:kubelet-api-admin', rules: [
        rule(READ, [''], ['nodes']),
        rule(['proxy'], [''], ['nodes']),
        rule(['*'], [''], ['nodes/proxy', 'nodes/metrics', 'nodes/stats', 'nodes/log']),
        rule(['*'], [''], ['nodes/pods', 'nodes/healthz', 'nodes/configz']),
      ],
    }),
    clusterRole({
      name: 'system:kube-scheduler', rules: [
        eventsRule(),
        rule(['create'], ['coordination.k8s.io'], ['leases']),
        rule(['get', 'list', 'update', 'watch'], ['coordination.k8s.io'], ['leases'], ['kube-scheduler']),
        rule(READ_WRITE, ['coordination.k8s.io'], ['leasecandidates']),
        rule(READ, [''], ['nodes']),
        rule([...READ, 'delete'], [''], ['pods']),
        rule(['create'], [''], ['pods/binding', 'bindings']),
        rule(['patch', 'update'], [''], ['pods/status']),
        rule(READ, [''], ['replicationcontrollers', 'services']),
        rule(READ, ['apps', 'extensions'], ['replicasets']),
        rule(READ, ['apps'], ['statefulsets']),
        rule(READ, ['policy'], ['poddisruptionbudgets']),
        rule(READ, [''], ['persistentvolumeclaims', 'persistentvolumes']),
        rule(['create'], ['authentication.k8s.io'], ['tokenreviews']),
        rule(['create'], ['authorization.k8s.io'], ['subjectaccessreviews']),
        rule(READ, ['storage.k8s.io'], ['csinodes']),
        rule(READ, ['storage.k8s.io'], ['volumeattachments']),
        rule(READ, [''], ['namespaces']),
        rule(READ, ['storage.k8s.io'], ['csidrivers']),
        rule(READ, ['storage.k8s.io'], ['csistoragecapacities']),
        rule(READ, ['resource.k8s.io'], ['deviceclasses']),
        rule([...READ, 'patch', 'update'], ['resource.k8s.io'], ['resourceclaims']),
        rule([...READ, 'patch', 'update'], ['resource.k8s.io'], ['resourceclaims/status']),
        rule(['update'], [''], ['pods/finalizers']),
        rule(READ, ['resource.k8s.io'], ['resourceslices']),
        rule(['create', 'delete'], ['resource.k8s.io'], ['resourceclaims']),
      ],
    }),
    clusterRole({
      name: 'system:volume-scheduler', rules: [
        rule([...READ, 'patch', 'update'], [''], ['persistentvolumes']),
        rule(READ, ['storage.k8s.io'], ['storageclasses']),
        rule([...READ, 'patch', 'update'], [''], ['persistentvolumeclaims']),
      ],
    }),
    clusterRole({
      name: 'system:kube-controller-manager', rules: [
        eventsRule(),
        rule(['create'], ['coordination.k8s.io'], ['leases']),
        rule(['get', 'update'], ['coordination.k8s.io'], ['leases'], ['kube-controller-manager']),
        rule(['create'], [''], ['secrets', 'serviceaccounts']),
        rule(['delete'], [''], ['secrets']),
        rule(['get'], [''], ['namespaces', 'secrets', 'serviceaccounts', 'configmaps']),
        rule(['update'], [''], ['secrets', 'serviceaccounts']),
        rule(['create'], ['authentication.k8s.io'], ['tokenreviews']),
        rule(['create'], ['authorization.k8s.io'], ['subjectaccessreviews']),
        // It starts informers on everything (the garbage collector and quota need it).
        rule(['list', 'watch'], ['*'], ['*']),
        rule(['create'], [''], ['serviceaccounts/token']),
      ],
    }),
    clusterRole({ name: 'system:kube-dns', rules: [rule(['list', 'watch'], [''], ['endpoints', 'services'])] }),
    clusterRole({ name: 'system:kube-aggregator', rules: [rule(READ, [''], ['endpoints', 'services'])] }),
    clusterRole({
      name: 'system:persistent-volume-provisioner', rules: [
        rule(['get', 'list', 'watch', 'create', 'delete'], [''], ['persistentvolumes']),
        // update is needed to bind a claim to the volume just provisioned.
        rule(['get', 'list', 'watch', 'update'], [''], ['persistentvolumeclaims']),
        rule(READ, ['storage.k8s.io'], ['storageclasses']),
        rule(['watch'], [''], ['events']),
        eventsRule(),
      ],
    }),
  ];
}

function clusterRoleBindings(): KObject[] {
  return [
    clusterRoleBinding('cluster-admin', 'cluster-admin', [['Group', 'system:masters']]),
    clusterRoleBinding('system:monitoring', 'system:monitoring', [['Group', 'system:monitoring']]),
    clusterRoleBinding('system:discovery', 'system:discovery', [['Group', 'system:authenticated']]),
    clusterRoleBinding('system:basic-user', 'system:basic-user', [['Group', 'system:authenticated']]),
    clusterRoleBinding('system:public-info-viewer', 'system:public-info-viewer', [['Group', 'system:authenticated'], ['Group', 'system:unauthenticated']]),
    clusterRoleBinding('system:service-account-issuer-discovery', 'system:service-account-issuer-discovery', [['Group', 'system:serviceaccounts']]),
    // Kubernetes ships this binding without subjects (the Node authorizer grants nodes their access); it
    // exists so an administrator can opt nodes into the broad role by adding `system:nodes`.
    clusterRoleBinding('system:node', 'system:node', []),
    clusterRoleBinding('system:node-proxier', 'system:node-proxier', [['User', 'system:kube-proxy']]),
    clusterRoleBinding('system:kube-controller-manager', 'system:kube-controller-manager', [['User', 'system:kube-controller-manager']]),
    clusterRoleBinding('system:kube-dns', 'system:kube-dns', [['ServiceAccount', 'kube-system', 'kube-dns']]),
    clusterRoleBinding('system:kube-scheduler', 'system:kube-scheduler', [['User', 'system:kube-scheduler']]),
    clusterRoleBinding('system:volume-scheduler', 'system:volume-scheduler', [['User', 'system:kube-scheduler']]),
  ];
}

/** kube-system Roles kube-apiserver bootstraps; extension API servers' manifests bind to this one by name. */
function namespacedRoles(): KObject[] {
  return [{
    apiVersion: API_VERSION, kind: 'Role',
    metadata: { name: 'extension-apiserver-authentication-reader', namespace: 'kube-system', labels: { ...BOOTSTRAP_LABELS }, annotations: { ...AUTOUPDATE } },
    rules: [rule(READ, [''], ['configmaps'], ['extension-apiserver-authentication'])],
  }];
}

/** Fresh objects on every call: callers may hand them to code that fills in metadata. */
export function bootstrapRbacObjects(): KObject[] {
  return [...clusterRoles(), ...clusterRoleBindings(), ...namespacedRoles()];
}
