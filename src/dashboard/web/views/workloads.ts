// Deployments: live list with scale −/+, rolling restart and delete, each shown only to users whose
// SelfSubjectAccessReview allows it in that namespace.
import { h, age, badge, coalesce } from '../dom.js';
import { can, onPermissionsChange, request, send, MERGE_PATCH } from '../api.js';
import type { DeployP } from '../hub.js';
import type { Row } from '../store.js';
import { VTable } from '../vtable.js';
import { type Ctx, type View, act, matches } from '../view.js';
import { sectionTabs } from './list.js';

const depPath = (p: DeployP) => `/apis/apps/v1/namespaces/${encodeURIComponent(p.ns)}/deployments/${encodeURIComponent(p.name)}`;

function actions(ctx: Ctx, p: DeployP): HTMLElement {
  const box = h('div', { class: 'actions' });
  const id = `${p.ns}-${p.name}`;
  const scale = (n: number) => act(ctx, `Scaled ${p.ns}/${p.name} to ${n}`,
    () => send('PATCH', `${depPath(p)}/scale`, { spec: { replicas: n } }, MERGE_PATCH));
  if (can({ verb: 'patch', group: 'apps', resource: 'deployments', subresource: 'scale', namespace: p.ns })) {
    box.append(
      h('button', { class: 'small', title: 'scale down', 'aria-label': `scale ${p.name} down`, 'data-test': `scale-down-${id}`, disabled: p.replicas <= 0, onclick: () => scale(p.replicas - 1) }, '−'),
      h('button', { class: 'small', title: 'scale up', 'aria-label': `scale ${p.name} up`, 'data-test': `scale-up-${id}`, onclick: () => scale(p.replicas + 1) }, '+'));
  }
  if (can({ verb: 'patch', group: 'apps', resource: 'deployments', namespace: p.ns })) {
    box.append(h('button', {
      class: 'small', 'data-test': `restart-${id}`,
      onclick: () => act(ctx, `Restarting ${p.ns}/${p.name}`, () => send('PATCH', depPath(p),
        // What `kubectl rollout restart` does: a new template annotation starts a rollout.
        { spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': new Date().toISOString() } } } } }, MERGE_PATCH)),
    }, 'Restart'));
  }
  if (can({ verb: 'delete', group: 'apps', resource: 'deployments', namespace: p.ns })) {
    box.append(h('button', {
      class: 'small danger', 'data-test': `delete-${id}`,
      onclick: () => { if (confirm(`Delete deployment ${p.ns}/${p.name}?`)) void act(ctx, `Deleted ${p.ns}/${p.name}`, () => request('DELETE', depPath(p))); },
    }, 'Delete'));
  }
  return box;
}

export function workloadsView(ctx: Ctx): View {
  const store = ctx.hub.deployments();
  const table = new VTable<Row<DeployP>>([
    { title: 'Name', width: 'minmax(9rem, 2fr)', render: (r) => h('a', { href: `#/obj/deployments/${encodeURIComponent(r.p.ns)}/${encodeURIComponent(r.p.name)}` }, r.p.name) },
    { title: 'Namespace', width: 'minmax(6rem, 1fr)', render: (r) => r.p.ns, className: 'opt' },
    { title: 'Ready', width: '5rem', render: (r) => h('span', { 'data-test': `ready-${r.p.ns}-${r.p.name}` }, store.cell(r, 'Ready') || `${r.p.ready}/${r.p.replicas}`) },
    { title: 'Replicas', width: '5rem', render: (r) => h('span', { 'data-test': `replicas-${r.p.ns}-${r.p.name}` }, String(r.p.replicas)) },
    { title: 'Up-to-date', width: '6rem', render: (r) => String(r.p.updated), className: 'opt' },
    { title: 'Available', width: '6rem', render: (r) => badge(r.p.available >= r.p.replicas ? 'Available' : 'Progressing') },
    { title: 'Age', width: '4rem', render: (r) => age(r.p.created), className: 'opt' },
    { title: '', width: 'minmax(12rem, 1.5fr)', render: (r) => actions(ctx, r.p) },
  ], (r) => r.key, undefined, 'deployments-table');
  const info = h('p', { class: 'muted' });
  const el = h('div', { class: 'page' }, sectionTabs('deployments'), h('h1', {}, 'Deployments'), info, table.el);
  const draw = () => {
    const q = ctx.search();
    const rows = [...store.rows.values()].filter((r) => matches(q, r.p.name, r.p.ns)).sort((a, b) => a.key.localeCompare(b.key));
    info.textContent = store.error || (store.synced ? `${rows.length} of ${store.rows.size} deployments` : 'Loading…');
    info.className = store.error ? 'error' : 'muted';
    table.setRows(rows, store.synced ? 'No deployments match.' : '');
  };
  const unsub = [store.subscribe(coalesce(draw, 100)), onPermissionsChange(coalesce(draw, 50))];
  draw();
  return { el, refresh: draw, dispose() { unsub.forEach((u) => u()); } };
}
