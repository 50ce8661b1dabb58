import { Command } from 'commander';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

// `skiff uninstall [--keep-data]`: runs the uninstaller install.sh generated for this install (it
// knows the install's paths); the release launcher says where the install is ($SKIFF_HOME).
export function uninstallCommand(): Command {
  return new Command('uninstall')
    .description('uninstall a skiff installed from a release: services, containers, network, program, config and data')
    .option('--keep-data', 'keep <data-dir>/server (the datastore, PKI and token)', false)
    .action((o: { keepData: boolean }) => {
      const script = process.env.SKIFF_HOME ? join(process.env.SKIFF_HOME, 'skiff-uninstall.sh') : '';
      if (!script || !existsSync(script)) {
        process.stderr.write('skiff uninstall: this skiff was not installed from a release (no skiff-uninstall.sh beside it); stop it and run `skiff killall` instead\n');
        process.exit(1);
      }
      const child = spawn(script, o.keepData ? ['--keep-data'] : [], { stdio: 'inherit' });
      child.on('exit', (code) => process.exit(code ?? 1));
      child.on('error', (e) => { process.stderr.write(`skiff uninstall: ${e.message}\n`); process.exit(1); });
    });
}
