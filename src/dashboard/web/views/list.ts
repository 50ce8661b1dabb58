// Any kind as a live, virtualized list: the columns are the API's own (the Table format, so kubectl's
// columns for built-in kinds and the printer columns of a CRD), the rows carry only object metadata
// (includeObject=Metadata: a Secret's values never reach the list), each row opens the object's page.
// The section tabs (Workloads, Network, Config, Storage, Cluster) switch between related kinds.
import { h, age, badge, coalesce, clear } from '../dom.js';
import { can, onPermissionsChange, request } from '../api.js';
import { Store, type Row } from '../store.js';
import { VTable, type ColumnSpec } from '../vtable.js';
import { type Ctx, type View, act, matches } from '../view.js';
import { SECTIONS, apiPath, kindById, kindOfCrd, listHash, objectHash, sectionOf, type Kind } from '../resources.js';

interface MetaP { ns: string; name: string; created: string; deleting: boolean; crd?: Kind }

/** The tabs of a kind's section; the Deployments tab is the richer #/workloads page. */
export function sectionTabs(current: string): HTMLElement {
  const section = SECTIONS.find((s) => s.id === sectionOf(current));
  const nav = h('div', { class: 'tabs', role: 'tablist' });
  for (const id of section?.kinds ?? []) {
    const kind = kindById(id)!;
    nav.append(h('a', { href: id === 'deployments' ? '#/workloads' : listHash(kind), role: 'tab', class: id === current ? 'active' : '', 'aria-selected': id === current ? 'true' : 'false', 'data-tab': id }, kind.title));
  }
  return nav;
}

export function deleteButton(ctx: Ctx, kind: Kind, ns: string, name: string, after?: () => void): HTMLElement | null {
  if (can({ verb: 'delete', group: kind.group, resource: kind.plural, namespace: ns }) !== true) return null;
  return h('button', {
    class: 'small danger', 'data-test': `delete-${kind.plural}-${ns ? ns + '-' : ''}${name}`,
    onclick: () => { if (confirm(`Delete ${kind.kind} ${ns ? ns + '/' : ''}${name}?`)) void act(ctx, `Deleted ${kind.kind} ${ns ? ns + '/' : ''}${name}`, () => request('DELETE', apiPath(kind, ns, name))).then(after); },
  }, 'Delete');
}

export function listView(ctx: Ctx, kindId: string): View {
  const kind = kindById(kindId);
  const el = h('div', { class: 'page' });
  if (!kind) {
    el.append(h('h1', {}, 'Unknown kind'), h('p', { class: 'error' }, `The dashboard does not know "${kindId}".`));
    return { el, refresh() {}, dispose() {} };
  }
  const isCrdList = kind.id === 'customresourcedefinitions';
  const store = new Store<MetaP>(apiPath(kind, kind.namespaced ? ctx.ns() : ''), (o) => ({
    ns: o.metadata?.namespace ?? '', name: o.metadata?.name ?? '', created: o.metadata?.creationTimestamp ?? '',
    deleting: Boolean(o.metadata?.deletionTimestamp), crd: isCrdList ? kindOfCrd(o) : undefined,
  }), { includeObject: isCrdList ? 'Object' : 'Metadata' }).start();
  const info = h('p', { class: 'muted', 'data-test': 'list-info' });
  const tableBox = h('div');
  el.append(sectionTabs(kind.id), h('h1', {}, kind.title), info, tableBox);
  const open = (r: Row<MetaP>) => ctx.go(r.p.crd ? listHash(r.p.crd) : objectHash(kind, r.p.ns, r.p.name));
  let table: VTable<Row<MetaP>> | undefined;
  let columnsSig = '';

  const makeTable = () => {
    const shown = store.columns.map((c, i) => ({ c, i })).filter(({ c }) => !c.priority);
    const sig = shown.map(({ c }) => c.name).join('|');
    if (table && sig === columnsSig) return table;
    columnsSig = sig;
    const cols: ColumnSpec<Row<MetaP>>[] = shown.map(({ c, i }, n) => ({
      title: c.name,
      width: n === 0 ? 'minmax(10rem, 2.5fr)' : c.type === 'date' || c.name === 'Age' ? '5rem' : 'minmax(5rem, 1fr)',
      className: n === 0 ? '' : n > 3 ? 'opt' : '',
      render: (r: Row<MetaP>) => {
        const v = String(r.cells[i] ?? '');
        if (n === 0) return h('a', { href: r.p.crd ? listHash(r.p.crd) : objectHash(kind, r.p.ns, r.p.name), 'data-test': `open-${kind.plural}-${r.p.ns ? r.p.ns + '-' : ''}${r.p.name}` }, v);
        if (c.name === 'Status' || c.name === 'Phase') return badge(r.p.deleting ? 'Terminating' : v);
        if (c.name === 'Age' || c.type === 'date') return age(r.p.created) || v;
        return v;
      },
    }));
    if (kind.namespaced && !ctx.ns()) cols.splice(1, 0, { title: 'Namespace', width: 'minmax(6rem, 1fr)', render: (r) => r.p.ns, className: 'opt' });
    cols.push({ title: '', width: '5rem', render: (r) => deleteButton(ctx, kind, r.p.ns, r.p.name) ?? '' });
    table = new VTable<Row<MetaP>>(cols, (r) => r.key, open, `${kind.plural}-table`);
    clear(tableBox);
    tableBox.append(table.el);
    return table;
  };

  const draw = () => {
    const q = ctx.search();
    const rows = [...store.rows.values()].filter((r) => matches(q, r.p.name, r.p.ns, ...r.cells.map(String)));
    rows.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    info.textContent = store.error || (store.synced ? `${rows.length} of ${store.rows.size}` : `Loading… ${store.rows.size ? `${store.rows.size} of ${store.total}` : ''}`);
    info.className = store.error ? 'error' : 'muted';
    if (!store.columns.length) return;
    makeTable().setRows(rows, store.synced ? `No ${kind.title} match.` : '');
  };
  const unsub = [store.subscribe(coalesce(draw, 150)), onPermissionsChange(coalesce(draw, 50))];
  draw();
  return { el, refresh: draw, dispose() { store.stop(); unsub.forEach((u) => u()); } };
}
