/**
 * Structural OpenAPI v3 schemas of CustomResourceDefinitions: the structural check a CRD must pass,
 * and for custom resources pruning of unknown fields, defaulting and validation, with field errors
 * worded as kube-apiserver words them. CEL rules (`x-kubernetes-validations`) are not evaluated.
 */
import { fieldErr, type FieldError } from './status.ts';
import { deepEqual, isObject, type Json, type JsonObject, deleteKey } from './types.ts';

export interface JSONSchemaProps {
  readonly type?: string;
  readonly format?: string;
  readonly description?: string;
  readonly properties?: Readonly<Record<string, JSONSchemaProps>>;
  readonly additionalProperties?: JSONSchemaProps | boolean;
  readonly items?: JSONSchemaProps;
  readonly required?: readonly string[];
  readonly enum?: readonly Json[];
  readonly default?: Json;
  readonly nullable?: boolean;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly exclusiveMinimum?: boolean;
  readonly exclusiveMaximum?: boolean;
  readonly multipleOf?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly uniqueItems?: boolean;
  readonly minProperties?: number;
  readonly maxProperties?: number;
  readonly oneOf?: readonly JSONSchemaProps[];
  readonly anyOf?: readonly JSONSchemaProps[];
  readonly allOf?: readonly JSONSchemaProps[];
  readonly not?: JSONSchemaProps;
  readonly 'x-kubernetes-preserve-unknown-fields'?: boolean;
  readonly 'x-kubernetes-int-or-string'?: boolean;
  readonly 'x-kubernetes-embedded-resource'?: boolean;
  readonly 'x-kubernetes-list-type'?: string;
  readonly 'x-kubernetes-list-map-keys'?: readonly string[];
  readonly 'x-kubernetes-map-type'?: string;
}

/** The ObjectMeta fields a server keeps; anything else in `metadata` is dropped. */
export const OBJECT_META_FIELDS: ReadonlySet<string> = new Set([
  'name',
  'generateName',
  'namespace',
  'selfLink',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'labels',
  'annotations',
  'ownerReferences',
  'finalizers',
  'managedFields',
]);

const patternCache = new Map<string, RegExp>();

/** Compiles a schema pattern once (Go RE2 syntax is close enough to JavaScript's for CRD patterns). */
function compilePattern(pattern: string): RegExp {
  let re = patternCache.get(pattern);
  if (re === undefined) {
    re = new RegExp(pattern);
    patternCache.set(pattern, re);
  }
  return re;
}

const TYPES = new Set(['object', 'array', 'string', 'integer', 'number', 'boolean']);

/**
 * Checks that a CRD version's schema is structural (every specified field has a type, object
 * keywords only on objects, array keywords only on arrays). `path` is the field path of the schema.
 */
export function checkStructural(schema: JSONSchemaProps, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const visit = (s: JSONSchemaProps, p: string, root: boolean, inJunctor: boolean): void => {
    const intOrString = s['x-kubernetes-int-or-string'] === true;
    const preserve = s['x-kubernetes-preserve-unknown-fields'] === true;
    if (s.type !== undefined && !TYPES.has(s.type)) {
      errs.push(fieldErr.notSupported(`${p}.type`, s.type, [...TYPES]));
    }
    if (!inJunctor) {
      if (s.type === undefined && !intOrString && !preserve) {
        errs.push(fieldErr.required(`${p}.type`, 'must not be empty for specified object fields'));
      }
      if (root && s.type !== 'object') {
        errs.push(fieldErr.invalid(`${p}.type`, s.type ?? '', 'must be object at the root'));
      }
    }
    if (intOrString && s.type !== undefined) {
      errs.push(fieldErr.forbidden(`${p}.type`, 'must be empty if x-kubernetes-int-or-string is true'));
    }
    if (s.properties !== undefined && s.additionalProperties !== undefined && s.additionalProperties !== false) {
      errs.push(
        fieldErr.forbidden(`${p}.additionalProperties`, 'additionalProperties and properties are mutual exclusive'),
      );
    }
    if (!inJunctor && s.properties !== undefined && s.type !== 'object') {
      errs.push(fieldErr.forbidden(`${p}.properties`, 'must only be used with type object'));
    }
    if (!inJunctor && s.items !== undefined && s.type !== 'array') {
      errs.push(fieldErr.forbidden(`${p}.items`, 'must only be used with type array'));
    }
    if (!inJunctor && s.type === 'array' && s.items === undefined) {
      errs.push(fieldErr.required(`${p}.items`, 'must be specified'));
    }
    if (inJunctor && s.default !== undefined) {
      errs.push(fieldErr.forbidden(`${p}.default`, 'must not be set inside of anyOf, allOf, oneOf or not'));
    }
    if (s.pattern !== undefined) {
      try {
        compilePattern(s.pattern);
      } catch {
        errs.push(fieldErr.invalid(`${p}.pattern`, s.pattern, 'must be a valid regular expression'));
      }
    }
    for (const [k, v] of Object.entries(s.properties ?? {})) visit(v, `${p}.properties[${k}]`, false, inJunctor);
    if (isObject(s.additionalProperties)) {
      visit(s.additionalProperties, `${p}.additionalProperties`, false, inJunctor);
    }
    if (s.items !== undefined) visit(s.items, `${p}.items`, false, inJunctor);
    for (const j of ['oneOf', 'anyOf', 'allOf'] as const) {
      (s[j] ?? []).forEach((sub, i) => visit(sub, `${p}.${j}[${i}]`, false, true));
    }
    if (s.not !== undefined) visit(s.not, `${p}.not`, false, true);
  };
  visit(schema, path, true, false);
  return errs;
}

/**
 * Removes fields the schema does not declare (unless `x-kubernetes-preserve-unknown-fields`), in
 * place, and returns the paths removed. At the root, apiVersion, kind and metadata are kept (metadata
 * is reduced to ObjectMeta fields).
 */
export function prune(obj: JsonObject, schema: JSONSchemaProps): string[] {
  const removed: string[] = [];
  pruneObject(obj, schema, '', true, removed);
  return removed;
}

function pruneValue(v: Json | undefined, s: JSONSchemaProps | undefined, path: string, removed: string[]): void {
  if (s === undefined) return;
  if (isObject(v)) pruneObject(v, s, path, false, removed);
  else if (Array.isArray(v)) v.forEach((x, i) => pruneValue(x, s.items, `${path}[${i}]`, removed));
}

function pruneObject(o: JsonObject, s: JSONSchemaProps, path: string, root: boolean, removed: string[]): void {
  const preserve = s['x-kubernetes-preserve-unknown-fields'] === true;
  const embedded = root || s['x-kubernetes-embedded-resource'] === true;
  for (const key of Object.keys(o)) {
    const p = path === '' ? key : `${path}.${key}`;
    if (embedded && (key === 'apiVersion' || key === 'kind')) continue;
    if (embedded && key === 'metadata') {
      const m = o[key];
      if (isObject(m)) {
        for (const mk of Object.keys(m)) {
          if (!OBJECT_META_FIELDS.has(mk)) {
            deleteKey(m, mk);
            removed.push(`${p}.${mk}`);
          }
        }
      }
      continue;
    }
    const prop = s.properties?.[key];
    if (prop !== undefined) {
      pruneValue(o[key], prop, p, removed);
    } else if (isObject(s.additionalProperties)) {
      pruneValue(o[key], s.additionalProperties, p, removed);
    } else if (!preserve && s.additionalProperties !== true) {
      deleteKey(o, key);
      removed.push(p);
    }
  }
}

/** Fills `default` values of absent properties, in place (defaults are applied after pruning). */
export function applyDefaults(v: Json | undefined, s: JSONSchemaProps | undefined): void {
  if (s === undefined) return;
  if (isObject(v)) {
    for (const [k, prop] of Object.entries(s.properties ?? {})) {
      if (v[k] === undefined && prop.default !== undefined) v[k] = structuredClone(prop.default);
      applyDefaults(v[k], prop);
    }
    if (isObject(s.additionalProperties)) {
      for (const k of Object.keys(v)) {
        if (s.properties?.[k] === undefined) applyDefaults(v[k], s.additionalProperties);
      }
    }
  } else if (Array.isArray(v)) {
    for (const x of v) applyDefaults(x, s.items);
  }
}

const FORMATS: Readonly<Record<string, (s: string) => boolean>> = {
  ipv4: isIPv4,
  ipv6: isIPv6,
  cidr: (s) => {
    const m = /^(.*)\/(\d{1,3})$/.exec(s);
    if (m === null) return false;
    const ip = m[1] ?? '';
    const bits = Number(m[2]);
    return (isIPv4(ip) && bits <= 32) || (isIPv6(ip) && bits <= 128);
  },
  uuid: (s) => /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(s),
  byte: (s) => /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s),
  'date-time': (s) => /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(s),
  datetime: (s) => /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(s),
  date: (s) => /^\d{4}-\d{2}-\d{2}$/.test(s),
  hostname: (s) => s.length <= 253 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/i.test(s),
  mac: (s) => /^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i.test(s),
  email: (s) => /^[^@\s]+@[^@\s]+$/.test(s),
};

export function isIPv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255);
}

export function isIPv6(s: string): boolean {
  if (!s.includes(':')) return false;
  let str = s;
  let groupsNeeded = 8;
  const lastColon = str.lastIndexOf(':');
  const tail = str.slice(lastColon + 1);
  if (tail.includes('.')) {
    if (!isIPv4(tail)) return false;
    str = `${str.slice(0, lastColon + 1)}0:0`;
  }
  const dbl = str.split('::');
  if (dbl.length > 2) return false;
  const hexGroup = /^[0-9a-fA-F]{1,4}$/;
  if (dbl.length === 2) {
    const left = dbl[0] === '' ? [] : (dbl[0] ?? '').split(':');
    const right = dbl[1] === '' ? [] : (dbl[1] ?? '').split(':');
    if (left.length + right.length >= groupsNeeded) return false;
    return [...left, ...right].every((g) => hexGroup.test(g));
  }
  const groups = str.split(':');
  groupsNeeded = 8;
  return groups.length === groupsNeeded && groups.every((g) => hexGroup.test(g));
}

function typeName(v: Json | undefined): string {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function typeMatches(v: Json, s: JSONSchemaProps): boolean {
  if (s['x-kubernetes-int-or-string'] === true) return typeof v === 'string' || Number.isInteger(v);
  switch (s.type) {
    case undefined:
      return true;
    case 'object':
      return isObject(v);
    case 'array':
      return Array.isArray(v);
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'number':
      return typeof v === 'number';
    case 'boolean':
      return typeof v === 'boolean';
    default:
      return false;
  }
}

/**
 * Validates `v` against `s`; `path` is the field path for messages (`spec.priority`). Returns every
 * error found (value validations inside oneOf/anyOf/allOf/not included).
 */
export function validateValue(v: Json | undefined, s: JSONSchemaProps, path: string): FieldError[] {
  const errs: FieldError[] = [];
  validateInto(v, s, path, errs);
  return errs;
}

function validateInto(v: Json | undefined, s: JSONSchemaProps, path: string, errs: FieldError[]): void {
  if (v === undefined) return;
  const field = path === '' ? '<root>' : path;
  if (v === null) {
    if (s.nullable !== true && (s.type !== undefined || s['x-kubernetes-int-or-string'] === true)) {
      errs.push(
        fieldErr.typeInvalid(
          field,
          'null',
          `${field} in body must be of type ${s.type ?? 'integer-or-string'}: "null"`,
        ),
      );
    }
    return;
  }
  if (!typeMatches(v, s)) {
    const want = s['x-kubernetes-int-or-string'] === true ? 'integer,string' : (s.type ?? '');
    errs.push(fieldErr.typeInvalid(field, typeName(v), `${field} in body must be of type ${want}: "${typeName(v)}"`));
    return;
  }
  if (s.enum !== undefined && !s.enum.some((e) => deepEqual(e, v))) {
    errs.push(
      fieldErr.notSupported(
        field,
        v,
        s.enum.map((e) => (typeof e === 'string' ? e : JSON.stringify(e))),
      ),
    );
  }
  if (typeof v === 'number') {
    if (s.maximum !== undefined && (s.exclusiveMaximum === true ? v >= s.maximum : v > s.maximum)) {
      errs.push(
        fieldErr.invalid(
          field,
          v,
          `${field} in body should be less than ${s.exclusiveMaximum === true ? '' : 'or equal to '}${s.maximum}`,
        ),
      );
    }
    if (s.minimum !== undefined && (s.exclusiveMinimum === true ? v <= s.minimum : v < s.minimum)) {
      errs.push(
        fieldErr.invalid(
          field,
          v,
          `${field} in body should be greater than ${s.exclusiveMinimum === true ? '' : 'or equal to '}${s.minimum}`,
        ),
      );
    }
    if (s.multipleOf !== undefined && s.multipleOf > 0 && !Number.isInteger(v / s.multipleOf)) {
      errs.push(fieldErr.invalid(field, v, `${field} in body should be a multiple of ${s.multipleOf}`));
    }
  }
  if (typeof v === 'string') {
    const len = Buffer.byteLength(v);
    if (s.maxLength !== undefined && len > s.maxLength) errs.push(fieldErr.tooLong(field, s.maxLength));
    if (s.minLength !== undefined && len < s.minLength) {
      errs.push(fieldErr.invalid(field, v, `${field} in body should be at least ${s.minLength} chars long`));
    }
    if (s.pattern !== undefined && !compilePattern(s.pattern).test(v)) {
      errs.push(fieldErr.invalid(field, v, `${field} in body should match '${s.pattern}'`));
    }
    const check = s.format === undefined ? undefined : FORMATS[s.format];
    if (check !== undefined && !check(v)) {
      errs.push(fieldErr.invalid(field, v, `${field} in body must be of type ${s.format ?? ''}: ${JSON.stringify(v)}`));
    }
  }
  if (Array.isArray(v)) {
    if (s.maxItems !== undefined && v.length > s.maxItems) {
      errs.push({
        type: 'FieldValueTooMany',
        field,
        body: `Too many: ${v.length}: must have at most ${s.maxItems} items`,
      });
    }
    if (s.minItems !== undefined && v.length < s.minItems) {
      errs.push(fieldErr.invalid(field, v.length, `${field} in body should have at least ${s.minItems} items`));
    }
    const listType = s['x-kubernetes-list-type'];
    if (s.uniqueItems === true || listType === 'set') {
      v.forEach((x, i) => {
        if (v.findIndex((y) => deepEqual(x, y)) < i) errs.push(fieldErr.duplicate(`${field}[${i}]`, x));
      });
    }
    if (listType === 'map') {
      const keys = s['x-kubernetes-list-map-keys'] ?? [];
      const seen: Json[][] = [];
      v.forEach((x, i) => {
        if (!isObject(x)) return;
        const k = keys.map((key) => x[key] ?? null);
        if (seen.some((o) => deepEqual(o, k))) errs.push(fieldErr.duplicate(`${field}[${i}]`, x));
        seen.push(k);
      });
    }
    if (s.items !== undefined) {
      const items = s.items;
      v.forEach((x, i) => validateInto(x, items, `${path}[${i}]`, errs));
    }
  }
  if (isObject(v)) {
    const keys = Object.keys(v).filter((k) => v[k] !== undefined);
    if (s.maxProperties !== undefined && keys.length > s.maxProperties) {
      errs.push({
        type: 'FieldValueTooMany',
        field,
        body: `Too many: ${keys.length}: must have at most ${s.maxProperties} items`,
      });
    }
    if (s.minProperties !== undefined && keys.length < s.minProperties) {
      errs.push(
        fieldErr.invalid(field, keys.length, `${field} in body should have at least ${s.minProperties} properties`),
      );
    }
    for (const r of s.required ?? []) {
      if (v[r] === undefined) errs.push(fieldErr.required(path === '' ? r : `${path}.${r}`));
    }
    for (const k of keys) {
      const p = path === '' ? k : `${path}.${k}`;
      const prop = s.properties?.[k];
      if (prop !== undefined) validateInto(v[k], prop, p, errs);
      else if (isObject(s.additionalProperties)) validateInto(v[k], s.additionalProperties, p, errs);
    }
  }
  const valid = (sub: JSONSchemaProps): boolean => validateValue(v, sub, path).length === 0;
  if (s.oneOf !== undefined) {
    const n = s.oneOf.filter(valid).length;
    if (n !== 1) {
      errs.push(
        fieldErr.invalid(
          field,
          typeName(v),
          `${field} in body must validate one and only one schema (oneOf). ${n === 0 ? 'Found none valid' : `Found ${n} valid alternatives`}`,
        ),
      );
    }
  }
  if (s.anyOf !== undefined && !s.anyOf.some(valid)) {
    errs.push(fieldErr.invalid(field, typeName(v), `${field} in body must validate at least one schema (anyOf)`));
  }
  for (const sub of s.allOf ?? []) validateInto(v, sub, path, errs);
  if (s.not !== undefined && valid(s.not)) {
    errs.push(fieldErr.invalid(field, typeName(v), `${field} in body must not validate the schema (not)`));
  }
}
