// The table of built-in kinds. What differs per kind is data here; behaviour that differs per kind
// (defaults, validation, table columns) lives in modules keyed by `group/resource`. Custom resources
// (CRDs) are turned into rows of the same shape at run time (see apiserver/crds.ts).

export type Subresource =
  | 'status' | 'scale' | 'binding' | 'eviction' | 'log' | 'exec' | 'attach' | 'portforward'
  | 'proxy' | 'token' | 'finalize' | 'ephemeralcontainers' | 'approval';

export interface KindInfo {
  group: string;          // '' for core
  version: string;
  kind: string;
  plural: string;         // the resource name in URLs
  singular: string;
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  /** Verbs as discovery lists them. */
  verbs: string[];
  subresources?: Subresource[];
  /** Class name in @kubernetes/client-node's generated models (its attributeTypeMap is our schema). */
  modelType: string;
  /** Storage group/resource when one stored object is served under several versions. */
  storage?: { group: string; resource: string };
  /** Kinds that are only POSTed and answered (reviews): never stored. */
  virtual?: boolean;
  /** Set for custom resources. */
  crd?: boolean;
}

const RW = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const CREATE_ONLY = ['create'];
const READ_ONLY = ['get', 'list'];

function k(group: string, version: string, kind: string, plural: string, namespaced: boolean, modelType: string,
  extra: Partial<KindInfo> = {}): KindInfo {
  return { group, version, kind, plural, singular: kind.toLowerCase(), namespaced, verbs: RW, modelType, ...extra };
}

export const BUILTIN_KINDS: KindInfo[] = [
  // core/v1
  k('', 'v1', 'Namespace', 'namespaces', false, 'V1Namespace', { shortNames: ['ns'], subresources: ['status', 'finalize'], verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'] }),
  k('', 'v1', 'Node', 'nodes', false, 'V1Node', { shortNames: ['no'], subresources: ['status', 'proxy'] }),
  k('', 'v1', 'Pod', 'pods', true, 'V1Pod', { shortNames: ['po'], categories: ['all'], subresources: ['status', 'binding', 'eviction', 'log', 'exec', 'attach', 'portforward', 'proxy', 'ephemeralcontainers'] }),
  k('', 'v1', 'Service', 'services', true, 'V1Service', { shortNames: ['svc'], categories: ['all'], subresources: ['status', 'proxy'], verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'] }),
  k('', 'v1', 'Endpoints', 'endpoints', true, 'V1Endpoints', { shortNames: ['ep'], singular: 'endpoints' }),
  k('', 'v1', 'ConfigMap', 'configmaps', true, 'V1ConfigMap', { shortNames: ['cm'] }),
  k('', 'v1', 'Secret', 'secrets', true, 'V1Secret'),
  k('', 'v1', 'ServiceAccount', 'serviceaccounts', true, 'V1ServiceAccount', { shortNames: ['sa'], subresources: ['token'] }),
  k('', 'v1', 'Event', 'events', true, 'CoreV1Event', { shortNames: ['ev'] }),
  k('', 'v1', 'PersistentVolume', 'persistentvolumes', false, 'V1PersistentVolume', { shortNames: ['pv'], subresources: ['status'] }),
  k('', 'v1', 'PersistentVolumeClaim', 'persistentvolumeclaims', true, 'V1PersistentVolumeClaim', { shortNames: ['pvc'], subresources: ['status'] }),
  k('', 'v1', 'LimitRange', 'limitranges', true, 'V1LimitRange', { shortNames: ['limits'] }),
  k('', 'v1', 'ResourceQuota', 'resourcequotas', true, 'V1ResourceQuota', { shortNames: ['quota'], subresources: ['status'] }),
  k('', 'v1', 'PodTemplate', 'podtemplates', true, 'V1PodTemplate'),
  k('', 'v1', 'ReplicationController', 'replicationcontrollers', true, 'V1ReplicationController', { shortNames: ['rc'], categories: ['all'], subresources: ['status', 'scale'] }),
  // Pod binding by POST to the collection (the scheduler's legacy form of pods/binding).
  k('', 'v1', 'Binding', 'bindings', true, 'V1Binding', { verbs: CREATE_ONLY, virtual: true }),
  // Deprecated since 1.19 but still listed: answered from the server's own health, never stored.
  k('', 'v1', 'ComponentStatus', 'componentstatuses', false, 'V1ComponentStatus', { shortNames: ['cs'], verbs: READ_ONLY, virtual: true }),
  // apps/v1
  k('apps', 'v1', 'Deployment', 'deployments', true, 'V1Deployment', { shortNames: ['deploy'], categories: ['all'], subresources: ['status', 'scale'] }),
  k('apps', 'v1', 'ReplicaSet', 'replicasets', true, 'V1ReplicaSet', { shortNames: ['rs'], categories: ['all'], subresources: ['status', 'scale'] }),
  k('apps', 'v1', 'DaemonSet', 'daemonsets', true, 'V1DaemonSet', { shortNames: ['ds'], categories: ['all'], subresources: ['status'] }),
  k('apps', 'v1', 'StatefulSet', 'statefulsets', true, 'V1StatefulSet', { shortNames: ['sts'], categories: ['all'], subresources: ['status', 'scale'] }),
  k('apps', 'v1', 'ControllerRevision', 'controllerrevisions', true, 'V1ControllerRevision'),
  // batch/v1
  k('batch', 'v1', 'Job', 'jobs', true, 'V1Job', { categories: ['all'], subresources: ['status'] }),
  k('batch', 'v1', 'CronJob', 'cronjobs', true, 'V1CronJob', { shortNames: ['cj'], categories: ['all'], subresources: ['status'] }),
  // autoscaling: v2 is stored; v1 is served by conversion (kubectl autoscale posts v1).
  k('autoscaling', 'v2', 'HorizontalPodAutoscaler', 'horizontalpodautoscalers', true, 'V2HorizontalPodAutoscaler', { shortNames: ['hpa'], categories: ['all'], subresources: ['status'] }),
  k('autoscaling', 'v1', 'HorizontalPodAutoscaler', 'horizontalpodautoscalers', true, 'V1HorizontalPodAutoscaler', { shortNames: ['hpa'], categories: ['all'], subresources: ['status'], storage: { group: 'autoscaling', resource: 'horizontalpodautoscalers' } }),
  // policy/v1
  k('policy', 'v1', 'PodDisruptionBudget', 'poddisruptionbudgets', true, 'V1PodDisruptionBudget', { shortNames: ['pdb'], subresources: ['status'] }),
  // coordination.k8s.io/v1
  k('coordination.k8s.io', 'v1', 'Lease', 'leases', true, 'V1Lease'),
  // discovery.k8s.io/v1
  k('discovery.k8s.io', 'v1', 'EndpointSlice', 'endpointslices', true, 'V1EndpointSlice'),
  // events.k8s.io/v1
  k('events.k8s.io', 'v1', 'Event', 'events', true, 'EventsV1Event', { shortNames: ['ev'] }),
  // rbac.authorization.k8s.io/v1
  k('rbac.authorization.k8s.io', 'v1', 'Role', 'roles', true, 'V1Role'),
  k('rbac.authorization.k8s.io', 'v1', 'RoleBinding', 'rolebindings', true, 'V1RoleBinding'),
  k('rbac.authorization.k8s.io', 'v1', 'ClusterRole', 'clusterroles', false, 'V1ClusterRole'),
  k('rbac.authorization.k8s.io', 'v1', 'ClusterRoleBinding', 'clusterrolebindings', false, 'V1ClusterRoleBinding'),
  // storage.k8s.io/v1
  k('storage.k8s.io', 'v1', 'StorageClass', 'storageclasses', false, 'V1StorageClass', { shortNames: ['sc'] }),
  // networking.k8s.io/v1
  k('networking.k8s.io', 'v1', 'Ingress', 'ingresses', true, 'V1Ingress', { shortNames: ['ing'], subresources: ['status'] }),
  k('networking.k8s.io', 'v1', 'IngressClass', 'ingressclasses', false, 'V1IngressClass'),
  k('networking.k8s.io', 'v1', 'NetworkPolicy', 'networkpolicies', true, 'V1NetworkPolicy', { shortNames: ['netpol'] }),
  // scheduling.k8s.io/v1
  k('scheduling.k8s.io', 'v1', 'PriorityClass', 'priorityclasses', false, 'V1PriorityClass', { shortNames: ['pc'] }),
  // storage.k8s.io/v1, objects CSI drivers read and write (stored only: skiff runs no CSI drivers itself).
  k('storage.k8s.io', 'v1', 'CSIDriver', 'csidrivers', false, 'V1CSIDriver'),
  k('storage.k8s.io', 'v1', 'CSINode', 'csinodes', false, 'V1CSINode'),
  k('storage.k8s.io', 'v1', 'CSIStorageCapacity', 'csistoragecapacities', true, 'V1CSIStorageCapacity'),
  k('storage.k8s.io', 'v1', 'VolumeAttachment', 'volumeattachments', false, 'V1VolumeAttachment', { subresources: ['status'] }),
  // admissionregistration.k8s.io/v1: stored and validated; not enforced yet (no webhook calls, no CEL).
  k('admissionregistration.k8s.io', 'v1', 'MutatingWebhookConfiguration', 'mutatingwebhookconfigurations', false, 'V1MutatingWebhookConfiguration', { categories: ['api-extensions'] }),
  k('admissionregistration.k8s.io', 'v1', 'ValidatingWebhookConfiguration', 'validatingwebhookconfigurations', false, 'V1ValidatingWebhookConfiguration', { categories: ['api-extensions'] }),
  k('admissionregistration.k8s.io', 'v1', 'ValidatingAdmissionPolicy', 'validatingadmissionpolicies', false, 'V1ValidatingAdmissionPolicy', { categories: ['api-extensions'], subresources: ['status'] }),
  k('admissionregistration.k8s.io', 'v1', 'ValidatingAdmissionPolicyBinding', 'validatingadmissionpolicybindings', false, 'V1ValidatingAdmissionPolicyBinding', { categories: ['api-extensions'] }),
  // apiregistration.k8s.io/v1: the built-in group versions are listed as Local (see apiserver/apiservices.ts).
  k('apiregistration.k8s.io', 'v1', 'APIService', 'apiservices', false, 'V1APIService', { categories: ['api-extensions'], subresources: ['status'] }),
  // certificates.k8s.io/v1
  k('certificates.k8s.io', 'v1', 'CertificateSigningRequest', 'certificatesigningrequests', false, 'V1CertificateSigningRequest', { shortNames: ['csr'], subresources: ['status', 'approval'] }),
  // node.k8s.io/v1
  k('node.k8s.io', 'v1', 'RuntimeClass', 'runtimeclasses', false, 'V1RuntimeClass'),
  // flowcontrol.apiserver.k8s.io/v1: readable (the defaults kube-apiserver creates); skiff does not enforce them.
  k('flowcontrol.apiserver.k8s.io', 'v1', 'FlowSchema', 'flowschemas', false, 'V1FlowSchema', { subresources: ['status'] }),
  k('flowcontrol.apiserver.k8s.io', 'v1', 'PriorityLevelConfiguration', 'prioritylevelconfigurations', false, 'V1PriorityLevelConfiguration', { subresources: ['status'] }),
  // apiextensions.k8s.io/v1
  k('apiextensions.k8s.io', 'v1', 'CustomResourceDefinition', 'customresourcedefinitions', false, 'V1CustomResourceDefinition', { shortNames: ['crd', 'crds'], subresources: ['status'] }),
  // Reviews: created and answered, never stored.
  k('authorization.k8s.io', 'v1', 'SelfSubjectAccessReview', 'selfsubjectaccessreviews', false, 'V1SelfSubjectAccessReview', { verbs: CREATE_ONLY, virtual: true }),
  k('authorization.k8s.io', 'v1', 'SelfSubjectRulesReview', 'selfsubjectrulesreviews', false, 'V1SelfSubjectRulesReview', { verbs: CREATE_ONLY, virtual: true }),
  k('authorization.k8s.io', 'v1', 'SubjectAccessReview', 'subjectaccessreviews', false, 'V1SubjectAccessReview', { verbs: CREATE_ONLY, virtual: true }),
  k('authorization.k8s.io', 'v1', 'LocalSubjectAccessReview', 'localsubjectaccessreviews', true, 'V1LocalSubjectAccessReview', { verbs: CREATE_ONLY, virtual: true }),
  k('authentication.k8s.io', 'v1', 'TokenReview', 'tokenreviews', false, 'V1TokenReview', { verbs: CREATE_ONLY, virtual: true }),
  // Resource metrics (kubectl top), answered from the nodes' Summary API: read-only, never stored.
  k('metrics.k8s.io', 'v1beta1', 'NodeMetrics', 'nodes', false, 'NodeMetrics', { verbs: ['get', 'list'], virtual: true }),
  k('metrics.k8s.io', 'v1beta1', 'PodMetrics', 'pods', true, 'PodMetrics', { verbs: ['get', 'list'], virtual: true }),
  k('authentication.k8s.io', 'v1', 'SelfSubjectReview', 'selfsubjectreviews', false, 'V1SelfSubjectReview', { verbs: CREATE_ONLY, virtual: true }),
  // kubectl 1.27 (`auth whoami`) asks for v1beta1 only.
  k('authentication.k8s.io', 'v1beta1', 'SelfSubjectReview', 'selfsubjectreviews', false, 'V1beta1SelfSubjectReview', { verbs: CREATE_ONLY, virtual: true }),
];

/** Preferred version per group, in the order discovery lists groups (Kubernetes' order). */
export const GROUP_ORDER = [
  '', 'apiregistration.k8s.io', 'apps', 'events.k8s.io', 'authentication.k8s.io', 'authorization.k8s.io',
  'autoscaling', 'batch', 'certificates.k8s.io', 'networking.k8s.io', 'policy', 'rbac.authorization.k8s.io',
  'storage.k8s.io', 'admissionregistration.k8s.io', 'apiextensions.k8s.io', 'scheduling.k8s.io',
  'coordination.k8s.io', 'node.k8s.io', 'discovery.k8s.io', 'flowcontrol.apiserver.k8s.io', 'metrics.k8s.io',
];

export function apiVersionOf(info: Pick<KindInfo, 'group' | 'version'>): string {
  return info.group ? `${info.group}/${info.version}` : info.version;
}

/** The group/resource under which a kind's objects are stored (shared by all its served versions). */
export function storageResource(info: KindInfo): { group: string; resource: string } {
  return info.storage ?? { group: info.group, resource: info.plural };
}
