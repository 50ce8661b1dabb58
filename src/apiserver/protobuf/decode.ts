// Decodes `application/vnd.kubernetes.protobuf` request bodies (kubectl's typed commands send
// nothing else and do not retry as JSON) into the plain object a JSON client would have sent.
//
// Wire form: the 4 bytes `k8s\0`, then a runtime.Unknown message whose typeMeta names the kind and
// whose raw field holds the object's own protobuf encoding.
import { ApiError, errors } from '../../api/status.js';
import { renderMessage, RenderError } from './go-json.js';
import { protoRoot } from './root.js';
import { KINDS } from './schema.js';

export const PROTOBUF_MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);
export const PROTOBUF_CONTENT_TYPE = 'application/vnd.kubernetes.protobuf';

/** DeleteOptions is registered in every group version, so any known apiVersion may carry it. */
const DELETE_OPTIONS = KINDS['meta.k8s.io/v1'].DeleteOptions;

export interface DecodedBody {
  apiVersion: string;
  kind: string;
  object: Record<string, unknown>;
}

/** Throws only ApiError (400 BadRequest), whatever the bytes. */
export function decodeProtobuf(body: Buffer): DecodedBody {
  try {
    return decode(body);
  } catch (err) {
    if (err instanceof ApiError) throw err;
    // protobufjs reports truncation and bad wire types as plain Errors; deep nesting can end in a
    // RangeError from the stack. All of them mean the body is not a valid message.
    return fail(err instanceof Error ? err.message : String(err));
  }
}

/** `apiVersion/kind` of every kind decodeProtobuf accepts (DeleteOptions once, as meta.k8s.io/v1). */
export function supportedProtobufKinds(): string[] {
  return Object.entries(KINDS).flatMap(([gv, kinds]) => Object.keys(kinds).map((k) => `${gv}/${k}`));
}

function decode(body: Buffer): DecodedBody {
  if (body.length === 0) fail('empty data');
  if (body.length < PROTOBUF_MAGIC.length || !body.subarray(0, PROTOBUF_MAGIC.length).equals(PROTOBUF_MAGIC)) {
    fail(`provided data does not appear to be a protobuf message, expected prefix [${[...PROTOBUF_MAGIC].join(' ')}]`);
  }
  if (body.length === PROTOBUF_MAGIC.length) fail('empty body');

  const root = protoRoot();
  const unknown = root.lookupType('k8s.io.apimachinery.pkg.runtime.Unknown').decode(body.subarray(PROTOBUF_MAGIC.length)) as unknown as {
    typeMeta?: { apiVersion?: string; kind?: string }; raw?: Uint8Array;
  };
  const apiVersion = unknown.typeMeta?.apiVersion ?? '';
  const kind = unknown.typeMeta?.kind ?? '';
  const typeMeta = JSON.stringify({ apiVersion, kind });
  if (!kind) fail(`Object 'Kind' is missing in '${typeMeta}'`);
  if (!apiVersion) fail(`Object 'apiVersion' is missing in '${typeMeta}'`);

  const type = root.lookupType(messageFor(apiVersion, kind));
  const message = type.decode(unknown.raw ?? new Uint8Array()) as unknown as Record<string, unknown>;
  let rendered;
  try {
    rendered = renderMessage(type, message) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof RenderError) fail(`${kind}: ${err.message}`);
    throw err;
  }
  return { apiVersion, kind, object: { kind, apiVersion, ...rendered } };
}

function messageFor(apiVersion: string, kind: string): string {
  // Own-property checks: the names come from the client and must not reach Object.prototype.
  const kinds = Object.hasOwn(KINDS, apiVersion) ? KINDS[apiVersion] : undefined;
  if (kinds && Object.hasOwn(kinds, kind)) return kinds[kind];
  if (kinds && kind === 'DeleteOptions') return DELETE_OPTIONS;
  return fail(`no kind "${kind}" is registered for version "${apiVersion}"`);
}

function fail(message: string): never {
  throw errors.badRequest(`unable to decode protobuf body: ${message}`);
}
