// Audit logging (kube-apiserver's --audit-log-* and --audit-policy-file): see auditor.ts.
import { readFileSync } from 'node:fs';
import { Auditor } from './auditor.js';
import { parsePolicy } from './policy.js';
import { logger } from '../../util/log.js';

const log = logger('audit');
import { AuditWriter } from './writer.js';

export { Auditor } from './auditor.js';
export { parsePolicy, evaluate, type AuditPolicy, type AuditLevel, type AuditStage } from './policy.js';
export { AuditWriter } from './writer.js';

export interface AuditOptions {
  logPath?: string;
  policyFile?: string;
  maxAgeDays?: number;
  maxBackups?: number;
  maxSizeMb?: number;
}

/** The auditor for the server's flags, or undefined when no audit log is asked for. */
export function createAuditor(o: AuditOptions): Auditor | undefined {
  if (!o.logPath) return undefined;
  // As kube-apiserver: without a policy file no event is recorded.
  if (!o.policyFile) { log.warn({}, 'no audit policy file provided: no audit events will be recorded'); return undefined; }
  const policy = parsePolicy(readFileSync(o.policyFile, 'utf8'));
  return new Auditor(policy, new AuditWriter({ path: o.logPath, maxAgeDays: o.maxAgeDays, maxBackups: o.maxBackups, maxSizeMb: o.maxSizeMb }));
}
