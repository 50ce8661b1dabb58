// From API objects to what the DNS zone needs of them: a Service's kind, cluster IPs, ports, and the
// addresses (with hostnames and ports) of its ready endpoints gathered from all its EndpointSlices.
import { isIPv4, isIPv6 } from 'node:net';
import type { EndpointEntry, PortEntry, ServiceEntry } from './records.js';

type Obj = Record<string, any>;

/** The label that ties an EndpointSlice to its Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export function serviceEntry(svc: Obj, slices: readonly Obj[]): ServiceEntry {
  const spec = svc.spec ?? {};
  const kind: ServiceEntry['kind'] = spec.type === 'ExternalName' ? 'ExternalName'
    : spec.clusterIP === 'None' ? 'Headless' : 'ClusterIP';
  const clusterIPs: string[] = kind === 'ClusterIP'
    ? (spec.clusterIPs?.length ? spec.clusterIPs : spec.clusterIP ? [spec.clusterIP] : []).filter((ip: string) => isIPv4(ip) || isIPv6(ip))
    : [];
  const ports: PortEntry[] = (spec.ports ?? []).map((p: Obj) => ({ name: p.name ?? '', protocol: p.protocol ?? 'TCP', port: Number(p.port) }));
  const publishNotReady = spec.publishNotReadyAddresses === true;
  const byIp = new Map<string, EndpointEntry>();
  for (const slice of slices) {
    if (slice.addressType !== 'IPv4' && slice.addressType !== 'IPv6') continue;   // FQDN slices name no address
    const slicePorts: PortEntry[] = (slice.ports ?? [])
      .filter((p: Obj) => typeof p.port === 'number')
      .map((p: Obj) => ({ name: p.name ?? '', protocol: p.protocol ?? 'TCP', port: p.port }));
    for (const ep of slice.endpoints ?? []) {
      // A nil `ready` means ready (the API's rule); terminating endpoints are not ready.
      if (!publishNotReady && ep.conditions?.ready === false) continue;
      const ip: string | undefined = ep.addresses?.[0];
      if (!ip || !(isIPv4(ip) || isIPv6(ip))) continue;
      const prev = byIp.get(ip);
      if (prev) {
        for (const p of slicePorts) if (!prev.ports.some((q) => q.name === p.name && q.protocol === p.protocol && q.port === p.port)) prev.ports.push(p);
        continue;
      }
      byIp.set(ip, { ip, ...(ep.hostname ? { hostname: String(ep.hostname).toLowerCase() } : {}), ports: [...slicePorts] });
    }
  }
  return {
    namespace: svc.metadata.namespace, name: svc.metadata.name, kind, clusterIPs, ports,
    ...(kind === 'ExternalName' && spec.externalName ? { externalName: String(spec.externalName) } : {}),
    endpoints: [...byIp.values()],
  };
}
