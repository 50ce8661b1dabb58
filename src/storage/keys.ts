// Key arithmetic shared by the backend and the cache. Keys are ASCII paths
// `/<group>/<resource>/[<namespace>/]<name>`, so code-unit order equals SQLite's byte order.

/** The smallest string greater than every string that starts with `prefix` ('' has none: undefined). */
export function prefixEnd(prefix: string): string | undefined {
  if (prefix === '') return undefined;
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

/** `/<group>/<resource>/` of a key or prefix, or undefined when it does not reach that deep. */
export function resourceOf(keyOrPrefix: string): string | undefined {
  const a = keyOrPrefix.indexOf('/', 1);
  const b = a < 0 ? -1 : keyOrPrefix.indexOf('/', a + 1);
  return b < 0 ? undefined : keyOrPrefix.slice(0, b + 1);
}
