// The environment variables the kubelet gives every container about Services: always those of the
// API server's own Service (`kubernetes` in `default`), and with `enableServiceLinks` (the default)
// those of every Service in the pod's namespace, in the docker-links style old programs still read
// (`<NAME>_SERVICE_HOST`, `<NAME>_PORT_<port>_TCP_ADDR`, …). Services without a cluster IP (headless,
// ExternalName) have none. The container's own env and envFrom come later and win.
import type { Obj } from './pod-api.js';

const MASTER = { namespace: 'default', name: 'kubernetes' };

const envName = (s: string) => s.toUpperCase().replace(/-/g, '_');

function hasClusterIp(svc: Obj): boolean {
  const ip = svc.spec?.clusterIP;
  return typeof ip === 'string' && ip !== '' && ip !== 'None';
}

/** The variables of one Service, in the kubelet's order. */
function varsOf(svc: Obj): [string, string][] {
  const ip: string = svc.spec.clusterIP;
  const ports: Obj[] = svc.spec.ports ?? [];
  const name = envName(svc.metadata.name);
  const out: [string, string][] = [[`${name}_SERVICE_HOST`, ip]];
  if (ports[0]) out.push([`${name}_SERVICE_PORT`, String(ports[0].port)]);
  for (const p of ports) if (p.name) out.push([`${name}_SERVICE_PORT_${envName(p.name)}`, String(p.port)]);
  // IPv6 addresses go in brackets in URLs.
  const host = ip.includes(':') ? `[${ip}]` : ip;
  if (ports[0]) out.push([`${name}_PORT`, `${String(ports[0].protocol ?? 'TCP').toLowerCase()}://${host}:${ports[0].port}`]);
  for (const p of ports) {
    const proto = String(p.protocol ?? 'TCP');
    const prefix = `${name}_PORT_${p.port}_${proto.toUpperCase()}`;
    out.push([prefix, `${proto.toLowerCase()}://${host}:${p.port}`], [`${prefix}_PROTO`, proto.toLowerCase()],
      [`${prefix}_PORT`, String(p.port)], [`${prefix}_ADDR`, ip]);
  }
  return out;
}

/** The Service variables for a pod, from the Services the node knows. */
export function serviceEnv(pod: Obj, services: readonly Obj[]): Map<string, string> {
  const ns: string = pod.metadata.namespace;
  const links = pod.spec?.enableServiceLinks !== false;
  const chosen = new Map<string, Obj>();
  for (const svc of services) {
    if (!hasClusterIp(svc)) continue;
    const isMaster = svc.metadata.namespace === MASTER.namespace && svc.metadata.name === MASTER.name;
    if (isMaster || (links && svc.metadata.namespace === ns)) chosen.set(`${svc.metadata.namespace}/${svc.metadata.name}`, svc);
  }
  const out = new Map<string, string>();
  // A namespace's own Service named like the master one wins over it (both set the same names).
  const ordered = [...chosen.values()].sort((a, b) => Number(a.metadata.namespace === ns) - Number(b.metadata.namespace === ns));
  for (const svc of ordered) for (const [k, v] of varsOf(svc)) out.set(k, v);
  return out;
}
