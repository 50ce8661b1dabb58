// One layer-2 segment for load-balancer tests: a Linux bridge in this machine's namespace (holding
// the server's address, .1) and hosts in network namespaces, each a veth into the bridge, all on
// one /24, so that ARP between them is real (gratuitous ARP, takeover of an address). Names are
// the caller's, unique per run.
import { spawnSync } from 'node:child_process';
import { sh, type NetnsHost } from './netns-host.js';

export interface L2Lan {
  bridge: string;
  /** The first three octets of the /24, e.g. `10.123.45`. */
  prefix: string;
  hosts: NetnsHost[];
}

export function createL2Lan(lan: L2Lan): void {
  removeL2Lan(lan);
  sh(['ip', 'link', 'add', lan.bridge, 'type', 'bridge']);
  sh(['ip', 'addr', 'add', `${lan.prefix}.1/24`, 'dev', lan.bridge]);
  sh(['ip', 'link', 'set', lan.bridge, 'up']);
  for (const h of lan.hosts) {
    sh(['ip', 'netns', 'add', h.netns]);
    sh(['ip', 'link', 'add', h.hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.netns]);
    sh(['ip', 'link', 'set', h.hostIf, 'master', lan.bridge]);
    sh(['ip', 'link', 'set', h.hostIf, 'up']);
    const inNs = (args: string[]) => sh(['ip', '-n', h.netns, ...args]);
    inNs(['addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
    inNs(['link', 'set', 'eth0', 'up']);
    inNs(['link', 'set', 'lo', 'up']);
    inNs(['route', 'add', 'default', 'via', `${lan.prefix}.1`]);
  }
}

export function removeL2Lan(lan: L2Lan): void {
  for (const h of lan.hosts) {
    spawnSync('ip', ['netns', 'del', h.netns], { stdio: 'ignore' });
    spawnSync('ip', ['link', 'del', h.hostIf], { stdio: 'ignore' });
  }
  spawnSync('ip', ['link', 'del', lan.bridge], { stdio: 'ignore' });
}

/** A host on the segment: hostIp is the server's bridge address (the agents' server and gateway). */
export function lanHost(name: string, netns: string, hostIf: string, prefix: string, octet: number): NetnsHost {
  return { name, netns, hostIf, hostIp: `${prefix}.1`, ip: `${prefix}.${octet}`, dir: '' };
}
