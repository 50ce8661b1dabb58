import { Command } from 'commander';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

// `skiff kubectl ...` runs the system kubectl with the server's admin kubeconfig, like `k3s kubectl`.
export function kubectlCommand(): Command {
  return new Command('kubectl')
    .description('run kubectl against this machine\'s server (uses /etc/skiff/skiff.yaml unless KUBECONFIG is set)')
    .allowUnknownOption(true)
    .helpOption(false)
    .argument('[args...]')
    .action((args: string[]) => {
      const env = { ...process.env };
      if (!env.KUBECONFIG && existsSync('/etc/skiff/skiff.yaml')) env.KUBECONFIG = '/etc/skiff/skiff.yaml';
      const child = spawn('kubectl', args, { stdio: 'inherit', env });
      child.on('exit', (code) => process.exit(code ?? 1));
      child.on('error', (e) => { process.stderr.write(`skiff kubectl: ${e.message}\n`); process.exit(127); });
    });
}
