// The ingress proxy's routing table, as data: built from the served Ingresses, their Services and
// EndpointSlices, then swapped in whole (the proxy holds one reference, so a request sees either the
// old table or the new one, never half of each). Pure: no sockets, no API; unit tests read it.
//
// Kubernetes' Ingress rules (networking.k8s.io/v1):
// - host: exact, or `*.suffix` matching exactly one more DNS label (`*.foo.com` matches `bar.foo.com`,
//   not `foo.com` nor `baz.bar.foo.com`); a rule without host matches every host;
// - paths: Exact (the whole path, case-sensitive), Prefix (element-wise on `/`: `/foo` matches `/foo`,
//   `/foo/` and `/foo/bar`, not `/foobar`), ImplementationSpecific read as Prefix; the longest
//   matching path wins, and on equal length Exact beats Prefix;
// - nothing matches → the Ingress's defaultBackend → 404.
// Where the spec is silent: a host's own rules are tried first, then `*.` wildcard rules, then the
// rules without host, then the default backend (the oldest Ingress's); two Ingresses claiming the same
// host, path and type: the older one (creation time, then namespace/name) wins, as Traefik and
// ingress-nginx settle it.
import type { KObject } from '../../../api/object.js';
import { endpointReady, endpointServing, endpointTerminating, LABEL_SERVICE_NAME } from '../../../api/endpoint-slices.js';
import { tlsSecretNames } from '../../../api/ingress.js';

type Obj = KObject & Record<string, any>;

/** Where a route sends traffic: the ready endpoints of one Service port, chosen round-robin. */
export interface Backend {
  /** `namespace/service:port` (port number or name as the Ingress names it). */
  key: string;
  /** `ip:port` targets, in a stable order. */
  endpoints: string[];
  /** Why there is no endpoint (answered with 503). */
  problem?: string;
  /** Round-robin position (shared by every route to this backend). */
  next: number;
}

export interface PathRoute {
  /** The path as written in the Ingress (for logs and tests). */
  path: string;
  /** Normalized prefix (no trailing `/`; `''` for `/`) or the exact path. */
  match: string;
  exact: boolean;
  backend: Backend;
  /** `namespace/name` of the Ingress the route comes from. */
  ingress: string;
}

export interface RouteTable {
  /** Exact host → routes, longest first. */
  hosts: Map<string, PathRoute[]>;
  /** `suffix` of a `*.suffix` host → routes. */
  wildcards: Map<string, PathRoute[]>;
  /** Rules without host. */
  anyHost: PathRoute[];
  defaultBackend?: Backend;
  /** TLS: host (or `*.suffix`) → `namespace/secretName`. */
  tls: Map<string, string>;
  /** Every Secret named by a served Ingress (`namespace/name`): the ones to watch. */
  secrets: Set<string>;
  backends: Map<string, Backend>;
}

export interface TableInput {
  /** The Ingresses this controller serves (the caller applies the class rule). */
  ingresses: Obj[];
  service(namespace: string, name: string): Obj | undefined;
  /** The EndpointSlices of one Service. */
  slices(namespace: string, name: string): Obj[];
}

export function emptyTable(): RouteTable {
  return { hosts: new Map(), wildcards: new Map(), anyHost: [], tls: new Map(), secrets: new Set(), backends: new Map() };
}

const created = (o: Obj) => String(o.metadata?.creationTimestamp ?? '');
const nameOf = (o: Obj) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

/** Oldest first: the order in which Ingresses claim hosts, paths, TLS names and the default backend. */
export function byAge(a: Obj, b: Obj): number {
  return created(a).localeCompare(created(b)) || nameOf(a).localeCompare(nameOf(b));
}

export function buildTable(input: TableInput): RouteTable {
  const t = emptyTable();
  const claimed = new Set<string>();
  const backendFor = (ns: string, b: any): Backend => {
    const svc = b?.service ?? {};
    const port = svc.port?.number ?? svc.port?.name ?? '';
    const key = `${ns}/${svc.name ?? ''}:${port}`;
    let be = t.backends.get(key);
    if (!be) t.backends.set(key, be = resolveBackend(key, ns, svc, input));
    return be;
  };
  for (const ing of [...input.ingresses].sort(byAge)) {
    const ns = String(ing.metadata?.namespace ?? '');
    const id = nameOf(ing);
    const spec = ing.spec ?? {};
    if (spec.defaultBackend && !t.defaultBackend) t.defaultBackend = backendFor(ns, spec.defaultBackend);
    const ruleHosts: string[] = [];
    for (const rule of Array.isArray(spec.rules) ? spec.rules : []) {
      const host = typeof rule?.host === 'string' ? rule.host.toLowerCase() : '';
      if (host) ruleHosts.push(host);
      const list = host.startsWith('*.') ? listFor(t.wildcards, host.slice(2)) : host ? listFor(t.hosts, host) : t.anyHost;
      for (const p of Array.isArray(rule?.http?.paths) ? rule.http.paths : []) {
        const exact = p?.pathType === 'Exact';
        const path = typeof p?.path === 'string' && p.path ? p.path : '/';
        const match = exact ? path : normalizePrefix(path);
        const claim = `${host}|${exact ? 'E' : 'P'}|${match}`;
        if (claimed.has(claim)) continue;    // an older Ingress has it
        claimed.add(claim);
        list.push({ path, match, exact, backend: backendFor(ns, p.backend), ingress: id });
      }
    }
    for (const tls of Array.isArray(spec.tls) ? spec.tls : []) {
      if (typeof tls?.secretName !== 'string' || !tls.secretName) continue;
      // A TLS entry without hosts covers the Ingress's own rule hosts.
      const hosts: string[] = Array.isArray(tls.hosts) && tls.hosts.length ? tls.hosts.map((h: unknown) => String(h).toLowerCase()) : ruleHosts;
      for (const h of hosts) if (!t.tls.has(h)) t.tls.set(h, `${ns}/${tls.secretName}`);
    }
    for (const s of tlsSecretNames(ing)) t.secrets.add(`${ns}/${s}`);
  }
  for (const list of [...t.hosts.values(), ...t.wildcards.values(), t.anyHost]) list.sort(longestFirst);
  return t;
}

function listFor(m: Map<string, PathRoute[]>, k: string): PathRoute[] {
  let l = m.get(k);
  if (!l) m.set(k, l = []);
  return l;
}

function normalizePrefix(path: string): string {
  return path.replace(/\/+$/, '');
}

function longestFirst(a: PathRoute, b: PathRoute): number {
  return b.match.length - a.match.length || Number(b.exact) - Number(a.exact);
}

/**
 * The Service port an Ingress backend names (by number or by name) and its ready endpoints. Ready
 * endpoints, or when there are none the serving-and-terminating ones (the last pods of a rollout
 * still answer), as kube-proxy chooses; pod IPs directly, no Service VIP hop.
 */
function resolveBackend(key: string, ns: string, ref: any, input: TableInput): Backend {
  const be: Backend = { key, endpoints: [], next: 0 };
  const svc = ref?.name ? input.service(ns, ref.name) : undefined;
  if (!svc) { be.problem = `service "${ns}/${ref?.name ?? ''}" not found`; return be; }
  if (svc.spec?.type === 'ExternalName') { be.problem = `service "${ns}/${ref.name}" is of type ExternalName, which the ingress proxy does not route to`; return be; }
  const ports: any[] = Array.isArray(svc.spec?.ports) ? svc.spec.ports : [];
  const want = ref.port ?? {};
  const sp = ports.find((p) => (want.number !== undefined ? p?.port === want.number : p?.name === want.name) && (p?.protocol ?? 'TCP') === 'TCP');
  if (!sp) { be.problem = `service "${ns}/${ref.name}" has no TCP port ${want.number ?? want.name}`; return be; }
  const portName = sp.name ?? '';
  const ready: string[] = [];
  const fallback: string[] = [];
  const seen = new Set<string>();
  const slices = input.slices(ns, ref.name).filter((s) => s.metadata?.labels?.[LABEL_SERVICE_NAME] === ref.name)
    .sort((a, b) => String(a.metadata?.name).localeCompare(String(b.metadata?.name)));
  for (const s of slices) {
    if (s.addressType !== 'IPv4' && s.addressType !== 'IPv6') continue;
    const slicePort = (Array.isArray(s.ports) ? s.ports : []).find((p: any) => (p?.name ?? '') === portName && (p?.protocol ?? 'TCP') === 'TCP');
    if (!slicePort || !Number.isInteger(slicePort.port)) continue;
    for (const e of Array.isArray(s.endpoints) ? s.endpoints : []) {
      const ip = Array.isArray(e?.addresses) ? e.addresses[0] : undefined;
      if (typeof ip !== 'string') continue;
      const target = `${ip.includes(':') ? `[${ip}]` : ip}:${slicePort.port}`;
      if (seen.has(target)) continue;
      seen.add(target);
      if (endpointReady(e.conditions)) ready.push(target);
      else if (endpointServing(e.conditions) && endpointTerminating(e.conditions)) fallback.push(target);
    }
  }
  be.endpoints = ready.length ? ready : fallback;
  if (!be.endpoints.length) be.problem = `service "${ns}/${ref.name}" has no ready endpoint`;
  return be;
}

/** The host of a Host header or SNI name: lower case, without port or trailing dot. */
export function normalizeHost(h: string | undefined): string {
  if (!h) return '';
  let host = h.toLowerCase();
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  const colon = host.lastIndexOf(':');
  if (colon >= 0) host = host.slice(0, colon);
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

function matchPath(routes: PathRoute[] | undefined, path: string): PathRoute | undefined {
  if (!routes) return undefined;
  for (const r of routes) {
    if (r.exact ? path === r.match : (r.match === '' || path === r.match || path.startsWith(r.match + '/'))) return r;
  }
  return undefined;
}

/** The parent domain a `*.` wildcard of `host` would name (`bar.foo.com` → `foo.com`). */
function wildcardSuffix(host: string): string | undefined {
  const dot = host.indexOf('.');
  return dot > 0 ? host.slice(dot + 1) : undefined;
}

/** The backend for a request (`host` normalized, `url` the request target), or undefined: 404. */
export function route(t: RouteTable, host: string, url: string): Backend | undefined {
  const q = url.indexOf('?');
  const path = q >= 0 ? url.slice(0, q) : url;
  const suffix = wildcardSuffix(host);
  const r = matchPath(t.hosts.get(host), path)
    ?? (suffix !== undefined ? matchPath(t.wildcards.get(suffix), path) : undefined)
    ?? matchPath(t.anyHost, path);
  return r?.backend ?? t.defaultBackend;
}

/** The Secret (`namespace/name`) whose certificate answers an SNI name, if an Ingress names one. */
export function tlsSecretFor(t: RouteTable, servername: string): string | undefined {
  const host = normalizeHost(servername);
  const exact = t.tls.get(host);
  if (exact) return exact;
  const suffix = wildcardSuffix(host);
  return suffix !== undefined ? t.tls.get(`*.${suffix}`) : undefined;
}

/** The next endpoint of a backend (round-robin), or undefined when it has none. */
export function pickEndpoint(be: Backend): string | undefined {
  const n = be.endpoints.length;
  if (n === 0) return undefined;
  const i = be.next++ % n;
  if (be.next > 1e9) be.next = 0;
  return be.endpoints[i];
}
