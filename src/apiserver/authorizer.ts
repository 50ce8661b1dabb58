// The authorizer chain: the node authorizer speaks for node identities, RBAC for everyone else (and
// for what the node authorizer has no opinion on).
import type { Store } from '../storage/types.js';
import type { Attributes, Decision, RbacAuthorizer, RulesReview } from './rbac.js';
import type { UserInfo } from './authn.js';
import { authorizeNode } from './node-authorizer.js';

export interface Authorizer {
  authorize(a: Attributes): Decision;
  rulesFor(user: UserInfo, namespace: string): RulesReview;
}

export function chainAuthorizer(store: Store, rbac: RbacAuthorizer): Authorizer {
  return {
    authorize(a) {
      return authorizeNode(store, a) ?? rbac.authorize(a);
    },
    rulesFor: (user, ns) => rbac.rulesFor(user, ns),
  };
}
