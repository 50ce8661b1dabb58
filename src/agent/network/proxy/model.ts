// What the service proxy must do for one Service on this node, as data: its ports with the addresses
// that capture them (ClusterIP, NodePort, externalIPs, load-balancer IPs) and the endpoints each kind
// of traffic goes to, chosen as kube-proxy chooses them. Pure (no kernel, no API): the rule writers
// turn it into nftables (or, one day, iptables), and the unit tests read it directly.
//
// Endpoint choice (kube-proxy's CategorizeEndpoints, without topology hints): ready endpoints; when a
// traffic kind has none, the serving-and-terminating ones (a rolling update's last pods keep
// answering); none at all → the port is rejected. "Local" policies use only this node's endpoints.
import type { KObject } from '../../../api/object.js';
import { endpointReady, endpointServing, endpointTerminating, LABEL_SERVICE_NAME } from '../../../api/endpoint-slices.js';
import { ipToNumber } from '../../../api/cidr.js';

export type Protocol = 'tcp' | 'udp' | 'sctp';

export interface Endpoint {
  ip: string;
  port: number;
  nodeName?: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

export interface ServicePortModel {
  /** `namespace/name/protocol/portName`, unique per Service port (kube-proxy's ServicePortName). */
  name: string;
  protocol: Protocol;
  clusterIp: string;
  port: number;
  /** 0 when the Service has no NodePort. */
  nodePort: number;
  externalIps: string[];
  loadBalancerIps: string[];
  /** sessionAffinity ClientIP: seconds a client sticks to its endpoint; undefined without affinity. */
  affinitySeconds?: number;
  externalPolicyLocal: boolean;
  internalPolicyLocal: boolean;
  /** Endpoints for "Cluster" policy (any node). */
  clusterEndpoints: Endpoint[];
  /** This node's endpoints, for "Local" policies. */
  localEndpoints: Endpoint[];
  /** Whether any endpoint at all is usable (otherwise: reject). */
  hasEndpoints: boolean;
}

export interface ServiceModel {
  /** `namespace/name`. */
  key: string;
  namespace: string;
  name: string;
  ports: ServicePortModel[];
  /** externalTrafficPolicy Local LoadBalancer: the port of the health check every node answers. */
  healthCheckNodePort?: number;
  /** Ready endpoints on this node (the health check's `localEndpoints`). */
  localReadyEndpoints: number;
}

export interface ModelOptions {
  nodeName: string;
  /** `ip . proto . port` keys another part of the proxy owns (cluster DNS redirect): no rules from Services. */
  reserved?: Set<string>;
}

type Obj = KObject & Record<string, any>;

const DEFAULT_AFFINITY_SECONDS = 10800;
const MAX_AFFINITY_SECONDS = 86400;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
// Names go into nftables chain names: keep to what a chain name may hold (and Kubernetes names are).
const NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

export const isIpv4 = (s: unknown): s is string => typeof s === 'string' && IPV4.test(s);
const isPort = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n > 0 && n < 65536;

export function protocolOf(p: unknown): Protocol | undefined {
  const s = p === undefined ? 'TCP' : p;
  return s === 'TCP' ? 'tcp' : s === 'UDP' ? 'udp' : s === 'SCTP' ? 'sctp' : undefined;
}

/** The service-ips / no-endpoint-services key of an address and port. */
export const ipPortKey = (ip: string, protocol: Protocol, port: number) => `${ip} . ${protocol} . ${port}`;

/** `namespace/name` of the Service a slice belongs to, if labelled. */
export function sliceServiceKey(slice: Obj): string | undefined {
  const svc = slice.metadata.labels?.[LABEL_SERVICE_NAME];
  return svc ? `${slice.metadata.namespace}/${svc}` : undefined;
}

/**
 * The proxy's view of `svc` given its EndpointSlices, or undefined when it needs no rules (headless,
 * ExternalName, no ClusterIP yet, nothing valid in it). Malformed parts are skipped, never thrown on:
 * one bad object must not stop the node's other Services.
 */
export function buildServiceModel(svc: Obj, slices: Obj[], o: ModelOptions): ServiceModel | undefined {
  const spec = svc.spec ?? {};
  const namespace = svc.metadata.namespace ?? '';
  const name = svc.metadata.name ?? '';
  if (!NAME.test(namespace) || !NAME.test(name)) return undefined;
  if (spec.type === 'ExternalName') return undefined;
  const clusterIp = spec.clusterIP;
  if (!isIpv4(clusterIp)) return undefined;   // headless ('None'), unset, or IPv6 (this proxy is IPv4)
  const externallyTyped = spec.type === 'NodePort' || spec.type === 'LoadBalancer';
  const externalIps: string[] = uniq(((Array.isArray(spec.externalIPs) ? spec.externalIPs : []) as unknown[]).filter(isIpv4));
  const loadBalancerIps = spec.type === 'LoadBalancer'
    ? uniq(((Array.isArray(svc.status?.loadBalancer?.ingress) ? svc.status.loadBalancer.ingress : []) as any[]).map((i) => i?.ip as unknown).filter(isIpv4))
    : [];
  const affinitySeconds = spec.sessionAffinity === 'ClientIP' ? affinityTimeout(spec.sessionAffinityConfig?.clientIP?.timeoutSeconds) : undefined;
  const endpointsByPort = collectEndpoints(slices);
  const ports: ServicePortModel[] = [];
  const seen = new Set<string>();
  const localReady = new Set<string>();
  for (const p of Array.isArray(spec.ports) ? spec.ports : []) {
    const protocol = protocolOf(p?.protocol);
    const portName = typeof p?.name === 'string' ? p.name : '';
    if (!protocol || !isPort(p?.port) || (portName && !NAME.test(portName))) continue;
    const id = `${namespace}/${name}/${protocol}/${portName}`;
    if (seen.has(id)) continue;
    seen.add(id);
    if (o.reserved?.has(ipPortKey(clusterIp, protocol, p.port))) continue;
    const nodePort = externallyTyped && isPort(p.nodePort) ? p.nodePort : 0;
    const all = endpointsByPort.get(`${portName}/${protocol}`) ?? [];
    const local = all.filter((e) => e.nodeName === o.nodeName);
    for (const e of local) if (e.ready) localReady.add(e.ip);
    const clusterEndpoints = choose(all);
    const localEndpoints = choose(local);
    ports.push({
      name: id, protocol, clusterIp, port: p.port, nodePort, externalIps, loadBalancerIps, affinitySeconds,
      // The policies matter only where they apply: externalTrafficPolicy to traffic from outside.
      externalPolicyLocal: spec.externalTrafficPolicy === 'Local' && (nodePort > 0 || externalIps.length > 0 || loadBalancerIps.length > 0),
      internalPolicyLocal: spec.internalTrafficPolicy === 'Local',
      clusterEndpoints, localEndpoints,
      hasEndpoints: clusterEndpoints.length > 0 || localEndpoints.length > 0,
    });
  }
  if (!ports.length) return undefined;
  const hc = spec.type === 'LoadBalancer' && spec.externalTrafficPolicy === 'Local' && isPort(spec.healthCheckNodePort) ? spec.healthCheckNodePort : undefined;
  return { key: `${namespace}/${name}`, namespace, name, ports, healthCheckNodePort: hc, localReadyEndpoints: localReady.size };
}

/** Ready endpoints; if none, serving-and-terminating ones (kube-proxy's fallback during rollouts). */
function choose(eps: Endpoint[]): Endpoint[] {
  const ready = eps.filter((e) => e.ready);
  if (ready.length) return ready;
  return eps.filter((e) => e.serving && e.terminating);
}

function affinityTimeout(v: unknown): number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= MAX_AFFINITY_SECONDS ? v : DEFAULT_AFFINITY_SECONDS;
}

/** Endpoints of all slices by `portName/protocol`, one per IP (the first slice that names an IP wins). */
function collectEndpoints(slices: Obj[]): Map<string, Endpoint[]> {
  const out = new Map<string, Map<string, Endpoint>>();
  // Deterministic order: the same inputs always give the same rules (no churn between agents or restarts).
  const sorted = [...slices].sort((a, b) => String(a.metadata.name).localeCompare(String(b.metadata.name)));
  for (const s of sorted) {
    if (s.addressType !== 'IPv4' || !Array.isArray(s.endpoints)) continue;
    for (const sp of Array.isArray(s.ports) ? s.ports : []) {
      const protocol = protocolOf(sp?.protocol);
      if (!protocol || !isPort(sp?.port)) continue;
      const k = `${typeof sp.name === 'string' ? sp.name : ''}/${protocol}`;
      let m = out.get(k);
      if (!m) out.set(k, m = new Map());
      for (const e of s.endpoints) {
        const ip = Array.isArray(e?.addresses) ? e.addresses[0] : undefined;
        if (!isIpv4(ip) || m.has(ip)) continue;
        const c = e.conditions;
        m.set(ip, {
          ip, port: sp.port, nodeName: typeof e.nodeName === 'string' ? e.nodeName : undefined,
          ready: endpointReady(c), serving: endpointServing(c), terminating: endpointTerminating(c),
        });
      }
    }
  }
  return new Map([...out].map(([k, m]) => [k, [...m.values()].sort(compareEndpoints)]));
}

function compareEndpoints(a: Endpoint, b: Endpoint): number {
  return (ipToNumber(a.ip) ?? 0) - (ipToNumber(b.ip) ?? 0) || a.port - b.port;
}


function uniq<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

/** Every endpoint a port's rules may send to from this node. */
export function reachableEndpoints(p: ServicePortModel): Endpoint[] {
  const seen = new Map<string, Endpoint>();
  for (const e of [...p.clusterEndpoints, ...p.localEndpoints]) seen.set(`${e.ip}:${e.port}`, e);
  return [...seen.values()];
}
