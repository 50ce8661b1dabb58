// One informer per resource (and namespace and selectors) shared by every loop that asks for it, as
// client-go's SharedInformerFactory: the scheduler, the ReplicaSet controller and the garbage
// collector all follow pods through one list, one watch and one cache.
import type { KObject } from '../api/object.js';
import type { ApiClient, ResourceRef } from './types.js';
import { Informer, type IndexFunc, type InformerOptions } from './informer.js';

export interface SharedInformerOptions<T> {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Added to the shared informer; names must be unique across the loops sharing it. */
  indexers?: Record<string, IndexFunc<T>>;
  /**
   * A reduced view of each object, kept instead of the object (client-go's transform): loops that
   * need a few fields of many objects (every Node's addresses) hold those fields only. Loops share the
   * informer only when they name the same view.
   */
  view?: { name: string; transform: (obj: T) => T };
}

export class InformerFactory {
  private readonly informers = new Map<string, Informer<any>>();
  private started = false;

  constructor(
    private readonly client: ApiClient,
    private readonly defaults: Pick<InformerOptions<KObject>, 'resyncMs' | 'backoff' | 'watchTimeoutSeconds'> = {},
  ) {}

  informerFor<T extends KObject = KObject>(resource: ResourceRef, opts: SharedInformerOptions<T> = {}): Informer<T> {
    const id = [resource.group, resource.version, resource.resource, opts.namespace ?? '', opts.labelSelector ?? '', opts.fieldSelector ?? '',
      ...(opts.view ? [`view=${opts.view.name}`] : [])].join('|');
    let inf = this.informers.get(id) as Informer<T> | undefined;
    if (!inf) {
      inf = new Informer<T>({
        ...this.defaults, client: this.client, resource,
        namespace: opts.namespace, labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector,
        transform: opts.view?.transform,
      });
      this.informers.set(id, inf);
      // Loops may ask for an informer after start (e.g. one enabled later): it starts at once.
      if (this.started) inf.start();
    }
    if (opts.indexers) inf.addIndexers(opts.indexers);
    return inf;
  }

  start(): void {
    this.started = true;
    for (const inf of this.informers.values()) inf.start();
  }

  /** Resolves when every informer made so far has synced. */
  async waitForSync(timeoutMs?: number): Promise<void> {
    await Promise.all([...this.informers.values()].map((inf) => inf.waitForSync(timeoutMs)));
  }

  /** Informers made so far that have not synced yet (what the informer-sync health check reports). */
  unsynced(): string[] {
    return [...this.informers.entries()].filter(([, inf]) => !inf.hasSynced()).map(([id]) => {
      const [group, version, resource, ns, ...selectors] = id.split('|');
      const sel = selectors.filter(Boolean).join(',');
      return `${resource}.${version}${group ? '.' + group : ''}${ns ? ` in ${ns}` : ''}${sel ? ` (${sel})` : ''}`;
    });
  }

  async stop(): Promise<void> {
    await Promise.all([...this.informers.values()].map((inf) => inf.stop()));
  }
}
