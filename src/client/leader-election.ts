// Leader election over a coordination.k8s.io/v1 Lease, as client-go's leaderelection package does it
// for kube-controller-manager and kube-scheduler `--leader-elect`:
//   - a candidate reads the Lease every retry period; it takes the Lease when nobody holds it, or
//     when the holder has not renewed it for leaseDuration, timed on THIS process's clock from when
//     the record was last seen to change (never from renewTime, which another server's clock wrote),
//     so clock skew between servers cannot shorten a leader's term;
//   - the leader renews every retry period; when no renewal succeeded for renewDeadline (a slow or
//     unreachable datastore) it stops leading. Unlike client-go's callers (and k3s, issue 8956) the
//     process does NOT exit: it stops its loops and becomes a candidate again;
//   - every write is a compare-and-swap on the Lease's resourceVersion, so of two candidates that see
//     an expired Lease at once only one wins;
//   - a candidate also watches the Lease, so it times the holder's last renewal when it happens
//     rather than at its next poll (a dead leader's term then ends at most leaseDuration after its
//     last renewal, not that plus a poll period), and it wakes at once when the Lease is released;
//   - stopping a leader releases the Lease (client-go's ReleaseOnCancel): holder cleared and a 1 s
//     duration, so a standby takes over at its next retry instead of waiting out the term.
import type { KObject } from '../api/object.js';
import { microTime } from '../util/time.js';
import { logger } from '../util/log.js';
import { Resources, isAlreadyExists, isConflict, isNotFound, type ApiClient, type WatchHandle } from './types.js';

const log = logger('leader-election');

/** kube-controller-manager's and kube-scheduler's defaults (--leader-elect-lease-duration etc.). */
export const LEADER_ELECTION_DEFAULTS = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 } as const;

/** client-go waits retryPeriod × [1, 1 + JitterFactor) between a candidate's attempts (wait.Jitter). */
const JITTER_FACTOR = 1.2;

export interface LeaderElectionConfig {
  client: ApiClient;
  namespace: string;
  /** The Lease's name: `kube-controller-manager`, `kube-scheduler`. */
  name: string;
  /** This candidate (`<hostname>_<uuid>`), written to spec.holderIdentity. */
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** Called when this candidate became the leader; leading lasts until onStoppedLeading. */
  onStartedLeading(): void | Promise<void>;
  /** Called when leading ended (lost or stopped); the next term starts only after it resolved. */
  onStoppedLeading(): void | Promise<void>;
  /** Called whenever another (or no) holder is observed. */
  onNewLeader?(identity: string | undefined): void;
}

export interface LeaderElector {
  isLeader(): boolean;
  /** The holder last observed (this candidate's identity while it leads). */
  leader(): string | undefined;
  /** Stops the loop; a leader stops leading (onStoppedLeading) and releases the Lease. */
  stop(): Promise<void>;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

type Lease = KObject & { spec?: LeaseSpec };

export function startLeaderElection(cfg: LeaderElectionConfig): LeaderElector {
  const leaseDurationMs = cfg.leaseDurationMs ?? LEADER_ELECTION_DEFAULTS.leaseDurationMs;
  const renewDeadlineMs = cfg.renewDeadlineMs ?? LEADER_ELECTION_DEFAULTS.renewDeadlineMs;
  const retryPeriodMs = cfg.retryPeriodMs ?? LEADER_ELECTION_DEFAULTS.retryPeriodMs;
  if (!(leaseDurationMs > renewDeadlineMs && renewDeadlineMs > retryPeriodMs)) {
    throw new Error(`leader election: the lease duration (${leaseDurationMs} ms) must exceed the renew deadline (${renewDeadlineMs} ms), which must exceed the retry period (${retryPeriodMs} ms)`);
  }
  const where = { lease: `${cfg.namespace}/${cfg.name}`, identity: cfg.identity };
  let leading = false;
  let stopped = false;
  let observed: { spec: string; at: number; holder?: string } | undefined;
  let wake: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  let watch: WatchHandle | undefined;
  /** When the last successful acquire or renew began: the renew deadline counts from here. */
  let heldSince = 0;

  const sleep = (ms: number) => new Promise<void>((resolve) => {
    if (stopped) { resolve(); return; }
    wake = resolve;
    timer = setTimeout(resolve, ms);
  });

  const observe = (spec: LeaseSpec | undefined): void => {
    const key = JSON.stringify(spec ?? {});
    if (observed?.spec === key) return;
    const holder = spec?.holderIdentity || undefined;
    if (observed?.holder !== holder && holder !== cfg.identity) cfg.onNewLeader?.(holder);
    observed = { spec: key, at: Date.now(), holder };
  };

  /** While a candidate: follow the Lease's changes as they happen (polling remains the fallback). */
  const ensureWatch = (): void => {
    if (watch || stopped || leading) return;
    try {
      const w = cfg.client.watch<Lease>(Resources.leases, cfg.namespace, undefined, (e) => {
        if (e.type === 'BOOKMARK') return;
        observe(e.type === 'DELETED' ? undefined : e.object.spec);
        if (e.type === 'DELETED' || !e.object.spec?.holderIdentity) wake?.();
      }, { fieldSelector: `metadata.name=${cfg.name}` });
      watch = w;
      void w.done.then(() => { if (watch === w) watch = undefined; });
    } catch (err) {
      log.debug({ ...where, err: err instanceof Error ? err.message : String(err) }, 'lease watch failed');
    }
  };
  const stopWatch = (): void => {
    watch?.stop();
    watch = undefined;
  };

  /** One attempt: true when this candidate holds the Lease afterwards (client-go's tryAcquireOrRenew). */
  const tryAcquireOrRenew = async (): Promise<boolean> => {
    const now = Date.now();
    const fresh = (prev?: LeaseSpec): LeaseSpec => {
      const mine = prev?.holderIdentity === cfg.identity;
      return {
        holderIdentity: cfg.identity, leaseDurationSeconds: Math.round(leaseDurationMs / 1000),
        acquireTime: mine && prev?.acquireTime ? prev.acquireTime : microTime(now), renewTime: microTime(now),
        // Any change of holder counts, a release included (client-go's LeaderTransitions).
        leaseTransitions: (prev?.leaseTransitions ?? 0) + (prev && !mine ? 1 : 0),
      };
    };
    const cur = await cfg.client.get<Lease>(Resources.leases, cfg.namespace, cfg.name);
    if (!cur) {
      const spec = fresh();
      try {
        await cfg.client.create(Resources.leases, cfg.namespace, {
          apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: cfg.name, namespace: cfg.namespace }, spec,
        } as KObject);
      } catch (err) {
        if (isAlreadyExists(err)) return false;
        throw err;
      }
      observe(spec);
      return true;
    }
    observe(cur.spec);
    const holder = cur.spec?.holderIdentity;
    if (holder && holder !== cfg.identity && observed!.at + leaseDurationMs > now) return false;
    const spec = fresh(cur.spec);
    try {
      await cfg.client.update(Resources.leases, cfg.namespace, { ...cur, spec } as KObject);
    } catch (err) {
      if (isConflict(err) || isNotFound(err)) return false;
      throw err;
    }
    observe(spec);
    return true;
  };

  /** An attempt that gives up at `deadlineMs` (a hung datastore must not hold the renew loop). */
  const attempt = async (deadlineMs: number): Promise<boolean> => {
    const began = Date.now();
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => { t = setTimeout(() => resolve(false), Math.max(deadlineMs, 1)); });
    try {
      const ok = await Promise.race([tryAcquireOrRenew().catch((err: unknown) => {
        log.debug({ ...where, err: err instanceof Error ? err.message : String(err) }, 'lease attempt failed');
        return false;
      }), timeout]);
      // The write happened after `began`: others time the term from no earlier than that.
      if (ok) heldSince = began;
      return ok;
    } finally {
      clearTimeout(t);
    }
  };

  const stopLeading = async (why: string): Promise<void> => {
    if (!leading) return;
    leading = false;
    log.warn({ ...where, reason: why }, 'stopped leading');
    try {
      await cfg.onStoppedLeading();
    } catch (err) {
      log.error({ ...where, err: err instanceof Error ? err.message : String(err) }, 'stopping the leader\'s work failed');
    }
  };

  const run = async (): Promise<void> => {
    while (!stopped) {
      if (!leading) {
        ensureWatch();
        if (await attempt(retryPeriodMs) && !stopped) {
          leading = true;
          stopWatch();
          log.info(where, 'became leader');
          try {
            await cfg.onStartedLeading();
          } catch (err) {
            log.error({ ...where, err: err instanceof Error ? err.message : String(err) }, 'starting the leader\'s work failed');
          }
          continue;
        }
        // Wake at the expiry too, so a dead leader's term is not stretched by the jitter.
        const jittered = retryPeriodMs * (1 + Math.random() * JITTER_FACTOR);
        const expiresIn = observed?.holder ? observed.at + leaseDurationMs - Date.now() + 10 : 0;
        await sleep(expiresIn > 0 ? Math.min(jittered, expiresIn) : jittered);
        continue;
      }
      // Leading: renew every retry period, retrying until renewDeadline has passed since the last success.
      const lastRenew = heldSince;
      let renewed = false;
      await sleep(retryPeriodMs);
      while (!stopped && !renewed) {
        const left = lastRenew + renewDeadlineMs - Date.now();
        if (left <= 0) break;
        renewed = await attempt(left);
        if (!renewed && observed?.holder && observed.holder !== cfg.identity) break;
        if (!renewed && !stopped) await sleep(Math.min(retryPeriodMs, Math.max(0, lastRenew + renewDeadlineMs - Date.now())));
      }
      if (stopped) break;
      if (!renewed) {
        await stopLeading(observed?.holder && observed.holder !== cfg.identity
          ? `lease taken by ${observed.holder}` : `no renewal for ${renewDeadlineMs} ms`);
      }
    }
  };

  const release = async (): Promise<void> => {
    try {
      const cur = await cfg.client.get<Lease>(Resources.leases, cfg.namespace, cfg.name);
      if (!cur || cur.spec?.holderIdentity !== cfg.identity) return;
      const now = microTime();
      await cfg.client.update(Resources.leases, cfg.namespace, {
        ...cur, spec: { leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: cur.spec?.leaseTransitions ?? 0 },
      } as KObject);
    } catch (err) {
      log.debug({ ...where, err: err instanceof Error ? err.message : String(err) }, 'releasing the lease failed');
    }
  };

  const loop = run().catch((err: unknown) => log.error({ ...where, err: err instanceof Error ? err.message : String(err) }, 'leader election loop failed'));
  log.info({ ...where, leaseDurationMs, renewDeadlineMs, retryPeriodMs }, 'attempting to acquire leader lease');

  return {
    isLeader: () => leading,
    leader: () => (leading ? cfg.identity : observed?.holder),
    async stop() {
      if (stopped) return;
      stopped = true;
      stopWatch();
      clearTimeout(timer);
      wake?.();
      await loop;
      if (leading) {
        await stopLeading('stopped');
        await release();
      }
    },
  };
}
