/**
 * An informer: a cache of one kind of Kubernetes object kept in sync by list + watch, that tells its
 * handlers about every add, update and delete.
 *
 * Unlike @kubernetes/client-node's own informer, which stops for good on any error other than 410,
 * this one never gives up: it relists on 410 Gone (HTTP or an ERROR event), reconnects after a clean
 * end or an idle timeout from the last resourceVersion, and retries anything else with exponential
 * backoff. It lists in pages, can trim every object through `transform` before caching it (saving
 * memory on fields nobody reads), and reports `synced` once the first complete list has been handed
 * to the handlers. A relist is diffed against the cache, so handlers see only real changes, including
 * deletions missed while disconnected.
 *
 * The transport is a {@link ListWatchClient}; {@link kubeListWatch} (client.ts) implements it on
 * @kubernetes/client-node for a real API server.
 */
import { Backoff } from '../util/backoff.ts';
import { type Clock, systemClock } from '../util/clock.ts';
import { AntreaError, errorMessage } from '../util/errors.ts';
import { Latch } from '../util/latch.ts';
import { type Logger, nullLogger } from '../util/log.ts';
import { isAborted, type Runnable } from '../util/runnable.ts';
import { type KubeObject, objectKey } from './objects.ts';

export type InformerEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** Called for each change; `old` is the cached object an update or delete replaces. */
export type InformerHandler<T> = (type: InformerEventType, obj: T, old: T | undefined) => void;

export interface ListPage {
  readonly items: readonly KubeObject[];
  readonly resourceVersion: string;
  /** Continue token of the next page, if any. */
  readonly continue?: string;
}

/** One event of a watch stream: ADDED, MODIFIED, DELETED, BOOKMARK or ERROR (object = Status). */
export type RawWatchEvent = (type: string, object: unknown) => void;

/** The list and watch calls of one resource collection. */
export interface ListWatchClient {
  /** Lists one page. Rejects with a {@link GoneError} when the continue token expired. */
  list(opts: { readonly limit: number; readonly continue?: string; readonly signal: AbortSignal }): Promise<ListPage>;
  /**
   * Watches from `resourceVersion`, calling `onEvent` per event. Resolves when the stream ends
   * cleanly, rejects with a {@link GoneError} on HTTP 410, and with another error on any other
   * failure (including an idle timeout). Aborting `signal` ends the watch (it then resolves).
   */
  watch(
    opts: { readonly resourceVersion: string; readonly timeoutSeconds: number; readonly signal: AbortSignal },
    onEvent: RawWatchEvent,
  ): Promise<void>;
}

/** The resourceVersion is too old (HTTP 410 or a watch ERROR event with code 410): relist. */
export class GoneError extends AntreaError<'K8S_GONE'> {
  constructor(message: string) {
    super('K8S_GONE', message);
  }
}

export interface InformerOptions<T extends KubeObject> {
  /** For logs, e.g. "pods". */
  readonly resource: string;
  readonly client: ListWatchClient;
  /** Trims or converts each object before it is cached and handed out. */
  readonly transform?: (obj: KubeObject) => T;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Backoff between failed attempts (default 0.5 s doubling to 30 s, with jitter). */
  readonly backoff?: Backoff;
  /** Items per list page (default 500, like kubectl). */
  readonly pageSize?: number;
  /** Watch timeout asked of the server, in seconds (default: random 5-10 minutes per watch). */
  readonly watchTimeoutSeconds?: () => number;
}

export class Informer<T extends KubeObject> implements Runnable {
  private readonly opts: InformerOptions<T>;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly backoff: Backoff;
  private readonly cache = new Map<string, T>();
  private readonly handlers = new Set<InformerHandler<T>>();
  private resourceVersion: string | undefined;
  private readonly syncedLatch = new Latch();
  private running = false;
  /** Number of complete lists so far (for tests and metrics). */
  lists = 0;
  /** Number of watch connections started so far. */
  watches = 0;

  constructor(opts: InformerOptions<T>) {
    this.opts = opts;
    this.log = (opts.logger ?? nullLogger).child({ informer: opts.resource });
    this.clock = opts.clock ?? systemClock;
    this.backoff = opts.backoff ?? new Backoff({ initialMs: 500, maxMs: 30_000, jitter: 0.2 });
  }

  /** Subscribes a handler; returns the function that unsubscribes it. */
  onEvent(handler: InformerHandler<T>): () => void {
    this.handlers.add(handler);
    return () => void this.handlers.delete(handler);
  }

  get synced(): boolean {
    return this.syncedLatch.opened;
  }

  /** Resolves once the first complete list has been delivered; rejects if `signal` aborts first. */
  waitSynced(signal?: AbortSignal): Promise<void> {
    return this.syncedLatch.wait(signal);
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): IterableIterator<T> {
    return this.cache.values();
  }

  get size(): number {
    return this.cache.size;
  }

  /** Lists and watches until `signal` aborts. Never rejects because of the API server. */
  async run(signal: AbortSignal): Promise<void> {
    if (this.running)
      throw new AntreaError('INFORMER_RUNNING', `informer for ${this.opts.resource} is already running`);
    this.running = true;
    try {
      while (!signal.aborted) {
        try {
          if (this.resourceVersion === undefined) await this.relist(signal);
          if (isAborted(signal)) break;
          await this.watchOnce(signal);
        } catch (err) {
          if (isAborted(signal)) break;
          if (err instanceof GoneError) {
            this.log.info('resourceVersion expired, relisting', { err: err.message });
            this.resourceVersion = undefined;
            continue;
          }
          if (isTimeout(err)) {
            this.log.debug('watch idle timeout, reconnecting');
            continue;
          }
          const delay = this.backoff.next();
          this.log.warn('list/watch failed, retrying', { err: errorMessage(err), retryInMs: Math.round(delay) });
          try {
            await this.clock.sleep(delay, signal);
          } catch {
            break;
          }
        }
      }
    } finally {
      this.running = false;
    }
  }

  private async relist(signal: AbortSignal): Promise<void> {
    const seen = new Set<string>();
    let cont: string | undefined;
    let rv: string;
    const transform = this.opts.transform ?? ((o: KubeObject) => o as T);
    do {
      const page = await this.opts.client.list({
        limit: this.opts.pageSize ?? 500,
        ...(cont === undefined ? {} : { continue: cont }),
        signal,
      });
      rv = page.resourceVersion;
      for (const raw of page.items) {
        const obj = transform(raw);
        const key = objectKey(obj);
        seen.add(key);
        const old = this.cache.get(key);
        if (old !== undefined && old.metadata?.resourceVersion === obj.metadata?.resourceVersion) continue;
        this.cache.set(key, obj);
        this.dispatch(old === undefined ? 'ADDED' : 'MODIFIED', obj, old);
      }
      cont = page.continue === '' ? undefined : page.continue;
    } while (cont !== undefined && !signal.aborted);
    if (signal.aborted) return;
    for (const [key, old] of this.cache) {
      if (seen.has(key)) continue;
      this.cache.delete(key);
      this.dispatch('DELETED', old, old);
    }
    this.resourceVersion = rv;
    this.lists++;
    this.backoff.reset();
    this.log.debug('listed', { items: this.cache.size, resourceVersion: rv });
    this.syncedLatch.open();
  }

  private async watchOnce(signal: AbortSignal): Promise<void> {
    const rv = this.resourceVersion;
    if (rv === undefined) return;
    const transform = this.opts.transform ?? ((o: KubeObject) => o as T);
    let failure: Error | undefined;
    const inner = new AbortController();
    const onAbort = (): void => inner.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    this.watches++;
    try {
      const timeoutSeconds = this.opts.watchTimeoutSeconds?.() ?? 300 + Math.floor(Math.random() * 300);
      await this.opts.client.watch({ resourceVersion: rv, timeoutSeconds, signal: inner.signal }, (type, object) => {
        if (failure !== undefined) return;
        if (type === 'ERROR') {
          const status = object as { code?: number; message?: string; reason?: string } | undefined;
          failure =
            status?.code === 410 || status?.reason === 'Expired' || status?.reason === 'Gone'
              ? new GoneError(status.message ?? 'watch expired')
              : new AntreaError('K8S_WATCH_ERROR', `watch error: ${status?.message ?? JSON.stringify(object)}`);
          inner.abort();
          return;
        }
        const raw = object as KubeObject | undefined;
        const newRv = raw?.metadata?.resourceVersion;
        if (type === 'BOOKMARK') {
          if (newRv !== undefined) this.resourceVersion = newRv;
          return;
        }
        if (raw === undefined || (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED')) return;
        this.backoff.reset();
        const obj = transform(raw);
        const key = objectKey(obj);
        const old = this.cache.get(key);
        if (type === 'DELETED') {
          this.cache.delete(key);
          this.dispatch('DELETED', old ?? obj, old);
        } else {
          this.cache.set(key, obj);
          this.dispatch(old === undefined ? 'ADDED' : 'MODIFIED', obj, old);
        }
        if (newRv !== undefined) this.resourceVersion = newRv;
      });
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    if (failure !== undefined) throw failure;
  }

  private dispatch(type: InformerEventType, obj: T, old: T | undefined): void {
    for (const h of this.handlers) {
      try {
        h(type, obj, old);
      } catch (err) {
        this.log.error('informer handler failed', { type, key: objectKey(obj), err: errorMessage(err) });
      }
    }
  }
}

function isTimeout(err: unknown): boolean {
  return (
    err instanceof Error && (err.name === 'TimeoutError' || (err as { code?: unknown }).code === 'K8S_WATCH_TIMEOUT')
  );
}
