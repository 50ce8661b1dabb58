// GET on collections: list (paged, filtered, optionally as a Table) and watch (a chunked stream of
// JSON events served from the watch cache, each object encoded once for all watchers).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KindInfo } from '../../api/kinds.js';
import { apiVersionOf } from '../../api/kinds.js';
import type { StoredObject, WatchIndex } from '../../storage/types.js';
import { ApiError, errors } from '../../api/status.js';
import { parseFieldSelector } from '../../api/selectors.js';
import { parseResourceVersion, selectionOf } from '../list-watch-filter.js';
import { isTrue } from '../request-info.js';
import { parseNonNegInt } from './request-options.js';
import { sendListBody, type Negotiated } from '../http.js';
import { WatchStream } from './watch-stream.js';
import type { ApiContext, BookmarkWatch } from '../context.js';
import { collectionPrefix } from '../registry.js';
import { tableFor, type TableView } from '../table-view.js';

/** ListOptions validation, as Kubernetes answers it (422 on meta.k8s.io ListOptions). */
function checkResourceVersionMatch(q: URLSearchParams, rv: number | undefined): void {
  const m = q.get('resourceVersionMatch');
  if (m === null || m === '') return;
  const invalid = (message: string) => errors.invalid('ListOptions', 'meta.k8s.io', '', [{ reason: 'FieldValueInvalid', field: 'resourceVersionMatch', message }]);
  if (m !== 'NotOlderThan' && m !== 'Exact') throw invalid(`Unsupported value: "${m}": supported values: "Exact", "NotOlderThan"`);
  if (rv === undefined && q.get('sendInitialEvents') === null) throw invalid('Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided');
  if (m === 'Exact' && rv === 0) throw invalid('Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"');
}

export async function serveList(ctx: ApiContext, res: ServerResponse, info: KindInfo, ns: string | undefined, q: URLSearchParams, neg: Negotiated): Promise<void> {
  const filter = ctx.objects.filterFor(info, selectionOf(q));
  // Kubernetes treats a negative limit as no limit.
  const limit = parseNonNegInt(q, 'limit', true);
  const rv = parseResourceVersion(q.get('resourceVersion'));
  checkResourceVersionMatch(q, rv);
  parseNonNegInt(q, 'timeoutSeconds');
  const result = ctx.objects.listPage(info, ns, { filter, limit, continue: q.get('continue') ?? undefined, index: nodeNameIndex(info, q) });
  const metaOut: Record<string, unknown> = { resourceVersion: String(result.revision) };
  if (result.continue !== undefined) metaOut.continue = result.continue;
  if (result.remainingItemCount !== undefined) metaOut.remainingItemCount = result.remainingItemCount;
  if (neg.as === 'Table') {
    const view = tableFor(ctx, info);
    const includeObject = q.get('includeObject') ?? 'Metadata';
    const now = Date.now();
    const head = `{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":${JSON.stringify(metaOut)},"columnDefinitions":${JSON.stringify(view.columns)},"rows":[`;
    await sendListBody(res, head, result.items, (o) => JSON.stringify(tableRowOf(view, o, includeObject, now)), ']}');
    return;
  }
  if (neg.as === 'PartialObjectMetadataList' || neg.as === 'PartialObjectMetadata') {
    const head = `{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":${JSON.stringify(metaOut)},"items":[`;
    await sendListBody(res, head, result.items, (o) => JSON.stringify({ kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.obj.metadata }), ']}');
    return;
  }
  const conv = ctx.converter(info);
  const head = `{"kind":${JSON.stringify(info.kind + 'List')},"apiVersion":${JSON.stringify(apiVersionOf(info))},"metadata":${JSON.stringify(metaOut)},"items":[`;
  await sendListBody(res, head, result.items, conv ? (o) => JSON.stringify(conv(o.obj)) : (o) => o.json(), ']}');
}

export function tableRowOf(view: TableView, o: StoredObject, includeObject: string, now: number): Record<string, unknown> {
  const row: Record<string, unknown> = { cells: view.row(o.obj, now) };
  if (includeObject === 'Object') row.object = o.obj;
  else if (includeObject !== 'None') row.object = { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.obj.metadata };
  return row;
}

// ---- watch -----------------------------------------------------------------------------------

/**
 * The line a watch event is sent as, built once per event and shared by every watcher it goes to
 * (1,000 watchers of one object would otherwise build 1,000 copies). The store delivers an event to
 * all its watchers in one synchronous pass, so remembering the last line is enough; keeping lines
 * for longer would hold a second copy of every object's text.
 */
let lastLine: { type: string; o: StoredObject; line: string } | undefined;
function eventLine(type: string, o: StoredObject): string {
  if (lastLine?.o === o && lastLine.type === type) return lastLine.line;
  const line = `{"type":"${type}","object":${o.json()}}\n`;
  lastLine = { type, o, line };
  return line;
}

/** One function for every watcher of the index (the store requires the same extract per name). */
const podNodeName = (o: Readonly<Record<string, any>>): string => o.spec?.nodeName ?? '';

/**
 * A pod watch selecting `spec.nodeName=X` (every kubelet's, and the scheduler's `spec.nodeName=`) is
 * registered under that value, so a pod event reaches its node's watcher only, not all of them; a
 * list with that selector reads the node's pods from the cache's index, as kube-apiserver's watch
 * cache indexes pods by node.
 */
function nodeNameIndex(info: KindInfo, q: URLSearchParams): WatchIndex | undefined {
  if (info.group !== '' || info.plural !== 'pods') return undefined;
  const r = parseFieldSelector(q.get('fieldSelector') ?? '').find((f) => f.field === 'spec.nodeName' && f.op === '=');
  return r ? { name: 'spec.nodeName', extract: podNodeName, value: r.value } : undefined;
}

export function serveWatch(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, info: KindInfo,
  ns: string | undefined, name: string | undefined, q: URLSearchParams, neg: Negotiated): void {
  const filter = ctx.objects.filterFor(info, selectionOf(q, name));
  const rv = parseResourceVersion(q.get('resourceVersion'));
  const timeout = parseNonNegInt(q, 'timeoutSeconds');
  const bookmarks = isTrue(q.get('allowWatchBookmarks'));
  const sendInitial = q.get('sendInitialEvents');
  const rvMatch = q.get('resourceVersionMatch');
  const initialEvents = isTrue(sendInitial);
  if (sendInitial !== null && rvMatch !== 'NotOlderThan') {
    throw errors.invalid('ListOptions', 'meta.k8s.io', '', [{ reason: 'FieldValueForbidden', field: 'sendInitialEvents', message: "Forbidden: sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan" }]);
  }
  if (initialEvents && !bookmarks) {
    throw errors.invalid('ListOptions', 'meta.k8s.io', '', [{ reason: 'FieldValueForbidden', field: 'allowWatchBookmarks', message: 'Forbidden: allowWatchBookmarks must be set to true when sendInitialEvents is set to true' }]);
  }
  checkResourceVersionMatch(q, rv);
  const table = neg.as === 'Table' ? tableFor(ctx, info) : undefined;
  const includeObject = q.get('includeObject') ?? 'Metadata';
  const conv = ctx.converter(info);
  let firstTable = true;

  res.writeHead(200, {
    'Content-Type': table ? 'application/json;as=Table;v=v1;g=meta.k8s.io' : 'application/json',
    'Cache-Control': 'no-cache, private',
    'Transfer-Encoding': 'chunked',
  });
  res.flushHeaders();

  const encode = (type: string, o: StoredObject): string => {
    if (table) {
      const t: Record<string, unknown> = { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: { resourceVersion: o.obj.metadata.resourceVersion } };
      t.columnDefinitions = firstTable ? table.columns : [];
      firstTable = false;
      t.rows = [tableRowOf(table, o, includeObject, Date.now())];
      return `{"type":"${type}","object":${JSON.stringify(t)}}\n`;
    }
    if (conv) return `{"type":"${type}","object":${JSON.stringify(conv(o.obj))}}\n`;
    return eventLine(type, o);
  };

  let closed = false;
  let watcher: { stop(): void } | undefined;
  let timer: NodeJS.Timeout | undefined;
  /** Stops the watch; `drop` ends the response at once, otherwise once what is owed is written. */
  const close = (drop = true) => {
    if (closed) return;
    closed = true;
    watcher?.stop();
    if (timer) clearTimeout(timer);
    ctx.bookmarks.delete(bookmarkWatch);
    if (drop) res.end();
    else stream.end();
  };
  // A watcher that falls too far behind is dropped; its client lists and watches again.
  const stream = new WatchStream(res, { encode, tooSlow: () => close() });
  const write = (line: string) => {
    if (!closed) stream.line(line);
  };
  const sendBookmark = (revision: number, annotations?: Record<string, string>) => {
    const obj: Record<string, any> = { kind: info.kind, apiVersion: apiVersionOf(info), metadata: { resourceVersion: String(revision) } };
    if (annotations) obj.metadata.annotations = annotations;
    write(`{"type":"BOOKMARK","object":${JSON.stringify(obj)}}\n`);
    bookmarkWatch.lastRevision = revision;
  };
  const bookmarkWatch: BookmarkWatch = {
    send: sendBookmark, prefix: collectionPrefix(info, info.namespaced ? ns || undefined : undefined), lastRevision: rv ?? ctx.store.revision(),
  };
  req.on('close', () => close());
  res.on('error', () => close());

  // A resourceVersion the store has not reached (a client ahead of a restored snapshot, or a
  // made-up number) would otherwise wait in silence: as Kubernetes' watch cache, wait a little
  // for it, then answer "Too large resource version".
  if (rv !== undefined && rv > ctx.store.revision()) {
    const deadline = Date.now() + FUTURE_RV_WAIT_MS;
    const poll = () => {
      if (closed) return;
      if (rv <= ctx.store.revision()) { start(); return; }
      if (Date.now() >= deadline) {
        write(`{"type":"ERROR","object":${JSON.stringify(tooLargeResourceVersion(rv, ctx.store.revision()).toStatus())}}\n`);
        close(false);
        return;
      }
      setTimeout(poll, 100);
    };
    poll();
    return;
  }
  start();

  function start(): void {
  try {
    watcher = ctx.objects.watch(info, ns, {
      filter, resourceVersion: rv, initialEvents, index: nodeNameIndex(info, q),
      onInitial: (items) => stream.initialEvents(items),
      onListed: (revision) => {
        // The initial state is this revision's (its events carry the objects' own, older revisions).
        bookmarkWatch.lastRevision = revision;
        if (initialEvents) sendBookmark(revision, { 'k8s.io/initial-events-end': 'true' });
      },
    }, (type, o) => {
      if (closed) return;
      stream.event(type, o);
      bookmarkWatch.lastRevision = o.modRevision;
    });
    if (closed) watcher.stop();   // dropped while its replay was queued (too far behind already)
  } catch (e) {
    const st = e instanceof ApiError ? e.toStatus() : errors.internal(String(e)).toStatus();
    write(`{"type":"ERROR","object":${JSON.stringify(st)}}\n`);
    close(false);
    return;
  }
  if (bookmarks) ctx.bookmarks.add(bookmarkWatch);
  // Kubernetes spreads watch lifetimes (30–60 min) so clients don't all re-list at once.
  const seconds = timeout ?? 1800 + Math.floor(Math.random() * 1800);
  timer = setTimeout(() => {
    if (bookmarks) sendBookmark(ctx.store.revision());
    close(false);
  }, seconds * 1000);
  }
}

/** How long a watch from a future resourceVersion waits for the store to reach it (Kubernetes: 3 s). */
const FUTURE_RV_WAIT_MS = 3000;

/** Kubernetes' error for a resourceVersion beyond the store's (504 Timeout, retry after 1 s). */
export function tooLargeResourceVersion(requested: number, current: number): ApiError {
  return new ApiError(504, 'Timeout', `Too large resource version: ${requested}, current: ${current}`, {
    causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }], retryAfterSeconds: 1,
  });
}
