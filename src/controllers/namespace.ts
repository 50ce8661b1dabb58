// Namespace lifecycle: a namespace being deleted has its contents removed, then its `kubernetes`
// finalizer, and disappears. Every new namespace gets its `default` ServiceAccount. Level-triggered:
// on start it looks at every namespace, then follows the watch; a failed pass is retried.
import { BUILTIN_KINDS, type KindInfo } from '../api/kinds.js';
import type { ObjectService, Actor } from '../apiserver/objects.js';
import type { ResourceRegistry } from '../apiserver/registry.js';
import type { StoredObject } from '../storage/types.js';
import { logger } from '../util/log.js';

const log = logger('namespace-controller');
const NS = BUILTIN_KINDS.find((k) => k.group === '' && k.plural === 'namespaces')!;
const SA = BUILTIN_KINDS.find((k) => k.group === '' && k.plural === 'serviceaccounts')!;
const actor: Actor = { user: 'system:serviceaccount:kube-system:namespace-controller', groups: ['system:masters'], manager: 'kube-controller-manager' };

export class NamespaceController {
  private queue = new Set<string>();
  private running = false;
  private stopped = false;
  private watcher?: { stop(): void };
  private retryTimer?: NodeJS.Timeout;

  constructor(private readonly objects: ObjectService, private readonly registry: ResourceRegistry) {}

  start(): void {
    const store = this.objects.store;
    for (const o of store.list('/core/namespaces/').items) this.enqueue(o.obj.metadata.name);
    this.watcher = store.watch('/core/namespaces/', store.revision(), (e) => { if (e.type !== 'DELETED') this.enqueue(e.object.obj.metadata.name); });
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.stop();
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  private enqueue(name: string): void {
    this.queue.add(name);
    if (!this.running) void this.drain();
  }

  private async drain(): Promise<void> {
    this.running = true;
    while (this.queue.size && !this.stopped) {
      const name = this.queue.values().next().value as string;
      this.queue.delete(name);
      try {
        await this.sync(name);
      } catch (err) {
        log.warn({ err: String(err), namespace: name }, 'namespace sync failed; retrying');
        this.retryTimer = setTimeout(() => this.enqueue(name), 1000);
      }
    }
    this.running = false;
  }

  private async sync(name: string): Promise<void> {
    const ns = this.objects.tryGet(NS, undefined, name);
    if (!ns) return;
    if (!ns.obj.metadata.deletionTimestamp) {
      if (!this.objects.tryGet(SA, name, 'default')) {
        try {
          await this.objects.create(SA, name, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: name } }, { actor });
        } catch (e: any) { if (e?.code !== 409 && e?.code !== 403) throw e; }
      }
      return;
    }
    await this.emptyNamespace(ns);
  }

  private async emptyNamespace(ns: StoredObject): Promise<void> {
    const name = ns.obj.metadata.name;
    let remaining = 0;
    for (const info of this.namespacedKinds()) {
      for (const o of this.objects.list(info, name)) {
        remaining++;
        if (o.obj.metadata.deletionTimestamp) continue;
        try {
          await this.objects.delete(info, name, o.obj.metadata.name, { propagationPolicy: 'Background' }, actor);
        } catch (e: any) { if (e?.code !== 404) throw e; }
      }
    }
    // Objects that went away right now no longer count; anything still terminating keeps us waiting.
    const left = this.countRemaining(name);
    if (left > 0) {
      log.debug({ namespace: name, left, seen: remaining }, 'waiting for namespace contents to terminate');
      this.retryTimer = setTimeout(() => this.enqueue(name), 1000);
      return;
    }
    await this.objects.update(NS, undefined, name, (current) => {
      if (!current) throw Object.assign(new Error('gone'), { code: 404 });
      const next = structuredClone(current.obj) as Record<string, any>;
      next.spec = { ...(next.spec ?? {}), finalizers: (next.spec?.finalizers ?? []).filter((f: string) => f !== 'kubernetes') };
      delete next.metadata.resourceVersion;
      return next;
    }, { actor, subresource: 'finalize' }).catch((e) => { if (e?.code !== 404) throw e; });
    log.info({ namespace: name }, 'namespace deleted');
  }

  private countRemaining(ns: string): number {
    let n = 0;
    for (const info of this.namespacedKinds()) n += this.objects.list(info, ns).length;
    return n;
  }

  /** One served version of every stored namespaced resource (built-ins and CRDs). */
  private namespacedKinds(): KindInfo[] {
    const seen = new Set<string>();
    return this.registry.all().filter((info) => {
      if (!info.namespaced || info.virtual) return false;
      const storeKey = `${info.group}/${info.storage?.resource ?? info.plural}`;
      if (seen.has(storeKey)) return false;
      seen.add(storeKey);
      return true;
    });
  }
}
