// The files through which an upgrade crosses the restart (issue 14 item 5): `<data-dir>/agent/upgrade/`
//   pending.json  written by the old version before the swap: from, to, home, deadline
//   confirmed     written by the new version once its node is Ready: the guard stops waiting
//   result.json   written by the guard (bin/skiff-upgrade-guard) after a rollback
// At every start, once the node is Ready, the agent turns them into its Node's annotations (what
// runs here, and how the upgrade ended) for the server's upgrade controller.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { logger } from '../util/log.js';

const log = logger('upgrade');
const A = 'upgrade.skiff.io/';

export interface PendingUpgrade { from: string; to: string; home: string; startedAt: string; healthTimeoutSeconds: number }
interface GuardResult { rolledBack: boolean; failed: string; restored: string; reason: string }

export const upgradeDir = (dataDir: string) => join(dataDir, 'agent', 'upgrade');

export function writePending(dataDir: string, p: PendingUpgrade): void {
  const dir = upgradeDir(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const f of ['confirmed', 'result.json']) rmSync(join(dir, f), { force: true });
  writeFileSync(join(dir, 'pending.json'), JSON.stringify(p) + '\n', { mode: 0o600 });
}

function readJson<T>(path: string): T | undefined {
  try { return JSON.parse(readFileSync(path, 'utf8')) as T; } catch { return undefined; }
}

/**
 * Called once the node is Ready: confirms an upgrade to this version (the health gate passes), or
 * reports the guard's rollback; always reports the version that runs here.
 */
export async function confirmUpgrade(dataDir: string, version: string, report: (annotations: Record<string, string | null>) => Promise<unknown>): Promise<void> {
  const dir = upgradeDir(dataDir);
  const annotations: Record<string, string | null> = { [`${A}version`]: version };
  const result = readJson<GuardResult>(join(dir, 'result.json'));
  const pending = readJson<PendingUpgrade>(join(dir, 'pending.json'));
  if (result?.rolledBack) {
    log.warn({ failed: result.failed, restored: result.restored, reason: result.reason }, 'upgrade rolled back by the health gate');
    Object.assign(annotations, {
      [`${A}state`]: 'RolledBack', [`${A}state-version`]: result.failed,
      [`${A}message`]: `${result.failed} ${result.reason}; rolled back to ${result.restored} by the node's agent`,
    });
  } else if (pending && pending.to === version) {
    // Before the report: the guard must not roll back a node that is Ready, even if the API is slow.
    writeFileSync(join(dir, 'confirmed'), `${new Date().toISOString()}\n`);
    const seconds = Math.round((Date.now() - Date.parse(pending.startedAt)) / 1000);
    log.info({ from: pending.from, to: version, seconds }, 'upgrade confirmed: node Ready on the new version');
    Object.assign(annotations, { [`${A}state`]: 'Upgraded', [`${A}state-version`]: version, [`${A}message`]: `${pending.from} → ${version}: Ready after ${seconds} s` });
  }
  await report(annotations);
  if (result?.rolledBack || (pending && pending.to === version)) {
    for (const f of ['result.json', 'pending.json']) rmSync(join(dir, f), { force: true });
  }
}

/** Whether an upgrade is waiting for this start's confirmation (tests, logs). */
export function pendingUpgrade(dataDir: string): PendingUpgrade | undefined {
  const p = join(upgradeDir(dataDir), 'pending.json');
  return existsSync(p) ? readJson<PendingUpgrade>(p) : undefined;
}
