// A few DOM helpers: elements are built with h() and text is always set as text (never HTML), so
// nothing from the API can inject markup.
type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | undefined | null | ((ev: any) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (k === 'class') el.className = String(v);
    else if (k === 'value' && 'value' in el) (el as HTMLInputElement).value = String(v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: (Child | Child[])[]): void {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

export function clear(el: Element): void {
  while (el.firstChild) el.firstChild.remove();
}

/** `3d`, `5h`, `12m`, `40s`: kubectl's age, from an RFC 3339 time. */
export function age(ts: string | undefined, now = Date.now()): string {
  if (!ts) return '';
  const s = Math.max(0, Math.floor((now - Date.parse(ts)) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m}m`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr}h`;
  return `${Math.floor(hr / 24)}d`;
}

export function statusClass(text: string): string {
  if (/^(Running|Ready|Succeeded|Completed|True|Active|Bound|Available)$/.test(text)) return 'ok';
  if (/^(Pending|Progressing|ContainerCreating|PodInitializing|Terminating|Unknown|SchedulingDisabled)/.test(text) || text.includes('SchedulingDisabled')) return 'warn';
  // A fleet's states (Clusters, Bundles, their partitions and BundleDeployments).
  if (/^(Paused|WaitApplied|Waiting|Rolling out)$/.test(text)) return 'warn';
  if (/NotReady|Failed|Error|BackOff|Err|OOMKilled|Evicted|False|^Offline$|^RolloutPaused$|^InvalidContent$/.test(text)) return 'bad';
  return '';
}

export function badge(text: string): HTMLElement {
  return h('span', { class: `badge ${statusClass(text)}` }, text);
}

/** Coalesces calls into one per `ms` (store updates arrive in bursts). */
export function coalesce(fn: () => void, ms = 100): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return () => {
    if (timer !== undefined) return;
    timer = setTimeout(() => { timer = undefined; fn(); }, ms);
  };
}
