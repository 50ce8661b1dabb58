// The topology picture: every node as a small tile holding its pods as dots, nodes framed by their
// status (Ready, cordoned, NotReady), pods coloured by phase, tiles grouped by architecture or by any
// node label the user picks. Drawn on a canvas: 5,000 tiles and 50,000 dots are one paint, not
// 55,000 elements. Live from the shared node and pod stores; a click on a tile opens the node.
import { h, clear, coalesce } from '../dom.js';
import type { Ctx, View } from '../view.js';
import { matches } from '../view.js';
import type { NodeP } from '../hub.js';
import type { Row } from '../store.js';

const TILE = 34;          // px per node tile, gap included
const DOT = 4;            // px per pod dot
const PER_ROW = 6;        // dots per row in a tile (36 pods drawn; more are counted in the tooltip)
const HEAD = 26;          // px for a group's heading

interface Tile { name: string; x: number; y: number }

export function topologyView(ctx: Ctx): View {
  const nodes = ctx.hub.nodes();
  const pods = ctx.hub.pods();
  const groupSel = h('select', { 'aria-label': 'group by', 'data-test': 'topology-group' }, h('option', { value: 'kubernetes.io/arch' }, 'architecture'));
  const canvas = h('canvas', { class: 'topology', 'data-test': 'topology', role: 'img', 'aria-label': 'nodes and their pods' });
  const info = h('p', { class: 'muted', 'data-test': 'topology-info' });
  const legend = h('p', { class: 'legend small' },
    ...[['ok', 'Running'], ['warn', 'Pending'], ['done', 'Succeeded'], ['bad', 'Failed']].map(([c, t]) => h('span', {}, h('i', { class: `dot ${c}` }), ` ${t} `)),
    ' · frame: ', h('span', {}, h('i', { class: 'frame ok' }), ' Ready '), h('span', {}, h('i', { class: 'frame warn' }), ' cordoned '), h('span', {}, h('i', { class: 'frame bad' }), ' NotReady'));
  const wrap = h('div', { class: 'card topo-wrap' }, canvas);
  const el = h('div', { class: 'page' }, h('div', { class: 'titlebar' }, h('h1', {}, 'Topology'), h('label', {}, 'group by ', groupSel)), info, legend, wrap);
  let tiles: Tile[] = [];
  let labelKeys = '';

  const css = (name: string) => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
  const draw = () => {
    const q = ctx.search();
    const key = groupSel.value;
    // Pods per node, by phase.
    const perNode = new Map<string, string[]>();
    for (const r of pods.rows.values()) {
      if (!r.p.node) continue;
      let l = perNode.get(r.p.node);
      if (!l) perNode.set(r.p.node, (l = []));
      l.push(r.p.phase);
    }
    const keys = new Set<string>();
    const groups = new Map<string, Row<NodeP>[]>();
    const list = [...nodes.rows.values()].filter((r) => matches(q, r.p.name, ...Object.values(r.p.labels)));
    for (const r of list) {
      for (const k of Object.keys(r.p.labels)) keys.add(k);
      const g = r.p.labels[key] ?? '(none)';
      let l = groups.get(g);
      if (!l) groups.set(g, (l = []));
      l.push(r);
    }
    const sig = [...keys].sort().join('\n');
    if (sig !== labelKeys) {
      labelKeys = sig;
      const keep = groupSel.value;
      clear(groupSel);
      for (const k of [...keys].sort()) groupSel.append(h('option', { value: k }, k === 'kubernetes.io/arch' ? 'architecture' : k));
      groupSel.value = keys.has(keep) ? keep : 'kubernetes.io/arch';
    }
    const width = Math.max(300, wrap.clientWidth - 32);
    const cols = Math.max(1, Math.floor(width / TILE));
    let height = 0;
    const sorted = [...groups].sort(([a], [b]) => a.localeCompare(b));
    for (const [, l] of sorted) height += HEAD + Math.ceil(l.length / cols) * TILE + 8;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.ceil(width * ratio);
    canvas.height = Math.ceil(Math.max(height, 40) * ratio);
    canvas.style.width = `${width}px`;
    canvas.style.height = `${Math.max(height, 40)}px`;
    const g = canvas.getContext('2d');
    if (!g) return;
    g.scale(ratio, ratio);
    const colour = { Running: css('--ok'), Pending: css('--warn'), Succeeded: css('--muted'), Failed: css('--bad'), Unknown: css('--muted') } as Record<string, string>;
    const fg = css('--fg'), line = css('--line');
    g.font = '600 13px system-ui, sans-serif';
    tiles = [];
    let y = 0;
    for (const [name, l] of sorted) {
      g.fillStyle = fg;
      g.fillText(`${name} (${l.length} node${l.length === 1 ? '' : 's'})`, 0, y + 17);
      y += HEAD;
      l.sort((a, b) => a.p.name.localeCompare(b.p.name));
      l.forEach((r, i) => {
        const x = (i % cols) * TILE, ty = y + Math.floor(i / cols) * TILE;
        tiles.push({ name: r.p.name, x, y: ty });
        g.lineWidth = 2;
        g.strokeStyle = r.p.ready !== 'True' ? colour.Failed! : r.p.unschedulable ? colour.Pending! : line;
        g.strokeRect(x + 1, ty + 1, TILE - 4, TILE - 4);
        (perNode.get(r.p.name) ?? []).slice(0, PER_ROW * PER_ROW).forEach((phase, j) => {
          g.fillStyle = colour[phase] ?? colour.Unknown!;
          g.fillRect(x + 4 + (j % PER_ROW) * DOT, ty + 4 + Math.floor(j / PER_ROW) * DOT, DOT - 1, DOT - 1);
        });
      });
      y += Math.ceil(l.length / cols) * TILE + 8;
    }
    info.textContent = nodes.synced && pods.synced ? `${list.length} nodes, ${[...perNode.values()].reduce((n, l) => n + l.length, 0)} pods on them`
      : 'Loading…';
  };
  const tileAt = (ev: MouseEvent) => {
    const r = canvas.getBoundingClientRect();
    const x = ev.clientX - r.left, y = ev.clientY - r.top;
    return tiles.find((t) => x >= t.x && x < t.x + TILE && y >= t.y && y < t.y + TILE);
  };
  canvas.addEventListener('click', (ev) => { const t = tileAt(ev); if (t) ctx.go(`#/node/${encodeURIComponent(t.name)}`); });
  canvas.addEventListener('mousemove', (ev) => { const t = tileAt(ev); canvas.title = t ? t.name : ''; canvas.style.cursor = t ? 'pointer' : 'default'; });
  groupSel.addEventListener('change', draw);
  const resize = new ResizeObserver(coalesce(draw, 200));
  resize.observe(wrap);
  const unsub = [nodes.subscribe(coalesce(draw, 500)), pods.subscribe(coalesce(draw, 500))];
  requestAnimationFrame(draw);   // once the page is in the document and has a width
  return { el, refresh: draw, dispose() { resize.disconnect(); unsub.forEach((u) => u()); } };
}
