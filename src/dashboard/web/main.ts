// The dashboard's entry point: the sign-in page, the shell (navigation, namespace filter, search,
// user, sign-out) and the hash router (#/overview, #/nodes, #/node/N, #/workloads, #/pods, #/pod/NS/N,
// #/list/KIND for any other kind, #/obj/KIND/NS/NAME for any object, `_` as NS for cluster-scoped ones;
// #/fleet/clusters, #/fleet/bundles, #/fleet/bundle/NS/NAME where the fleet kinds are served).
// The token lives in sessionStorage only: never in a URL, a cookie or a log, gone with the tab.
import './style.css';
import 'uplot/dist/uPlot.min.css';
import '@xterm/xterm/css/xterm.css';
import { h, clear, coalesce } from './dom.js';
import { ApiError, getJson, session, setUnauthorizedHandler, whoAmI } from './api.js';
import { FLEET_API, Hub } from './hub.js';
import type { Ctx, View } from './view.js';
import { overviewView } from './views/overview.js';
import { nodesView, nodeView } from './views/nodes.js';
import { workloadsView } from './views/workloads.js';
import { podsView } from './views/pods.js';
import { podView } from './views/pod.js';
import { listView } from './views/list.js';
import { topologyView } from './views/topology.js';
import { objectView } from './views/object.js';
import { fleetBundleView, fleetBundlesView, fleetClustersView } from './views/fleet.js';
import { SECTIONS, sectionOf } from './resources.js';

const app = document.getElementById('app')!;
let hub: Hub | undefined;
let view: View | undefined;
let ageTimer: ReturnType<typeof setInterval> | undefined;

function signIn(message = ''): void {
  view?.dispose(); view = undefined;
  hub?.stopAll(); hub = undefined;
  // The signed-out page has no views: a hash change (sign-in sets #/overview) must not route.
  window.onhashchange = null;
  if (ageTimer) clearInterval(ageTimer);
  session.clear();
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', spellcheck: 'false', placeholder: 'Bearer token', required: true, 'data-test': 'token' });
  const msg = h('p', { class: message ? 'error' : 'muted', role: 'alert', 'data-test': 'login-message' }, message);
  const button = h('button', { type: 'submit', 'data-test': 'login' }, 'Sign in');
  const form = h('form', { class: 'login card' },
    h('h1', {}, 'skiff'),
    h('label', { for: 'token' }, 'Token'), input,
    h('p', { class: 'muted small' }, 'Create one on the server with ', h('code', {}, 'skiff dashboard token --role view'),
      '. It is kept in this tab only (session storage) and sent to the API server as a bearer token.'),
    button, msg);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    button.disabled = true;
    msg.className = 'muted'; msg.textContent = 'Checking…';
    whoAmI(token).then((user) => {
      session.save(token, user);
      if (!location.hash || location.hash === '#/') location.hash = '#/overview';
      shell();
    }, (e) => {
      button.disabled = false;
      msg.className = 'error';
      msg.textContent = e instanceof ApiError && e.code === 401
        ? 'The API server refused this token: it is not valid, has expired or was revoked.'
        : `Could not sign in: ${e instanceof Error ? e.message : String(e)}`;
    });
  });
  clear(app);
  app.append(h('main', { class: 'center' }, form));
  input.focus();
}

function shell(): void {
  hub = new Hub();
  const nsSelect = h('select', { 'aria-label': 'namespace', 'data-test': 'namespace' }, h('option', { value: '' }, 'All namespaces'));
  const search = h('input', { type: 'search', placeholder: 'Search  (/)', 'aria-label': 'search', 'data-test': 'search' });
  const nav = h('nav', {}, [['overview', 'Overview', '#/overview'], ['nodes', 'Nodes', '#/nodes'], ['topology', 'Topology', '#/topology'], ['pods', 'Pods', '#/pods'],
    ...SECTIONS.map((s) => [s.id, s.title, s.id === 'workloads' ? '#/workloads' : `#/list/${s.kinds[0]}`])]
    .map(([k, t, href]) => h('a', { href, 'data-nav': k }, t)));
  // The fleet's pages only where the fleet kinds are served (on every skiff server; not on another API).
  void getJson(FLEET_API).then((r) => {
    if (!hub || nav.querySelector('[data-nav=fleet]') || !(r?.resources ?? []).some((x: any) => x.name === 'clusters')) return;
    const link = h('a', { href: '#/fleet/clusters', 'data-nav': 'fleet' }, 'Fleet');
    link.classList.toggle('active', location.hash.startsWith('#/fleet'));
    nav.insertBefore(link, nav.querySelector('[data-nav=workloads]'));
  }, () => undefined);
  const toastBox = h('div', { class: 'toasts', 'aria-live': 'polite' });
  const main = h('main', { id: 'main' });
  const header = h('header', {},
    h('a', { class: 'brand', href: '#/overview' }, 'skiff'), nav,
    h('div', { class: 'filters' }, nsSelect, search),
    h('div', { class: 'who' }, h('span', { class: 'muted', 'data-test': 'user' }, session.user()),
      h('button', { class: 'small', 'data-test': 'logout', onclick: () => signIn('') }, 'Sign out')));
  clear(app);
  app.append(header, main, toastBox);

  const ctx: Ctx = {
    hub,
    ns: () => nsSelect.value,
    search: () => search.value.trim().toLowerCase(),
    toast(message, bad = false) {
      const t = h('div', { class: `toast ${bad ? 'bad' : ''}`, role: bad ? 'alert' : 'status', 'data-test': bad ? 'error-toast' : 'toast' }, message);
      toastBox.append(t);
      setTimeout(() => t.remove(), bad ? 10_000 : 3000);
    },
    go(hash) { location.hash = hash; },
  };

  const namespaces = hub.namespaces();
  const drawNs = coalesce(() => {
    const names = [...namespaces.rows.values()].map((r) => r.p.name).sort();
    const keep = nsSelect.value;
    clear(nsSelect);
    nsSelect.append(h('option', { value: '' }, 'All namespaces'), ...names.map((n) => h('option', { value: n }, n)));
    nsSelect.value = names.includes(keep) ? keep : '';
  }, 300);
  namespaces.subscribe(drawNs);
  nsSelect.addEventListener('change', () => { hub!.setNamespace(nsSelect.value); route(); });
  search.addEventListener('input', coalesce(() => view?.refresh(), 150));
  document.addEventListener('keydown', (ev) => {
    if (ev.key === '/' && document.activeElement?.tagName !== 'INPUT' && document.activeElement?.tagName !== 'TEXTAREA' && !document.activeElement?.closest('.term')) {
      ev.preventDefault(); search.focus();
    }
  });

  function route(): void {
    // A route queued before sign-out (hashchange is async) finds no hub: nothing to draw.
    if (!hub) return;
    view?.dispose();
    const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
    const page = parts[0] || 'overview';
    const kindId = page === 'list' || page === 'obj' ? parts[1] ?? '' : '';
    const active = kindId === 'pods' ? 'pods' : kindId === 'nodes' ? 'nodes' : kindId.startsWith('crd~fleet.skiff.io~') ? 'fleet' : kindId ? sectionOf(kindId)
      : page === 'pod' ? 'pods' : page === 'node' ? 'nodes' : page;
    for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', a.dataset.nav === active);
    hub.beginView();
    switch (page) {
      case 'nodes': view = nodesView(ctx); break;
      case 'node': view = nodeView(ctx, parts[1] ?? ''); break;
      case 'workloads': view = workloadsView(ctx); break;
      case 'topology': view = topologyView(ctx); break;
      case 'pods': view = podsView(ctx); break;
      case 'pod': view = podView(ctx, parts[1] ?? '', parts[2] ?? ''); break;
      case 'list': view = kindId === 'pods' ? podsView(ctx) : kindId === 'nodes' ? nodesView(ctx) : kindId === 'deployments' ? workloadsView(ctx) : listView(ctx, kindId); break;
      case 'obj': view = objectView(ctx, kindId, parts[2] ?? '', parts[3] ?? ''); break;
      case 'fleet': view = parts[1] === 'bundles' ? fleetBundlesView(ctx) : parts[1] === 'bundle' ? fleetBundleView(ctx, parts[2] ?? '', parts[3] ?? '') : fleetClustersView(ctx); break;
      default: view = overviewView(ctx);
    }
    hub.endView();
    clear(main);
    main.append(view.el);
  }
  window.onhashchange = route;
  route();
  // Ages ("5m") move on: redraw now and then (no API request involved).
  ageTimer = setInterval(() => view?.refresh(), 30_000);
}

setUnauthorizedHandler((message) => { if (hub) signIn(message); });
if (session.token()) shell(); else signIn();
