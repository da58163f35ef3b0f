/**
 * Database schemas (RFC 7047 §3.2) as returned by `get_schema`, and validation of operations against
 * them before they are sent, so a bad table, column or value is reported with the operation index,
 * table, column and value at fault instead of the server's terse "syntax error".
 */
import { OvsdbError } from './errors.ts';
import type { Condition, Mutation, Operation } from './operations.ts';
import { isMap, isNamedUuidAtom, isSet, isUuidAtom, type OvsdbAtom, type OvsdbRow, type OvsdbValue } from './values.ts';

export type AtomicType = 'integer' | 'real' | 'boolean' | 'string' | 'uuid';

export interface BaseType {
  readonly type: AtomicType;
  readonly enum?: readonly OvsdbAtom[];
  readonly minInteger?: number;
  readonly maxInteger?: number;
  readonly minReal?: number;
  readonly maxReal?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly refTable?: string;
  readonly refType?: 'strong' | 'weak';
}

export interface ColumnType {
  readonly key: BaseType;
  readonly value?: BaseType;
  readonly min: number;
  /** `Infinity` for "unlimited". */
  readonly max: number;
}

export interface ColumnSchema {
  readonly name: string;
  readonly type: ColumnType;
  readonly ephemeral: boolean;
  readonly mutable: boolean;
}

export interface TableSchema {
  readonly name: string;
  readonly columns: ReadonlyMap<string, ColumnSchema>;
  readonly isRoot: boolean;
  readonly indexes: readonly (readonly string[])[];
}

export interface DatabaseSchema {
  readonly name: string;
  readonly version: string;
  readonly tables: ReadonlyMap<string, TableSchema>;
}

const ATOMIC_TYPES: readonly string[] = ['integer', 'real', 'boolean', 'string', 'uuid'];
const UUID_COLUMN: ColumnSchema = {
  name: '_uuid',
  type: { key: { type: 'uuid' }, min: 1, max: 1 },
  ephemeral: false,
  mutable: false,
};
const VERSION_COLUMN: ColumnSchema = { ...UUID_COLUMN, name: '_version' };

function bad(message: string): never {
  throw new OvsdbError('OVSDB_PROTOCOL_ERROR', `invalid schema: ${message}`);
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(`${what} must be an object`);
  return v as Record<string, unknown>;
}

function parseBaseType(v: unknown, what: string): BaseType {
  if (typeof v === 'string') {
    if (!ATOMIC_TYPES.includes(v)) bad(`${what}: unknown atomic type ${v}`);
    return { type: v as AtomicType };
  }
  const o = obj(v, what);
  const type = o['type'];
  if (typeof type !== 'string' || !ATOMIC_TYPES.includes(type)) bad(`${what}: unknown atomic type ${String(type)}`);
  const out: { -readonly [K in keyof BaseType]: BaseType[K] } = { type: type as AtomicType };
  if (o['enum'] !== undefined) {
    const e = o['enum'];
    out.enum = isSet(e) ? e[1] : [e as OvsdbAtom];
  }
  for (const k of ['minInteger', 'maxInteger', 'minReal', 'maxReal', 'minLength', 'maxLength'] as const) {
    const n = o[k];
    if (n !== undefined) {
      if (typeof n !== 'number') bad(`${what}.${k} must be a number`);
      out[k] = n;
    }
  }
  if (typeof o['refTable'] === 'string') out.refTable = o['refTable'];
  if (o['refType'] === 'weak' || o['refType'] === 'strong') out.refType = o['refType'];
  return out;
}

function parseColumnType(v: unknown, what: string): ColumnType {
  if (typeof v === 'string') return { key: parseBaseType(v, what), min: 1, max: 1 };
  const o = obj(v, what);
  const key = parseBaseType(o['key'], `${what}.key`);
  const value = o['value'] === undefined ? undefined : parseBaseType(o['value'], `${what}.value`);
  const min = o['min'] === undefined ? 1 : o['min'];
  const max = o['max'] === undefined ? 1 : o['max'] === 'unlimited' ? Infinity : o['max'];
  if (typeof min !== 'number' || typeof max !== 'number') bad(`${what}: min/max must be numbers`);
  return value === undefined ? { key, min, max } : { key, value, min, max };
}

/** Parses a `get_schema` result. Throws OVSDB_PROTOCOL_ERROR if it is not a valid schema. */
export function parseSchema(json: unknown): DatabaseSchema {
  const o = obj(json, 'schema');
  if (typeof o['name'] !== 'string') bad('name must be a string');
  const tables = new Map<string, TableSchema>();
  for (const [tname, tv] of Object.entries(obj(o['tables'], 'tables'))) {
    const t = obj(tv, `table ${tname}`);
    const columns = new Map<string, ColumnSchema>([
      ['_uuid', UUID_COLUMN],
      ['_version', VERSION_COLUMN],
    ]);
    for (const [cname, cv] of Object.entries(obj(t['columns'], `table ${tname} columns`))) {
      const c = obj(cv, `column ${tname}.${cname}`);
      columns.set(cname, {
        name: cname,
        type: parseColumnType(c['type'], `column ${tname}.${cname}`),
        ephemeral: c['ephemeral'] === true,
        mutable: c['mutable'] !== false,
      });
    }
    const indexes = Array.isArray(t['indexes']) ? (t['indexes'] as string[][]) : [];
    tables.set(tname, { name: tname, columns, isRoot: t['isRoot'] === true, indexes });
  }
  return { name: o['name'], version: typeof o['version'] === 'string' ? o['version'] : '', tables };
}

/** A short human description of a column type, for error messages. */
export function describeType(t: ColumnType): string {
  const base = (b: BaseType): string => {
    let s = b.type;
    if (b.enum !== undefined) s += ` (one of ${b.enum.map((a) => JSON.stringify(a)).join(', ')})`;
    const lo = b.minInteger ?? b.minReal;
    const hi = b.maxInteger ?? b.maxReal;
    if (lo !== undefined || hi !== undefined) s += ` in ${lo ?? '-inf'}..${hi ?? 'inf'}`;
    if (b.refTable !== undefined) s += ` referencing ${b.refTable}`;
    return s;
  };
  if (t.value !== undefined) return `map of ${base(t.key)} to ${base(t.value)}`;
  if (t.min === 1 && t.max === 1) return base(t.key);
  if (t.min === 0 && t.max === 1) return `optional ${base(t.key)}`;
  return `set of ${t.min}..${t.max === Infinity ? 'unlimited' : t.max} ${base(t.key)}`;
}

/** Why `a` is not a valid atom of `b`, or undefined if it is. */
export function checkAtom(b: BaseType, a: unknown, uuidNames?: ReadonlySet<string>): string | undefined {
  switch (b.type) {
    case 'integer':
      if (typeof a !== 'number' || !Number.isInteger(a)) return `expected an integer, got ${JSON.stringify(a)}`;
      if (b.minInteger !== undefined && a < b.minInteger) return `${a} is below the minimum ${b.minInteger}`;
      if (b.maxInteger !== undefined && a > b.maxInteger) return `${a} is above the maximum ${b.maxInteger}`;
      break;
    case 'real':
      if (typeof a !== 'number') return `expected a real number, got ${JSON.stringify(a)}`;
      if (b.minReal !== undefined && a < b.minReal) return `${a} is below the minimum ${b.minReal}`;
      if (b.maxReal !== undefined && a > b.maxReal) return `${a} is above the maximum ${b.maxReal}`;
      break;
    case 'boolean':
      if (typeof a !== 'boolean') return `expected a boolean, got ${JSON.stringify(a)}`;
      break;
    case 'string':
      if (typeof a !== 'string') return `expected a string, got ${JSON.stringify(a)}`;
      if (b.minLength !== undefined && a.length < b.minLength) return `"${a}" is shorter than ${b.minLength}`;
      if (b.maxLength !== undefined && a.length > b.maxLength) return `"${a}" is longer than ${b.maxLength}`;
      break;
    case 'uuid':
      if (isNamedUuidAtom(a)) {
        if (uuidNames !== undefined && !uuidNames.has(a[1])) {
          return `named-uuid "${a[1]}" is not the uuid-name of an insert in this transaction`;
        }
        break;
      }
      if (!isUuidAtom(a)) return `expected ["uuid", ...] or ["named-uuid", ...], got ${JSON.stringify(a)}`;
      if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(a[1])) {
        return `"${a[1]}" is not a UUID`;
      }
      break;
  }
  if (b.enum !== undefined && !b.enum.some((e) => e === a)) {
    return `${JSON.stringify(a)} is not one of ${b.enum.map((e) => JSON.stringify(e)).join(', ')}`;
  }
  return undefined;
}

export interface ValueCheckOptions {
  /** Check the element count against the column's min (not done for conditions and mutations). */
  readonly checkMin?: boolean;
  /** uuid-names defined in the transaction (to catch dangling named-uuid references). */
  readonly uuidNames?: ReadonlySet<string>;
}

/** Why `v` is not a valid value of type `t`, or undefined if it is. */
export function checkValue(t: ColumnType, v: unknown, opts: ValueCheckOptions = {}): string | undefined {
  const checkMin = opts.checkMin ?? true;
  let count: number;
  if (t.value !== undefined) {
    if (!isMap(v)) {
      if (isSet(v) && v[1].length === 0) return checkMin && t.min > 0 ? `needs at least ${t.min} pairs` : undefined;
      return `expected a map ["map", [[key, value], ...]], got ${JSON.stringify(v)}`;
    }
    const seen = new Set<string>();
    for (const pair of v[1] as readonly unknown[]) {
      if (!Array.isArray(pair) || pair.length !== 2) return `map pair ${JSON.stringify(pair)} is not [key, value]`;
      const [k, val] = pair as [unknown, unknown];
      const kp = checkAtom(t.key, k, opts.uuidNames);
      if (kp !== undefined) return `map key: ${kp}`;
      const vp = checkAtom(t.value, val, opts.uuidNames);
      if (vp !== undefined) return `value of key ${JSON.stringify(k)}: ${vp}`;
      const kk = JSON.stringify(k);
      if (seen.has(kk)) return `duplicate map key ${kk}`;
      seen.add(kk);
    }
    count = v[1].length;
  } else if (isSet(v)) {
    for (const a of v[1] as readonly unknown[]) {
      const p = checkAtom(t.key, a, opts.uuidNames);
      if (p !== undefined) return p;
    }
    count = v[1].length;
  } else if (isMap(v)) {
    return `expected ${describeType(t)}, got a map`;
  } else {
    const p = checkAtom(t.key, v, opts.uuidNames);
    if (p !== undefined) return p;
    count = 1;
  }
  if (count > t.max) return `${count} elements, at most ${t.max} allowed`;
  if (checkMin && count < t.min) return `${count} elements, at least ${t.min} needed`;
  return undefined;
}

function isNumeric(t: ColumnType): boolean {
  return t.value === undefined && (t.key.type === 'integer' || t.key.type === 'real');
}

/**
 * Checks a transaction's operations against `schema`. Throws OVSDB_INVALID_OPERATION naming the
 * operation index, table, column and value at fault for the first problem found.
 */
export function validateOperations(schema: DatabaseSchema, operations: readonly Operation[]): void {
  const uuidNames = new Set<string>();
  for (const o of operations) {
    if (o.op === 'insert' && o['uuid-name'] !== undefined) uuidNames.add(o['uuid-name']);
  }
  const seenNames = new Set<string>();
  operations.forEach((o, opIndex) => {
    const problem = (message: string, ctx: { table?: string; column?: string; value?: unknown } = {}): OvsdbError => {
      const where = `operation ${opIndex} (${String((o as { op?: unknown }).op)}${ctx.table === undefined ? '' : ' ' + ctx.table})`;
      const col = ctx.column === undefined ? '' : ` column "${ctx.column}"`;
      return new OvsdbError('OVSDB_INVALID_OPERATION', `${where}${col}: ${message}`, {
        opIndex,
        op: String((o as { op?: unknown }).op),
        ...ctx,
      });
    };
    if (typeof o !== 'object' || (o as unknown) === null) throw problem('not an object');
    if (o.op === 'commit' || o.op === 'abort' || o.op === 'comment' || o.op === 'assert') return;
    const known = ['insert', 'select', 'update', 'mutate', 'delete', 'wait'];
    if (!known.includes((o as { op: string }).op)) throw problem('unknown operation');
    const table = schema.tables.get(o.table);
    if (table === undefined) throw problem(`no table "${o.table}" in database ${schema.name}`, { table: o.table });
    const ctx = (column: string, value?: unknown): { table: string; column: string; value?: unknown } =>
      value === undefined ? { table: table.name, column } : { table: table.name, column, value };
    const column = (name: string): ColumnSchema => {
      const c = table.columns.get(name);
      if (c === undefined) throw problem(`unknown column "${name}" in table ${table.name}`, ctx(name));
      return c;
    };
    const checkRow = (row: OvsdbRow, forUpdate: boolean, checkMin: boolean): void => {
      if (typeof row !== 'object' || (row as unknown) === null)
        throw problem('row must be an object', { table: table.name });
      for (const [name, v] of Object.entries(row)) {
        const c = column(name);
        if (name === '_uuid' || name === '_version') throw problem('cannot be written', ctx(name, v));
        if (forUpdate && !c.mutable) throw problem(`is immutable in table ${table.name}`, ctx(name, v));
        const p = checkValue(c.type, v, { checkMin, uuidNames });
        if (p !== undefined) throw problem(`${p} (type: ${describeType(c.type)})`, ctx(name, v));
      }
    };
    const checkWhere = (where: readonly Condition[] | undefined): void => {
      if (!Array.isArray(where)) throw problem('"where" must be an array of conditions', { table: table.name });
      for (const cond of where as readonly unknown[]) {
        if (!Array.isArray(cond) || cond.length !== 3 || typeof cond[0] !== 'string') {
          throw problem(`condition ${JSON.stringify(cond)} is not [column, function, value]`, { table: table.name });
        }
        const [name, fn, v] = cond as [string, string, unknown];
        const c = column(name);
        if (!['<', '<=', '==', '!=', '>=', '>', 'includes', 'excludes'].includes(fn)) {
          throw problem(`unknown condition function "${fn}"`, ctx(name, v));
        }
        if (['<', '<=', '>=', '>'].includes(fn) && !(isNumeric(c.type) && c.type.max === 1)) {
          throw problem(
            `function "${fn}" needs an integer or real column (type: ${describeType(c.type)})`,
            ctx(name, v),
          );
        }
        const p = checkValue(c.type, v, { checkMin: false, uuidNames });
        if (p !== undefined) throw problem(`${p} (type: ${describeType(c.type)})`, ctx(name, v));
      }
    };
    const checkMutation = (mu: unknown): void => {
      if (!Array.isArray(mu) || mu.length !== 3 || typeof mu[0] !== 'string') {
        throw problem(`mutation ${JSON.stringify(mu)} is not [column, mutator, value]`, { table: table.name });
      }
      const [name, mutator, v] = mu as unknown as Mutation;
      const c = column(name);
      if (name === '_uuid' || name === '_version' || !c.mutable)
        throw problem(`is immutable in table ${table.name}`, ctx(name, v));
      const t = c.type;
      switch (mutator) {
        case '+=':
        case '-=':
        case '*=':
        case '/=':
        case '%=': {
          if (!isNumeric(t) || (mutator === '%=' && t.key.type !== 'integer')) {
            throw problem(
              `mutator "${mutator}" needs an integer or real column (type: ${describeType(t)})`,
              ctx(name, v),
            );
          }
          const p = checkAtom({ type: t.key.type }, v);
          if (p !== undefined) throw problem(p, ctx(name, v));
          return;
        }
        case 'insert':
        case 'delete': {
          if (t.max <= 1 && t.value === undefined) {
            throw problem(`mutator "${mutator}" needs a set or map column (type: ${describeType(t)})`, ctx(name, v));
          }
          const relaxed: ColumnType = { ...t, min: 0, max: Infinity };
          let p: string | undefined;
          if (mutator === 'delete' && t.value !== undefined && !isMap(v)) {
            // deleting from a map by keys: a set of keys
            p = checkValue({ key: t.key, min: 0, max: Infinity }, v, { checkMin: false, uuidNames });
          } else {
            p = checkValue(relaxed, v, { checkMin: false, uuidNames });
          }
          if (p !== undefined) throw problem(`${p} (type: ${describeType(t)})`, ctx(name, v));
          return;
        }
        default:
          throw problem(`unknown mutator "${String(mutator)}"`, ctx(name, v));
      }
    };
    switch (o.op) {
      case 'insert': {
        const name = o['uuid-name'];
        if (name !== undefined) {
          if (!/^[_a-zA-Z][_a-zA-Z0-9]*$/.test(name))
            throw problem(`uuid-name "${name}" is not an identifier`, { table: o.table });
          if (seenNames.has(name)) throw problem(`duplicate uuid-name "${name}"`, { table: o.table });
          seenNames.add(name);
        }
        checkRow(o.row, false, true);
        return;
      }
      case 'select':
        checkWhere(o.where);
        for (const c of o.columns ?? []) column(c);
        return;
      case 'update':
        checkWhere(o.where);
        checkRow(o.row, true, true);
        return;
      case 'mutate':
        checkWhere(o.where);
        if (!Array.isArray(o.mutations)) throw problem('"mutations" must be an array', { table: o.table });
        for (const m of o.mutations as readonly unknown[]) checkMutation(m);
        return;
      case 'delete':
        checkWhere(o.where);
        return;
      case 'wait': {
        checkWhere(o.where);
        const until = o.until as unknown;
        if (until !== '==' && until !== '!=') throw problem(`"until" must be "==" or "!="`, { table: o.table });
        if (o.timeout !== undefined && !(Number.isInteger(o.timeout) && o.timeout >= 0)) {
          throw problem('"timeout" must be a non-negative integer (ms)', { table: o.table });
        }
        const cols = new Set(o.columns);
        for (const c of o.columns) column(c);
        for (const row of o.rows) {
          for (const name of Object.keys(row)) {
            if (!cols.has(name)) throw problem(`row column "${name}" is not listed in "columns"`, ctx(name));
          }
          checkRow(row, false, false);
        }
        return;
      }
    }
  });
}

/** The default value of a column type (what the server omits from update2 inserts). */
export function defaultValue(t: ColumnType): OvsdbValue {
  if (t.min === 0) return t.value === undefined ? ['set', []] : ['map', []];
  switch (t.key.type) {
    case 'integer':
    case 'real':
      return 0;
    case 'boolean':
      return false;
    case 'string':
      return '';
    case 'uuid':
      return ['uuid', '00000000-0000-0000-0000-000000000000'];
  }
}
