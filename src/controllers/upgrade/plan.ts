// The rolling upgrade's decisions, as pure functions of the plan, the nodes and the clock (unit-tested
// in test/unit/upgrade-plan.test.ts): each node's phase (from the annotations it and the controller
// wrote, api.ts), and which nodes to start next. The rules:
// - servers before agents, one server at a time (a multi-server cluster keeps its quorum);
// - agents `concurrency` at a time (default 1);
// - the health gate: a node whose agent reports RolledBack/Failed for this version, or that has not
//   come back within its deadline, fails the plan: no further node starts, the plan is Paused;
// - outside the maintenance window, or with spec.paused, nodes already started finish and no new one starts;
// - a node not Ready is not started (its agent could not carry it out); the plan waits for it.
import { compileLabelSelector } from '../../api/selectors.js';
import { ANN, CONTROLLER_ANNOTATIONS, type NodePhase, type NodeUpgradeStatus, type UpgradeSpec } from './api.js';

export interface PlanNode {
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  ready: boolean;
}

export type PlanState = 'Invalid' | 'Paused' | 'Waiting' | 'InProgress' | 'Complete';

export interface PlanStep {
  state: PlanState;
  message: string;
  nodes: NodeUpgradeStatus[];
  /** Nodes to start now (cordon/drain if asked, then hand them the target). */
  start: string[];
  /** Reconcile again after this long (a deadline or the window's opening to notice). */
  recheckMs?: number;
}

export const DEFAULT_HEALTH_TIMEOUT_SECONDS = 180;
/** Beyond the agent's own health deadline: the download, the swap and the restart. */
export const REPORT_GRACE_MS = 300_000;

export function isServer(labels: Record<string, string>): boolean {
  return labels['node-role.kubernetes.io/control-plane'] === 'true' || labels['node-role.kubernetes.io/master'] === 'true';
}

/** A node's phase in plan `plan`, with the agent's report. */
export function nodePhase(plan: string, spec: UpgradeSpec, n: PlanNode, now: number): NodeUpgradeStatus {
  const a = n.annotations;
  const base: NodeUpgradeStatus = { name: n.name, role: isServer(n.labels) ? 'server' : 'agent', phase: 'Pending', version: a[ANN.runningVersion] };
  const reported = a[ANN.stateVersion] === spec.version ? a[ANN.state] : undefined;
  if (reported) base.agentState = reported;
  if (reported === 'RolledBack' || reported === 'Failed') {
    return { ...base, phase: 'Failed', message: a[ANN.message] || `the node's agent reports ${reported}` };
  }
  const ours = a[ANN.plan] === plan;
  const targeted = ours && a[ANN.targetVersion] === spec.version;
  if (a[ANN.runningVersion] === spec.version) {
    if (n.ready) return { ...base, phase: 'Upgraded' };
    return { ...base, phase: targeted ? 'Upgrading' : 'Pending', message: 'runs the version, not Ready' };
  }
  if (targeted) {
    const since = Date.parse(a[ANN.targetTime] ?? '');
    const deadline = (spec.healthTimeoutSeconds ?? DEFAULT_HEALTH_TIMEOUT_SECONDS) * 1000 + REPORT_GRACE_MS;
    if (Number.isFinite(since) && now - since > deadline) {
      return { ...base, phase: 'Failed', message: `no report from the node's agent within ${Math.round(deadline / 1000)} s of its start (agent down, or a version without the upgrade executor?)` };
    }
    return { ...base, phase: 'Upgrading', ...(a[ANN.message] && reported ? { message: a[ANN.message] } : {}) };
  }
  if (ours) return { ...base, phase: a[ANN.cordoned] ? 'Draining' : 'Cordoning' };
  return base;
}

const ACTIVE: ReadonlySet<NodePhase> = new Set(['Cordoning', 'Draining', 'Upgrading']);
const DAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

/**
 * Whether `now` is inside the window (absent: always). Days by name (monday or mon); times HH:MM in
 * `timeZone` (an IANA name, default UTC); an end before the start spans midnight.
 */
export function inWindow(w: UpgradeSpec['window'], now: number): boolean {
  if (!w || (!w.days?.length && !w.startTime && !w.endTime)) return true;
  const parts = new Intl.DateTimeFormat('en-US', { timeZone: w.timeZone || 'UTC', weekday: 'long', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
    .formatToParts(new Date(now));
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '';
  const day = get('weekday').toLowerCase();
  const minutes = Number(get('hour')) * 60 + Number(get('minute'));
  if (w.days?.length && !w.days.some((d) => { const x = d.toLowerCase(); return DAYS.includes(x) ? x === day : day.startsWith(x.slice(0, 3)); })) return false;
  const hm = (s?: string) => { const m = /^(\d{1,2}):(\d{2})$/.exec(s ?? ''); return m ? Number(m[1]) * 60 + Number(m[2]) : undefined; };
  const start = hm(w.startTime) ?? 0;
  const end = hm(w.endTime) ?? 24 * 60;
  return start <= end ? minutes >= start && minutes < end : minutes >= start || minutes < end;
}

/**
 * One step of plan `name`: the nodes' phases and which to start. `invalid`: why the plan cannot run
 * (no artifact). `otherPlans`: the names of the other plans that exist; a node one of them holds is
 * left to it (two plans never drive one node at once).
 */
export function planStep(name: string, spec: UpgradeSpec, all: PlanNode[], now: number, invalid?: string, otherPlans: ReadonlySet<string> = new Set()): PlanStep {
  const select = spec.nodeSelector ? compileLabelSelector(spec.nodeSelector) : () => true;
  const selected = all.filter((n) => select(n.labels)).sort((a, b) => a.name.localeCompare(b.name));
  const heldBy = (n: PlanNode) => { const p = n.annotations[ANN.plan]; return p && p !== name && otherPlans.has(p) ? p : undefined; };
  const nodes = selected.map((n) => {
    const s = nodePhase(name, spec, n, now);
    const other = heldBy(n);
    return s.phase === 'Pending' && other ? { ...s, message: `held by plan ${other}` } : s;
  });
  const held = new Set(selected.filter(heldBy).map((n) => n.name));
  const ready = new Map(selected.map((n) => [n.name, n.ready]));
  const step = (state: PlanState, message: string, start: string[] = [], recheckMs?: number): PlanStep => ({ state, message, nodes, start, ...(recheckMs ? { recheckMs } : {}) });
  if (invalid) return step('Invalid', invalid);
  const failed = nodes.filter((n) => n.phase === 'Failed');
  if (failed.length) {
    return step('Paused', `health gate: ${failed.map((n) => `node ${n.name}: ${n.message}`).join('; ')}; no further node is started `
      + '(set spec.version to a fixed release to go on)');
  }
  if (!nodes.length) return step('Waiting', 'no node matches spec.nodeSelector');
  if (nodes.every((n) => n.phase === 'Upgraded')) return step('Complete', `all ${nodes.length} nodes run ${spec.version}`);
  const active = nodes.filter((n) => ACTIVE.has(n.phase));
  // Deadlines are noticed without any event: look again within the report grace.
  const recheck = active.length ? 15_000 : undefined;
  if (spec.paused) return step('Paused', 'spec.paused is set: no further node is started', [], recheck);
  if (!inWindow(spec.window, now)) return step('Waiting', 'outside the maintenance window (spec.window)', [], 60_000);
  const pending = (role: 'server' | 'agent') => nodes.filter((n) => n.role === role && n.phase === 'Pending' && !held.has(n.name));
  const servers = nodes.filter((n) => n.role === 'server' && n.phase !== 'Upgraded');
  if (servers.length) {
    if (active.length) return step('InProgress', `upgrading ${active.map((n) => n.name).join(', ')}`, [], recheck);
    const next = pending('server').find((n) => ready.get(n.name));
    if (!next) return step('Waiting', `waiting for server node(s) ${servers.map((n) => n.name).join(', ')} to be Ready`, [], 15_000);
    return step('InProgress', `upgrading server ${next.name}`, [next.name], 15_000);
  }
  const slots = Math.max(1, spec.concurrency ?? 1) - active.length;
  const next = slots > 0 ? pending('agent').filter((n) => ready.get(n.name)).slice(0, slots).map((n) => n.name) : [];
  const busy = [...active.map((n) => n.name), ...next];
  if (!busy.length) return step('Waiting', `waiting for node(s) ${pending('agent').map((n) => n.name).join(', ')} to be Ready`, [], 15_000);
  return step('InProgress', `upgrading ${busy.join(', ')}`, next, 15_000);
}

/** The printer columns' strings: "2/3" and "a=v0.2.0 b=Upgrading c=Pending". */
export function display(step: PlanStep, version: string): { progress: string; nodes: string; state: string; message: string } {
  const done = step.nodes.filter((n) => n.phase === 'Upgraded').length;
  const nodes = step.nodes.map((n) => `${n.name}=${n.phase === 'Upgraded' ? version : n.phase === 'Upgrading' && n.agentState ? n.agentState : n.phase}`).join(' ');
  return { progress: `${done}/${step.nodes.length}`, nodes, state: step.state, message: step.message };
}

/**
 * The merge patch by which plan `plan` lets go of a node (done, or the plan deleted): its annotations
 * cleared, and the node schedulable again if this plan cordoned it (`cordoned: true`; `already` means
 * it was unschedulable before and stays so). Undefined when the node is not this plan's. The agent's
 * own reports (version, state, message) stay: they are the node's history. A node whose agent already
 * took its target carries on alone (the swap and its health gate need nothing from the server).
 */
export function letGoPatch(plan: string, annotations: Record<string, string>): Record<string, unknown> | undefined {
  if (annotations[ANN.plan] !== plan) return undefined;
  const clear = Object.fromEntries(CONTROLLER_ANNOTATIONS.map((k) => [k, null]));
  return { metadata: { annotations: clear }, ...(annotations[ANN.cordoned] === 'true' ? { spec: { unschedulable: null } } : {}) };
}
