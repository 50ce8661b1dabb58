// One SSH connection to a host being installed (`skiff up` / `skiff down`), through ssh2: run a
// command streaming its output, copy files over SFTP, read a remote file. Errors name the host and
// say what failed (connect, auth, command).
import type { Client, ConnectConfig, SFTPWrapper } from 'ssh2';
import { readFileSync } from 'node:fs';
import { knownHostsVerifier } from './known-hosts.js';

export interface SshTarget {
  host: string; port: number; user: string; keyFile: string;
  /** An OpenSSH known_hosts file the host's key must be listed in (strict); absent: not checked, as k3sup. */
  knownHosts?: string;
}

export class SshSession {
  private sftpChannel?: SFTPWrapper;
  private constructor(readonly target: SshTarget, private readonly client: Client) {}

  static async connect(t: SshTarget, timeoutMs = 20_000): Promise<SshSession> {
    let privateKey: Buffer;
    try { privateKey = readFileSync(t.keyFile); } catch (e) { throw new Error(`cannot read the SSH key ${t.keyFile}: ${(e as Error).message}`); }
    const { Client } = await import('ssh2');
    const client = new Client();
    const verifier = t.knownHosts ? knownHostsVerifier(t.knownHosts, t.host, t.port) : undefined;
    const cfg: ConnectConfig = { host: t.host, port: t.port, username: t.user, privateKey, readyTimeout: timeoutMs, keepaliveInterval: 10_000,
      ...(verifier ? { hostVerifier: verifier.verify } : {}) };
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      client.once('error', (e: Error & { level?: string; code?: string }) => {
        if (verifier?.refusal()) reject(new Error(`SSH to ${t.host}:${t.port} refused: ${verifier.refusal()}`));
        else if (e.level === 'client-authentication') reject(new Error(`SSH authentication as ${t.user}@${t.host}:${t.port} failed with key ${t.keyFile} (is its public key in authorized_keys?)`));
        else if (e.level === 'client-timeout') reject(new Error(`SSH to ${t.host}:${t.port} timed out after ${timeoutMs / 1000}s (host unreachable?)`));
        else reject(new Error(`SSH to ${t.host}:${t.port} failed: ${e.code ?? ''} ${e.message}`.replace(/\s+/g, ' ')));
      });
      client.connect(cfg);
    });
    return new SshSession(t, client);
  }

  /** Runs `command`; each output line goes to `onLine`. Resolves with the exit code and the output. */
  exec(command: string, onLine: (line: string, stream: 'stdout' | 'stderr') => void = () => {}): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err, ch) => {
        if (err) { reject(new Error(`${this.target.host}: cannot run a command: ${err.message}`)); return; }
        const out = { stdout: '', stderr: '' };
        const pending = { stdout: '', stderr: '' };
        const feed = (which: 'stdout' | 'stderr') => (d: Buffer) => {
          out[which] += d.toString('utf8');
          pending[which] += d.toString('utf8');
          const lines = pending[which].split('\n');
          pending[which] = lines.pop()!;
          for (const l of lines) onLine(l, which);
        };
        ch.on('data', feed('stdout'));
        ch.stderr.on('data', feed('stderr'));
        ch.on('close', (code: number | null) => {
          for (const which of ['stdout', 'stderr'] as const) if (pending[which]) onLine(pending[which], which);
          resolve({ code: code ?? 255, ...out });
        });
      });
    });
  }

  private async sftp(): Promise<SFTPWrapper> {
    this.sftpChannel ??= await new Promise<SFTPWrapper>((resolve, reject) => {
      this.client.sftp((err, s) => err ? reject(new Error(`${this.target.host}: SFTP: ${err.message}`)) : resolve(s));
    });
    return this.sftpChannel;
  }

  async put(local: string, remote: string, mode = 0o644): Promise<void> {
    const s = await this.sftp();
    await new Promise<void>((resolve, reject) => s.fastPut(local, remote, { mode }, (err) => err ? reject(new Error(`${this.target.host}: copying ${local} to ${remote}: ${err.message}`)) : resolve()));
  }

  async read(remote: string): Promise<string> {
    const s = await this.sftp();
    return new Promise((resolve, reject) => s.readFile(remote, (err: Error | undefined, data: Buffer) => err ? reject(new Error(`${this.target.host}: reading ${remote}: ${err.message}`)) : resolve(data.toString('utf8'))));
  }

  close(): void { this.client.end(); }
}

/** A value as one single-quoted shell word. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
