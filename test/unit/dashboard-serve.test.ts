// The dashboard's static route: which paths it claims, encodings, cache headers and the CSP, without
// a server (needs `npm run build` for the assets; without them it answers 404 and says why).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { serveDashboard, pickEncoding, CONTENT_SECURITY_POLICY } from '../../src/dashboard/serve.js';
import { REPO_ROOT } from '../helpers/cluster.js';

interface Sent { code: number; headers: Record<string, any>; body?: Buffer }

function call(method: string, url: string, headers: Record<string, string> = {}): { claimed: boolean; sent: Sent } {
  const sent: Sent = { code: 0, headers: {} };
  const res = {
    writeHead(code: number, h: Record<string, any>) { sent.code = code; sent.headers = h; return this; },
    end(b?: Buffer) { sent.body = b; },
  } as unknown as ServerResponse;
  const claimed = serveDashboard({ method, url, headers } as IncomingMessage, res);
  return { claimed, sent };
}

test('pickEncoding prefers brotli, honours q=0, falls back to identity', () => {
  assert.equal(pickEncoding('gzip, deflate, br'), 'br');
  assert.equal(pickEncoding('gzip, br;q=0'), 'gzip');
  assert.equal(pickEncoding('*'), 'gzip');
  assert.equal(pickEncoding('identity'), undefined);
  assert.equal(pickEncoding(''), undefined);
});

test('only /dashboard and below are claimed; methods other than GET/HEAD are refused', () => {
  assert.equal(call('GET', '/api/v1/pods').claimed, false);
  assert.equal(call('GET', '/dashboardx').claimed, false);
  const r = call('GET', '/dashboard');
  assert.equal(r.sent.code, 301);
  assert.equal(r.sent.headers.Location, '/dashboard/');
  const post = call('POST', '/dashboard/');
  assert.equal(post.sent.code, 405);
  assert.equal(post.sent.headers['Content-Security-Policy'], CONTENT_SECURITY_POLICY);
});

test('index and assets: no-cache vs immutable, compressed, strict script policy', { skip: !existsSync(join(REPO_ROOT, 'dist', 'dashboard', 'assets', 'manifest.json')) && 'not built' }, () => {
  const index = call('GET', '/dashboard/', { 'accept-encoding': 'gzip' });
  assert.equal(index.sent.code, 200);
  assert.equal(index.sent.headers['Cache-Control'], 'no-cache');
  assert.equal(index.sent.headers['Content-Encoding'], 'gzip');
  assert.equal(index.sent.headers['X-Content-Type-Options'], 'nosniff');
  assert.match(CONTENT_SECURITY_POLICY, /script-src 'self';/);
  assert.doesNotMatch(CONTENT_SECURITY_POLICY, /unsafe-eval/);
  const plain = call('GET', '/dashboard/index.html');
  const js = /assets\/(main-[A-Z0-9]+\.js)/.exec(plain.sent.body!.toString())![1];
  const asset = call('GET', `/dashboard/assets/${js}?v=1`, { 'accept-encoding': 'br' });
  assert.equal(asset.sent.code, 200);
  assert.equal(asset.sent.headers['Content-Encoding'], 'br');
  assert.equal(asset.sent.headers['Cache-Control'], 'public, max-age=31536000, immutable');
  const head = call('HEAD', `/dashboard/assets/${js}`);
  assert.equal(head.sent.code, 200);
  assert.equal(head.sent.body, undefined);
  assert.equal(call('GET', '/dashboard/assets/../../etc/passwd').sent.code, 404);
  assert.equal(call('GET', '/dashboard/other').sent.code, 404);
});
