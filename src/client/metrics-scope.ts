// Prometheus metrics of the loops a process runs, kept in the registry of whoever started them: the
// server's control loops report to the server's /metrics, an agent's loops to that agent's. The
// registry travels with the async context (AsyncLocalStorage) in which the loops are started, so
// no controller needs to be handed it, and the embedded agent in a server keeps its own.
import { AsyncLocalStorage } from 'node:async_hooks';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

const scope = new AsyncLocalStorage<Registry>();

/** Runs `fn` (and everything it starts, also later) with `registry` as the metrics registry. */
export function withMetricsRegistry<T>(registry: Registry, fn: () => T): T {
  return scope.run(registry, fn);
}

/** The registry of the current async context, if any. */
export function currentMetricsRegistry(): Registry | undefined {
  return scope.getStore();
}

/** The metric of that name in `registry`, made on first use (several loops share one family). */
export function counter(registry: Registry, name: string, help: string, labelNames: string[]): Counter<string> {
  return (registry.getSingleMetric(name) as Counter<string> | undefined) ?? new Counter({ name, help, labelNames, registers: [registry] });
}
export function gauge(registry: Registry, name: string, help: string, labelNames: string[]): Gauge<string> {
  return (registry.getSingleMetric(name) as Gauge<string> | undefined) ?? new Gauge({ name, help, labelNames, registers: [registry] });
}
export function histogram(registry: Registry, name: string, help: string, labelNames: string[], buckets: number[]): Histogram<string> {
  return (registry.getSingleMetric(name) as Histogram<string> | undefined) ?? new Histogram({ name, help, labelNames, buckets, registers: [registry] });
}

/** What a WorkQueue reports (client-go's workqueue metrics for one named queue). */
export interface QueueMetrics {
  added(): void;
  depth(n: number): void;
  queued(seconds: number): void;
  worked(seconds: number): void;
  retried(): void;
}

/** client-go's buckets for queue and work durations: 10 ns to 10 s, by tens. */
const QUEUE_BUCKETS = Array.from({ length: 10 }, (_, i) => 1e-8 * 10 ** i);

export function queueMetrics(registry: Registry, name: string): QueueMetrics {
  const adds = counter(registry, 'workqueue_adds_total', 'Total number of adds handled by workqueue', ['name']).labels(name);
  const depth = gauge(registry, 'workqueue_depth', 'Current depth of workqueue', ['name']).labels(name);
  const queued = histogram(registry, 'workqueue_queue_duration_seconds', 'How long in seconds an item stays in workqueue before being requested.', ['name'], QUEUE_BUCKETS).labels(name);
  const worked = histogram(registry, 'workqueue_work_duration_seconds', 'How long in seconds processing an item from workqueue takes.', ['name'], QUEUE_BUCKETS).labels(name);
  const retries = counter(registry, 'workqueue_retries_total', 'Total number of retries handled by workqueue', ['name']).labels(name);
  // Every queue appears from the start (client-go's metrics do), not only after its first retry.
  depth.set(0);
  adds.inc(0);
  retries.inc(0);
  return {
    added: () => adds.inc(),
    depth: (n) => depth.set(n),
    queued: (s) => queued.observe(s),
    worked: (s) => worked.observe(s),
    retried: () => retries.inc(),
  };
}
