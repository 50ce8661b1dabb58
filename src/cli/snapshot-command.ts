// `skiff snapshot save|ls|delete|prune|restore`, as k3s's `etcd-snapshot` subcommands (the flags
// without their `--etcd-` prefix, k3s's spellings accepted too). The datastore is the one the server
// of --data-dir recorded at start, or --datastore-endpoint.
import { Command } from 'commander';
import { addFlags, COMMON_FLAGS, type FlagSpec } from './flags.js';
import type { BackupConfig } from '../server/snapshot-service.js';
import type { DatastoreRef } from '../server/snapshot.js';

const DIR_FLAGS: FlagSpec[] = [
  { flags: '--dir <dir>', description: 'the snapshot directory (default <data-dir>/server/db/snapshots)' },
  { flags: '--snapshot-dir <dir>', description: 'same as --dir' },
  { flags: '--etcd-snapshot-dir <dir>', description: 'same as --dir (k3s spelling)' },
];
const DATASTORE_FLAGS: FlagSpec[] = [
  { flags: '--datastore-endpoint <url>', description: 'the datastore (default: the one the server on --data-dir uses)' },
  { flags: '--datastore-cafile <file>', description: 'CA certificate that verifies the datastore' },
  { flags: '--datastore-certfile <file>', description: 'client certificate for the datastore' },
  { flags: '--datastore-keyfile <file>', description: 'client key for the datastore' },
];

type Opts = Record<string, any>;
const dirOf = (o: Opts): string | undefined => o.dir ?? o.snapshotDir ?? o.etcdSnapshotDir;
const datastoreFlag = (o: Opts): DatastoreRef => ({
  endpoint: o.datastoreEndpoint || undefined,
  tls: o.datastoreCafile || o.datastoreCertfile || o.datastoreKeyfile
    ? { caFile: o.datastoreCafile, certFile: o.datastoreCertfile, keyFile: o.datastoreKeyfile } : undefined,
});

function positiveInt(v: unknown, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: not a positive integer: ${String(v)}`);
  return n;
}

/** The server's backup settings from its flags (BACKUP_FLAGS); a k3s alias that is given wins. */
export async function backupConfigFrom(o: Opts): Promise<BackupConfig> {
  const { parseDurationSeconds } = await import('./server-command.js');
  const { checkCron } = await import('../server/snapshot-schedule.js');
  const cron = String(o.etcdSnapshotScheduleCron ?? o.snapshotScheduleCron ?? '0 */12 * * *');
  // Checked before the server starts anything, so a typo is one error line and nothing else.
  checkCron(cron, o.etcdSnapshotScheduleCron ? '--etcd-snapshot-schedule-cron' : '--snapshot-schedule-cron');
  const interval = parseDurationSeconds(o.backupStreamInterval ?? '1s', '--backup-stream-interval');
  if (!(interval > 0)) throw new Error(`--backup-stream-interval: must be more than 0: ${o.backupStreamInterval}`);
  return {
    disableSnapshots: Boolean(o.etcdDisableSnapshots ?? o.disableSnapshots),
    cron,
    retention: positiveInt(o.etcdSnapshotRetention ?? o.snapshotRetention ?? 5, '--snapshot-retention'),
    dir: o.etcdSnapshotDir ?? o.snapshotDir,
    compress: Boolean(o.etcdSnapshotCompress ?? o.snapshotCompress),
    name: o.etcdSnapshotName ?? o.snapshotName,
    streamDir: o.backupStream || undefined,
    streamIntervalMs: Math.round(interval * 1000),
  };
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n') + '\n';
}

export function snapshotCommand(): Command {
  // `etcd-snapshot`: k3s's name, so scripts written for k3s run unchanged.
  const cmd = new Command('snapshot').alias('etcd-snapshot').description('save, list, delete, prune and restore snapshots of the server\'s datastore and credentials (k3s: etcd-snapshot)');

  const save = new Command('save').description('take a snapshot (safe while the server runs); prints its path');
  addFlags(save, [...COMMON_FLAGS, ...DIR_FLAGS, ...DATASTORE_FLAGS,
    { flags: '--name <name>', description: 'name prefix: the snapshot is <name>-<node>-<unix seconds>', default: 'on-demand' },
    { flags: '--node-name <name>', description: 'node part of the name (default: the hostname)' },
    { flags: '--snapshot-compress', description: 'gzip the datastore file', default: false },
    { flags: '--etcd-snapshot-compress', description: 'same as --snapshot-compress (k3s spelling)' }]);
  save.action(async (o: Opts) => {
    const { saveSnapshot } = await import('../server/snapshot.js');
    const s = await saveSnapshot(o.dataDir, {
      name: o.name, dir: dirOf(o), compress: Boolean(o.etcdSnapshotCompress ?? o.snapshotCompress), node: o.nodeName, datastore: datastoreFlag(o),
    });
    process.stdout.write(`${s.path}\n`);
  });

  const ls = new Command('ls').alias('list').alias('l').description('list the snapshots: Name, Location, Size, Created');
  addFlags(ls, [...COMMON_FLAGS, ...DIR_FLAGS]);
  ls.action(async (o: Opts) => {
    const { listSnapshots } = await import('../server/snapshot.js');
    const dir = dirOf(o);
    const rows = (dir ? listSnapshots(o.dataDir, dir) : listSnapshots(o.dataDir)).map((s) => [s.name, `file://${s.path}`, String(s.bytes), s.createdAt]);
    process.stdout.write(table([['Name', 'Location', 'Size', 'Created'], ...rows]));
  });

  const del = new Command('delete').description('delete snapshots by name').argument('<names...>', 'snapshot names (see ls)');
  addFlags(del, [...COMMON_FLAGS, ...DIR_FLAGS]);
  del.action(async (names: string[], o: Opts) => {
    const { deleteSnapshots } = await import('../server/snapshot.js');
    const dir = dirOf(o);
    for (const n of dir ? deleteSnapshots(o.dataDir, names, dir) : deleteSnapshots(o.dataDir, names)) process.stdout.write(`deleted ${n}\n`);
  });

  const prune = new Command('prune').description('delete the oldest snapshots of a name beyond the retention');
  addFlags(prune, [...COMMON_FLAGS, ...DIR_FLAGS,
    { flags: '--name <name>', description: 'name prefix of the snapshots to prune', default: 'on-demand' },
    { flags: '--node-name <name>', description: 'node part of the names (default: the hostname)' },
    { flags: '--snapshot-retention <n>', description: 'snapshots kept', default: '5' },
    { flags: '--etcd-snapshot-retention <n>', description: 'same as --snapshot-retention (k3s spelling)' }]);
  prune.action(async (o: Opts) => {
    const { pruneSnapshots } = await import('../server/snapshot.js');
    const retention = positiveInt(o.etcdSnapshotRetention ?? o.snapshotRetention, '--snapshot-retention');
    for (const n of pruneSnapshots(o.dataDir, { prefix: o.name, retention, node: o.nodeName, dir: dirOf(o) })) process.stdout.write(`deleted ${n}\n`);
  });

  const restore = new Command('restore')
    .description('make a snapshot (a path, or a name in the snapshot dir) or a continuous backup stream the server\'s state; an SQLite server must be stopped first')
    .argument('[snapshot]', 'the snapshot directory or name');
  addFlags(restore, [...COMMON_FLAGS, ...DIR_FLAGS, ...DATASTORE_FLAGS,
    { flags: '--from-stream <dir>', description: 'restore from a continuous backup stream (--backup-stream) instead of a snapshot' },
    { flags: '--at <time>', description: 'with --from-stream: the state at this time (RFC 3339 or unix seconds; default: the newest)' }]);
  restore.action(async (snapshot: string | undefined, o: Opts) => {
    const snap = await import('../server/snapshot.js');
    if (o.fromStream) {
      if (snapshot) throw new Error('give either a snapshot or --from-stream, not both');
      const { streamState, parseAt } = await import('../server/backup-stream-restore.js');
      const st = await streamState(o.fromStream, o.at ? parseAt(o.at) : undefined);
      const { join } = await import('node:path');
      const ref = snap.datastoreOf(o.dataDir, datastoreFlag(o));
      const r = await snap.restoreState(o.dataDir, ref, st.kvs, st.revision);
      const creds = snap.restoreCredentials(join(st.epoch.dir, 'creds'), o.dataDir);
      if (!creds) process.stderr.write(`a server runs on ${o.dataDir}: its credentials were left as they are (the stream's are in ${join(st.epoch.dir, 'creds')})\n`);
      process.stdout.write(`restored ${st.kvs.length} keys at revision ${st.revision} (last change acknowledged ${st.lastChangeAt.toISOString()}, ${st.changes} changes replayed after the base of ${st.epoch.startedAt.toISOString()}${st.damaged ? `, ${st.damaged} torn lines dropped` : ''})${r.kept ? `; the previous datastore is kept at ${r.kept}` : ''}\n`);
      return;
    }
    if (o.at) throw new Error('--at needs --from-stream');
    if (!snapshot) throw new Error('which snapshot? give its path or name (see `skiff snapshot ls`), or --from-stream');
    const dir = dirOf(o);
    const path = dir ? snap.snapshotPath(o.dataDir, snapshot, dir) : snap.snapshotPath(o.dataDir, snapshot);
    const r = await snap.restoreSnapshot(o.dataDir, path, datastoreFlag(o));
    if (!r.credentials) process.stderr.write(`a server runs on ${o.dataDir}: its credentials were left as they are (the snapshot's are in ${path})\n`);
    process.stdout.write(`restored ${path}${r.mode === 'diff' ? ` (${r.writes} changes written)` : ''}${r.kept ? `; the previous datastore is kept at ${r.kept}` : ''}\n`);
  });

  for (const c of [save, ls, del, prune, restore]) cmd.addCommand(c);
  return cmd;
}
