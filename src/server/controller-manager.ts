// The server's controller manager: one in-process client and every control loop started on it. Loops
// see the API exactly as an external client would (LocalClient applies the same REST semantics as
// HTTP), so any of them could run out of process.
//
// With several servers on one datastore the loops must run once, not once per server: with leader
// election (`--leader-elect`, the default) the loops run only while this server holds the Lease
// kube-system/kube-controller-manager, and the scheduler only while it holds kube-system/kube-scheduler,
// as the two Kubernetes components elect separately. Each term starts its loops with fresh informers
// (a new leader lists everything, as a restarted kube-controller-manager does, so node lifecycle
// counts its grace period from the takeover) and stops them when the term ends; the process keeps
// serving the API either way. Loops of the API server itself (`unelected`) run on every server.
//
// The loops' writes wait for seats in a LoopBudget that shrinks while the event loop lags, so that
// a burst of loop work leaves the requests of nodes their share of the one thread. Leader election
// writes through a client of its own, outside the budget: its renewals are heartbeats.
import { hostname } from 'node:os';
import type { ObjectService } from '../apiserver/objects.js';
import { LocalClient } from '../apiserver/local-client.js';
import { InformerFactory } from '../client/informer-factory.js';
import { eventRecorder } from '../client/events.js';
import { startLeaderElection, type LeaderElector } from '../client/leader-election.js';
import { Resources } from '../client/types.js';
import { DEFAULT_CONTROLLER_TUNING, type ControllerContext, type ControllerTuning } from '../controllers/context.js';
import type { RunningController } from '../client/controller.js';
import { logger } from '../util/log.js';
import { LoopBudget, type LoopBudgetOptions } from '../util/loop-budget.js';
import { Gauge } from 'prom-client';
import { currentMetricsRegistry } from '../client/metrics-scope.js';

const log = logger('controller-manager');

export type ControllerStarter = (ctx: ControllerContext) => RunningController | RunningController[];

/** The Leases the loops are elected by, by loop name (every loop not named here: the controller manager's). */
export const CONTROLLER_MANAGER_LEASE = 'kube-controller-manager';
export const SCHEDULER_LEASE = 'kube-scheduler';
const LEASE_OF: Record<string, string> = { scheduler: SCHEDULER_LEASE };
const LEASE_NAMESPACE = 'kube-system';

export interface LeaderElectionOptions {
  /** This server's candidate identity (`<hostname>_<id>`). */
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

export interface ManagerOptions extends Partial<ControllerTuning> {
  /** Loop names to leave out (e.g. 'scheduler' for --disable-scheduler). */
  disabled?: string[];
  /** Loops of the API server itself (kube-aggregator's): they run on every server, elected or not. */
  unelected?: string[];
  /** `--leader-elect`: unset, every loop starts at once on this server (one server only). */
  leaderElection?: LeaderElectionOptions;
  /** The loops' write budget (see src/util/loop-budget.ts); false: writes never wait. */
  loopBudget?: LoopBudgetOptions | false;
}

export interface ControllerManager {
  /** True from when the manager started until stop() (standbys included: they serve, they just do not lead). */
  running(): boolean;
  /** The shared informers of the running loops that have not synced yet. */
  unsyncedInformers(): string[];
  /** The Leases this server holds now (`kube-controller-manager`, `kube-scheduler`). */
  leading(): string[];
  stop(): Promise<void>;
}

/** A set of loops started together on their own informers, and stopped together. */
interface LoopGroup {
  informers: InformerFactory;
  stop(): Promise<void>;
}

const BUDGET_METRIC = 'skiff_controller_write_budget';

/** The budget on this server's /metrics, read when scraped: its bound, writes in flight and waiting. */
function exposeBudget(budget: LoopBudget): void {
  const registry = currentMetricsRegistry();
  if (!registry) return;
  registry.removeSingleMetric(BUDGET_METRIC);   // a manager started again reports its own budget
  new Gauge({
    name: BUDGET_METRIC, labelNames: ['value'], registers: [registry],
    help: 'The control loops\' write budget: limit (writes allowed in flight), in_flight, waiting, waited_total and decreases_total.',
    collect(this: Gauge<string>) {
      const s = budget.stats();
      this.labels('limit').set(s.limit);
      this.labels('in_flight').set(s.inFlight);
      this.labels('waiting').set(s.waiting);
      this.labels('waited_total').set(s.waitedTotal);
      this.labels('decreases_total').set(s.decreases);
    },
  });
}

/** A candidate identity as the Kubernetes components form it: `<hostname>_<unique id>`. */
export function leaderIdentity(id: string): string {
  return `${hostname().toLowerCase()}_${id}`;
}

export function startControllerManager(objects: ObjectService, starters: Record<string, ControllerStarter>,
  opts: ManagerOptions = {}): ControllerManager {
  const { disabled = [], unelected = [], leaderElection, loopBudget, ...timing } = opts;
  const unbudgeted = new LocalClient(objects, { user: 'system:kube-controller-manager', groups: ['system:masters'], manager: 'kube-controller-manager' });
  const budget = loopBudget === false ? undefined : new LoopBudget(loopBudget);
  const client = budget ? unbudgeted.withBudget(budget) : unbudgeted;
  if (budget) exposeBudget(budget);
  const options = { ...DEFAULT_CONTROLLER_TUNING, ...timing };
  const events = eventRecorder(client, 'skiff-controller-manager');

  const startGroup = (names: string[], what: string): LoopGroup => {
    const informers = new InformerFactory(client);
    const ctx: ControllerContext = { client, informers, events, options };
    const running: RunningController[] = [];
    for (const name of names) {
      const r = starters[name]!(ctx);
      running.push(...(Array.isArray(r) ? r : [r]));
    }
    informers.start();
    log.info({ group: what, controllers: running.map((r) => r.name) }, 'control loops started');
    return {
      informers,
      async stop() {
        await Promise.all(running.map((r) => r.stop().catch(() => undefined)));
        await informers.stop();
        log.info({ group: what }, 'control loops stopped');
      },
    };
  };

  const enabled = Object.keys(starters).filter((name) => {
    if (!disabled.includes(name)) return true;
    log.info({ controller: name }, 'disabled');
    return false;
  });
  const groups = new Set<LoopGroup>();
  const electors: { lease: string; elector: LeaderElector }[] = [];
  if (!leaderElection) {
    groups.add(startGroup(enabled, 'all'));
  } else {
    const always = enabled.filter((n) => unelected.includes(n));
    if (always.length) groups.add(startGroup(always, 'api-server'));
    const byLease = new Map<string, string[]>();
    for (const name of enabled.filter((n) => !unelected.includes(n))) {
      const lease = LEASE_OF[name] ?? CONTROLLER_MANAGER_LEASE;
      byLease.set(lease, [...(byLease.get(lease) ?? []), name]);
    }
    for (const [lease, names] of byLease) {
      let group: LoopGroup | undefined;
      const user = `system:${lease}`;
      const elector = startLeaderElection({
        client: unbudgeted.as({ user, groups: ['system:masters'], manager: lease }),
        namespace: LEASE_NAMESPACE, name: lease, identity: leaderElection.identity,
        leaseDurationMs: leaderElection.leaseDurationMs, renewDeadlineMs: leaderElection.renewDeadlineMs, retryPeriodMs: leaderElection.retryPeriodMs,
        onStartedLeading: async () => {
          group = startGroup(names, lease);
          groups.add(group);
          // Kubernetes' LeaderElection event on the Lease, which `kubectl describe lease` shows.
          const obj = await client.get(Resources.leases, LEASE_NAMESPACE, lease).catch(() => undefined);
          if (obj) events.record(obj, 'Normal', 'LeaderElection', `${leaderElection.identity} became leader`);
        },
        onStoppedLeading: async () => {
          const g = group;
          group = undefined;
          if (!g) return;
          groups.delete(g);
          await g.stop();
        },
        onNewLeader: (holder) => log.info({ lease, leader: holder ?? '(none)' }, 'new leader observed'),
      });
      electors.push({ lease, elector });
    }
  }
  let stopping = false;
  return {
    running: () => !stopping,
    unsyncedInformers: () => [...groups].flatMap((g) => g.informers.unsynced()),
    leading: () => (leaderElection ? electors.filter((e) => e.elector.isLeader()).map((e) => e.lease) : [CONTROLLER_MANAGER_LEASE, SCHEDULER_LEASE]),
    async stop() {
      stopping = true;
      // Electors first: a leader stops its loops and then releases its Leases for a standby.
      await Promise.all(electors.map((e) => e.elector.stop()));
      budget?.stop();   // a stopping loop's last writes wait for nobody
      await Promise.all([...groups].map((g) => g.stop()));
      groups.clear();
      client.close();
      unbudgeted.close();
    },
  };
}
