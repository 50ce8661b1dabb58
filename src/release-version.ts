// skiff's own release version (the `VERSION` of a release tarball, docs/install.md), as opposed to the
// Kubernetes version it serves (src/version.ts). Used by the version-skew rule of node joins, the
// Node's kubeletVersion and the rolling upgrades (src/controllers/upgrade, src/agent/upgrade-*.ts).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VERSION } from './version.js';

let cached: string | undefined;

/**
 * The running program's release version: `$SKIFF_HOME/VERSION` (the release's launcher sets
 * SKIFF_HOME to the installed tree), else the version the bundle carries beside itself
 * (lib/skiff/package.json), else the checkout's package.json.
 */
export function releaseVersion(): string {
  if (cached) return cached;
  const candidates: Array<[string, (text: string) => string | undefined]> = [];
  if (process.env.SKIFF_HOME) candidates.push([join(process.env.SKIFF_HOME, 'VERSION'), (t) => t.trim() || undefined]);
  const here = fileURLToPath(new URL('.', import.meta.url));
  const fromPackage = (t: string) => { try { return JSON.parse(t).version as string | undefined; } catch { return undefined; } };
  candidates.push([join(here, 'package.json'), fromPackage], [join(here, '..', 'package.json'), fromPackage]);
  for (const [path, parse] of candidates) {
    if (!existsSync(path)) continue;
    const v = parse(readFileSync(path, 'utf8'));
    if (v) return (cached = v);
  }
  return (cached = '0.0.0');
}

/** The home of the installed release this process runs from (undefined when run from a checkout). */
export function releaseHome(): string | undefined {
  return process.env.SKIFF_HOME || undefined;
}

/**
 * What a Node reports as its kubeletVersion (`kubectl get nodes` VERSION): the Kubernetes version,
 * with skiff's release version in the build metadata when run from a release (k3s shows
 * `v1.32.4+k3s1` the same way).
 */
export function nodeVersionString(): string {
  return releaseHome() ? `${VERSION.gitVersion}-${releaseVersion()}` : VERSION.gitVersion;
}

/** major.minor of a semver-like string ("v0.3.1-rc1" → [0, 3]); undefined when it has none. */
export function minorOf(v: string): [number, number] | undefined {
  const m = /^v?(\d+)\.(\d+)(?:[.\-+]|$)/.exec(v.trim());
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/**
 * The skew rule of a join (issue 14 item 6, as Kubernetes' kubelet rule: a kubelet may be older than
 * its API server, never newer): an agent of a newer minor (or major) than the server is refused;
 * older agents join (one minor behind is supported; further behind is allowed but warned about).
 * Patch versions never matter. Returns the refusal, or undefined.
 */
export function agentSkewRefusal(serverVersion: string, agentVersion: string | undefined): string | undefined {
  if (!agentVersion) return undefined;   // an agent predating the rule sends no version: an older one
  const s = minorOf(serverVersion);
  const a = minorOf(agentVersion);
  if (!s || !a) return undefined;
  const newer = a[0] > s[0] || (a[0] === s[0] && a[1] > s[1]);
  if (!newer) return undefined;
  return `agent version ${agentVersion} is newer than the server's ${serverVersion}: an agent may be at most as new as its servers `
    + '(upgrade the servers first, or install the server\'s version on this node)';
}

/** How many minors the agent is behind the server (0 when not behind or not comparable). */
export function minorsBehind(serverVersion: string, agentVersion: string): number {
  const s = minorOf(serverVersion);
  const a = minorOf(agentVersion);
  if (!s || !a) return 0;
  if (a[0] < s[0]) return Infinity;
  return a[0] === s[0] ? Math.max(0, s[1] - a[1]) : 0;
}
