// `skiff release upload TARBALL`: offers a release to the cluster's rolling upgrades (docs/install.md
// "Upgrades") by sending it to the server's release dir over the API port, with the checksum from the
// SHA256SUMS beside it (as `npm run release` writes them), so the server keeps only what matches. One
// server is enough in an HA cluster: the others fetch a release they lack from it (artifacts.ts).
import { Command } from 'commander';
import https from 'node:https';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

const RELEASES_PATH = '/v1-skiff/releases/';

export function releaseCommand(): Command {
  const cmd = new Command('release').description('release artifacts for rolling upgrades (Upgrade objects)');
  cmd.command('upload').argument('<tarball>', 'skiff-<version>-linux-<arch>.tar.gz, with its SHA256SUMS beside it')
    .description('send a release to the server\'s release dir (checked against its SHA256SUMS line there)')
    .option('--kubeconfig <file>', 'admin kubeconfig of the server (default: $KUBECONFIG, else /etc/skiff/skiff.yaml)')
    .option('--sha256 <hex>', 'the tarball\'s sha256 (default: its line in the SHA256SUMS beside it)')
    .action(async (tarball: string, o: Record<string, any>) => {
      const file = basename(tarball);
      let sha = o.sha256 as string | undefined;
      if (!sha) {
        const sums = join(dirname(tarball), 'SHA256SUMS');
        if (!existsSync(sums)) throw new Error(`no SHA256SUMS beside ${tarball}: pass --sha256`);
        sha = readFileSync(sums, 'utf8').split('\n').find((l) => l.endsWith(`  ${file}`))?.split(' ')[0];
        if (!sha) throw new Error(`${sums} lists no checksum for ${file}`);
      }
      const path = o.kubeconfig ?? process.env.KUBECONFIG?.split(':')[0] ?? '/etc/skiff/skiff.yaml';
      const { parse } = await import('yaml');
      const kc = parse(readFileSync(path, 'utf8')) as any;
      const ctx = kc.contexts?.find((c: any) => c.name === kc['current-context'])?.context ?? kc.contexts?.[0]?.context;
      const cluster = (kc.clusters?.find((c: any) => c.name === ctx?.cluster) ?? kc.clusters?.[0])?.cluster;
      const user = (kc.users?.find((u: any) => u.name === ctx?.user) ?? kc.users?.[0])?.user;
      if (!cluster?.server || !user?.['client-certificate-data']) throw new Error(`${path}: expected a cluster server and a client certificate (an admin kubeconfig)`);
      const b64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64').toString('utf8') : undefined);
      const url = new URL(RELEASES_PATH + encodeURIComponent(file), cluster.server);
      const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = https.request(url, {
          method: 'PUT', ca: b64(cluster['certificate-authority-data']), cert: b64(user['client-certificate-data']), key: b64(user['client-key-data']),
          headers: { 'content-type': 'application/gzip', 'content-length': String(statSync(tarball).size), 'x-skiff-sha256': sha },
        }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        });
        req.on('error', reject);
        createReadStream(tarball).on('error', reject).pipe(req);
      });
      if (r.status !== 201) {
        let message = r.body.slice(0, 500);
        try { message = JSON.parse(r.body).message ?? message; } catch { /* not a Status */ }
        throw new Error(`upload of ${file} refused (HTTP ${r.status}): ${message}`);
      }
      process.stdout.write(`${file} uploaded (sha256 ${sha}); an Upgrade naming its version can use it now (the other servers of an HA cluster fetch it from this one when asked)\n`);
    });
  return cmd;
}
