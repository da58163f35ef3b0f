/**
 * The object store: one global, monotonically increasing resourceVersion (etcd's revision), the
 * current objects of every resource type, and a bounded per-type history of change events from
 * which watches resume. Every write is synchronous: it bumps the revision, replaces the object,
 * records the event, hands it to the type's watchers (each event is serialized once and the same
 * bytes go to every watcher) and to the change listeners (controllers, persistence).
 *
 * Stored objects are never mutated; writers pass in a fresh object that the store then owns.
 */
import type { Watcher } from './watch.ts';
import type { KObject } from './types.ts';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoredEntry {
  readonly obj: KObject;
  /** The object's JSON, computed once per write. */
  readonly json: string;
  readonly rv: number;
}

/** One change of one object. */
export class StoreEvent {
  readonly type: EventType;
  readonly rv: number;
  readonly storageKey: string;
  readonly key: string;
  /** The new object; for DELETED, the last state stamped with the revision of the delete. */
  readonly obj: KObject;
  /** The previous state (MODIFIED and DELETED), with its own revision. */
  readonly prev: KObject | undefined;
  private readonly objJson: string;
  private readonly lines = new Map<string, Buffer>();

  constructor(
    type: EventType,
    rv: number,
    storageKey: string,
    key: string,
    entry: StoredEntry,
    prev: KObject | undefined,
  ) {
    this.type = type;
    this.rv = rv;
    this.storageKey = storageKey;
    this.key = key;
    this.obj = entry.obj;
    this.objJson = entry.json;
    this.prev = prev;
  }

  /** The JSON of the new object. */
  get json(): string {
    return this.objJson;
  }

  /**
   * The watch line `{"type":T,"object":...}\n`, built once per event and type. With `fromPrev`, the
   * object is the previous state stamped with this event's revision (a DELETED sent to a watcher
   * whose selector the object just left).
   */
  line(type: EventType, fromPrev = false): Buffer {
    const cacheKey = fromPrev ? `${type}/prev` : type;
    let b = this.lines.get(cacheKey);
    if (b === undefined) {
      const json = fromPrev && this.prev !== undefined ? JSON.stringify(stampRv(this.prev, this.rv)) : this.objJson;
      b = Buffer.from(`{"type":"${type}","object":${json}}\n`);
      this.lines.set(cacheKey, b);
    }
    return b;
  }

  /** The object a watcher should see for a transition (previous content for a selector exit). */
  objectFor(fromPrev: boolean): KObject {
    return fromPrev && this.prev !== undefined ? stampRv(this.prev, this.rv) : this.obj;
  }
}

/** A shallow copy of `obj` with metadata.resourceVersion set to `rv`. */
export function stampRv(obj: KObject, rv: number): KObject {
  return { ...obj, metadata: { ...obj.metadata, resourceVersion: String(rv) } };
}

/** The objects, history and watchers of one resource type. */
export class TypeStore {
  readonly storageKey: string;
  readonly objects = new Map<string, StoredEntry>();
  readonly watchers = new Set<Watcher>();
  /** The highest revision of an event of this type that is no longer in the history. */
  evictedUpTo = 0;
  /** The revision of the last write to this type (0 if none). */
  lastModified = 0;
  private readonly history: (StoreEvent | undefined)[];
  private head = 0;
  private size = 0;
  private sortedKeys: string[] | undefined;

  constructor(storageKey: string, historyCapacity: number) {
    this.storageKey = storageKey;
    this.history = new Array<StoreEvent | undefined>(Math.max(1, historyCapacity));
  }

  /** Keys in order (namespace/name), cached until an object is added or removed. */
  keys(): readonly string[] {
    if (this.sortedKeys === undefined) this.sortedKeys = [...this.objects.keys()].sort(compareKeys);
    return this.sortedKeys;
  }

  invalidateKeys(): void {
    this.sortedKeys = undefined;
  }

  record(ev: StoreEvent): void {
    const cap = this.history.length;
    if (this.size === cap) {
      const old = this.history[this.head];
      if (old !== undefined) this.evictedUpTo = Math.max(this.evictedUpTo, old.rv);
      this.history[this.head] = ev;
      this.head = (this.head + 1) % cap;
    } else {
      this.history[(this.head + this.size) % cap] = ev;
      this.size++;
    }
    this.lastModified = ev.rv;
  }

  /** Events with a revision above `rv`, oldest first. */
  eventsAfter(rv: number): StoreEvent[] {
    const out: StoreEvent[] = [];
    const cap = this.history.length;
    for (let i = 0; i < this.size; i++) {
      const ev = this.history[(this.head + i) % cap];
      if (ev !== undefined && ev.rv > rv) out.push(ev);
    }
    return out;
  }

  /** Drops the whole history (as if it had been compacted up to `rv`). */
  expireHistory(rv: number): void {
    this.history.fill(undefined);
    this.head = 0;
    this.size = 0;
    this.evictedUpTo = Math.max(this.evictedUpTo, rv);
  }
}

/** Orders `ns/name` keys by namespace, then name (cluster-scoped keys have no slash). */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export type ChangeListener = (ev: StoreEvent) => void;

export interface ObjectStoreOptions {
  /** Events kept per resource type for watches that resume from a revision. */
  readonly historyCapacity?: number;
  /** The revision to start from (a restored store continues after it). */
  readonly initialRevision?: number;
}

export class ObjectStore {
  private revision: number;
  private readonly types = new Map<string, TypeStore>();
  private readonly listeners: ChangeListener[] = [];
  private readonly historyCapacity: number;

  constructor(opts: ObjectStoreOptions = {}) {
    this.revision = opts.initialRevision ?? 0;
    this.historyCapacity = opts.historyCapacity ?? 20_000;
  }

  /** The current global revision. */
  get rv(): number {
    return this.revision;
  }

  /** The store of one resource type (created empty on first use). */
  type(storageKey: string): TypeStore {
    let t = this.types.get(storageKey);
    if (t === undefined) {
      t = new TypeStore(storageKey, this.historyCapacity);
      this.types.set(storageKey, t);
    }
    return t;
  }

  allTypes(): IterableIterator<TypeStore> {
    return this.types.values();
  }

  /** Called after every write, after the watchers got the event. */
  onChange(listener: ChangeListener): void {
    this.listeners.push(listener);
  }

  get(storageKey: string, key: string): StoredEntry | undefined {
    return this.types.get(storageKey)?.objects.get(key);
  }

  /** Stores a new object (the caller checked it is absent) and returns the stored entry. */
  create(storageKey: string, key: string, obj: KObject): StoredEntry {
    const t = this.type(storageKey);
    const entry = this.stamp(obj);
    t.objects.set(key, entry);
    t.invalidateKeys();
    this.publish(t, new StoreEvent('ADDED', entry.rv, storageKey, key, entry, undefined));
    return entry;
  }

  /** Replaces an existing object. */
  update(storageKey: string, key: string, obj: KObject): StoredEntry {
    const t = this.type(storageKey);
    const prev = t.objects.get(key);
    const entry = this.stamp(obj);
    t.objects.set(key, entry);
    if (prev === undefined) t.invalidateKeys();
    this.publish(
      t,
      new StoreEvent(prev === undefined ? 'ADDED' : 'MODIFIED', entry.rv, storageKey, key, entry, prev?.obj),
    );
    return entry;
  }

  /**
   * Removes an object; the DELETED event carries its last state (or `last`, when a write that removed
   * the last finalizer completes the deletion) with the revision of the delete.
   */
  delete(storageKey: string, key: string, last?: KObject): StoreEvent | undefined {
    const t = this.types.get(storageKey);
    const prev = t?.objects.get(key);
    if (t === undefined || prev === undefined) return undefined;
    t.objects.delete(key);
    t.invalidateKeys();
    const rv = ++this.revision;
    const final = stampRv(last ?? prev.obj, rv);
    const ev = new StoreEvent(
      'DELETED',
      rv,
      storageKey,
      key,
      { obj: final, json: JSON.stringify(final), rv },
      prev.obj,
    );
    this.publish(t, ev);
    return ev;
  }

  /** Loads an object as it was persisted (no event, no new revision). */
  restore(storageKey: string, key: string, obj: KObject, json: string): void {
    const t = this.type(storageKey);
    const rv = Number(obj.metadata.resourceVersion ?? '0');
    t.objects.set(key, { obj, json, rv });
    t.invalidateKeys();
    t.lastModified = Math.max(t.lastModified, rv);
    t.evictedUpTo = Math.max(t.evictedUpTo, rv);
  }

  /** After a restore: continue revisions after `rv`, and treat earlier history of `lastModified` types as gone. */
  setRevision(rv: number, lastModified: Readonly<Record<string, number>>): void {
    this.revision = Math.max(this.revision, rv);
    for (const [k, v] of Object.entries(lastModified)) {
      const t = this.type(k);
      t.lastModified = Math.max(t.lastModified, v);
      t.evictedUpTo = Math.max(t.evictedUpTo, v);
    }
  }

  private stamp(obj: KObject): StoredEntry {
    const rv = ++this.revision;
    obj.metadata.resourceVersion = String(rv);
    return { obj, json: JSON.stringify(obj), rv };
  }

  private publish(t: TypeStore, ev: StoreEvent): void {
    t.record(ev);
    for (const w of t.watchers) w.deliver(ev);
    for (const l of this.listeners) l(ev);
  }
}
