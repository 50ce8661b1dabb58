// The cluster's DNS zone as CoreDNS's kubernetes plugin serves it (Kubernetes' DNS-based service
// discovery spec), answered from an in-memory index of Services (with their ready endpoints),
// namespaces, node names (k3s's NodeHosts) and extra hosts. Pure: no I/O; the controller feeds it, the
// server asks it. `answer()` returns undefined for names that are not ours, which the server forwards.
//
// Names served (Z = cluster domain, TTL 5 as CoreDNS):
//   svc.ns.svc.Z            A/AAAA: ClusterIP(s); headless: every ready endpoint; ExternalName: CNAME
//   _port._proto.svc.ns.svc.Z  SRV per named port (headless: one per ready endpoint, endpoint's port)
//   ep.svc.ns.svc.Z         A/AAAA of the endpoint whose hostname (or dashed IP) is `ep`
//   a-b-c-d.ns.pod.Z        A a.b.c.d ("pods insecure": the address is not checked against pods)
//   ns.dns.Z                A: the cluster DNS IP; dns-version.Z TXT: the spec's schema version
//   PTR for ClusterIPs and endpoint addresses; node names and extra hosts (TTL 60, as k3s's NodeHosts)
// A name that exists with no record of the asked type is NODATA (NOERROR, empty, SOA); a name that does
// not exist is NXDOMAIN with the SOA, so resolvers cache the denial for the SOA minimum (5 s).
import type { Answer } from 'dns-packet';
import { isIPv4, isIPv6 } from 'node:net';
import { canonicalName, dashedIp, ipFromDashed, ipKey, reverseNameToKey } from './names.js';

export const CLUSTER_TTL = 5;
export const HOSTS_TTL = 60;
/** The schema version of Kubernetes' DNS spec this server implements (its `dns-version` TXT record). */
export const DNS_SCHEMA_VERSION = '1.1.0';

export interface PortEntry { name: string; protocol: string; port: number }
export interface EndpointEntry { ip: string; hostname?: string; ports: PortEntry[] }

export interface ServiceEntry {
  namespace: string;
  name: string;
  kind: 'ClusterIP' | 'Headless' | 'ExternalName';
  /** The Service's cluster IPs (ClusterIP kind). */
  clusterIPs: string[];
  externalName?: string;
  ports: PortEntry[];
  /** Ready (or published-not-ready) endpoints, one per address. */
  endpoints: EndpointEntry[];
}

export interface LocalAnswer {
  rcode: 'NOERROR' | 'NXDOMAIN';
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
  /** Set when the answer ends in a CNAME out of the cluster zone the server should resolve further. */
  chase?: string;
}

export interface RecordsOptions {
  clusterDomain: string;
  /** The cluster DNS Service IP (`ns.dns.<domain>`). */
  clusterDns: string;
}

interface HostEntry { v4: string[]; v6: string[] }

export class ClusterRecords {
  readonly zone: string;
  private readonly clusterDns: string;
  private readonly services = new Map<string, ServiceEntry>();   // `name.namespace`
  private readonly namespaces = new Set<string>();
  private readonly reverse = new Map<string, Set<string>>();     // ip key → FQDNs
  private readonly nodeHosts = new Map<string, HostEntry>();
  private extraHosts = new Map<string, HostEntry>();
  private readonly hostReverse = new Map<string, Set<string>>();
  private serial = Math.floor(Date.now() / 1000);
  /** Bumped on every change, so the server can drop answers it cached. */
  generation = 0;

  constructor(o: RecordsOptions) {
    this.zone = canonicalName(o.clusterDomain);
    this.clusterDns = o.clusterDns;
  }

  // ---- updates (from the controller) ----

  setNamespaces(names: Iterable<string>): void {
    this.namespaces.clear();
    for (const n of names) this.namespaces.add(n.toLowerCase());
    this.changed();
  }

  addNamespace(name: string): void { this.namespaces.add(name.toLowerCase()); this.changed(); }
  deleteNamespace(name: string): void { this.namespaces.delete(name.toLowerCase()); this.changed(); }

  setService(e: ServiceEntry): void {
    this.deleteService(e.namespace, e.name);
    const key = `${e.name}.${e.namespace}`.toLowerCase();
    this.services.set(key, e);
    const fqdn = `${key}.svc.${this.zone}`;
    if (e.kind === 'ClusterIP') for (const ip of e.clusterIPs) this.addReverse(this.reverse, ip, fqdn);
    for (const ep of e.endpoints) this.addReverse(this.reverse, ep.ip, `${endpointLabel(ep)}.${fqdn}`);
    this.changed();
  }

  deleteService(namespace: string, name: string): void {
    const key = `${name}.${namespace}`.toLowerCase();
    const old = this.services.get(key);
    if (!old) return;
    this.services.delete(key);
    const fqdn = `${key}.svc.${this.zone}`;
    for (const ip of old.clusterIPs) this.dropReverse(this.reverse, ip, fqdn);
    for (const ep of old.endpoints) this.dropReverse(this.reverse, ep.ip, `${endpointLabel(ep)}.${fqdn}`);
    this.changed();
  }

  service(namespace: string, name: string): ServiceEntry | undefined {
    return this.services.get(`${name}.${namespace}`.toLowerCase());
  }

  /** A node's name and addresses (its InternalIPs), as k3s writes them into CoreDNS's NodeHosts. */
  setNode(name: string, ips: string[]): void {
    this.deleteNode(name);
    const entry = hostEntry(ips);
    if (!entry.v4.length && !entry.v6.length) return;
    const n = canonicalName(name);
    this.nodeHosts.set(n, entry);
    for (const ip of [...entry.v4, ...entry.v6]) this.addReverse(this.hostReverse, ip, n);
    this.changed();
  }

  deleteNode(name: string): void {
    const n = canonicalName(name);
    const old = this.nodeHosts.get(n);
    if (!old) return;
    this.nodeHosts.delete(n);
    for (const ip of [...old.v4, ...old.v6]) this.dropReverse(this.hostReverse, ip, n);
    this.rebuildHostReverse();
    this.changed();
  }

  /** Extra hosts (the `hosts` key of the skiff-dns ConfigMap): name → addresses; replaces the last set. */
  setExtraHosts(hosts: Map<string, string[]>): void {
    this.extraHosts = new Map([...hosts].map(([n, ips]) => [canonicalName(n), hostEntry(ips)] as const));
    this.rebuildHostReverse();
    this.changed();
  }

  // ---- queries ----

  /** The answer for one question, or undefined when the name is not the cluster's (forward it). */
  answer(qname: string, qtype: string): LocalAnswer | undefined {
    const name = canonicalName(qname);
    const host = this.extraHosts.get(name) ?? this.nodeHosts.get(name);
    if (host) return this.hostAnswer(qname, qtype, host);
    if (name.endsWith('.arpa')) return this.reverseAnswer(qname, name, qtype);
    if (name !== this.zone && !name.endsWith(`.${this.zone}`)) return undefined;
    const labels = name === this.zone ? [] : name.slice(0, -this.zone.length - 1).split('.');
    return this.zoneAnswer(qname, labels, qtype);
  }

  private zoneAnswer(qname: string, labels: string[], qtype: string): LocalAnswer {
    const n = labels.length;
    if (n === 0) {
      if (qtype === 'SOA') return this.ok([this.soa()]);
      if (qtype === 'NS') return { ...this.ok([rr(qname, 'NS', CLUSTER_TTL, `ns.dns.${this.zone}`)]), additionals: this.nsGlue() };
      return this.nodata();
    }
    const top = labels[n - 1]!;
    if (top === 'svc') return this.svcAnswer(qname, labels.slice(0, -1), qtype);
    if (top === 'pod') return this.podAnswer(qname, labels.slice(0, -1), qtype);
    if (n === 2 && labels[0] === 'ns' && top === 'dns') return this.addresses(qname, qtype, [this.clusterDns], CLUSTER_TTL);
    if (n === 1 && top === 'dns') return this.nodata();
    if (n === 1 && top === 'dns-version') {
      return qtype === 'TXT' ? this.ok([{ name: qname, type: 'TXT', ttl: CLUSTER_TTL, data: DNS_SCHEMA_VERSION } as Answer]) : this.nodata();
    }
    return this.nxdomain();
  }

  private svcAnswer(qname: string, labels: string[], qtype: string): LocalAnswer {
    const n = labels.length;
    if (n === 0) return this.nodata();                     // svc.Z is an empty non-terminal
    const ns = labels[n - 1]!;
    if (!this.namespaces.has(ns) && !this.hasServicesIn(ns)) return this.nxdomain();
    if (n === 1) return this.nodata();                     // ns.svc.Z exists while the namespace does
    const svc = this.services.get(`${labels[n - 2]}.${ns}`);
    if (!svc) return this.nxdomain();
    const fqdn = `${svc.name}.${svc.namespace}.svc.${this.zone}`.toLowerCase();
    if (n === 2) {
      if (svc.kind === 'ExternalName') return svc.externalName ? this.cname(qname, svc.externalName, qtype) : this.nxdomain();
      if (qtype === 'SRV') return this.srv(qname, svc, fqdn, undefined, undefined);
      const ips = svc.kind === 'ClusterIP' ? svc.clusterIPs : svc.endpoints.map((e) => e.ip);
      if (!ips.length) return this.nxdomain();             // headless with no ready endpoint: CoreDNS says NXDOMAIN
      return this.addresses(qname, qtype, ips, CLUSTER_TTL);
    }
    if (n === 3) {
      // An endpoint by its hostname or dashed address (StatefulSet pods: web-0.nginx.ns.svc.Z).
      const label = labels[0]!;
      const eps = svc.endpoints.filter((e) => endpointLabel(e).toLowerCase() === label);
      if (!eps.length) return this.nxdomain();
      return this.addresses(qname, qtype, eps.map((e) => e.ip), CLUSTER_TTL);
    }
    if (n === 4 && labels[0]!.startsWith('_') && labels[1]!.startsWith('_')) {
      const port = labels[0]!.slice(1);
      const proto = labels[1]!.slice(1);
      if (svc.kind === 'ExternalName') return this.nxdomain();
      const found = this.srv(qname, svc, fqdn, port, proto);
      if (!found.answers.length && qtype === 'SRV') return this.nxdomain();
      if (qtype === 'SRV') return found;
      // The name exists (it has SRV records): other types are NODATA... unless nothing matched.
      return found.answers.length ? this.nodata() : this.nxdomain();
    }
    return this.nxdomain();
  }

  private podAnswer(qname: string, labels: string[], qtype: string): LocalAnswer {
    const n = labels.length;
    if (n === 0) return this.nodata();
    const ns = labels[n - 1]!;
    if (!this.namespaces.has(ns) && !this.hasServicesIn(ns)) return this.nxdomain();
    if (n === 1) return this.nodata();
    if (n !== 2) return this.nxdomain();
    const ip = ipFromDashed(labels[0]!);
    if (!ip) return this.nxdomain();
    return this.addresses(qname, qtype, [ip], CLUSTER_TTL);
  }

  private srv(qname: string, svc: ServiceEntry, fqdn: string, port: string | undefined, proto: string | undefined): LocalAnswer {
    const matches = (p: PortEntry) => (port === undefined || (p.name !== '' && p.name.toLowerCase() === port))
      && (proto === undefined || p.protocol.toLowerCase() === proto);
    const answers: Answer[] = [];
    const additionals: Answer[] = [];
    if (svc.kind === 'ClusterIP') {
      const ports = svc.ports.filter(matches);
      for (const p of ports) answers.push(srvRecord(qname, p.port, fqdn, 100));
      if (ports.length) additionals.push(...this.addressRecords(fqdn, svc.clusterIPs, CLUSTER_TTL));
    } else if (svc.kind === 'Headless') {
      const found: { ep: EndpointEntry; port: number }[] = [];
      for (const ep of svc.endpoints) for (const p of ep.ports) if (matches(p)) found.push({ ep, port: p.port });
      const weight = found.length ? Math.max(1, Math.floor(100 / found.length)) : 0;
      const glued = new Set<string>();
      for (const { ep, port: pn } of found) {
        const target = `${endpointLabel(ep)}.${fqdn}`;
        answers.push(srvRecord(qname, pn, target, weight));
        if (!glued.has(target)) { glued.add(target); additionals.push(...this.addressRecords(target, [ep.ip], CLUSTER_TTL)); }
      }
    }
    if (!answers.length) return this.nodata();
    return { rcode: 'NOERROR', answers, authorities: [], additionals };
  }

  private cname(qname: string, target: string, qtype: string): LocalAnswer {
    const t = canonicalName(target);
    const answers: Answer[] = [rr(qname, 'CNAME', CLUSTER_TTL, t)];
    if (qtype === 'CNAME') return this.ok(answers);
    // A target inside the zone is answered here; anything else is for the server to resolve upstream.
    const inner = t === this.zone || t.endsWith(`.${this.zone}`) || this.extraHosts.has(t) || this.nodeHosts.has(t) ? this.answer(t, qtype) : undefined;
    if (inner) return { ...inner, answers: [...answers, ...inner.answers] };
    return { rcode: 'NOERROR', answers, authorities: [], additionals: [], chase: t };
  }

  private reverseAnswer(qname: string, name: string, qtype: string): LocalAnswer | undefined {
    const key = reverseNameToKey(name);
    if (!key) return undefined;
    const names = this.reverse.get(key) ?? this.hostReverse.get(key);
    if (!names?.size) return undefined;                     // not ours: fall through to the upstream
    if (qtype !== 'PTR') return { rcode: 'NOERROR', answers: [], authorities: [], additionals: [] };
    const ttl = this.reverse.has(key) ? CLUSTER_TTL : HOSTS_TTL;
    return this.ok([...names].map((target) => rr(qname, 'PTR', ttl, target)));
  }

  private hostAnswer(qname: string, qtype: string, h: HostEntry): LocalAnswer {
    const ips = qtype === 'A' ? h.v4 : qtype === 'AAAA' ? h.v6 : [];
    return { rcode: 'NOERROR', answers: ips.map((ip) => rr(qname, qtype, HOSTS_TTL, ip)), authorities: [], additionals: [] };
  }

  /** A/AAAA answers of the family asked for; a name with only the other family is NODATA. */
  private addresses(qname: string, qtype: string, ips: string[], ttl: number): LocalAnswer {
    if (qtype !== 'A' && qtype !== 'AAAA' && qtype !== 'ANY') return this.nodata();
    const want = qtype === 'ANY' ? ips : ips.filter((ip) => (qtype === 'A' ? isIPv4(ip) : isIPv6(ip)));
    if (!want.length) return this.nodata();
    return this.ok(this.addressRecords(qname, want, ttl));
  }

  private addressRecords(name: string, ips: string[], ttl: number): Answer[] {
    return [...new Set(ips)].map((ip) => rr(name, isIPv4(ip) ? 'A' : 'AAAA', ttl, ip));
  }

  private hasServicesIn(ns: string): boolean {
    // Namespaces are watched; this covers the moment before their informer has synced.
    if (this.namespaces.size) return false;
    for (const s of this.services.values()) if (s.namespace === ns) return true;
    return false;
  }

  private ok(answers: Answer[]): LocalAnswer {
    return { rcode: 'NOERROR', answers, authorities: [], additionals: [] };
  }

  private nodata(): LocalAnswer {
    return { rcode: 'NOERROR', answers: [], authorities: [this.soa()], additionals: [] };
  }

  private nxdomain(): LocalAnswer {
    return { rcode: 'NXDOMAIN', answers: [], authorities: [this.soa()], additionals: [] };
  }

  /** The zone's SOA as CoreDNS writes it: minimum = the record TTL, so denials are cached as briefly. */
  soa(): Answer {
    return {
      name: this.zone, type: 'SOA', ttl: CLUSTER_TTL,
      data: { mname: `ns.dns.${this.zone}`, rname: `hostmaster.${this.zone}`, serial: this.serial, refresh: 7200, retry: 1800, expire: 86400, minimum: CLUSTER_TTL },
    };
  }

  private nsGlue(): Answer[] {
    return this.clusterDns ? this.addressRecords(`ns.dns.${this.zone}`, [this.clusterDns], CLUSTER_TTL) : [];
  }

  private changed(): void {
    this.generation++;
    this.serial = Math.max(this.serial + 1, Math.floor(Date.now() / 1000)) >>> 0;
  }

  private addReverse(index: Map<string, Set<string>>, ip: string, name: string): void {
    const k = ipKey(ip);
    if (!k) return;
    let s = index.get(k);
    if (!s) index.set(k, (s = new Set()));
    s.add(name);
  }

  private dropReverse(index: Map<string, Set<string>>, ip: string, name: string): void {
    const k = ipKey(ip);
    const s = k ? index.get(k) : undefined;
    if (!s) return;
    s.delete(name);
    if (!s.size) index.delete(k!);
  }

  private rebuildHostReverse(): void {
    this.hostReverse.clear();
    for (const m of [this.nodeHosts, this.extraHosts]) {
      for (const [n, e] of m) for (const ip of [...e.v4, ...e.v6]) this.addReverse(this.hostReverse, ip, n);
    }
  }
}

/** An endpoint's DNS label: its hostname, else its address with dashes (CoreDNS's default naming). */
export function endpointLabel(ep: EndpointEntry): string {
  return ep.hostname || dashedIp(ep.ip);
}

function hostEntry(ips: string[]): HostEntry {
  return { v4: ips.filter((ip) => isIPv4(ip)), v6: ips.filter((ip) => isIPv6(ip)) };
}

function rr(name: string, type: string, ttl: number, data: string): Answer {
  return { name, type, ttl, data } as Answer;
}

function srvRecord(name: string, port: number, target: string, weight: number): Answer {
  return { name, type: 'SRV', ttl: CLUSTER_TTL, data: { priority: 0, weight, port, target } };
}
