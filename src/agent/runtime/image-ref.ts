// Image references as containerd stores them: fully qualified (`docker.io/library/busybox:latest`).
// CRI accepts familiar names and normalizes them itself, but names we write into archives (and compare
// against CRI's repoTags) must already be in the stored form, or an import and a lookup miss each other.

const DEFAULT_DOMAIN = 'docker.io';

/** `busybox` → `docker.io/library/busybox:latest`; `reg.local:5000/a/b@sha256:…` stays as is. */
export function normalizeImageRef(ref: string): string {
  if (ref === '' || /\s/.test(ref)) throw new Error(`invalid image reference ${JSON.stringify(ref)}`);
  const slash = ref.indexOf('/');
  const first = slash < 0 ? '' : ref.slice(0, slash);
  // Docker's rule: the first component is a registry only if it looks like a host (a dot, a port, or localhost).
  const hasDomain = first !== '' && (first.includes('.') || first.includes(':') || first === 'localhost');
  let name = hasDomain ? ref : `${DEFAULT_DOMAIN}/${ref}`;
  // Official images live under `library/` on Docker Hub, also when the domain was written out.
  if (name.startsWith(`${DEFAULT_DOMAIN}/`) && !name.slice(DEFAULT_DOMAIN.length + 1).includes('/')) {
    name = `${DEFAULT_DOMAIN}/library/${name.slice(DEFAULT_DOMAIN.length + 1)}`;
  }
  const lastSlash = name.lastIndexOf('/');
  const tail = name.slice(lastSlash + 1);
  if (!tail.includes(':') && !tail.includes('@')) name += ':latest';
  return name;
}
