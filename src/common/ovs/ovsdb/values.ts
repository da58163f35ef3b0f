/**
 * OVSDB values in their RFC 7047 JSON form (§5.1), with constructors and decoders.
 *
 * - atoms: string, integer, real, boolean, `["uuid", "..."]`, `["named-uuid", "..."]`
 * - sets: `["set", [atom...]]`, or a bare atom for a one-element set
 * - maps: `["map", [[key, value]...]]`
 *
 * Values are plain JSON so they can be sent, cached and compared without conversion.
 */

export type UuidAtom = readonly ['uuid', string];
export type NamedUuidAtom = readonly ['named-uuid', string];
export type OvsdbAtom = string | number | boolean | UuidAtom | NamedUuidAtom;
export type OvsdbSet = readonly ['set', readonly OvsdbAtom[]];
export type OvsdbMap = readonly ['map', readonly (readonly [OvsdbAtom, OvsdbAtom])[]];
export type OvsdbValue = OvsdbAtom | OvsdbSet | OvsdbMap;

/** A row as the server sends it (column name to value), without `_uuid` unless selected. */
export type OvsdbRow = Readonly<Record<string, OvsdbValue>>;

export function uuid(id: string): UuidAtom {
  return ['uuid', id];
}

export function namedUuid(name: string): NamedUuidAtom {
  return ['named-uuid', name];
}

export function ovsSet(atoms: readonly OvsdbAtom[]): OvsdbSet {
  return ['set', atoms];
}

/** A string-to-string map (the type of every external_ids, options and other_config column). */
export function ovsMap(entries: Readonly<Record<string, string>> | readonly (readonly [string, string])[]): OvsdbMap {
  const pairs = Array.isArray(entries)
    ? (entries as readonly (readonly [string, string])[])
    : Object.entries(entries as Record<string, string>);
  return ['map', [...pairs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))];
}

/** An empty set: the value of an optional column that is unset. */
export const EMPTY_SET: OvsdbSet = ['set', []];

export function isUuidAtom(v: unknown): v is UuidAtom {
  return Array.isArray(v) && v.length === 2 && v[0] === 'uuid' && typeof v[1] === 'string';
}

export function isNamedUuidAtom(v: unknown): v is NamedUuidAtom {
  return Array.isArray(v) && v.length === 2 && v[0] === 'named-uuid' && typeof v[1] === 'string';
}

export function isSet(v: unknown): v is OvsdbSet {
  return Array.isArray(v) && v.length === 2 && v[0] === 'set' && Array.isArray(v[1]);
}

export function isMap(v: unknown): v is OvsdbMap {
  return Array.isArray(v) && v.length === 2 && v[0] === 'map' && Array.isArray(v[1]);
}

/** The elements of a set-typed value (a bare atom is a one-element set). */
export function setElements(v: OvsdbValue | undefined): readonly OvsdbAtom[] {
  if (v === undefined) return [];
  if (isSet(v)) return v[1];
  if (isMap(v)) throw new TypeError('expected a set, got a map');
  return [v];
}

/** The pairs of a map-typed value. */
export function mapPairs(v: OvsdbValue | undefined): readonly (readonly [OvsdbAtom, OvsdbAtom])[] {
  if (v === undefined) return [];
  if (isMap(v)) return v[1];
  if (isSet(v) && v[1].length === 0) return [];
  throw new TypeError('expected a map');
}

/** A string map column as a record (non-string atoms are rendered with String()). */
export function mapToRecord(v: OvsdbValue | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, val] of mapPairs(v)) out[atomToString(k)] = atomToString(val);
  return out;
}

/** The single element of an optional (0..1) column, or undefined when it is empty. */
export function optional(v: OvsdbValue | undefined): OvsdbAtom | undefined {
  const els = setElements(v);
  return els[0];
}

export function optionalString(v: OvsdbValue | undefined): string | undefined {
  const a = optional(v);
  return a === undefined ? undefined : atomToString(a);
}

export function optionalNumber(v: OvsdbValue | undefined): number | undefined {
  const a = optional(v);
  return typeof a === 'number' ? a : undefined;
}

/** The UUID strings of a set of references. */
export function uuidSet(v: OvsdbValue | undefined): string[] {
  return setElements(v).flatMap((a) => (isUuidAtom(a) ? [a[1]] : []));
}

export function atomToString(a: OvsdbAtom): string {
  return typeof a === 'object' ? a[1] : String(a);
}

/** A stable key for an atom (for indexes and set/map diffs). */
export function atomKey(a: OvsdbAtom): string {
  return typeof a === 'object' ? `${a[0]}:${a[1]}` : `${typeof a}:${String(a)}`;
}

/** Deep equality of two values, treating a bare atom and a one-element set as equal, and sets/maps as unordered. */
export function valuesEqual(a: OvsdbValue | undefined, b: OvsdbValue | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  if (isMap(a) || isMap(b)) {
    const pa = safePairs(a);
    const pb = safePairs(b);
    if (pa === undefined || pb === undefined || pa.length !== pb.length) return false;
    const m = new Map(pa.map(([k, v]) => [atomKey(k), atomKey(v)]));
    return pb.every(([k, v]) => m.get(atomKey(k)) === atomKey(v));
  }
  const ea = setElements(a).map(atomKey);
  const eb = new Set(setElements(b).map(atomKey));
  return ea.length === eb.size && ea.every((k) => eb.has(k));
}

function safePairs(v: OvsdbValue): readonly (readonly [OvsdbAtom, OvsdbAtom])[] | undefined {
  try {
    return mapPairs(v);
  } catch {
    return undefined;
  }
}

/** Equality of two string records (external_ids, options...). */
export function recordsEqual(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && b[k] === a[k]);
}
