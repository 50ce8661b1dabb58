// Validation of built-in kinds on create and update, dispatched on `group/resource`: each row names the
// kind's metadata.name rule and its own checks, so adding a kind is adding a row. The apiserver wraps
// the causes returned here in a 422 (`errors.invalid`).
import type { StatusCause } from '../status.js';
import type { KindInfo } from '../kinds.js';
import type { KObject } from '../object.js';
import { validateControllerRevision, validateDaemonSet, validateDeployment, validateReplicaSet, validateStatefulSet } from './apps.js';
import { validateCronJob, validateJob } from './batch.js';
import {
  validateConfigMap, validateCoreEvent, validateNamespace, validateNode, validatePersistentVolume, validatePersistentVolumeClaim,
  validatePod, validatePodTemplate, validateReplicationController, validateSecret, validateService,
} from './core.js';
import { validateObjectMeta, validateObjectMetaUpdate } from './meta.js';
import {
  validateAPIService, validateCertificateSigningRequest, validateCSIDriver, validateFlowSchema, validateMutatingWebhookConfiguration,
  validatePriorityLevelConfiguration, validateRuntimeClass, validateValidatingAdmissionPolicy, validateValidatingAdmissionPolicyBinding,
  validateValidatingWebhookConfiguration, validateVolumeAttachment,
} from './cluster-kinds.js';
import { nameIsDNS1035Label, nameIsDNSLabel, nameIsDNSSubdomain, nameIsPathSegment, type NameFn } from './names.js';
import {
  validateClusterRole, validateClusterRoleBinding, validateCRD, validateEndpointSlice, validateEventsV1Event, validateHPA,
  validateIngress, validateIngressClass, validateLease, validateNetworkPolicy, validatePDB, validatePriorityClass,
  validateRole, validateRoleBinding, validateStorageClass,
} from './other-kinds.js';

type KindValidator = (obj: KObject, old?: KObject, subresource?: string) => StatusCause[];

interface Row {
  /** The metadata.name rule; null where Kubernetes skips metadata validation (legacy core Events). */
  name: NameFn | null;
  validate?: KindValidator;
}

const subdomain = (validate?: KindValidator): Row => ({ name: nameIsDNSSubdomain, validate });

const ROWS: Record<string, Row> = {
  '/pods': subdomain(validatePod),
  '/services': { name: nameIsDNS1035Label, validate: validateService },
  '/namespaces': { name: nameIsDNSLabel, validate: validateNamespace },
  '/nodes': subdomain(validateNode),
  '/configmaps': subdomain(validateConfigMap),
  '/secrets': subdomain(validateSecret),
  '/serviceaccounts': subdomain(),
  '/endpoints': subdomain(),
  '/events': { name: null, validate: validateCoreEvent },
  '/persistentvolumes': subdomain(validatePersistentVolume),
  '/persistentvolumeclaims': subdomain(validatePersistentVolumeClaim),
  '/limitranges': subdomain(),
  '/resourcequotas': subdomain(),
  '/podtemplates': subdomain(validatePodTemplate),
  '/replicationcontrollers': subdomain(validateReplicationController),
  'apps/deployments': subdomain(validateDeployment),
  'apps/replicasets': subdomain(validateReplicaSet),
  'apps/daemonsets': subdomain(validateDaemonSet),
  'apps/statefulsets': { name: nameIsDNSLabel, validate: validateStatefulSet },
  'apps/controllerrevisions': subdomain(validateControllerRevision),
  'batch/jobs': subdomain(validateJob),
  'batch/cronjobs': subdomain(validateCronJob),
  'autoscaling/horizontalpodautoscalers': subdomain(validateHPA),
  'policy/poddisruptionbudgets': subdomain(validatePDB),
  'coordination.k8s.io/leases': subdomain(validateLease),
  'discovery.k8s.io/endpointslices': subdomain(validateEndpointSlice),
  'events.k8s.io/events': subdomain(validateEventsV1Event),
  'rbac.authorization.k8s.io/roles': { name: nameIsPathSegment, validate: validateRole },
  'rbac.authorization.k8s.io/rolebindings': { name: nameIsPathSegment, validate: validateRoleBinding },
  'rbac.authorization.k8s.io/clusterroles': { name: nameIsPathSegment, validate: validateClusterRole },
  'rbac.authorization.k8s.io/clusterrolebindings': { name: nameIsPathSegment, validate: validateClusterRoleBinding },
  'storage.k8s.io/storageclasses': subdomain(validateStorageClass),
  'networking.k8s.io/ingresses': subdomain(validateIngress),
  'networking.k8s.io/ingressclasses': subdomain(validateIngressClass),
  'networking.k8s.io/networkpolicies': subdomain(validateNetworkPolicy),
  'scheduling.k8s.io/priorityclasses': subdomain(validatePriorityClass),
  'apiextensions.k8s.io/customresourcedefinitions': subdomain(validateCRD),
  'admissionregistration.k8s.io/mutatingwebhookconfigurations': subdomain(validateMutatingWebhookConfiguration),
  'admissionregistration.k8s.io/validatingwebhookconfigurations': subdomain(validateValidatingWebhookConfiguration),
  'admissionregistration.k8s.io/validatingadmissionpolicies': subdomain(validateValidatingAdmissionPolicy),
  'admissionregistration.k8s.io/validatingadmissionpolicybindings': subdomain(validateValidatingAdmissionPolicyBinding),
  'certificates.k8s.io/certificatesigningrequests': subdomain(validateCertificateSigningRequest),
  'node.k8s.io/runtimeclasses': subdomain(validateRuntimeClass),
  'flowcontrol.apiserver.k8s.io/flowschemas': { name: nameIsPathSegment, validate: validateFlowSchema },
  'flowcontrol.apiserver.k8s.io/prioritylevelconfigurations': { name: nameIsPathSegment, validate: validatePriorityLevelConfiguration },
  'apiregistration.k8s.io/apiservices': { name: nameIsPathSegment, validate: validateAPIService },
  'storage.k8s.io/csidrivers': subdomain(validateCSIDriver),
  'storage.k8s.io/csinodes': subdomain(),
  'storage.k8s.io/csistoragecapacities': subdomain(),
  'storage.k8s.io/volumeattachments': subdomain(validateVolumeAttachment),
};

/**
 * Every violation of `obj` (on create) or of the change from `old` to `obj` (on update), with
 * Kubernetes' field paths and messages. Kinds without a row get metadata checks only.
 */
export function validateObject(info: KindInfo, obj: KObject, old?: KObject, subresource?: string): StatusCause[] {
  if (info.virtual) return [];
  const row = ROWS[`${info.group}/${info.plural}`] ?? subdomain();
  const meta = old
    ? validateObjectMetaUpdate(obj.metadata, old.metadata)
    : row.name ? validateObjectMeta(obj.metadata, info.namespaced, row.name) : [];
  return [...meta, ...(row.validate?.(obj, old, subresource) ?? [])];
}
