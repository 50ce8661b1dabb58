// Cluster IPs and node ports for Services. Allocation state is derived from the stored Services (the
// cache holds them all), so there is no second source of truth to repair after a crash.
import type { Store } from '../storage/types.js';
import { cause } from '../api/status.js';
import type { StatusCause } from '../api/status.js';
import { ipToNumber, numberToIp } from '../api/cidr.js';

export interface ServiceNetwork {
  serviceCidr: string;          // e.g. 10.43.0.0/16
  nodePortRange: [number, number];
}


export function parseCidr(cidr: string): { base: number; size: number } {
  const [ip, bits] = cidr.split('/');
  const b = Number(bits);
  const size = 2 ** (32 - b);
  return { base: ((ipToNumber(ip) ?? 0) & ~(size - 1)) >>> 0, size };
}

/** The first usable address (x.x.0.1): the `kubernetes` Service's cluster IP. */
export function firstServiceIp(cidr: string): string {
  return numberToIp(parseCidr(cidr).base + 1);
}

export class ServiceAllocator {
  private readonly range: { base: number; size: number };
  private nextIp = 0;
  private nextPort = 0;
  // Addresses and ports handed out by writes still in flight (not yet visible in the store).
  private pendingIps = new Set<string>();
  private pendingPorts = new Set<number>();

  constructor(private readonly store: Store, private readonly net: ServiceNetwork) {
    this.range = parseCidr(net.serviceCidr);
  }

  private used(): { ips: Set<string>; ports: Set<number> } {
    const ips = new Set(this.pendingIps);
    const ports = new Set(this.pendingPorts);
    for (const s of this.store.list('/core/services/').items) {
      const spec = s.obj.spec ?? {};
      for (const ip of spec.clusterIPs ?? [spec.clusterIP]) if (ip) ips.add(ip);
      for (const p of spec.ports ?? []) if (p.nodePort) ports.add(p.nodePort);
    }
    return { ips, ports };
  }

  /**
   * Fills in clusterIP(s) and node ports of a Service being created or updated (`old` on update keeps
   * what it had). Returns causes for requested values that are taken or out of range, and a release
   * function for the pending reservation (call it once the write is done or failed).
   */
  assign(svc: Record<string, any>, old?: Record<string, any>): { causes: StatusCause[]; release: () => void } {
    const spec = svc.spec ?? (svc.spec = {});
    const causes: StatusCause[] = [];
    const { ips, ports } = this.used();
    const mine: { ips: string[]; ports: number[] } = { ips: [], ports: [] };
    const type = spec.type ?? 'ClusterIP';
    if (old) {
      for (const ip of old.spec?.clusterIPs ?? [old.spec?.clusterIP]) if (ip) ips.delete(ip);
      for (const p of old.spec?.ports ?? []) if (p.nodePort) ports.delete(p.nodePort);
    }
    if (type === 'ExternalName') {
      delete spec.clusterIP; delete spec.clusterIPs;
    } else if (spec.clusterIP === 'None') {
      spec.clusterIPs = ['None'];
    } else if (spec.clusterIP) {
      const n = ipToNumber(spec.clusterIP);
      if (n === undefined || n < this.range.base || n >= this.range.base + this.range.size) {
        causes.push(cause.invalid('spec.clusterIPs', [spec.clusterIP], `failed to allocate IP ${spec.clusterIP}: the provided IP (${spec.clusterIP}) is not in the valid range. The range of valid IPs is ${this.net.serviceCidr}`));
      } else if (ips.has(spec.clusterIP) && old?.spec?.clusterIP !== spec.clusterIP) {
        causes.push(cause.invalid('spec.clusterIPs', [spec.clusterIP], `failed to allocate IP ${spec.clusterIP}: provided IP is already allocated`));
      }
      spec.clusterIPs = [spec.clusterIP];
    } else {
      // Skip network, the first address (kubernetes Service) is assigned explicitly; scan from a rolling cursor.
      for (let i = 0; i < this.range.size - 2; i++) {
        const off = 2 + ((this.nextIp + i) % (this.range.size - 3));
        const ip = numberToIp(this.range.base + off);
        if (!ips.has(ip)) { spec.clusterIP = ip; spec.clusterIPs = [ip]; this.nextIp = off - 1; mine.ips.push(ip); break; }
      }
      if (!spec.clusterIP) causes.push(cause.invalid('spec.clusterIPs', null, 'failed to allocate IP: range is full'));
    }
    if (type === 'NodePort' || type === 'LoadBalancer') {
      const [lo, hi] = this.net.nodePortRange;
      spec.ports?.forEach((p: any, i: number) => {
        if (p.nodePort) {
          if (p.nodePort < lo || p.nodePort > hi) causes.push(cause.invalid(`spec.ports[${i}].nodePort`, p.nodePort, `provided port is not in the valid range. The range of valid ports is ${lo}-${hi}`));
          else if (ports.has(p.nodePort) && !(old?.spec?.ports ?? []).some((o: any) => o.nodePort === p.nodePort)) causes.push(cause.invalid(`spec.ports[${i}].nodePort`, p.nodePort, 'provided port is already allocated'));
          ports.add(p.nodePort);
          return;
        }
        const span = hi - lo + 1;
        for (let j = 0; j < span; j++) {
          const port = lo + ((this.nextPort + j) % span);
          if (!ports.has(port)) { p.nodePort = port; ports.add(port); mine.ports.push(port); this.nextPort = port - lo + 1; break; }
        }
      });
    } else {
      for (const p of spec.ports ?? []) delete p.nodePort;
    }
    for (const ip of mine.ips) this.pendingIps.add(ip);
    for (const p of mine.ports) this.pendingPorts.add(p);
    return {
      causes,
      release: () => { for (const ip of mine.ips) this.pendingIps.delete(ip); for (const p of mine.ports) this.pendingPorts.delete(p); },
    };
  }
}
