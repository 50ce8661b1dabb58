// The fleet (issue 17), on any skiff server (each can be a fleet manager): the Clusters list (state,
// nodes, version, last seen, bundles ready; Offline in red), the Bundles list (clusters ready, state,
// partitions, why a rollout paused) and one bundle's rollout (its partitions in order and every
// cluster's BundleDeployment). All live through watches; all read-only (changes go through kubectl
// or GitRepos), so a view-only token sees everything here.
import { h, clear, age, badge, coalesce } from '../dom.js';
import { Store, type Row } from '../store.js';
import { FLEET_API, bundleOf, type BundleP, type ClusterP } from '../hub.js';
import { VTable } from '../vtable.js';
import { type Ctx, type View, matches } from '../view.js';
import { kindById, objectHash } from '../resources.js';
import { clusterCounts, deploymentStateOf, notReadyOf, partitionCounts, partitionStates, type DeploymentView } from '../fleet-state.js';

const enc = encodeURIComponent;
const CLUSTER_KIND = kindById('crd~fleet.skiff.io~v1alpha1~clusters~Cluster~Cluster')!;
const BUNDLE_KIND = kindById('crd~fleet.skiff.io~v1alpha1~bundles~Namespaced~Bundle')!;
const bundleHash = (ns: string, name: string) => `#/fleet/bundle/${enc(ns)}/${enc(name)}`;
/** Labels skiff sets itself (the hollow clusters' index, ...): not the site's own. */
const ownLabels = (labels: Record<string, string>) => Object.entries(labels).filter(([k]) => !k.startsWith('fleet.skiff.io/')).map(([k, v]) => `${k}=${v}`);

export function fleetTabs(current: 'clusters' | 'bundles'): HTMLElement {
  return h('div', { class: 'tabs', role: 'tablist' },
    ([['clusters', 'Clusters'], ['bundles', 'Bundles']] as const).map(([id, title]) => h('a', {
      href: `#/fleet/${id}`, role: 'tab', class: id === current ? 'active' : '', 'aria-selected': id === current ? 'true' : 'false', 'data-tab': `fleet-${id}`,
    }, title)));
}

/** The store's state as a line: its error, Loading…, or `text`. */
function infoLine(el: HTMLElement, store: Store<unknown>, text: string): void {
  el.textContent = store.error || (store.synced ? text : `Loading… ${store.rows.size ? `${store.rows.size} of ${store.total}` : ''}`);
  el.className = store.error ? 'error' : 'muted';
}

export function fleetClustersView(ctx: Ctx): View {
  const store = ctx.hub.fleetClusters();
  const table = new VTable<Row<ClusterP>>([
    { title: 'Name', width: 'minmax(9rem, 2fr)', render: (r) => h('a', { href: objectHash(CLUSTER_KIND, '', r.p.name), 'data-test': `cluster-${r.p.name}` }, r.p.name) },
    { title: 'State', width: '6.5rem', render: (r) => h('span', { 'data-test': `cluster-state-${r.p.name}` }, badge(r.p.state)) },
    { title: 'Nodes', width: '4.5rem', render: (r) => r.p.nodes },
    { title: 'Bundles ready', width: '8rem', render: (r) => h('span', {
      'data-test': `cluster-bundles-${r.p.name}`, class: r.p.nonReadyBundles.length ? 'warn-text' : '',
      title: r.p.nonReadyBundles.length ? `not ready: ${r.p.nonReadyBundles.join(', ')}` : '',
    }, r.p.readyBundles) },
    { title: 'Version', width: 'minmax(7rem, 1fr)', render: (r) => r.p.version, className: 'opt' },
    { title: 'Last seen', width: '5.5rem', render: (r) => age(r.p.lastSeen) },
    { title: 'Labels', width: 'minmax(8rem, 2fr)', render: (r) => h('span', { class: 'inline-tags' }, ownLabels(r.p.labels).map((l) => h('span', { class: 'tag' }, l))), className: 'opt' },
  ], (r) => r.p.name, (r) => ctx.go(objectHash(CLUSTER_KIND, '', r.p.name)), 'clusters-table');
  const info = h('p', { class: 'muted', 'data-test': 'clusters-info' });
  const el = h('div', { class: 'page' }, fleetTabs('clusters'), h('h1', {}, 'Clusters'), info, table.el);
  const draw = () => {
    const q = ctx.search();
    const rows = [...store.rows.values()].filter((r) => matches(q, r.p.name, r.p.state, r.p.version, ...ownLabels(r.p.labels)))
      .sort((a, b) => a.p.name.localeCompare(b.p.name));
    const n = clusterCounts([...store.rows.values()].map((r) => r.p.state));
    infoLine(info, store, `${rows.length} of ${n.total} clusters: ${n.ready} Ready, ${n.offline} Offline${n.other ? `, ${n.other} other` : ''}`);
    table.setRows(rows, store.synced ? (store.rows.size ? 'No clusters match.' : 'No clusters have registered with this server (skiff fleet token, then skiff server --fleet-server on each site).') : '');
  };
  const unsub = [store.subscribe(coalesce(draw, 150))];
  draw();
  return { el, refresh: draw, dispose() { unsub.forEach((u) => u()); } };
}

/** A bundle's partitions as small badges: `canary 0/2`, coloured by where each stands. */
function partitionBadges(b: BundleP): HTMLElement {
  const states = partitionStates(b.partitions, Boolean(b.paused), b.offlineClusters);
  return h('span', { class: 'inline-tags' }, b.partitions.map((p, i) => {
    const el = badge(`${p.name} ${p.summary.ready}/${p.count}`);
    el.className = badge(states[i]!).className;
    el.title = `${states[i]}: ${partitionCounts(p)}`;
    return el;
  }));
}

export function fleetBundlesView(ctx: Ctx): View {
  const store = ctx.hub.bundles();
  const table = new VTable<Row<BundleP>>([
    { title: 'Name', width: 'minmax(8rem, 1.5fr)', render: (r) => h('a', { href: bundleHash(r.p.ns, r.p.name), 'data-test': `bundle-${r.p.ns}-${r.p.name}` }, r.p.name) },
    { title: 'Namespace', width: 'minmax(5rem, 1fr)', render: (r) => r.p.ns, className: 'opt' },
    { title: 'Clusters ready', width: '8rem', render: (r) => h('span', { 'data-test': `bundle-ready-${r.p.ns}-${r.p.name}` }, r.p.readyClusters) },
    { title: 'State', width: '8rem', render: (r) => h('span', { 'data-test': `bundle-state-${r.p.ns}-${r.p.name}` }, badge(r.p.state || 'Pending')) },
    { title: 'Partitions', width: 'minmax(10rem, 2fr)', render: (r) => partitionBadges(r.p) },
    { title: 'Message', width: 'minmax(10rem, 3fr)', render: (r) => h('span', { class: r.p.paused ? 'error' : 'muted', title: r.p.message }, r.p.message), className: 'opt' },
  ], (r) => r.key, (r) => ctx.go(bundleHash(r.p.ns, r.p.name)), 'bundles-table');
  const info = h('p', { class: 'muted', 'data-test': 'bundles-info' });
  const el = h('div', { class: 'page' }, fleetTabs('bundles'), h('h1', {}, 'Bundles'), info, table.el);
  const draw = () => {
    const q = ctx.search();
    // Rollouts that need a look first: paused, then the most clusters not Ready.
    const rows = [...store.rows.values()].filter((r) => matches(q, r.p.name, r.p.ns, r.p.state, r.p.message))
      .sort((a, b) => Number(Boolean(b.p.paused)) - Number(Boolean(a.p.paused)) || notReadyOf(b.p.summary) - notReadyOf(a.p.summary) || a.key.localeCompare(b.key));
    const paused = rows.filter((r) => r.p.paused).length;
    infoLine(info, store, `${rows.length} of ${store.rows.size} bundles${paused ? `, ${paused} with a paused rollout` : ''}`);
    table.setRows(rows, store.synced ? (store.rows.size ? 'No bundles match.' : 'No bundles here.') : '');
  };
  const unsub = [store.subscribe(coalesce(draw, 150))];
  draw();
  return { el, refresh: draw, dispose() { unsub.forEach((u) => u()); } };
}

export function fleetBundleView(ctx: Ctx, ns: string, name: string): View {
  // This bundle and its BundleDeployments only (one per cluster it targets): never the whole fleet's.
  const bundle = new Store<BundleP>(`${FLEET_API}/namespaces/${enc(ns)}/bundles`, bundleOf, { fieldSelector: `metadata.name=${name}` }).start();
  const deployments = new Store<DeploymentView>(`${FLEET_API}/namespaces/${enc(ns)}/bundledeployments`, (d) => ({
    cluster: d.spec?.cluster ?? '', bundle: d.spec?.bundle ?? '', staged: d.spec?.stagedDeploymentID ?? '', released: d.spec?.deploymentID ?? '',
    applied: d.status?.appliedDeploymentID ?? '', ready: d.status?.ready === true, state: d.status?.display?.state ?? '', message: d.status?.message ?? '',
  }), { labelSelector: `fleet.skiff.io/bundle-name=${name}` }).start();
  const clusters = ctx.hub.fleetClusters();

  const head = h('div');
  const pausedCard = h('section', { class: 'card', 'data-test': 'rollout-paused' });
  const partCard = h('section', { class: 'card', 'data-test': 'partitions' });
  const info = h('p', { class: 'muted', 'data-test': 'deployments-info' });
  const table = new VTable<Row<DeploymentView>>([
    { title: 'Cluster', width: 'minmax(9rem, 2fr)', render: (r) => h('a', { href: objectHash(CLUSTER_KIND, '', r.p.cluster) }, r.p.cluster) },
    { title: 'State', width: '7.5rem', render: (r) => h('span', { 'data-test': `bd-state-${r.p.cluster}` }, badge(stateOf(r))) },
    { title: 'Version', width: 'minmax(7rem, 1fr)', render: (r) => h('span', { class: 'mono', title: r.p.applied }, short(r.p.applied)), className: 'opt' },
    { title: 'Message', width: 'minmax(10rem, 3fr)', render: (r) => h('span', { class: r.p.message ? 'error' : 'muted', title: r.p.message }, r.p.message) },
  ], (r) => r.key, undefined, 'deployments-table');
  const stateOf = (r: Row<DeploymentView>) => deploymentStateOf(r.p, clusters.rows.get(r.p.cluster)?.p.state);
  const el = h('div', { class: 'page' }, fleetTabs('bundles'), head, pausedCard, partCard, h('h2', {}, 'Clusters'), info, table.el);

  const draw = () => {
    const row = [...bundle.rows.values()][0];
    clear(head); clear(pausedCard); clear(partCard);
    if (!row) {
      head.append(h('h1', {}, `${ns}/${name}`), h('p', { class: bundle.error ? 'error' : 'muted' }, bundle.error || (bundle.synced ? 'This bundle does not exist.' : 'Loading…')));
      return;
    }
    const b = row.p;
    head.append(h('div', { class: 'titlebar' }, h('h1', {}, b.name), h('span', { 'data-test': 'bundle-state' }, badge(b.state || 'Pending')),
      h('span', { class: 'muted', 'data-test': 'bundle-ready' }, `${b.readyClusters} clusters ready`),
      h('a', { class: 'small', href: objectHash(BUNDLE_KIND, b.ns, b.name) }, 'YAML')),
    h('p', { class: 'muted' }, `namespace ${b.ns} · created ${age(b.created)} ago`));
    pausedCard.className = b.paused ? 'card alert' : 'card';
    if (b.paused) pausedCard.append(h('h2', {}, 'Rollout paused'), h('p', { 'data-test': 'paused-message' }, b.paused),
      h('p', { class: 'muted small' }, 'Fix the bundle (a new version) to resume: the partition is tried again and the next ones follow once it is Ready.'));
    else if (b.message && b.state !== 'Ready') pausedCard.append(h('p', { class: 'muted', 'data-test': 'bundle-message' }, b.message));
    if (b.partitions.length) {
      const states = partitionStates(b.partitions, Boolean(b.paused), b.offlineClusters);
      partCard.append(h('h2', {}, 'Rollout'), h('table', { class: 'list' },
        h('tr', {}, h('th', {}, '#'), h('th', {}, 'Partition'), h('th', {}, 'Clusters'), h('th', {}, 'Ready'), h('th', { class: 'opt' }, 'Max unavailable'), h('th', {}, 'State')),
        b.partitions.map((p, i) => h('tr', { 'data-test': `partition-${p.name}` },
          h('td', {}, String(i + 1)), h('td', {}, p.name), h('td', {}, String(p.count)), h('td', {}, partitionCounts(p)),
          h('td', { class: 'opt' }, String(p.maxUnavailable)), h('td', { 'data-test': `partition-state-${p.name}` }, badge(states[i]!))))));
    } else {
      partCard.append(h('h2', {}, 'Rollout'), h('p', { class: 'muted' }, 'No rolloutStrategy: every targeted cluster gets a new version at once.'));
    }
  };
  const drawDeployments = () => {
    const q = ctx.search();
    // Not Ready first: the clusters that hold a rollout are the ones to look at.
    const rows = [...deployments.rows.values()].filter((r) => matches(q, r.p.cluster, r.p.message, stateOf(r)))
      .sort((a, b) => Number(stateOf(a) === 'Ready') - Number(stateOf(b) === 'Ready') || a.p.cluster.localeCompare(b.p.cluster));
    const ready = [...deployments.rows.values()].filter((r) => stateOf(r) === 'Ready').length;
    infoLine(info, deployments, `${rows.length} of ${deployments.rows.size} clusters targeted, ${ready} Ready`);
    table.setRows(rows, deployments.synced ? 'No cluster is targeted.' : '');
  };
  const unsub = [bundle.subscribe(coalesce(draw, 100)), deployments.subscribe(coalesce(drawDeployments, 150)), clusters.subscribe(coalesce(drawDeployments, 300))];
  const refresh = () => { draw(); drawDeployments(); };
  refresh();
  return { el, refresh, dispose() { bundle.stop(); deployments.stop(); unsub.forEach((u) => u()); } };
}

/** `s-<content>:<options>` hashes, shortened as git shortens commits. */
function short(id: string): string {
  return id ? id.replace(/^s-/, '').split(':').map((x) => x.slice(0, 7)).join(':') : '';
}
