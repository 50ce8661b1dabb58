// A loopback-bound instance of the agent's node-local DNS server for bench/net-dns.ts (named as such:
// the same records, forwarder, cache and server modules the agent runs, fed from a synthetic cluster
// instead of informers). Prints `{"port":N}` once listening; a line on stdin prints its counters, the
// end of stdin stops it.
//   node [node flags] --import tsx bench/lib/dns-instance.ts --services N --upstream 127.0.0.1:PORT
import { ClusterRecords } from '../../src/agent/dns/records.js';
import { serviceEntry } from '../../src/agent/dns/service-entry.js';
import { Forwarder } from '../../src/agent/dns/forwarder.js';
import { DnsServer } from '../../src/agent/dns/server.js';
import { parseServer } from '../../src/agent/dns/config.js';

const arg = (name: string, dflt: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1]! : dflt; };
const services = Number(arg('services', '1000'));
const upstream = parseServer(arg('upstream', ''));

const records = new ClusterRecords({ clusterDomain: 'cluster.local', clusterDns: '10.43.0.10' });
records.setNamespaces(['default', 'kube-system', 'bench']);
for (let i = 0; i < services; i++) {
  const headless = i % 10 === 9;
  const name = `svc-${i}`;
  const slices = headless ? [{
    metadata: { name: `${name}-x`, namespace: 'bench', labels: { 'kubernetes.io/service-name': name } }, addressType: 'IPv4',
    endpoints: Array.from({ length: 10 }, (_, j) => ({ addresses: [`10.42.${i % 250}.${j + 1}`], hostname: `${name}-${j}`, conditions: { ready: true } })),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  }] : [];
  records.setService(serviceEntry({ metadata: { name, namespace: 'bench' }, spec: headless
    ? { clusterIP: 'None', ports: [{ name: 'http', port: 80 }] }
    : { clusterIP: `10.43.${Math.floor(i / 250) + 1}.${(i % 250) + 1}`, ports: [{ name: 'http', port: 80 }] } }, slices));
}
const forwarder = new Forwarder({ upstreams: upstream ? [upstream] : [] });
const server = new DnsServer({ records, forwarder });
const { port } = await server.listen('127.0.0.1', 0);
process.stdout.write(JSON.stringify({ port }) + '\n');
// A line on stdin asks for the counters; stdin closing ends the instance.
process.stdin.on('data', () => {
  process.stdout.write(JSON.stringify({ served: server.stats, forwarder: forwarder.stats, rssMb: Math.round(process.memoryUsage().rss / 2 ** 20) }) + '\n');
});
process.stdin.on('end', () => void server.close().then(() => process.exit(0)));
