// Generic ephemeral volumes: the claim made for a pod's `ephemeral` volume is named
// `<pod>-<volume>` (Kubernetes' rule). The ephemeral volume controller creates it, the scheduler
// waits for it, the node authorizer lets the pod's node read it and the agent mounts it: one rule.
export const ephemeralClaimName = (pod: string, volume: string): string => `${pod}-${volume}`;
