/**
 * The NetworkPolicy controller: turns Pods, Namespaces and Kubernetes NetworkPolicies into internal
 * NetworkPolicies, AddressGroups and AppliedToGroups with their spans, incrementally.
 *
 * Event handlers (`handlePod`, `handleNamespace`, `handleNetworkPolicy`, `handleNode`) run
 * synchronously: they update the grouping index, whose sinks (the group records) record which
 * members changed, and queue the touched records. `flush()` then processes the queues in dependency
 * order until nothing is left:
 *
 *   AppliedToGroups (members → span) → policies (span = union of their AppliedToGroups' spans)
 *   → AddressGroups (span = union of the spans of the policies using them)
 *
 * Each record is processed at most once per round however many events touched it, and each emits at
 * most one event per round. `run()` wires informers in, processes nothing until every informer has
 * listed, then computes everything, publishes the stores, and from then on processes changes in
 * slices that yield to the event loop.
 */
import type { InformerEventType } from '../../common/k8s/informer.ts';
import type * as k8s from '../../common/k8s/objects.ts';
import { objectKey } from '../../common/k8s/objects.ts';
import { abortReason } from '../../common/util/clock.ts';
import { errorMessage } from '../../common/util/errors.ts';
import { type Logger, nullLogger } from '../../common/util/log.ts';
import { uuidV5 } from '../../common/util/uuid.ts';
import { type GroupSelector, GroupingIndex } from '../grouping/group-index.ts';
import { ENABLE_LOGGING_ANNOTATION, convertK8sNetworkPolicy } from './k8s-networkpolicy.ts';
import {
  AddressGroupRecord,
  AppliedToGroupRecord,
  type GroupContext,
  type GroupRecordBase,
  type PodEntity,
  PolicyRecord,
  type Queued,
  WorkQueue,
  podEntity,
} from './records.ts';
import {
  type AddressGroupEvent,
  type AddressGroupView,
  type AppliedToGroupEvent,
  type AppliedToGroupView,
  EMPTY_SPAN,
  type NetworkPolicyEvent,
  type NetworkPolicyView,
  ObjectStore,
  type ReadableStore,
  type Span,
  type StoreEvent,
} from './store.ts';

/** Antrea's namespace for the UUIDv5 names of selector-based groups. */
export const GROUP_UUID_NAMESPACE = 'e4f24a48-ca1f-4d5b-819c-ea7632b22115';

/** The name of a group from its normalized selector (UUIDv5, as Antrea names them). */
export const groupName: (normalizedName: string) => string = uuidV5(GROUP_UUID_NAMESPACE);

/** What the controller needs from an informer (see common/k8s/informer.ts). */
export interface ControllerSource {
  run(signal: AbortSignal): Promise<void>;
  /** Resolves once the initial list has been delivered to the handlers. */
  waitSynced(signal: AbortSignal): Promise<void>;
}

/** Kinds of work the controller processes, for metrics. */
export type WorkKind = 'appliedToGroup' | 'networkPolicy' | 'addressGroup';

/** Receives the time each processed work item took (Antrea's `*_sync_duration_milliseconds`). */
export interface ControllerMetricsSink {
  processed(kind: WorkKind, ms: number): void;
}

export interface NetworkPolicyControllerOptions {
  readonly logger?: Logger;
  /** Longest slice of work, in ms, before `run()` yields to the event loop (default 20). */
  readonly sliceMs?: number;
  readonly metrics?: ControllerMetricsSink;
}

/** The groups a Pod belongs to, and the policies using them (see {@link NetworkPolicyController.groupsOfPod}). */
export interface PodGroups {
  /** AppliedToGroups the Pod is a member of. */
  readonly appliedToGroups: readonly AppliedToGroupView[];
  /** AddressGroups the Pod is a member of. */
  readonly addressGroups: readonly AddressGroupView[];
  /** Published policies applied to the Pod. */
  readonly appliedPolicies: readonly NetworkPolicyView[];
  /** Published policies with a rule whose peers include the Pod. */
  readonly peerPolicies: readonly NetworkPolicyView[];
}

export interface NodeInfo {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly addresses: readonly string[];
}

export interface ControllerStats {
  readonly pods: number;
  readonly namespaces: number;
  readonly labelSets: number;
  readonly selectors: number;
  readonly networkPolicies: number;
  readonly addressGroups: number;
  readonly appliedToGroups: number;
  readonly heldPolicies: number;
  readonly queued: number;
}

const TRUE_VALUES = new Set(['1', 't', 'T', 'true', 'TRUE', 'True']);

export class NetworkPolicyController {
  readonly networkPolicies: ReadableStore<NetworkPolicyView, NetworkPolicyEvent>;
  readonly addressGroups: ReadableStore<AddressGroupView, AddressGroupEvent>;
  readonly appliedToGroups: ReadableStore<AppliedToGroupView, AppliedToGroupEvent>;

  private readonly log: Logger;
  private readonly sliceMs: number;
  private readonly index = new GroupingIndex<PodEntity>();
  private readonly npStore: ObjectStore<PolicyRecord, NetworkPolicyEvent>;
  private readonly agStore: ObjectStore<AddressGroupRecord, AddressGroupEvent>;
  private readonly atgStore: ObjectStore<AppliedToGroupRecord, AppliedToGroupEvent>;
  private readonly q: GroupContext;
  private readonly singleSpans = new Map<string, Span>();
  private readonly policies = new Map<string, PolicyRecord>();
  private readonly held = new Map<string, Set<PolicyRecord>>();
  private readonly terminating = new Set<string>();
  private readonly loggingNamespaces = new Set<string>();
  private readonly nodes = new Map<string, NodeInfo>();
  /** Groups no policy uses any more; deleted after the policies that dropped them are published. */
  private readonly doomedAtgs = new Set<AppliedToGroupRecord>();
  private readonly doomedAgs = new Set<AddressGroupRecord>();
  private wakeUp: (() => void) | undefined;
  private readonly metrics: ControllerMetricsSink | undefined;
  private readonly idleListeners = new Set<() => void>();

  constructor(opts: NetworkPolicyControllerOptions = {}) {
    this.log = (opts.logger ?? nullLogger).child({ component: 'networkpolicy-controller' });
    this.sliceMs = opts.sliceMs ?? 20;
    this.metrics = opts.metrics;
    const onListenerError = (err: unknown): void => this.log.error('store listener failed', { err: errorMessage(err) });
    this.npStore = new ObjectStore(onListenerError);
    this.agStore = new ObjectStore(onListenerError);
    this.atgStore = new ObjectStore(onListenerError);
    this.networkPolicies = this.npStore;
    this.addressGroups = this.agStore;
    this.appliedToGroups = this.atgStore;
    this.q = {
      atgs: new WorkQueue(),
      policies: new WorkQueue(),
      ags: new WorkQueue(),
      tracking: false,
      singleNodeSpan: (node: string): Span => {
        let span = this.singleSpans.get(node);
        if (span === undefined) this.singleSpans.set(node, (span = new Set([node])));
        return span;
      },
      wake: () => {
        const w = this.wakeUp;
        if (w !== undefined) {
          this.wakeUp = undefined;
          w();
        }
      },
    };
  }

  // ---------------------------------------------------------------- event handlers

  /** A Pod was added, updated or deleted. Touches only the groups whose selection it enters, changes or leaves. */
  handlePod(type: InformerEventType, pod: k8s.Pod): void {
    const namespace = pod.metadata?.namespace ?? '';
    const key = objectKey(pod);
    if (type === 'DELETED') {
      this.index.deleteEntity(key);
      this.releaseHeldIfEmpty(namespace);
      return;
    }
    this.index.upsertEntity(key, namespace, pod.metadata?.labels, (prev) => podEntity(pod, prev));
  }

  /**
   * A Namespace was added, updated or deleted. Label changes re-match only the cluster-scoped
   * selectors for this namespace; a change of the logging annotation re-converts its policies.
   */
  handleNamespace(type: InformerEventType, ns: k8s.Namespace): void {
    const name = ns.metadata?.name ?? '';
    let logging = false;
    if (type === 'DELETED') {
      // A terminating namespace stays marked while Pods of it remain (their deletions may still come).
      this.index.deleteNamespace(name);
    } else {
      this.index.setNamespace(name, ns.metadata?.labels);
      if (ns.metadata?.deletionTimestamp !== undefined || ns.status?.phase === 'Terminating')
        this.terminating.add(name);
      else this.terminating.delete(name);
      const annotation = ns.metadata?.annotations?.[ENABLE_LOGGING_ANNOTATION];
      if (annotation !== undefined) {
        logging = TRUE_VALUES.has(annotation);
        if (!logging && !['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(annotation)) {
          this.log.warn('invalid logging annotation ignored', { namespace: name, value: annotation });
        }
      }
    }
    if (logging !== this.loggingNamespaces.has(name)) {
      if (logging) this.loggingNamespaces.add(name);
      else this.loggingNamespaces.delete(name);
      // Rare: scanning the policies here saves keeping a per-namespace index for it.
      for (const rec of [...this.policies.values()]) {
        if (rec.namespace === name && !rec.held) this.applyNetworkPolicy(rec.source);
      }
    }
    this.releaseHeldIfEmpty(name);
  }

  /**
   * A Kubernetes NetworkPolicy was added, updated or deleted. The policy is converted at once (its
   * groups are created or released now); spans and events follow in the next flush.
   *
   * A policy deleted while its Namespace is terminating and still has Pods is held (kept enforced)
   * until those Pods are gone, so namespace deletion never opens a window in which the remaining Pods
   * lose their isolation (CVE-2024-7598).
   */
  handleNetworkPolicy(type: InformerEventType, np: k8s.NetworkPolicy): void {
    if (type !== 'DELETED') {
      this.applyNetworkPolicy(np);
      return;
    }
    const rec = this.policies.get(objectKey(np));
    if (rec === undefined || (np.metadata?.uid !== undefined && np.metadata.uid !== rec.uid)) return;
    const ns = rec.namespace;
    if (this.terminating.has(ns) && this.index.namespaceEntityCount(ns) > 0) {
      if (!rec.held) {
        rec.held = true;
        let set = this.held.get(ns);
        if (set === undefined) this.held.set(ns, (set = new Set()));
        set.add(rec);
        this.log.info('holding a deleted NetworkPolicy until its terminating namespace has no Pods', {
          policy: rec.key,
          pods: this.index.namespaceEntityCount(ns),
        });
      }
      return;
    }
    this.retire(rec);
  }

  /** A Node was added, updated or deleted. K8s NetworkPolicies do not depend on Nodes; this only records them. */
  handleNode(type: InformerEventType, node: k8s.Node): void {
    const name = node.metadata?.name ?? '';
    if (type === 'DELETED') {
      this.nodes.delete(name);
      // Spans that still hold the Node keep their set; the next one gets a fresh set.
      this.singleSpans.delete(name);
      return;
    }
    this.nodes.set(name, {
      name,
      labels: node.metadata?.labels ?? {},
      addresses: (node.status?.addresses ?? []).map((a) => a.address),
    });
  }

  /** Nodes seen through {@link handleNode}. */
  knownNodes(): ReadonlyMap<string, NodeInfo> {
    return this.nodes;
  }

  /**
   * The published groups the Pod `namespace/name` is a member of and the published policies that
   * apply to it or name it as a peer (for antctl's endpoint query). Empty for an unknown Pod or
   * before publication.
   */
  groupsOfPod(namespace: string, name: string): PodGroups {
    const appliedToGroups: AppliedToGroupView[] = [];
    const addressGroups: AddressGroupView[] = [];
    const applied = new Set<NetworkPolicyView>();
    const peer = new Set<NetworkPolicyView>();
    const key = `${namespace}/${name}`;
    const entity = this.index.getEntity(key);
    if (entity !== undefined && this.q.tracking) {
      for (const sink of this.index.sinksOfEntity(key)) {
        if (sink instanceof AppliedToGroupRecord && entity.atgMember !== undefined && sink.stored) {
          appliedToGroups.push(sink);
          for (const p of sink.policies()) if (p.stored) applied.add(p);
        } else if (sink instanceof AddressGroupRecord && entity.agMember !== undefined && sink.stored) {
          addressGroups.push(sink);
          for (const p of sink.policies()) if (p.stored) peer.add(p);
        }
      }
    }
    return { appliedToGroups, addressGroups, appliedPolicies: [...applied], peerPolicies: [...peer] };
  }

  /**
   * Calls `listener` each time processing becomes complete (every queued change published): the
   * moments at which the stores and the group views agree with the events emitted so far. Returns
   * the function that unsubscribes.
   */
  onIdle(listener: () => void): () => void {
    this.idleListeners.add(listener);
    return () => void this.idleListeners.delete(listener);
  }

  /** Queue lengths per kind of work (Antrea's `antrea_controller_length_*_queue`). */
  queueLengths(): Readonly<Record<WorkKind, number>> {
    return {
      appliedToGroup: this.q.atgs.size,
      networkPolicy: this.q.policies.size,
      addressGroup: this.q.ags.size,
    };
  }

  private applyNetworkPolicy(np: k8s.NetworkPolicy): void {
    const key = objectKey(np);
    const uid = np.metadata?.uid ?? '';
    let rec = this.policies.get(key);
    if (rec !== undefined && rec.uid !== uid) {
      this.retire(rec);
      rec = undefined;
    }
    const namespace = np.metadata?.namespace ?? '';
    // The groups this conversion names, looked up once each (a policy names few, often one twice).
    const found: FoundGroups[] = [];
    const lookup = (sel: GroupSelector): FoundGroups => {
      const n = sel.normalizedName;
      for (const f of found) if (f.normalizedName === n) return f;
      const f: FoundGroups = { normalizedName: n, name: '', atg: undefined, ag: undefined };
      for (const sink of this.index.sinksOf(n)) {
        if (sink instanceof AppliedToGroupRecord) f.atg = sink;
        else if (sink instanceof AddressGroupRecord) f.ag = sink;
      }
      f.name = f.atg?.name ?? f.ag?.name ?? groupName(n);
      found.push(f);
      return f;
    };
    const nameOf = (sel: GroupSelector): string => lookup(sel).name;
    let conv;
    try {
      conv = convertK8sNetworkPolicy(np, { nameOf, enableLogging: this.loggingNamespaces.has(namespace) });
    } catch (err) {
      this.log.error(
        rec === undefined
          ? 'invalid NetworkPolicy ignored'
          : 'invalid NetworkPolicy update ignored, keeping the previous version',
        { policy: key, err: errorMessage(err) },
      );
      return;
    }
    for (const p of conv.problems)
      this.log.warn('invalid part of a NetworkPolicy dropped', { policy: key, err: p.message });
    if (rec === undefined) {
      rec = new PolicyRecord(key, uid, namespace, np, conv.policy);
      this.policies.set(key, rec);
    } else {
      rec.source = np;
      if (rec.held) this.unhold(rec);
      if (deepEqual(rec.desired, conv.policy)) return;
    }
    const r = rec;
    const atgs = conv.appliedTo.map((sel) => {
      const f = lookup(sel);
      f.atg ??= this.newGroup(AppliedToGroupRecord, this.q.atgs, sel, f.name);
      // A group no policy used was waiting for deletion: it is needed again, process it.
      if (f.atg.policyCount === 0) this.q.atgs.add(f.atg);
      f.atg.addPolicy(r);
      return f.atg;
    });
    const ags = conv.addressGroups.map((sel) => {
      const f = lookup(sel);
      f.ag ??= this.newGroup(AddressGroupRecord, this.q.ags, sel, f.name);
      if (f.ag.policyCount === 0) this.q.ags.add(f.ag);
      f.ag.addPolicy(r);
      return f.ag;
    });
    for (const g of rec.atgs) if (!atgs.includes(g)) this.releaseAtg(g, rec);
    for (const g of rec.ags) if (!ags.includes(g)) this.releaseAg(g, rec);
    rec.atgs = atgs;
    rec.ags = ags;
    rec.desired = conv.policy;
    this.q.policies.add(rec);
    this.q.wake();
  }

  /** Unpublishes a policy whose source is gone and releases its groups. */
  private retire(rec: PolicyRecord): void {
    if (this.policies.get(rec.key) === rec) this.policies.delete(rec.key);
    if (rec.held) this.unhold(rec);
    for (const g of rec.atgs) this.releaseAtg(g, rec);
    for (const g of rec.ags) this.releaseAg(g, rec);
    rec.atgs = [];
    rec.ags = [];
    rec.deleted = true;
    this.q.policies.add(rec);
    this.q.wake();
  }

  private unhold(rec: PolicyRecord): void {
    rec.held = false;
    const set = this.held.get(rec.namespace);
    set?.delete(rec);
    if (set?.size === 0) this.held.delete(rec.namespace);
  }

  private releaseHeldIfEmpty(namespace: string): void {
    if (this.index.namespaceEntityCount(namespace) > 0) return;
    if (!this.index.hasNamespace(namespace)) this.terminating.delete(namespace);
    const set = this.held.get(namespace);
    if (set === undefined) return;
    for (const rec of [...set]) {
      this.log.info('releasing a held NetworkPolicy: its namespace has no Pods left', { policy: rec.key });
      this.retire(rec);
    }
  }

  /** A new group of `kind` for `sel`, subscribed to the index and queued. */
  private newGroup<G extends AppliedToGroupRecord | AddressGroupRecord>(
    kind: new (name: string, sel: GroupSelector, q: GroupContext) => G,
    queue: WorkQueue<G>,
    sel: GroupSelector,
    name: string,
  ): G {
    const g = new kind(name, sel, this.q);
    queue.add(g);
    g.selector = this.index.addSink(sel, g);
    return g;
  }

  private releaseAtg(g: AppliedToGroupRecord, rec: PolicyRecord): void {
    if (g.removePolicy(rec) === 0) this.q.atgs.add(g);
  }

  private releaseAg(g: AddressGroupRecord, rec: PolicyRecord): void {
    if (g.removePolicy(rec) === 0) this.q.ags.add(g);
  }

  // ---------------------------------------------------------------- processing

  /** True if some change is not processed yet. */
  get pending(): boolean {
    return this.q.atgs.size + this.q.policies.size + this.q.ags.size + this.doomedAtgs.size + this.doomedAgs.size > 0;
  }

  /**
   * Processes queued work until none is left, or until `deadline` (a performance.now() time) passes,
   * or `maxItems` records were processed. Returns true when everything is processed.
   */
  flush(deadline = Infinity, maxItems = Infinity): boolean {
    const q = this.q;
    let n = 0;
    const late = (): boolean => ++n >= maxItems || ((n & 63) === 0 && performance.now() > deadline);
    // Phases in dependency order; a phase that queues work for an earlier one sends the loop back.
    for (;;) {
      if (q.atgs.size > 0) {
        if (!drainQueue(q.atgs, (g) => this.processAtg(g), late)) return false;
        continue;
      }
      if (q.policies.size > 0) {
        if (!drainQueue(q.policies, (p) => this.processPolicy(p), late)) return false;
        continue;
      }
      if (q.ags.size > 0) {
        if (!drainQueue(q.ags, (g) => this.processAg(g), late)) return false;
        continue;
      }
      // Group deletions go last, after the policies that stopped using them were published.
      // A group used again meanwhile goes back to its queue.
      for (const g of this.doomedAtgs) {
        this.doomedAtgs.delete(g);
        if (g.policyCount === 0) this.deleteGroup(g, this.atgStore);
        else q.atgs.add(g);
      }
      for (const g of this.doomedAgs) {
        this.doomedAgs.delete(g);
        if (g.policyCount === 0) this.deleteGroup(g, this.agStore);
        else q.ags.add(g);
      }
      if (q.atgs.size + q.policies.size + q.ags.size === 0) {
        if (this.q.tracking) this.notifyIdle();
        return true;
      }
    }
  }

  private notifyIdle(): void {
    for (const l of this.idleListeners) {
      try {
        l();
      } catch (err) {
        this.log.error('idle listener failed', { err: errorMessage(err) });
      }
    }
  }

  /**
   * Publishes the stores: from now on they are `ready` and every processed change emits an event.
   * Call after the initial lists were handled and flushed. Idempotent.
   */
  publish(): void {
    if (this.q.tracking) return;
    if (this.pending) this.flush();
    this.q.tracking = true;
    this.npStore.markReady();
    this.agStore.markReady();
    this.atgStore.markReady();
    this.log.info('initial NetworkPolicy computation published', {
      networkPolicies: this.npStore.count,
      addressGroups: this.agStore.count,
      appliedToGroups: this.atgStore.count,
    });
  }

  private deleteGroup<G extends GroupRecordBase<unknown, Ev>, Ev extends StoreEvent>(
    g: G,
    store: ObjectStore<G, Ev>,
  ): void {
    g.deleted = true;
    this.index.removeSink(g.selector, g);
    g.discardDelta();
    if (!g.stored) return;
    g.stored = false;
    store.delete(g.name);
    const ev = store.publishing ? g.event('DELETED', store.nextResourceVersion(), g.span) : undefined;
    if (ev !== undefined) store.emit(ev);
  }

  /** Publishes a group's new members and span; an unused group waits for deletion (see flush). */
  private processGroup<G extends GroupRecordBase<unknown, Ev>, Ev extends StoreEvent>(
    g: G,
    store: ObjectStore<G, Ev>,
    doomed: Set<G>,
  ): void {
    if (g.deleted) return;
    if (g.policyCount === 0) {
      doomed.add(g);
      return;
    }
    const prevSpan = g.refreshSpan();
    // A new AppliedToGroup span changes the span of the policies applied to it.
    if (prevSpan !== undefined && g instanceof AppliedToGroupRecord)
      for (const p of g.policies()) this.q.policies.add(p);
    if (!g.stored) {
      g.stored = true;
      store.set(g);
      if (!store.publishing) g.discardDelta();
      else store.emit(g.event('ADDED', store.nextResourceVersion(), undefined) as Ev);
      return;
    }
    if (!store.publishing) {
      g.discardDelta();
      return;
    }
    const ev = g.event('MODIFIED', store.nextResourceVersion(), prevSpan);
    if (ev !== undefined) store.emit(ev);
  }

  private processAtg(g: AppliedToGroupRecord): void {
    if (this.metrics === undefined) {
      this.processGroup(g, this.atgStore, this.doomedAtgs);
      return;
    }
    const t0 = performance.now();
    this.processGroup(g, this.atgStore, this.doomedAtgs);
    this.metrics.processed('appliedToGroup', performance.now() - t0);
  }

  private processPolicy(rec: PolicyRecord): void {
    if (this.metrics === undefined) {
      this.syncPolicy(rec);
      return;
    }
    const t0 = performance.now();
    this.syncPolicy(rec);
    this.metrics.processed('networkPolicy', performance.now() - t0);
  }

  private syncPolicy(rec: PolicyRecord): void {
    const store = this.npStore;
    if (rec.deleted) {
      for (const ag of rec.publishedAgs) ag.removePolicySpan(rec.span);
      rec.publishedAgs = [];
      if (!rec.stored) return;
      rec.stored = false;
      if (store.peek(rec.name) === rec) store.delete(rec.name);
      if (store.publishing) {
        store.emit({
          kind: 'NetworkPolicy',
          type: 'DELETED',
          resourceVersion: store.nextResourceVersion(),
          name: rec.name,
          object: rec.object,
          prevObject: rec.object,
          prevSpan: rec.span,
          span: EMPTY_SPAN,
        });
      }
      rec.span = EMPTY_SPAN;
      return;
    }
    // Spans of new or changed AppliedToGroups first, so the policy is published with its real span.
    for (const g of rec.atgs) {
      if (this.q.atgs.has(g)) {
        this.q.atgs.delete(g);
        this.processAtg(g);
      }
    }
    this.q.policies.delete(rec);
    const span = spanUnion(rec.atgs);
    const objectChanged = !rec.stored || rec.desired !== rec.object;
    if (!objectChanged && span === rec.span) return;
    const prevSpan = rec.span;
    for (const ag of rec.publishedAgs) ag.removePolicySpan(prevSpan);
    for (const ag of rec.ags) ag.addPolicySpan(span);
    rec.publishedAgs = rec.ags;
    const wasStored = rec.stored;
    const prevObject = rec.object;
    rec.object = rec.desired;
    rec.span = span;
    rec.stored = true;
    store.set(rec);
    if (!store.publishing) return;
    if (wasStored && !objectChanged && sameContent(prevSpan, span)) return;
    store.emit({
      kind: 'NetworkPolicy',
      type: wasStored ? 'MODIFIED' : 'ADDED',
      resourceVersion: store.nextResourceVersion(),
      name: rec.name,
      object: rec.object,
      prevObject: wasStored ? prevObject : undefined,
      prevSpan: wasStored ? prevSpan : EMPTY_SPAN,
      span,
    });
  }

  private processAg(g: AddressGroupRecord): void {
    if (this.metrics === undefined) {
      this.processGroup(g, this.agStore, this.doomedAgs);
      return;
    }
    const t0 = performance.now();
    this.processGroup(g, this.agStore, this.doomedAgs);
    this.metrics.processed('addressGroup', performance.now() - t0);
  }

  // ---------------------------------------------------------------- running

  /**
   * Runs the informers and the processing loop until `signal` aborts. Nothing is published before
   * every source has delivered its initial list and that state is computed.
   */
  async run(signal: AbortSignal, sources: readonly ControllerSource[]): Promise<void> {
    const runs = sources.map((s) => s.run(signal));
    try {
      await Promise.all(sources.map((s) => s.waitSynced(signal)));
      this.log.info('informers synced, computing');
      await this.drain(signal);
      this.publish();
      for (;;) {
        await this.waitForWork(signal);
        await this.drain(signal);
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    } finally {
      await Promise.all(runs);
    }
  }

  /** Processes everything queued, in slices of `sliceMs`, yielding to the event loop between slices. */
  async drain(signal?: AbortSignal): Promise<void> {
    while (!this.flush(performance.now() + this.sliceMs)) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (signal?.aborted === true) throw abortReason(signal);
    }
  }

  /**
   * Resolves once no work is queued (for tests and tools; `run()` must be processing, or call
   * `flush()` yourself). Rejects if `signal` aborts first.
   */
  async whenIdle(signal?: AbortSignal): Promise<void> {
    while (this.pending) {
      if (signal?.aborted === true) throw abortReason(signal);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  private waitForWork(signal: AbortSignal): Promise<void> {
    if (this.pending) return Promise.resolve();
    if (signal.aborted) return Promise.reject(abortReason(signal));
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.wakeUp = undefined;
        reject(abortReason(signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.wakeUp = () => {
        signal.removeEventListener('abort', onAbort);
        // Let the burst of events that woke us arrive before processing.
        setImmediate(resolve);
      };
    });
  }

  stats(): ControllerStats {
    const s = this.index.stats();
    let heldPolicies = 0;
    for (const set of this.held.values()) heldPolicies += set.size;
    return {
      pods: s.entities,
      namespaces: s.namespaces,
      labelSets: s.labelSets,
      selectors: s.selectors,
      networkPolicies: this.npStore.count,
      addressGroups: this.agStore.count,
      appliedToGroups: this.atgStore.count,
      heldPolicies,
      queued: this.q.atgs.size + this.q.policies.size + this.q.ags.size,
    };
  }
}

/** The live groups of one normalized selector, as found during a conversion. */
interface FoundGroups {
  readonly normalizedName: string;
  name: string;
  atg: AppliedToGroupRecord | undefined;
  ag: AddressGroupRecord | undefined;
}

/** Processes and removes the items of `queue` (including those added meanwhile); false if `late()` stopped it. */
function drainQueue<T extends Queued>(queue: WorkQueue<T>, process: (item: T) => void, late: () => boolean): boolean {
  for (let item = queue.take(); item !== undefined; item = queue.take()) {
    process(item);
    if (late()) return false;
  }
  return true;
}

/** The union of the groups' spans; a single group's span is shared, not copied. */
function spanUnion(groups: readonly AppliedToGroupRecord[]): Span {
  const first = groups[0];
  if (first === undefined) return EMPTY_SPAN;
  if (groups.length === 1) return first.span;
  const u = new Set<string>();
  for (const g of groups) for (const n of g.span) u.add(n);
  return u;
}

function sameContent(a: Span, b: Span): boolean {
  if (a === b) return true;
  if (a.size !== b.size) return false;
  for (const n of a) if (!b.has(n)) return false;
  return true;
}

/** Structural equality of JSON-like values (objects, arrays, primitives). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.hasOwn(b, k)) return false;
    if (!deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}
