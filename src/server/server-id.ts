// This server's stable id, kept in <data-dir>/server/id: its leader-election identity
// (`<hostname>_<id>`) and its API server identity Lease derive from it. Stable across restarts, so a
// restarted server (even after kill -9) renews its own Leases at once instead of waiting for them to
// expire; distinct per data dir, so several servers on one host are distinct candidates.
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function serverId(dataDir: string): string {
  const file = join(dataDir, 'server', 'id');
  try {
    const id = readFileSync(file, 'utf8').trim();
    if (/^[0-9a-f-]{36}$/.test(id)) return id;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const id = randomUUID();
  writeFileSync(file, id + '\n', { mode: 0o600 });
  return id;
}
