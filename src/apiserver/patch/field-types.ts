// Walks the schema model alongside a JSON value: what each position is (a struct with named fields,
// a string-keyed map, a list, a scalar) and how patching and field ownership treat it. Positions the
// schema does not describe (custom resources, unknown fields, `any`) are "untyped", which behaves as
// structured-merge-diff's deduced type: maps are merged key by key, lists are atomic.

import type { FieldSchema, SchemaSet, TypeSchema } from '../../api/schema-types.js';

/** How a list is merged and owned: replaced whole, a set of scalars, or a map keyed by some fields. */
export type ListSemantics =
  | { type: 'atomic' }
  | { type: 'set' }
  | { type: 'map'; keys: string[] };

export class FieldType {
  private constructor(
    private readonly schemas: SchemaSet | undefined,
    /** The field's own schema (undefined at the root and for untyped positions). */
    readonly field: FieldSchema | undefined,
    /** The struct's schema when this position is a named type. */
    readonly struct: TypeSchema | undefined,
  ) {}

  static readonly untyped = new FieldType(undefined, undefined, undefined);

  /** The type of a whole object of the given kind (undefined schema: untyped). */
  static root(schema: TypeSchema | undefined, schemas: SchemaSet | undefined): FieldType {
    return schema ? new FieldType(schemas, undefined, schema) : FieldType.untyped;
  }

  private static of(schemas: SchemaSet | undefined, field: FieldSchema | undefined): FieldType {
    if (!field || field.kind === 'any') return FieldType.untyped;
    const struct = field.kind === 'object' && field.ref ? schemas?.type(field.ref) : undefined;
    return new FieldType(schemas, field, struct);
  }

  /** True for a struct's declared property (as opposed to a map entry or an unknown field). */
  isNamedField(key: string): boolean {
    return this.struct !== undefined && Object.hasOwn(this.struct.properties, key);
  }

  /** The type of the value under `key` of this map or struct. */
  child(key: string): FieldType {
    if (this.struct) return FieldType.of(this.schemas, Object.hasOwn(this.struct.properties, key) ? this.struct.properties[key] : undefined);
    if (this.field?.kind === 'map') return FieldType.of(this.schemas, this.field.values);
    return FieldType.untyped;
  }

  /** The type of this list's elements. */
  items(): FieldType {
    return this.field?.kind === 'array' ? FieldType.of(this.schemas, this.field.items) : FieldType.untyped;
  }

  /** Whether apply treats this map or struct as one value (x-kubernetes-map-type: atomic). */
  get atomicMap(): boolean {
    return this.field?.mapType === 'atomic';
  }

  /** A declared struct or list field (as opposed to a map, a scalar or an untyped value). */
  get structOrList(): boolean {
    return this.field?.kind === 'object' || this.field?.kind === 'array';
  }

  /** A scalar position (including int-or-string, quantities and timestamps). */
  get scalar(): boolean {
    const k = this.field?.kind;
    return k !== undefined && k !== 'object' && k !== 'array' && k !== 'map';
  }

  /**
   * How server-side apply treats this list: its declared list type, else what its strategic merge
   * metadata implies (merge by key: a map; merged scalars: a set), else atomic.
   */
  listSemantics(): ListSemantics {
    const f = this.field;
    if (f?.kind !== 'array') return { type: 'atomic' };
    if (f.listType === 'map' && f.listMapKeys?.length) return { type: 'map', keys: f.listMapKeys };
    if (f.listType === 'set') return { type: 'set' };
    if (f.listType === 'atomic') return { type: 'atomic' };
    if (this.patchStrategies().includes('merge')) {
      if (f.patchMergeKey) return { type: 'map', keys: [f.patchMergeKey] };
      if (FieldType.of(this.schemas, f.items).scalar) return { type: 'set' };
    }
    return { type: 'atomic' };
  }

  /** Strategic merge patch strategies of this field ('merge', 'retainKeys', 'replace'). */
  patchStrategies(): string[] {
    return this.field?.patchStrategy ? this.field.patchStrategy.split(',').map((s) => s.trim()) : [];
  }

  /** Strategic merge patch merge key of this list field. */
  get patchMergeKey(): string | undefined {
    return this.field?.patchMergeKey;
  }

  /** A name for messages: the struct's type name, or the field's kind. */
  get name(): string {
    return this.struct?.name ?? this.field?.kind ?? 'untyped';
  }
}
