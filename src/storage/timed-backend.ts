// A Backend that reports how long each datastore call takes (the server turns it into
// etcd_request_duration_seconds, the name Kubernetes dashboards expect for storage latency).
import type { Backend, BackendEvent, KeyValue } from './types.js';

export type StorageObserver = (operation: string, key: string, seconds: number) => void;

export class TimedBackend implements Backend {
  constructor(private readonly inner: Backend, private readonly observe: StorageObserver) {}

  private async timed<T>(operation: string, key: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.observe(operation, key, (performance.now() - t0) / 1000);
    }
  }

  start(): Promise<void> { return this.inner.start(); }
  currentRevision(): number { return this.inner.currentRevision(); }
  listLatest(prefix: string): Promise<{ revision: number; kvs: KeyValue[] }> { return this.timed('list', prefix, () => this.inner.listLatest(prefix)); }
  // Its time includes what `each` does with every value (the cache's load parses them).
  eachLatest(prefix: string, each: (kv: KeyValue) => void): Promise<number> { return this.timed('list', prefix, () => this.inner.eachLatest(prefix, each)); }
  history(afterRevision: number, limit: number): Promise<BackendEvent[]> { return this.inner.history(afterRevision, limit); }
  get(key: string): Promise<KeyValue | undefined> { return this.timed('get', key, () => this.inner.get(key)); }
  create(key: string, value: string): Promise<KeyValue> { return this.timed('create', key, () => this.inner.create(key, value)); }
  update(key: string, value: string, rev: number): Promise<KeyValue> { return this.timed('update', key, () => this.inner.update(key, value, rev)); }
  delete(key: string, rev?: number): Promise<KeyValue> { return this.timed('delete', key, () => this.inner.delete(key, rev)); }
  onCommit(listener: (events: BackendEvent[]) => void): void { this.inner.onCommit(listener); }
  compact(revision: number): Promise<void> { return this.timed('compact', '', () => this.inner.compact(revision)); }
  compactedRevision(): number { return this.inner.compactedRevision(); }
  dbSize(): Promise<number> { return this.inner.dbSize(); }
  checkHealth(maxAgeMs?: number): Promise<void> { return this.inner.checkHealth(maxAgeMs); }
  close(): Promise<void> { return this.inner.close(); }
}
