import { Command } from 'commander';
import https from 'node:https';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addFlags, COMMON_FLAGS } from './flags.js';
import { parseToken, rotateServerToken } from '../pki/token.js';
import { runningServerPid } from '../server/snapshot.js';
import { TOKEN_PATH } from '../server/token-rotation.js';
import { readIfExists } from '../pki/pem-files.js';
import { PREVIOUS_SUFFIX } from '../pki/ca-files.js';

export function tokenCommand(): Command {
  const cmd = new Command('token').description('show or rotate the join token of a server');
  const show = new Command('show').description('print the node join token (K10<ca hash>::server:<secret>)');
  addFlags(show, COMMON_FLAGS);
  show.action((o: Record<string, any>) => {
    const file = join(o.dataDir, 'server', 'node-token');
    try {
      process.stdout.write(readFileSync(file, 'utf8').trim() + '\n');
    } catch {
      throw new Error(`no token at ${file}: has a server been started with --data-dir ${o.dataDir}?`);
    }
  });
  cmd.addCommand(show);

  const rotate = new Command('rotate').description('replace the join token: new joins need the new one, joined nodes are unaffected, the old one is refused from now on')
    .requiredOption('--new-token <token>', 'the new token (a secret, or a K10 token of this server)')
    .option('-t, --token <token>', 'the current token (authenticates to a remote server; default: the admin certificate of --data-dir)')
    .option('-s, --server <url>', 'the running server (default: the one running on --data-dir, at https://127.0.0.1:6443)');
  addFlags(rotate, COMMON_FLAGS);
  rotate.action(async (o: Record<string, any>) => {
    const running = runningServerPid(o.dataDir);
    if (!o.server && !running) {
      // A stopped server: the files are changed directly and the next start uses them.
      const tls = join(o.dataDir, 'server', 'tls');
      const stored = readIfExists(join(o.dataDir, 'server', 'token'));
      if (!stored) throw new Error(`no token at ${join(o.dataDir, 'server', 'token')}: has a server been started with --data-dir ${o.dataDir}?`);
      const bundle = (readIfExists(join(tls, 'server-ca.crt')) ?? '') + (readIfExists(join(tls, `server-ca${PREVIOUS_SUFFIX}`)) ?? '');
      rotateServerToken(o.dataDir, bundle, parseToken(stored).password, o.newToken);
      process.stdout.write('token rotated (server stopped): start it without the old --token; give new nodes the new token\n');
      return;
    }
    const reply = await post(o.server ?? 'https://127.0.0.1:6443', o.dataDir, o.token, o.newToken);
    process.stdout.write(`token rotated: new nodes join with\n${reply.token}\nreplace the old token in the server's config (--token, SKIFF_TOKEN, config file) so a restart does not use it\n`);
  });
  cmd.addCommand(rotate);
  return cmd;
}

function post(server: string, dataDir: string, current: string | undefined, newToken: string): Promise<{ token: string }> {
  const tls = join(dataDir, 'server', 'tls');
  const admin = !current && existsSync(join(tls, 'client-admin.crt'));
  if (!current && !admin) throw new Error(`no admin certificate under ${tls}: give the current token with --token`);
  const caFile = join(tls, 'server-ca.crt');
  const body = JSON.stringify({ newToken });
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(TOKEN_PATH, server), {
      method: 'POST',
      ...(existsSync(caFile) ? { ca: readFileSync(caFile) } : { rejectUnauthorized: false }),
      ...(admin ? { cert: readFileSync(join(tls, 'client-admin.crt')), key: readFileSync(join(tls, 'client-admin.key')) } : {}),
      headers: {
        'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)),
        ...(current ? { authorization: `Bearer ${parseToken(current).password}` } : {}),
      },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let parsed: any = {};
        try { parsed = JSON.parse(Buffer.concat(chunks).toString() || '{}'); } catch { /* not JSON */ }
        if (res.statusCode === 200) resolve(parsed);
        else reject(new Error(`token rotate: ${parsed.message ?? `HTTP ${res.statusCode}`}`));
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}
