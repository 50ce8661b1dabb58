// `skiff certificate check|rotate|rotate-ca`, as k3s's. `check` reads the files; `rotate` and
// `rotate-ca` change them on a stopped server (k3s's `certificate rotate` also wants the server
// stopped; its rotate-ca writes the datastore of a running server, but skiff keeps its CAs only on
// disk, so here the server is stopped and then started again to take them up).
import { Command } from 'commander';
import { resolve } from 'node:path';
import { addFlags, COMMON_FLAGS } from './flags.js';
import { formatTable, formatText, listCertificates, rotateLeaves, SERVICES } from '../pki/cert-inventory.js';
import { runningServerPid } from '../server/snapshot.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}

function refuseWhileRunning(dataDir: string, what: string): void {
  const pid = runningServerPid(dataDir);
  if (pid) throw new Error(`a server (pid ${pid}) is running on ${dataDir}: stop it before ${what}, then start it again`);
}

export function certificateCommand(): Command {
  const cmd = new Command('certificate').description('check and rotate the cluster certificates');

  const check = new Command('check').description('list each certificate with its expiry and status (OK, WARNING inside the renewal window, EXPIRED)')
    .option('--output <format>', 'table or text', 'text');
  addFlags(check, COMMON_FLAGS);
  check.action((o: Record<string, any>) => {
    if (o.output !== 'table' && o.output !== 'text') throw new Error(`--output must be table or text, not ${o.output}`);
    const rows = listCertificates(o.dataDir);
    if (!rows.length) throw new Error(`no certificates under ${o.dataDir}: has a server been started with --data-dir ${o.dataDir}?`);
    process.stdout.write(o.output === 'table' ? formatTable(rows) : formatText(rows));
  });

  const rotate = new Command('rotate').description('renew leaf certificates and their keys at the next start (stop the server first); the old ones are kept in server/tls-<time>')
    .option('-s, --service <name>', `services to rotate (repeatable or comma-separated; default all): ${Object.keys(SERVICES).join(', ')}`, collect, []);
  addFlags(rotate, COMMON_FLAGS);
  rotate.action((o: Record<string, any>) => {
    refuseWhileRunning(o.dataDir, 'rotating certificates');
    const r = rotateLeaves(o.dataDir, o.service);
    if (r.ignored.length) process.stdout.write(`no separate certificate in skiff for ${r.ignored.join(', ')} (part of the server or agent)\n`);
    if (!r.backupDir) return;
    process.stdout.write(`certificates backed up to ${r.backupDir}\n${r.rotated.map((f) => `rotated ${f}\n`).join('')}`
      + 'start the server to issue the new certificates; restart agents that use a rotated kubelet certificate\n');
  });

  const rotateCa = new Command('rotate-ca').description('replace the cluster CAs with those in --path (generated there when it holds none), keeping the old CAs trusted until --finish')
    .option('--path <dir>', 'folder with server-ca.crt/.key, client-ca.crt/.key, optionally request-header-ca.crt/.key and service.key (ServiceAccount signing key; alone: rotates only that key)')
    .option('--force', 'no overlap: do not cross-sign, stop trusting the old CAs at once (every node must rejoin)', false)
    .option('--finish', 'end the overlap of a previous rotate-ca: stop trusting the old CAs', false);
  addFlags(rotateCa, COMMON_FLAGS);
  rotateCa.action(async (o: Record<string, any>) => {
    refuseWhileRunning(o.dataDir, 'rotating the CA');
    // Loaded on demand: the X.509 stack is only needed here.
    const { finishCaRotation, rotateCa: rotate } = await import('../pki/ca-rotation.js');
    if (o.finish) {
      const removed = finishCaRotation(o.dataDir);
      process.stdout.write(removed.length ? `no longer trusted: ${removed.join(', ')}\nstart the server again\n` : 'no CA rotation in progress\n');
      return;
    }
    if (!o.path) throw new Error('--path is required');
    const r = await rotate({ dataDir: o.dataDir, path: resolve(o.path), force: o.force });
    process.stdout.write([
      r.generated ? `generated new CA certificates and keys in ${resolve(o.path)}` : `using the CA certificates and keys in ${resolve(o.path)}`,
      `certificates backed up to ${r.backupDir}`,
      `rotated: ${r.rotated.join(', ')}`,
      r.overlap
        ? 'the old CAs stay trusted (cross-signed) until `skiff certificate rotate-ca --finish`; start the server, give new nodes the new token (`skiff token show`), and finish once every node has restarted or renewed its certificate'
        : 'the old CAs are no longer trusted: every node must rejoin with the new token (`skiff token show` after the server starts)',
    ].join('\n') + '\n');
  });

  cmd.addCommand(check);
  cmd.addCommand(rotate);
  cmd.addCommand(rotateCa);
  return cmd;
}
