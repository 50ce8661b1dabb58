// What kubectl's STATUS column says about a pod's phase (the dashboard's pod rows carry no status).
/**
 * The pod's phase from the STATUS kubectl prints (the rows do not carry the status itself): a
 * container waiting or crash-looping is still a Running or Pending pod, as its phase says.
 */
export function phaseOf(status: string): string {
  if (status === 'Running' || status === 'Terminating' || status === 'NotReady' || status === 'CrashLoopBackOff') return 'Running';
  if (status === 'Completed' || status === 'Succeeded') return 'Succeeded';
  if (/^(Failed|Error|OOMKilled|Evicted|DeadlineExceeded|ContainerStatusUnknown|ExitCode:|Signal:|Shutdown|NodeAffinity|OutOf)/.test(status)) return 'Failed';
  if (status === 'Unknown') return 'Unknown';
  return 'Pending';
}
