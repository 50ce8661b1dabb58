// Which network namespace holds a data dir's network policy table, so that `skiff killall` removes
// the table this agent made and never one of the same name in another namespace (tests run agents as
// hosts in namespaces of their own).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const marker = (dataDir: string) => join(dataDir, 'agent', 'network-policy-table');

function netnsId(): string {
  try { return readlinkSync('/proc/self/ns/net'); } catch { return 'unknown'; }
}

export function recordPolicyTable(dataDir: string, table: string): void {
  const file = marker(dataDir);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${netnsId()}\n${table}\n`);
}

export function removeRecordedPolicyTable(dataDir: string): void {
  const file = marker(dataDir);
  if (!existsSync(file)) return;
  const [ns, table] = readFileSync(file, 'utf8').split('\n');
  if (ns === netnsId() && table && /^[A-Za-z0-9_.-]+$/.test(table)) {
    try { execFileSync('nft', ['delete', 'table', 'ip', table], { stdio: 'ignore' }); } catch { /* already gone */ }
  }
  rmSync(file, { force: true });
}
