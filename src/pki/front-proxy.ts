// Names of the front proxy (API aggregation) that the certificates and the published trust
// settings must agree on. Kept apart from certs.ts so the server can read them without loading the
// X.509 stack (certs.ts runs in a worker).

/** The front proxy's client certificate CN, which extension API servers allow (k3s's name). */
export const AUTH_PROXY_USER = 'system:auth-proxy';
