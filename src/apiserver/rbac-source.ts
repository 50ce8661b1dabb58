// RBAC objects as the authorizer reads them: straight from the watch cache (no copies, no disk).
import type { Store } from '../storage/types.js';
import type { KObject } from '../api/object.js';
import type { RbacSource } from './rbac.js';

const P = '/rbac.authorization.k8s.io/';

export function storeRbacSource(store: Store): RbacSource {
  const list = (prefix: string) => store.list(prefix).items.map((o) => o.obj as KObject);
  return {
    clusterRoles: () => list(`${P}clusterroles/`),
    clusterRoleBindings: () => list(`${P}clusterrolebindings/`),
    roles: (ns) => list(`${P}roles/${ns}/`),
    roleBindings: (ns) => list(`${P}rolebindings/${ns}/`),
    clusterRole: (name) => store.get(`${P}clusterroles/${name}`)?.obj as KObject | undefined,
    role: (ns, name) => store.get(`${P}roles/${ns}/${name}`)?.obj as KObject | undefined,
  };
}
