// The Kubernetes version skiff's API reports. kubectl's dispatcher picks its binary by `minor`.
export const VERSION = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.4+skiff',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2026-11-22T00:00:00Z',
  goVersion: `node${process.versions.node}`,
  compiler: 'tsc',
  platform: `linux/${process.arch === 'x64' ? 'amd64' : process.arch}`,
};
