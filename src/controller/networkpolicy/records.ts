/**
 * The controller's mutable records behind the published views: Pod entities, AppliedToGroups,
 * AddressGroups and policies. Group records are sinks of the grouping index: the index tells them
 * which Pods enter and leave their selection, they keep their members and, once the stores are
 * published, the changes not yet emitted (the delta of the next event), and they put themselves on the
 * controller's work queues.
 */
import type { GroupMember, NamedPort, NetworkPolicy, PodReference } from '../../common/apis/controlplane/types.ts';
import type * as k8s from '../../common/k8s/objects.ts';
import type { GroupSelector, GroupSink } from '../grouping/group-index.ts';
import { type SmallSet, smallAdd, smallDelete, smallHas, smallSize, smallValues } from '../grouping/small-set.ts';
import {
  type AddressGroupEvent,
  type AddressGroupView,
  type AppliedToGroupEvent,
  type AppliedToGroupView,
  EMPTY_SPAN,
  type NetworkPolicyView,
  sameSpan,
  type Span,
  type StoreEventType,
} from './store.ts';

/**
 * A Pod as the computation sees it. Immutable: a change produces a new entity; members are shared
 * with the previous entity when they did not change, so groups see no change for them.
 */
export interface PodEntity {
  /** Shared by its members. */
  readonly ref: PodReference;
  /** spec.nodeName ('' while unscheduled). */
  readonly node: string;
  readonly hostNetwork: boolean;
  /** Phase Succeeded or Failed. */
  readonly terminated: boolean;
  readonly ips: readonly string[];
  readonly ports: readonly NamedPort[];
  /** Its AppliedToGroup member; undefined unless scheduled, not host-network and not terminated. */
  readonly atgMember: GroupMember | undefined;
  /** Its AddressGroup member; undefined unless it has an IP, is not host-network and not terminated. */
  readonly agMember: GroupMember | undefined;
}

/** An item of a {@link WorkQueue}: each record belongs to one queue, and knows whether it is in it. */
export interface Queued {
  queued: boolean;
}

/**
 * A FIFO work queue without duplicates, backed by an array: adding an item already queued costs a
 * flag check, much cheaper than a Set when every member change queues its group again.
 */
export class WorkQueue<T extends Queued> {
  private items: T[] = [];
  private head = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(item: T): void {
    if (item.queued) return;
    item.queued = true;
    this.items.push(item);
    this.count++;
  }

  has(item: T): boolean {
    return item.queued;
  }

  /** Unqueues an item (it is skipped where it stands). */
  delete(item: T): void {
    if (!item.queued) return;
    item.queued = false;
    this.count--;
  }

  /** The next queued item, unqueued, or undefined when the queue is empty. */
  take(): T | undefined {
    while (this.head < this.items.length) {
      const item = this.items[this.head++];
      if (item?.queued === true) {
        item.queued = false;
        this.count--;
        return item;
      }
    }
    this.items = [];
    this.head = 0;
    return undefined;
  }
}

/** The work the records put on the controller's queues. */
export interface WorkQueues {
  readonly atgs: WorkQueue<AppliedToGroupRecord>;
  readonly policies: WorkQueue<PolicyRecord>;
  readonly ags: WorkQueue<AddressGroupRecord>;
  /** True once the stores are published: records then keep the delta of their next event. */
  tracking: boolean;
  /** Called when work was queued. */
  wake(): void;
}

const EMPTY_LIST: readonly never[] = Object.freeze([]);

function sameIPs(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => x === b[i]);
}

function samePorts(a: readonly NamedPort[], b: readonly NamedPort[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i];
    return y !== undefined && x.port === y.port && x.name === y.name && x.protocol === y.protocol;
  });
}

/** The named container ports of a Pod (protocol defaults to TCP). */
function namedPorts(pod: k8s.Pod): readonly NamedPort[] {
  let out: NamedPort[] | undefined;
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) {
      if (p.name === undefined || p.name === '') continue;
      (out ??= []).push({
        port: p.containerPort,
        name: p.name,
        protocol: (p.protocol ?? 'TCP') as NamedPort['protocol'],
      });
    }
  }
  return out ?? EMPTY_LIST;
}

function podIPs(pod: k8s.Pod): readonly string[] {
  const s = pod.status;
  if (s === undefined) return EMPTY_LIST;
  if (s.podIPs !== undefined && s.podIPs.length > 0) {
    const first = s.podIPs[0];
    if (s.podIPs.length === 1 && first !== undefined) return first.ip === '' ? EMPTY_LIST : [first.ip];
    return s.podIPs.map((p) => p.ip).filter((ip) => ip !== '');
  }
  return s.podIP === undefined || s.podIP === '' ? EMPTY_LIST : [s.podIP];
}

/**
 * The entity for `pod`. Returns `prev` itself when nothing the computation reads changed, and reuses
 * `prev`'s members when they did not change.
 */
export function podEntity(pod: k8s.Pod, prev: PodEntity | undefined): PodEntity {
  const namespace = pod.metadata?.namespace ?? '';
  const name = pod.metadata?.name ?? '';
  const node = pod.spec?.nodeName ?? '';
  const hostNetwork = pod.spec?.hostNetwork === true;
  const phase = pod.status?.phase;
  const terminated = phase === 'Succeeded' || phase === 'Failed';
  let ips = podIPs(pod);
  let ports = namedPorts(pod);
  let ref: PodReference;
  let atgMember: GroupMember | undefined;
  let agMember: GroupMember | undefined;
  const atgEligible = node !== '' && !hostNetwork && !terminated;
  const agEligible = ips.length > 0 && !hostNetwork && !terminated;
  if (prev !== undefined) {
    const sameP = samePorts(prev.ports, ports);
    const sameI = sameIPs(prev.ips, ips);
    if (sameP) ports = prev.ports;
    if (sameI) ips = prev.ips;
    if (sameP && sameI && prev.node === node && prev.hostNetwork === hostNetwork && prev.terminated === terminated) {
      return prev;
    }
    ref = prev.ref;
    if (atgEligible) atgMember = sameP && prev.node === node ? prev.atgMember : undefined;
    if (agEligible) agMember = sameP && sameI ? prev.agMember : undefined;
  } else {
    ref = { name, namespace };
  }
  if (atgEligible && atgMember === undefined) atgMember = ports.length > 0 ? { pod: ref, ports } : { pod: ref };
  if (agEligible && agMember === undefined) agMember = ports.length > 0 ? { pod: ref, ips, ports } : { pod: ref, ips };
  return { ref, node, hostNetwork, terminated, ips, ports, atgMember, agMember };
}

/** Members added and removed since the last event of a group. */
class Delta<T> {
  added: Map<GroupMember, T> | undefined;
  removed: Map<GroupMember, T> | undefined;

  add(m: GroupMember, v: T): void {
    if (this.removed?.delete(m) === true) return;
    (this.added ??= new Map()).set(m, v);
  }

  remove(m: GroupMember, v: T): void {
    if (this.added?.delete(m) === true) return;
    (this.removed ??= new Map()).set(m, v);
  }

  get empty(): boolean {
    return (
      (this.added === undefined || this.added.size === 0) && (this.removed === undefined || this.removed.size === 0)
    );
  }
}

function byNode(m: Map<GroupMember, string> | undefined): ReadonlyMap<string, readonly GroupMember[]> {
  const out = new Map<string, GroupMember[]>();
  if (m === undefined) return out;
  for (const [member, node] of m) {
    const list = out.get(node);
    if (list === undefined) out.set(node, [member]);
    else list.push(member);
  }
  return out;
}

/** State shared by the group records of one controller. */
export interface GroupContext extends WorkQueues {
  /** The span holding only `node`; one shared set per Node. */
  singleNodeSpan(node: string): Span;
}

/** What both kinds of group records share: the policies using them and the delta of their next event. */
export abstract class GroupRecordBase<T, Ev> implements GroupSink<PodEntity> {
  readonly name: string;
  /** The index's own copy of the selector. */
  selector: GroupSelector;
  /** Published span. */
  span: Span = EMPTY_SPAN;
  stored = false;
  deleted = false;
  queued = false;
  protected spanStale = true;
  protected delta: Delta<T> | undefined;
  protected readonly q: GroupContext;
  private users: SmallSet<PolicyRecord>;

  constructor(name: string, selector: GroupSelector, q: GroupContext) {
    this.name = name;
    this.selector = selector;
    this.q = q;
  }

  get uid(): string {
    return this.name;
  }

  /** Records that `p` uses this group (desired state). */
  addPolicy(p: PolicyRecord): void {
    this.users = smallAdd(this.users, p);
  }

  /** Records that `p` no longer uses this group; returns how many policies still do. */
  removePolicy(p: PolicyRecord): number {
    this.users = smallDelete(this.users, p);
    return smallSize(this.users);
  }

  /** Number of policies using this group; 0 means it is to be deleted. */
  get policyCount(): number {
    return smallSize(this.users);
  }

  policies(): Iterable<PolicyRecord> {
    return smallValues(this.users);
  }

  protected track(): Delta<T> | undefined {
    if (!this.q.tracking) return undefined;
    return (this.delta ??= new Delta());
  }

  discardDelta(): void {
    this.delta = undefined;
  }

  abstract entityAdded(e: PodEntity): void;
  abstract entityRemoved(e: PodEntity): void;
  abstract entityUpdated(prev: PodEntity, cur: PodEntity): void;

  /** Recomputes the span if it may have changed; returns the previous span if it did. */
  abstract refreshSpan(): Span | undefined;

  /**
   * The store event for this change, taking (and forgetting) the delta. ADDED carries every member,
   * DELETED none; MODIFIED the delta, or undefined when neither members nor span changed.
   */
  abstract event(type: StoreEventType, resourceVersion: number, prevSpan: Span | undefined): Ev | undefined;
}

/** An AppliedToGroup: the Pods a selector selects, bucketed by Node. */
export class AppliedToGroupRecord extends GroupRecordBase<string, AppliedToGroupEvent> implements AppliedToGroupView {
  private count = 0;
  private readonly byNode = new Map<string, SmallSet<GroupMember>>();

  get memberCount(): number {
    return this.count;
  }

  membersOn(node: string): Iterable<GroupMember> {
    return smallValues(this.byNode.get(node));
  }

  *members(): Generator<GroupMember> {
    for (const s of this.byNode.values()) yield* smallValues(s);
  }

  /** Members now, by Node. */
  membersByNode(): ReadonlyMap<string, readonly GroupMember[]> {
    const out = new Map<string, GroupMember[]>();
    for (const [node, s] of this.byNode) out.set(node, [...smallValues(s)]);
    return out;
  }

  entityAdded(e: PodEntity): void {
    if (e.atgMember !== undefined) this.add(e.atgMember, e.node);
  }

  entityRemoved(e: PodEntity): void {
    if (e.atgMember !== undefined) this.remove(e.atgMember, e.node);
  }

  entityUpdated(prev: PodEntity, cur: PodEntity): void {
    if (prev.atgMember === cur.atgMember && prev.node === cur.node) return;
    if (prev.atgMember !== undefined) this.remove(prev.atgMember, prev.node);
    if (cur.atgMember !== undefined) this.add(cur.atgMember, cur.node);
  }

  private add(m: GroupMember, node: string): void {
    const s = this.byNode.get(node);
    if (smallHas(s, m)) return;
    if (s === undefined) this.spanStale = true;
    this.byNode.set(node, smallAdd(s, m));
    this.count++;
    this.track()?.add(m, node);
    this.queue();
  }

  private remove(m: GroupMember, node: string): void {
    const s = this.byNode.get(node);
    if (!smallHas(s, m)) return;
    const rest = smallDelete(s, m);
    if (rest === undefined) {
      this.byNode.delete(node);
      this.spanStale = true;
    } else {
      this.byNode.set(node, rest);
    }
    this.count--;
    this.track()?.remove(m, node);
    this.queue();
  }

  private queue(): void {
    this.q.atgs.add(this);
    this.q.wake();
  }

  /** Recomputes the span if members moved between Nodes; returns the previous span if it changed. */
  refreshSpan(): Span | undefined {
    if (!this.spanStale) return undefined;
    this.spanStale = false;
    let same = this.byNode.size === this.span.size;
    if (same) for (const n of this.byNode.keys()) if (!this.span.has(n)) same = false;
    if (same) return undefined;
    const prev = this.span;
    if (this.byNode.size === 0) this.span = EMPTY_SPAN;
    else if (this.byNode.size === 1) this.span = this.q.singleNodeSpan(this.byNode.keys().next().value ?? '');
    else this.span = new Set(this.byNode.keys());
    return prev;
  }

  event(type: StoreEventType, resourceVersion: number, prevSpan: Span | undefined): AppliedToGroupEvent | undefined {
    const d = this.delta;
    this.delta = undefined;
    if (type === 'MODIFIED' && (d === undefined || d.empty) && prevSpan === undefined) return undefined;
    const none = new Map<string, readonly GroupMember[]>();
    return {
      kind: 'AppliedToGroup',
      type,
      resourceVersion,
      name: this.name,
      uid: this.uid,
      group: this,
      added: type === 'ADDED' ? this.membersByNode() : type === 'DELETED' ? none : byNode(d?.added),
      removed: type === 'MODIFIED' ? byNode(d?.removed) : none,
      prevSpan: type === 'ADDED' ? EMPTY_SPAN : (prevSpan ?? this.span),
      span: type === 'DELETED' ? EMPTY_SPAN : this.span,
    };
  }
}

/** An AddressGroup: the Pods a selector selects, with their IPs, for every Node of its span. */
export class AddressGroupRecord extends GroupRecordBase<true, AddressGroupEvent> implements AddressGroupView {
  /**
   * The spans of the published policies that use this group, with how many policies have each span.
   * Policies with one AppliedToGroup share its span object, so this stays small even when thousands
   * of policies use the group, and the group's span is the union of a few sets. The common case of a
   * single span is kept without a Map.
   */
  private oneSpan: Span | undefined;
  private oneSpanCount = 0;
  private moreSpans: Map<Span, number> | undefined;
  private set: SmallSet<GroupMember>;

  get memberCount(): number {
    return smallSize(this.set);
  }

  members(): Iterable<GroupMember> {
    return smallValues(this.set);
  }

  entityAdded(e: PodEntity): void {
    if (e.agMember !== undefined) this.add(e.agMember);
  }

  entityRemoved(e: PodEntity): void {
    if (e.agMember !== undefined) this.remove(e.agMember);
  }

  entityUpdated(prev: PodEntity, cur: PodEntity): void {
    if (prev.agMember === cur.agMember) return;
    if (prev.agMember !== undefined) this.remove(prev.agMember);
    if (cur.agMember !== undefined) this.add(cur.agMember);
  }

  private add(m: GroupMember): void {
    if (smallHas(this.set, m)) return;
    this.set = smallAdd(this.set, m);
    this.track()?.add(m, true);
    this.queue();
  }

  private remove(m: GroupMember): void {
    if (!smallHas(this.set, m)) return;
    this.set = smallDelete(this.set, m);
    this.track()?.remove(m, true);
    this.queue();
  }

  private queue(): void {
    this.q.ags.add(this);
    this.q.wake();
  }

  addPolicySpan(span: Span): void {
    if (this.moreSpans !== undefined) {
      this.moreSpans.set(span, (this.moreSpans.get(span) ?? 0) + 1);
    } else if (this.oneSpan === undefined || this.oneSpan === span) {
      this.oneSpan = span;
      this.oneSpanCount++;
    } else {
      this.moreSpans = new Map([
        [this.oneSpan, this.oneSpanCount],
        [span, 1],
      ]);
      this.oneSpan = undefined;
      this.oneSpanCount = 0;
    }
    this.spanStale = true;
    this.queue();
  }

  removePolicySpan(span: Span): void {
    if (this.moreSpans !== undefined) {
      const n = this.moreSpans.get(span);
      if (n === undefined) return;
      if (n > 1) this.moreSpans.set(span, n - 1);
      else this.moreSpans.delete(span);
    } else {
      if (this.oneSpan !== span) return;
      if (--this.oneSpanCount === 0) this.oneSpan = undefined;
    }
    this.spanStale = true;
    this.queue();
  }

  /** Recomputes the span from the policies' spans; returns the previous span if it changed. */
  refreshSpan(): Span | undefined {
    if (!this.spanStale) return undefined;
    this.spanStale = false;
    let next: Span;
    if (this.moreSpans === undefined || this.moreSpans.size === 0) {
      next = this.oneSpan ?? EMPTY_SPAN;
    } else if (this.moreSpans.size === 1) {
      next = this.moreSpans.keys().next().value ?? EMPTY_SPAN;
    } else {
      const u = new Set<string>();
      for (const s of this.moreSpans.keys()) for (const n of s) u.add(n);
      next = u;
    }
    const prev = this.span;
    this.span = next;
    return sameSpan(prev, next) ? undefined : prev;
  }

  event(type: StoreEventType, resourceVersion: number, prevSpan: Span | undefined): AddressGroupEvent | undefined {
    const d = this.delta;
    this.delta = undefined;
    if (type === 'MODIFIED' && (d === undefined || d.empty) && prevSpan === undefined) return undefined;
    return {
      kind: 'AddressGroup',
      type,
      resourceVersion,
      name: this.name,
      uid: this.uid,
      group: this,
      added:
        type === 'ADDED'
          ? [...this.members()]
          : type === 'MODIFIED' && d?.added !== undefined
            ? [...d.added.keys()]
            : EMPTY_LIST,
      removed: type === 'MODIFIED' && d?.removed !== undefined ? [...d.removed.keys()] : EMPTY_LIST,
      prevSpan: type === 'ADDED' ? EMPTY_SPAN : (prevSpan ?? this.span),
      span: type === 'DELETED' ? EMPTY_SPAN : this.span,
    };
  }
}

/** An internal NetworkPolicy: its source, its desired and published versions and its groups. */
export class PolicyRecord implements NetworkPolicyView {
  /** `namespace/name` of the source. */
  readonly key: string;
  readonly uid: string;
  readonly namespace: string;
  /** The source object, kept to re-convert when the Namespace's logging annotation changes. */
  source: k8s.NetworkPolicy;
  /** The latest conversion (what should be published). */
  desired: NetworkPolicy;
  /** The published version (valid once `stored`). */
  object: NetworkPolicy;
  /** Published span. */
  span: Span = EMPTY_SPAN;
  /** Desired groups. */
  atgs: readonly AppliedToGroupRecord[] = EMPTY_LIST;
  ags: readonly AddressGroupRecord[] = EMPTY_LIST;
  /** The AddressGroups whose span accounting holds this policy's published span. */
  publishedAgs: readonly AddressGroupRecord[] = EMPTY_LIST;
  stored = false;
  /** The source is gone: unpublish. */
  deleted = false;
  /** The source is gone but its Namespace is terminating with Pods left: keep enforcing. */
  held = false;
  queued = false;

  constructor(key: string, uid: string, namespace: string, source: k8s.NetworkPolicy, desired: NetworkPolicy) {
    this.key = key;
    this.uid = uid;
    this.namespace = namespace;
    this.source = source;
    this.desired = desired;
    this.object = desired;
  }

  get name(): string {
    return this.uid;
  }
}
