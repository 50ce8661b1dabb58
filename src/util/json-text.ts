// Scanning JSON text without parsing it: where a string or a value ends. Used to bound a body's
// nesting before a parser sees it (apiserver/decode.ts) and to place a member in a stored
// object's text (storage/stored.ts). Linear and iterative: hostile text costs its length.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/** The index just past the string whose opening quote is at `i`, or -1 if it never closes. */
export function jsonStringEnd(text: string, i: number): number {
  let from = i + 1;
  for (;;) {
    const q = text.indexOf('"', from);
    if (q < 0) return -1;
    let slashes = 0;
    for (let k = q - 1; text.charCodeAt(k) === BACKSLASH; k--) slashes++;
    if (slashes % 2 === 0) return q + 1;
    from = q + 1;
  }
}

/**
 * The index just past the value that starts at `i` in compact JSON (as JSON.stringify writes it:
 * a scalar ends at the next `,`, `}` or `]`), or -1 if it never closes.
 */
export function jsonValueEnd(text: string, i: number): number {
  const first = text.charCodeAt(i);
  if (first === QUOTE) return jsonStringEnd(text, i);
  if (first !== OPEN_BRACE && first !== OPEN_BRACKET) {
    let j = i;
    for (; j < text.length; j++) {
      const c = text.charCodeAt(j);
      if (c === COMMA || c === CLOSE_BRACE || c === CLOSE_BRACKET) break;
    }
    return j;
  }
  let depth = 0;
  for (let j = i; j < text.length; j++) {
    const c = text.charCodeAt(j);
    if (c === QUOTE) {
      const past = jsonStringEnd(text, j);
      if (past < 0) return -1;
      j = past - 1;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
    } else if ((c === CLOSE_BRACE || c === CLOSE_BRACKET) && --depth === 0) {
      return j + 1;
    }
  }
  return -1;
}

/** The deepest `{`/`[` nesting of JSON text (strings skipped), stopping early past `limit`. */
export function jsonDepth(text: string, limit: number): number {
  let depth = 0, max = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const past = jsonStringEnd(text, i);
      if (past < 0) break;
      i = past - 1;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > max) { max = depth; if (max > limit) return max; }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return max;
}
