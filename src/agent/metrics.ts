// The agent's Prometheus metrics, served through the API server's node proxy as the kubelet's are
// (`kubectl get --raw /api/v1/nodes/NODE/proxy/metrics` and `.../proxy/metrics/cadvisor`): running
// pods and containers, pod start latency and CRI call latency under the kubelet's names, the agent's
// own control loops' workqueues and Node.js process metrics; and cAdvisor-style per-container CPU and
// memory from the same samples the Summary API uses.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { collectProcessMetrics } from '../util/process-metrics.js';
import type { CriClient } from './runtime/cri-client.js';
import { statsCollectorFor, type StatsRuntime } from './stats.js';
import { currentMetricsRegistry, histogram } from '../client/metrics-scope.js';

export const METRICS_PATH = '/metrics';
export const CADVISOR_PATH = '/metrics/cadvisor';

/** The kubelet's buckets for runtime operations (client-go's default buckets). */
const OPERATION_BUCKETS = [0.005, 0.0125, 0.03125, 0.078125, 0.1953125, 0.48828125, 1.220703125, 3.0517578125, 7.62939453125, 19.073486328125, 47.6837158203125, 119.20928955078125, 298.0232238769531];
const POD_START_BUCKETS = [0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600];

/** CRI method → the kubelet's operation_type (RunPodSandbox → run_podsandbox). */
function operationType(rpc: string): string {
  return rpc.replace(/PodSandbox/g, 'Podsandbox').replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
}

/** CRI container states as the kubelet labels them. */
const CONTAINER_STATES: Record<string, string> = {
  CONTAINER_CREATED: 'created', CONTAINER_RUNNING: 'running', CONTAINER_EXITED: 'exited', CONTAINER_UNKNOWN: 'unknown',
};

export class AgentMetrics {
  private readonly cadvisor = new Registry();

  constructor(readonly registry: Registry, cri: CriClient & StatsRuntime, nodeName: string) {
    collectProcessMetrics(this.registry);
    const ops = new Histogram({
      name: 'kubelet_runtime_operations_duration_seconds', help: 'Duration in seconds of runtime operations. Broken down by operation type.',
      labelNames: ['operation_type'], buckets: OPERATION_BUCKETS, registers: [this.registry],
    });
    const errors = new Counter({ name: 'kubelet_runtime_operations_errors_total', help: 'Cumulative number of runtime operation errors by operation type.', labelNames: ['operation_type'], registers: [this.registry] });
    cri.onCall = (rpc, seconds, failed) => {
      ops.labels(operationType(rpc)).observe(seconds);
      if (failed) errors.labels(operationType(rpc)).inc();
    };
    podStartHistogram(this.registry);
    new Gauge({
      name: 'kubelet_running_pods', help: 'Number of pods that have a running pod sandbox', registers: [this.registry],
      async collect(this: Gauge<string>) {
        this.set((await cri.listPodSandbox({ state: { state: 'SANDBOX_READY' } })).length);
      },
    });
    new Gauge({
      name: 'kubelet_running_containers', help: 'Number of containers currently running', labelNames: ['container_state'], registers: [this.registry],
      async collect(this: Gauge<string>) {
        const counts: Record<string, number> = { created: 0, running: 0, exited: 0, unknown: 0 };
        for (const c of await cri.listContainers()) counts[CONTAINER_STATES[c.state] ?? 'unknown']++;
        for (const [state, n] of Object.entries(counts)) this.labels(state).set(n);
      },
    });
    // cAdvisor's names, filled from the Summary's samples at scrape time.
    const labels = ['container', 'pod', 'namespace', 'name', 'image', 'id'];
    new Gauge({
      name: 'container_cpu_usage_seconds_total', help: 'Cumulative cpu time consumed in seconds.', labelNames: labels, registers: [this.cadvisor],
      collect: async function (this: Gauge<string>) { await fill(this, (c) => c.cpu?.usageCoreNanoSeconds !== undefined ? c.cpu.usageCoreNanoSeconds / 1e9 : undefined); },
    });
    new Gauge({
      name: 'container_memory_working_set_bytes', help: 'Current working set in bytes.', labelNames: labels, registers: [this.cadvisor],
      collect: async function (this: Gauge<string>) { await fill(this, (c) => c.memory?.workingSetBytes); },
    });
    const fill = async (g: Gauge<string>, value: (c: { cpu?: { usageCoreNanoSeconds?: number }; memory?: { workingSetBytes?: number } }) => number | undefined) => {
      g.reset();
      const s = await statsCollectorFor(cri).summary(nodeName);
      const node = value(s.node);
      if (node !== undefined) g.labels('', '', '', '', '', '/').set(node);
      for (const p of s.pods) {
        for (const c of p.containers) {
          const v = value(c);
          if (v !== undefined) g.labels(c.name, p.podRef.name, p.podRef.namespace, '', '', `/kubepods/pod${p.podRef.uid}/${c.name}`).set(v);
        }
      }
    };
  }

  /** The text of `/metrics` or `/metrics/cadvisor`, or undefined for another path. */
  async render(path: string): Promise<string | undefined> {
    if (path === METRICS_PATH) return this.registry.metrics();
    if (path === CADVISOR_PATH) return this.cadvisor.metrics();
    return undefined;
  }
}

function podStartHistogram(registry: Registry): Histogram<string> {
  return histogram(registry, 'kubelet_pod_start_duration_seconds',
    'Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run', [], POD_START_BUCKETS);
}

/**
 * For a pod worker: call the returned function when the pod first runs (nothing when the worker was
 * not started under an agent's metrics registry).
 */
export function podStartRecorder(): ((seconds: number) => void) | undefined {
  const registry = currentMetricsRegistry();
  if (!registry) return undefined;
  const h = podStartHistogram(registry);
  return (seconds) => h.observe(seconds);
}
