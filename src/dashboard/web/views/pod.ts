// One pod: status, containers, conditions, its events (live), and its logs streamed from the API's log
// endpoint (follow through a streamed fetch, container choice, previous instance).
import { h, clear, age, badge, coalesce } from '../dom.js';
import { can, onPermissionsChange, request, ApiError } from '../api.js';
import { Store } from '../store.js';
import { type Ctx, type View } from '../view.js';
import { deletePodButton, podPath } from './pods.js';

const MAX_LOG_LINES = 5000;

export function podView(ctx: Ctx, ns: string, name: string): View {
  const nsBase = `/api/v1/namespaces/${encodeURIComponent(ns)}`;
  const pod = new Store<any>(`${nsBase}/pods`, (p) => p, { fieldSelector: `metadata.name=${name}` }).start();
  const events = new Store<any>(`${nsBase}/events`, (e) => e, { fieldSelector: `involvedObject.name=${name},involvedObject.kind=Pod` }).start();

  const summary = h('div');
  const eventsBox = h('section', { class: 'card' });
  // ---- logs ----
  const containerSel = h('select', { 'aria-label': 'container', 'data-test': 'log-container' });
  const follow = h('input', { type: 'checkbox', checked: true, 'data-test': 'log-follow' });
  const previous = h('input', { type: 'checkbox', 'data-test': 'log-previous' });
  const logPre = h('pre', { class: 'logs', 'data-test': 'logs', tabindex: 0 });
  const logNote = h('span', { class: 'muted' });
  let logAbort: AbortController | undefined;
  const startLogs = async () => {
    logAbort?.abort();
    const abort = logAbort = new AbortController();
    logPre.textContent = '';
    const q = new URLSearchParams({ tailLines: '1000' });
    if (containerSel.value) q.set('container', containerSel.value);
    if (follow.checked) q.set('follow', 'true');
    if (previous.checked) q.set('previous', 'true');
    logNote.textContent = follow.checked ? 'following…' : '';
    let lines = 0;
    try {
      const res = await request('GET', `${podPath(ns, name)}/log?${q}`, { accept: '*/*', signal: abort.signal });
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const atBottom = logPre.scrollTop + logPre.clientHeight >= logPre.scrollHeight - 8;
        logPre.append(value);
        lines += value.split('\n').length - 1;
        if (lines > MAX_LOG_LINES) {
          // Keep the newest lines only: a chatty container must not grow the page without bound.
          const text = logPre.textContent ?? '';
          logPre.textContent = text.split('\n').slice(-MAX_LOG_LINES).join('\n');
          lines = MAX_LOG_LINES;
        }
        if (atBottom) logPre.scrollTop = logPre.scrollHeight;
      }
      logNote.textContent = 'stream ended';
    } catch (e) {
      if (abort.signal.aborted) return;
      logNote.textContent = e instanceof ApiError ? e.message : String(e);
    }
  };
  for (const c of [containerSel, follow, previous]) c.addEventListener('change', () => void startLogs());
  const logsCard = h('section', { class: 'card' }, h('div', { class: 'titlebar' }, h('h2', {}, 'Logs'), containerSel,
    h('label', {}, follow, ' follow'), h('label', {}, previous, ' previous'), logNote), logPre);
  // ---- exec ----
  const termBox = h('div', { class: 'term' });
  const shellInput = h('input', { value: '/bin/sh', 'aria-label': 'command', class: 'cmd' });
  let closeTerm: (() => void) | undefined;
  const execCard = h('section', { class: 'card', 'data-test': 'exec-card' }, h('div', { class: 'titlebar' }, h('h2', {}, 'Terminal'), shellInput,
    h('button', { class: 'small', 'data-test': 'exec-open', onclick: async () => {
      closeTerm?.();
      // xterm.js is most of the dashboard's bytes: fetched only when a terminal is opened.
      const { openTerminal } = await import('../terminal.js');
      closeTerm = openTerminal(termBox, ns, name, containerSel.value, shellInput.value.split(' ').filter(Boolean));
    } }, 'Open')), termBox);

  const el = h('div', { class: 'page' }, summary, logsCard, eventsBox);
  let logsStarted = false;
  let containerNames = '';

  const drawPod = () => {
    const row = [...pod.rows.values()][0];
    clear(summary);
    summary.append(h('p', {}, h('a', { href: '#/pods' }, '← Pods')));
    if (!row) {
      summary.append(h('h1', {}, `${ns}/${name}`), h('p', { class: pod.error ? 'error' : 'muted', 'data-test': 'pod-missing' },
        pod.error || (pod.synced ? 'This pod no longer exists.' : 'Loading…')));
      return;
    }
    const p = row.p;
    const statuses = new Map<string, any>((p.status?.containerStatuses ?? []).map((s: any) => [s.name, s]));
    const stateOf = (s: any) => s?.state?.running ? 'Running' : s?.state?.waiting ? s.state.waiting.reason ?? 'Waiting' : s?.state?.terminated ? s.state.terminated.reason ?? 'Terminated' : 'Unknown';
    summary.append(
      h('div', { class: 'titlebar' }, h('h1', {}, name), badge(p.metadata?.deletionTimestamp ? 'Terminating' : pod.cell(row, 'Status') || p.status?.phase), deletePodButton(ctx, ns, name) ?? ''),
      h('table', { class: 'kv' },
        h('tr', {}, h('th', {}, 'Namespace'), h('td', {}, ns)),
        h('tr', {}, h('th', {}, 'Node'), h('td', {}, p.spec?.nodeName ? h('a', { href: `#/node/${encodeURIComponent(p.spec.nodeName)}` }, p.spec.nodeName) : '—')),
        h('tr', {}, h('th', {}, 'IP'), h('td', {}, p.status?.podIP ?? '—')),
        h('tr', {}, h('th', {}, 'Age'), h('td', {}, age(p.metadata?.creationTimestamp))),
        h('tr', {}, h('th', {}, 'Controlled by'), h('td', {}, (p.metadata?.ownerReferences ?? []).map((o: any) => `${o.kind}/${o.name}`).join(', ') || '—'))),
      h('section', { class: 'card' }, h('h2', {}, 'Containers'), h('table', { class: 'list', 'data-test': 'containers' },
        h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Image'), h('th', {}, 'State'), h('th', {}, 'Ready'), h('th', {}, 'Restarts')),
        [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].map((c: any) => {
          const s = statuses.get(c.name) ?? (p.status?.initContainerStatuses ?? []).find((x: any) => x.name === c.name);
          return h('tr', {}, h('td', {}, c.name), h('td', { class: 'mono' }, c.image), h('td', {}, badge(stateOf(s))), h('td', {}, s?.ready ? 'yes' : 'no'), h('td', {}, String(s?.restartCount ?? 0)));
        }))),
      h('section', { class: 'card' }, h('h2', {}, 'Conditions'), h('ul', { class: 'tags' }, (p.status?.conditions ?? []).map((c: any) => h('li', {}, `${c.type}: `, badge(c.status))))),
    );
    const names = (p.spec?.containers ?? []).map((c: any) => String(c.name));
    if (names.join(',') !== containerNames) {
      containerNames = names.join(',');
      const keep = containerSel.value;
      clear(containerSel);
      for (const n of names) containerSel.append(h('option', { value: n }, n));
      if (names.includes(keep)) containerSel.value = keep;
    }
    if (can({ verb: 'create', resource: 'pods', subresource: 'exec', namespace: ns }) && !execCard.isConnected) el.insertBefore(execCard, eventsBox);
    if (!logsStarted && can({ verb: 'get', resource: 'pods', subresource: 'log', namespace: ns }) !== undefined) {
      logsStarted = true;
      if (can({ verb: 'get', resource: 'pods', subresource: 'log', namespace: ns })) void startLogs();
      else logNote.textContent = 'You may not read this pod\'s logs.';
    }
  };
  const drawEvents = () => {
    const list = [...events.rows.values()].map((r) => r.p).sort((a, b) => String(b.lastTimestamp ?? b.eventTime ?? '').localeCompare(String(a.lastTimestamp ?? a.eventTime ?? '')));
    clear(eventsBox);
    eventsBox.append(h('h2', {}, 'Events'), events.error ? h('p', { class: 'error' }, events.error) : '',
      list.length ? h('ul', { class: 'events' }, list.slice(0, 50).map((e) => h('li', {}, badge(e.type === 'Warning' ? 'Warning' : 'Normal'), ' ', h('b', {}, e.reason ?? ''), ' ', e.message ?? '',
        h('span', { class: 'muted' }, ` ×${e.count ?? 1}, ${age(e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp)} ago`)))) : h('p', { class: 'muted' }, 'No events.'));
  };
  const unsub = [pod.subscribe(coalesce(drawPod, 100)), events.subscribe(coalesce(drawEvents, 200)), onPermissionsChange(coalesce(drawPod, 50))];
  drawPod();
  drawEvents();
  return {
    el, refresh: () => { drawPod(); drawEvents(); },
    dispose() { logAbort?.abort(); closeTerm?.(); pod.stop(); events.stop(); unsub.forEach((u) => u()); },
  };
}
