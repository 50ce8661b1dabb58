// The host side of layer-2 announcement: which interface carries the node IP, adding and removing a
// /32 on an interface, and gratuitous ARP through Debian's `arping` (iputils). The kernel then
// answers ARP requests for the address by itself, as for any local address.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { logger } from '../../../util/log.js';

const run = promisify(execFile);
const log = logger('l2');

export interface LinkAddress { ifname: string; local: string; prefixlen: number }

export async function ipv4Addresses(): Promise<LinkAddress[]> {
  const { stdout } = await run('ip', ['-j', '-4', 'addr', 'show']);
  const out: LinkAddress[] = [];
  for (const link of JSON.parse(stdout) as any[]) {
    for (const a of link.addr_info ?? []) if (a.family === 'inet') out.push({ ifname: link.ifname, local: a.local, prefixlen: a.prefixlen });
  }
  return out;
}

/** The interface holding `nodeIp` (MetalLB announces on the interface the node's address lives on). */
export async function interfaceOf(nodeIp: string): Promise<string | undefined> {
  return (await ipv4Addresses()).find((a) => a.local === nodeIp)?.ifname;
}

export async function addAddress(ifname: string, ip: string): Promise<void> {
  try {
    await run('ip', ['addr', 'add', `${ip}/32`, 'dev', ifname]);
  } catch (e: any) {
    if (!String(e?.stderr ?? e).includes('File exists')) throw e;
  }
}

export async function removeAddress(ifname: string, ip: string): Promise<void> {
  try {
    await run('ip', ['addr', 'del', `${ip}/32`, 'dev', ifname]);
  } catch (e: any) {
    if (!/Cannot assign|not found|No such/i.test(String(e?.stderr ?? e))) throw e;
  }
}

/**
 * Gratuitous ARP for `ip` on `ifname`, repeated over the first seconds after a takeover: Linux
 * ignores an update that comes within `locktime` (1 s) of the entry's last change, and a host may
 * miss one, so single packets go out densely at first, then sparser. Requests (-U) and replies (-A)
 * alternate, since some stacks heed only one kind. Returns a cancel function.
 */
export function announce(ifname: string, ip: string, scheduleMs: readonly number[] = [0, 250, 500, 1_000, 1_500, 2_000, 3_000, 5_000]): () => void {
  const timers: NodeJS.Timeout[] = [];
  for (const [i, at] of scheduleMs.entries()) {
    timers.push(setTimeout(() => {
      const p = spawn('arping', [i % 2 ? '-A' : '-U', '-c', '1', '-I', ifname, ip], { stdio: 'ignore' });
      p.on('error', (err) => log.warn({ ip, ifname, err: err.message }, 'arping failed'));
    }, at));
  }
  return () => { for (const t of timers) clearTimeout(t); };
}
