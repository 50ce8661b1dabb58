// Nodes: the list (virtualized, live) and one node's detail — conditions, capacity/allocatable,
// taints, labels, its pods — with cordon/uncordon for users allowed to patch nodes.
import { h, clear, age, badge, coalesce } from '../dom.js';
import { can, onPermissionsChange, send, MERGE_PATCH } from '../api.js';
import { Store } from '../store.js';
import type { NodeP, PodP } from '../hub.js';
import type { Row } from '../store.js';
import { VTable } from '../vtable.js';
import { drain, planDrain, type DrainPlan, type DrainPod } from '../drain.js';
import { type Ctx, type View, act, matches } from '../view.js';

function cordonButton(ctx: Ctx, name: string, unschedulable: boolean): HTMLElement | null {
  if (can({ verb: 'patch', resource: 'nodes' }) !== true) return null;
  const label = unschedulable ? 'Uncordon' : 'Cordon';
  return h('button', {
    class: 'small', 'data-test': `${label.toLowerCase()}-${name}`,
    onclick: () => act(ctx, `${label}ed node ${name}`, () => send('PATCH', `/api/v1/nodes/${encodeURIComponent(name)}`, { spec: { unschedulable: unschedulable ? null : true } }, MERGE_PATCH)),
  }, label);
}

export function nodesView(ctx: Ctx): View {
  const store = ctx.hub.nodes();
  const table = new VTable<Row<NodeP>>([
    { title: 'Name', width: 'minmax(10rem, 2fr)', render: (r) => h('a', { href: `#/node/${encodeURIComponent(r.p.name)}` }, r.p.name) },
    { title: 'Status', width: 'minmax(11rem, 1.4fr)', render: (r) => badge(store.cell(r, 'Status')) },
    { title: 'Roles', width: 'minmax(5rem, 1fr)', render: (r) => store.cell(r, 'Roles'), className: 'opt' },
    { title: 'Arch', width: '5rem', render: (r) => r.p.arch },
    { title: 'Internal IP', width: 'minmax(7rem, 1fr)', render: (r) => store.cell(r, 'Internal-IP'), className: 'opt' },
    { title: 'Version', width: 'minmax(6rem, 1fr)', render: (r) => store.cell(r, 'Version'), className: 'opt' },
    { title: 'Age', width: '4rem', render: (r) => age(r.p.created) },
    { title: '', width: '7rem', render: (r) => cordonButton(ctx, r.p.name, r.p.unschedulable) ?? '' },
  ], (r) => r.p.name, (r) => ctx.go(`#/node/${encodeURIComponent(r.p.name)}`), 'nodes-table');
  const info = h('p', { class: 'muted' });
  const el = h('div', { class: 'page' }, h('h1', {}, 'Nodes'), info, table.el);
  const draw = () => {
    const q = ctx.search();
    const rows = [...store.rows.values()].filter((r) => matches(q, r.p.name, r.p.arch, store.cell(r, 'Status'))).sort((a, b) => a.p.name.localeCompare(b.p.name));
    info.textContent = store.error || (store.synced ? `${rows.length} of ${store.rows.size} nodes` : 'Loading…');
    info.className = store.error ? 'error' : 'muted';
    table.setRows(rows, store.synced ? 'No nodes match.' : '');
  };
  const unsub = [store.subscribe(coalesce(draw, 150)), onPermissionsChange(coalesce(draw, 50))];
  draw();
  return { el, refresh: draw, dispose() { unsub.forEach((u) => u()); } };
}

/** How a pod's part in a drain is shown: words and badge colour. */
const DRAIN_STATE: Record<DrainPod['state'], [string, string]> = {
  evicting: ['evicting', ''], blocked: ['blocked by a budget', 'warn'], evicted: ['terminating', 'warn'], gone: ['gone', 'ok'], failed: ['failed', 'bad'],
};

export function nodeView(ctx: Ctx, name: string): View {
  const store = new Store<any>('/api/v1/nodes', (n) => n, { fieldSelector: `metadata.name=${name}` }).start();
  const pods = ctx.hub.pods();
  const el = h('div', { class: 'page' });
  // ---- drain: the progress card outlives redraws of the page ----
  const drainCard = h('section', { class: 'card', 'data-test': 'drain-card' });
  let drainAbort: AbortController | undefined;
  let plan: DrainPlan | undefined;
  const drawDrain = () => {
    clear(drainCard);
    if (!plan) return;
    const running = drainAbort && !drainAbort.signal.aborted;
    const done = plan.pods.filter((p) => p.state === 'gone').length;
    drainCard.append(
      h('div', { class: 'titlebar' }, h('h2', {}, 'Drain'),
        h('span', { 'data-test': 'drain-status' }, running ? `evicting… ${done} of ${plan.pods.length} pods gone` : drainAbort ? 'stopped' : `drained: ${done} of ${plan.pods.length} pods evicted`),
        running ? h('button', { class: 'small', 'data-test': 'drain-stop', onclick: () => { drainAbort?.abort(); drawDrain(); } }, 'Stop') : ''),
      h('table', { class: 'list' }, plan.pods.map((p) => h('tr', { 'data-test': `drain-${p.ns}-${p.name}` },
        h('td', {}, `${p.ns}/${p.name}`), h('td', {}, h('span', { class: `badge ${DRAIN_STATE[p.state][1]}` }, DRAIN_STATE[p.state][0])),
        h('td', { class: p.state === 'failed' ? 'error' : 'muted', 'data-test': `drain-msg-${p.ns}-${p.name}` }, p.message)))),
      plan.skipped.length ? h('p', { class: 'muted' }, `Left on the node: ${plan.skipped.map((s) => `${s.ns}/${s.name} (${s.why})`).join(', ')}`) : '');
  };
  const startDrain = async () => {
    let next: DrainPlan;
    try { next = await planDrain(name); } catch (e) { ctx.toast(e instanceof Error ? e.message : String(e), true); return; }
    const unmanaged = next.pods.filter((p) => p.unmanaged).length;
    if (!confirm(`Drain ${name}? It is cordoned, and ${next.pods.length} pods are evicted (PodDisruptionBudgets are honoured)`
      + `${unmanaged ? `; ${unmanaged} of them have no controller and will not come back` : ''}. DaemonSet pods stay.`)) return;
    plan = next;
    drainAbort?.abort();
    const abort = drainAbort = new AbortController();
    const redraw = coalesce(drawDrain, 100);
    drawDrain();
    try {
      await drain(plan, redraw, abort.signal);
      if (!abort.signal.aborted) { drainAbort = undefined; ctx.toast(`Drained node ${name}`); }
    } catch (e) {
      abort.abort();
      ctx.toast(e instanceof Error ? e.message : String(e), true);
    }
    drawDrain();
  };
  const drainButton = () => can({ verb: 'patch', resource: 'nodes' }) === true && can({ verb: 'create', resource: 'pods', subresource: 'eviction' }) === true
    ? h('button', { class: 'small', 'data-test': `drain-${name}`, disabled: Boolean(drainAbort && !drainAbort.signal.aborted), onclick: () => void startDrain() }, 'Drain') : '';

  const draw = () => {
    const row = [...store.rows.values()][0];
    clear(el);
    el.append(h('p', {}, h('a', { href: '#/nodes' }, '← Nodes')));
    if (!row) { el.append(h('h1', {}, name), h('p', { class: store.error ? 'error' : 'muted' }, store.error || (store.synced ? 'This node does not exist.' : 'Loading…'))); return; }
    const n = row.p;
    const kv = (o: Record<string, unknown> | undefined) => h('table', { class: 'kv' }, Object.entries(o ?? {}).map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, String(v)))));
    const mine = [...pods.rows.values()].filter((r) => r.p.node === name).map((r) => r.p).sort((a, b) => a.name.localeCompare(b.name));
    el.append(
      h('div', { class: 'titlebar' }, h('h1', {}, name), badge(store.cell(row, 'Status')), cordonButton(ctx, name, Boolean(n.spec?.unschedulable)) ?? '', drainButton()),
      drainCard,
      h('section', { class: 'card' }, h('h2', {}, 'Conditions'), h('table', { class: 'list' },
        h('tr', {}, h('th', {}, 'Type'), h('th', {}, 'Status'), h('th', {}, 'Reason'), h('th', { class: 'opt' }, 'Message'), h('th', {}, 'Last heartbeat')),
        (n.status?.conditions ?? []).map((c: any) => h('tr', {}, h('td', {}, c.type), h('td', {}, badge(c.status)), h('td', {}, c.reason ?? ''),
          h('td', { class: 'opt' }, c.message ?? ''), h('td', {}, age(c.lastHeartbeatTime)))))),
      h('div', { class: 'grid' },
        h('section', { class: 'card' }, h('h2', {}, 'Capacity'), kv(n.status?.capacity)),
        h('section', { class: 'card' }, h('h2', {}, 'Allocatable'), kv(n.status?.allocatable)),
        h('section', { class: 'card' }, h('h2', {}, 'Taints'), (n.spec?.taints ?? []).length
          ? h('ul', { class: 'tags' }, (n.spec.taints as any[]).map((t) => h('li', {}, `${t.key}${t.value ? '=' + t.value : ''}:${t.effect}`)))
          : h('p', { class: 'muted' }, 'None.'))),
      h('section', { class: 'card' }, h('h2', {}, 'Labels'), h('ul', { class: 'tags' }, Object.entries(n.metadata?.labels ?? {}).map(([k, v]) => h('li', {}, `${k}=${v}`)))),
      h('section', { class: 'card' }, h('h2', {}, `Pods (${mine.length}${ctx.ns() ? ` in ${ctx.ns()}` : ''})`),
        h('ul', { class: 'plain' }, mine.slice(0, 200).map((p: PodP) => h('li', {}, badge(p.phase), ' ', h('a', { href: `#/pod/${encodeURIComponent(p.ns)}/${encodeURIComponent(p.name)}` }, `${p.ns}/${p.name}`))))),
    );
  };
  const unsub = [store.subscribe(coalesce(draw, 100)), pods.subscribe(coalesce(draw, 500)), onPermissionsChange(coalesce(draw, 50))];
  draw();
  return { el, refresh: draw, dispose() { drainAbort?.abort(); store.stop(); unsub.forEach((u) => u()); } };
}
