// Structured logs (JSON lines on stderr) through pino. One root logger; modules take children so every
// line names its component. Secrets never go into log fields: redact the usual suspects anyway.
import { pino, type Logger } from 'pino';

export type { Logger };

let root: Logger | undefined;
let outputClosed = false;

export function rootLogger(level = process.env.SKIFF_LOG_LEVEL ?? 'info'): Logger {
  if (!root) {
    root = pino(
      {
        level,
        base: { pid: process.pid },
        redact: { paths: ['token', 'password', 'secret', '*.token', '*.password', 'authorization', 'headers.authorization'], censor: '[redacted]' },
        timestamp: pino.stdTimeFunctions.isoTime,
      },
      logDestination(),
    );
  }
  return root;
}

function logDestination() {
  const d = pino.destination({ fd: 2, sync: false });
  d.on('close', () => { outputClosed = true; });
  return d;
}

/** Throws when log lines can no longer be written (the `log` health check). */
export function checkLogOutput(): void {
  if (outputClosed) throw new Error('log output is closed');
}

export function setLogLevel(level: string): void {
  rootLogger().level = level;
}

export function logger(component: string): Logger {
  return rootLogger().child({ component });
}
