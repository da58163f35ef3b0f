/**
 * A set stored as nothing, one object, a small exact-size array, or a Set: most groups, label sets
 * and index buckets at scale hold one to a few elements, and a JavaScript Set costs 150-250 bytes even
 * then. Elements must be objects, never arrays or Sets themselves; the functions return the new
 * value to store. Arrays are replaced, never mutated, so iterating a value while changing the set is
 * safe for arrays (not for Sets: copy first if the loop changes the set).
 */
export type SmallSet<T extends object> = T | readonly T[] | Set<T> | undefined;

/** Up to this many elements are kept in an array. */
const MAX_ARRAY = 8;

export function smallAdd<T extends object>(s: SmallSet<T>, x: T): SmallSet<T> {
  if (s === undefined || s === x) return x;
  if (s instanceof Set) {
    s.add(x);
    return s;
  }
  if (Array.isArray(s)) {
    const arr = s as readonly T[];
    if (arr.includes(x)) return arr;
    if (arr.length < MAX_ARRAY) return [...arr, x];
    const set = new Set(arr);
    set.add(x);
    return set;
  }
  return [s as T, x];
}

export function smallDelete<T extends object>(s: SmallSet<T>, x: T): SmallSet<T> {
  if (s === undefined || s === x) return undefined;
  if (s instanceof Set) {
    s.delete(x);
    if (s.size > MAX_ARRAY / 2) return s;
    return s.size === 0 ? undefined : [...s];
  }
  if (Array.isArray(s)) {
    const arr = s as readonly T[];
    if (!arr.includes(x)) return arr;
    if (arr.length === 2) return arr[0] === x ? arr[1] : arr[0];
    return arr.filter((y) => y !== x);
  }
  return s;
}

export function smallHas<T extends object>(s: SmallSet<T>, x: T): boolean {
  if (s === undefined) return false;
  if (s instanceof Set) return s.has(x);
  if (Array.isArray(s)) return (s as readonly T[]).includes(x);
  return s === x;
}

export function smallSize<T extends object>(s: SmallSet<T>): number {
  if (s === undefined) return 0;
  if (s instanceof Set) return s.size;
  if (Array.isArray(s)) return s.length;
  return 1;
}

const NONE: readonly never[] = [];

/** The elements, iterable; a single element is wrapped in a one-element array. */
export function smallValues<T extends object>(s: SmallSet<T>): Iterable<T> {
  if (s === undefined) return NONE;
  if (s instanceof Set || Array.isArray(s)) return s as Iterable<T>;
  return [s as T];
}
