// Kubernetes `Status` errors. Every failure the API returns is one of these, worded as Kubernetes
// words it (kubectl and client libraries print `message` verbatim and branch on `reason`/`code`).

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface StatusBody {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message: string;
  reason: string;
  details?: StatusDetails;
  code: number;
}

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
  }

  toStatus(): StatusBody {
    const s: StatusBody = {
      kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure',
      message: this.message, reason: this.reason, code: this.code,
    };
    if (this.details) s.details = this.details;
    return s;
  }
}

/** `deployments.apps` or `pods` (core group has no suffix), as Kubernetes names a resource in messages. */
export function qualifiedResource(resource: string, group: string): string {
  return group ? `${resource}.${group}` : resource;
}

export const errors = {
  badRequest: (message: string) => new ApiError(400, 'BadRequest', message),
  unauthorized: (message = 'Unauthorized') => new ApiError(401, 'Unauthorized', message),
  forbidden: (user: string, verb: string, resource: string, group: string, namespace?: string, name?: string, subresource?: string) => {
    const res = subresource ? `${resource}/${subresource}` : resource;
    const scope = namespace ? ` in the namespace "${namespace}"` : ' at the cluster scope';
    // The object is named by its resource alone (`pods "x"`); the subresource shows in what was refused.
    const msg = `${resource}${group ? '.' + group : ''}${name ? ` "${name}"` : ''} is forbidden: User "${user}" cannot ${verb} resource "${res}" in API group "${group}"${scope}`;
    return new ApiError(403, 'Forbidden', msg, { name, group, kind: resource });
  },
  notFound: (resource: string, group: string, name: string) =>
    new ApiError(404, 'NotFound', `${qualifiedResource(resource, group)} "${name}" not found`, { name, group, kind: resource }),
  notFoundPath: () => new ApiError(404, 'NotFound', 'the server could not find the requested resource'),
  methodNotAllowed: (verb: string) => new ApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource (${verb})`),
  notAcceptable: (type: string) => new ApiError(406, 'NotAcceptable', `the server was unable to respond with a content type that the client supports (${type})`),
  alreadyExists: (resource: string, group: string, name: string) =>
    new ApiError(409, 'AlreadyExists', `${qualifiedResource(resource, group)} "${name}" already exists`, { name, group, kind: resource }),
  conflict: (resource: string, group: string, name: string, why = 'the object has been modified; please apply your changes to the latest version and try again') =>
    new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${qualifiedResource(resource, group)} "${name}": ${why}`, { name, group, kind: resource }),
  gone: (message: string) => new ApiError(410, 'Expired', message),
  tooLarge: (message = 'Request entity too large: limit is 3145728') => new ApiError(413, 'RequestEntityTooLarge', message),
  unsupportedMediaType: (type: string) => new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got ${type})`),
  /** 422: `Deployment.apps "x" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0` */
  invalid: (kind: string, group: string, name: string, causes: StatusCause[]) => {
    const what = `${kind}${group ? '.' + group : ''} "${name}"`;
    const list = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : `${c.message}`));
    const msg = list.length === 1 ? `${what} is invalid: ${list[0]}` : `${what} is invalid: [${list.join(', ')}]`;
    return new ApiError(422, 'Invalid', msg, { name, group, kind, causes });
  },
  tooManyRequests: (message: string, retryAfterSeconds = 1) => new ApiError(429, 'TooManyRequests', message, { retryAfterSeconds }),
  internal: (message: string) => new ApiError(500, 'InternalError', `Internal error occurred: ${message}`),
  timeout: (message: string) => new ApiError(504, 'Timeout', message),
};

/** Causes as Kubernetes' field.ErrorList renders them. */
export const cause = {
  required: (field: string, detail = '') => ({ reason: 'FieldValueRequired', field, message: `Required value${detail ? ': ' + detail : ''}` }),
  invalid: (field: string, value: unknown, detail: string) => ({ reason: 'FieldValueInvalid', field, message: `Invalid value: ${renderValue(value)}: ${detail}` }),
  notSupported: (field: string, value: unknown, valid: string[]) => ({ reason: 'FieldValueNotSupported', field, message: `Unsupported value: ${renderValue(value)}: supported values: ${valid.map((v) => `"${v}"`).join(', ')}` }),
  duplicate: (field: string, value: unknown) => ({ reason: 'FieldValueDuplicate', field, message: `Duplicate value: ${renderValue(value)}` }),
  forbidden: (field: string, detail: string) => ({ reason: 'FieldValueForbidden', field, message: `Forbidden: ${detail}` }),
  tooLong: (field: string, value: unknown, max: number) => ({ reason: 'FieldValueTooLong', field, message: `Too long: may not be more than ${max} bytes` }),
  typeInvalid: (field: string, value: unknown, detail: string) => ({ reason: 'FieldValueTypeInvalid', field, message: `Invalid value: ${renderValue(value)}: ${detail}` }),
  immutable: (field: string, value: unknown) => ({ reason: 'FieldValueInvalid', field, message: `Invalid value: ${renderValue(value)}: field is immutable` }),
  unknownField: (field: string) => ({ reason: 'FieldValueInvalid', field, message: `unknown field "${field}"` }),
};

function renderValue(v: unknown): string {
  if (typeof v === 'string') return `"${v}"`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null || v === undefined) return 'null';
  return JSON.stringify(v);
}
