// NetworkPolicy validation as Kubernetes 1.32 does it (ValidateNetworkPolicySpec): selectors, policy
// types, ports (protocol, number or name, endPort only after a numeric port and not below it), peers
// (at least one kind; ipBlock alone) and ipBlocks (a valid CIDR; each `except` a strict subset).
import type { StatusCause } from '../status.js';
import type { KObject } from '../object.js';
import { isStrictSubset, parseCidr } from '../cidr.js';
import { child, fe, index, isObj, jsonValue } from './field.js';
import { validateLabelSelector } from './meta.js';
import { isValidPortName, isValidPortNum } from './names.js';

type Obj = Record<string, any>;
const obj = (v: unknown): Obj => (isObj(v) ? v : {});
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.map(obj) : []);

const PROTOCOLS = ['TCP', 'UDP', 'SCTP'];
const CIDR_MESSAGE = 'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)';

export function validateNetworkPolicy(np: KObject): StatusCause[] {
  const s = obj(np.spec);
  const out = validateLabelSelector(s.podSelector, 'spec.podSelector');
  for (const [dir, peers] of [['ingress', 'from'], ['egress', 'to']] as const) {
    list(s[dir]).forEach((rule, i) => {
      const path = index(`spec.${dir}`, i);
      list(rule.ports).forEach((port, j) => out.push(...validatePort(port, index(child(path, 'ports'), j))));
      list(rule[peers]).forEach((peer, j) => out.push(...validatePeer(peer, index(child(path, peers), j))));
    });
  }
  const types: unknown[] = Array.isArray(s.policyTypes) ? s.policyTypes : [];
  if (types.length > 2) return [...out, fe.invalid('spec.policyTypes', jsonValue(types), 'may not specify more than two policyTypes')];
  types.forEach((t, i) => {
    if (t !== 'Ingress' && t !== 'Egress') out.push(fe.notSupported(index('spec.policyTypes', i), String(t), ['Ingress', 'Egress']));
  });
  return out;
}

function validatePort(port: Obj, path: string): StatusCause[] {
  const out: StatusCause[] = [];
  if (port.protocol !== undefined && port.protocol !== null && !PROTOCOLS.includes(port.protocol)) {
    out.push(fe.notSupported(child(path, 'protocol'), String(port.protocol), PROTOCOLS));
  }
  const end = port.endPort;
  const hasEnd = end !== undefined && end !== null;
  if (port.port === undefined || port.port === null) {
    if (hasEnd) out.push(fe.invalid(child(path, 'endPort'), end, 'may not be specified when `port` is not specified'));
  } else if (typeof port.port === 'number') {
    out.push(...isValidPortNum(port.port).map((m) => fe.invalid(child(path, 'port'), port.port, m)));
    if (hasEnd) {
      if (typeof end === 'number' && end < port.port) out.push(fe.invalid(child(path, 'endPort'), port.port, 'must be greater than or equal to `port`'));
      out.push(...isValidPortNum(Number(end)).map((m) => fe.invalid(child(path, 'endPort'), end, m)));
    }
  } else {
    if (hasEnd) out.push(fe.invalid(child(path, 'endPort'), end, 'may not be specified when `port` is non-numeric'));
    out.push(...isValidPortName(String(port.port)).map((m) => fe.invalid(child(path, 'port'), String(port.port), m)));
  }
  return out;
}

function validatePeer(peer: Obj, path: string): StatusCause[] {
  const out: StatusCause[] = [];
  let kinds = 0;
  if (isObj(peer.podSelector)) { kinds++; out.push(...validateLabelSelector(peer.podSelector, child(path, 'podSelector'))); }
  if (isObj(peer.namespaceSelector)) { kinds++; out.push(...validateLabelSelector(peer.namespaceSelector, child(path, 'namespaceSelector'))); }
  if (isObj(peer.ipBlock)) { kinds++; out.push(...validateIpBlock(peer.ipBlock, child(path, 'ipBlock'))); }
  if (kinds === 0) out.push(fe.required(path, 'must specify a peer'));
  else if (kinds > 1 && isObj(peer.ipBlock)) out.push(fe.forbidden(path, 'may not specify both ipBlock and another peer'));
  return out;
}

function validateIpBlock(b: Obj, path: string): StatusCause[] {
  if (typeof b.cidr !== 'string' || b.cidr === '') return [fe.required(child(path, 'cidr'))];
  const out: StatusCause[] = [];
  const cidr = parseCidr(b.cidr);
  if (!cidr) return [fe.invalid(child(path, 'cidr'), b.cidr, CIDR_MESSAGE)];
  (Array.isArray(b.except) ? b.except : []).forEach((e: unknown, i: number) => {
    const p = index(child(path, 'except'), i);
    const ex = parseCidr(String(e));
    if (!ex) out.push(fe.invalid(p, String(e), CIDR_MESSAGE));
    else if (!isStrictSubset(ex, cidr)) out.push(fe.invalid(p, String(e), 'must be a strict subset of `cidr`'));
  });
  return out;
}
