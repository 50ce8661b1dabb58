// The labels and annotations skiff puts on CRI sandboxes and containers. The names are the kubelet's,
// so crictl and other tooling read them as they read a kubelet's; they are also the agent's only
// record of what it runs: after a restart, `adopt()` rebuilds everything from them.

export const POD_NAME_LABEL = 'io.kubernetes.pod.name';
export const POD_NAMESPACE_LABEL = 'io.kubernetes.pod.namespace';
export const POD_UID_LABEL = 'io.kubernetes.pod.uid';
export const CONTAINER_NAME_LABEL = 'io.kubernetes.container.name';
/** Ours: which node's agent owns the object (two agents may share a runtime in tests). */
export const NODE_LABEL = 'skiff.io/node';

export const RESTART_COUNT_ANNOTATION = 'io.kubernetes.container.restartCount';
/** A hash of the container's spec: a changed spec (a new image) restarts the container. */
export const CONTAINER_HASH_ANNOTATION = 'io.kubernetes.container.hash';
export const TERMINATION_MESSAGE_PATH_ANNOTATION = 'io.kubernetes.container.terminationMessagePath';
/** 'init', 'regular' or 'ephemeral': what runs a container is told apart without the pod spec. */
export const CONTAINER_TYPE_ANNOTATION = 'skiff.io/container-type';
export const GRACE_PERIOD_ANNOTATION = 'io.kubernetes.pod.terminationGracePeriod';

export function podLabels(pod: Record<string, any>, nodeName: string): Record<string, string> {
  return {
    [POD_NAME_LABEL]: pod.metadata.name ?? '',
    [POD_NAMESPACE_LABEL]: pod.metadata.namespace ?? '',
    [POD_UID_LABEL]: pod.metadata.uid ?? '',
    [NODE_LABEL]: nodeName,
  };
}

/** `name_namespace(uid)`: how the kubelet names a pod in messages. */
export function podDescription(pod: Record<string, any>): string {
  return `${pod.metadata.name}_${pod.metadata.namespace}(${pod.metadata.uid})`;
}
