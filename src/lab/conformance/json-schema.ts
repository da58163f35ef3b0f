/**
 * A small JSON Schema (draft 2020-12) validator for the keywords the conformance case schema uses:
 * type, const, enum, required, properties, additionalProperties, propertyNames, items, prefixItems,
 * minItems, maxItems, minimum, maximum, pattern, oneOf and local `$ref` (`#/$defs/...`). Annotation
 * keywords ($schema, $id, title, description) are ignored; any other keyword is rejected when the
 * schema is compiled, so a schema this validator cannot honour fails loudly instead of passing
 * everything. Errors carry the JSON Pointer of the offending value.
 */
import { AntreaError } from '../../common/util/errors.ts';

export interface SchemaError {
  /** JSON Pointer of the value (`/steps/0/probes/1/port`), `` for the root. */
  readonly path: string;
  readonly message: string;
}

type Schema = boolean | { readonly [keyword: string]: unknown };

const KNOWN = new Set([
  '$schema',
  '$id',
  '$defs',
  '$ref',
  'title',
  'description',
  'type',
  'const',
  'enum',
  'required',
  'properties',
  'additionalProperties',
  'propertyNames',
  'items',
  'prefixItems',
  'minItems',
  'maxItems',
  'minimum',
  'maximum',
  'pattern',
  'oneOf',
]);

export class SchemaCompileError extends AntreaError<'SCHEMA_UNSUPPORTED'> {}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function typeMatches(v: unknown, t: string): boolean {
  const actual = typeOf(v);
  return actual === t || (t === 'number' && actual === 'integer');
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function pointer(path: string, key: string | number): string {
  return `${path}/${String(key).replaceAll('~', '~0').replaceAll('/', '~1')}`;
}

export class JsonSchema {
  private readonly root: Schema;
  private readonly patterns = new Map<string, RegExp>();

  constructor(root: Schema) {
    this.root = root;
    this.check(root, '#');
  }

  /** Rejects keywords this validator does not implement (recursively). */
  private check(s: unknown, where: string): void {
    if (typeof s === 'boolean') return;
    if (typeof s !== 'object' || s === null)
      throw new SchemaCompileError('SCHEMA_UNSUPPORTED', `${where}: not a schema`);
    for (const [k, v] of Object.entries(s)) {
      if (!KNOWN.has(k))
        throw new SchemaCompileError('SCHEMA_UNSUPPORTED', `${where}: keyword "${k}" is not supported`);
      if (k === '$defs' || k === 'properties') {
        for (const [name, sub] of Object.entries(v as Record<string, unknown>))
          this.check(sub, `${where}/${k}/${name}`);
      } else if (k === 'items' || k === 'additionalProperties' || k === 'propertyNames') this.check(v, `${where}/${k}`);
      else if (k === 'prefixItems' || k === 'oneOf')
        (v as unknown[]).forEach((sub, i) => this.check(sub, `${where}/${k}/${i}`));
      else if (k === '$ref' && (typeof v !== 'string' || !v.startsWith('#/'))) {
        throw new SchemaCompileError('SCHEMA_UNSUPPORTED', `${where}: only local $ref is supported`);
      }
    }
  }

  private resolve(ref: string): Schema {
    let cur: unknown = this.root;
    for (const part of ref.slice(2).split('/')) {
      cur = (cur as Record<string, unknown> | undefined)?.[part.replaceAll('~1', '/').replaceAll('~0', '~')];
    }
    if (cur === undefined) throw new SchemaCompileError('SCHEMA_UNSUPPORTED', `unresolved $ref ${ref}`);
    return cur as Schema;
  }

  private regex(p: string): RegExp {
    let r = this.patterns.get(p);
    if (r === undefined) {
      r = new RegExp(p, 'u');
      this.patterns.set(p, r);
    }
    return r;
  }

  /** Every problem of `value` (empty when it is valid). */
  validate(value: unknown): SchemaError[] {
    const errors: SchemaError[] = [];
    this.visit(this.root, value, '', errors);
    return errors;
  }

  private visit(s: Schema, v: unknown, path: string, errors: SchemaError[]): void {
    if (s === true) return;
    if (s === false) {
      errors.push({ path, message: 'is not allowed here' });
      return;
    }
    const ref = s['$ref'];
    if (typeof ref === 'string') this.visit(this.resolve(ref), v, path, errors);
    const type = s['type'];
    if (type !== undefined) {
      const types = Array.isArray(type) ? (type as string[]) : [type as string];
      if (!types.some((t) => typeMatches(v, t))) {
        errors.push({ path, message: `must be ${types.join(' or ')}, got ${typeOf(v)}` });
        return;
      }
    }
    if ('const' in s && !deepEqual(v, s['const']))
      errors.push({ path, message: `must be ${JSON.stringify(s['const'])}` });
    const en = s['enum'];
    if (Array.isArray(en) && !en.some((x) => deepEqual(x, v))) {
      errors.push({
        path,
        message: `must be one of ${en.map((x) => JSON.stringify(x)).join(', ')}, got ${JSON.stringify(v)}`,
      });
    }
    if (typeof v === 'string' && typeof s['pattern'] === 'string' && !this.regex(s['pattern']).test(v)) {
      errors.push({ path, message: `must match ${s['pattern']}, got ${JSON.stringify(v)}` });
    }
    if (typeof v === 'number') {
      if (typeof s['minimum'] === 'number' && v < s['minimum'])
        errors.push({ path, message: `must be >= ${s['minimum']}` });
      if (typeof s['maximum'] === 'number' && v > s['maximum'])
        errors.push({ path, message: `must be <= ${s['maximum']}` });
    }
    if (Array.isArray(v)) this.visitArray(s, v, path, errors);
    else if (typeof v === 'object' && v !== null) this.visitObject(s, v as Record<string, unknown>, path, errors);
    const oneOf = s['oneOf'];
    if (Array.isArray(oneOf)) {
      const results = (oneOf as Schema[]).map((sub) => {
        const e: SchemaError[] = [];
        this.visit(sub, v, path, e);
        return e;
      });
      const ok = results.filter((e) => e.length === 0).length;
      if (ok !== 1) {
        const closest = results.reduce((a, b) => (b.length < a.length ? b : a));
        if (ok === 0) errors.push(...closest);
        else errors.push({ path, message: `matches ${ok} alternatives of oneOf, must match exactly one` });
      }
    }
  }

  private visitArray(s: Exclude<Schema, boolean>, v: unknown[], path: string, errors: SchemaError[]): void {
    if (typeof s['minItems'] === 'number' && v.length < s['minItems']) {
      errors.push({ path, message: `must have at least ${s['minItems']} item(s), has ${v.length}` });
    }
    if (typeof s['maxItems'] === 'number' && v.length > s['maxItems']) {
      errors.push({ path, message: `must have at most ${s['maxItems']} item(s), has ${v.length}` });
    }
    const prefix = Array.isArray(s['prefixItems']) ? (s['prefixItems'] as Schema[]) : [];
    v.forEach((item, i) => {
      const sub = prefix[i] ?? (s['items'] as Schema | undefined);
      if (sub !== undefined) this.visit(sub, item, pointer(path, i), errors);
    });
  }

  private visitObject(
    s: Exclude<Schema, boolean>,
    v: Record<string, unknown>,
    path: string,
    errors: SchemaError[],
  ): void {
    const required = Array.isArray(s['required']) ? (s['required'] as string[]) : [];
    for (const k of required) if (!(k in v)) errors.push({ path, message: `is missing the required property "${k}"` });
    const props = (s['properties'] ?? {}) as Record<string, Schema>;
    const additional = s['additionalProperties'] as Schema | undefined;
    const names = s['propertyNames'] as Schema | undefined;
    for (const [k, val] of Object.entries(v)) {
      if (names !== undefined) {
        const e: SchemaError[] = [];
        this.visit(names, k, pointer(path, k), e);
        for (const x of e) errors.push({ path: x.path, message: `property name ${x.message}` });
      }
      const sub = props[k];
      if (sub !== undefined) this.visit(sub, val, pointer(path, k), errors);
      else if (additional === false) errors.push({ path: pointer(path, k), message: 'is not an allowed property' });
      else if (additional !== undefined) this.visit(additional, val, pointer(path, k), errors);
    }
  }
}
