// Scheduled snapshots, as k3s's `--etcd-snapshot-schedule-cron` (default `0 */12 * * *`, system
// time) and `--etcd-snapshot-retention` (default 5): at each cron time the server saves a snapshot
// named `<--snapshot-name>-<node>-<unix seconds>` and deletes the oldest of that name beyond the
// retention. On-demand snapshots (other names) are never pruned by the schedule, as in k3s.
// A six-field expression (seconds first) is accepted too, for tests and for short intervals.
import { CronExpressionParser } from 'cron-parser';
import type { DatastoreBackend } from '../storage/index.js';
import { pruneSnapshots, saveSnapshot } from './snapshot.js';

export interface SnapshotScheduleOptions {
  dataDir: string;
  cron: string;
  retention: number;
  name: string;
  dir?: string;
  compress?: boolean;
  node: string;
  backend: DatastoreBackend;
  log: (msg: string, fields?: object) => void;
}

/** Throws one clear line for an expression cron-parser cannot read. */
export function checkCron(cron: string, flag = '--snapshot-schedule-cron'): void {
  try {
    CronExpressionParser.parse(cron);
  } catch (err) {
    throw new Error(`${flag}: not a cron expression: ${JSON.stringify(cron)} (${(err as Error).message})`);
  }
}

/** The first time strictly after `after` that `cron` names. */
export function nextRun(cron: string, after: Date): Date {
  return CronExpressionParser.parse(cron, { currentDate: after }).next().toDate();
}

/** setTimeout's longest delay (about 24.8 days); a later run is re-planned when it is reached. */
const MAX_DELAY = 2 ** 31 - 1;

export class SnapshotScheduler {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  /** Snapshots taken and pruned since start (for logs and tests). */
  readonly stats = { saved: 0, pruned: 0, failed: 0 };

  constructor(private readonly o: SnapshotScheduleOptions) {
    checkCron(o.cron);
    if (!Number.isInteger(o.retention) || o.retention < 1) throw new Error(`--snapshot-retention: not a positive integer: ${o.retention}`);
  }

  start(): void {
    this.plan(new Date());
    this.o.log('scheduled snapshots on', { cron: this.o.cron, retention: this.o.retention, next: nextRun(this.o.cron, new Date()).toISOString() });
  }

  private plan(from: Date): void {
    if (this.stopped) return;
    const at = nextRun(this.o.cron, from);
    const delay = at.getTime() - Date.now();
    this.timer = setTimeout(() => {
      if (Date.now() < at.getTime()) return this.plan(new Date(Date.now() - 1));
      this.running = this.runOnce().finally(() => {
        this.running = undefined;
        // From the planned time, so a slow snapshot does not skip a cron slot it overlapped.
        this.plan(at);
      });
    }, Math.max(0, Math.min(delay, MAX_DELAY)));
    this.timer.unref();
  }

  /** Saves one scheduled snapshot and prunes to the retention. Never throws (logged). */
  async runOnce(): Promise<void> {
    try {
      const s = await saveSnapshot(this.o.dataDir, {
        name: this.o.name, dir: this.o.dir, compress: this.o.compress, node: this.o.node, backend: this.o.backend,
      });
      this.stats.saved++;
      const pruned = pruneSnapshots(this.o.dataDir, { prefix: this.o.name, retention: this.o.retention, node: this.o.node, dir: this.o.dir });
      this.stats.pruned += pruned.length;
      this.o.log('scheduled snapshot saved', { name: s.name, bytes: s.bytes, pruned });
    } catch (err) {
      this.stats.failed++;
      this.o.log('scheduled snapshot failed', { err: String(err) });
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }
}
