// What accepting one TLS connection costs the API server (issue 15: after a restart, 5,000 nodes
// reconnect at once and the server took them in at about 450 a second). An HTTPS server set up as
// skiff's (requestCert against the client CA, skiff's own serving certificate) runs in a child
// process; clients open connections with a client certificate, make one request and close, C at a
// time, as reconnecting nodes do. The child reports its main thread's busy time (event-loop
// utilization) and the process's CPU per connection. Variants, alternated in one run so the ratio
// is measured under the same noise:
//   tickets    OpenSSL's defaults: TLS 1.3 sends two stateless session tickets per handshake;
//   no-ticket  SSL_OP_NO_TICKET: stateful tickets (a session id), nothing encrypted or re-encoded.
//   node --import tsx bench/tls-handshake.ts [--connections 2000] [--concurrency 50] [--rounds 3]
import https from 'node:https';
import { constants } from 'node:crypto';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import { ensureServerPki } from '../src/pki/certs.js';
import { intArg } from './lib/args.js';

const VARIANTS = { tickets: 0, 'no-ticket': constants.SSL_OP_NO_TICKET } as const;
type Variant = keyof typeof VARIANTS;
interface Usage { elu: number; cpu: number }

if (process.argv[2] === 'child') {
  const { cert, key, ca, variant } = JSON.parse(process.argv[3]!) as { cert: string; key: string; ca: string; variant: Variant };
  const server = https.createServer({ cert, key, ca, requestCert: true, rejectUnauthorized: false, secureOptions: VARIANTS[variant] },
    (req, res) => { res.end((req.socket as import('node:tls').TLSSocket).authorized ? 'ok' : 'no'); });
  let elu0 = performance.eventLoopUtilization();
  let cpu0 = process.cpuUsage();
  const usage = (): Usage => {
    const elu = performance.eventLoopUtilization(elu0);
    const cpu = process.cpuUsage(cpu0);
    return { elu: elu.active, cpu: (cpu.user + cpu.system) / 1000 };
  };
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port }));
  process.on('message', (m) => {
    if (m === 'start') { elu0 = performance.eventLoopUtilization(); cpu0 = process.cpuUsage(); process.send!({ started: true }); }
    else process.send!(usage());
  });
} else {
  if (process.argv.includes('--help')) {
    console.log('node --import tsx bench/tls-handshake.ts [--connections 2000] [--concurrency 50] [--rounds 3]');
    process.exit(0);
  }
  const n = intArg('--connections', 2000);
  const concurrency = intArg('--concurrency', 50);
  const rounds = intArg('--rounds', 3);
  const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-tls-'));
  try {
    const pki = await ensureServerPki({ dataDir: dir, sans: { dns: ['localhost'], ips: ['127.0.0.1'] } });
    const client = await pki.issueClientCert('system:node:bench', ['system:nodes']);
    const results: Record<Variant, { elu: number[]; cpu: number[]; rate: number[] }> = {
      tickets: { elu: [], cpu: [], rate: [] }, 'no-ticket': { elu: [], cpu: [], rate: [] },
    };
    for (let r = 0; r < rounds; r++) {
      for (const variant of Object.keys(VARIANTS) as Variant[]) {
        const child = fork(fileURLToPath(import.meta.url), ['child', JSON.stringify({ cert: pki.servingCertPem, key: pki.servingKeyPem, ca: pki.clientCaPem, variant })],
          { execArgv: ['--import', 'tsx'] });
        const next = <T>() => new Promise<T>((resolve) => child.once('message', (m) => resolve(m as T)));
        const { port } = await next<{ port: number }>();
        // One TLS context for all clients, as each node's client keeps one; no session reuse (client-go keeps none).
        const agent = new https.Agent({ keepAlive: false, maxSockets: Infinity, maxCachedSessions: 0, ca: pki.serverCaPem, cert: client.certPem, key: client.keyPem });
        const once = () => new Promise<void>((resolve, reject) => {
          https.get({ host: '127.0.0.1', port, path: '/', agent, servername: 'localhost' }, (res) => {
            let b = '';
            res.on('data', (d) => (b += d)).on('end', () => (b === 'ok' ? resolve() : reject(new Error(`not authenticated: ${b}`))));
          }).on('error', reject);
        });
        for (let i = 0; i < 100; i++) await once();   // warm up (JIT) before measuring
        child.send('start');
        await next();
        const t0 = performance.now();
        let left = n;
        await Promise.all(Array.from({ length: concurrency }, async () => { while (left-- > 0) await once(); }));
        const seconds = (performance.now() - t0) / 1000;
        child.send('measure');
        const u = await next<Usage>();
        results[variant].elu.push(u.elu / n);
        results[variant].cpu.push(u.cpu / n);
        results[variant].rate.push(n / seconds);
        console.log(`round ${r + 1} ${variant.padEnd(9)}: server main thread ${(u.elu / n).toFixed(3)} ms/conn, process CPU ${(u.cpu / n).toFixed(3)} ms/conn, ${(n / seconds).toFixed(0)} conn/s`);
        agent.destroy();
        child.kill();
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const t = results.tickets, nt = results['no-ticket'];
    console.log(`median: tickets ${median(t.elu).toFixed(3)} ms main thread/conn (${median(t.rate).toFixed(0)} conn/s), no-ticket ${median(nt.elu).toFixed(3)} ms (${median(nt.rate).toFixed(0)} conn/s)`);
    console.log(`SUMMARY tls-handshake: connections=${n} concurrency=${concurrency} ticketsMainMsPerConn=${median(t.elu).toFixed(3)} noTicketMainMsPerConn=${median(nt.elu).toFixed(3)} ratio=${(median(nt.elu) / median(t.elu)).toFixed(2)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
