// Label selectors (`app=web,tier!=db,env in (a,b),!canary`), metav1.LabelSelector objects and label
// sets, and field selectors (`spec.nodeName=n1`), compiled once into predicates over objects. Every
// label match in skiff goes through matchRequirement below. Syntax and messages follow apimachinery.
import { errors } from './status.js';

export type Requirement =
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | '!' };

export type Labels = Record<string, string> | undefined;
export type LabelMatcher = (labels: Labels) => boolean;

export function parseLabelSelector(s: string): Requirement[] {
  const reqs: Requirement[] = [];
  const src = s.trim();
  if (src === '') return reqs;
  let i = 0;
  const fail = (why: string): never => { throw errors.badRequest(`unable to parse requirement: ${why}`); };
  const ws = () => { while (i < src.length && src[i] === ' ') i++; };
  const ident = () => {
    ws();
    const m = /^[A-Za-z0-9._\-/]+/.exec(src.slice(i));
    if (!m) fail(`found '${src[i] ?? ''}', expected: identifier`);
    i += m![0].length;
    return m![0];
  };
  const value = () => {
    ws();
    const m = /^[A-Za-z0-9._-]*/.exec(src.slice(i))!;
    i += m[0].length;
    return m[0];
  };
  while (i < src.length) {
    ws();
    if (src[i] === '!') {
      i++;
      reqs.push({ key: checkKey(ident()), op: '!' });
    } else {
      const key = checkKey(ident());
      ws();
      const rest = src.slice(i);
      if (rest.startsWith('==') || rest.startsWith('!=') || rest.startsWith('=')) {
        const op = rest.startsWith('!=') ? 'notin' : 'in';
        i += rest.startsWith('=') && !rest.startsWith('==') ? 1 : 2;
        reqs.push({ key, op, values: [checkValue(value())] });
      } else if (/^(in|notin)\s*\(/.test(rest)) {
        const op = rest.startsWith('in') ? 'in' : 'notin';
        i += op.length;
        ws();
        i++; // (
        const values: string[] = [];
        for (;;) {
          values.push(checkValue(value()));
          ws();
          if (src[i] === ',') { i++; continue; }
          if (src[i] === ')') { i++; break; }
          fail(`found '${src[i] ?? ''}', expected: ',', or ')'`);
        }
        reqs.push({ key, op, values });
      } else if (rest === '' || rest.startsWith(',')) {
        reqs.push({ key, op: 'exists' });
      } else {
        fail(`found '${rest.split(/[ ,]/)[0]}', expected: in, notin, =, ==, !=, gt, lt`);
      }
    }
    ws();
    if (i < src.length) {
      if (src[i] !== ',') fail(`found '${src[i]}', expected: ','`);
      i++;
    }
  }
  return reqs;
}

const KEY_NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;
function checkKey(k: string): string {
  const name = k.includes('/') ? k.slice(k.indexOf('/') + 1) : k;
  if (!KEY_NAME.test(name) || name.length > 63) {
    throw errors.badRequest(`unable to parse requirement: invalid label key "${k}": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`);
  }
  return k;
}
function checkValue(v: string): string {
  if (v !== '' && (!KEY_NAME.test(v) || v.length > 63)) {
    throw errors.badRequest(`unable to parse requirement: invalid label value: "${v}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`);
  }
  return v;
}

export function labelPredicate(reqs: Requirement[]): LabelMatcher | undefined {
  if (reqs.length === 0) return undefined;
  if (reqs.length === 1) { const r = reqs[0]!; return (labels) => matchRequirement(r, labels); }
  // A loop, not reqs.every(closure): controllers call this for every object of a namespace per event.
  return (labels) => {
    for (let i = 0; i < reqs.length; i++) if (!matchRequirement(reqs[i]!, labels)) return false;
    return true;
  };
}

/** The one place a label requirement is judged, for string selectors and LabelSelector objects alike. */
function matchRequirement(r: Requirement, labels: Labels): boolean {
  // Own keys only: a label named "constructor" must not be found on every object's prototype.
  const has = labels !== undefined && labels !== null && Object.prototype.hasOwnProperty.call(labels, r.key);
  switch (r.op) {
    case 'exists': return has;
    case '!': return !has;
    case 'in': return has && r.values.includes(labels![r.key]!);
    case 'notin': return !has || !r.values.includes(labels![r.key]!);
  }
}

// ---- metav1.LabelSelector objects (matchLabels + matchExpressions), as workloads and RBAC use them ----

export interface LabelSelectorRequirement { key: string; operator: string; values?: string[] }
export interface LabelSelector { matchLabels?: Record<string, string>; matchExpressions?: LabelSelectorRequirement[] }

export const matchNothing: LabelMatcher = () => false;
export const matchEverything: LabelMatcher = () => true;

const OPERATORS: Record<string, 'in' | 'notin' | 'exists' | '!'> = { In: 'in', NotIn: 'notin', Exists: 'exists', DoesNotExist: '!' };

/**
 * A LabelSelector as requirements (metav1.LabelSelectorAsSelector), or undefined when it cannot be
 * one: an unknown operator, In/NotIn without values, Exists/DoesNotExist with values.
 */
export function labelSelectorRequirements(sel: LabelSelector): Requirement[] | undefined {
  const reqs: Requirement[] = Object.entries(sel.matchLabels ?? {}).map(([key, v]) => ({ key, op: 'in', values: [v] }));
  for (const e of sel.matchExpressions ?? []) {
    const op = OPERATORS[e?.operator];
    const values = e?.values ?? [];
    if (!op) return undefined;
    if (op === 'in' || op === 'notin') {
      if (values.length === 0) return undefined;
      reqs.push({ key: e.key, op, values });
    } else {
      if (values.length > 0) return undefined;
      reqs.push({ key: e.key, op });
    }
  }
  return reqs;
}

/**
 * Selectors of stored objects, compiled once: those are frozen all the way down (storage/stored.ts),
 * so theirs never changes, and controllers match each pod event against every ReplicaSet's or
 * Service's selector in its namespace (a bare pod against 405 ReplicaSets, 100 times a second, in
 * the scale benchmark's steady phase). Weak: an object's entry goes with it.
 */
const compiledFrozen = new WeakMap<object, LabelMatcher>();

/**
 * A LabelSelector compiled once into a predicate: an absent selector matches nothing, an empty one
 * everything, and one that cannot be parsed nothing (a controller whose selector errors owns no pods).
 */
export function compileLabelSelector(sel: LabelSelector | null | undefined): LabelMatcher {
  if (!sel) return matchNothing;
  const frozen = Object.isFrozen(sel);
  if (frozen) {
    const known = compiledFrozen.get(sel);
    if (known) return known;
  }
  const reqs = labelSelectorRequirements(sel);
  const matcher = reqs ? labelPredicate(reqs) ?? matchEverything : matchNothing;
  if (frozen) compiledFrozen.set(sel, matcher);
  return matcher;
}

/** Whether a LabelSelector object selects `labels` (one-off; compile once when matching many). */
export function matchLabelSelectorObject(sel: LabelSelector | null | undefined, labels: Labels): boolean {
  return compileLabelSelector(sel)(labels);
}

/**
 * Where an informer files an object with selector `sel` in `namespace`, so that the objects whose
 * selectors may select a set of labels are found without trying every selector of the namespace
 * (`selectingIndexKeys`): a bare pod's every event against 405 ReplicaSets took 2.5 % of the server's
 * thread in the scale benchmark's steady phase. Filed under a pair every selected set must carry (a
 * matchLabels pair, else each value of the In expression with the fewest), or, with none (an empty
 * selector; only Exists, NotIn, DoesNotExist), under the namespace's catch-all key. A selector that
 * selects nothing is filed nowhere. A candidate found this way is still matched in full.
 */
export function selectorIndexKeys(namespace: string, sel: LabelSelector | null | undefined): string[] {
  if (!sel) return [];
  const reqs = labelSelectorRequirements(sel);
  if (!reqs) return [];
  let best: { key: string; values: string[] } | undefined;
  for (const r of reqs) if (r.op === 'in' && (!best || r.values.length < best.values.length)) best = r;
  if (!best) return [`${namespace}\0*`];
  const { key, values } = best;
  return values.map((v) => `${namespace}\0${key}=${v}`);
}

/**
 * The index keys under which objects whose selectors may select `labels` are filed (see
 * `selectorIndexKeys`). Each such object is under exactly one of them: no candidate comes twice.
 */
export function selectingIndexKeys(namespace: string, labels: Labels): string[] {
  const keys = [`${namespace}\0*`];
  if (labels) for (const k in labels) if (Object.hasOwn(labels, k)) keys.push(`${namespace}\0${k}=${labels[k]}`);
  return keys;
}

/** Whether every key=value of `set` is among `labels` (labels.SelectorFromSet); an empty set selects everything. */
export function matchLabelSet(set: Record<string, string> | undefined, labels: Labels): boolean {
  for (const k in set) if (!matchRequirement({ key: k, op: 'in', values: [set[k]!] }, labels)) return false;
  return true;
}

export interface FieldRequirement { field: string; op: '=' | '!='; value: string }

export function parseFieldSelector(s: string): FieldRequirement[] {
  const out: FieldRequirement[] = [];
  if (s.trim() === '') return out;
  for (const term of splitTerms(s)) {
    const r = parseFieldTerm(term);
    if (!r) throw errors.badRequest(`invalid selector: '${s}'; can't understand '${term}'`);
    out.push(r);
  }
  return out;
}

/**
 * `field(=|==|!=)value`, spaces around each part ignored. A hand-written scan, one pass: the regex it
 * replaces (`(.*?)\s*$`) backtracked quadratically on values with long runs of spaces.
 */
function parseFieldTerm(term: string): FieldRequirement | undefined {
  let i = 0;
  const n = term.length;
  const isSpace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v';
  while (i < n && isSpace(term[i])) i++;
  const start = i;
  while (i < n && term[i] !== '!' && term[i] !== '=' && !isSpace(term[i])) i++;
  if (i === start) return undefined;
  const field = term.slice(start, i);
  while (i < n && isSpace(term[i])) i++;
  let op: '=' | '!=';
  if (term.startsWith('!=', i)) { op = '!='; i += 2; } else if (term.startsWith('==', i)) { op = '='; i += 2; } else if (term[i] === '=') { op = '='; i += 1; } else return undefined;
  let end = n;
  while (end > i && isSpace(term[end - 1])) end--;
  while (i < end && isSpace(term[i])) i++;
  return { field, op, value: unescapeField(term.slice(i, end)) };
}

function splitTerms(s: string): string[] {
  const terms: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && i + 1 < s.length) { cur += s[i] + s[i + 1]; i++; continue; }
    if (s[i] === ',') { terms.push(cur); cur = ''; continue; }
    cur += s[i];
  }
  terms.push(cur);
  return terms;
}
function unescapeField(v: string): string {
  return v.replace(/\\(.)/g, '$1');
}

/** Field selectors each kind supports beyond metadata.name/metadata.namespace (Kubernetes' field label conversions). */
export const SELECTABLE_FIELDS: Record<string, string[]> = {
  '/pods': ['spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'spec.hostNetwork', 'status.phase', 'status.podIP', 'status.nominatedNodeName'],
  '/events': ['involvedObject.kind', 'involvedObject.namespace', 'involvedObject.name', 'involvedObject.uid', 'involvedObject.apiVersion', 'involvedObject.resourceVersion', 'involvedObject.fieldPath', 'reason', 'reportingComponent', 'source', 'type'],
  'events.k8s.io/events': ['regarding.kind', 'regarding.namespace', 'regarding.name', 'regarding.uid', 'reason', 'type', 'reportingController'],
  '/nodes': ['spec.unschedulable'],
  '/secrets': ['type'],
  '/namespaces': ['status.phase'],
  '/replicationcontrollers': ['status.replicas'],
  'apps/replicasets': ['status.replicas'],
  'batch/jobs': ['status.successful'],
  'certificates.k8s.io/certificatesigningrequests': ['spec.signerName'],
};

export function fieldPredicate(reqs: FieldRequirement[], groupResource: string, extraFields: string[] = []):
  ((obj: any) => boolean) | undefined {
  if (reqs.length === 0) return undefined;
  const allowed = new Set(['metadata.name', 'metadata.namespace', ...(SELECTABLE_FIELDS[groupResource] ?? []), ...extraFields]);
  for (const r of reqs) {
    if (!allowed.has(r.field)) throw errors.badRequest(`field label not supported: ${r.field}`);
  }
  // Paths are split once per request, not once per object: watches run this for every event.
  const compiled = reqs.map((r) => ({ parts: r.field.split('.'), eq: r.op === '=', value: r.value, bool: r.field === 'spec.unschedulable' || r.field === 'spec.hostNetwork' }));
  return (obj) => {
    for (const r of compiled) {
      const v = fieldValue(obj, r.parts, r.bool);
      if ((v === r.value) !== r.eq) return false;
    }
    return true;
  };
}

function fieldValue(obj: any, parts: string[], bool: boolean): string {
  let cur = obj;
  for (let i = 0; i < parts.length && cur !== undefined && cur !== null; i++) cur = cur[parts[i]];
  // Kubernetes renders absent booleans as "false" and absent strings as "".
  if (cur === undefined || cur === null) return bool ? 'false' : '';
  return typeof cur === 'string' ? cur : String(cur);
}
