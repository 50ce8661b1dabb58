// A live collection: listed in pages (`limit`/`continue`) in the Table format, then kept current by a
// watch from the list's resourceVersion, read as a stream (fetch + ReadableStream, no polling). Each
// row keeps the server's printer cells (the columns kubectl shows) and a small projection of the
// object, so 50,000 pods cost kilobytes each, not whole objects. A watch that ends is resumed from the
// last resourceVersion; one that is too old (410 Expired) is replaced by a fresh list. One store per
// collection is shared by every view that shows it.
import { ApiError, readLines, request } from './api.js';

export const TABLE_ACCEPT = 'application/json;as=Table;v=v1;g=meta.k8s.io, application/json';
/** The first page is small so that it arrives (and is drawn) quickly; the rest come in larger pages. */
const FIRST_PAGE = 250;
const PAGE = 2000;

export interface Column { name: string; type: string; priority?: number }
export interface Row<P> { key: string; cells: unknown[]; p: P }

export class Store<P> {
  readonly rows = new Map<string, Row<P>>();
  columns: Column[] = [];
  synced = false;
  error = '';
  /** While the first list is still coming: how many objects the server has yet to send. */
  pending = 0;
  private rv = '';
  private readonly abort = new AbortController();
  private readonly listeners = new Set<() => void>();
  private version = 0;

  /**
   * `project` keeps what the views need from a row: the object (whole, or only its metadata with
   * includeObject=Metadata) and the row's printer cells, looked up by column name with `cellOf`.
   */
  constructor(readonly path: string, private readonly project: (obj: any, cell: (column: string) => string) => P, private readonly query: Record<string, string> = {}) {}

  start(): this { void this.run(); return this; }
  stop(): void { this.abort.abort(); this.listeners.clear(); }

  /** The size of the collection, known from the first page on (rows so far plus those still to come). */
  get total(): number { return this.rows.size + this.pending; }

  /** Changes every time the rows change (views use it to skip work). */
  get generation(): number { return this.version; }

  subscribe(fn: () => void): () => void { this.listeners.add(fn); return () => this.listeners.delete(fn); }

  cell(row: Row<P>, column: string): string {
    const i = this.columns.findIndex((c) => c.name === column);
    return i < 0 ? '' : String(row.cells[i] ?? '');
  }

  private changed(): void {
    this.version++;
    for (const l of this.listeners) l();
  }

  private url(extra: Record<string, string>): string {
    const q = new URLSearchParams({ includeObject: 'Object', ...this.query, ...extra });
    return `${this.path}?${q}`;
  }

  private async run(): Promise<void> {
    let backoff = 500;
    while (!this.abort.signal.aborted) {
      try {
        if (!this.rv) await this.list();
        await this.watch();
        backoff = 500;
      } catch (e) {
        if (this.abort.signal.aborted) return;
        if (e instanceof ApiError && e.code === 410) { this.rv = ''; continue; }
        this.error = e instanceof Error ? e.message : String(e);
        this.changed();
        if (e instanceof ApiError && (e.code === 401 || e.code === 403)) return;   // retrying cannot help
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
  }

  private async list(): Promise<void> {
    // The first list fills the rows page by page, so views draw as pages arrive (the first, small page
    // is the first meaningful paint, and remainingItemCount gives the total at once); a re-list (after
    // a 410) builds the new set aside and swaps it in, so nothing flickers.
    const progressive = !this.synced && this.rows.size === 0;
    const fresh = progressive ? this.rows : new Map<string, Row<P>>();
    let cont = '';
    let rv = '';
    let limit = FIRST_PAGE;
    do {
      const res = await request('GET', this.url({ limit: String(limit), ...(cont ? { continue: cont } : {}) }), { accept: TABLE_ACCEPT, signal: this.abort.signal });
      const t = await res.json();
      if (t.columnDefinitions?.length) this.columns = t.columnDefinitions;
      for (const r of t.rows ?? []) this.put(fresh, r);
      cont = t.metadata?.continue ?? '';
      rv = t.metadata?.resourceVersion ?? rv;
      if (progressive && cont) {
        this.pending = Number(t.metadata?.remainingItemCount ?? 0);
        this.changed();
      }
      limit = PAGE;
    } while (cont);
    if (!progressive) {
      this.rows.clear();
      for (const [k, v] of fresh) this.rows.set(k, v);
    }
    this.pending = 0;
    this.rv = rv;
    this.synced = true;
    this.error = '';
    this.changed();
  }

  private async watch(): Promise<void> {
    const res = await request('GET', this.url({ watch: '1', resourceVersion: this.rv, allowWatchBookmarks: 'true', timeoutSeconds: String(240 + Math.floor(Math.random() * 120)) }),
      { accept: TABLE_ACCEPT, signal: this.abort.signal });
    await readLines(res, (line) => {
      if (!line.trim()) return;
      const ev = JSON.parse(line);
      const o = ev.object ?? {};
      if (ev.type === 'ERROR') throw new ApiError(o.code ?? 500, o.reason ?? '', o.message ?? 'watch error');
      if (o.metadata?.resourceVersion) this.rv = o.metadata.resourceVersion;
      if (ev.type === 'BOOKMARK') return;
      if (o.kind !== 'Table') return;
      if (o.columnDefinitions?.length) this.columns = o.columnDefinitions;
      for (const r of o.rows ?? []) {
        if (ev.type === 'DELETED') this.rows.delete(keyOf(r.object));
        else this.put(this.rows, r);
      }
      this.changed();
    });
  }

  private put(into: Map<string, Row<P>>, r: any): void {
    const obj = r.object ?? {};
    const key = keyOf(obj);
    const cells: unknown[] = r.cells ?? [];
    const columns = this.columns;
    into.set(key, { key, cells, p: this.project(obj, (name) => { const i = columns.findIndex((c) => c.name === name); return i < 0 ? '' : String(cells[i] ?? ''); }) });
  }
}

function keyOf(obj: any): string {
  const m = obj?.metadata ?? {};
  return m.namespace ? `${m.namespace}/${m.name}` : String(m.name);
}
