// The protobufjs schema of every message skiff can decode, built once on first use (parsing the
// generated .proto text takes tens of milliseconds, which a server that never sees protobuf skips).
import protobuf from 'protobufjs';
import { PROTO_FILES } from './schema.js';

let root: protobuf.Root | undefined;

export function protoRoot(): protobuf.Root {
  if (!root) {
    const r = new protobuf.Root();
    for (const text of Object.values(PROTO_FILES)) protobuf.parse(text, r, { keepCase: true });
    r.resolveAll();
    root = r;
  }
  return root;
}

const NO_FLAGS: ReadonlySet<string> = new Set();
const flagCache = new WeakMap<object, ReadonlySet<string>>();

/** The `(go)` flags the generator recorded for a field or message (see schema.ts), parsed once. */
export function goFlags(options: Record<string, unknown> | undefined): ReadonlySet<string> {
  if (!options) return NO_FLAGS;
  let flags = flagCache.get(options);
  if (!flags) {
    const v = options['(go)'];
    flags = typeof v === 'string' ? new Set(v.split(',')) : NO_FLAGS;
    flagCache.set(options, flags);
  }
  return flags;
}
