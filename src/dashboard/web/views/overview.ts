// The overview: nodes by Ready status and by architecture, pods by phase, recent warnings, and CPU /
// memory per node from metrics.k8s.io as small time series (sampled here every 10 s: the metrics API
// has no watch). Counts come from the live stores, so they move as the cluster does.
import uPlot from 'uplot';
import { h, clear, age, badge, coalesce } from '../dom.js';
import { getJson } from '../api.js';
import { type Ctx, type View, matches } from '../view.js';

const SAMPLE_MS = 10_000;
const KEEP = 60;           // 10 minutes of samples
const SERIES = 6;          // nodes drawn per chart (the busiest)

interface Sample { t: number; cpu: Map<string, number>; mem: Map<string, number> }
const samples: Sample[] = [];

function cpuCores(q: string): number {
  const m = /^([\d.]+)(n|u|m)?$/.exec(q);
  if (!m) return 0;
  const v = Number(m[1]);
  return m[2] === 'n' ? v / 1e9 : m[2] === 'u' ? v / 1e6 : m[2] === 'm' ? v / 1e3 : v;
}
function bytes(q: string): number {
  const m = /^([\d.]+)(Ki|Mi|Gi|Ti|k|M|G)?$/.exec(q);
  if (!m) return 0;
  const mult: Record<string, number> = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, k: 1e3, M: 1e6, G: 1e9 };
  return Number(m[1]) * (m[2] ? mult[m[2]]! : 1);
}

export function overviewView(ctx: Ctx): View {
  const nodes = ctx.hub.nodes();
  const pods = ctx.hub.pods();
  const deps = ctx.hub.deployments();
  const warns = ctx.hub.warnings();

  const nodeCard = h('section', { class: 'card', 'data-test': 'nodes-card' });
  const podCard = h('section', { class: 'card', 'data-test': 'pods-card' });
  const depCard = h('section', { class: 'card', 'data-test': 'deployments-card' });
  const warnCard = h('section', { class: 'card wide', 'data-test': 'warnings-card' });
  const cpuBox = h('div', { class: 'chart' });
  const memBox = h('div', { class: 'chart' });
  const metricsNote = h('p', { class: 'muted' }, 'Waiting for the first metrics sample…');
  const chartCard = h('section', { class: 'card wide' }, h('h2', {}, 'CPU and memory per node'), metricsNote, h('div', { class: 'charts' }, cpuBox, memBox));
  const el = h('div', { class: 'grid' }, nodeCard, podCard, depCard, chartCard, warnCard);

  const stat = (label: string, value: number | string, test: string, cls = '') =>
    h('div', { class: `stat ${cls}` }, h('span', { class: 'num', 'data-test': test }, String(value)), h('span', { class: 'label' }, label));
  const status = (s: { synced: boolean; error: string; rows: Map<string, unknown>; total: number }) => s.error ? h('p', { class: 'error' }, s.error)
    : !s.synced ? h('p', { class: 'muted' }, s.rows.size ? `Loading… ${s.rows.size} of ${s.total}` : 'Loading…') : null;

  function drawNodes(): void {
    let ready = 0, notReady = 0, unknown = 0, cordoned = 0;
    const arch = new Map<string, number>();
    for (const r of nodes.rows.values()) {
      if (r.p.ready === 'True') ready++; else if (r.p.ready === 'False') notReady++; else unknown++;
      if (r.p.unschedulable) cordoned++;
      arch.set(r.p.arch, (arch.get(r.p.arch) ?? 0) + 1);
    }
    clear(nodeCard);
    nodeCard.append(h('h2', {}, h('a', { href: '#/nodes' }, 'Nodes')), status(nodes) ?? '',
      h('div', { class: 'stats' }, stat('total', nodes.total, 'nodes-total'), stat('Ready', ready, 'nodes-ready', 'ok'),
        stat('NotReady', notReady, 'nodes-notready', notReady ? 'bad' : ''), stat('Unknown', unknown, 'nodes-unknown', unknown ? 'warn' : ''),
        stat('cordoned', cordoned, 'nodes-cordoned', cordoned ? 'warn' : '')),
      h('ul', { class: 'tags' }, [...arch].sort().map(([a, n]) => h('li', { 'data-test': `arch-${a}` }, `${a}: ${n}`))));
  }

  function drawPods(): void {
    const phases = new Map<string, number>([['Running', 0], ['Pending', 0], ['Succeeded', 0], ['Failed', 0]]);
    for (const r of pods.rows.values()) phases.set(r.p.phase, (phases.get(r.p.phase) ?? 0) + 1);
    clear(podCard);
    podCard.append(h('h2', {}, h('a', { href: '#/pods' }, 'Pods')), status(pods) ?? '',
      h('div', { class: 'stats' }, stat('total', pods.total, 'pods-total'),
        [...phases].map(([p, n]) => stat(p, n, `pods-${p}`, n && p === 'Failed' ? 'bad' : n && p === 'Pending' ? 'warn' : n && p === 'Running' ? 'ok' : ''))));
  }

  function drawDeps(): void {
    let healthy = 0;
    for (const r of deps.rows.values()) if (r.p.available >= r.p.replicas) healthy++;
    clear(depCard);
    depCard.append(h('h2', {}, h('a', { href: '#/workloads' }, 'Deployments')), status(deps) ?? '',
      h('div', { class: 'stats' }, stat('total', deps.rows.size, 'deployments-total'), stat('available', healthy, 'deployments-available', 'ok'),
        stat('progressing', deps.rows.size - healthy, 'deployments-progressing', deps.rows.size - healthy ? 'warn' : '')));
  }

  function drawWarnings(): void {
    const q = ctx.search();
    const list = [...warns.rows.values()].map((r) => r.p).filter((e) => matches(q, e.object, e.reason, e.message))
      .sort((a, b) => b.last.localeCompare(a.last)).slice(0, 15);
    clear(warnCard);
    warnCard.append(h('h2', {}, 'Recent warnings'), status(warns) ?? '',
      list.length ? h('ul', { class: 'events' }, list.map((e) => h('li', {},
        badge(e.reason), ' ', h('span', { class: 'muted' }, `${e.ns ? e.ns + '/' : ''}${e.object}`), ' ', e.message,
        h('span', { class: 'muted' }, ` ×${e.count}, ${age(e.last)} ago`)))) : h('p', { class: 'muted' }, 'No warnings.'));
  }

  // ---- charts ----
  let cpuPlot: uPlot | undefined, memPlot: uPlot | undefined, plotted = '';
  function drawCharts(): void {
    if (!samples.length) return;
    const last = samples[samples.length - 1]!;
    if (!last.cpu.size) { metricsNote.textContent = 'No node metrics yet (metrics.k8s.io returned no nodes).'; return; }
    metricsNote.textContent = '';
    const top = [...last.cpu].sort((a, b) => b[1] - a[1]).slice(0, SERIES).map(([n]) => n).sort();
    const xs = samples.map((s) => s.t / 1000);
    const width = Math.max(260, Math.min(560, (chartCard.clientWidth || 600) / (chartCard.clientWidth > 700 ? 2 : 1) - 24));
    const palette = ['#3b82f6', '#10b981', '#f59e0b', '#ef4444', '#8b5cf6', '#06b6d4'];
    const make = (box: HTMLElement, title: string, pick: (s: Sample) => Map<string, number>, fmt: (v: number) => string) => {
      clear(box);
      return new uPlot({
        title, width, height: 160, legend: { show: true }, cursor: { drag: { x: false, y: false } },
        // From zero: a flat line near 2 cores must not look like a swing.
        scales: { y: { range: (_u: uPlot, _min: number, max: number) => [0, max > 0 ? max * 1.15 : 1] } },
        axes: [{ stroke: 'currentColor' }, { stroke: 'currentColor', values: (_u: uPlot, vals: number[]) => vals.map(fmt), size: 70 }],
        series: [{}, ...top.map((n, i) => ({ label: n, stroke: palette[i % palette.length], width: 1.5, value: (_u: uPlot, v: number | null) => v == null ? '–' : fmt(v) }))],
      }, [xs, ...top.map((n) => samples.map((s) => pick(s).get(n) ?? null))] as uPlot.AlignedData, box);
    };
    const sig = `${top.join(',')}|${width}`;
    if (sig !== plotted || !cpuPlot || !memPlot) {
      cpuPlot?.destroy(); memPlot?.destroy();
      cpuPlot = make(cpuBox, 'CPU (cores)', (s) => s.cpu, (v) => v.toFixed(2));
      memPlot = make(memBox, 'Memory (working set)', (s) => s.mem, (v) => v >= 1024 ** 3 ? `${(v / 1024 ** 3).toFixed(1)} Gi` : `${(v / 1024 ** 2).toFixed(0)} Mi`);
      plotted = sig;
    } else {
      cpuPlot.setData([xs, ...top.map((n) => samples.map((s) => s.cpu.get(n) ?? null))] as uPlot.AlignedData);
      memPlot.setData([xs, ...top.map((n) => samples.map((s) => s.mem.get(n) ?? null))] as uPlot.AlignedData);
    }
  }
  async function sample(): Promise<void> {
    try {
      const list = await getJson('/apis/metrics.k8s.io/v1beta1/nodes');
      const s: Sample = { t: Date.now(), cpu: new Map(), mem: new Map() };
      for (const m of list.items ?? []) {
        s.cpu.set(m.metadata?.name, cpuCores(String(m.usage?.cpu ?? '0')));
        s.mem.set(m.metadata?.name, bytes(String(m.usage?.memory ?? '0')));
      }
      samples.push(s);
      if (samples.length > KEEP) samples.shift();
      drawCharts();
    } catch (e) {
      metricsNote.textContent = `Metrics unavailable: ${e instanceof Error ? e.message : String(e)}`;
    }
  }
  void sample();
  const timer = setInterval(() => void sample(), SAMPLE_MS);

  const unsub = [
    nodes.subscribe(coalesce(drawNodes, 150)), pods.subscribe(coalesce(drawPods, 150)),
    deps.subscribe(coalesce(drawDeps, 150)), warns.subscribe(coalesce(drawWarnings, 300)),
  ];
  const refresh = () => { drawNodes(); drawPods(); drawDeps(); drawWarnings(); };
  refresh();
  drawCharts();
  return { el, refresh, dispose() { clearInterval(timer); unsub.forEach((u) => u()); cpuPlot?.destroy(); memPlot?.destroy(); } };
}
