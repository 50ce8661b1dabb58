// Any object's page: metadata, a summary for the kinds that have one (workload rollout with scale,
// restart and rollback; a Service's addresses; a ConfigMap's data; a Secret's keys with values hidden
// until revealed), its events (live), and its YAML, which users allowed to update can edit: the edit is
// first sent as a dry run and the difference between the live object and what the server would store
// is shown; applying sends the same PUT for real, carrying the resourceVersion the edit started from,
// so a change made meanwhile by someone else is refused (409) with the API's message, not overwritten.
import { h, clear, age, badge, coalesce } from '../dom.js';
import { ApiError, can, getJson, onPermissionsChange, request, send, MERGE_PATCH } from '../api.js';
import { Store } from '../store.js';
import { type Ctx, type View, act } from '../view.js';
import { apiPath, kindById, kindOfRef, listHash, objectHash, type Kind } from '../resources.js';
import { deleteButton, sectionTabs } from './list.js';
import * as yamlEdit from '../yaml-edit.js';

const FIELD_MANAGER = 'skiff-dashboard';
const HIDDEN = '••••••';
const SCALABLE = new Set(['deployments', 'statefulsets', 'replicasets']);
const RESTARTABLE = new Set(['deployments', 'statefulsets', 'daemonsets']);

// Bundled with the page rather than loaded on demand: a chunk whose fetch fails (the browser aborts
// requests when the host's network changes) would fail for the rest of the session.
const loadYaml = async () => yamlEdit;

function decode(b64: string): string {
  try {
    const bin = atob(b64);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return `(binary, ${Math.floor(b64.length * 3 / 4)} bytes)`;
  }
}

/** A Secret with its values replaced, for showing before the user asks to reveal them. */
function masked(obj: any): any {
  const hide = (m: Record<string, unknown> | undefined) => m && Object.fromEntries(Object.keys(m).map((k) => [k, HIDDEN]));
  return { ...obj, data: hide(obj.data), stringData: hide(obj.stringData) };
}

export function objectView(ctx: Ctx, kindId: string, nsPart: string, name: string): View {
  const kind = kindById(kindId);
  const ns = nsPart === '_' ? '' : nsPart;
  const el = h('div', { class: 'page' });
  if (!kind) {
    el.append(h('h1', {}, name), h('p', { class: 'error' }, `The dashboard does not know "${kindId}".`));
    return { el, refresh() {}, dispose() {} };
  }
  const path = apiPath(kind, ns, name);
  const store = new Store<any>(apiPath(kind, ns), (o) => o, { fieldSelector: `metadata.name=${name}` }).start();
  const eventSel = `involvedObject.name=${name},involvedObject.kind=${kind.kind}`;
  const events = kind.id === 'events' ? undefined
    : new Store<any>(ns ? `/api/v1/namespaces/${encodeURIComponent(ns)}/events` : '/api/v1/events', (e) => e, { fieldSelector: eventSel }).start();
  const isSecret = kind.id === 'secrets';
  let revealed = false;

  const head = h('div');
  const summary = h('div');
  const eventsBox = h('section', { class: 'card' });
  const yamlPre = h('pre', { class: 'yaml', 'data-test': 'yaml', tabindex: 0 });
  const yamlBar = h('div', { class: 'actions' });
  const yamlMsg = h('p', { class: 'error', role: 'alert', 'data-test': 'yaml-error' });
  const yamlBody = h('div', {}, yamlPre);
  const yamlCard = h('section', { class: 'card' }, h('div', { class: 'titlebar' }, h('h2', {}, 'YAML'), yamlBar), yamlMsg, yamlBody);
  el.append(sectionTabs(kind.id), head, summary, yamlCard, eventsBox);

  // ---- YAML: view, edit, dry-run diff, apply ----
  let mode: 'view' | 'edit' | 'review' = 'view';
  let editor: HTMLTextAreaElement | undefined;
  /** The live object's YAML when editing started: the diff's left side. */
  let baseYaml = '';
  const current = () => [...store.rows.values()][0]?.p;
  const mayUpdate = () => can({ verb: 'update', group: kind.group, resource: kind.plural, namespace: ns }) === true;

  const setMode = (m: typeof mode) => { mode = m; void drawYaml(); };
  async function drawYaml(): Promise<void> {
    try {
      await drawYamlView();
    } catch (e) {
      yamlMsg.textContent = `Cannot show the YAML: ${e instanceof Error ? e.message : String(e)}`;
    }
  }
  async function drawYamlView(): Promise<void> {
    if (mode !== 'view') return;
    const obj = current();
    clear(yamlBar);
    clear(yamlBody);
    yamlBody.append(yamlPre);
    if (!obj) { yamlPre.textContent = ''; return; }
    const y = await loadYaml();
    if (mode !== 'view') return;
    yamlPre.textContent = y.toYaml(isSecret && !revealed ? masked(obj) : obj);
    if (mayUpdate() && (!isSecret || revealed)) {
      yamlBar.append(h('button', { class: 'small', 'data-test': 'yaml-edit', onclick: () => void startEdit() }, 'Edit'));
    } else if (isSecret && !revealed && mayUpdate()) {
      yamlBar.append(h('span', { class: 'muted small' }, 'Reveal the values to edit.'));
    }
  }

  async function startEdit(): Promise<void> {
    const obj = current();
    if (!obj) return;
    const y = await loadYaml();
    baseYaml = y.toYaml(obj);
    yamlMsg.textContent = '';
    mode = 'edit';
    editor = h('textarea', { class: 'yaml', spellcheck: 'false', 'aria-label': 'YAML', 'data-test': 'yaml-editor', rows: Math.min(40, baseYaml.split('\n').length + 2) });
    editor.value = baseYaml;
    clear(yamlBody);
    yamlBody.append(editor);
    clear(yamlBar);
    yamlBar.append(
      h('button', { class: 'small', 'data-test': 'yaml-review', onclick: () => void review() }, 'Review changes'),
      h('button', { class: 'small', 'data-test': 'yaml-cancel', onclick: () => { yamlMsg.textContent = ''; setMode('view'); } }, 'Cancel'));
    editor.focus();
  }

  /** The edited object, parsed, or null with the reason shown. */
  async function edited(): Promise<any | null> {
    const y = await loadYaml();
    try {
      return y.fromYaml(editor!.value);
    } catch (e) {
      yamlMsg.textContent = `The YAML does not parse: ${e instanceof Error ? e.message : String(e)}`;
      return null;
    }
  }

  const putUrl = (dryRun: boolean) => `${path}?${new URLSearchParams({ fieldManager: FIELD_MANAGER, ...(dryRun ? { dryRun: 'All' } : {}) })}`;

  async function review(): Promise<void> {
    yamlMsg.textContent = '';
    const body = await edited();
    if (!body) return;
    const y = await loadYaml();
    let would: any;
    try {
      would = await send('PUT', putUrl(true), body);
    } catch (e) {
      yamlMsg.textContent = e instanceof ApiError ? e.message : String(e);
      conflictHelp(e);
      return;
    }
    // Compare what the server would store with the object the edit started from, both without the
    // fields that change on every write anyway.
    const strip = (o: any) => { const c = y.withoutManagedFields(o); return { ...c, metadata: { ...c.metadata, resourceVersion: undefined, generation: undefined } }; };
    const diff = y.diffView(y.toYaml(strip(y.fromYaml(baseYaml))), y.toYaml(strip(would)));
    mode = 'review';
    clear(yamlBody);
    clear(yamlBar);
    yamlBody.append(h('p', { class: 'muted' }, 'What the server would store (a dry run), compared with the object when you started editing:'),
      diff ?? h('p', { 'data-test': 'yaml-nochange' }, 'No change.'));
    const back = h('button', { class: 'small', 'data-test': 'yaml-back', onclick: () => { mode = 'edit'; clear(yamlBody); yamlBody.append(editor!); clear(yamlBar); yamlBar.append(reviewBtn, cancelBtn); } }, 'Back to editing');
    const reviewBtn = h('button', { class: 'small', 'data-test': 'yaml-review', onclick: () => void review() }, 'Review changes');
    const cancelBtn = h('button', { class: 'small', 'data-test': 'yaml-cancel', onclick: () => setMode('view') }, 'Cancel');
    if (diff) yamlBar.append(h('button', { class: 'small primary', 'data-test': 'yaml-apply', onclick: () => void apply(body) }, 'Apply'));
    yamlBar.append(back, cancelBtn);
  }

  async function apply(body: unknown): Promise<void> {
    yamlMsg.textContent = '';
    try {
      await send('PUT', putUrl(false), body);
      ctx.toast(`Applied ${kind!.kind} ${ns ? ns + '/' : ''}${name}`);
      setMode('view');
    } catch (e) {
      yamlMsg.textContent = e instanceof ApiError ? e.message : String(e);
      conflictHelp(e);
    }
  }

  function conflictHelp(e: unknown): void {
    if (!(e instanceof ApiError) || e.code !== 409) return;
    yamlMsg.append(' ', h('button', { class: 'small', 'data-test': 'yaml-reload', onclick: () => void startEdit() }, 'Start again from the latest version'));
  }

  // ---- summary ----
  function drawHead(): void {
    const obj = current();
    clear(head);
    head.append(h('p', {}, h('a', { href: listHash(kind!) }, `← ${kind!.title}`)));
    if (!obj) {
      head.append(h('h1', {}, name), h('p', { class: store.error ? 'error' : 'muted', 'data-test': 'object-missing' },
        store.error || (store.synced ? `This ${kind!.kind} does not exist (any more).` : 'Loading…')));
      return;
    }
    const row = [...store.rows.values()][0]!;
    const status = store.cell(row, 'Status') || store.cell(row, 'Phase');
    const m = obj.metadata ?? {};
    const owners = (m.ownerReferences ?? []).map((o: any) => {
      const k = kindOfRef(o.apiVersion, o.kind);
      return k ? h('a', { href: objectHash(k, ns, o.name) }, `${o.kind}/${o.name}`) : `${o.kind}/${o.name}`;
    });
    head.append(
      h('div', { class: 'titlebar' }, h('h1', {}, name), h('span', { class: 'muted' }, kind!.kind), status ? badge(m.deletionTimestamp ? 'Terminating' : status) : '',
        deleteButton(ctx, kind!, ns, name, () => ctx.go(listHash(kind!))) ?? ''),
      h('table', { class: 'kv' },
        ns ? h('tr', {}, h('th', {}, 'Namespace'), h('td', {}, ns)) : '',
        h('tr', {}, h('th', {}, 'Age'), h('td', {}, age(m.creationTimestamp))),
        owners.length ? h('tr', {}, h('th', {}, 'Controlled by'), h('td', {}, owners.flatMap((o: Node | string, i: number) => (i ? [', ', o] : [o])))) : '',
        Object.keys(m.labels ?? {}).length ? h('tr', {}, h('th', {}, 'Labels'), h('td', {}, h('ul', { class: 'tags' }, Object.entries(m.labels).map(([k, v]) => h('li', {}, `${k}=${v}`))))) : '',
        Object.keys(m.annotations ?? {}).filter((k) => k !== 'kubectl.kubernetes.io/last-applied-configuration').length
          ? h('tr', {}, h('th', {}, 'Annotations'), h('td', {}, h('ul', { class: 'tags' }, Object.entries(m.annotations).filter(([k]) => k !== 'kubectl.kubernetes.io/last-applied-configuration').map(([k, v]) => h('li', {}, `${k}=${v}`))))) : ''),
    );
  }

  function drawSummary(): void {
    const obj = current();
    clear(summary);
    if (!obj) return;
    const card = (title: string, ...body: (Node | string)[]) => h('section', { class: 'card' }, h('h2', {}, title), ...body);
    const kv = (rows: [string, unknown][]) => h('table', { class: 'kv' }, rows.filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v instanceof Node ? v : String(v)))));
    const spec = obj.spec ?? {}, st = obj.status ?? {};
    switch (kind!.id) {
      case 'secrets': {
        const data: Record<string, string> = obj.data ?? {};
        summary.append(card('Data',
          Object.keys(data).length ? h('table', { class: 'kv', 'data-test': 'secret-data' }, Object.entries(data).map(([k, v]) =>
            h('tr', {}, h('th', {}, k), h('td', { class: 'mono', 'data-test': `secret-value-${k}` }, revealed ? decode(v) : HIDDEN)))) : h('p', { class: 'muted' }, 'No data.'),
          h('p', {}, h('span', { class: 'muted' }, `type ${obj.type ?? 'Opaque'} · `),
            h('button', { class: 'small', 'data-test': 'reveal-secret', onclick: () => { revealed = !revealed; drawSummary(); void drawYaml(); } }, revealed ? 'Hide values' : 'Reveal values'))));
        break;
      }
      case 'configmaps': {
        const data: Record<string, string> = obj.data ?? {};
        summary.append(card('Data', Object.keys(data).length
          ? h('table', { class: 'kv', 'data-test': 'configmap-data' }, Object.entries(data).map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, h('pre', { class: 'value' }, v)))))
          : h('p', { class: 'muted' }, 'No data.')));
        break;
      }
      case 'services': {
        const lb = (st.loadBalancer?.ingress ?? []).map((i: any) => i.ip ?? i.hostname).join(', ');
        summary.append(card('Service', kv([
          ['Type', spec.type ?? 'ClusterIP'], ['Cluster IPs', (spec.clusterIPs ?? [spec.clusterIP]).filter(Boolean).join(', ')],
          ['External IPs', (spec.externalIPs ?? []).join(', ')], ['Load balancer', lb || (spec.type === 'LoadBalancer' ? 'pending' : '')],
          ['Ports', (spec.ports ?? []).map((p: any) => `${p.name ? p.name + ' ' : ''}${p.port}${p.nodePort ? ':' + p.nodePort : ''}/${p.protocol ?? 'TCP'} → ${p.targetPort ?? p.port}`).join(', ')],
          ['Selector', Object.entries(spec.selector ?? {}).map(([k, v]) => `${k}=${v}`).join(', ')],
        ])));
        break;
      }
      case 'deployments': case 'statefulsets': case 'replicasets': case 'daemonsets': {
        const daemon = kind!.id === 'daemonsets';
        const want = daemon ? st.desiredNumberScheduled ?? 0 : spec.replicas ?? 1;
        const ready = daemon ? st.numberReady ?? 0 : st.readyReplicas ?? 0;
        const updated = daemon ? st.updatedNumberScheduled ?? 0 : st.updatedReplicas ?? 0;
        const available = daemon ? st.numberAvailable ?? 0 : st.availableReplicas ?? 0;
        const done = ready >= want && updated >= want && (st.observedGeneration ?? 0) >= (obj.metadata?.generation ?? 0);
        const bar = h('progress', { max: String(Math.max(want, 1)), value: String(Math.min(updated, want)), 'aria-label': 'rollout' });
        summary.append(card('Rollout', h('div', { class: 'titlebar' }, badge(done ? 'Available' : 'Progressing'), bar, h('span', { 'data-test': 'rollout' }, `${ready}/${want} ready, ${updated} up to date, ${available} available`), workloadActions(ctx, kind!, obj)),
          kind!.id === 'deployments' ? revisions(ctx, obj) : ''));
        break;
      }
      case 'jobs':
        summary.append(card('Job', kv([['Completions', `${st.succeeded ?? 0}/${spec.completions ?? 1}`], ['Active', st.active ?? 0], ['Failed', st.failed ?? 0], ['Started', age(st.startTime) && `${age(st.startTime)} ago`]])));
        break;
      case 'cronjobs':
        summary.append(card('CronJob', kv([['Schedule', spec.schedule], ['Suspended', spec.suspend ? 'yes' : 'no'], ['Active jobs', (st.active ?? []).length], ['Last schedule', st.lastScheduleTime ? `${age(st.lastScheduleTime)} ago` : 'never']])));
        break;
    }
  }

  function drawEvents(): void {
    if (!events) return;
    const list = [...events.rows.values()].map((r) => r.p).filter((e) => !ns || e.metadata?.namespace === ns)
      .sort((a, b) => String(b.lastTimestamp ?? b.eventTime ?? '').localeCompare(String(a.lastTimestamp ?? a.eventTime ?? '')));
    clear(eventsBox);
    eventsBox.append(h('h2', {}, 'Events'), events.error ? h('p', { class: 'error' }, events.error) : '',
      list.length ? h('ul', { class: 'events' }, list.slice(0, 50).map((e) => h('li', {}, badge(e.type === 'Warning' ? 'Warning' : 'Normal'), ' ', h('b', {}, e.reason ?? ''), ' ', e.message ?? '',
        h('span', { class: 'muted' }, ` ×${e.count ?? 1}, ${age(e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp)} ago`)))) : h('p', { class: 'muted' }, 'No events.'));
  }

  const drawAll = () => { drawHead(); drawSummary(); void drawYaml(); };
  const unsub = [store.subscribe(coalesce(drawAll, 100)), onPermissionsChange(coalesce(drawAll, 50))];
  if (events) unsub.push(events.subscribe(coalesce(drawEvents, 200)));
  drawAll();
  drawEvents();
  return {
    el, refresh: () => { drawHead(); drawEvents(); },
    dispose() { store.stop(); events?.stop(); unsub.forEach((u) => u()); },
  };
}

/** Scale −/+ and restart for the workload kinds that have them, each only if RBAC allows it. */
function workloadActions(ctx: Ctx, kind: Kind, obj: any): HTMLElement {
  const ns = obj.metadata?.namespace ?? '', name = obj.metadata?.name ?? '';
  const path = apiPath(kind, ns, name);
  const box = h('div', { class: 'actions' });
  const replicas = obj.spec?.replicas ?? 1;
  if (SCALABLE.has(kind.id) && can({ verb: 'patch', group: kind.group, resource: kind.plural, subresource: 'scale', namespace: ns })) {
    const scale = (n: number) => act(ctx, `Scaled ${kind.kind} ${ns}/${name} to ${n}`, () => send('PATCH', `${path}/scale`, { spec: { replicas: n } }, MERGE_PATCH));
    box.append(
      h('button', { class: 'small', 'aria-label': 'scale down', 'data-test': 'scale-down', disabled: replicas <= 0, onclick: () => scale(replicas - 1) }, '−'),
      h('button', { class: 'small', 'aria-label': 'scale up', 'data-test': 'scale-up', onclick: () => scale(replicas + 1) }, '+'));
  }
  if (RESTARTABLE.has(kind.id) && can({ verb: 'patch', group: kind.group, resource: kind.plural, namespace: ns })) {
    box.append(h('button', {
      class: 'small', 'data-test': 'restart',
      // What `kubectl rollout restart` does: a new template annotation starts a rollout.
      onclick: () => act(ctx, `Restarting ${kind.kind} ${ns}/${name}`, () => send('PATCH', path,
        { spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': new Date().toISOString() } } } } }, MERGE_PATCH)),
    }, 'Restart'));
  }
  return box;
}

/**
 * A Deployment's revisions (its ReplicaSets) with "Roll back" to any older one, as `kubectl rollout
 * undo --to-revision` does: the Deployment's pod template is replaced by that ReplicaSet's, minus the
 * pod-template-hash label the controller adds.
 */
function revisions(ctx: Ctx, dep: any): HTMLElement {
  const ns = dep.metadata?.namespace ?? '', uid = dep.metadata?.uid;
  const box = h('div', { 'data-test': 'revisions' }, h('p', { class: 'muted' }, 'Loading revisions…'));
  const rsKind = kindById('replicasets')!;
  const mayPatch = can({ verb: 'patch', group: 'apps', resource: 'deployments', namespace: ns }) === true;
  getJson(`${apiPath(rsKind, ns)}`).then((list: any) => {
    const mine = (list.items ?? []).filter((rs: any) => (rs.metadata?.ownerReferences ?? []).some((o: any) => o.uid === uid))
      .map((rs: any) => ({ rs, rev: Number(rs.metadata?.annotations?.['deployment.kubernetes.io/revision'] ?? 0) }))
      .sort((a: any, b: any) => b.rev - a.rev);
    const newest = mine[0]?.rev;
    clear(box);
    box.append(h('h2', {}, 'Revisions'), h('table', { class: 'list' },
      h('tr', {}, h('th', {}, 'Revision'), h('th', {}, 'ReplicaSet'), h('th', {}, 'Images'), h('th', {}, 'Pods'), h('th', {}, '')),
      mine.map(({ rs, rev }: any) => h('tr', {},
        h('td', {}, String(rev)), h('td', {}, h('a', { href: objectHash(rsKind, ns, rs.metadata.name) }, rs.metadata.name)),
        h('td', { class: 'mono' }, (rs.spec?.template?.spec?.containers ?? []).map((c: any) => c.image).join(', ')),
        h('td', {}, `${rs.status?.readyReplicas ?? 0}/${rs.spec?.replicas ?? 0}`),
        h('td', {}, rev === newest ? h('span', { class: 'muted' }, 'current') : mayPatch ? h('button', {
          class: 'small', 'data-test': `rollback-${rev}`,
          onclick: () => {
            const template = structuredClone(rs.spec.template);
            if (template.metadata?.labels) delete template.metadata.labels['pod-template-hash'];
            void act(ctx, `Rolled back ${ns}/${dep.metadata.name} to revision ${rev}`,
              () => request('PATCH', apiPath(kindById('deployments')!, ns, dep.metadata.name), { body: [{ op: 'replace', path: '/spec/template', value: template }], contentType: 'application/json-patch+json' }));
          },
        }, 'Roll back') : '')))));
  }, (e) => { clear(box); box.append(h('p', { class: 'error' }, e instanceof Error ? e.message : String(e))); });
  return box;
}
