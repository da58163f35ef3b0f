/**
 * The local copy of the monitored tables. The client fills it from the monitor's initial reply
 * ({@link OvsdbCache.replaceAll}, also after every reconnect: a resync from scratch, never a merge
 * with state from before the outage) and keeps it current with `update2` (monitor_cond) or `update`
 * (monitor) notifications. Rows are immutable snapshots: a change replaces the row object, so a
 * reader can keep one without it changing under it.
 */
import type { Logger } from '../../util/log.ts';
import { nullLogger } from '../../util/log.ts';
import { OvsdbError } from './errors.ts';
import { type DatabaseSchema, defaultValue } from './schema.ts';
import {
  atomKey,
  isMap,
  isSet,
  mapPairs,
  type OvsdbAtom,
  type OvsdbRow,
  type OvsdbValue,
  setElements,
  valuesEqual,
} from './values.ts';

export interface CachedRow {
  readonly table: string;
  readonly uuid: string;
  /** Every monitored column, with defaults filled in. */
  readonly columns: OvsdbRow;
}

export type RowChangeKind = 'insert' | 'modify' | 'delete';

export interface RowChange {
  readonly table: string;
  readonly uuid: string;
  readonly kind: RowChangeKind;
  /** The row before the change (modify, delete). */
  readonly old?: CachedRow;
  /** The row after the change (insert, modify). */
  readonly new?: CachedRow;
}

export interface CacheUpdate {
  readonly changes: readonly RowChange[];
  /** True when the cache was rebuilt from a monitor's initial contents (first connect or reconnect). */
  readonly resync: boolean;
}

export type CacheListener = (update: CacheUpdate) => void;

/** `update2` row forms (ovsdb-server(7) §4.1.14). */
export interface RowUpdate2 {
  readonly initial?: OvsdbRow;
  readonly insert?: OvsdbRow;
  readonly modify?: OvsdbRow;
  readonly delete?: null;
}
export type TableUpdates2 = Readonly<Record<string, Readonly<Record<string, RowUpdate2>>>>;

/** `update` row form (RFC 7047 §4.1.6). */
export interface RowUpdate {
  readonly old?: OvsdbRow;
  readonly new?: OvsdbRow;
}
export type TableUpdates = Readonly<Record<string, Readonly<Record<string, RowUpdate>>>>;

/** Read access to the cache (what components that only read need). */
export interface OvsdbCacheView {
  /** All rows of a table (empty if the table is not monitored). */
  rows(table: string): IterableIterator<CachedRow>;
  get(table: string, uuid: string): CachedRow | undefined;
  /**
   * Rows whose `column` equals `value`; uses an index when one was declared for the column, else
   * scans the table.
   */
  lookup(table: string, column: string, value: OvsdbAtom): CachedRow[];
  size(table: string): number;
  /** Calls `listener` after each applied update; returns a function that unsubscribes. */
  subscribe(listener: CacheListener): () => void;
}

export interface OvsdbCacheOptions {
  /** Columns to index per table (scalar columns only), for {@link OvsdbCache.lookup}. */
  readonly indexes?: Readonly<Record<string, readonly string[]>>;
  readonly logger?: Logger;
}

type Table = Map<string, CachedRow>;

/** How a column's values combine in an update2 diff. */
export type ColumnKind = 'scalar' | 'set' | 'map';

export class OvsdbCache implements OvsdbCacheView {
  private tables = new Map<string, Table>();
  private readonly indexDecl: Readonly<Record<string, readonly string[]>>;
  private indexes = new Map<string, Map<string, Map<string, Set<string>>>>();
  private readonly listeners = new Set<CacheListener>();
  private readonly logger: Logger;
  private schema: DatabaseSchema | undefined;
  private monitored = new Map<string, readonly string[]>();

  constructor(opts: OvsdbCacheOptions = {}) {
    this.indexDecl = opts.indexes ?? {};
    this.logger = opts.logger ?? nullLogger;
  }

  /**
   * Declares the schema and the monitored columns per table, so rows can be completed with default
   * values (update2 omits columns at their default). Call before {@link replaceAll}.
   */
  configure(schema: DatabaseSchema, monitored: ReadonlyMap<string, readonly string[]>): void {
    this.schema = schema;
    this.monitored = new Map(monitored);
  }

  rows(table: string): IterableIterator<CachedRow> {
    return (this.tables.get(table) ?? new Map<string, CachedRow>()).values();
  }

  get(table: string, uuid: string): CachedRow | undefined {
    return this.tables.get(table)?.get(uuid);
  }

  size(table: string): number {
    return this.tables.get(table)?.size ?? 0;
  }

  lookup(table: string, column: string, value: OvsdbAtom): CachedRow[] {
    const index = this.indexes.get(table)?.get(column);
    if (index !== undefined) {
      const uuids = index.get(atomKey(value));
      if (uuids === undefined) return [];
      return [...uuids].flatMap((u) => {
        const r = this.get(table, u);
        return r === undefined ? [] : [r];
      });
    }
    return [...this.rows(table)].filter((r) => valuesEqual(r.columns[column], value));
  }

  subscribe(listener: CacheListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Replaces the whole content with a monitor's initial reply (update2 or update form) and notifies
   * listeners of the difference from the previous content as one `resync` update.
   */
  replaceAll(initial: TableUpdates2 | TableUpdates, format: 'update2' | 'update'): void {
    const old = this.tables;
    this.tables = new Map();
    for (const t of this.monitored.keys()) this.tables.set(t, new Map());
    this.rebuildIndexes();
    if (format === 'update2') this.applyUpdate2Quiet(initial as TableUpdates2);
    else this.applyUpdateQuiet(initial as TableUpdates);
    const changes: RowChange[] = [];
    for (const [table, rows] of this.tables) {
      const before = old.get(table) ?? new Map<string, CachedRow>();
      for (const [uuid, row] of rows) {
        const prev = before.get(uuid);
        if (prev === undefined) changes.push({ table, uuid, kind: 'insert', new: row });
        else if (!rowsEqual(prev, row)) changes.push({ table, uuid, kind: 'modify', old: prev, new: row });
      }
      for (const [uuid, prev] of before) {
        if (!rows.has(uuid)) changes.push({ table, uuid, kind: 'delete', old: prev });
      }
    }
    this.emit({ changes, resync: true });
  }

  /** Applies an `update2` notification's table-updates. */
  applyUpdate2(updates: TableUpdates2): void {
    this.emit({ changes: this.applyUpdate2Quiet(updates), resync: false });
  }

  /** Applies an `update` (monitor v1) notification's table-updates. */
  applyUpdate(updates: TableUpdates): void {
    this.emit({ changes: this.applyUpdateQuiet(updates), resync: false });
  }

  /** Drops everything (no notification). */
  clear(): void {
    this.tables = new Map();
    this.rebuildIndexes();
  }

  private emit(update: CacheUpdate): void {
    if (update.changes.length === 0 && !update.resync) return;
    for (const l of [...this.listeners]) {
      try {
        l(update);
      } catch (err) {
        this.logger.error('cache listener failed', { err });
      }
    }
  }

  private table(name: string): Table {
    let t = this.tables.get(name);
    if (t === undefined) {
      t = new Map();
      this.tables.set(name, t);
    }
    return t;
  }

  private kindOf(table: string, column: string): ColumnKind | undefined {
    const t = this.schema?.tables.get(table)?.columns.get(column)?.type;
    if (t === undefined) return undefined;
    if (t.value !== undefined) return 'map';
    return t.min === 1 && t.max === 1 ? 'scalar' : 'set';
  }

  private complete(table: string, columns: OvsdbRow): OvsdbRow {
    const cols = this.monitored.get(table);
    const ts = this.schema?.tables.get(table);
    if (cols === undefined || ts === undefined) return columns;
    let out: Record<string, OvsdbValue> | undefined;
    for (const c of cols) {
      if (columns[c] !== undefined) continue;
      const cs = ts.columns.get(c);
      if (cs === undefined) continue;
      out ??= { ...columns };
      out[c] = defaultValue(cs.type);
    }
    return out ?? columns;
  }

  private put(table: string, uuid: string, columns: OvsdbRow, kind: RowChangeKind, changes: RowChange[]): void {
    const t = this.table(table);
    const prev = t.get(uuid);
    const row: CachedRow = { table, uuid, columns };
    t.set(uuid, row);
    if (prev !== undefined) this.unindex(prev);
    this.index(row);
    changes.push(prev === undefined ? { table, uuid, kind, new: row } : { table, uuid, kind, old: prev, new: row });
  }

  private remove(table: string, uuid: string, changes: RowChange[]): void {
    const t = this.tables.get(table);
    const prev = t?.get(uuid);
    if (t === undefined || prev === undefined) return;
    t.delete(uuid);
    this.unindex(prev);
    changes.push({ table, uuid, kind: 'delete', old: prev });
  }

  private applyUpdate2Quiet(updates: TableUpdates2): RowChange[] {
    const changes: RowChange[] = [];
    for (const [table, rows] of Object.entries(updates)) {
      for (const [uuid, u] of Object.entries(rows)) {
        const full = u.initial ?? u.insert;
        if (full !== undefined) {
          this.put(table, uuid, this.complete(table, full), 'insert', changes);
        } else if (u.modify !== undefined) {
          const prev = this.get(table, uuid);
          if (prev === undefined) {
            throw new OvsdbError('OVSDB_PROTOCOL_ERROR', `update2 modifies unknown row ${uuid} in ${table}`, {
              table,
            });
          }
          this.put(
            table,
            uuid,
            applyDiff(prev.columns, u.modify, (c) => this.kindOf(table, c)),
            'modify',
            changes,
          );
        } else if ('delete' in u) {
          this.remove(table, uuid, changes);
        }
      }
    }
    return changes;
  }

  private applyUpdateQuiet(updates: TableUpdates): RowChange[] {
    const changes: RowChange[] = [];
    for (const [table, rows] of Object.entries(updates)) {
      for (const [uuid, u] of Object.entries(rows)) {
        if (u.new === undefined) this.remove(table, uuid, changes);
        else {
          const prev = this.get(table, uuid);
          const merged = prev === undefined ? u.new : { ...prev.columns, ...u.new };
          this.put(table, uuid, this.complete(table, merged), prev === undefined ? 'insert' : 'modify', changes);
        }
      }
    }
    return changes;
  }

  private rebuildIndexes(): void {
    this.indexes = new Map();
    for (const [table, cols] of Object.entries(this.indexDecl)) {
      this.indexes.set(table, new Map(cols.map((c) => [c, new Map<string, Set<string>>()])));
    }
    for (const t of this.tables.values()) for (const r of t.values()) this.index(r);
  }

  private index(row: CachedRow): void {
    const idx = this.indexes.get(row.table);
    if (idx === undefined) return;
    for (const [col, m] of idx) {
      for (const a of indexAtoms(row.columns[col])) {
        const k = atomKey(a);
        let s = m.get(k);
        if (s === undefined) m.set(k, (s = new Set()));
        s.add(row.uuid);
      }
    }
  }

  private unindex(row: CachedRow): void {
    const idx = this.indexes.get(row.table);
    if (idx === undefined) return;
    for (const [col, m] of idx) {
      for (const a of indexAtoms(row.columns[col])) {
        const k = atomKey(a);
        const s = m.get(k);
        s?.delete(row.uuid);
        if (s?.size === 0) m.delete(k);
      }
    }
  }
}

function indexAtoms(v: OvsdbValue | undefined): readonly OvsdbAtom[] {
  if (v === undefined || isMap(v)) return [];
  return setElements(v);
}

function rowsEqual(a: CachedRow, b: CachedRow): boolean {
  const ka = Object.keys(a.columns);
  if (ka.length !== Object.keys(b.columns).length) return false;
  return ka.every((k) => valuesEqual(a.columns[k], b.columns[k]));
}

/**
 * Applies an update2 `modify` diff to a row: a scalar column takes the new value; a set toggles each
 * element (present: removed, absent: added); a map removes a key given with its current value, and
 * adds or replaces the others. `kindOf` tells the column kinds from the schema (a one-element set
 * travels as a bare atom, so the value alone cannot tell a set from a scalar).
 */
export function applyDiff(
  row: OvsdbRow,
  diff: OvsdbRow,
  kindOf: (column: string) => ColumnKind | undefined = () => undefined,
): OvsdbRow {
  const out: Record<string, OvsdbValue> = { ...row };
  for (const [col, d] of Object.entries(diff)) {
    const cur = row[col];
    const kind = kindOf(col);
    if (kind === 'scalar') {
      out[col] = d;
    } else if (kind === 'map' || isMap(d) || (cur !== undefined && isMap(cur))) {
      const m = new Map(mapPairs(cur).map(([k, v]) => [atomKey(k), [k, v] as const]));
      for (const [k, v] of mapPairs(d)) {
        const key = atomKey(k);
        const existing = m.get(key);
        if (existing !== undefined && atomKey(existing[1]) === atomKey(v)) m.delete(key);
        else m.set(key, [k, v]);
      }
      out[col] = ['map', [...m.values()]];
    } else if (kind === 'set' || isSet(d) || (cur !== undefined && isSet(cur))) {
      const s = new Map(setElements(cur).map((a) => [atomKey(a), a]));
      for (const a of setElements(d)) {
        const k = atomKey(a);
        if (s.has(k)) s.delete(k);
        else s.set(k, a);
      }
      out[col] = ['set', [...s.values()]];
    } else {
      out[col] = d;
    }
  }
  return out;
}
