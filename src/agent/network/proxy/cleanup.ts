// Which network namespace holds a data dir's proxy table, so that `skiff killall` and test teardown
// remove the table the agent made, and never one of the same name in another namespace (a test's
// agents run as hosts in namespaces of their own, beside the machine's own).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const proxyMarker = (dataDir: string) => join(dataDir, 'agent', 'service-proxy-table');

function netnsId(): string {
  try { return readlinkSync('/proc/self/ns/net'); } catch { return 'unknown'; }
}

/** Notes that this process's namespace holds `table` for `dataDir`. */
export function recordProxyTable(dataDir: string, table: string): void {
  const file = proxyMarker(dataDir);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${netnsId()}\n${table}\n`);
}

/** Deletes the table `dataDir`'s agent programmed, if it is in this namespace. */
export function removeRecordedProxyTable(dataDir: string): void {
  const file = proxyMarker(dataDir);
  if (!existsSync(file)) return;
  const [ns, table] = readFileSync(file, 'utf8').split('\n');
  if (ns === netnsId() && table && /^[A-Za-z0-9_.-]+$/.test(table)) {
    try { execFileSync('nft', ['delete', 'table', 'ip', table], { stdio: 'ignore' }); } catch { /* already gone */ }
  }
  rmSync(file, { force: true });
}
