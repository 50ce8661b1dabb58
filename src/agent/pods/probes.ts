// Container probes with the kubelet's semantics: exec through CRI ExecSync, httpGet and tcpSocket from
// the agent to the pod IP; a result flips only after successThreshold/failureThreshold consecutive
// outcomes; nothing runs before initialDelaySeconds; liveness and readiness wait for the startup probe.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { CriClient } from '../runtime/cri-client.js';
import type { Obj } from './pod-api.js';

export type ProbeKind = 'liveness' | 'readiness' | 'startup';

export interface ProbeOutcome { ok: boolean; output: string }

export interface ProbeTarget {
  cri: CriClient;
  containerId: string;
  container: Obj;
  /** Where httpGet and tcpSocket connect when the probe names no host. */
  host: string;
}

/** Resolves a port given by number or by the name of one of the container's ports. */
export function resolvePort(port: unknown, container: Obj): number {
  if (typeof port === 'number') return port;
  if (typeof port === 'string' && /^\d+$/.test(port)) return Number(port);
  const named = (container.ports ?? []).find((p: Obj) => p.name === port);
  if (!named) throw new Error(`port ${JSON.stringify(port)} is not a port of container ${container.name}`);
  return named.containerPort;
}

const hostPort = (host: string, port: number) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

/** A kubelet-style "handler": exec, httpGet or tcpSocket (probes, and preStop hooks too). */
export async function runHandler(h: Obj, t: ProbeTarget, timeoutSec: number): Promise<ProbeOutcome> {
  if (h.exec) {
    try {
      const r = await t.cri.execSync(t.containerId, h.exec.command ?? [], timeoutSec);
      const output = Buffer.concat([r.stdout, r.stderr]).toString('utf8').trim();
      return { ok: r.exitCode === 0, output: r.exitCode === 0 ? output : output || `command exited with ${r.exitCode}` };
    } catch (err) {
      return { ok: false, output: (err as Error).message };
    }
  }
  if (h.httpGet) return httpGet(h.httpGet, t, timeoutSec);
  if (h.tcpSocket) return tcpSocket(h.tcpSocket, t, timeoutSec);
  if (h.sleep) {
    await new Promise((r) => setTimeout(r, Number(h.sleep.seconds ?? 0) * 1000));
    return { ok: true, output: '' };
  }
  return { ok: false, output: 'probe or hook has no handler skiff supports' };
}

function httpGet(g: Obj, t: ProbeTarget, timeoutSec: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    let port: number;
    try {
      port = resolvePort(g.port, t.container);
    } catch (err) {
      resolve({ ok: false, output: (err as Error).message });
      return;
    }
    const scheme = String(g.scheme ?? 'HTTP').toLowerCase();
    const host = g.host || t.host;
    const path = g.path ? (String(g.path).startsWith('/') ? g.path : `/${g.path}`) : '/';
    const url = `${scheme}://${hostPort(host, port)}${path}`;
    const headers: Record<string, string> = { 'user-agent': 'kube-probe/1.32', accept: '*/*' };
    for (const h of g.httpHeaders ?? []) headers[String(h.name).toLowerCase()] = h.value;
    const mod = scheme === 'https' ? https : http;
    const req = mod.get(url, { headers, timeout: timeoutSec * 1000, rejectUnauthorized: false, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => { if (size < 10_240) { chunks.push(c); size += c.length; } });
      res.on('end', () => {
        const code = res.statusCode ?? 0;
        // 2xx and 3xx succeed (the kubelet follows redirects to the same host; a 3xx is success there too).
        if (code >= 200 && code < 400) resolve({ ok: true, output: '' });
        else resolve({ ok: false, output: `HTTP probe failed with statuscode: ${code}` });
      });
      res.on('error', (err) => resolve({ ok: false, output: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`Get "${url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`)));
    req.on('error', (err) => resolve({ ok: false, output: err.message.startsWith('Get ') ? err.message : `Get "${url}": ${err.message}` }));
  });
}

function tcpSocket(s: Obj, t: ProbeTarget, timeoutSec: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    let port: number;
    try {
      port = resolvePort(s.port, t.container);
    } catch (err) {
      resolve({ ok: false, output: (err as Error).message });
      return;
    }
    const host = s.host || t.host;
    const sock = net.connect({ host, port });
    const timer = setTimeout(() => { sock.destroy(); resolve({ ok: false, output: `dial tcp ${hostPort(host, port)}: i/o timeout` }); }, timeoutSec * 1000);
    sock.once('connect', () => { clearTimeout(timer); sock.destroy(); resolve({ ok: true, output: '' }); });
    sock.once('error', (err) => { clearTimeout(timer); resolve({ ok: false, output: `dial tcp ${hostPort(host, port)}: ${err.message}` }); });
  });
}

export interface ProbeEvents {
  /** The probe's result flipped (after the thresholds). */
  onResult(kind: ProbeKind, ok: boolean): void;
  /** One failed attempt, for the Unhealthy event. */
  onFailure(kind: ProbeKind, output: string): void;
}

/** Probes of one container instance; discarded when the container is replaced. */
export class ContainerProbes {
  /** Readiness starts false (true without a readiness probe); started is true at once without a startup probe. */
  ready: boolean;
  started: boolean;
  /** Set when liveness or startup failed past its threshold: the container must be restarted. */
  failed?: ProbeKind;
  private readonly timers = new Map<ProbeKind, NodeJS.Timeout>();
  private readonly counts = new Map<ProbeKind, { ok: number; fail: number }>();
  private stopped = false;

  constructor(private readonly target: ProbeTarget, private readonly startedAtMs: number, private readonly events: ProbeEvents) {
    const c = target.container;
    this.started = !c.startupProbe;
    this.ready = !c.readinessProbe;
    for (const kind of ['startup', 'liveness', 'readiness'] as const) {
      const p = c[`${kind}Probe`];
      if (!p) continue;
      const first = Math.max(0, startedAtMs + (p.initialDelaySeconds ?? 0) * 1000 - Date.now());
      this.schedule(kind, first);
    }
  }

  private schedule(kind: ProbeKind, ms: number): void {
    if (this.stopped) return;
    this.timers.set(kind, setTimeout(() => void this.tick(kind), ms));
  }

  private async tick(kind: ProbeKind): Promise<void> {
    const p = this.target.container[`${kind}Probe`];
    const period = (p.periodSeconds ?? 10) * 1000;
    // Startup gates the others: they neither run nor count until it has succeeded.
    if (kind !== 'startup' && !this.started) return this.schedule(kind, period);
    const r = await runHandler(p, this.target, p.timeoutSeconds ?? 1);
    if (this.stopped) return;
    const n = this.counts.get(kind) ?? { ok: 0, fail: 0 };
    if (r.ok) { n.ok++; n.fail = 0; } else { n.fail++; n.ok = 0; }
    this.counts.set(kind, n);
    if (!r.ok) this.events.onFailure(kind, r.output);
    if (kind === 'startup') {
      if (r.ok) {
        this.started = true;
        this.events.onResult(kind, true);
        return;   // a started container's startup probe is done
      }
      if (n.fail >= (p.failureThreshold ?? 3)) return this.fail(kind);
    } else if (kind === 'liveness') {
      if (!r.ok && n.fail >= (p.failureThreshold ?? 3)) return this.fail(kind);
    } else {
      const next = r.ok ? (n.ok >= (p.successThreshold ?? 1) ? true : this.ready) : (n.fail >= (p.failureThreshold ?? 3) ? false : this.ready);
      if (next !== this.ready) {
        this.ready = next;
        this.events.onResult(kind, next);
      }
    }
    this.schedule(kind, period);
  }

  /** Liveness or startup gave up: the container is to be killed, and this object replaced with it. */
  private fail(kind: ProbeKind): void {
    this.failed = kind;
    this.events.onResult(kind, false);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
