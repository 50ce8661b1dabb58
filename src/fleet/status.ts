// A Cluster's status from what the manager observed of its site and the BundleDeployments that
// target it, as a pure function the manager's reconcile calls (and the unit tests drive with a fake
// clock).
//
// Writes are what costs at fleet scale (6,000 sites heartbeating every 15 s would be 400 status
// writes a second), so heartbeats only move a timestamp in memory and the status is written when
// something a reader cares about changes: the site's report, Ready/Offline, or `lastSeen` when the
// stored value is older than `lastSeenResolutionMs` (Kubernetes does the same with node status,
// reported on change or every 5 minutes while the Lease carries the heartbeat).
import type { BundleDeployment, ClusterBundleSummary, ClusterCondition, ClusterStatus } from './api.js';
import type { Report } from './protocol.js';

export interface Observed {
  /** The last heartbeat this manager process received, if any since it started. */
  lastSeenMs?: number;
  report?: Report;
  /** The BundleDeployments targeting the cluster (from the manager's cache), summed into status.summary. */
  deployments?: readonly BundleDeployment[];
}

/** At most this many bundle names in a Cluster's summary (the counts are exact; the names are a hint). */
const MAX_LISTED_BUNDLES = 10;

export type DeploymentState = 'ready' | 'offline' | 'pending' | 'waitApplied' | 'errApplied' | 'notReady';

/**
 * Where one BundleDeployment stands, in the Bundle summary's terms: ready only when the site reported
 * the newest staged version applied and Ready *and* the cluster is online (an offline cluster's last
 * report is not shown as Ready: Fleet's users see offline clusters counted Ready); pending while the
 * newest version waits for its partition's turn; waitApplied until the site reports it; errApplied
 * when applying failed; notReady when applied but its workloads are not Ready.
 */
export function deploymentState(d: BundleDeployment, online: boolean): DeploymentState {
  const st = d.status ?? {};
  const current = !!st.appliedDeploymentID && st.appliedDeploymentID === d.spec?.stagedDeploymentID;
  if (current && st.ready && online) return 'ready';
  if (!online) return 'offline';
  if (d.spec?.deploymentID !== d.spec?.stagedDeploymentID) return 'pending';
  if (st.appliedDeploymentID !== d.spec?.deploymentID && !st.message) return 'waitApplied';
  if (st.conditions?.some((x) => x.type === 'Deployed' && x.status === 'False')) return 'errApplied';
  return 'notReady';
}

/** A cluster's bundle counts from its BundleDeployments (one per bundle targeting it). */
export function clusterBundleSummary(deployments: readonly BundleDeployment[], online: boolean): ClusterBundleSummary {
  const s: ClusterBundleSummary = { desiredReady: deployments.length, ready: 0, notReady: 0, pending: 0, waitApplied: 0, errApplied: 0, offline: 0 };
  const nonReady: string[] = [];
  for (const d of deployments) {
    const state = deploymentState(d, online);
    s[state]++;
    if (state !== 'ready') nonReady.push(`${d.metadata.namespace}/${d.spec?.bundle ?? d.metadata.name}`);
  }
  if (nonReady.length) s.nonReadyBundles = nonReady.sort().slice(0, MAX_LISTED_BUNDLES);
  return s;
}

export interface StatusTiming {
  now: number;
  /** Offline after this long without a heartbeat. */
  graceMs: number;
  /** When this manager process started: a site is given a full grace period to reconnect after it. */
  managerStartMs: number;
  lastSeenResolutionMs: number;
}

export interface Desired {
  status: ClusterStatus;
  /** Whether it differs from the current status (a write is due). */
  changed: boolean;
  /** Reconcile again after this long (a grace period or a lastSeen refresh ends), if ever. */
  recheckMs?: number;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const parse = (s: string | undefined) => (s ? Date.parse(s) : NaN);

export function desiredStatus(cur: ClusterStatus | undefined, obs: Observed, t: StatusTiming): Desired {
  const status: ClusterStatus = structuredClone(cur ?? {});
  const storedSeen = parse(cur?.lastSeen);
  const registered = parse(cur?.identity?.registeredAt);
  let state: 'Ready' | 'Offline' | 'Pending';
  let recheck: number | undefined;
  const readyNow = cur?.conditions?.find((c) => c.type === 'Ready');

  if (obs.lastSeenMs !== undefined && t.now - obs.lastSeenMs <= t.graceMs) {
    state = 'Ready';
    recheck = obs.lastSeenMs + t.graceMs + 1 - t.now;
  } else {
    // Not heard from since this manager started (or too long ago): wait out a grace period counted
    // from the latest of the last heartbeat, the registration and the manager's start, so a restart
    // of the manager does not flip every site Offline before it could reconnect.
    const since = Math.max(obs.lastSeenMs ?? (Number.isNaN(storedSeen) ? 0 : storedSeen), Number.isNaN(registered) ? 0 : registered, t.managerStartMs);
    if (t.now - since <= t.graceMs) {
      state = readyNow?.status === 'True' ? 'Ready' : readyNow?.status === 'False' ? 'Offline' : 'Pending';
      recheck = since + t.graceMs + 1 - t.now;
    } else {
      state = obs.lastSeenMs !== undefined || !Number.isNaN(storedSeen) ? 'Offline' : 'Pending';
    }
  }

  if (obs.report) {
    status.version = obs.report.version;
    status.nodes = { ...obs.report.nodes };
    status.capacity = { ...obs.report.capacity };
  }
  status.display = { nodes: status.nodes ? `${status.nodes.ready}/${status.nodes.total}` : '', state };
  if (obs.deployments) status.summary = clusterBundleSummary(obs.deployments, state === 'Ready');
  if (status.summary) status.display.readyBundles = `${status.summary.ready}/${status.summary.desiredReady}`;

  const ready = state === 'Ready';
  const seenAgo = obs.lastSeenMs !== undefined ? Math.round((t.now - obs.lastSeenMs) / 1000) : undefined;
  const readyCond: ClusterCondition = ready
    ? { type: 'Ready', status: 'True', reason: 'Heartbeating', message: 'the site is connected and heartbeating' }
    : state === 'Pending'
      ? { type: 'Ready', status: 'Unknown', reason: 'NeverConnected', message: 'the site registered but has not connected since' }
      : { type: 'Ready', status: 'False', reason: 'Offline', message: seenAgo !== undefined ? `no heartbeat for ${seenAgo} s (grace ${t.graceMs / 1000} s)` : `no heartbeat within ${t.graceMs / 1000} s` };
  const offlineCond: ClusterCondition = state === 'Offline'
    ? { type: 'Offline', status: 'True', reason: 'MissedHeartbeats', message: readyCond.message }
    : { type: 'Offline', status: 'False', reason: ready ? 'Heartbeating' : 'NeverConnected' };
  status.conditions = mergeConditions(cur?.conditions, [readyCond, offlineCond], iso(t.now));

  const conditionsOrReportChanged = JSON.stringify(withoutSeen(status)) !== JSON.stringify(withoutSeen(cur ?? {}));
  if (obs.lastSeenMs !== undefined) {
    const stale = Number.isNaN(storedSeen) || obs.lastSeenMs - storedSeen >= t.lastSeenResolutionMs;
    if (stale || conditionsOrReportChanged) status.lastSeen = iso(obs.lastSeenMs);
    if (ready) {
      const refreshAt = (Number.isNaN(storedSeen) || stale ? obs.lastSeenMs : storedSeen) + t.lastSeenResolutionMs - t.now;
      recheck = Math.max(1, Math.min(recheck ?? Infinity, refreshAt));
    }
  }
  const changed = JSON.stringify(status) !== JSON.stringify(cur ?? {});
  return { status, changed, ...(recheck !== undefined ? { recheckMs: Math.max(1, recheck) } : {}) };
}

function withoutSeen(s: ClusterStatus): ClusterStatus {
  const { lastSeen: _drop, ...rest } = s;
  return rest;
}

/**
 * Conditions with `lastTransitionTime` kept while the status stays the same, as Kubernetes
 * conditions behave; conditions of other types (RegistrationConflict) are kept as they were.
 */
export function mergeConditions(cur: ClusterCondition[] | undefined, next: ClusterCondition[], now: string): ClusterCondition[] {
  const out: ClusterCondition[] = [];
  for (const c of next) {
    const old = cur?.find((o) => o.type === c.type);
    out.push({ ...c, lastTransitionTime: old && old.status === c.status && old.lastTransitionTime ? old.lastTransitionTime : now });
  }
  for (const o of cur ?? []) if (!next.some((c) => c.type === o.type)) out.push(o);
  return out;
}
