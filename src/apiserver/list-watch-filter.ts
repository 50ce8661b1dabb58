// What a list or watch through selectors returns, for every client alike (the HTTP handlers and the
// in-process LocalClient both come through ObjectService, which uses these): the selector predicate
// (with a CRD's selectableFields), how a change looks to a filtered watch, and continue tokens.
import type { KindInfo } from '../api/kinds.js';
import { fieldPredicate, labelPredicate, parseFieldSelector, parseLabelSelector } from '../api/selectors.js';
import { errors } from '../api/status.js';
import type { StoredObject, WatchEvent } from '../storage/types.js';

export type ObjectFilter = (o: StoredObject) => boolean;

export interface Selection {
  labelSelector?: string;
  fieldSelector?: string;
  /** One object by name (a watch on `.../<name>` is a watch with `metadata.name=<name>`). */
  name?: string;
}

/** A list or watch resourceVersion: unset, or a revision number (anything else is 400). */
export function parseResourceVersion(v: string | null | undefined): number | undefined {
  if (v === null || v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw errors.badRequest(`invalid resource version "${v}"`);
  return Number(v);
}

/** The selectors of a request's query (`labelSelector`, `fieldSelector`). */
export function selectionOf(q: URLSearchParams, name?: string): Selection {
  return { labelSelector: q.get('labelSelector') ?? undefined, fieldSelector: q.get('fieldSelector') ?? undefined, name };
}

/** The selectors as one predicate; undefined when they select everything. */
export function selectorFilter(info: KindInfo, sel: Selection, selectableFields: readonly string[] = []): ObjectFilter | undefined {
  const lp = labelPredicate(parseLabelSelector(sel.labelSelector ?? ''));
  let fs = sel.fieldSelector ?? '';
  if (sel.name) fs = fs ? `${fs},metadata.name=${sel.name}` : `metadata.name=${sel.name}`;
  const fp = fieldPredicate(parseFieldSelector(fs), `${info.group}/${info.plural}`, [...selectableFields]);
  if (!lp && !fp) return undefined;
  return (o) => (!lp || lp(o.obj.metadata?.labels)) && (!fp || fp(o.obj));
}

export type WatchEventType = WatchEvent['type'];

/**
 * How a change looks to a watcher that sees only what `filter` selects (undefined: not at all). An
 * object that starts matching is ADDED for it and one that stops matching is DELETED, so the watcher's
 * picture of "the selected objects" stays right (Kubernetes' filtered watch does the same).
 */
export function filteredEventType(e: WatchEvent, filter: ObjectFilter | undefined): WatchEventType | undefined {
  const now = !filter || filter(e.object);
  const before = e.prevObject !== undefined && (!filter || filter(e.prevObject));
  if (e.type === 'ADDED') return now ? 'ADDED' : undefined;
  if (e.type === 'DELETED') return before || now ? 'DELETED' : undefined;
  if (now && before) return 'MODIFIED';
  if (now) return 'ADDED';
  if (before) return 'DELETED';
  return undefined;
}

interface ContinueToken { v: 'meta.k8s.io/v1'; rv: number; start: string }

/** A continue token: the revision of the first page and the key (below the collection) to go on after. */
export function encodeContinue(rv: number, start: string): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv, start })).toString('base64url');
}

export function decodeContinue(token: string, compacted: number): ContinueToken {
  let parsed: ContinueToken;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (parsed.v !== 'meta.k8s.io/v1' || typeof parsed.start !== 'string' || typeof parsed.rv !== 'number') throw new Error('bad');
  } catch {
    throw errors.badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
  }
  if (parsed.rv < compacted) {
    throw errors.gone('The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.');
  }
  return parsed;
}
