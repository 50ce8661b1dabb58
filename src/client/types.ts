// The API client the control loops and agents program against. Two implementations share it:
// `LocalClient` (in-process, inside `skiff server`) and `HttpClient` (over HTTPS, for agents and
// hollow nodes), so a loop written against `ApiClient` can move out of the server unchanged.
// Objects are plain JSON values (`KObject`); failures are `ApiError`s carrying the Status code and
// reason the API server answered, so callers branch on `code` exactly as with client-go.
import type { KObject } from '../api/object.js';
import { ApiError } from '../api/status.js';

/** A resource as it appears in URLs: `/apis/<group>/<version>/.../<resource>`. */
export interface ResourceRef {
  readonly group: string;       // '' for core
  readonly version: string;
  readonly resource: string;    // plural
}

function ref(group: string, version: string, resource: string): ResourceRef {
  return Object.freeze({ group, version, resource });
}

/** The resources the control loops and agents use. */
export const Resources = {
  namespaces: ref('', 'v1', 'namespaces'),
  nodes: ref('', 'v1', 'nodes'),
  pods: ref('', 'v1', 'pods'),
  services: ref('', 'v1', 'services'),
  endpoints: ref('', 'v1', 'endpoints'),
  configMaps: ref('', 'v1', 'configmaps'),
  secrets: ref('', 'v1', 'secrets'),
  serviceAccounts: ref('', 'v1', 'serviceaccounts'),
  events: ref('', 'v1', 'events'),
  persistentVolumes: ref('', 'v1', 'persistentvolumes'),
  persistentVolumeClaims: ref('', 'v1', 'persistentvolumeclaims'),
  storageClasses: ref('storage.k8s.io', 'v1', 'storageclasses'),
  resourceQuotas: ref('', 'v1', 'resourcequotas'),
  limitRanges: ref('', 'v1', 'limitranges'),
  replicationControllers: ref('', 'v1', 'replicationcontrollers'),
  deployments: ref('apps', 'v1', 'deployments'),
  replicaSets: ref('apps', 'v1', 'replicasets'),
  daemonSets: ref('apps', 'v1', 'daemonsets'),
  statefulSets: ref('apps', 'v1', 'statefulsets'),
  controllerRevisions: ref('apps', 'v1', 'controllerrevisions'),
  jobs: ref('batch', 'v1', 'jobs'),
  cronJobs: ref('batch', 'v1', 'cronjobs'),
  horizontalPodAutoscalers: ref('autoscaling', 'v2', 'horizontalpodautoscalers'),
  podDisruptionBudgets: ref('policy', 'v1', 'poddisruptionbudgets'),
  leases: ref('coordination.k8s.io', 'v1', 'leases'),
  endpointSlices: ref('discovery.k8s.io', 'v1', 'endpointslices'),
  eventsV1: ref('events.k8s.io', 'v1', 'events'),
  customResourceDefinitions: ref('apiextensions.k8s.io', 'v1', 'customresourcedefinitions'),
} as const;

/** `deployments.apps`, `pods`: how logs and messages name a resource. */
export function refName(r: ResourceRef): string {
  return r.group ? `${r.resource}.${r.group}` : r.resource;
}

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  /** Page size; the reply's `continue` fetches the next page. */
  limit?: number;
  continue?: string;
}

export interface ListResult<T extends KObject = KObject> {
  items: T[];
  /** The collection's resourceVersion: watch from here to see every later change. */
  resourceVersion: string;
  continue?: string;
}

export interface WatchOptions {
  labelSelector?: string;
  fieldSelector?: string;
  /** Server-side lifetime of one watch (HTTP only); the caller re-watches from the last version. */
  timeoutSeconds?: number;
}

export interface ClientWatchEvent<T extends KObject = KObject> {
  /** BOOKMARK objects carry only apiVersion, kind and metadata.resourceVersion. */
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';
  object: T;
}

export interface WatchHandle {
  /** Ends the watch; `done` then resolves with undefined. Idempotent. */
  stop(): void;
  /**
   * Resolves when the watch has ended: undefined for a normal end (stop(), or the server closed the
   * stream), else the reason, e.g. an ApiError with code 410 when the resourceVersion is too old.
   */
  done: Promise<Error | undefined>;
}

export interface WriteOptions {
  /** Field manager recorded in managedFields (defaults to the client's own). */
  fieldManager?: string;
  dryRun?: boolean;
}

export type PatchType = 'merge' | 'strategic' | 'json' | 'apply';

export interface PatchOptions extends WriteOptions {
  /** Server-side apply only: take over fields other managers own. */
  force?: boolean;
  subresource?: 'status' | 'approval';
}

export interface DeleteOptions {
  propagationPolicy?: 'Orphan' | 'Background' | 'Foreground';
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: boolean;
}

/** A resource as discovery lists it (APIResource; subresources are not listed). */
export interface ServedResource extends ResourceRef {
  kind: string;
  namespaced: boolean;
  verbs: readonly string[];
}

export interface ApiClient {
  /** The object, or undefined when it does not exist (404). */
  get<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, name: string): Promise<T | undefined>;
  /** `ns` undefined lists across all namespaces (or a cluster-scoped resource). */
  list<T extends KObject = KObject>(ref: ResourceRef, ns?: string, opts?: ListOptions): Promise<ListResult<T>>;
  /**
   * Every change after `resourceVersion` (a list's version); with undefined, '' or '0' the current
   * objects come first as ADDED events. An object leaving the selectors arrives as DELETED, one
   * entering them as ADDED. `onEvent` runs synchronously and must not block.
   */
  watch<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, resourceVersion: string | undefined,
    onEvent: (e: ClientWatchEvent<T>) => void, opts?: WatchOptions): WatchHandle;
  create<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, body: KObject, opts?: WriteOptions): Promise<T>;
  /**
   * PUT: compare-and-swap on `metadata.resourceVersion` when it is set (a stale one fails with an
   * ApiError of code 409), unconditional when it is not.
   */
  update<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, body: KObject, opts?: WriteOptions): Promise<T>;
  /** PUT on the status subresource: only `status` changes. Same concurrency rule as update. */
  updateStatus<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, body: KObject, opts?: WriteOptions): Promise<T>;
  /** `apply` needs `fieldManager`. */
  patch<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, name: string, type: PatchType,
    body: unknown, opts?: PatchOptions): Promise<T>;
  /**
   * Resolves with the object as the delete left it: gone, or still there with a deletionTimestamp
   * while finalizers or graceful termination hold it. A missing object fails with code 404.
   */
  delete<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, name: string, opts?: DeleteOptions): Promise<T>;
  /** pods/binding: assigns an unbound pod to a node (409 when it is already bound). */
  bind(ns: string, pod: string, node: string): Promise<void>;
  /** pods/eviction: a delete that PodDisruptionBudgets may refuse with 429. */
  evict(ns: string, pod: string, opts?: DeleteOptions): Promise<void>;
  /**
   * namespaces/finalize: PUT of a namespace whose `spec.finalizers` changed (the namespace
   * controller's last step). Same concurrency rule as update.
   */
  finalizeNamespace<T extends KObject = KObject>(body: KObject, opts?: WriteOptions): Promise<T>;
  /**
   * Every resource the server serves, each once, in the first version of its group's preference
   * order that has it (client-go's ServerPreferredResources).
   */
  preferredResources(): Promise<ServedResource[]>;
  /** Releases connections; later calls fail. */
  close(): void;
}

export const isNotFound = (e: unknown): boolean => e instanceof ApiError && e.code === 404;
export const isConflict = (e: unknown): boolean => e instanceof ApiError && e.code === 409 && e.reason === 'Conflict';
export const isAlreadyExists = (e: unknown): boolean => e instanceof ApiError && e.code === 409 && e.reason === 'AlreadyExists';
export const isGone = (e: unknown): boolean => e instanceof ApiError && e.code === 410;
