// File names of a CA rotation's overlap under <data-dir>/server/tls (see ca-rotation.ts). Kept apart
// from certs.ts so the inventory and the CLI can name them without loading the X.509 stack.

/** `<ca>.previous.crt`: the CA that was replaced, still trusted until the rotation is finished. */
export const PREVIOUS_SUFFIX = '.previous.crt';
/** `<ca>.cross.crt`: the new CA's certificate signed by the previous CA (presented in the serving chain). */
export const CROSS_SUFFIX = '.cross.crt';
/** The CAs `skiff certificate rotate-ca` replaces (etcd's own CAs are not rotated by it). */
export const ROTATABLE_CAS = ['server-ca', 'client-ca', 'request-header-ca'] as const;
/** The ones a rotation must be given (the request-header CA is optional). */
export const REQUIRED_CAS = ['server-ca', 'client-ca'] as const;
