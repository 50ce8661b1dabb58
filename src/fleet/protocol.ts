// What a site and its manager say to each other. Two HTTPS calls, both dialled by the site (it may
// sit behind NAT and has no inbound port):
//
// 1. POST REGISTER_PATH, once: the registration token as a bearer token, the site's name, labels and
//    its identity secret (a random value kept in its data dir). The manager binds the name to that
//    secret and answers with a client certificate for `fleet:cluster:<name>`.
// 2. A WebSocket upgrade of CONNECT_PATH with that certificate, kept open (redialled with backoff):
//    the tunnel of src/tunnel. On it the manager opens one `fleet-status` stream, into which the
//    site writes newline-delimited JSON: a full Report when something changed, else an empty line
//    as the heartbeat (12 bytes of WebSocket and tunnel framing, about 40 with TLS); and a
//    `fleet-api` stream per user request it forwards to the site's API.
import type { BundleResource, ShippedOptions } from './api.js';

export const REGISTER_PATH = '/v1-skiff/fleet/register';
export const CONNECT_PATH = '/v1-skiff/fleet/connect';

/** Cluster names are DNS labels: they appear in URL paths, certificate CNs and object names. */
export const CLUSTER_NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const MAX_CLUSTER_NAME = 63;
/** The identity secret the site generates; shorter ones are refused (guessable). */
export const MIN_SECRET_LENGTH = 32;
/** A report line longer than this is a protocol error (labels and counts fit in a few hundred bytes). */
export const MAX_REPORT_BYTES = 64 * 1024;

export interface RegisterRequest {
  name: string;
  secret: string;
  labels?: Record<string, string>;
}

export interface RegisterResponse {
  name: string;
  certPem: string;
  keyPem: string;
  /** The manager's serving CA (what the site verifies the manager with from then on). */
  caPem: string;
}

/** The site's state: sent whole when any part changes (and first on every connection). */
export interface Report {
  version: string;
  labels: Record<string, string>;
  nodes: { ready: number; total: number };
  capacity: { cpu: string; memory: string; pods: string };
}

export function sameReport(a: Report | undefined, b: Report | undefined): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Defaults (flags): a heartbeat every 15 s; Offline after 40 s without one (node-monitor-grace-period's value). */
export const DEFAULT_HEARTBEAT_SECONDS = 15;
export const DEFAULT_OFFLINE_GRACE_SECONDS = 40;

// The `fleet-bundles` stream (opened by the manager after `fleet-status`), newline-delimited JSON
// both ways. The site first says which versions it runs (`hello`), so a returning site gets only
// what changed (a delta); the manager then sends a `deploy` for each deployment the site lacks and a
// `sync` naming every deployment the site should keep (it removes the others). The site answers
// each with `status` lines as it applies and as readiness changes.

export type ToSite =
  | { t: 'deploy'; key: string; deploymentID: string; options: ShippedOptions; resources: BundleResource[] }
  | { t: 'sync'; keys: string[] };

export interface DeploymentStatus {
  key: string;
  appliedDeploymentID?: string;
  ready: boolean;
  /** Objects applied. */
  resources?: number;
  /** Why not applied (an error) or not ready (which workloads). */
  message?: string;
  error?: boolean;
}

export type FromSite =
  | { t: 'hello'; applied: Record<string, string> }
  | ({ t: 'status' } & DeploymentStatus);

/** One line of the bundles stream may carry a bundle's whole content (gzip'd ConfigMaps hold 1 MiB chunks): cap it generously. */
export const MAX_BUNDLE_LINE_BYTES = 256 * 1024 * 1024;
