// CustomResourceDefinitions: each stored CRD becomes rows in the resource registry (one per served
// version), its status is set Established, its schema validates (and prunes) custom resources, and
// deleting it removes its custom resources.
import type { KindInfo, Subresource } from '../api/kinds.js';
import type { Store, StoredObject } from '../storage/types.js';
import type { ResourceRegistry } from './registry.js';
import { collectionPrefix } from './registry.js';
import { validateAgainstOpenApiSchema } from './field-validation.js';
import type { StatusCause } from '../api/status.js';
import { logger } from '../util/log.js';
import { nowRfc3339 } from '../util/time.js';

const CRD_PREFIX = '/apiextensions.k8s.io/customresourcedefinitions/';
const log = logger('crds');

export interface CrdVersionInfo {
  schema?: Record<string, any>;
  scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath?: string };
  printerColumns?: any[];
  selectableFields?: string[];
}

export class CrdManager {
  /** `group/version/plural` → schema and subresource details. */
  private versions = new Map<string, CrdVersionInfo>();

  constructor(private readonly store: Store, private readonly registry: ResourceRegistry) {}

  start(): void {
    for (const crd of this.store.list(CRD_PREFIX).items) this.apply(crd);
    this.store.watch(CRD_PREFIX, this.store.revision(), (e) => {
      if (e.type === 'DELETED') this.remove(e.object.obj);
      else this.apply(e.object);
    });
  }

  versionInfo(info: KindInfo): CrdVersionInfo | undefined {
    return this.versions.get(`${info.group}/${info.version}/${info.plural}`);
  }

  /** Schema of a served version by kind, for OpenAPI. */
  schemaFor(group: string, version: string, kind: string): Record<string, any> | undefined {
    const info = this.registry.kindsIn(group, version).find((k) => k.kind === kind && k.crd);
    return info ? this.versionInfo(info)?.schema : undefined;
  }

  validate(info: KindInfo, obj: Record<string, any>): StatusCause[] {
    const schema = this.versionInfo(info)?.schema;
    if (!schema) return [];
    const { causes } = validateAgainstOpenApiSchema(obj, schema);
    return causes;
  }

  private apply(stored: StoredObject): void {
    const crd = stored.obj;
    const spec = crd.spec ?? {};
    const names = spec.names ?? {};
    const infos: KindInfo[] = [];
    for (const v of spec.versions ?? []) {
      if (!v.served) continue;
      const sub: Subresource[] = [];
      if (v.subresources?.status) sub.push('status');
      if (v.subresources?.scale) sub.push('scale');
      const info: KindInfo = {
        group: spec.group, version: v.name, kind: names.kind, plural: names.plural,
        singular: names.singular ?? String(names.kind ?? '').toLowerCase(),
        namespaced: spec.scope === 'Namespaced', shortNames: names.shortNames, categories: names.categories,
        verbs: ['delete', 'deletecollection', 'get', 'list', 'patch', 'create', 'update', 'watch'],
        subresources: sub, modelType: '', crd: true,
        storage: { group: spec.group, resource: names.plural },
      };
      infos.push(info);
      this.versions.set(`${spec.group}/${v.name}/${names.plural}`, {
        schema: v.schema?.openAPIV3Schema,
        scale: v.subresources?.scale,
        printerColumns: v.additionalPrinterColumns,
        selectableFields: (v.selectableFields ?? []).map((f: any) => String(f.jsonPath ?? '').replace(/^\./, '')),
      });
    }
    this.registry.setCrd(crd.metadata.name, infos);
    if (!isEstablished(crd) && !crd.metadata.deletionTimestamp) void this.markEstablished(stored);
  }

  private remove(crd: Readonly<Record<string, any>>): void {
    const group = crd.spec?.group;
    for (const v of crd.spec?.versions ?? []) this.versions.delete(`${group}/${v.name}/${crd.spec?.names?.plural}`);
    this.registry.setCrd(crd.metadata.name, []);
  }

  /** Removes every custom resource of a CRD (called when the CRD is deleted). */
  async deleteInstances(crd: Readonly<Record<string, any>>): Promise<void> {
    const info = { group: crd.spec?.group, plural: crd.spec?.names?.plural, namespaced: false, storage: { group: crd.spec?.group, resource: crd.spec?.names?.plural } } as KindInfo;
    const prefix = collectionPrefix(info);
    for (const o of this.store.list(prefix).items) {
      try { await this.store.delete(o.key); } catch { /* already gone */ }
    }
  }

  private async markEstablished(stored: StoredObject): Promise<void> {
    const crd = structuredClone(stored.obj) as Record<string, any>;
    const now = nowRfc3339();
    crd.status = {
      ...(crd.status ?? {}),
      acceptedNames: crd.spec.names,
      storedVersions: (crd.spec.versions ?? []).filter((v: any) => v.storage).map((v: any) => v.name),
      conditions: [
        { type: 'NamesAccepted', status: 'True', reason: 'NoConflicts', message: 'no conflicts found', lastTransitionTime: now },
        { type: 'Established', status: 'True', reason: 'InitialNamesAccepted', message: 'the initial names have been accepted', lastTransitionTime: now },
      ],
    };
    try {
      await this.store.update(stored.key, crd, stored.modRevision);
    } catch (e) {
      log.debug({ err: String(e), crd: crd.metadata.name }, 'establishing CRD raced with another write; the next event retries');
    }
  }
}

function isEstablished(crd: Readonly<Record<string, any>>): boolean {
  return (crd.status?.conditions ?? []).some((c: any) => c.type === 'Established' && c.status === 'True');
}
