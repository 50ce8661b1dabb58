// The health check port of `externalTrafficPolicy: Local` LoadBalancer Services, as kube-proxy serves
// it on every node: an external load balancer asks each node's `healthCheckNodePort` and sends
// traffic only to the nodes answering 200 (they have a ready local endpoint); the others answer 503.
// The body is kube-proxy's JSON, so tools that read it (cloud load balancers, MetalLB) work.
import { createServer, type Server } from 'node:http';
import { logger } from '../../../util/log.js';

const log = logger('service-proxy');

export interface HealthCheckedService { namespace: string; name: string; port: number; localEndpoints: number }

export function healthBody(s: { namespace: string; name: string }, localEndpoints: number, healthy = true): string {
  return JSON.stringify({ service: { namespace: s.namespace, name: s.name }, localEndpoints, serviceProxyHealthy: healthy }, null, 2);
}

export class HealthCheckServer {
  /** port → the server and the Service it reports. */
  private readonly open = new Map<number, { server: Server; svc: HealthCheckedService }>();

  /** @param addresses where to listen (default: every address). */
  constructor(private readonly addresses: string[] = ['0.0.0.0']) {}

  /** Opens, updates and closes ports so exactly `services` are served. */
  sync(services: HealthCheckedService[]): void {
    const want = new Map<number, HealthCheckedService>();
    for (const s of services) if (!want.has(s.port)) want.set(s.port, s);
    for (const [port, o] of this.open) {
      if (want.has(port)) continue;
      o.server.close();
      this.open.delete(port);
    }
    for (const [port, svc] of want) {
      const cur = this.open.get(port);
      if (cur) { cur.svc = svc; continue; }
      const entry = { svc, server: createServer((req, res) => {
        const s = entry.svc;
        res.writeHead(s.localEndpoints > 0 ? 200 : 503, { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' });
        res.end(healthBody(s, s.localEndpoints));
        req.resume();
      }) };
      entry.server.on('error', (err) => log.warn({ port, service: `${svc.namespace}/${svc.name}`, err: err.message }, 'health check port unavailable'));
      // One server object, several addresses: listen on the first; extra addresses get their own servers.
      const [first, ...rest] = this.addresses;
      entry.server.listen(port, first);
      for (const addr of rest) {
        const extra = createServer((req, res) => entry.server.emit('request', req, res));
        extra.on('error', () => undefined);
        extra.listen(port, addr);
        entry.server.on('close', () => extra.close());
      }
      this.open.set(port, entry);
    }
  }

  close(): void {
    for (const o of this.open.values()) o.server.close();
    this.open.clear();
  }
}
