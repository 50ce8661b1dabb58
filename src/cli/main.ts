#!/usr/bin/env node
// skiff's single entry point: `skiff server | agent | token | kubectl`.
import { Command } from 'commander';
import { serverCommand } from './server-command.js';
import { tokenCommand } from './token-command.js';
import { certificateCommand } from './certificate-command.js';
import { snapshotCommand } from './snapshot-command.js';
import { secretsEncryptCommand } from './secrets-encrypt-command.js';
import { kubectlCommand } from './kubectl-command.js';
import { hollowCommand } from './hollow-command.js';
import { agentCommand } from './agent-command.js';
import { killallCommand } from './killall-command.js';
import { checkConfigCommand } from './check-config-command.js';
import { uninstallCommand } from './uninstall-command.js';
import { waitReadyCommand } from './wait-ready-command.js';
import { downCommand, upCommand } from './up-command.js';
import { dashboardCommand } from './dashboard-command.js';
import { fleetCommand } from './fleet-command.js';
import { hollowClustersCommand } from './hollow-clusters-command.js';
import { releaseCommand } from './release-command.js';
import { VERSION } from '../version.js';
import { applyConfig, configFileFrom, readConfig } from './config-file.js';
import { envForFlag } from './flags.js';

const program = new Command('skiff')
  .description('skiff: a lightweight Kubernetes for edge and IoT fleets')
  .version(VERSION.gitVersion)
  .showHelpAfterError();

program.addCommand(serverCommand());
program.addCommand(agentCommand());
program.addCommand(tokenCommand());
program.addCommand(certificateCommand());
program.addCommand(kubectlCommand());
program.addCommand(killallCommand());
program.addCommand(hollowCommand());
program.addCommand(snapshotCommand());
program.addCommand(checkConfigCommand());
program.addCommand(uninstallCommand());
program.addCommand(waitReadyCommand());
program.addCommand(upCommand());
program.addCommand(downCommand());
program.addCommand(secretsEncryptCommand());
program.addCommand(dashboardCommand());
program.addCommand(fleetCommand());
program.addCommand(hollowClustersCommand());
program.addCommand(releaseCommand());

// The config file fills in flags before they are parsed (through their environment twins).
async function loadConfigFile(): Promise<void> {
  const { file, explicit } = configFileFrom(process.argv.slice(2));
  const unknown = applyConfig(await readConfig(file, explicit), envForFlag);
  if (unknown.length) process.stderr.write(`skiff: ignoring unknown keys in ${file}: ${unknown.join(', ')}\n`);
}

loadConfigFile().then(() => program.parseAsync(process.argv)).catch((err: unknown) => {
  process.stderr.write(`skiff: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
