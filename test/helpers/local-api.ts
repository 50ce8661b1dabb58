// The in-process API for tests of clients and control loops: a real SQLite backend in a temp dir,
// the watch cache, the registry and the ObjectService, assembled as `skiff server` assembles them
// (src/server/run.ts), with the namespaces a fresh server has. Everything is closed and the temp
// dir removed when the test ends, pass or fail.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { SqliteBackend } from '../../src/storage/sqlite.js';
import { CacheStore } from '../../src/storage/cache.js';
import { ResourceRegistry } from '../../src/apiserver/registry.js';
import { CrdManager } from '../../src/apiserver/crds.js';
import { Admission } from '../../src/apiserver/admission.js';
import { ServiceAllocator } from '../../src/apiserver/allocators.js';
import { ObjectService, type Actor } from '../../src/apiserver/objects.js';
import { LocalClient } from '../../src/apiserver/local-client.js';
import { Resources } from '../../src/client/types.js';

export const TEST_ACTOR: Actor = { user: 'system:kube-controller-manager', groups: ['system:masters'], manager: 'kube-controller-manager' };

export interface LocalApi {
  store: CacheStore;
  backend: SqliteBackend;
  registry: ResourceRegistry;
  objects: ObjectService;
  /** A LocalClient acting as TEST_ACTOR. */
  client: LocalClient;
}

export async function startLocalApi(t: TestContext, opts: { ringSize?: number; namespaces?: string[] } = {}): Promise<LocalApi> {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-local-api-'));
  const backend = new SqliteBackend(join(dir, 'state.db'));
  const store = new CacheStore(backend, { ringSize: opts.ringSize });
  // Registered before start so a failing start still removes the dir (after hooks run in reverse).
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  t.after(() => store.close());
  await store.start();
  const registry = new ResourceRegistry();
  const crds = new CrdManager(store, registry);
  crds.start();
  const services = new ServiceAllocator(store, { serviceCidr: '10.43.0.0/16', nodePortRange: [30000, 32767] });
  const objects = new ObjectService(store, registry, services, new Admission(store, crds), {
    selectableFields: (info) => crds.versionInfo(info)?.selectableFields ?? [],
    compactedRevision: () => backend.compactedRevision(),
  });
  const client = new LocalClient(objects, TEST_ACTOR);
  for (const name of opts.namespaces ?? ['default', 'kube-system']) {
    await client.create(Resources.namespaces, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  }
  return { store, backend, registry, objects, client };
}
