// Patch and apply semantics for the apiserver's PATCH handler and its writes: pure functions over
// plain JSON values that throw ApiError for unusable patches.

export { applyJsonPatch, MAX_JSON_PATCH_OPERATIONS } from './json-patch.js';
export { applyMergePatch } from './merge-patch.js';
export { applyStrategicMergePatch, supportsStrategicMerge } from './strategic-merge.js';
export { serverSideApply, type ApplyOptions } from './apply.js';
export {
  updateManagedFields, objectFieldSet, decodeManagedFields, encodeManagedFields, defaultResetFields,
  type UpdateManagedFieldsOptions,
} from './managed-fields.js';
export { FieldSet, pathString } from './fieldpath.js';
export { patchErrors, PATCH_TYPES_WITHOUT_STRATEGIC } from './errors.js';
