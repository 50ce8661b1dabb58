// `skiff secrets-encrypt status|enable|disable|prepare|rotate|reencrypt|rotate-keys`, as k3s's: each
// calls the running server's admin-only endpoint /v1-skiff/encrypt/<op> with the admin client
// certificate from the data dir, so every change applies to the live server (no restart).
import { Command } from 'commander';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addFlags, COMMON_FLAGS } from './flags.js';
import { formatStatus, type EncryptionStatus } from '../server/secrets-encryption.js';

const OPS: [string, string][] = [
  ['status', 'print the encryption status and rotation stage'],
  ['enable', 'encrypt new Secret writes (run reencrypt to rewrite existing ones)'],
  ['disable', 'store new Secret writes in plaintext (keys are kept to read; run reencrypt)'],
  ['prepare', 'add a new key that reads but does not write yet'],
  ['rotate', 'make the prepared key the one that writes'],
  ['reencrypt', 'rewrite every Secret with the current key and drop retired keys'],
  ['rotate-keys', 'prepare, rotate and reencrypt in one step'],
];

function call(server: string, dataDir: string, op: string): Promise<EncryptionStatus> {
  const tls = join(dataDir, 'server', 'tls');
  const url = new URL(`/v1-skiff/encrypt/${op}`, server);
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      method: op === 'status' ? 'GET' : 'POST',
      ca: readFileSync(join(tls, 'server-ca.crt')),
      cert: readFileSync(join(tls, 'client-admin.crt')),
      key: readFileSync(join(tls, 'client-admin.key')),
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString() || '{}');
        if (res.statusCode === 200) resolve(body as EncryptionStatus);
        else reject(new Error(`${op}: ${body.message ?? `HTTP ${res.statusCode}`}`));
      });
    });
    req.on('error', reject);
    req.end();
  });
}

export function secretsEncryptCommand(): Command {
  const cmd = new Command('secrets-encrypt').description('control secrets encryption at rest on a running server');
  for (const [op, description] of OPS) {
    const sub = new Command(op).description(description)
      .option('-s, --server <url>', 'the server to talk to', 'https://127.0.0.1:6443');
    addFlags(sub, COMMON_FLAGS);
    sub.action(async (o: Record<string, any>) => {
      const status = await call(o.server, o.dataDir, op);
      process.stdout.write(op === 'status' ? formatStatus(status) : `secrets-encrypt ${op}: done\n${formatStatus(status)}`);
    });
    cmd.addCommand(sub);
  }
  return cmd;
}
