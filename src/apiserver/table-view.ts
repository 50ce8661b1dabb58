// The Table a `kubectl get` sees for a kind: built-in columns or a CRD's additionalPrinterColumns.
import type { KindInfo } from '../api/kinds.js';
import type { ApiContext } from './context.js';
import { customResourceTable, tableColumns, tableRow } from './tables.js';

export interface TableView {
  columns: unknown[];
  row: (obj: Readonly<Record<string, any>>, now: number) => unknown[];
}

const cache = new Map<string, TableView>();

export function tableFor(ctx: ApiContext, info: KindInfo): TableView {
  if (info.crd) {
    const cols = ctx.crds.versionInfo(info)?.printerColumns ?? [];
    return customResourceTable(cols);
  }
  const key = `${info.group}/${info.plural}`;
  let v = cache.get(key);
  if (!v) {
    v = { columns: tableColumns(info.group, info.plural), row: (obj, now) => tableRow(info.group, info.plural, obj, now) };
    cache.set(key, v);
  }
  return v;
}
