// Kubernetes' defaulting of built-in kinds, dispatched on `group/resource`: the apiserver calls
// applyDefaults on every create and update (after decoding, before validation), so each defaulter only
// fills what is absent and running it again changes nothing. Allocation of cluster IPs and node ports
// is not defaulting: the apiserver does it.
import type { KObject } from '../object.js';
import {
  defaultEndpoints, defaultLimitRange, defaultNamespace, defaultNode, defaultPersistentVolume, defaultPersistentVolumeClaim,
  defaultPod, defaultPodTemplateKind, defaultReplicationController, defaultSecret, defaultService, prepareNamespaceForCreate,
} from './core.js';
import {
  defaultCRD, defaultEndpointSlice, defaultHPA, defaultNetworkPolicy, defaultPriorityClass, defaultRoleBinding, defaultStorageClass,
} from './other-kinds.js';
import {
  defaultAPIService, defaultCSIDriver, defaultFlowSchema, defaultMutatingWebhookConfiguration, defaultPriorityLevelConfiguration,
  defaultValidatingAdmissionPolicy, defaultValidatingAdmissionPolicyBinding, defaultValidatingWebhookConfiguration,
} from './cluster-kinds.js';
import { defaultCronJob, defaultDaemonSet, defaultDeployment, defaultJob, defaultReplicaSet, defaultStatefulSet } from './workloads.js';

type Defaulter = (obj: Record<string, any>) => void;

const DEFAULTERS: Record<string, Defaulter> = {
  '/pods': defaultPod,
  '/podtemplates': defaultPodTemplateKind,
  '/replicationcontrollers': defaultReplicationController,
  '/services': defaultService,
  '/namespaces': defaultNamespace,
  '/secrets': defaultSecret,
  '/persistentvolumeclaims': defaultPersistentVolumeClaim,
  '/persistentvolumes': defaultPersistentVolume,
  '/endpoints': defaultEndpoints,
  '/nodes': defaultNode,
  '/limitranges': defaultLimitRange,
  'apps/deployments': defaultDeployment,
  'apps/replicasets': defaultReplicaSet,
  'apps/daemonsets': defaultDaemonSet,
  'apps/statefulsets': defaultStatefulSet,
  'batch/jobs': defaultJob,
  'batch/cronjobs': defaultCronJob,
  'autoscaling/horizontalpodautoscalers': defaultHPA,
  'networking.k8s.io/networkpolicies': defaultNetworkPolicy,
  'storage.k8s.io/storageclasses': defaultStorageClass,
  'scheduling.k8s.io/priorityclasses': defaultPriorityClass,
  'rbac.authorization.k8s.io/rolebindings': defaultRoleBinding,
  'rbac.authorization.k8s.io/clusterrolebindings': defaultRoleBinding,
  'discovery.k8s.io/endpointslices': defaultEndpointSlice,
  'apiextensions.k8s.io/customresourcedefinitions': defaultCRD,
  'admissionregistration.k8s.io/mutatingwebhookconfigurations': defaultMutatingWebhookConfiguration,
  'admissionregistration.k8s.io/validatingwebhookconfigurations': defaultValidatingWebhookConfiguration,
  'admissionregistration.k8s.io/validatingadmissionpolicies': defaultValidatingAdmissionPolicy,
  'admissionregistration.k8s.io/validatingadmissionpolicybindings': defaultValidatingAdmissionPolicyBinding,
  'flowcontrol.apiserver.k8s.io/flowschemas': defaultFlowSchema,
  'flowcontrol.apiserver.k8s.io/prioritylevelconfigurations': defaultPriorityLevelConfiguration,
  'storage.k8s.io/csidrivers': defaultCSIDriver,
  'apiregistration.k8s.io/apiservices': defaultAPIService,
};

/** Fills Kubernetes' defaults into `obj` in place (it is the caller's private copy). */
export function applyDefaults(group: string, resource: string, obj: KObject): void {
  DEFAULTERS[`${group}/${resource}`]?.(obj);
}

const CREATE_ONLY: Record<string, Defaulter> = {
  '/namespaces': prepareNamespaceForCreate,
};

/**
 * Defaults Kubernetes applies on create only (in its registry strategies), because later writes may
 * legitimately remove them: call on create, after applyDefaults.
 */
export function applyCreateDefaults(group: string, resource: string, obj: KObject): void {
  CREATE_ONLY[`${group}/${resource}`]?.(obj);
}
