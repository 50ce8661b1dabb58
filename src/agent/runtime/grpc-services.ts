// gRPC service definitions for @grpc/grpc-js, built straight from protobufjs reflection of a .proto
// text. @grpc/proto-loader does the same, but it brings a second protobufjs (v7, beside our v8) and
// the google/protobuf/descriptor reflection (for gRPC server reflection, which skiff never serves):
// about 3 MB of a node agent's resident memory for nothing it uses (measured for issue 4's budget).
import type * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

/** What grpc.loadPackageDefinition takes: fully qualified service name → its methods. */
export type PackageDefinition = Parameters<typeof grpc.loadPackageDefinition>[0];

/**
 * How messages look in JS, as protobufjs' toObject options (the same options proto-loader takes):
 * e.g. `{ longs: String, enums: String, defaults: true }`.
 */
export type ConversionOptions = protobuf.IConversionOptions;

/** Every service of a .proto text (proto3, no imports), with protobufjs' camelCase field names. */
export function packageDefinition(protoText: string, options: ConversionOptions): PackageDefinition {
  const root = protobuf.parse(protoText, { keepCase: false }).root;
  root.resolveAll();
  const def: PackageDefinition = {};
  for (const service of servicesOf(root)) {
    const name = service.fullName.slice(1);   // fullName has a leading dot
    const methods: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
    for (const m of service.methodsArray) {
      const req = m.resolvedRequestType!;
      const res = m.resolvedResponseType!;
      methods[m.name] = {
        path: `/${name}/${m.name}`,
        requestStream: Boolean(m.requestStream),
        responseStream: Boolean(m.responseStream),
        requestSerialize: serializer(req),
        requestDeserialize: deserializer(req, options),
        responseSerialize: serializer(res),
        responseDeserialize: deserializer(res, options),
      };
    }
    def[name] = methods;
  }
  return def;
}

function servicesOf(ns: protobuf.NamespaceBase): protobuf.Service[] {
  return ns.nestedArray.flatMap((o) => o instanceof protobuf.Service ? [o]
    : o instanceof protobuf.Namespace ? servicesOf(o) : []);
}

function serializer(type: protobuf.Type): (value: unknown) => Buffer {
  return (value) => {
    // fromObject converts JS shapes (strings for int64 and enums) into a message.
    const bytes = type.encode(type.fromObject(value as Record<string, unknown>)).finish();
    return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer(type: protobuf.Type, options: ConversionOptions): (bytes: Buffer) => unknown {
  return (bytes) => type.toObject(type.decode(bytes), options);
}
