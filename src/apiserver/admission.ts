// Admission: checks and mutations that need other objects (the namespace must exist and not be
// terminating; custom resources against their CRD schema; cleanup after a CRD is deleted).
import type { KindInfo } from '../api/kinds.js';
import type { Store } from '../storage/types.js';
import { ApiError, errors, type StatusCause } from '../api/status.js';
import type { CrdManager } from './crds.js';
import type { OpenApiSchema } from './field-validation.js';
import { NODES_GROUP } from './node-authorizer.js';
import { isL2LeaseName, L2_LEASE_NAMESPACE } from '../api/address-pools.js';
import { addDefaultTolerations } from './default-tolerations.js';
import { admitLimitRanges } from './admission-limits.js';
import { QuotaAdmission } from './admission-quota.js';
import { mountServiceAccountToken } from './admission-serviceaccount.js';
import { setDefaultStorageClass } from './admission-storageclass.js';
import { admitRuntimeClass } from './admission-runtimeclass.js';
import { admitPodPriority, admitPriorityClassDelete } from './admission-priority.js';
import { admitCsrUpdate, restrictCsrSubject } from './admission-certificates.js';
import type { Authorizer } from './authorizer.js';
import { DynamicAdmission, type AdmissionAttributes } from './webhooks/index.js';
import { crdRuleCauses, validateCelRules } from './cel/crd-rules.js';
import { restrictOwnNodeCreate, restrictOwnNodeUpdate } from './admission-node-restriction.js';

interface DefaultTolerationOptions { notReadySeconds: number; unreachableSeconds: number }
import type { Actor, WriteOptions } from './objects.js';

/**
 * NodeRestriction: a node may create only its own Node and Lease (the authorizer cannot see the
 * name of an object being created).
 */
function restrictNode(info: KindInfo, obj: Record<string, any>, opts: WriteOptions, old?: Readonly<Record<string, any>>): void {
  const a = opts.actor;
  if (!a.groups.includes(NODES_GROUP) || !a.user.startsWith('system:node:')) return;
  const node = a.user.slice('system:node:'.length);
  const gr = `${info.group}/${info.plural}`;
  // Layer-2 announcement leases (agent/network/l2) are shared by the nodes that may announce an address.
  const l2Lease = gr === 'coordination.k8s.io/leases' && obj.metadata?.namespace === L2_LEASE_NAMESPACE && isL2LeaseName(obj.metadata?.name);
  if ((gr === '/nodes' || gr === 'coordination.k8s.io/leases') && obj.metadata?.name !== node && !l2Lease) {
    throw new ApiError(403, 'Forbidden', `${info.plural}${info.group ? '.' + info.group : ''} "${obj.metadata?.name}" is forbidden: node "${node}" is not allowed to modify ${info.kind.toLowerCase()} "${obj.metadata?.name}"`, { name: obj.metadata?.name, group: info.group, kind: info.plural });
  }
  if (gr === '/nodes') {
    if (old) restrictOwnNodeUpdate(node, obj, old); else restrictOwnNodeCreate(node, obj);
  }
  if (gr === '/pods' && obj.spec?.nodeName !== node) {
    throw new ApiError(403, 'Forbidden', `pods "${obj.metadata?.name}" is forbidden: node "${node}" can only modify pods bound to itself`, { name: obj.metadata?.name, kind: 'pods' });
  }
}

function checkCrdRules(crd: Record<string, any>): void {
  const causes = crdRuleCauses(crd);
  if (causes.length) throw errors.invalid('CustomResourceDefinition', 'apiextensions.k8s.io', crd.metadata?.name ?? '', causes);
}

const IMMORTAL_NAMESPACES = new Set(['default', 'kube-system', 'kube-public', 'kube-node-lease']);

/** Kinds that may be written in a terminating namespace (their controllers must finish the job). */
const ALLOWED_IN_TERMINATING = new Set(['/events', 'events.k8s.io/events', 'authentication.k8s.io/tokenreviews', 'authorization.k8s.io/localsubjectaccessreviews']);

export class Admission {
  private readonly quota: QuotaAdmission;
  private authz: Authorizer | undefined;
  /** Admission webhooks and ValidatingAdmissionPolicies (src/apiserver/webhooks/). */
  readonly dynamic: DynamicAdmission;

  constructor(private readonly store: Store, private readonly crds: CrdManager,
    private readonly tolerations: DefaultTolerationOptions = { notReadySeconds: 300, unreachableSeconds: 300 }) {
    this.quota = new QuotaAdmission(store);
    this.dynamic = new DynamicAdmission(store);
  }

  /** Webhooks and policies for one write; `obj` may be changed in place. Returns warnings for the client. */
  admitDynamic(info: KindInfo, operation: AdmissionAttributes['operation'], obj: Record<string, any> | undefined,
    old: Readonly<Record<string, any>> | undefined, opts: Pick<WriteOptions, 'actor' | 'dryRun' | 'subresource'>, revalidate: () => void): Promise<string[]> {
    const meta = (obj ?? old)?.metadata ?? {};
    return this.dynamic.admit({
      info, operation, name: meta.name ?? '', namespace: meta.namespace ?? '', subresource: opts.subresource ?? '',
      object: obj, oldObject: old, dryRun: !!opts.dryRun,
      userInfo: { username: opts.actor.user, groups: [...opts.actor.groups] },
    }, revalidate);
  }

  async admitCreate(info: KindInfo, obj: Record<string, any>, opts: WriteOptions): Promise<void> {
    if (info.namespaced) this.checkNamespace(info, obj.metadata.namespace);
    restrictNode(info, obj, opts);
    if (info.group === '' && info.plural === 'pods') {
      obj.spec.serviceAccountName ??= obj.spec.serviceAccount ?? 'default';
      obj.spec.serviceAccount = obj.spec.serviceAccountName;
      mountServiceAccountToken(this.store, obj);
      addDefaultTolerations(obj as any, this.tolerations);
      admitPodPriority(this.store, obj);
      admitRuntimeClass(this.store, obj);
    }
    if (info.group === 'certificates.k8s.io' && info.plural === 'certificatesigningrequests') {
      // The requestor is whoever created the request, never what the body claims (Kubernetes' strategy).
      obj.spec.username = opts.actor.user;
      obj.spec.groups = [...opts.actor.groups];
      delete obj.spec.uid; delete obj.spec.extra;
      restrictCsrSubject(obj);
    }
    if (info.group === '' && info.plural === 'persistentvolumeclaims') setDefaultStorageClass(this.store, obj);
    if (info.group === 'apiextensions.k8s.io' && info.plural === 'customresourcedefinitions') checkCrdRules(obj);
    // LimitRanger mutates before ResourceQuota counts, as in Kubernetes' plugin order.
    if (info.namespaced && !opts.subresource) admitLimitRanges(this.store, info, obj);
    this.quota.admitCreate(info, obj, opts);
  }

  async admitUpdate(info: KindInfo, obj: Record<string, any>, old: Readonly<Record<string, any>>, opts: WriteOptions): Promise<void> {
    restrictNode(info, obj, opts, old);
    if (info.group === 'apiextensions.k8s.io' && info.plural === 'customresourcedefinitions' && !opts.subresource) checkCrdRules(obj);
    if (info.group === 'certificates.k8s.io' && info.plural === 'certificatesigningrequests') {
      admitCsrUpdate(this.authz, obj, old, opts.subresource, opts.actor);
    }
    if (info.namespaced && !opts.subresource) admitLimitRanges(this.store, info, obj, old);
  }

  /** Plugins that ask the authorizer about something other than the request itself (certificate signers). */
  useAuthorizer(authz: Authorizer): void {
    this.authz = authz;
  }

  /** NamespaceLifecycle on delete: the system namespaces stay (skiff also keeps kube-node-lease, whose loss stops node heartbeats). */
  admitDelete(info: KindInfo, obj: Readonly<Record<string, any>>): void {
    if (info.group === '' && info.plural === 'namespaces' && IMMORTAL_NAMESPACES.has(obj.metadata?.name)) {
      const name = obj.metadata.name;
      throw new ApiError(403, 'Forbidden', `namespaces "${name}" is forbidden: this namespace may not be deleted`, { name, kind: 'namespaces' });
    }
    if (info.group === 'scheduling.k8s.io' && info.plural === 'priorityclasses') admitPriorityClassDelete(obj);
  }

  /** After a create was stored or failed: drop its quota reservation (a stored one is then counted from the cache). */
  afterCreate(obj: Record<string, any>): void {
    if (obj.metadata?.uid) this.quota.release(obj.metadata.uid);
  }

  async afterDelete(info: KindInfo, obj: Readonly<Record<string, any>>, _actor: Actor): Promise<void> {
    if (info.group === 'apiextensions.k8s.io' && info.plural === 'customresourcedefinitions') {
      await this.crds.deleteInstances(obj);
    }
  }

  crdSchema(info: KindInfo): OpenApiSchema | undefined {
    return info.crd ? this.crds.versionInfo(info)?.schema as OpenApiSchema | undefined : undefined;
  }

  validateCustom(info: KindInfo, obj: Record<string, any>, old?: Readonly<Record<string, any>>): StatusCause[] {
    const causes = this.crds.validate(info, obj);
    // x-kubernetes-validations run on structurally valid objects only (their rules assume the schema's types).
    return causes.length ? causes : validateCelRules(this.crdSchema(info), obj, old);
  }

  private checkNamespace(info: KindInfo, ns: string | undefined): void {
    if (!ns) throw errors.badRequest('the server could not find the requested resource: namespace is required');
    const nsObj = this.store.get(`/core/namespaces/${ns}`);
    if (!nsObj) throw errors.notFound('namespaces', '', ns);
    if (nsObj.obj.metadata.deletionTimestamp && !ALLOWED_IN_TERMINATING.has(`${info.group}/${info.plural}`)) {
      throw new ApiError(403, 'Forbidden',
        `${info.plural}${info.group ? '.' + info.group : ''} is forbidden: unable to create new content in namespace ${ns} because it is being terminated`,
        { kind: info.plural, group: info.group });
    }
  }
}
