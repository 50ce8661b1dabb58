// The resource metrics API (`metrics.k8s.io/v1beta1`, what metrics-server serves and `kubectl top`
// reads), served by the API server itself from each node's Summary API through its agent tunnel:
// NodeMetrics from the node's CPU rate and memory working set, PodMetrics per container. k3s runs
// metrics-server as a pod that scrapes every kubelet each 15 s; here a node is asked only when
// someone asks for metrics, and its answer is reused for a few seconds.
import type { ServerResponse } from 'node:http';
import type { KindInfo } from '../api/kinds.js';
import type { ApiContext } from './context.js';
import type { RequestInfo } from './request-info.js';
import { selectionOf } from './list-watch-filter.js';
import { ApiError, errors } from '../api/status.js';
import { sendJson } from './http.js';
import { fetchNodeSummary } from './tunnel/node-proxy.js';
import { logger } from '../util/log.js';
import { nowRfc3339 } from '../util/time.js';
import { isPodTerminal } from '../api/pod.js';

const log = logger('metrics');
export const METRICS_GROUP = 'metrics.k8s.io';
const API_VERSION = `${METRICS_GROUP}/v1beta1`;
/** How long a node's Summary is reused (metrics-server's default resolution is 15 s). */
const SUMMARY_TTL_MS = 5_000;
/** A node that does not answer within this is left out, as metrics-server leaves out failed scrapes. */
const SUMMARY_TIMEOUT_MS = 5_000;
/** The agent's CPU rate is taken over its sampling interval. */
const WINDOW = '10s';

/** The parts of the kubelet's Summary API document read here. */
interface CpuStats { time: string; usageNanoCores?: number }
interface MemoryStats { workingSetBytes?: number }
interface Summary {
  node: { cpu: CpuStats; memory: MemoryStats };
  pods: { podRef: { name: string; namespace: string }; cpu?: CpuStats; containers: { name: string; cpu?: CpuStats; memory?: MemoryStats }[] }[];
}

const summaries = new WeakMap<ApiContext, Map<string, { at: number; summary: Promise<Summary | undefined> }>>();

function summaryOf(ctx: ApiContext, node: string): Promise<Summary | undefined> {
  let cache = summaries.get(ctx);
  if (!cache) summaries.set(ctx, (cache = new Map()));
  const hit = cache.get(node);
  if (hit && Date.now() - hit.at < SUMMARY_TTL_MS) return hit.summary;
  let timer: NodeJS.Timeout | undefined;
  const summary = Promise.race([
    fetchNodeSummary(ctx, node).then((body) => JSON.parse(body) as Summary),
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('timed out')), SUMMARY_TIMEOUT_MS); }),
  ]).catch((err: unknown) => {
    log.debug({ node, err: err instanceof Error ? err.message : String(err) }, 'no summary from node');
    return undefined;
  }).finally(() => clearTimeout(timer));
  cache.set(node, { at: Date.now(), summary });
  return summary;
}

/** Both values present, or no usage at all (a container without a CPU rate yet is not reported). */
function usage(cpu: CpuStats | undefined, memory: MemoryStats | undefined): { cpu: string; memory: string } | undefined {
  if (cpu?.usageNanoCores === undefined || memory?.workingSetBytes === undefined) return undefined;
  return { cpu: `${Math.round(cpu.usageNanoCores)}n`, memory: `${Math.round(memory.workingSetBytes / 1024)}Ki` };
}

type Obj = Record<string, any>;

async function nodeMetrics(ctx: ApiContext, node: Obj): Promise<Obj | undefined> {
  const s = await summaryOf(ctx, node.metadata.name);
  const u = s && usage(s.node.cpu, s.node.memory);
  if (!s || !u) return undefined;
  return {
    metadata: { name: node.metadata.name, creationTimestamp: nowRfc3339(), labels: node.metadata.labels },
    timestamp: s.node.cpu.time, window: WINDOW, usage: u,
  };
}

/** The Summary entries of `pods` (by namespace/name), asking each of their nodes once. */
async function podStats(ctx: ApiContext, pods: Obj[]): Promise<{ pod: Obj; stats: Summary['pods'][number]; nodeTime: string }[]> {
  const byNode = new Map<string, Obj[]>();
  for (const p of pods) {
    const n = p.spec?.nodeName;
    if (n && !isPodTerminal(p)) byNode.set(n, [...(byNode.get(n) ?? []), p]);
  }
  const out: { pod: Obj; stats: Summary['pods'][number]; nodeTime: string }[] = [];
  await Promise.all([...byNode].map(async ([node, onNode]) => {
    const s = await summaryOf(ctx, node);
    if (!s) return;
    const stats = new Map(s.pods.map((ps) => [`${ps.podRef.namespace}/${ps.podRef.name}`, ps]));
    for (const pod of onNode) {
      const ps = stats.get(`${pod.metadata.namespace}/${pod.metadata.name}`);
      if (ps) out.push({ pod, stats: ps, nodeTime: s.node.cpu.time });
    }
  }));
  return out;
}

async function podMetrics(ctx: ApiContext, pods: Obj[]): Promise<Obj[]> {
  const out: Obj[] = [];
  for (const { pod: p, stats: ps, nodeTime } of await podStats(ctx, pods)) {
    const containers = ps.containers.map((c) => ({ name: c.name, usage: usage(c.cpu, c.memory) }));
    // A pod is reported whole or not at all, as metrics-server does.
    if (containers.length === 0 || containers.some((c) => !c.usage)) continue;
    out.push({
      metadata: { name: p.metadata.name, namespace: p.metadata.namespace, creationTimestamp: nowRfc3339(), labels: p.metadata.labels },
      timestamp: ps.cpu?.time ?? nodeTime, window: WINDOW, containers,
    });
  }
  return out.sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
}

/**
 * What the HPA controller reads (what it would get from metrics.k8s.io): per pod `namespace/name`,
 * CPU in millicores and memory working set in bytes, summed over containers; pods whose metrics
 * are incomplete are left out, as in the API.
 */
export async function podUsage(ctx: ApiContext, pods: Obj[]): Promise<Map<string, { cpu: number; memory: number }>> {
  const out = new Map<string, { cpu: number; memory: number }>();
  for (const { pod, stats } of await podStats(ctx, pods)) {
    let cpu = 0;
    let memory = 0;
    let complete = stats.containers.length > 0;
    for (const c of stats.containers) {
      if (c.cpu?.usageNanoCores === undefined || c.memory?.workingSetBytes === undefined) complete = false;
      cpu += (c.cpu?.usageNanoCores ?? 0) / 1e6;
      memory += c.memory?.workingSetBytes ?? 0;
    }
    if (complete) out.set(`${pod.metadata.namespace}/${pod.metadata.name}`, { cpu, memory });
  }
  return out;
}

/** GET and LIST of `nodes` and `pods` in metrics.k8s.io/v1beta1. */
export async function handleMetrics(ctx: ApiContext, res: ServerResponse, ri: RequestInfo, info: KindInfo, ns: string | undefined, q: URLSearchParams): Promise<void> {
  if (ri.verb !== 'get' && ri.verb !== 'list') throw errors.methodNotAllowed(ri.verb);
  const coreKind = ctx.registry.lookup('', 'v1', info.plural)!;
  // Worded as metrics-server words it: `podmetrics.metrics.k8s.io "default/web" not found`.
  const notFound = () => {
    const kind = info.plural === 'nodes' ? 'nodemetrics' : 'podmetrics';
    const name = info.plural === 'nodes' ? ri.name : `${ns}/${ri.name}`;
    return new ApiError(404, 'NotFound', `${kind}.${METRICS_GROUP} "${name}" not found`, { name, group: METRICS_GROUP, kind });
  };
  if (info.plural === 'nodes') {
    if (ri.verb === 'get') {
      const node = ctx.objects.tryGet(coreKind, undefined, ri.name);
      const m = node && await nodeMetrics(ctx, node.obj);
      if (!m) throw notFound();
      return sendJson(res, 200, { kind: 'NodeMetrics', apiVersion: API_VERSION, ...m });
    }
    const nodes = ctx.objects.list(coreKind, undefined, ctx.objects.filterFor(coreKind, selectionOf(q))).map((o) => o.obj);
    const items = (await Promise.all(nodes.map((n) => nodeMetrics(ctx, n)))).filter((m): m is Obj => m !== undefined);
    return sendJson(res, 200, { kind: 'NodeMetricsList', apiVersion: API_VERSION, metadata: {}, items });
  }
  if (ri.verb === 'get') {
    const pod = ctx.objects.tryGet(coreKind, ns, ri.name);
    const [m] = pod ? await podMetrics(ctx, [pod.obj]) : [];
    if (!m) throw notFound();
    return sendJson(res, 200, { kind: 'PodMetrics', apiVersion: API_VERSION, ...m });
  }
  // Selectors select the nodes and pods the metrics are of, as in metrics-server.
  const pods = ctx.objects.list(coreKind, ns, ctx.objects.filterFor(coreKind, selectionOf(q))).map((o) => o.obj);
  return sendJson(res, 200, { kind: 'PodMetricsList', apiVersion: API_VERSION, metadata: {}, items: await podMetrics(ctx, pods) });
}
