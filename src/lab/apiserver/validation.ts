/**
 * Validation shared by every kind: object names (the per-kind name rules of apimachinery), labels,
 * annotations, finalizers and owner references. Each check returns field errors; the caller turns
 * them into one 422 Invalid.
 */
import { labelKeyError, labelValueError } from './selectors.ts';
import { fieldErr, type FieldError } from './status.ts';
import { isObject, type ObjectMeta } from './types.ts';

export type NameRule = (name: string) => string | undefined;

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

export const dns1123Subdomain: NameRule = (name) => {
  if (name.length > 253) return 'must be no more than 253 characters';
  if (!DNS1123_SUBDOMAIN.test(name)) {
    return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
  }
  return undefined;
};

export const dns1123Label: NameRule = (name) => {
  if (name.length > 63) return 'must be no more than 63 characters';
  if (!DNS1123_LABEL.test(name)) {
    return "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
  }
  return undefined;
};

export const dns1035Label: NameRule = (name) => {
  if (name.length > 63) return 'must be no more than 63 characters';
  if (!DNS1035_LABEL.test(name)) {
    return "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
  }
  return undefined;
};

/** RBAC and a few other kinds only forbid what cannot be a path segment. */
export const pathSegmentName: NameRule = (name) => {
  if (name === '.' || name === '..') return `may not be '${name}'`;
  for (const bad of ['/', '%']) if (name.includes(bad)) return `may not contain '${bad}'`;
  return undefined;
};

/** The name a client may give together with a random suffix (generateName) must leave room for it. */
function generateNameRule(rule: NameRule, prefix: string): string | undefined {
  const probe = `${prefix.replace(/-+$/, '')}${prefix.endsWith('-') ? '-' : ''}a`;
  return rule(probe);
}

export interface MetaValidationOptions {
  readonly nameRule: NameRule;
  readonly namespaced: boolean;
  /** On create, `generateName` may stand in for `name`. */
  readonly creating: boolean;
}

/** Validates the client-settable parts of ObjectMeta. */
export function validateObjectMeta(meta: ObjectMeta, opts: MetaValidationOptions): FieldError[] {
  const errs: FieldError[] = [];
  const name = meta.name;
  if (name === undefined || name === '') {
    if (!(opts.creating && typeof meta.generateName === 'string' && meta.generateName !== '')) {
      errs.push(fieldErr.required('metadata.name', 'name or generateName is required'));
    } else {
      const e = generateNameRule(opts.nameRule, meta.generateName);
      if (e !== undefined) errs.push(fieldErr.invalid('metadata.generateName', meta.generateName, e));
    }
  } else if (typeof name !== 'string') {
    errs.push(fieldErr.invalid('metadata.name', name, 'must be a string'));
  } else {
    const e = opts.nameRule(name);
    if (e !== undefined) errs.push(fieldErr.invalid('metadata.name', name, e));
  }
  if (opts.namespaced) {
    if (meta.namespace === undefined || meta.namespace === '') errs.push(fieldErr.required('metadata.namespace'));
  } else if (meta.namespace !== undefined && meta.namespace !== '') {
    errs.push(fieldErr.forbidden('metadata.namespace', 'not allowed on this type'));
  }
  errs.push(...validateLabels(meta.labels, 'metadata.labels'));
  const ann = meta.annotations as unknown;
  if (ann !== undefined) {
    if (!isObject(ann)) {
      errs.push(fieldErr.invalid('metadata.annotations', ann, 'must be a map of strings'));
    } else {
      let total = 0;
      for (const [k, v] of Object.entries(ann)) {
        const e = labelKeyError(k.toLowerCase());
        if (e !== undefined) errs.push(fieldErr.invalid('metadata.annotations', k, e));
        if (typeof v !== 'string') errs.push(fieldErr.invalid(`metadata.annotations[${k}]`, v, 'must be a string'));
        total += k.length + (typeof v === 'string' ? v.length : 0);
      }
      if (total > 262144) errs.push(fieldErr.tooLong('metadata.annotations', 262144));
    }
  }
  const fin = meta.finalizers as unknown;
  if (fin !== undefined) {
    if (!Array.isArray(fin)) errs.push(fieldErr.invalid('metadata.finalizers', fin, 'must be a list of strings'));
    else
      fin.forEach((f, i) => {
        const e = typeof f === 'string' ? labelKeyError(f) : 'must be a string';
        if (e !== undefined) errs.push(fieldErr.invalid(`metadata.finalizers[${i}]`, f, e));
      });
  }
  const owners = meta.ownerReferences as unknown;
  if (owners !== undefined) {
    if (!Array.isArray(owners)) errs.push(fieldErr.invalid('metadata.ownerReferences', owners, 'must be a list'));
    else
      owners.forEach((o, i) => {
        const p = `metadata.ownerReferences[${i}]`;
        if (!isObject(o)) {
          errs.push(fieldErr.invalid(p, o, 'must be an object'));
          return;
        }
        for (const f of ['apiVersion', 'kind', 'name', 'uid']) {
          if (typeof o[f] !== 'string' || o[f] === '') errs.push(fieldErr.required(`${p}.${f}`));
        }
      });
    if (Array.isArray(owners) && owners.filter((o) => isObject(o) && o['controller'] === true).length > 1) {
      errs.push(
        fieldErr.invalid(
          'metadata.ownerReferences',
          owners.length,
          'Only one reference can have Controller set to true',
        ),
      );
    }
  }
  return errs;
}

/** Validates a label map (keys are qualified names, values label values). */
export function validateLabels(labels: unknown, field: string): FieldError[] {
  const errs: FieldError[] = [];
  if (labels === undefined) return errs;
  if (!isObject(labels)) return [fieldErr.invalid(field, labels, 'must be a map of strings')];
  for (const [k, v] of Object.entries(labels)) {
    const ke = labelKeyError(k);
    if (ke !== undefined) errs.push(fieldErr.invalid(field, k, ke));
    if (typeof v !== 'string') errs.push(fieldErr.invalid(`${field}[${k}]`, v, 'must be a string'));
    else {
      const ve = labelValueError(v);
      if (ve !== undefined) errs.push(fieldErr.invalid(field, v, ve));
    }
  }
  return errs;
}
