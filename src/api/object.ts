// The shape every API object shares. Objects travel as plain JSON values; typed views of specific kinds
// come from @kubernetes/client-node's models where a module needs them.

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ManagedFieldsEntry {
  manager?: string;
  operation?: 'Apply' | 'Update';
  apiVersion?: string;
  time?: string;
  fieldsType?: 'FieldsV1';
  fieldsV1?: Record<string, unknown>;
  subresource?: string;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  managedFields?: ManagedFieldsEntry[];
  [extra: string]: unknown;
}

export interface KObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

/** A JSON value as decoded from a request body. */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The owner reference naming an object's controller (metav1.GetControllerOf). */
export function controllerOf(obj: KObject): OwnerReference | undefined {
  return obj.metadata.ownerReferences?.find((r) => r.controller === true);
}

/**
 * The owner reference a controller puts on what it creates (metav1.NewControllerRef): controller and
 * blockOwnerDeletion set. Objects from an informer may lack apiVersion/kind, so callers may name them.
 */
export function controllerRef(owner: KObject, apiVersion = String(owner.apiVersion), kind = String(owner.kind)): OwnerReference {
  return { apiVersion, kind, name: String(owner.metadata.name), uid: String(owner.metadata.uid), controller: true, blockOwnerDeletion: true };
}
