// `skiff hollow-clusters`: N simulated sites in one process (the fleet's kubemark), each registering,
// holding its own tunnel with its own certificate, heartbeating and reporting a fixed set of nodes
// exactly as a real site does (the same SiteConnection). They have no API: a forwarded request is
// answered 503. They take bundles as a site does (the same stream) and report them applied at once
// and Ready unless a container image matches `unpullableImages` (a simulated pull failure: what a
// staged rollout's health gate must catch). For tests and bench/fleet.ts.
import https from 'node:https';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TunnelStream } from '../tunnel/mux.js';
import { SECRET_MODE, writeFileAtomic } from '../pki/pem-files.js';
import { logger } from '../util/log.js';
import { SiteConnection, type IdentityStore, type SiteIdentity } from './site-connection.js';
import type { Report } from './protocol.js';
import { formatMemory } from './site.js';
import { parseResources } from './customize.js';
import { MAX_BUNDLE_LINE_BYTES, type FromSite, type ToSite } from './protocol.js';
import { readLines, writeLine } from './ndjson.js';

const log = logger('hollow-clusters');

export interface HollowClustersOptions {
  server: string;
  token: string;
  count: number;
  namePrefix: string;
  labels: Record<string, string>;
  /** Nodes each simulated site reports (all Ready). */
  nodes: number;
  heartbeatMs: number;
  /** Identities are kept here (one file per cluster) so a rerun reconnects without registering. */
  dataDir?: string;
  /** Sites starting at once (registration costs the manager a certificate each). */
  concurrency: number;
  version?: string;
  /** Images a hollow cluster "fails to pull": deployments naming one never turn Ready. */
  unpullableImages?: RegExp;
}

export class HollowClusters {
  readonly sites: SiteConnection[] = [];
  /** Per site: deployment key → applied version (what a returning site says it has). */
  readonly applied = new Map<string, Map<string, string>>();
  /** Bundle deployments received, over all sites (the benchmark's count). */
  deploysReceived = 0;

  constructor(private readonly o: HollowClustersOptions) {}

  /** Starts every site; resolves when all are connected (or rejects after `timeoutMs`). */
  async start(timeoutMs = 600_000): Promise<void> {
    const ca = await fetchCa(this.o.server);
    const report: Report = {
      version: this.o.version ?? 'v1.32.4+skiff-hollow', labels: this.o.labels,
      nodes: { ready: this.o.nodes, total: this.o.nodes },
      capacity: { cpu: String(4 * this.o.nodes), memory: formatMemory(8 * 2 ** 30 * this.o.nodes), pods: String(110 * this.o.nodes) },
    };
    const deadline = Date.now() + timeoutMs;
    let next = 0;
    const lane = async () => {
      while (next < this.o.count) {
        const i = next++;
        const name = `${this.o.namePrefix}${i}`;
        const labels = { ...this.o.labels, 'fleet.skiff.io/hollow-index': String(i) };
        const site = new SiteConnection({
          managerUrl: this.o.server, token: this.o.token, name, labels, caPem: ca,
          store: this.o.dataDir ? dirStore(this.o.dataDir, name) : memoryStore(),
          heartbeatMs: this.o.heartbeatMs,
          report: () => ({ ...report, labels }),
          serveApi: refuseApi,
          serveBundles: (stream) => this.serveBundles(name, stream),
          log: log.child({ cluster: name }),
        });
        this.sites.push(site);
        site.start();
        await new Promise<void>((resolve, reject) => {
          if (site.connected) return resolve();
          const t = setInterval(() => {
            if (site.connected) { clearInterval(t); resolve(); } else if (Date.now() > deadline) { clearInterval(t); reject(new Error(`${name} not connected: ${site.lastRefusal || 'timed out'}`)); }
          }, 20);
        });
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.o.concurrency) }, lane));
  }

  private serveBundles(name: string, stream: TunnelStream): void {
    stream.accept();
    let applied = this.applied.get(name);
    if (!applied) { applied = new Map(); this.applied.set(name, applied); }
    const mine = applied;
    writeLine(stream, { t: 'hello', applied: Object.fromEntries(mine) } satisfies FromSite);
    readLines<ToSite>(stream, MAX_BUNDLE_LINE_BYTES, (m) => {
      if (m.t === 'sync') { for (const k of [...mine.keys()]) if (!m.keys.includes(k)) mine.delete(k); return; }
      this.deploysReceived++;
      mine.set(m.key, m.deploymentID);
      let images: string[] = [];
      let objects = 0;
      let error: string | undefined;
      try { const objs = parseResources(m.resources); objects = objs.length; images = imagesOf(objs); } catch (e) { error = (e as Error).message; }
      const bad = images.filter((i) => this.o.unpullableImages?.test(i));
      writeLine(stream, {
        t: 'status', key: m.key, appliedDeploymentID: m.deploymentID, ready: !error && bad.length === 0, resources: objects,
        ...(error ? { error: true, message: error } : bad.length ? { message: `ErrImagePull: ${bad.join(', ')} (simulated)` } : {}),
      } satisfies FromSite);
    }, () => stream.destroy());
  }

  connected(): number {
    return this.sites.filter((s) => s.connected).length;
  }

  /** Bytes on the wire so far (TLS records, both directions), over all sites. */
  stats(): { written: number; read: number; heartbeats: number } {
    let written = 0, read = 0, heartbeats = 0;
    for (const s of this.sites) {
      const live = (s as unknown as { ws?: { _socket?: { bytesWritten: number; bytesRead: number } } }).ws?._socket;
      written += s.bytesWritten + (live?.bytesWritten ?? 0);
      read += s.bytesRead + (live?.bytesRead ?? 0);
      heartbeats += s.heartbeats;
    }
    return { written, read, heartbeats };
  }

  /** Stops sites [from, to): the test's way of taking some offline. */
  stopRange(from: number, to: number): void {
    for (const s of this.sites.slice(from, to)) s.stop();
  }

  stop(): void {
    for (const s of this.sites) s.stop();
  }
}

function imagesOf(v: unknown, out: string[] = []): string[] {
  if (Array.isArray(v)) for (const x of v) imagesOf(x, out);
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) { if (k === 'image' && typeof x === 'string') out.push(x); else imagesOf(x, out); }
  }
  return out;
}

function refuseApi(stream: TunnelStream): void {
  stream.reject({ code: 503, message: 'a hollow cluster has no API' });
}

function memoryStore(): IdentityStore {
  let id: SiteIdentity | undefined;
  return { load: () => id, save: (v) => { id = { ...v }; } };
}

function dirStore(dir: string, name: string): IdentityStore {
  const file = join(dir, `${name}.json`);
  return {
    load() { try { return JSON.parse(readFileSync(file, 'utf8')) as SiteIdentity; } catch { return undefined; } },
    save(v) { mkdirSync(dir, { recursive: true, mode: 0o700 }); writeFileAtomic(file, JSON.stringify(v), SECRET_MODE); },
  };
}

function fetchCa(server: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https.get(new URL('/cacerts', server), { rejectUnauthorized: false, timeout: 30_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => { body += c; }).on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET /cacerts: ${res.statusCode}`))));
    }).on('error', reject);
  });
}
