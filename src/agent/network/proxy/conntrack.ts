// UDP has no connection to close: the kernel keeps NATing a client's flow to the endpoint it first
// chose until the conntrack entry times out, so a DNS client would keep asking a deleted pod. As
// kube-proxy does, delete the entries of UDP flows DNATed to an endpoint that went away, and the
// entries of a UDP Service that had no endpoints (flows that were going nowhere) once it has some.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { logger } from '../../../util/log.js';
import { reachableEndpoints, type ServiceModel } from './model.js';

const run = promisify(execFile);
const log = logger('service-proxy');

/** `conntrack` argument lists that clear the stale UDP flows between two models of one Service. */
export function staleUdpFlows(before: ServiceModel | undefined, after: ServiceModel | undefined): string[][] {
  const out: string[][] = [];
  const afterPorts = new Map((after?.ports ?? []).map((p) => [p.name, p]));
  for (const p of before?.ports ?? []) {
    if (p.protocol !== 'udp') continue;
    const now = afterPorts.get(p.name);
    const still = new Set(now ? reachableEndpoints(now).map((e) => e.ip) : []);
    for (const e of reachableEndpoints(p)) {
      if (still.has(e.ip)) continue;
      for (const ip of [p.clusterIp, ...p.externalIps, ...p.loadBalancerIps]) out.push(['-D', '-p', 'udp', '--orig-dst', ip, '--dst-nat', e.ip]);
      if (p.nodePort) out.push(['-D', '-p', 'udp', '--orig-port-dst', String(p.nodePort), '--dst-nat', e.ip]);
    }
  }
  const beforePorts = new Map((before?.ports ?? []).map((p) => [p.name, p]));
  for (const p of after?.ports ?? []) {
    if (p.protocol !== 'udp' || !p.hasEndpoints) continue;
    if (beforePorts.get(p.name)?.hasEndpoints) continue;
    out.push(['-D', '-p', 'udp', '--orig-dst', p.clusterIp]);
  }
  return out;
}

/** Runs the deletions; "no entries" and a missing tool are not errors worth more than a debug line. */
export async function clearFlows(commands: string[][], binary = 'conntrack'): Promise<void> {
  for (const args of commands) {
    try {
      await run(binary, args);
    } catch (err) {
      const msg = String((err as { stderr?: string }).stderr ?? (err as Error).message);
      if (/0 flow entries/.test(msg)) continue;
      log.debug({ args: args.join(' '), err: msg.trim() }, 'conntrack cleanup');
    }
  }
}
