/**
 * The watch hub: serves the controller's three stores as per-Node watch streams (Antrea's ram store
 * with its per-watcher filtering, see watch-events.ts for what one Node receives).
 *
 * A watch starts only once the stores are published (the initial computation is complete, so an
 * agent never replaces its policies with a partial set) and at a quiescent point of the controller
 * (every queued change processed), when the stores and the group views agree with the events
 * emitted so far. It then sends, synchronously, the initial objects of its Node as ADDED events, one
 * BOOKMARK marking the end of the initial set, and from then on the events of its Node, in store
 * order. Since JavaScript runs one thing at a time, nothing can happen between the snapshot and the
 * registration: no event is lost or sent twice.
 *
 * Each event is encoded once per distinct message and the bytes are shared by every watcher that
 * gets the same message (NetworkPolicy events and AddressGroup events are the same for every Node;
 * AppliedToGroup ADDED and MODIFIED are per Node). Initial NetworkPolicies and AddressGroups are
 * encoded once and reused until they change.
 *
 * Writing never blocks: a {@link WatchSink} reports whether the watcher's bounded buffer overflowed,
 * and an overflowing watcher is closed (its agent reconnects and gets a full replace), so a slow
 * watcher never slows the others.
 */
import {
  type ControlplaneEncoder,
  type ControlplaneResource,
  type Encoding,
  INITIAL_EVENTS_END_ANNOTATION,
  type Kind,
  RESOURCES,
} from '../../common/apis/controlplane/codec.ts';
import type { ObjectMeta } from '../../common/apis/controlplane/types.ts';
import { abortReason } from '../../common/util/clock.ts';
import { errorMessage } from '../../common/util/errors.ts';
import { type Logger, nullLogger } from '../../common/util/log.ts';
import type { NetworkPolicyController } from '../networkpolicy/controller.ts';
import type { StoreEvent } from '../networkpolicy/store.ts';
import {
  addressGroupObject,
  addressGroupWatchEvent,
  affectedNodes,
  appliedToGroupObject,
  appliedToGroupWatchEvent,
  networkPolicyWatchEvent,
  type WatchEvent,
} from '../networkpolicy/watch-events.ts';

/** Why a watch ended. */
export type WatchCloseReason = 'overflow' | 'timeout' | 'shutdown' | 'client';

/** Where a watcher's frames go (an HTTP response in the server; memory in tests). */
export interface WatchSink {
  /**
   * Writes one frame. `live` is false for the initial events and the bookmark (never refused).
   * Returns false when the watcher's buffer bound is exceeded: the hub then closes it.
   */
  write(frame: Buffer, live: boolean): boolean;
  /** Ends the stream. Called once by the hub; `overflow` should drop the connection abruptly. */
  close(reason: WatchCloseReason): void;
}

export interface WatchRequest {
  readonly resource: ControlplaneResource;
  /** The `nodeName` field selector: only objects whose span holds this Node. */
  readonly node?: string;
  /** The `metadata.name` field selector. */
  readonly name?: string;
  readonly encoding: Encoding;
  /** Annotate the bookmark with `k8s.io/initial-events-end` (watch-list requests). */
  readonly annotateBookmark?: boolean;
}

/** A registered watch. */
export interface WatchHandle {
  /** Ends the watch (idempotent); the sink is closed with `reason` unless it already was. */
  stop(reason: WatchCloseReason): void;
  /** Resolves when the watch ended, with the reason. */
  readonly done: Promise<WatchCloseReason>;
}

interface Watcher {
  readonly id: number;
  readonly req: WatchRequest;
  readonly sink: WatchSink;
  live: boolean;
  closed: boolean;
  finish: (reason: WatchCloseReason) => void;
}

class WatcherSet {
  readonly byNode = new Map<string, Set<Watcher>>();
  readonly all = new Set<Watcher>();
  count = 0;

  add(w: Watcher): void {
    const node = w.req.node;
    if (node === undefined) this.all.add(w);
    else {
      let s = this.byNode.get(node);
      if (s === undefined) this.byNode.set(node, (s = new Set()));
      s.add(w);
    }
    this.count++;
  }

  delete(w: Watcher): boolean {
    const node = w.req.node;
    let removed: boolean;
    if (node === undefined) removed = this.all.delete(w);
    else {
      const s = this.byNode.get(node);
      removed = s?.delete(w) === true;
      if (s?.size === 0) this.byNode.delete(node);
    }
    if (removed) this.count--;
    return removed;
  }

  *watchers(): Generator<Watcher> {
    yield* this.all;
    for (const s of this.byNode.values()) yield* s;
  }
}

export interface WatchHubStats {
  readonly watchers: Readonly<Record<ControlplaneResource, number>>;
  /** Distinct Nodes with an AppliedToGroup watch (Antrea's "connected agents"). */
  readonly connectedAgents: number;
  readonly eventsSent: number;
  readonly bytesSent: number;
  readonly closed: Readonly<Record<WatchCloseReason, number>>;
  /** Watches waiting for publication or a quiescent point. */
  readonly pending: number;
}

export interface WatchHubOptions {
  readonly logger?: Logger;
}

type AnyWatchEvent = WatchEvent<unknown>;

export class WatchHub {
  private readonly controller: NetworkPolicyController;
  private readonly encoder: ControlplaneEncoder;
  private readonly log: Logger;
  private readonly sets: Record<ControlplaneResource, WatcherSet> = {
    networkpolicies: new WatcherSet(),
    addressgroups: new WatcherSet(),
    appliedtogroups: new WatcherSet(),
  };
  /** Watches waiting for the controller to be idle. */
  private readonly waiting = new Set<() => void>();
  private nextId = 1;
  private eventsSent = 0;
  private bytesSent = 0;
  private readonly closedCounts: Record<WatchCloseReason, number> = { overflow: 0, timeout: 0, shutdown: 0, client: 0 };
  /** Encoded initial ADDED frames: NetworkPolicies by object (immutable), AddressGroups by name until they change. */
  private readonly npFrames: Record<Encoding, WeakMap<object, Buffer>> = {
    protobuf: new WeakMap(),
    json: new WeakMap(),
  };
  private readonly agFrames: Record<Encoding, Map<string, Buffer>> = { protobuf: new Map(), json: new Map() };
  private readonly unsubscribe: (() => void)[];
  private stopped = false;

  constructor(controller: NetworkPolicyController, encoder: ControlplaneEncoder, opts: WatchHubOptions = {}) {
    this.controller = controller;
    this.encoder = encoder;
    this.log = (opts.logger ?? nullLogger).child({ component: 'watch-hub' });
    this.unsubscribe = [
      controller.networkPolicies.subscribe((ev) => this.dispatch('networkpolicies', ev)),
      controller.addressGroups.subscribe((ev) => {
        this.agFrames.protobuf.delete(ev.name);
        this.agFrames.json.delete(ev.name);
        this.dispatch('addressgroups', ev);
      }),
      controller.appliedToGroups.subscribe((ev) => this.dispatch('appliedtogroups', ev)),
      controller.onIdle(() => this.releaseWaiting()),
    ];
  }

  /**
   * Starts a watch. Resolves with its handle once the initial objects and the bookmark were written
   * (after publication and at a quiescent point); rejects if `signal` aborts first (the sink is then
   * not used).
   */
  async watch(req: WatchRequest, sink: WatchSink, signal: AbortSignal): Promise<WatchHandle> {
    this.checkRunning();
    await this.storeOf(req.resource).waitReady(signal);
    // The check and the start run in one synchronous step: nothing can change in between.
    while (this.controller.pending) {
      await this.waitIdle(signal);
      this.checkRunning();
    }
    this.checkRunning();
    return this.start(req, sink);
  }

  private checkRunning(): void {
    if (this.stopped) throw new Error('the watch hub is stopped');
  }

  private storeOf(resource: ControlplaneResource): { waitReady(signal?: AbortSignal): Promise<void> } {
    if (resource === 'networkpolicies') return this.controller.networkPolicies;
    if (resource === 'addressgroups') return this.controller.addressGroups;
    return this.controller.appliedToGroups;
  }

  /** Resolves at the next quiescent point (or at once when the controller has nothing queued). */
  private waitIdle(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(abortReason(signal));
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.waiting.delete(release);
        reject(abortReason(signal));
      };
      const release = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.add(release);
    });
  }

  private releaseWaiting(): void {
    if (this.waiting.size === 0) return;
    const list = [...this.waiting];
    this.waiting.clear();
    for (const r of list) r();
  }

  /** Sends the initial set and the bookmark, then registers the watcher. Synchronous. */
  private start(req: WatchRequest, sink: WatchSink): WatchHandle {
    let finish!: (reason: WatchCloseReason) => void;
    const done = new Promise<WatchCloseReason>((resolve) => (finish = resolve));
    const w: Watcher = { id: this.nextId++, req, sink, live: false, closed: false, finish };
    if (this.controller.pending) {
      // Only reachable if a caller started a watch outside a quiescent point; keep the invariant.
      throw new Error('watch started while the controller has unprocessed changes');
    }
    const c = this.controller;
    const node = req.node;
    const name = req.name;
    const enc = req.encoding;
    const send = (frame: Buffer): void => {
      sink.write(frame, false);
      this.eventsSent++;
      this.bytesSent += frame.length;
    };
    if (req.resource === 'networkpolicies') {
      const cache = this.npFrames[enc];
      const one = (v: { object: object; span: ReadonlySet<string> }): void => {
        if (node !== undefined && !v.span.has(node)) return;
        let f = cache.get(v.object);
        if (f === undefined) {
          f = this.encoder.watchFrame(enc, 'ADDED', 'NetworkPolicy', v.object as never);
          cache.set(v.object, f);
        }
        send(f);
      };
      if (name !== undefined) {
        const v = c.networkPolicies.get(name);
        if (v !== undefined) one(v);
      } else for (const v of c.networkPolicies.list()) one(v);
    } else if (req.resource === 'addressgroups') {
      const cache = this.agFrames[enc];
      for (const g of name === undefined ? c.addressGroups.list() : [c.addressGroups.get(name)]) {
        if (g === undefined || (node !== undefined && !g.span.has(node))) continue;
        let f = cache.get(g.name);
        if (f === undefined) {
          f = this.encoder.watchFrame(enc, 'ADDED', 'AddressGroup', addressGroupObject(g));
          cache.set(g.name, f);
        }
        send(f);
      }
    } else {
      for (const g of name === undefined ? c.appliedToGroups.list() : [c.appliedToGroups.get(name)]) {
        if (g === undefined || (node !== undefined && !g.span.has(node))) continue;
        send(this.encoder.watchFrame(enc, 'ADDED', 'AppliedToGroup', appliedToGroupObject(g, node)));
      }
    }
    send(this.bookmark(req));
    w.live = true;
    this.sets[req.resource].add(w);
    this.log.debug('watch started', { resource: req.resource, node, id: w.id });
    return { stop: (reason) => this.close(w, reason), done };
  }

  private bookmark(req: WatchRequest): Buffer {
    const rv = String(
      req.resource === 'networkpolicies'
        ? this.controller.networkPolicies.resourceVersion
        : req.resource === 'addressgroups'
          ? this.controller.addressGroups.resourceVersion
          : this.controller.appliedToGroups.resourceVersion,
    );
    const metadata: ObjectMeta =
      req.annotateBookmark === true
        ? { name: '', resourceVersion: rv, annotations: { [INITIAL_EVENTS_END_ANNOTATION]: 'true' } }
        : { name: '', resourceVersion: rv };
    const kind = RESOURCES[req.resource].kind;
    if (kind === 'NetworkPolicy') {
      return this.encoder.watchFrame(req.encoding, 'BOOKMARK', kind, { metadata, rules: [], appliedToGroups: [] });
    }
    return this.encoder.watchFrame(req.encoding, 'BOOKMARK', kind, { metadata, groupMembers: [] });
  }

  private close(w: Watcher, reason: WatchCloseReason): void {
    if (w.closed) return;
    w.closed = true;
    this.sets[w.req.resource].delete(w);
    this.closedCounts[reason]++;
    try {
      w.sink.close(reason);
    } catch (err) {
      this.log.warn('closing a watch failed', { err: errorMessage(err) });
    }
    if (reason === 'overflow') {
      this.log.warn('watcher too slow, closed', { resource: w.req.resource, node: w.req.node, id: w.id });
    }
    w.finish(reason);
  }

  private dispatch(resource: ControlplaneResource, ev: StoreEvent): void {
    const set = this.sets[resource];
    if (set.count === 0) return;
    // Frames of this event by encoding and message (see cacheKey).
    const frames = new Map<string, Buffer>();
    const deliver = (w: Watcher, node: string | undefined): void => {
      if (w.closed || (w.req.name !== undefined && w.req.name !== ev.name)) return;
      let we: AnyWatchEvent | undefined;
      let kind: Kind;
      let perNode = false;
      if (ev.kind === 'NetworkPolicy') {
        we = networkPolicyWatchEvent(ev, node);
        kind = 'NetworkPolicy';
      } else if (ev.kind === 'AddressGroup') {
        we = addressGroupWatchEvent(ev, node);
        kind = we?.type === 'MODIFIED' ? 'AddressGroupPatch' : 'AddressGroup';
      } else {
        we = appliedToGroupWatchEvent(ev, node);
        kind = we?.type === 'MODIFIED' ? 'AppliedToGroupPatch' : 'AppliedToGroup';
        perNode = we?.type !== 'DELETED';
      }
      if (we === undefined) return;
      const key = `${w.req.encoding}|${we.type}|${perNode ? (node ?? '*') : ''}`;
      let frame = frames.get(key);
      if (frame === undefined) {
        frame = this.encoder.watchFrame(w.req.encoding, we.type, kind, we.object as never);
        frames.set(key, frame);
      }
      this.eventsSent++;
      this.bytesSent += frame.length;
      if (!w.sink.write(frame, true)) this.close(w, 'overflow');
    };
    for (const w of set.all) deliver(w, undefined);
    if (set.byNode.size === 0) return;
    const nodes = affectedNodes(ev);
    if (nodes.size <= set.byNode.size) {
      for (const n of nodes) {
        const ws = set.byNode.get(n);
        if (ws !== undefined) for (const w of ws) deliver(w, n);
      }
    } else {
      for (const [n, ws] of set.byNode) if (nodes.has(n)) for (const w of ws) deliver(w, n);
    }
  }

  /** Number of registered watchers of `resource` (all resources when absent). */
  watcherCount(resource?: ControlplaneResource): number {
    if (resource !== undefined) return this.sets[resource].count;
    return this.sets.networkpolicies.count + this.sets.addressgroups.count + this.sets.appliedtogroups.count;
  }

  stats(): WatchHubStats {
    return {
      watchers: {
        networkpolicies: this.sets.networkpolicies.count,
        addressgroups: this.sets.addressgroups.count,
        appliedtogroups: this.sets.appliedtogroups.count,
      },
      connectedAgents: this.sets.appliedtogroups.byNode.size,
      eventsSent: this.eventsSent,
      bytesSent: this.bytesSent,
      closed: { ...this.closedCounts },
      pending: this.waiting.size,
    };
  }

  /** Closes every watch ('shutdown') and stops listening to the stores. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const u of this.unsubscribe) u();
    this.releaseWaiting();
    for (const set of Object.values(this.sets)) for (const w of [...set.watchers()]) this.close(w, 'shutdown');
  }
}
