#!/usr/bin/env node
// skiff's single entry point: `skiff server | agent | token | kubectl`.
import { Command } from 'commander';
import { serverCommand } from './server-command.js';
import { tokenCommand } from './token-command.js';
import { snapshotCommand } from './snapshot-command.js';
import { kubectlCommand } from './kubectl-command.js';
import { hollowCommand } from './hollow-command.js';
import { agentCommand } from './agent-command.js';
import { killallCommand } from './killall-command.js';
import { VERSION } from '../version.js';

const program = new Command('skiff')
  .description('skiff: a lightweight Kubernetes for edge and IoT fleets')
  .version(VERSION.gitVersion)
  .showHelpAfterError();

program.addCommand(serverCommand());
program.addCommand(agentCommand());
program.addCommand(tokenCommand());
program.addCommand(kubectlCommand());
program.addCommand(killallCommand());
program.addCommand(hollowCommand());
program.addCommand(snapshotCommand());

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`skiff: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
