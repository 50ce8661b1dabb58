// What a pod worker needs from the API server, as one narrow interface: read the objects a pod's
// volumes and env refer to, mint bound service-account tokens, write the pod's status, finish its
// deletion and record events. `ClientPodApi` implements it over an ApiClient (the agent's HttpClient,
// acting as system:node:<name>, which the node authorizer limits to exactly these reads and writes).
import type { KObject } from '../../api/object.js';
import { ApiError } from '../../api/status.js';
import { isNotFound, Resources, type ApiClient } from '../../client/types.js';
import { eventRecorder, type EventRecorder, type EventType } from '../../client/events.js';

/** Pods, secrets, specs and statuses as plain JSON; the fields read are checked where they are used. */
export type Obj = Record<string, any>;

type Read = Obj & KObject;

export interface IssuedToken {
  token: string;
  /** RFC 3339. */
  expirationTimestamp: string;
}

export type { EventType };

export interface PodApi {
  getSecret(ns: string, name: string): Promise<Obj | undefined>;
  getConfigMap(ns: string, name: string): Promise<Obj | undefined>;
  getPersistentVolumeClaim(ns: string, name: string): Promise<Obj | undefined>;
  getPersistentVolume(name: string): Promise<Obj | undefined>;
  /** The RuntimeClass a pod names (its handler selects the CRI runtime); undefined when it does not exist. */
  getRuntimeClass?(name: string): Promise<Obj | undefined>;
  /** TokenRequest for `sa`, bound to the pod so the token dies with it. */
  createToken(ns: string, sa: string, audiences: string[], expirationSeconds: number, boundPod: { name: string; uid: string }): Promise<IssuedToken>;
  /** Replaces the pod's status (lists whole, as the kubelet's status manager does). */
  updatePodStatus(pod: Obj, status: Obj): Promise<void>;
  /** The final delete once the containers are gone: grace 0, uid precondition (a same-named successor is spared). */
  deletePod(pod: Obj): Promise<void>;
  /** Fire and forget: an event that cannot be written must never hold up a pod. */
  recordEvent(pod: Obj, type: EventType, reason: string, message: string, fieldPath?: string): void;
}

export class ClientPodApi implements PodApi {
  /** Repeats of one event bump its count instead of creating another object, as client-go's recorder does. */
  private readonly events: EventRecorder;

  constructor(private readonly client: ApiClient, nodeName: string) {
    this.events = eventRecorder(client, 'kubelet', nodeName);
  }

  getSecret(ns: string, name: string): Promise<Obj | undefined> {
    return this.client.get<Read>(Resources.secrets, ns, name);
  }

  getConfigMap(ns: string, name: string): Promise<Obj | undefined> {
    return this.client.get<Read>(Resources.configMaps, ns, name);
  }

  getPersistentVolumeClaim(ns: string, name: string): Promise<Obj | undefined> {
    return this.client.get<Read>(Resources.persistentVolumeClaims, ns, name);
  }

  getPersistentVolume(name: string): Promise<Obj | undefined> {
    return this.client.get<Read>(Resources.persistentVolumes, undefined, name);
  }

  getRuntimeClass(name: string): Promise<Obj | undefined> {
    return this.client.get<Read>({ group: 'node.k8s.io', version: 'v1', resource: 'runtimeclasses' }, undefined, name);
  }

  async createToken(ns: string, sa: string, audiences: string[], expirationSeconds: number, boundPod: { name: string; uid: string }): Promise<IssuedToken> {
    // serviceaccounts/<name>/token as a collection path: ApiClient has no subresource create, and over
    // HTTP the URL is all that matters.
    const ref = { group: '', version: 'v1', resource: `serviceaccounts/${encodeURIComponent(sa)}/token` };
    const body = {
      apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', metadata: {},
      spec: { audiences, expirationSeconds, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: boundPod.name, uid: boundPod.uid } },
    };
    const res = await this.client.create<Read>(ref, ns, body);
    if (!res.status?.token) throw new Error(`TokenRequest for ${ns}/${sa} returned no token`);
    return { token: res.status.token, expirationTimestamp: res.status.expirationTimestamp };
  }

  async updatePodStatus(pod: Obj, status: Obj): Promise<void> {
    await this.client.patch(Resources.pods, pod.metadata.namespace, pod.metadata.name!, 'merge', { status }, { subresource: 'status' });
  }

  async deletePod(pod: Obj): Promise<void> {
    try {
      await this.client.delete(Resources.pods, pod.metadata.namespace, pod.metadata.name!, { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata.uid } });
    } catch (err) {
      // Gone already, or a new pod of the same name now (the precondition failed): nothing left to do.
      if (isNotFound(err) || (err instanceof ApiError && err.code === 409)) return;
      throw err;
    }
  }

  recordEvent(pod: Obj, type: EventType, reason: string, message: string, fieldPath?: string): void {
    this.events.record({ apiVersion: 'v1', kind: 'Pod', metadata: pod.metadata }, type, reason, message, fieldPath);
  }
}
