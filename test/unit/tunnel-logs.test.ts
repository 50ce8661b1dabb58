// The CRI log reader behind `kubectl logs`, on crafted CRI log files: line parsing (full and partial
// entries), whole files, --tail, --since, --timestamps, --limit-bytes, and -f with appends, rotation
// (rename + new file, as the kubelet rotates) and the end of the stream when the container stops.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { containerLogStream, parseCriLogLine } from '../../src/agent/logs.js';

const dir = mkdtempSync(join(tmpdir(), 'skiff-logs-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

const T = (s: number) => `2026-11-22T10:00:${String(s).padStart(2, '0')}.123456789Z`;
const entry = (s: number, text: string, stream = 'stdout', tag = 'F') => `${T(s)} ${stream} ${tag} ${text}\n`;

function logFile(content: string): string {
  const f = join(dir, `${n++}.log`);
  writeFileSync(f, content);
  return f;
}

function readAll(r: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    r.on('data', (c: Buffer) => { text += c.toString('utf8'); });
    r.once('end', () => resolve(text));
    r.once('error', reject);
  });
}

/** Collects a following stream's output and resolves when it matches. */
function waitFor(r: Readable, pattern: RegExp, timeoutMs = 3_000): { done: Promise<string>; text: () => string } {
  let text = '';
  r.on('data', (c: Buffer) => { text += c.toString('utf8'); });
  const done = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`never matched ${pattern}: ${JSON.stringify(text)}`)), timeoutMs);
    const check = () => { if (pattern.test(text)) { clearTimeout(timer); r.off('data', check); resolve(text); } };
    r.on('data', check);
  });
  return { done, text: () => text };
}

const SAMPLE = entry(1, 'one') + entry(2, 'two', 'stderr') + entry(3, 'thr', 'stdout', 'P') + entry(3, 'ee') + entry(4, 'four');

test('parses CRI log lines: time, stream, partial tag, content with spaces', () => {
  const e = parseCriLogLine(Buffer.from(`${T(1)} stderr P a b  c`))!;
  assert.deepEqual([e.time, e.stream, e.partial, e.content.toString()], [T(1), 'stderr', true, 'a b  c']);
  assert.equal(parseCriLogLine(Buffer.from(`${T(1)} stdout F `))!.content.length, 0);
  assert.equal(parseCriLogLine(Buffer.from('garbage')), undefined);
  assert.equal(parseCriLogLine(Buffer.from(`${T(1)} other F x`)), undefined);
});

test('whole log: contents of both streams, partial entries joined into one line', async () => {
  assert.equal(await readAll(containerLogStream(logFile(SAMPLE))), 'one\ntwo\nthree\nfour\n');
  assert.equal(await readAll(containerLogStream(logFile(''))), '');
});

test('--tail counts file lines from the end; 0 gives nothing; more than there are gives all', async () => {
  const f = logFile(SAMPLE);
  assert.equal(await readAll(containerLogStream(f, { tailLines: 1 })), 'four\n');
  assert.equal(await readAll(containerLogStream(f, { tailLines: 2 })), 'ee\nfour\n');
  assert.equal(await readAll(containerLogStream(f, { tailLines: 0 })), '');
  assert.equal(await readAll(containerLogStream(f, { tailLines: 99 })), 'one\ntwo\nthree\nfour\n');
  // Across the reader's chunk size: the last 3 of 20,000 lines.
  const big = logFile(Array.from({ length: 20_000 }, (_, i) => entry(5, `line ${i}`)).join(''));
  assert.equal(await readAll(containerLogStream(big, { tailLines: 3 })), 'line 19997\nline 19998\nline 19999\n');
});

test('--since skips older entries; --timestamps prefixes each entry with its time', async () => {
  const f = logFile(SAMPLE);
  assert.equal(await readAll(containerLogStream(f, { since: new Date(T(3)) })), 'three\nfour\n');
  assert.equal(await readAll(containerLogStream(f, { tailLines: 1, timestamps: true })), `${T(4)} four\n`);
});

test('--limit-bytes stops after that many bytes, even mid-line', async () => {
  assert.equal(await readAll(containerLogStream(logFile(SAMPLE), { limitBytes: 6 })), 'one\ntw');
});

test('-f: new entries arrive as they are appended, a half-written line only once complete', async () => {
  const f = logFile(entry(1, 'first'));
  const r = containerLogStream(f, { follow: true, pollMs: 10, isRunning: () => true });
  const w = waitFor(r, /first\n/);
  await w.done;
  appendFileSync(f, `${T(2)} stdout F sec`);
  await new Promise((res) => setTimeout(res, 50));
  assert.equal(w.text(), 'first\n', 'an incomplete line is held back');
  appendFileSync(f, 'ond\n');
  await waitFor(r, /second\n/).done;
  r.destroy();
});

test('-f follows the file across rotation (rename, new file at the same path)', async () => {
  const f = logFile(entry(1, 'before'));
  const r = containerLogStream(f, { follow: true, pollMs: 10, isRunning: () => true });
  const w = waitFor(r, /before\nlast-old\nafter\n$/);
  await new Promise((res) => setTimeout(res, 30));
  // The runtime's last line to the old file lands just before the rename; it must not be lost.
  appendFileSync(f, entry(2, 'last-old'));
  renameSync(f, `${f}.20261122-100002`);
  writeFileSync(f, entry(3, 'after'));
  assert.equal(await w.done, 'before\nlast-old\nafter\n');
  r.destroy();
});

test('-f ends once the container stopped and the file is drained', async () => {
  const f = logFile(entry(1, 'a'));
  let running = true;
  const r = containerLogStream(f, { follow: true, pollMs: 10, runningCheckMs: 10, isRunning: () => running });
  const all = readAll(r);
  await new Promise((res) => setTimeout(res, 30));
  appendFileSync(f, entry(2, 'last words'));
  running = false;
  assert.equal(await all, 'a\nlast words\n');
});

test('destroying a follower with nothing new to read stops it (kubectl logs -f went away)', async () => {
  const r = containerLogStream(logFile(entry(1, 'x')), { follow: true, pollMs: 10, isRunning: () => true });
  await waitFor(r, /x\n/).done;
  const closed = new Promise((res) => r.once('close', res));
  r.destroy();
  await Promise.race([closed, new Promise((_, rej) => setTimeout(() => rej(new Error('follower never closed')), 1_000))]);
});

test('a missing file is an error', async () => {
  await assert.rejects(readAll(containerLogStream(join(dir, 'absent.log'))), /ENOENT/);
});
