/**
 * The three stores the controller publishes: internal NetworkPolicies, AddressGroups and
 * AppliedToGroups, each object with its span (the Nodes that need it). The controller owns all writes;
 * everyone else reads, lists and subscribes.
 *
 * Publication is gated: a store is not `ready` until the controller has processed the initial lists
 * of every informer, and before that it emits nothing. After that each change emits one event with
 * the previous and the new span, and for groups the members added and removed (bucketed by Node for
 * AppliedToGroups), which is what a per-Node watch needs (see watch-events.ts).
 *
 * Listeners are called synchronously, in order, once per change. Views (`group`, `members()`) reflect
 * the state right after the event and are only valid during the call: copy what you keep.
 */
import type { GroupMember, NetworkPolicy } from '../../common/apis/controlplane/types.ts';
import { Latch } from '../../common/util/latch.ts';

/** A set of Node names. Spans are immutable once published; a change publishes a new set. */
export type Span = ReadonlySet<string>;
export const EMPTY_SPAN: Span = new Set<string>();

export type StoreEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** A stored internal NetworkPolicy. */
export interface NetworkPolicyView {
  readonly name: string;
  readonly object: NetworkPolicy;
  readonly span: Span;
}

/** A stored AddressGroup: all its members go to every Node of its span. */
export interface AddressGroupView {
  readonly name: string;
  readonly uid: string;
  readonly span: Span;
  readonly memberCount: number;
  members(): Iterable<GroupMember>;
}

/** A stored AppliedToGroup: each Node of its span receives the members running on it. */
export interface AppliedToGroupView {
  readonly name: string;
  readonly uid: string;
  readonly span: Span;
  readonly memberCount: number;
  /** Members on `node` (none if the node is not in the span). */
  membersOn(node: string): Iterable<GroupMember>;
  members(): Iterable<GroupMember>;
}

interface EventBase {
  readonly type: StoreEventType;
  /** Store-wide, increasing by one per event. */
  readonly resourceVersion: number;
  readonly name: string;
  /** Nodes that had the object before the change (empty for ADDED). */
  readonly prevSpan: Span;
  /** Nodes that have it after the change (empty for DELETED). */
  readonly span: Span;
}

export interface NetworkPolicyEvent extends EventBase {
  readonly kind: 'NetworkPolicy';
  /** The new object; for DELETED, the last one. */
  readonly object: NetworkPolicy;
  /** The previous object (undefined for ADDED). Identical to `object` when only the span changed. */
  readonly prevObject: NetworkPolicy | undefined;
}

export interface AddressGroupEvent extends EventBase {
  readonly kind: 'AddressGroup';
  readonly uid: string;
  readonly group: AddressGroupView;
  /** Members added since the previous event (for ADDED: all; for DELETED: none). */
  readonly added: readonly GroupMember[];
  readonly removed: readonly GroupMember[];
}

export interface AppliedToGroupEvent extends EventBase {
  readonly kind: 'AppliedToGroup';
  readonly uid: string;
  readonly group: AppliedToGroupView;
  /** Members added since the previous event, by Node (for ADDED: all; for DELETED: none). */
  readonly added: ReadonlyMap<string, readonly GroupMember[]>;
  readonly removed: ReadonlyMap<string, readonly GroupMember[]>;
}

export type StoreEvent = NetworkPolicyEvent | AddressGroupEvent | AppliedToGroupEvent;

/** A read-only, subscribable store of one kind of object. */
export interface ReadableStore<V, Ev> {
  /** True once the initial computation is published. Until then the store reads as empty. */
  readonly ready: boolean;
  /** Resolves when `ready`; rejects if `signal` aborts first. */
  waitReady(signal?: AbortSignal): Promise<void>;
  readonly size: number;
  /** The resource version of the last event. */
  readonly resourceVersion: number;
  get(name: string): V | undefined;
  list(): Iterable<V>;
  /**
   * Calls `listener` for every change from now on (nothing before `ready`). Returns the function that
   * unsubscribes (idempotent). A listener that throws is logged by the controller and kept.
   */
  subscribe(listener: (event: Ev) => void): () => void;
}

/** The store implementation; only the controller calls the mutating methods. */
export class ObjectStore<
  V extends { readonly name: string },
  Ev extends { readonly resourceVersion: number },
> implements ReadableStore<V, Ev> {
  private readonly objects = new Map<string, V>();
  private readonly listeners = new Set<(event: Ev) => void>();
  private rv = 0;
  private readonly readyLatch = new Latch();
  private readonly onListenerError: (err: unknown) => void;

  constructor(onListenerError: (err: unknown) => void) {
    this.onListenerError = onListenerError;
  }

  get ready(): boolean {
    return this.readyLatch.opened;
  }

  get size(): number {
    return this.readyLatch.opened ? this.objects.size : 0;
  }

  get resourceVersion(): number {
    return this.rv;
  }

  waitReady(signal?: AbortSignal): Promise<void> {
    return this.readyLatch.wait(signal);
  }

  get(name: string): V | undefined {
    return this.readyLatch.opened ? this.objects.get(name) : undefined;
  }

  list(): Iterable<V> {
    return this.readyLatch.opened ? this.objects.values() : [];
  }

  subscribe(listener: (event: Ev) => void): () => void {
    const wrapped = (e: Ev): void => listener(e);
    this.listeners.add(wrapped);
    return () => void this.listeners.delete(wrapped);
  }

  // ---- controller side ----

  /** Whether an event built now would reach anyone (lets the controller skip building it). */
  get publishing(): boolean {
    return this.readyLatch.opened && this.listeners.size > 0;
  }

  /** The stored object, published or not. */
  peek(name: string): V | undefined {
    return this.objects.get(name);
  }

  /** Number of stored objects, published or not. */
  get count(): number {
    return this.objects.size;
  }

  set(value: V): void {
    this.objects.set(value.name, value);
  }

  delete(name: string): void {
    this.objects.delete(name);
  }

  /** The resource version the next event gets. */
  nextResourceVersion(): number {
    return this.rv + 1;
  }

  emit(event: Ev): void {
    this.rv = event.resourceVersion;
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }

  markReady(): void {
    this.readyLatch.open();
  }
}

/** True if two spans hold the same Nodes. */
export function sameSpan(a: Span, b: Span): boolean {
  if (a === b) return true;
  if (a.size !== b.size) return false;
  for (const n of a) if (!b.has(n)) return false;
  return true;
}
