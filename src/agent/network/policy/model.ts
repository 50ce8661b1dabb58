// NetworkPolicy as data for one node, pure (no kernel, no API), as Kubernetes defines it:
// - a pod is isolated for ingress (egress) only when some policy of its namespace selects it and has
//   Ingress (Egress) among its policyTypes (the API defaults policyTypes; an old object without them
//   gets the same default here);
// - what an isolated pod may receive (send) is the union of the rules of every policy selecting it;
// - a peer is a podSelector (the policy's namespace), a namespaceSelector (all pods of matching
//   namespaces), both (pods matching in namespaces matching) or an ipBlock minus its excepts; a rule
//   without peers matches every peer, one without ports every port (and protocol);
// - a port is a number (with endPort, a range), a name (resolved in the destination pod's container
//   ports) or absent (every port of the protocol).
// Pods are peers by their IPs: every pod selector becomes a named set of pod IPs, so a pod that comes,
// goes or changes labels is a change of set elements, never a rewrite of rules.
import { createHash } from 'node:crypto';
import { isIPv4 } from 'node:net';
import type { KObject } from '../../../api/object.js';
import { compileLabelSelector, type LabelMatcher, type LabelSelector } from '../../../api/selectors.js';
import { formatCidr, isStrictSubset, parseCidr, type Cidr } from '../../../api/cidr.js';

type Obj = Record<string, any>;
export type Protocol = 'tcp' | 'udp' | 'sctp';

/** A pod as policies see it. */
export interface PodInfo {
  /** `namespace/name`. */
  key: string;
  namespace: string;
  labels: Record<string, string>;
  /** IPv4 addresses (the table is `ip` family). */
  ips: string[];
  /** Runs on this node: may be isolated, and is matched by the policies' own pod selectors. */
  local: boolean;
  /** Container ports by name (for named ports in rules). */
  ports: { name: string; protocol: Protocol; port: number }[];
}

export type PeerModel = { kind: 'pods'; set: string } | { kind: 'ipBlock'; cidr: string; except: string[] };
export interface PortModel { protocol: Protocol; port?: number; endPort?: number; name?: string }
export interface RuleModel {
  /** undefined: every peer. */
  peers?: PeerModel[];
  /** undefined: every port and protocol. */
  ports?: PortModel[];
}

export interface PolicyModel {
  /** `namespace/name`. */
  key: string;
  namespace: string;
  /** The set of this node's pods the policy selects. */
  selectedSet: string;
  /** undefined: not an Ingress policy. An empty list denies all ingress to the selected pods. */
  ingress?: RuleModel[];
  egress?: RuleModel[];
}

const PROTOCOLS: Record<string, Protocol> = { TCP: 'tcp', UDP: 'udp', SCTP: 'sctp' };

export const hash = (text: string, n = 12) => createHash('sha256').update(text).digest('hex').slice(0, n);

/** A selector as stable text (key order of matchLabels and of the expressions' values never matters). */
function canonical(sel: LabelSelector | null | undefined): string {
  if (!sel) return 'null';
  const labels = Object.entries(sel.matchLabels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const exprs = (sel.matchExpressions ?? []).map((e) => [e.key, e.operator, [...(e.values ?? [])].sort()]);
  return JSON.stringify([labels, exprs]);
}

/** How a named set of pod IPs chooses its pods. */
export interface SetSpec {
  name: string;
  /** `selected`: this node's pods a policy selects; `peer`: pods anywhere a rule names. */
  kind: 'selected' | 'peer';
  /** The one namespace whose pods it holds; undefined: namespaces chosen by `namespaces`. */
  namespace?: string;
  namespaces?: LabelMatcher;
  pods: LabelMatcher;
  /** For `selected` sets: whether an Ingress / Egress policy uses it (its pods are isolated). */
  ingress: boolean;
  egress: boolean;
}

/** All the named sets the policies need, each compiled once, found by namespace. */
export class SetIndex {
  readonly sets = new Map<string, SetSpec>();
  /** Container port names some rule refers to (one set of `ip . proto . port` per name). */
  readonly portNames = new Set<string>();
  private readonly inNamespace = new Map<string, SetSpec[]>();
  private readonly acrossNamespaces: SetSpec[] = [];
  /** Namespace selector results, per set and namespace (the index is rebuilt when namespace labels change). */
  private readonly nsMatches = new Map<SetSpec, Map<string, boolean>>();

  selected(namespace: string, podSelector: LabelSelector | undefined, dir: 'ingress' | 'egress' | undefined): string {
    const name = `sel-${hash(`${namespace}\n${canonical(podSelector ?? {})}`)}`;
    let s = this.sets.get(name);
    if (!s) this.add(s = { name, kind: 'selected', namespace, pods: compileLabelSelector(podSelector ?? {}), ingress: false, egress: false });
    if (dir) s[dir] = true;
    return name;
  }

  peer(policyNamespace: string, podSelector: LabelSelector | undefined, namespaceSelector: LabelSelector | undefined): string {
    const scope = namespaceSelector ? `ns:${canonical(namespaceSelector)}` : `in:${policyNamespace}`;
    const name = `peer-${hash(`${scope}\n${canonical(podSelector ?? {})}`)}`;
    if (!this.sets.has(name)) {
      this.add({
        name, kind: 'peer', ingress: false, egress: false, pods: compileLabelSelector(podSelector ?? {}),
        ...(namespaceSelector ? { namespaces: compileLabelSelector(namespaceSelector) } : { namespace: policyNamespace }),
      });
    }
    return name;
  }

  /** The sets `pod` belongs to: those of its namespace and those whose namespace selector matches it. */
  *setsOf(pod: PodInfo, namespaceLabels: (ns: string) => Record<string, string>): Generator<SetSpec> {
    for (const s of this.inNamespace.get(pod.namespace) ?? []) {
      if ((s.kind === 'peer' || pod.local) && s.pods(pod.labels)) yield s;
    }
    for (const s of this.acrossNamespaces) {
      let byNs = this.nsMatches.get(s);
      if (!byNs) this.nsMatches.set(s, byNs = new Map());
      let m = byNs.get(pod.namespace);
      if (m === undefined) byNs.set(pod.namespace, m = s.namespaces!(namespaceLabels(pod.namespace)));
      if (m && s.pods(pod.labels)) yield s;
    }
  }

  private add(s: SetSpec): void {
    this.sets.set(s.name, s);
    if (s.namespace === undefined) { this.acrossNamespaces.push(s); return; }
    const list = this.inNamespace.get(s.namespace) ?? [];
    list.push(s);
    this.inNamespace.set(s.namespace, list);
  }
}

export const portSetName = (portName: string) => `port-${portName}`;

/** The policyTypes Kubernetes would default for a policy stored without them. */
export function policyTypes(spec: Obj): { ingress: boolean; egress: boolean } {
  const types: unknown[] = Array.isArray(spec.policyTypes) ? spec.policyTypes : [];
  if (!types.length) return { ingress: true, egress: Array.isArray(spec.egress) && spec.egress.length > 0 };
  return { ingress: types.includes('Ingress'), egress: types.includes('Egress') };
}

/** A NetworkPolicy object → its model, registering the sets it needs in `index`. */
export function buildPolicyModel(np: KObject, index: SetIndex): PolicyModel {
  const spec: Obj = (np as Obj).spec ?? {};
  const namespace = np.metadata.namespace ?? 'default';
  const types = policyTypes(spec);
  const selectedSet = index.selected(namespace, spec.podSelector ?? {}, undefined);
  if (types.ingress) index.selected(namespace, spec.podSelector ?? {}, 'ingress');
  if (types.egress) index.selected(namespace, spec.podSelector ?? {}, 'egress');
  const rules = (list: unknown, peersField: 'from' | 'to'): RuleModel[] =>
    (Array.isArray(list) ? list : []).map((r: Obj) => ({
      peers: Array.isArray(r?.[peersField]) && r[peersField].length ? r[peersField].flatMap((p: Obj) => peer(p, namespace, index)) : undefined,
      ports: Array.isArray(r?.ports) && r.ports.length ? r.ports.flatMap((p: Obj) => port(p, index)) : undefined,
    }));
  return {
    key: `${namespace}/${np.metadata.name}`,
    namespace,
    selectedSet,
    ingress: types.ingress ? rules(spec.ingress, 'from') : undefined,
    egress: types.egress ? rules(spec.egress, 'to') : undefined,
  };
}

function peer(p: Obj, namespace: string, index: SetIndex): PeerModel[] {
  if (p?.ipBlock) {
    const c = parseCidr(String(p.ipBlock.cidr ?? ''));
    // Only IPv4 blocks apply to this IPv4 pod network; an IPv6 block matches nothing here.
    if (!c || c.family !== 4) return [];
    const parsed = (Array.isArray(p.ipBlock.except) ? p.ipBlock.except : [])
      .map((e: unknown) => parseCidr(String(e))).filter((e: Cidr | undefined): e is Cidr => e?.family === 4)
      .sort((a: Cidr, b: Cidr) => a.bits - b.bits);
    // An except inside another adds nothing (and an nft interval set refuses overlapping entries).
    const kept: Cidr[] = [];
    for (const e of parsed) if (!kept.some((k) => k.bits <= e.bits && (k.bits === e.bits ? formatCidr(k) === formatCidr(e) : isStrictSubset(e, k)))) kept.push(e);
    return [{ kind: 'ipBlock', cidr: formatCidr(c), except: kept.map(formatCidr).sort() }];
  }
  if (!p?.podSelector && !p?.namespaceSelector) return [];   // invalid (the API refuses it): matches nothing
  return [{ kind: 'pods', set: index.peer(namespace, p.podSelector ?? undefined, p.namespaceSelector ?? undefined) }];
}

function port(p: Obj, index: SetIndex): PortModel[] {
  const protocol = PROTOCOLS[String(p?.protocol ?? 'TCP')];
  if (!protocol) return [];
  if (p.port === undefined || p.port === null) return [{ protocol }];
  if (typeof p.port === 'string' && !/^[0-9]+$/.test(p.port)) {
    index.portNames.add(p.port);
    return [{ protocol, name: p.port }];
  }
  const n = Number(p.port);
  if (!(n >= 1 && n <= 65535)) return [];
  const end = typeof p.endPort === 'number' && p.endPort > n ? Math.min(p.endPort, 65535) : undefined;
  return [{ protocol, port: n, endPort: end }];
}

/** A Pod object → PodInfo; undefined when policies ignore it (host network, finished, no IP yet). */
export function podInfo(pod: Obj, nodeName: string, extraIps?: string[]): PodInfo | undefined {
  if (pod.spec?.hostNetwork) return undefined;
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return undefined;
  const fromStatus: string[] = Array.isArray(pod.status?.podIPs) && pod.status.podIPs.length
    ? pod.status.podIPs.map((x: Obj) => String(x?.ip ?? ''))
    : pod.status?.podIP ? [String(pod.status.podIP)] : [];
  const ips = [...new Set([...fromStatus, ...(extraIps ?? [])])].filter((ip) => isIPv4(ip));
  if (!ips.length) return undefined;
  const ports: PodInfo['ports'] = [];
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c?.ports ?? []) {
      if (!p?.name || typeof p.containerPort !== 'number') continue;
      const protocol = PROTOCOLS[String(p.protocol ?? 'TCP')];
      if (protocol) ports.push({ name: String(p.name), protocol, port: p.containerPort });
    }
  }
  return {
    key: `${pod.metadata?.namespace}/${pod.metadata?.name}`,
    namespace: String(pod.metadata?.namespace ?? 'default'),
    labels: pod.metadata?.labels ?? {},
    ips,
    local: pod.spec?.nodeName === nodeName,
    ports,
  };
}

/**
 * The node's own DNS server, as policies see it: skiff has no CoreDNS pods (every agent answers the
 * cluster DNS IP on its pod bridge's gateway), so the server stands in for them with CoreDNS's labels,
 * namespace and port names. A policy allowing egress to the kube-dns pods (the usual
 * `namespaceSelector kube-system + podSelector k8s-app=kube-dns, port 53`) or to port 53 anywhere lets
 * lookups through; an egress-isolated pod without such a rule gets no DNS, as under Kubernetes.
 */
export function nodeDnsPeer(address: string): PodInfo {
  return {
    key: 'kube-system/~node-local-dns',
    namespace: 'kube-system',
    labels: { 'k8s-app': 'kube-dns' },
    ips: [address],
    local: false,
    ports: [{ name: 'dns', protocol: 'udp', port: 53 }, { name: 'dns-tcp', protocol: 'tcp', port: 53 }, { name: 'metrics', protocol: 'tcp', port: 9153 }],
  };
}

/** Namespace labels, with the name label the API sets on every namespace (for namespaces not seen yet). */
export function namespaceLabels(ns: KObject | undefined, name: string): Record<string, string> {
  return { 'kubernetes.io/metadata.name': name, ...(ns?.metadata.labels ?? {}) };
}
