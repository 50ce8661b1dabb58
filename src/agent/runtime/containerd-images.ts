// containerd's own image metadata service (containerd.services.images.v1.Images), for what CRI cannot
// do: give a pulled image another name. In containerd an image is only a name pointing at a content
// descriptor, so a second name for the same descriptor is the same image; the CRI plugin learns of
// new and deleted names from containerd's image events and updates its cache from them.
import * as grpc from '@grpc/grpc-js';
import { packageDefinition } from './grpc-services.js';
import { criTarget } from './cri-client.js';
import { CRI_NAMESPACE } from './images.js';

// Message names and field numbers follow containerd's api/services/images/v1 and api/types; only the
// calls and fields skiff uses (timestamps and List are left out: protobuf skips unknown fields).
const IMAGES_PROTO = `
syntax = "proto3";
package containerd.services.images.v1;

service Images {
  rpc Get(GetImageRequest) returns (GetImageResponse);
  rpc Create(CreateImageRequest) returns (CreateImageResponse);
  rpc Update(UpdateImageRequest) returns (UpdateImageResponse);
  rpc Delete(DeleteImageRequest) returns (Empty);
}

message Descriptor {
  string media_type = 1;
  string digest = 2;
  int64 size = 3;
  map<string, string> annotations = 5;
}
message Image {
  string name = 1;
  map<string, string> labels = 2;
  Descriptor target = 3;
}
message FieldMask { repeated string paths = 1; }
message Empty {}
message GetImageRequest { string name = 1; }
message GetImageResponse { Image image = 1; }
message CreateImageRequest { Image image = 1; }
message CreateImageResponse { Image image = 1; }
message UpdateImageRequest {
  Image image = 1;
  FieldMask update_mask = 2;
}
message UpdateImageResponse { Image image = 1; }
message DeleteImageRequest {
  string name = 1;
  bool sync = 2;
}
`;

export interface Descriptor {
  mediaType: string;
  digest: string;
  /** int64 as a decimal string. */
  size: string;
  annotations: Record<string, string>;
}

export interface ContainerdImage {
  name: string;
  labels: Record<string, string>;
  target: Descriptor;
}

const TIMEOUT_MS = 30_000;

type Unary = (req: unknown, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: any) => void) => void;

/** A failed Images call, with the gRPC status (NOT_FOUND, ALREADY_EXISTS...) kept for callers. */
export class ContainerdImagesError extends Error {
  constructor(readonly rpc: string, readonly code: grpc.status, details: string) {
    super(`containerd Images/${rpc} failed (${grpc.status[code] ?? code}): ${details}`);
    this.name = 'ContainerdImagesError';
  }
}

export class ContainerdImages {
  private readonly client: grpc.Client;

  /** `socket`: containerd's gRPC socket (for containerd, also its CRI endpoint). */
  constructor(readonly socket: string, private readonly namespace = CRI_NAMESPACE) {
    const def = packageDefinition(IMAGES_PROTO, { longs: String, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as any;
    this.client = new pkg.containerd.services.images.v1.Images(criTarget(socket), grpc.credentials.createInsecure());
  }

  private call<T>(rpc: string, req: unknown): Promise<T> {
    const method = (this.client as unknown as Record<string, Unary>)[rpc]!;
    // containerd scopes every object by namespace, named in this header; CRI's images live in k8s.io.
    const meta = new grpc.Metadata();
    meta.set('containerd-namespace', this.namespace);
    return new Promise<T>((resolve, reject) => {
      method.call(this.client, req, meta, { deadline: Date.now() + TIMEOUT_MS }, (err, res) => {
        if (err) reject(new ContainerdImagesError(rpc, err.code, err.details || err.message));
        else resolve(res as T);
      });
    });
  }

  /** The image of that name, or null. */
  async get(name: string): Promise<ContainerdImage | null> {
    try {
      return (await this.call<{ image: ContainerdImage }>('Get', { name })).image;
    } catch (err) {
      if (err instanceof ContainerdImagesError && err.code === grpc.status.NOT_FOUND) return null;
      throw err;
    }
  }

  /** Points `image.name` at `image.target` (with its labels), creating the name or moving it. */
  async put(image: ContainerdImage): Promise<void> {
    try {
      await this.call('Create', { image });
    } catch (err) {
      if (!(err instanceof ContainerdImagesError && err.code === grpc.status.ALREADY_EXISTS)) throw err;
      // An empty update mask replaces every field.
      await this.call('Update', { image });
    }
  }

  /** Removes the name; content still named by other images stays (containerd's GC follows names). */
  async delete(name: string): Promise<void> {
    try {
      await this.call('Delete', { name, sync: false });
    } catch (err) {
      if (!(err instanceof ContainerdImagesError && err.code === grpc.status.NOT_FOUND)) throw err;
    }
  }

  close(): void {
    this.client.close();
  }
}
