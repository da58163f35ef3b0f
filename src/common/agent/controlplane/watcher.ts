/**
 * The agent side of the controlplane streams: three watches (networkpolicies, addressgroups,
 * appliedtogroups) of `nodeName=<this Node>`, each
 *
 * - buffering its initial objects until the bookmark and handing them over as one `replace`
 *   (everything not in the set is stale), then every event one by one;
 * - dropping the watch and reconnecting with backoff (then replacing again) on any problem: a
 *   connection or HTTP error, a malformed frame, an unknown event type, an event that does not fit
 *   the state (a patch of an unknown group...), an ERROR event, or a handler that throws;
 * - keeping a copy of its objects, saved on disk after each change ({@link SnapshotStore}: atomic,
 *   checksummed), so an agent that starts while the controller is unreachable can enforce the last
 *   known policies: if a watch fails before its first sync, or no resource completed its initial set
 *   within `fallbackAfterMs`, the snapshot is loaded once and each resource not yet synced from the
 *   controller gets a `replace` from it (source `snapshot`). A corrupt snapshot is reported loudly
 *   (log at error level and `status().snapshot`) and never treated as "no policy"; nothing is handed
 *   over, so the consumer keeps waiting for the controller (fail closed). The snapshot is never used
 *   again once a resource synced from the controller.
 *
 * Handler calls never overlap (they run one at a time, in order, across the three resources) and
 * each is awaited before the next; a handler that throws makes the watcher drop that resource's
 * watch and start over with a full replace.
 */
import type { IncomingMessage } from 'node:http';
import {
  CONTENT_TYPES,
  type ControlplaneResource,
  type Encoding,
  RESOURCE_NAMES,
  RESOURCES,
  WatchDecoder,
} from '../../apis/controlplane/codec.ts';
import type { Status } from '../../apis/protobuf/k8s.ts';
import { Backoff } from '../../util/backoff.ts';
import { type Clock, systemClock } from '../../util/clock.ts';
import { AntreaError, errorMessage } from '../../util/errors.ts';
import { Latch } from '../../util/latch.ts';
import { type Logger, nullLogger } from '../../util/log.ts';
import { isAborted, type Runnable } from '../../util/runnable.ts';
import { checkResponse, type ControllerEndpoint, openRequest } from './client.ts';
import type { SnapshotObjects, SnapshotStore } from './snapshot.ts';
import { type ResourceEvent, type ResourceObjects, ResourceState } from './state.ts';

export type ReplaceSource = 'controller' | 'snapshot';

/** What the agent's policy controller implements. */
export interface ControlplaneHandler {
  /** Everything of `resource` is now exactly `objects` (anything else is stale). */
  replace<R extends ControlplaneResource>(
    resource: R,
    objects: ResourceObjects[R][],
    source: ReplaceSource,
  ): void | Promise<void>;
  /** One change after the replace. */
  event(ev: ResourceEvent): void | Promise<void>;
}

export type ResourceConnection = 'connecting' | 'initializing' | 'synced' | 'disconnected';

export interface ResourceStatus {
  readonly connection: ResourceConnection;
  /** Where the current objects come from (undefined before the first replace). */
  readonly source: ReplaceSource | undefined;
  /** Complete initial sets received from the controller. */
  readonly syncs: number;
  /** Events applied after the initial sets. */
  readonly events: number;
  readonly lastError: string | undefined;
}

export type SnapshotState = 'unused' | 'loaded' | 'absent' | 'corrupt' | 'disabled';

export interface WatcherStatus {
  /** Every watch is connected and synced with the controller (Antrea's ControllerConnectionUp). */
  readonly connected: boolean;
  readonly resources: Readonly<Record<ControlplaneResource, ResourceStatus>>;
  readonly snapshot: SnapshotState;
  readonly snapshotError: string | undefined;
  /** Snapshots written. */
  readonly snapshotWrites: number;
  readonly snapshotWriteError: string | undefined;
}

export interface PolicyWatcherOptions {
  readonly endpoint: ControllerEndpoint;
  readonly nodeName: string;
  readonly handler: ControlplaneHandler;
  /** Default protobuf, as Antrea's agent. */
  readonly encoding?: Encoding;
  /** The on-disk fallback; without one there is none. */
  readonly snapshot?: SnapshotStore;
  /** Load the snapshot when no initial set arrived within this long (default 5 s). */
  readonly fallbackAfterMs?: number;
  /** Delay before writing the snapshot after an incremental event (default 1 s; after a replace: at once). */
  readonly persistDelayMs?: number;
  /** A fresh backoff per resource (default 0.5 s doubling to 30 s, with jitter). */
  readonly backoff?: () => Backoff;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Bound on one frame (default 64 MiB). */
  readonly maxFrameBytes?: number;
}

/** The watch ended because the controller sent an ERROR event. */
export class WatchErrorEvent extends AntreaError<'WATCH_ERROR_EVENT'> {
  constructor(resource: string, status: Status) {
    super('WATCH_ERROR_EVENT', `${resource} watch: ERROR event: ${status.message} (${status.reason}, ${status.code})`, {
      details: { code: status.code, reason: status.reason },
    });
  }
}

interface Mutable {
  connection: ResourceConnection;
  source: ReplaceSource | undefined;
  syncs: number;
  events: number;
  lastError: string | undefined;
  everSynced: boolean;
}

export class PolicyWatcher implements Runnable {
  private readonly o: PolicyWatcherOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly encoding: Encoding;
  private readonly states: { readonly [R in ControlplaneResource]: ResourceState<R> } = {
    networkpolicies: new ResourceState('networkpolicies'),
    addressgroups: new ResourceState('addressgroups'),
    appliedtogroups: new ResourceState('appliedtogroups'),
  };
  private readonly st: Record<ControlplaneResource, Mutable>;
  private readonly syncedLatch = new Latch();
  private readonly listeners = new Set<(s: WatcherStatus) => void>();
  /** Serializes handler calls. */
  private chain: Promise<unknown> = Promise.resolve();
  private snapshotState: SnapshotState;
  private snapshotError: string | undefined;
  private fallbackTried = false;
  private persistTimer: { cancel(): void } | undefined;
  private persistDirty = false;
  private persisting: Promise<void> | undefined;
  private snapshotWrites = 0;
  private snapshotWriteError: string | undefined;
  private running = false;

  constructor(opts: PolicyWatcherOptions) {
    this.o = opts;
    this.clock = opts.clock ?? systemClock;
    this.log = (opts.logger ?? nullLogger).child({ component: 'controlplane-watcher', node: opts.nodeName });
    this.encoding = opts.encoding ?? 'protobuf';
    const init = (): Mutable => ({
      connection: 'connecting',
      source: undefined,
      syncs: 0,
      events: 0,
      lastError: undefined,
      everSynced: false,
    });
    this.st = { networkpolicies: init(), addressgroups: init(), appliedtogroups: init() };
    this.snapshotState = opts.snapshot === undefined ? 'disabled' : 'unused';
  }

  /** The objects currently held for `resource`. */
  objects<R extends ControlplaneResource>(resource: R): ResourceObjects[R][] {
    return (this.states[resource] as ResourceState<R>).list();
  }

  /** Resolves once every resource had a replace (from the controller or the snapshot). */
  waitSynced(signal?: AbortSignal): Promise<void> {
    return this.syncedLatch.wait(signal);
  }

  get synced(): boolean {
    return this.syncedLatch.opened;
  }

  status(): WatcherStatus {
    const resources = Object.fromEntries(
      RESOURCE_NAMES.map((r) => {
        const s = this.st[r];
        return [
          r,
          { connection: s.connection, source: s.source, syncs: s.syncs, events: s.events, lastError: s.lastError },
        ];
      }),
    ) as Record<ControlplaneResource, ResourceStatus>;
    return {
      connected: RESOURCE_NAMES.every((r) => this.st[r].connection === 'synced'),
      resources,
      snapshot: this.snapshotState,
      snapshotError: this.snapshotError,
      snapshotWrites: this.snapshotWrites,
      snapshotWriteError: this.snapshotWriteError,
    };
  }

  /** Calls `listener` on every status change; returns the function that unsubscribes. */
  onStatus(listener: (s: WatcherStatus) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  private changed(): void {
    if (this.listeners.size === 0) return;
    const s = this.status();
    for (const l of this.listeners) {
      try {
        l(s);
      } catch (err) {
        this.log.warn('status listener failed', { err: errorMessage(err) });
      }
    }
  }

  /** Runs the three watches until `signal` aborts; then writes a pending snapshot. */
  async run(signal: AbortSignal): Promise<void> {
    if (this.running) throw new Error('the policy watcher is already running');
    this.running = true;
    const timer = this.clock.setTimer(this.o.fallbackAfterMs ?? 5000, () => {
      if (RESOURCE_NAMES.some((r) => !this.st[r].everSynced))
        void this.fallback('no initial set from the controller in time');
    });
    try {
      await Promise.all(RESOURCE_NAMES.map((r) => this.loop(r, signal)));
    } finally {
      timer.cancel();
      this.persistTimer?.cancel();
      await this.chain.catch(() => undefined);
      if (this.persistDirty) await this.persist();
      await this.persisting;
      this.running = false;
    }
  }

  private async loop(resource: ControlplaneResource, signal: AbortSignal): Promise<void> {
    const backoff = this.o.backoff?.() ?? new Backoff({ initialMs: 500, maxMs: 30_000, jitter: 0.2 });
    const s = this.st[resource];
    while (!signal.aborted) {
      s.connection = 'connecting';
      this.changed();
      try {
        await this.watchOnce(resource, signal, () => backoff.reset());
        if (!isAborted(signal)) this.log.info('watch ended, reconnecting', { resource });
      } catch (err) {
        if (isAborted(signal)) break;
        s.lastError = errorMessage(err);
        // Unreachable controllers are expected (restarts); anything else is a bug somewhere.
        if (err instanceof AntreaError && err.code !== 'CONTROLLER_UNREACHABLE') {
          this.log.error('watch failed', { resource, err: s.lastError });
        } else this.log.warn('watch failed', { resource, err: s.lastError });
        if (!s.everSynced) void this.fallback(`the ${resource} watch failed: ${s.lastError}`);
      }
      s.connection = 'disconnected';
      this.changed();
      if (isAborted(signal)) break;
      try {
        await this.clock.sleep(backoff.next(), signal);
      } catch {
        break;
      }
    }
  }

  private query(): string {
    const p = new URLSearchParams({
      watch: 'true',
      fieldSelector: `nodeName=${this.o.nodeName}`,
      allowWatchBookmarks: 'true',
    });
    return p.toString();
  }

  /** One watch: resolves when the stream ends cleanly, rejects on any problem. */
  private async watchOnce(resource: ControlplaneResource, signal: AbortSignal, onSynced: () => void): Promise<void> {
    const s = this.st[resource];
    const kinds = RESOURCES[resource];
    const abort = new AbortController();
    const onAbort = (): void => abort.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    let res: IncomingMessage | undefined;
    try {
      res = await openRequest(this.o.endpoint, {
        path: `/apis/controlplane.antrea.io/v1beta2/${resource}?${this.query()}`,
        headers: { Accept: CONTENT_TYPES[this.encoding] },
        signal: abort.signal,
      });
      await checkResponse(res, `watch ${resource}`);
      s.connection = 'initializing';
      this.changed();
      const decoder = new WatchDecoder(this.encoding, {
        ...(this.o.maxFrameBytes === undefined ? {} : { maxFrameBytes: this.o.maxFrameBytes }),
        expectedKinds: [kinds.kind, kinds.patchKind],
      });
      let initial: unknown[] | undefined = [];
      for await (const chunk of res as AsyncIterable<Buffer>) {
        for (const ev of decoder.push(chunk)) {
          if (ev.type === 'ERROR') throw new WatchErrorEvent(resource, ev.object as Status);
          if (initial !== undefined) {
            if (ev.type === 'ADDED' && ev.kind === kinds.kind) initial.push(ev.object);
            else if (ev.type === 'BOOKMARK') {
              const objects = initial;
              initial = undefined;
              await this.replace(resource, objects, 'controller');
              s.syncs++;
              s.connection = 'synced';
              onSynced();
              this.log.info('synced with the controller', { resource, objects: objects.length });
              this.changed();
            } else
              throw new AntreaError(
                'WATCH_PROTOCOL',
                `${resource} watch: ${ev.type} ${ev.kind} before the initial bookmark`,
              );
            continue;
          }
          if (ev.type === 'BOOKMARK') continue;
          const want = ev.type === 'MODIFIED' ? kinds.patchKind : kinds.kind;
          if (ev.kind !== want)
            throw new AntreaError(
              'WATCH_PROTOCOL',
              `${resource} watch: ${ev.type} carries ${ev.kind}, expected ${want}`,
            );
          const event = { resource, type: ev.type, object: ev.object } as ResourceEvent;
          await this.serial(async () => {
            (this.states[resource] as ResourceState<ControlplaneResource>).apply(event);
            s.events++;
            this.schedulePersist(this.o.persistDelayMs ?? 1000);
            await this.o.handler.event(event);
          });
        }
      }
      if (signal.aborted) return;
      if (initial !== undefined)
        throw new AntreaError('WATCH_PROTOCOL', `${resource} watch ended before the initial bookmark`);
    } finally {
      signal.removeEventListener('abort', onAbort);
      abort.abort();
      res?.destroy();
    }
  }

  /** Runs `fn` after every handler call queued before it. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private replace(resource: ControlplaneResource, objects: unknown[], source: ReplaceSource): Promise<void> {
    return this.serial(async () => {
      const s = this.st[resource];
      if (source === 'snapshot' && s.everSynced) return;
      (this.states[resource] as ResourceState<ControlplaneResource>).replace(objects as never[]);
      s.source = source;
      // Set before the handler runs, so a snapshot replace queued behind this one is skipped.
      if (source === 'controller') s.everSynced = true;
      if (source === 'controller') this.schedulePersist(0);
      await this.o.handler.replace(resource, objects as never[], source);
      if (RESOURCE_NAMES.every((r) => this.st[r].source !== undefined)) this.syncedLatch.open();
    });
  }

  /** Loads the snapshot once and hands it over for every resource not synced from the controller yet. */
  private async fallback(why: string): Promise<void> {
    const store = this.o.snapshot;
    if (this.fallbackTried || store === undefined) return;
    this.fallbackTried = true;
    const loaded = await store.load();
    if (loaded.status === 'absent') {
      this.snapshotState = 'absent';
      this.log.warn('no policy snapshot on disk to fall back on; waiting for the controller', { why });
    } else if (loaded.status === 'corrupt') {
      this.snapshotState = 'corrupt';
      this.snapshotError = loaded.error.message;
      this.log.error(
        'THE POLICY SNAPSHOT IS CORRUPT: not using it; policies stay unrealized until the controller is reachable',
        {
          why,
          err: loaded.error.message,
        },
      );
    } else {
      this.snapshotState = 'loaded';
      this.log.warn('falling back on the policy snapshot on disk', {
        why,
        generation: loaded.generation,
        savedAt: loaded.savedAt,
        networkPolicies: loaded.objects.networkpolicies.length,
      });
      for (const r of RESOURCE_NAMES) {
        if (!this.st[r].everSynced)
          await this.replace(r, [...loaded.objects[r]], 'snapshot').catch((err: unknown) => {
            this.log.error('handler failed on the snapshot', { resource: r, err: errorMessage(err) });
          });
      }
    }
    this.changed();
  }

  private schedulePersist(delayMs: number): void {
    if (this.o.snapshot === undefined) return;
    this.persistDirty = true;
    if (this.persistTimer !== undefined && delayMs > 0) return;
    this.persistTimer?.cancel();
    this.persistTimer = this.clock.setTimer(delayMs, () => {
      this.persistTimer = undefined;
      void this.persist();
    });
  }

  /** Writes the snapshot if every resource holds a complete set (one write at a time). */
  private async persist(): Promise<void> {
    const store = this.o.snapshot;
    if (store === undefined) return;
    if (this.persisting !== undefined) {
      await this.persisting;
      if (!this.persistDirty) return;
    }
    if (!RESOURCE_NAMES.every((r) => this.st[r].source !== undefined)) return;
    this.persistDirty = false;
    const objects: SnapshotObjects = {
      networkpolicies: this.states.networkpolicies.list(),
      addressgroups: this.states.addressgroups.list(),
      appliedtogroups: this.states.appliedtogroups.list(),
    };
    this.persisting = (async () => {
      try {
        await store.save(objects);
        this.snapshotWrites++;
        this.snapshotWriteError = undefined;
      } catch (err) {
        this.persistDirty = true;
        this.snapshotWriteError = errorMessage(err);
        this.log.error('writing the policy snapshot failed', { path: store.path, err: this.snapshotWriteError });
        this.changed();
      } finally {
        this.persisting = undefined;
      }
    })();
    await this.persisting;
  }
}
