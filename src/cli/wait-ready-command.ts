import { Command } from 'commander';
import https from 'node:https';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addFlags, COMMON_FLAGS } from './flags.js';

// `skiff wait-ready`: returns when this machine's skiff is ready: a server answers /readyz, an agent's
// Node is Ready. It is the readiness of the installed service (the systemd unit's ExecStartPost, the
// OpenRC start_post, install.sh's wait), standing in for sd_notify (docs/install.md says why).
export function waitReadyCommand(): Command {
  const cmd = new Command('wait-ready').description('wait until this machine\'s server answers /readyz, or its agent\'s Node is Ready');
  addFlags(cmd, [
    ...COMMON_FLAGS,
    { flags: '--role <role>', description: 'server or agent', default: 'server' },
    { flags: '--kubeconfig <file>', description: 'the server\'s admin kubeconfig', default: '/etc/skiff/skiff.yaml' },
    { flags: '--server <url>', description: 'the agent\'s server (default: $SKIFF_URL)' },
    { flags: '--timeout <seconds>', description: 'give up after this long', default: '120' },
  ]);
  cmd.action(async (o: Record<string, any>) => {
    const deadline = Date.now() + Number(o.timeout) * 1000;
    let last = 'not started';
    while (Date.now() < deadline) {
      try {
        last = o.role === 'agent' ? await agentReady(o.dataDir, o.server ?? process.env.SKIFF_URL) : await serverReady(o.kubeconfig);
        if (last === 'ready') { process.stdout.write(`${o.role} ready\n`); return; }
      } catch (e) { last = e instanceof Error ? e.message : String(e); }
      await new Promise((r) => setTimeout(r, 250));
    }
    process.stderr.write(`skiff wait-ready: ${o.role} not ready after ${o.timeout}s (${last})\n`);
    process.exit(1);
  });
  return cmd;
}

interface Tls { ca: string; cert: string; key: string }

function get(url: URL, tls: Tls): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ...tls, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => { body += c; }).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

async function serverReady(kubeconfig: string): Promise<string> {
  if (!existsSync(kubeconfig)) return `no kubeconfig at ${kubeconfig} yet`;
  const { parse } = await import('yaml');
  const kc = parse(readFileSync(kubeconfig, 'utf8')) as any;
  const cluster = kc.clusters?.[0]?.cluster; const user = kc.users?.[0]?.user;
  const b64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString('utf8');
  const r = await get(new URL('/readyz', cluster.server), { ca: b64(cluster['certificate-authority-data']), cert: b64(user['client-certificate-data']), key: b64(user['client-key-data']) });
  return r.status === 200 ? 'ready' : `/readyz: ${r.status} ${r.body.slice(0, 200)}`;
}

async function agentReady(dataDir: string, server: string | undefined): Promise<string> {
  if (!server) return 'no --server (or SKIFF_URL)';
  const dir = join(dataDir, 'agent', 'credentials');
  const file = existsSync(dir) ? readdirSync(dir).find((f) => f.endsWith('.json')) : undefined;
  if (!file) return 'not joined yet';
  const c = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { nodeName: string; certPem: string; keyPem: string; caPem: string };
  const r = await get(new URL(`/api/v1/nodes/${encodeURIComponent(c.nodeName)}`, server), { ca: c.caPem, cert: c.certPem, key: c.keyPem });
  if (r.status !== 200) return `node ${c.nodeName}: ${r.status}`;
  const ready = (JSON.parse(r.body) as any).status?.conditions?.find((x: any) => x.type === 'Ready');
  return ready?.status === 'True' ? 'ready' : `node ${c.nodeName} not Ready yet`;
}
