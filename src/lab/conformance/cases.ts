/**
 * NetworkPolicy conformance cases as data (format `netpol-case/v1`, see test/conformance/netpol/
 * README.md): loading a directory of case files with schema validation, the expected verdict of
 * every probed pair, and the run-time placeholders that put Pod IPs into ipBlocks.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { AntreaError, errorMessage } from '../../common/util/errors.ts';
import { parseCIDR, parseIP } from '../../common/util/ipaddr.ts';
import { MODEL_KEYS, type ModelKind } from '../model.ts';
import { JsonSchema, type SchemaError } from './json-schema.ts';

export const CASE_SCHEMA_FILE = join(import.meta.dirname, 'netpol-case.schema.json');

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export type Mark = 'allow' | 'drop' | 'reject';
/** k8s: connected or not; antrea: allow, drop or reject. */
export type Expected = boolean | Mark;

export interface CaseObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly [k: string]: unknown };
  readonly spec: Record<string, unknown>;
  readonly [k: string]: unknown;
}

export interface CaseProbe {
  readonly port: number;
  readonly protocol: Protocol;
  readonly ignoreLoopback: boolean;
  readonly expect: {
    readonly default: Expected;
    readonly allow?: readonly (readonly [string, string])[];
    readonly deny?: readonly (readonly [string, string])[];
    readonly drop?: readonly (readonly [string, string])[];
    readonly reject?: readonly (readonly [string, string])[];
  };
  readonly table?: readonly string[];
}

export interface CaseStep {
  readonly description?: string;
  readonly delete?: readonly string[];
  readonly apply?: readonly CaseObject[];
  readonly namespaceLabels?: Readonly<Record<string, Readonly<Record<string, string | null>>>>;
  readonly podLabels?: Readonly<Record<string, Readonly<Record<string, string | null>>>>;
  readonly probes: readonly CaseProbe[];
}

export interface NetpolCase {
  readonly schema: 'netpol-case/v1';
  readonly id: string;
  readonly name: string;
  readonly model: ModelKind;
  readonly features?: readonly string[];
  readonly notes?: readonly string[];
  readonly steps: readonly CaseStep[];
  /** Where it was loaded from (relative to the cases directory). */
  readonly file: string;
}

export type CaseErrorCode = 'CASE_INVALID' | 'CASE_DIR' | 'CASE_PLACEHOLDER';
export class CaseError extends AntreaError<CaseErrorCode> {}

/** A file that is not a valid case: its path and every problem found. */
export interface InvalidCase {
  readonly file: string;
  readonly errors: readonly SchemaError[];
}

let schemaCache: JsonSchema | undefined;
function caseSchema(): JsonSchema {
  schemaCache ??= new JsonSchema(JSON.parse(readFileSync(CASE_SCHEMA_FILE, 'utf8')) as Record<string, unknown>);
  return schemaCache;
}

/** Validates one parsed case file against the schema; returns its problems. */
export function validateCase(value: unknown): SchemaError[] {
  return caseSchema().validate(value);
}

function jsonFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...jsonFiles(p));
    else if (name.endsWith('.json')) out.push(p);
  }
  return out;
}

/**
 * Loads every case file under `dir` (recursively, in path order). JSON files that are not cases
 * (no `"schema": "netpol-case/v1"`, such as index.json or schema.json) are ignored; case files that
 * do not validate are returned in `invalid` with every problem.
 */
export function loadCases(dir: string): { cases: NetpolCase[]; invalid: InvalidCase[] } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new CaseError('CASE_DIR', `--cases: ${dir} is not a directory`);
  }
  const cases: NetpolCase[] = [];
  const invalid: InvalidCase[] = [];
  for (const path of jsonFiles(dir)) {
    const file = relative(dir, path);
    let value: unknown;
    try {
      value = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      invalid.push({ file, errors: [{ path: '', message: `not JSON: ${errorMessage(err)}` }] });
      continue;
    }
    const v = value as { schema?: unknown; $schema?: unknown } | null;
    if (typeof v !== 'object' || v === null || Array.isArray(v) || v.schema !== 'netpol-case/v1') {
      if (typeof v === 'object' && v !== null && !Array.isArray(v) && v.$schema === undefined && 'steps' in v) {
        invalid.push({ file, errors: [{ path: '/schema', message: 'must be "netpol-case/v1"' }] });
      }
      continue;
    }
    const errors = validateCase(value);
    if (errors.length > 0) invalid.push({ file, errors });
    else cases.push({ ...(value as Omit<NetpolCase, 'file'>), file });
  }
  // Two files with one id are both held back: which one is meant cannot be told.
  const files = new Map<string, string[]>();
  for (const c of cases) files.set(c.id, [...(files.get(c.id) ?? []), c.file]);
  const unique = cases.filter((c) => (files.get(c.id) ?? []).length === 1);
  for (const c of cases) {
    const others = (files.get(c.id) ?? []).filter((f) => f !== c.file);
    if (others.length > 0) {
      invalid.push({ file: c.file, errors: [{ path: '/id', message: `duplicates the id of ${others.join(', ')}` }] });
    }
  }
  return { cases: unique, invalid };
}

/** Whether a case matches `--filter` (case-insensitive substring of its id, name or file). */
export function caseMatches(c: NetpolCase, filter: string | undefined): boolean {
  if (filter === undefined || filter === '') return true;
  const f = filter.toLowerCase();
  return [c.id, c.name, c.file].some((s) => s.toLowerCase().includes(f));
}

/** The expected verdict of every ordered pair of the model (`from` → `to`). */
export function expectedMatrix(p: CaseProbe): Map<string, Expected> {
  const m = new Map<string, Expected>();
  for (const from of MODEL_KEYS) for (const to of MODEL_KEYS) m.set(`${from}>${to}`, p.expect.default);
  const put = (pairs: readonly (readonly [string, string])[] | undefined, value: Expected): void => {
    for (const [from, to] of pairs ?? []) m.set(`${from}>${to}`, value);
  };
  if (typeof p.expect.default === 'boolean') {
    put(p.expect.allow, true);
    put(p.expect.deny, false);
  } else {
    put(p.expect.allow, 'allow');
    put(p.expect.drop, 'drop');
    put(p.expect.reject, 'reject');
  }
  return m;
}

const PLACEHOLDER = /\{\{([a-z]+):([^}]*)\}\}/g;

/**
 * Replaces `{{hostcidr:NS/POD}}`, `{{cidr:NS/POD/N}}` and `{{ip:NS/POD}}` in every string of
 * `value` with the Pod's IP as a host route, the canonical network of prefix N holding it, or the
 * bare IP. Unknown placeholders and Pods are errors naming `where`.
 */
export function substitutePlaceholders<T>(value: T, podIPs: ReadonlyMap<string, string>, where: string): T {
  const ipOf = (pod: string): string => {
    const ip = podIPs.get(pod);
    if (ip === undefined) throw new CaseError('CASE_PLACEHOLDER', `${where}: no IP for Pod "${pod}"`);
    return ip;
  };
  const replace = (s: string): string =>
    s.replace(PLACEHOLDER, (_all, kind: string, arg: string) => {
      switch (kind) {
        case 'ip':
          return ipOf(arg);
        case 'hostcidr': {
          const ip = ipOf(arg);
          return `${ip}/${parseIP(ip)?.family === 6 ? 128 : 32}`;
        }
        case 'cidr': {
          const m = /^([^/]+\/[^/]+)\/(\d+)$/.exec(arg);
          if (m === null) throw new CaseError('CASE_PLACEHOLDER', `${where}: {{cidr:${arg}}} must be NS/POD/N`);
          const net = parseCIDR(`${ipOf(m[1] ?? '')}/${m[2] ?? ''}`);
          if (net === undefined)
            throw new CaseError('CASE_PLACEHOLDER', `${where}: {{cidr:${arg}}}: invalid prefix length`);
          return `${net.ip}/${net.prefixLength}`;
        }
        default:
          throw new CaseError('CASE_PLACEHOLDER', `${where}: unknown placeholder {{${kind}:${arg}}}`);
      }
    });
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return replace(v);
    if (Array.isArray(v)) return v.map(walk);
    if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(value) as T;
}
