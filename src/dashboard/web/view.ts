// What every page gets: the shared stores, the filters from the header, and a way to report results.
import type { Hub } from './hub.js';
import { ApiError } from './api.js';

export interface Ctx {
  hub: Hub;
  /** The namespace filter ('' for all). */
  ns(): string;
  /** The search box, lower-cased. */
  search(): string;
  toast(message: string, bad?: boolean): void;
  go(hash: string): void;
}

export interface View {
  el: HTMLElement;
  /** The filters changed (or ages moved on): draw again. */
  refresh(): void;
  dispose(): void;
}

/** Runs an action, showing the API's own message when it fails (e.g. a 403 from RBAC). */
export async function act(ctx: Ctx, what: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
    ctx.toast(what);
  } catch (e) {
    ctx.toast(e instanceof ApiError ? e.message : `${what} failed: ${String(e)}`, true);
  }
}

export function matches(search: string, ...fields: string[]): boolean {
  if (!search) return true;
  return fields.some((f) => f.toLowerCase().includes(search));
}
