// Values of the downward API, shared by env vars and downwardAPI volumes: pod fields by path
// (metadata.name, status.podIP...) and container resources with a divisor. Unset limits read as the
// node's allocatable, as the kubelet reports them.
import { tryParseQuantity } from '../../api/quantity.js';
import type { Obj } from './pod-api.js';

export interface FieldContext {
  nodeName: string;
  podIPs: string[];
  hostIPs: string[];
}

export interface NodeResources {
  cpuCores: number;
  memoryBytes: number;
  ephemeralStorageBytes: number;
}

/** `key="value"` lines, sorted: how the downward API writes a whole labels/annotations map. */
function formatMap(m: Record<string, string> | undefined): string {
  return Object.keys(m ?? {}).sort().map((k) => `${k}=${JSON.stringify(m![k])}`).join('\n');
}

/** A pod field by path; throws on a path the downward API does not offer. */
export function podFieldValue(pod: Obj, path: string, ctx: FieldContext): string {
  const sub = /^metadata\.(labels|annotations)\['(.*)'\]$/.exec(path);
  if (sub) return (pod.metadata[sub[1] as 'labels' | 'annotations'] as Record<string, string> | undefined)?.[sub[2]!] ?? '';
  switch (path) {
    case 'metadata.name': return pod.metadata.name ?? '';
    case 'metadata.namespace': return pod.metadata.namespace ?? '';
    case 'metadata.uid': return pod.metadata.uid ?? '';
    case 'metadata.labels': return formatMap(pod.metadata.labels);
    case 'metadata.annotations': return formatMap(pod.metadata.annotations);
    case 'spec.nodeName': return pod.spec?.nodeName ?? ctx.nodeName;
    case 'spec.serviceAccountName': return pod.spec?.serviceAccountName ?? '';
    case 'status.hostIP': return ctx.hostIPs[0] ?? '';
    case 'status.hostIPs': return ctx.hostIPs.join(',');
    case 'status.podIP': return ctx.podIPs[0] ?? '';
    case 'status.podIPs': return ctx.podIPs.join(',');
    default: throw new Error(`unsupported fieldRef path ${JSON.stringify(path)}`);
  }
}

/** `limits.cpu` etc. of `container`, divided by `divisor` and rounded up (cpu in cores by default). */
export function resourceFieldValue(container: Obj, resource: string, divisor: unknown, node: NodeResources): string {
  const [kind, name] = resource.split('.') as ['limits' | 'requests', string];
  if ((kind !== 'limits' && kind !== 'requests') || !['cpu', 'memory', 'ephemeral-storage'].includes(name)) {
    throw new Error(`unsupported resourceFieldRef resource ${JSON.stringify(resource)}`);
  }
  // In thousandths, as Kubernetes divides milli-values: 0.25 cores / 1m is exactly 250.
  const declared = tryParseQuantity(container.resources?.[kind]?.[name], 3);
  const allocatable = name === 'cpu' ? node.cpuCores : name === 'memory' ? node.memoryBytes : node.ephemeralStorageBytes;
  const value = declared ?? (kind === 'limits' ? Math.round(allocatable * 1000) : 0);
  const div = tryParseQuantity(divisor ?? '1', 3) || 1000;
  return String(Math.ceil(value / div));
}
