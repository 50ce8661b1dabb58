// fieldValidation=Strict|Warn|Ignore for unknown fields, as Kubernetes does it: Strict answers 400
// listing them, Warn drops them and says so in Warning headers, Ignore drops them silently.
import type { KindInfo } from '../api/kinds.js';
import { loadSchemaSet } from '../api/schema.js';
import { checkFields as schemaProblems, decodeErrorMessage, pruneUnknownFields, strictDecodingMessage, type OpenApiSchema } from './field-validation.js';
import { errors } from '../api/status.js';

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

/** `optionsKind` names the options object in the 422, as Kubernetes does (CreateOptions, PatchOptions, ...). */
export function parseFieldValidation(v: string | null, optionsKind = 'CreateOptions'): FieldValidation {
  if (v === null || v === '') return 'Warn';
  if (v === 'Strict' || v === 'Warn' || v === 'Ignore') return v;
  throw errors.invalid(optionsKind, 'meta.k8s.io', '', [{ reason: 'FieldValueNotSupported', field: 'fieldValidation', message: `Unsupported value: "${v}": supported values: "Ignore", "Strict", "Warn"` }]);
}

/**
 * Finds the fields the kind's schema does not declare (built-ins: the API types; custom resources:
 * their CRD's structural schema, pruned as the apiextensions server prunes), and applies the mode.
 */
export function checkFields(info: KindInfo, obj: Record<string, any>, mode: FieldValidation, crdSchema?: OpenApiSchema, isPatch = false): string[] {
  let unknown: string[];
  if (info.crd) {
    // Pruning drops the fields as it finds them: exactly what Warn and Ignore want.
    unknown = crdSchema ? pruneUnknownFields(obj, crdSchema) : [];
  } else {
    const schemas = loadSchemaSet();
    const type = schemas.type(info.modelType);
    if (!type) return [];
    const problems = schemaProblems(obj, type, schemas);
    // A wrong JSON type is a decoding error whatever the mode, as with Kubernetes' decoder.
    if (problems.typeErrors.length) {
      // A patched object that does not decode is the patch's fault: Kubernetes answers 422 on `patch`.
      if (isPatch) throw errors.invalid(info.kind, info.group, String(obj.metadata?.name ?? ''), [{ reason: 'FieldValueInvalid', field: 'patch', message: `Invalid value: "<patched object>": ${problems.typeErrors[0].message}` }]);
      throw errors.badRequest(decodeErrorMessage(info.kind, info.version, problems.typeErrors[0]));
    }
    unknown = problems.unknown;
    if (mode !== 'Strict') for (const p of unknown) removePath(obj, p);
  }
  if (unknown.length === 0) return [];
  if (mode === 'Strict') {
    throw errors.badRequest(strictDecodingMessage(unknown));
  }
  return mode === 'Warn' ? unknown.map((p) => `unknown field "${p}"`) : [];
}

/** Removes `a.b[2].c` from an object. */
export function removePath(obj: any, path: string): void {
  const parts: (string | number)[] = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) parts.push(m[2] !== undefined ? Number(m[2]) : m[1]);
  let cur = obj;
  for (let i = 0; i < parts.length - 1; i++) {
    cur = cur?.[parts[i] as any];
    if (cur === undefined || cur === null) return;
  }
  if (cur && typeof cur === 'object') delete cur[parts[parts.length - 1] as any];
}
