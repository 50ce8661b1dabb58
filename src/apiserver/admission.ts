// Admission: checks and mutations that need other objects (the namespace must exist and not be
// terminating; custom resources against their CRD schema; cleanup after a CRD is deleted).
import type { KindInfo } from '../api/kinds.js';
import type { Store } from '../storage/types.js';
import { ApiError, errors, type StatusCause } from './status.js';
import type { CrdManager } from './crds.js';
import type { OpenApiSchema } from './field-validation.js';
import type { Actor, WriteOptions } from './objects.js';

/** Kinds that may be written in a terminating namespace (their controllers must finish the job). */
const ALLOWED_IN_TERMINATING = new Set(['/events', 'events.k8s.io/events', 'authentication.k8s.io/tokenreviews', 'authorization.k8s.io/localsubjectaccessreviews']);

export class Admission {
  constructor(private readonly store: Store, private readonly crds: CrdManager) {}

  async admitCreate(info: KindInfo, obj: Record<string, any>, _opts: WriteOptions): Promise<void> {
    if (info.namespaced) this.checkNamespace(info, obj.metadata.namespace);
    if (info.group === '' && info.plural === 'pods') {
      obj.spec.serviceAccountName ??= obj.spec.serviceAccount ?? 'default';
      obj.spec.serviceAccount = obj.spec.serviceAccountName;
    }
  }

  async admitUpdate(_info: KindInfo, _obj: Record<string, any>, _old: Readonly<Record<string, any>>, _opts: WriteOptions): Promise<void> {
    // Nothing yet: quota and limit ranges arrive with the control loops.
  }

  async afterDelete(info: KindInfo, obj: Readonly<Record<string, any>>, _actor: Actor): Promise<void> {
    if (info.group === 'apiextensions.k8s.io' && info.plural === 'customresourcedefinitions') {
      await this.crds.deleteInstances(obj);
    }
  }

  crdSchema(info: KindInfo): OpenApiSchema | undefined {
    return info.crd ? this.crds.versionInfo(info)?.schema as OpenApiSchema | undefined : undefined;
  }

  validateCustom(info: KindInfo, obj: Record<string, any>, _old?: Readonly<Record<string, any>>): StatusCause[] {
    return this.crds.validate(info, obj);
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
