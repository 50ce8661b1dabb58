// Everything a request handler needs, assembled once by the server.
import type { Store } from '../storage/types.js';
import type { KindInfo } from '../api/kinds.js';
import type { ResourceRegistry } from './registry.js';
import type { ObjectService } from './objects.js';
import type { CrdManager } from './crds.js';
import type { Authenticator } from './authn.js';
import type { Authorizer } from './authorizer.js';
import type { OpenApiV3 } from './openapi.js';
import type { ServiceAccountTokens } from './serviceaccount-tokens.js';
import type { HealthChecks } from './health.js';

/** A watch that asked for bookmarks, as the server's bookmark timers see it. */
export interface BookmarkWatch {
  send(revision: number, annotations?: Record<string, string>): void;
  /** The storage prefix it watches: which resource's ring it must stay resumable in. */
  readonly prefix: string;
  /** The revision its client knows: the last event or bookmark sent, or where it started. */
  lastRevision: number;
}

export type Converter = (obj: Readonly<Record<string, any>>) => Record<string, any>;

export interface ApiContext {
  store: Store;
  registry: ResourceRegistry;
  objects: ObjectService;
  crds: CrdManager;
  authn: Authenticator;
  authz: Authorizer;
  openapi: OpenApiV3;
  saTokens: ServiceAccountTokens;
  caBundlePem: string;
  /** Watches that asked for bookmarks (server.ts sends them). */
  bookmarks: Set<BookmarkWatch>;
  compactedRevision: () => number;
  /** Conversion of stored objects into a kind's served version, when it is not the stored one. */
  converter: (info: KindInfo) => Converter | undefined;
  /** What /healthz, /livez and /readyz check. */
  health: HealthChecks;
}
