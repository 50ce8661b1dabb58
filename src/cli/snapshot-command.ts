import { Command } from 'commander';
import { addFlags, COMMON_FLAGS } from './flags.js';

export function snapshotCommand(): Command {
  const cmd = new Command('snapshot').description('save, list and restore snapshots of the server\'s datastore and credentials');
  const save = new Command('save').description('take a snapshot (safe while the server runs); prints its path');
  addFlags(save, [...COMMON_FLAGS,
    { flags: '--name <name>', description: 'name prefix', default: 'on-demand' },
    { flags: '--dir <dir>', description: 'where to write it (default <data-dir>/server/db/snapshots)' }]);
  save.action(async (o: Record<string, any>) => {
    const { saveSnapshot } = await import('../server/snapshot.js');
    const s = await saveSnapshot(o.dataDir, { name: o.name, dir: o.dir });
    process.stdout.write(`${s.path}\n`);
  });
  const ls = new Command('ls').description('list the snapshots under the data dir');
  addFlags(ls, COMMON_FLAGS);
  ls.action(async (o: Record<string, any>) => {
    const { listSnapshots } = await import('../server/snapshot.js');
    const rows = listSnapshots(o.dataDir);
    process.stdout.write(['NAME\tCREATED\tSIZE', ...rows.map((s) => `${s.name}\t${s.createdAt}\t${s.bytes}`)].join('\n') + '\n');
  });
  const restore = new Command('restore').description('make a snapshot the server\'s state (stop the server first)').argument('<path>', 'the snapshot directory');
  addFlags(restore, COMMON_FLAGS);
  restore.action(async (path: string, o: Record<string, any>) => {
    const { restoreSnapshot } = await import('../server/snapshot.js');
    const r = restoreSnapshot(o.dataDir, path);
    process.stdout.write(`restored ${path}; the previous datastore is kept at ${r.kept}\n`);
  });
  cmd.addCommand(save);
  cmd.addCommand(ls);
  cmd.addCommand(restore);
  return cmd;
}
