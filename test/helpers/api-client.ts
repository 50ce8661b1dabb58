// A raw HTTPS client for the API, built from a kubeconfig: the end-to-end suites and the benchmark
// need to send bytes no typed client would send (broken bodies, odd content types, bad query
// strings) and to see status codes and headers exactly as the server wrote them.
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';

export interface Credentials {
  server: string;          // https://127.0.0.1:PORT
  ca: string;              // PEM
  cert?: string;           // PEM client certificate
  key?: string;            // PEM client key
  token?: string;          // bearer token
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface RequestOptions {
  /** An object is sent as JSON; a string or Buffer as is. */
  body?: unknown;
  contentType?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/** Reads the current context's server and credentials (inline `*-data` or file paths). */
export function credentialsFromKubeconfig(path: string): Credentials {
  const kc = parseYaml(readFileSync(path, 'utf8')) as any;
  const ctxName = kc['current-context'] ?? kc.contexts?.[0]?.name;
  const ctx = kc.contexts.find((c: any) => c.name === ctxName).context;
  const cluster = kc.clusters.find((c: any) => c.name === ctx.cluster).cluster;
  const user = kc.users.find((u: any) => u.name === ctx.user).user;
  const base = dirname(path);
  const pem = (data: string | undefined, file: string | undefined): string | undefined =>
    data ? Buffer.from(data, 'base64').toString('utf8') : file ? readFileSync(resolve(base, file), 'utf8') : undefined;
  return {
    server: cluster.server,
    ca: pem(cluster['certificate-authority-data'], cluster['certificate-authority'])!,
    cert: pem(user['client-certificate-data'], user['client-certificate']),
    key: pem(user['client-key-data'], user['client-key']),
    token: user.token,
  };
}

export class ApiClient {
  readonly agent: https.Agent;
  private readonly url: URL;

  constructor(readonly creds: Credentials, opts: { keepAlive?: boolean; maxSockets?: number } = {}) {
    this.url = new URL(creds.server);
    this.agent = new https.Agent({
      keepAlive: opts.keepAlive ?? true,
      maxSockets: opts.maxSockets ?? Infinity,
      ca: creds.ca, cert: creds.cert, key: creds.key,
    });
  }

  static fromKubeconfig(path: string, opts?: { keepAlive?: boolean; maxSockets?: number }): ApiClient {
    return new ApiClient(credentialsFromKubeconfig(path), opts);
  }

  /** The same server with other credentials (another user, none at all). */
  withCredentials(change: Partial<Credentials>): ApiClient {
    return new ApiClient({ ...this.creds, ...change });
  }

  request(method: string, path: string, opts: RequestOptions = {}): Promise<Reply> {
    const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
    if (this.creds.token) headers.authorization = `Bearer ${this.creds.token}`;
    let payload: Buffer | undefined;
    if (opts.body !== undefined) {
      payload = Buffer.isBuffer(opts.body) ? opts.body
        : Buffer.from(typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body));
      headers['content-type'] = opts.contentType ?? 'application/json';
      headers['content-length'] = String(payload.length);
    }
    return new Promise((resolvePromise, reject) => {
      const req = https.request({
        host: this.url.hostname, port: this.url.port, method, path, headers, agent: this.agent,
        timeout: opts.timeoutMs ?? 15_000,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolvePromise({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${opts.timeoutMs ?? 15_000} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  get(path: string, opts?: RequestOptions): Promise<Reply> { return this.request('GET', path, opts); }
  post(path: string, body: unknown, opts?: RequestOptions): Promise<Reply> { return this.request('POST', path, { ...opts, body }); }
  put(path: string, body: unknown, opts?: RequestOptions): Promise<Reply> { return this.request('PUT', path, { ...opts, body }); }
  delete(path: string, opts?: RequestOptions): Promise<Reply> { return this.request('DELETE', path, opts); }

  /** Opens a watch (or any streamed GET) and hands each JSON line to the caller. */
  watch(path: string, onEvent: (ev: WatchEvent) => void): Promise<WatchStream> {
    return new Promise((resolvePromise, reject) => {
      const headers: Record<string, string> = { accept: 'application/json' };
      if (this.creds.token) headers.authorization = `Bearer ${this.creds.token}`;
      let answered = false;
      const req = https.request({ host: this.url.hostname, port: this.url.port, method: 'GET', path, headers, agent: this.agent }, (res) => {
        answered = true;
        let buf = '';
        let body = '';
        const stream: WatchStream = {
          status: res.statusCode!, headers: res.headers,
          ended: new Promise((r) => { res.on('end', () => r()); res.on('close', () => r()); res.on('error', () => r()); }),
          body: () => body,
          close: () => req.destroy(),
        };
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          if (res.statusCode !== 200) { body += d; return; }
          buf += d;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (line) onEvent(JSON.parse(line) as WatchEvent);
          }
        });
        res.on('error', () => { /* closing a watch aborts its response; nothing to report */ });
        resolvePromise(stream);
      });
      // Once the stream is handed over, errors are the caller's own close() or the server going away.
      req.on('error', (e) => { if (!answered) reject(e); });
      req.end();
    });
  }

  close(): void { this.agent.destroy(); }
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: any;
}

export interface WatchStream {
  status: number;
  headers: IncomingHttpHeaders;
  /** Resolves when the server ends the stream or it is closed. */
  ended: Promise<void>;
  /** The body of a non-200 answer. */
  body: () => string;
  close: () => void;
}

/** Parses a reply as JSON, failing with the raw reply in the message when it is not JSON. */
export function json(reply: Reply, what = 'reply'): any {
  try {
    return JSON.parse(reply.body);
  } catch {
    assert.fail(`${what}: not JSON (HTTP ${reply.status}, content-type ${reply.headers['content-type']}): ${reply.body.slice(0, 300)}`);
  }
}

/**
 * Asserts the reply is a Kubernetes failure `Status` with this code (and reason, when given), as
 * every API error must be: kubectl and the client libraries print `message` and branch on `reason`.
 */
export function assertStatus(reply: Reply, code: number | number[], reason?: string | string[], what = 'reply'): any {
  const codes = Array.isArray(code) ? code : [code];
  const desc = `${what}: HTTP ${reply.status} ${reply.body.slice(0, 400)}`;
  assert.ok(codes.includes(reply.status), `${desc}\nexpected HTTP ${codes.join(' or ')}`);
  assert.match(String(reply.headers['content-type']), /^application\/json/, `${desc}\nexpected a JSON Status`);
  const s = json(reply, what);
  assert.equal(s.kind, 'Status', desc);
  assert.equal(s.apiVersion, 'v1', desc);
  assert.equal(s.status, 'Failure', desc);
  assert.equal(s.code, reply.status, `${desc}\nStatus.code must equal the HTTP code`);
  assert.equal(typeof s.message, 'string', desc);
  assert.ok(s.message.length > 0, `${desc}\nStatus.message is empty`);
  if (reason !== undefined) {
    const reasons = Array.isArray(reason) ? reason : [reason];
    assert.ok(reasons.includes(s.reason ?? ''), `${desc}\nexpected reason ${reasons.join(' or ')}, got ${s.reason}`);
  }
  return s;
}

/** Polls `/readyz` until it answers 200 `ok` or the deadline passes. */
export async function waitReady(client: ApiClient, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const r = await client.get('/readyz', { timeoutMs: 1000 });
      if (r.status === 200) return;
      last = `HTTP ${r.status} ${r.body}`;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`/readyz not ok after ${timeoutMs} ms: ${last}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
