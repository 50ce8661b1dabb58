// The server's backup duties, started once the datastore is open: record which datastore it uses (so
// `skiff snapshot` on this data dir reaches it), scheduled snapshots with retention, and the
// continuous backup stream.
import type { DatastoreBackend, DatastoreTls } from '../storage/index.js';
import { BackupStream } from './backup-stream.js';
import { backendKind, recordDatastore } from './snapshot.js';
import { SnapshotScheduler } from './snapshot-schedule.js';

export interface BackupConfig {
  /** `--disable-snapshots` (k3s: --etcd-disable-snapshots). */
  disableSnapshots?: boolean;
  /** `--snapshot-schedule-cron`, default every 12 hours (SNAPSHOT_DEFAULTS). */
  cron?: string;
  /** `--snapshot-retention`, default 5. */
  retention?: number;
  /** `--snapshot-dir`, default <data-dir>/server/db/snapshots. */
  dir?: string;
  compress?: boolean;
  /** `--snapshot-name`, default `etcd-snapshot` (k3s's name for scheduled snapshots). */
  name?: string;
  /** `--backup-stream DIR`. */
  streamDir?: string;
  /** `--backup-stream-interval` in ms (default 1000). */
  streamIntervalMs?: number;
}

export const SNAPSHOT_DEFAULTS = { cron: '0 */12 * * *', retention: 5, name: 'etcd-snapshot' };

export interface Backups { stream?: BackupStream; scheduler?: SnapshotScheduler; stop(): Promise<void> }

export async function startBackups(o: {
  dataDir: string; node: string; backend: DatastoreBackend; endpoint?: string; tls?: DatastoreTls;
  config: BackupConfig; log: (msg: string, fields?: object) => void;
}): Promise<Backups> {
  recordDatastore(o.dataDir, { endpoint: o.endpoint, tls: o.tls });
  const c = o.config;
  const scheduler = c.disableSnapshots ? undefined : new SnapshotScheduler({
    dataDir: o.dataDir, cron: c.cron ?? SNAPSHOT_DEFAULTS.cron, retention: c.retention ?? SNAPSHOT_DEFAULTS.retention,
    name: c.name ?? SNAPSHOT_DEFAULTS.name, dir: c.dir, compress: c.compress, node: o.node, backend: o.backend, log: o.log,
  });
  const stream = c.streamDir ? new BackupStream({
    dir: c.streamDir, dataDir: o.dataDir, node: o.node, backend: o.backend, backendName: backendKind(o.endpoint),
    intervalMs: c.streamIntervalMs, log: o.log,
  }) : undefined;
  await stream?.start();
  scheduler?.start();
  return {
    stream, scheduler,
    async stop() {
      await scheduler?.stop();
      await stream?.stop();
    },
  };
}
