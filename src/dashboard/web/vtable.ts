// A virtualized table: only the rows in view (plus a margin) exist in the DOM, so a list of 50,000
// pods scrolls like one of 50. Rows have one fixed height; the body is a spacer as tall as all rows.
import { clear, h } from './dom.js';

export interface ColumnSpec<R> { title: string; width: string; render: (r: R) => Node | string; className?: string }

const ROW_HEIGHT = 36;
const MARGIN = 8;

export class VTable<R> {
  readonly el: HTMLElement;
  private readonly body: HTMLElement;
  private readonly empty: HTMLElement;
  private rows: R[] = [];
  private drawn = '';
  /** The row elements in the DOM, by row index. */
  private readonly shown = new Map<number, HTMLElement>();
  /** A pointer is down inside the table: a data redraw now would replace the pressed button. */
  private pressed = false;
  private redrawWhenReleased = false;

  constructor(private readonly columns: ColumnSpec<R>[], private readonly keyOf: (r: R) => string,
    private readonly onOpen?: (r: R) => void, testId = '') {
    const template = columns.map((c) => c.width).join(' ');
    const head = h('div', { class: 'vrow vhead', role: 'row' }, columns.map((c) => h('div', { role: 'columnheader', class: c.className ?? '' }, c.title)));
    head.style.gridTemplateColumns = template;
    this.body = h('div', { class: 'vbody', role: 'rowgroup' });
    this.empty = h('div', { class: 'empty' });
    this.el = h('div', { class: 'vtable', role: 'table', 'data-test': testId || undefined }, head, this.body, this.empty);
    this.el.style.setProperty('--cols', template);
    this.el.addEventListener('scroll', () => this.draw(false), { passive: true });
    // A click is a press and a release on the same element. A live update between the two used to
    // rebuild the rows, so the release landed on a new button and the click was lost (seen with the
    // scale buttons while a Deployment's status changed). Data redraws wait for the release, and for
    // the click it makes, which the browser dispatches in the same task.
    this.el.addEventListener('pointerdown', () => {
      this.pressed = true;
      const release = () => {
        document.removeEventListener('pointerup', release, true);
        document.removeEventListener('pointercancel', release, true);
        setTimeout(() => {
          this.pressed = false;
          if (this.redrawWhenReleased) { this.redrawWhenReleased = false; this.draw(true); }
        }, 0);
      };
      document.addEventListener('pointerup', release, true);
      document.addEventListener('pointercancel', release, true);
    }, true);
    new ResizeObserver(() => this.draw(false)).observe(this.el);
  }

  setRows(rows: R[], emptyText = 'Nothing here.'): void {
    this.rows = rows;
    this.empty.textContent = rows.length ? '' : emptyText;
    if (this.pressed) { this.redrawWhenReleased = true; return; }
    this.draw(true);
  }

  /**
   * Draws the rows in view. Scrolling (force false) only adds the rows that come into view and
   * removes those that left, so a frame costs a handful of rows; a data change redraws them all.
   */
  draw(force: boolean): void {
    this.body.style.height = `${this.rows.length * ROW_HEIGHT}px`;
    const top = Math.max(0, this.el.scrollTop - ROW_HEIGHT);
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - MARGIN);
    const last = Math.min(this.rows.length, Math.ceil((top + (this.el.clientHeight || 800)) / ROW_HEIGHT) + MARGIN);
    const sig = `${first}:${last}`;
    if (!force && sig === this.drawn) return;
    this.drawn = sig;
    if (force) { clear(this.body); this.shown.clear(); }
    for (const [i, el] of this.shown) if (i < first || i >= last) { el.remove(); this.shown.delete(i); }
    const frag = document.createDocumentFragment();
    for (let i = first; i < last; i++) {
      if (this.shown.has(i)) continue;
      const row = this.rowElement(this.rows[i]!, i);
      this.shown.set(i, row);
      frag.append(row);
    }
    this.body.append(frag);
  }

  private rowElement(r: R, i: number): HTMLElement {
    const row = h('div', { class: 'vrow', role: 'row', 'data-key': this.keyOf(r), tabindex: this.onOpen ? 0 : undefined },
      this.columns.map((c) => h('div', { role: 'cell', class: c.className ?? '' }, c.render(r))));
    row.style.transform = `translateY(${i * ROW_HEIGHT}px)`;
    if (this.onOpen) {
      const open = this.onOpen;
      row.addEventListener('click', (ev) => { if (!(ev.target as Element).closest('button, a, select, input')) open(r); });
      row.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' && ev.target === row) open(r); });
    }
    return row;
  }
}
