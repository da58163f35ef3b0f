/**
 * Kubernetes label selectors: parsing and validation of `{matchLabels, matchExpressions}`, matching
 * against label sets, and the normalized string form of Kubernetes' `labels.Selector.String()`
 * (requirements sorted by key; `k=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`; an empty selector
 * renders as the empty string). The normalized form names groups, so two selectors that mean the same
 * thing must render the same: values are sorted and deduplicated.
 */
import { ValidationError } from '../util/errors.ts';
import type { LabelSelector } from './objects.ts';

/**
 * A label set to match against: an object's `metadata.labels` as is (no copy). Only own properties
 * count, so keys such as `constructor` are safe.
 */
export type Labels = Readonly<Record<string, string>>;

/** The value of `key` in `labels`, or undefined. */
export function labelValue(labels: Labels, key: string): string | undefined {
  return Object.hasOwn(labels, key) ? labels[key] : undefined;
}

export type RequirementOp = 'Equals' | 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface Requirement {
  readonly key: string;
  readonly op: RequirementOp;
  /** Sorted and deduplicated; one value for Equals, none for Exists/DoesNotExist. */
  readonly values: readonly string[];
}

const NAME_RE = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Why `key` is not a valid label key (a qualified name), or undefined if it is. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !DNS_SUBDOMAIN_RE.test(prefix))) {
    return `prefix of "${key}" must be a DNS subdomain`;
  }
  if (name.length === 0 || name.length > 63 || !NAME_RE.test(name)) {
    return `"${key}" must be 63 characters or less, alphanumeric, '-', '_' or '.', starting and ending alphanumeric`;
  }
  return undefined;
}

/** Why `value` is not a valid label value, or undefined if it is. */
export function labelValueProblem(value: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > 63 || !NAME_RE.test(value)) {
    return `"${value}" must be 63 characters or less, alphanumeric, '-', '_' or '.', starting and ending alphanumeric`;
  }
  return undefined;
}

function renderRequirement(r: Requirement): string {
  switch (r.op) {
    case 'Equals':
      return `${r.key}=${r.values[0] ?? ''}`;
    case 'In':
      return `${r.key} in (${r.values.join(',')})`;
    case 'NotIn':
      return `${r.key} notin (${r.values.join(',')})`;
    case 'Exists':
      return r.key;
    case 'DoesNotExist':
      return `!${r.key}`;
  }
}

function matchRequirement(r: Requirement, labels: Labels): boolean {
  const v = labelValue(labels, r.key);
  switch (r.op) {
    case 'Equals':
      return v === r.values[0];
    case 'In':
      return v !== undefined && r.values.includes(v);
    case 'NotIn':
      return v === undefined || !r.values.includes(v);
    case 'Exists':
      return v !== undefined;
    case 'DoesNotExist':
      return v === undefined;
  }
}

/** A parsed, validated label selector. Immutable. */
export class Selector {
  readonly requirements: readonly Requirement[];
  /** The normalized string form (Kubernetes `labels.Selector.String()`). */
  readonly text: string;

  constructor(requirements: readonly Requirement[]) {
    const only = requirements.length === 1 ? requirements[0] : undefined;
    if (only !== undefined) {
      this.requirements = requirements;
      this.text = renderRequirement(only);
      return;
    }
    const rendered = requirements.map((r) => ({ r, s: renderRequirement(r) }));
    rendered.sort((a, b) => (a.r.key < b.r.key ? -1 : a.r.key > b.r.key ? 1 : a.s < b.s ? -1 : a.s > b.s ? 1 : 0));
    const unique = rendered.filter((x, i) => i === 0 || x.s !== rendered[i - 1]?.s);
    this.requirements = unique.map((x) => x.r);
    this.text = unique.map((x) => x.s).join(',');
  }

  /** True for `{}`, which selects everything. */
  get isEmpty(): boolean {
    return this.requirements.length === 0;
  }

  matches(labels: Labels): boolean {
    for (const r of this.requirements) if (!matchRequirement(r, labels)) return false;
    return true;
  }

  toString(): string {
    return this.text;
  }
}

/** The selector that selects everything (`{}`). */
export const EVERYTHING = new Selector([]);

/**
 * Parses and validates a LabelSelector. Throws a {@link ValidationError} naming `field` (for example
 * `spec.podSelector.matchExpressions[1].values`) when it is invalid, as the API server would.
 */
export function parseLabelSelector(sel: LabelSelector, field: string): Selector {
  const reqs: Requirement[] = [];
  const matchLabels = sel.matchLabels ?? {};
  for (const key of Object.keys(matchLabels)) {
    const value: unknown = matchLabels[key];
    const keyProblem = labelKeyProblem(key);
    if (keyProblem !== undefined) throw new ValidationError(`${field}.matchLabels`, keyProblem);
    if (typeof value !== 'string') throw new ValidationError(`${field}.matchLabels.${key}`, 'must be a string');
    const valueProblem = labelValueProblem(value);
    if (valueProblem !== undefined) throw new ValidationError(`${field}.matchLabels.${key}`, valueProblem);
    reqs.push({ key, op: 'Equals', values: [value] });
  }
  (sel.matchExpressions ?? []).forEach((e, i) => {
    const f = `${field}.matchExpressions[${i}]`;
    // Read as unknown: the object comes from JSON, whatever its declared type.
    const key: unknown = e.key;
    const operator: unknown = e.operator;
    const rawValues: unknown = e.values ?? [];
    if (typeof key !== 'string') throw new ValidationError(`${f}.key`, 'must be a string');
    const keyProblem = labelKeyProblem(key);
    if (keyProblem !== undefined) throw new ValidationError(`${f}.key`, keyProblem);
    if (!Array.isArray(rawValues) || !rawValues.every((v): v is string => typeof v === 'string')) {
      throw new ValidationError(`${f}.values`, 'must be a list of strings');
    }
    const values: readonly string[] = rawValues;
    switch (operator) {
      case 'In':
      case 'NotIn': {
        if (values.length === 0) throw new ValidationError(`${f}.values`, `must be non-empty for operator ${operator}`);
        for (const v of values) {
          const p = labelValueProblem(v);
          if (p !== undefined) throw new ValidationError(`${f}.values`, p);
        }
        reqs.push({ key, op: operator, values: [...new Set(values)].sort() });
        break;
      }
      case 'Exists':
      case 'DoesNotExist':
        if (values.length > 0) throw new ValidationError(`${f}.values`, `must be empty for operator ${operator}`);
        reqs.push({ key, op: operator, values: [] });
        break;
      default:
        throw new ValidationError(`${f}.operator`, `${JSON.stringify(operator)} is not a valid selector operator`);
    }
  });
  return reqs.length === 0 ? EVERYTHING : new Selector(reqs);
}

const NO_LABELS: Labels = Object.freeze({});

/** The labels of an object's `metadata.labels` (an empty set when absent). */
export function toLabels(record: Readonly<Record<string, string>> | undefined): Labels {
  return record ?? NO_LABELS;
}

/** True if two label sets are equal. */
export function sameLabels(a: Labels, b: Labels): boolean {
  if (a === b) return true;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (labelValue(b, k) !== a[k]) return false;
  return true;
}

/**
 * The canonical string of a label set (Kubernetes `labels.Set.String()`: `k=v` pairs sorted by key,
 * comma-joined). Equal label sets give equal strings.
 */
export function labelSetString(record: Readonly<Record<string, string>> | undefined): string {
  if (record === undefined) return '';
  const keys = Object.keys(record);
  if (keys.length === 0) return '';
  if (keys.length > 1) keys.sort();
  let out = '';
  for (const k of keys) out += (out === '' ? '' : ',') + k + '=' + (record[k] ?? '');
  return out;
}
