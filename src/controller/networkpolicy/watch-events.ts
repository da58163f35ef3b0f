/**
 * What one watcher receives, derived from store events: the per-Node filtering of Antrea's
 * controlplane watch (an object is sent to a Node iff the Node is in its span):
 *
 * | before | after | NetworkPolicy     | AddressGroup              | AppliedToGroup                     |
 * |--------|-------|-------------------|---------------------------|------------------------------------|
 * | no     | yes   | ADDED (full)      | ADDED (all members)       | ADDED (members on that Node)       |
 * | yes    | yes   | MODIFIED (full)   | MODIFIED (patch)          | MODIFIED (patch for that Node)     |
 * | yes    | no    | DELETED (meta)    | DELETED (name, uid)       | DELETED (name, uid)                |
 *
 * A MODIFIED that would carry nothing new for the watcher (only the span changed, or no member of its
 * Node changed) is not sent. A watcher without a Node (`node` undefined) receives everything, with all
 * members. Call these inside the store listener: they read the group views, valid only then.
 */
import type {
  AddressGroup,
  AddressGroupPatch,
  AppliedToGroup,
  AppliedToGroupPatch,
  GroupMember,
  NetworkPolicy,
} from '../../common/apis/controlplane/types.ts';
import type {
  AddressGroupEvent,
  AddressGroupView,
  AppliedToGroupEvent,
  AppliedToGroupView,
  NetworkPolicyEvent,
  NetworkPolicyView,
  ReadableStore,
  StoreEvent,
} from './store.ts';

export interface WatchEvent<T> {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: T;
}

function transition(ev: StoreEvent, node: string | undefined): { was: boolean; is: boolean } {
  if (node === undefined) return { was: ev.type !== 'ADDED', is: ev.type !== 'DELETED' };
  return { was: ev.prevSpan.has(node), is: ev.span.has(node) };
}

/** The Nodes an event concerns: those that had the object before or have it after. */
export function affectedNodes(ev: StoreEvent): ReadonlySet<string> {
  if (ev.prevSpan === ev.span || ev.prevSpan.size === 0) return ev.span;
  if (ev.span.size === 0) return ev.prevSpan;
  const out = new Set(ev.prevSpan);
  for (const n of ev.span) out.add(n);
  return out;
}

/** The metadata-only NetworkPolicy sent on DELETED. */
export function deletedNetworkPolicy(p: NetworkPolicy): NetworkPolicy {
  return {
    metadata: p.metadata,
    rules: [],
    appliedToGroups: [],
    ...(p.sourceRef === undefined ? {} : { sourceRef: p.sourceRef }),
  };
}

export function networkPolicyWatchEvent(
  ev: NetworkPolicyEvent,
  node: string | undefined,
): WatchEvent<NetworkPolicy> | undefined {
  const { was, is } = transition(ev, node);
  if (!was && !is) return undefined;
  if (!was) return { type: 'ADDED', object: ev.object };
  if (!is) return { type: 'DELETED', object: deletedNetworkPolicy(ev.object) };
  if (ev.prevObject === ev.object) return undefined;
  return { type: 'MODIFIED', object: ev.object };
}

const fullAddressGroups = new WeakMap<AddressGroupEvent, AddressGroup>();

export function addressGroupObject(g: AddressGroupView): AddressGroup {
  return { metadata: { name: g.name, uid: g.uid }, groupMembers: [...g.members()] };
}

export function addressGroupWatchEvent(
  ev: AddressGroupEvent,
  node: string | undefined,
): WatchEvent<AddressGroup | AddressGroupPatch> | undefined {
  const { was, is } = transition(ev, node);
  if (!was && !is) return undefined;
  const metadata = { name: ev.name, uid: ev.uid };
  if (!was) {
    // Built once per event, shared by all watchers that start receiving the group.
    let full = fullAddressGroups.get(ev);
    if (full === undefined) fullAddressGroups.set(ev, (full = addressGroupObject(ev.group)));
    return { type: 'ADDED', object: full };
  }
  if (!is) return { type: 'DELETED', object: { metadata, groupMembers: [] } };
  if (ev.added.length === 0 && ev.removed.length === 0) return undefined;
  return { type: 'MODIFIED', object: { metadata, addedGroupMembers: ev.added, removedGroupMembers: ev.removed } };
}

export function appliedToGroupObject(g: AppliedToGroupView, node: string | undefined): AppliedToGroup {
  const members = node === undefined ? g.members() : g.membersOn(node);
  return { metadata: { name: g.name, uid: g.uid }, groupMembers: [...members] };
}

function flatten(m: ReadonlyMap<string, readonly GroupMember[]>): GroupMember[] {
  const out: GroupMember[] = [];
  for (const list of m.values()) out.push(...list);
  return out;
}

export function appliedToGroupWatchEvent(
  ev: AppliedToGroupEvent,
  node: string | undefined,
): WatchEvent<AppliedToGroup | AppliedToGroupPatch> | undefined {
  const { was, is } = transition(ev, node);
  if (!was && !is) return undefined;
  const metadata = { name: ev.name, uid: ev.uid };
  if (!was) return { type: 'ADDED', object: appliedToGroupObject(ev.group, node) };
  if (!is) return { type: 'DELETED', object: { metadata, groupMembers: [] } };
  const added = node === undefined ? flatten(ev.added) : (ev.added.get(node) ?? []);
  const removed = node === undefined ? flatten(ev.removed) : (ev.removed.get(node) ?? []);
  if (added.length === 0 && removed.length === 0) return undefined;
  return { type: 'MODIFIED', object: { metadata, addedGroupMembers: added, removedGroupMembers: removed } };
}

/** The NetworkPolicies a watcher of `node` starts with (all of them without a Node). */
export function networkPoliciesFor(
  store: ReadableStore<NetworkPolicyView, unknown>,
  node: string | undefined,
): NetworkPolicy[] {
  const out: NetworkPolicy[] = [];
  for (const v of store.list()) if (node === undefined || v.span.has(node)) out.push(v.object);
  return out;
}

export function addressGroupsFor(
  store: ReadableStore<AddressGroupView, unknown>,
  node: string | undefined,
): AddressGroup[] {
  const out: AddressGroup[] = [];
  for (const g of store.list()) if (node === undefined || g.span.has(node)) out.push(addressGroupObject(g));
  return out;
}

export function appliedToGroupsFor(
  store: ReadableStore<AppliedToGroupView, unknown>,
  node: string | undefined,
): AppliedToGroup[] {
  const out: AppliedToGroup[] = [];
  for (const g of store.list()) if (node === undefined || g.span.has(node)) out.push(appliedToGroupObject(g, node));
  return out;
}
