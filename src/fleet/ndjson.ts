// Newline-delimited JSON over a tunnel stream: both ends of the bundles stream use it.
import type { Duplex } from 'node:stream';

/** Calls `onLine` with each parsed line; a line past `maxBytes` or not JSON calls `onError` and stops. */
export function readLines<T>(stream: Duplex, maxBytes: number, onLine: (v: T) => void, onError: (why: string) => void): void {
  let parts: Buffer[] = [];
  let size = 0;
  let failed = false;
  stream.on('data', (chunk: Buffer) => {
    if (failed) return;
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
      parts.push(chunk.subarray(start, nl));
      const line = Buffer.concat(parts).toString('utf8');
      parts = [];
      size = 0;
      start = nl + 1;
      if (!line) continue;
      let v: T;
      try { v = JSON.parse(line) as T; } catch { failed = true; onError('a line is not JSON'); return; }
      onLine(v);
    }
    if (start < chunk.length) { parts.push(chunk.subarray(start)); size += chunk.length - start; }
    if (size > maxBytes) { failed = true; onError(`a line longer than ${maxBytes} bytes`); }
  });
}

export function writeLine(stream: Duplex, v: unknown): boolean {
  if (stream.destroyed || stream.writableEnded) return false;
  return stream.write(JSON.stringify(v) + '\n');
}
