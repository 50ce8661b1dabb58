// The failures patch handling reports, shaped and worded as the Kubernetes apiserver shapes them, so
// kubectl prints the same text. Kubernetes passes some patch-library errors through unconverted; those
// surface as 500 with an empty reason (its StatusReasonUnknown) and the library's message.

import { ApiError, errors } from '../../api/status.js';

/** Media types a PATCH may use on a kind without strategic merge metadata (custom resources). */
export const PATCH_TYPES_WITHOUT_STRATEGIC = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/apply-patch+yaml',
];

export const patchErrors = {
  badRequest: (message: string) => errors.badRequest(message),
  /** 422 with Kubernetes' generic wording: the underlying reason is not shown to the client. */
  rejected: () => new ApiError(422, 'Invalid', 'the server rejected our request due to an error in our request', {}),
  /** An error Kubernetes does not convert to a Status: 500, no reason, the raw message. */
  unconverted: (message: string) => new ApiError(500, '', message),
  tooManyOperations: (max: number, got: number) =>
    new ApiError(413, 'RequestEntityTooLarge', `The allowed maximum operations in a JSON patch is ${max}, got ${got}`),
  /** Strategic merge patch on a kind without patch metadata (Kubernetes only offers it for built-in kinds). */
  strategicMergeUnsupported: () =>
    new ApiError(415, 'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: ${PATCH_TYPES_WITHOUT_STRATEGIC.join(', ')}`),
};

/** Go's name for the type encoding/json decodes a JSON value into, as its error messages print it. */
export function goTypeName(v: unknown): string {
  if (v === null || v === undefined) return '<nil>';
  if (Array.isArray(v)) return '[]interface {}';
  switch (typeof v) {
    case 'object': return 'map[string]interface {}';
    case 'string': return 'string';
    case 'boolean': return 'bool';
    case 'number': return Number.isInteger(v) ? 'int64' : 'float64';
    default: return typeof v;
  }
}

/** The JSON kind word encoding/json uses in "cannot unmarshal <kind> into Go value ...". */
export function jsonKindWord(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  switch (typeof v) {
    case 'object': return 'object';
    case 'string': return 'string';
    case 'boolean': return 'bool';
    default: return 'number';
  }
}

/** A decoded JSON value printed as Go's `%v` prints it (maps with sorted keys), for error messages. */
export function goFormat(v: unknown): string {
  if (v === null || v === undefined) return '<nil>';
  if (Array.isArray(v)) return `[${v.map(goFormat).join(' ')}]`;
  if (typeof v === 'object') {
    const entries = Object.keys(v as object).sort().map((k) => `${k}:${goFormat((v as Record<string, unknown>)[k])}`);
    return `map[${entries.join(' ')}]`;
  }
  return String(v);
}
