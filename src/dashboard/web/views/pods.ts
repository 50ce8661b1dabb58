// Pods: the live, virtualized list (status, restarts, age, node) with delete for users allowed to.
import { h, age, badge, coalesce } from '../dom.js';
import { can, onPermissionsChange, request } from '../api.js';
import type { PodP } from '../hub.js';
import type { Row } from '../store.js';
import { VTable } from '../vtable.js';
import { type Ctx, type View, act, matches } from '../view.js';

export const podPath = (ns: string, name: string) => `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(name)}`;
export const podHash = (ns: string, name: string) => `#/pod/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;

export function deletePodButton(ctx: Ctx, ns: string, name: string, after?: () => void): HTMLElement | null {
  if (can({ verb: 'delete', resource: 'pods', namespace: ns }) !== true) return null;
  return h('button', {
    class: 'small danger', 'data-test': `delete-pod-${ns}-${name}`,
    onclick: () => { if (confirm(`Delete pod ${ns}/${name}?`)) void act(ctx, `Deleted pod ${ns}/${name}`, () => request('DELETE', podPath(ns, name))).then(after); },
  }, 'Delete');
}

export function podsView(ctx: Ctx): View {
  const store = ctx.hub.pods();
  const table = new VTable<Row<PodP>>([
    { title: 'Name', width: 'minmax(10rem, 2.5fr)', render: (r) => h('a', { href: podHash(r.p.ns, r.p.name) }, r.p.name) },
    { title: 'Namespace', width: 'minmax(6rem, 1fr)', render: (r) => r.p.ns, className: 'opt' },
    { title: 'Ready', width: '4rem', render: (r) => store.cell(r, 'Ready') },
    { title: 'Status', width: 'minmax(7rem, 1fr)', render: (r) => h('span', { 'data-test': `status-${r.p.ns}-${r.p.name}` }, badge(r.p.deleting ? 'Terminating' : store.cell(r, 'Status') || r.p.phase)) },
    { title: 'Restarts', width: '5rem', render: (r) => store.cell(r, 'Restarts'), className: 'opt' },
    { title: 'Age', width: '4rem', render: (r) => age(r.p.created) },
    { title: 'Node', width: 'minmax(6rem, 1fr)', render: (r) => r.p.node ? h('a', { href: `#/node/${encodeURIComponent(r.p.node)}` }, r.p.node) : '', className: 'opt' },
    { title: '', width: '5rem', render: (r) => deletePodButton(ctx, r.p.ns, r.p.name) ?? '' },
  ], (r) => r.key, (r) => ctx.go(podHash(r.p.ns, r.p.name)), 'pods-table');
  const info = h('p', { class: 'muted', 'data-test': 'pods-info' });
  const el = h('div', { class: 'page' }, h('h1', {}, 'Pods'), info, table.el);
  const draw = () => {
    const q = ctx.search();
    const rows = [...store.rows.values()].filter((r) => matches(q, r.p.name, r.p.ns, r.p.node, r.p.phase));
    rows.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    info.textContent = store.error || (store.synced ? `${rows.length} of ${store.rows.size} pods` : `Loading… ${store.rows.size} of ${store.total || '?'} pods`);
    info.className = store.error ? 'error' : 'muted';
    table.setRows(rows, store.synced ? 'No pods match.' : '');
  };
  const unsub = [store.subscribe(coalesce(draw, 150)), onPermissionsChange(coalesce(draw, 50))];
  draw();
  return { el, refresh: draw, dispose() { unsub.forEach((u) => u()); } };
}
