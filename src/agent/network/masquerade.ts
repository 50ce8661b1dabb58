// Outbound NAT for the node's pods: one rule set for the whole pod CIDR instead of the bridge CNI
// plugin's per-pod `ipMasq` chains. The plugin's way runs iptables several times per sandbox under
// the xtables lock, which serialises a burst of pod starts (measured: ~80 ms of CPU per pod and the
// lock held throughout); a node-wide rule costs nothing per pod. Same semantics as the plugin:
// traffic from a pod to anything outside the pod CIDR, except multicast, leaves with the node's address.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { logger } from '../../util/log.js';
import { netnsId } from './backends/netns.js';

const run = promisify(execFile);
const log = logger('masquerade');

export const MASQUERADE_CHAIN = 'SKIFF-POSTROUTING';
const COMMENT = 'skiff: masquerade pod traffic leaving the pod network';

/** The iptables arguments (after `-t nat`) of the chain's rules for a pod CIDR. */
export function masqueradeRules(podCidr: string, podNetworks: string[] = []): string[][] {
  const v6 = podCidr.includes(':');
  return [
    // Pod to pod, on this node or (over the overlay) on another, keeps its address.
    ...[podCidr, ...podNetworks].map((dst) => ['-A', MASQUERADE_CHAIN, '-s', podCidr, '-d', dst, '-j', 'RETURN']),
    ['-A', MASQUERADE_CHAIN, '-s', podCidr, '-d', v6 ? 'ff00::/8' : '224.0.0.0/4', '-j', 'RETURN'],
    ['-A', MASQUERADE_CHAIN, '-s', podCidr, '-m', 'comment', '--comment', COMMENT, '-j', 'MASQUERADE'],
  ];
}

/**
 * Makes the nat table hold exactly our chain's rules for `podCidr` and one jump to it from
 * POSTROUTING. Idempotent: rebuilt at every agent start (the pod CIDR may have changed).
 * Without iptables the node still runs pods; only their traffic off the node is not NATed.
 */
export async function ensurePodMasquerade(podCidr: string, podNetworks: string[] = [], binary = podCidr.includes(':') ? 'ip6tables' : 'iptables'): Promise<boolean> {
  const ipt = (...args: string[]) => run(binary, ['-w', '-t', 'nat', ...args]);
  try {
    await ipt('-N', MASQUERADE_CHAIN).catch(() => ipt('-F', MASQUERADE_CHAIN));
    for (const rule of masqueradeRules(podCidr, podNetworks)) await ipt(...rule);
    const jump = ['POSTROUTING', '-j', MASQUERADE_CHAIN];
    await ipt('-C', ...jump).catch(() => ipt('-A', ...jump));
    log.info({ podCidr }, 'pod masquerade rules in place');
    return true;
  } catch (err) {
    log.warn({ podCidr, err: (err as Error).message }, 'could not install pod masquerade rules; pod traffic leaving the node is not NATed');
    return false;
  }
}

/** Removes the chain and its jump (`--flannel-backend none`: the user's CNI does its own NAT). */
export async function removePodMasquerade(binary = 'iptables'): Promise<void> {
  const ipt = (...args: string[]) => run(binary, ['-w', '-t', 'nat', ...args]);
  await ipt('-D', 'POSTROUTING', '-j', MASQUERADE_CHAIN).catch(() => undefined);
  await ipt('-F', MASQUERADE_CHAIN).catch(() => undefined);
  await ipt('-X', MASQUERADE_CHAIN).catch(() => undefined);
}

/** Where the agent records the namespace it put the chain in (teardown removes only that one). */
export const masqueradeMarker = (dataDir: string) => join(dataDir, 'agent', 'pod-masquerade');

export function markPodMasquerade(dataDir: string): void {
  mkdirSync(dirname(masqueradeMarker(dataDir)), { recursive: true });
  writeFileSync(masqueradeMarker(dataDir), netnsId());
}

/**
 * Teardown (killall): removes the chain if this data dir's agent made it in this namespace. Left
 * behind, it would keep rewriting the pod CIDR's traffic, e.g. frames crossing a bridge of this
 * namespace when br_netfilter is loaded.
 */
export function removePodMasqueradeIfOurs(dataDir: string): void {
  const marker = masqueradeMarker(dataDir);
  if (!existsSync(marker)) return;
  if (readFileSync(marker, 'utf8') === netnsId()) {
    const ipt = (...args: string[]) => { try { execFileSync('iptables', ['-w', '-t', 'nat', ...args], { stdio: 'ignore' }); } catch { /* gone */ } };
    ipt('-D', 'POSTROUTING', '-j', MASQUERADE_CHAIN);
    ipt('-F', MASQUERADE_CHAIN);
    ipt('-X', MASQUERADE_CHAIN);
  }
  rmSync(marker, { force: true });
}
