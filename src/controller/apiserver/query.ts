/**
 * Parsing of the query parameters of the controlplane resources (list, watch and get), with a
 * {@link ValidationError} naming the parameter for anything we cannot honour exactly, instead of
 * silently ignoring it:
 *
 * - `fieldSelector`: only `nodeName` and `metadata.name`, with `=` or `==` (as Antrea's field-label
 *   conversion; anything else is "field label not supported");
 * - `watch`, `allowWatchBookmarks`, `pretty`, `sendInitialEvents`: booleans as Go's ParseBool;
 *   `sendInitialEvents=false` is refused (every watch starts with the full set);
 * - `timeoutSeconds`, `limit`: non-negative integers; `resourceVersion`: digits (a watch always starts
 *   from a full snapshot, so it is otherwise ignored); `resourceVersionMatch`: NotOlderThan or Exact;
 * - `labelSelector`: must be empty (the internal objects carry no labels) and `continue` is refused
 *   (lists are never paged);
 * - any other parameter is refused.
 */
import { ValidationError } from '../../common/util/errors.ts';

export interface ListWatchQuery {
  readonly watch: boolean;
  /** `nodeName` field selector. */
  readonly node?: string;
  /** `metadata.name` field selector. */
  readonly name?: string;
  readonly timeoutSeconds?: number;
  readonly allowWatchBookmarks: boolean;
  /** `sendInitialEvents=true` (watch-list): the bookmark carries the initial-events-end annotation. */
  readonly sendInitialEvents: boolean;
}

const KNOWN = new Set([
  'watch',
  'fieldSelector',
  'labelSelector',
  'resourceVersion',
  'resourceVersionMatch',
  'timeoutSeconds',
  'allowWatchBookmarks',
  'sendInitialEvents',
  'limit',
  'continue',
  'pretty',
]);

const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

export function parseBool(field: string, v: string): boolean {
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  throw new ValidationError(field, `"${v}" is not a boolean (use true or false)`);
}

function parseNonNegativeInt(field: string, v: string): number {
  if (!/^\d{1,15}$/.test(v)) throw new ValidationError(field, `"${v}" is not a non-negative integer`);
  return Number(v);
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Checks a Node or object name (a DNS-1123 subdomain, as Kubernetes names are). */
export function checkObjectName(field: string, v: string): string {
  if (v === '') throw new ValidationError(field, 'must not be empty');
  if (v.length > 253 || !DNS_SUBDOMAIN.test(v)) {
    throw new ValidationError(field, `"${v}" is not a valid name (lowercase letters, digits, '-' and '.')`);
  }
  return v;
}

/** Parses a field selector into nodeName and metadata.name requirements. */
export function parseFieldSelector(v: string): { node?: string; name?: string } {
  const out: { node?: string; name?: string } = {};
  if (v.trim() === '') return out;
  for (const raw of v.split(',')) {
    const term = raw.trim();
    const m = /^([^=!]+?)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (m === null) throw new ValidationError('fieldSelector', `invalid selector "${term}" (expected key=value)`);
    const [, key = '', op = '', value = ''] = m;
    if (key !== 'nodeName' && key !== 'metadata.name') {
      throw new ValidationError(
        'fieldSelector',
        `field label not supported: ${key} (supported: nodeName, metadata.name)`,
      );
    }
    if (op === '!=') throw new ValidationError('fieldSelector', `operator != is not supported for ${key}`);
    const field = key === 'nodeName' ? 'node' : 'name';
    if (out[field] !== undefined) throw new ValidationError('fieldSelector', `${key} is given more than once`);
    out[field] = checkObjectName(`fieldSelector ${key}`, value);
  }
  return out;
}

/** Parses and checks the query of a list or watch request. */
export function parseListWatchQuery(params: URLSearchParams): ListWatchQuery {
  for (const k of params.keys()) {
    if (!KNOWN.has(k)) throw new ValidationError(k, 'unknown query parameter');
  }
  const one = (k: string): string | undefined => {
    const all = params.getAll(k);
    if (all.length > 1) throw new ValidationError(k, 'given more than once');
    return all[0];
  };
  const watchText = one('watch');
  const watch = watchText === undefined || watchText === '' ? false : parseBool('watch', watchText);
  const fs = parseFieldSelector(one('fieldSelector') ?? '');
  const label = one('labelSelector');
  if (label !== undefined && label.trim() !== '') {
    throw new ValidationError('labelSelector', 'not supported: controlplane objects carry no labels');
  }
  const rv = one('resourceVersion');
  if (rv !== undefined && !/^\d*$/.test(rv))
    throw new ValidationError('resourceVersion', `"${rv}" is not a resource version`);
  const rvm = one('resourceVersionMatch');
  if (rvm !== undefined && rvm !== '' && rvm !== 'NotOlderThan' && rvm !== 'Exact') {
    throw new ValidationError('resourceVersionMatch', `"${rvm}" must be NotOlderThan or Exact`);
  }
  const timeout = one('timeoutSeconds');
  const limit = one('limit');
  if (limit !== undefined && limit !== '') parseNonNegativeInt('limit', limit);
  const cont = one('continue');
  if (cont !== undefined && cont !== '') throw new ValidationError('continue', 'not supported: lists are never paged');
  const pretty = one('pretty');
  if (pretty !== undefined && pretty !== '') parseBool('pretty', pretty);
  const bm = one('allowWatchBookmarks');
  const sie = one('sendInitialEvents');
  const sendInitialEvents = sie === undefined || sie === '' ? false : parseBool('sendInitialEvents', sie);
  if (sie !== undefined && sie !== '' && !sendInitialEvents) {
    throw new ValidationError('sendInitialEvents', 'only true is supported: every watch starts with the full set');
  }
  if (sendInitialEvents && !watch) throw new ValidationError('sendInitialEvents', 'is only valid with watch=true');
  return {
    watch,
    ...fs,
    ...(timeout === undefined || timeout === ''
      ? {}
      : { timeoutSeconds: parseNonNegativeInt('timeoutSeconds', timeout) }),
    allowWatchBookmarks: bm === undefined || bm === '' ? false : parseBool('allowWatchBookmarks', bm),
    sendInitialEvents,
  };
}

/** Refuses any query parameter on requests that take none (besides `pretty`). */
export function checkNoQuery(params: URLSearchParams, allowed: readonly string[] = []): void {
  for (const k of params.keys()) {
    if (k !== 'pretty' && !allowed.includes(k)) throw new ValidationError(k, 'unknown query parameter');
  }
}
