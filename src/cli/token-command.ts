import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addFlags, COMMON_FLAGS } from './flags.js';

export function tokenCommand(): Command {
  const cmd = new Command('token').description('show the join token of a server');
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
  return cmd;
}
