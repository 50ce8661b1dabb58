// Stand-ins for unit tests of reconcile modules that take listers and a client: a Lister over a
// fixed set of objects (with the indexes the real informer would have), a client that records
// every call and answers as the API would for the calls a reconcile makes, and an event recorder
// that keeps what it is given. No SQLite, no informer, no timers.
import type { KObject } from '../../src/api/object.js';
import { ApiError } from '../../src/api/status.js';
import { keyOf, type IndexFunc, type Lister } from '../../src/client/informer.js';
import type { ApiClient, ResourceRef } from '../../src/client/types.js';
import { type EventRecorder } from '../../src/client/events.js';


/** A Lister over `objects`, indexed as an informer with `indexers` would be. */
export function listerOf<T extends KObject>(objects: T[], indexers: Record<string, IndexFunc<T>> = {}): Lister<T> {
  const byKey = new Map(objects.map((o) => [keyOf(o), o]));
  return {
    get: (key) => byKey.get(key),
    getByName: (ns, name) => byKey.get(ns ? `${ns}/${name}` : name),
    list: () => [...byKey.values()],
    byIndex: (name, value) => {
      const fn = indexers[name];
      if (!fn) throw new Error(`no index "${name}"`);
      return [...byKey.values()].filter((o) => fn(o).includes(value));
    },
  };
}

export interface RecordedCall {
  verb: 'get' | 'create' | 'update' | 'updateStatus' | 'patch' | 'delete';
  resource: string;
  namespace?: string;
  name?: string;
  body?: any;
  opts?: unknown;
}

/**
 * An ApiClient that records the writes it is asked for. Creations get a name (from generateName)
 * and a uid; updates and status updates answer with what was sent (a new resourceVersion added);
 * `get` answers from `objects` (undefined when absent). `fail(verb, resource)` makes such calls
 * reject with the given ApiError code.
 */
export class RecordingClient implements ApiClient {
  readonly calls: RecordedCall[] = [];
  private seq = 0;
  private readonly failures = new Map<string, number>();

  constructor(private readonly objects: Map<string, KObject> = new Map()) {}

  fail(verb: RecordedCall['verb'], resource: string, code: number): void {
    this.failures.set(`${verb} ${resource}`, code);
  }

  writes(verb?: RecordedCall['verb'], resource?: string): RecordedCall[] {
    return this.calls.filter((c) => c.verb !== 'get' && (!verb || c.verb === verb) && (!resource || c.resource === resource));
  }

  private record(call: RecordedCall): void {
    this.calls.push(call);
    const code = this.failures.get(`${call.verb} ${call.resource}`);
    if (code !== undefined) throw new ApiError(code, code === 404 ? 'NotFound' : code === 409 ? 'Conflict' : 'Forbidden', `${call.verb} ${call.resource} refused (test)`);
  }

  async get<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, name: string): Promise<T | undefined> {
    this.record({ verb: 'get', resource: ref.resource, namespace: ns, name });
    return this.objects.get(`${ref.resource}/${ns ?? ''}/${name}`) as T | undefined;
  }

  async create<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, body: KObject): Promise<T> {
    this.record({ verb: 'create', resource: ref.resource, namespace: ns, body: structuredClone(body) });
    const made = structuredClone(body) as any;
    const n = ++this.seq;
    made.metadata.name ??= `${made.metadata.generateName ?? 'obj-'}${String(n).padStart(5, '0')}`;
    made.metadata.uid = `uid-created-${n}`;
    made.metadata.resourceVersion = String(n);
    return made as T;
  }

  async update<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, body: KObject): Promise<T> {
    this.record({ verb: 'update', resource: ref.resource, namespace: ns, name: body.metadata.name, body: structuredClone(body) });
    return { ...structuredClone(body), metadata: { ...structuredClone(body.metadata), resourceVersion: String(++this.seq) } } as T;
  }

  async updateStatus<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, body: KObject): Promise<T> {
    this.record({ verb: 'updateStatus', resource: ref.resource, namespace: ns, name: body.metadata.name, body: structuredClone(body) });
    return { ...structuredClone(body), metadata: { ...structuredClone(body.metadata), resourceVersion: String(++this.seq) } } as T;
  }

  async patch<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, name: string, _type: string, body: unknown, opts?: unknown): Promise<T> {
    this.record({ verb: 'patch', resource: ref.resource, namespace: ns, name, body: structuredClone(body), opts });
    return { metadata: { name, namespace: ns } } as T;
  }

  async delete<T extends KObject = KObject>(ref: ResourceRef, ns: string | undefined, name: string, opts?: unknown): Promise<T> {
    this.record({ verb: 'delete', resource: ref.resource, namespace: ns, name, opts });
    return { metadata: { name, namespace: ns } } as T;
  }

  list(): never { throw new Error('RecordingClient: list is not recorded; give the reconcile a lister'); }
  watch(): never { throw new Error('RecordingClient: watch is not recorded; give the reconcile a lister'); }
  bind(): never { throw new Error('RecordingClient: bind is not recorded'); }
  evict(): never { throw new Error('RecordingClient: evict is not recorded'); }
  finalizeNamespace(): never { throw new Error('RecordingClient: finalizeNamespace is not recorded'); }
  preferredResources(): never { throw new Error('RecordingClient: preferredResources is not recorded'); }
  close(): void {}
}

/** An EventRecorder that keeps `reason: message` lines. */
export function recordedEvents(): EventRecorder & { lines: string[] } {
  const lines: string[] = [];
  return { lines, record: (_o, type, reason, message) => { lines.push(`${type} ${reason}: ${message}`); } };
}
