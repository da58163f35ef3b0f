/**
 * One watch stream. A watcher applies its selector to each change of its resource type and turns
 * selector transitions into the events a real server sends (`cache_watcher.go`): entering the
 * selector is ADDED, leaving it is DELETED with the previous content and the new revision. Output is
 * buffered and flushed once per event-loop turn for all watchers together; a watcher whose client
 * does not keep up (more than `maxBufferedBytes` waiting) is cut off with a clean end of stream, like
 * the real cacher does, so one slow client never holds back the others.
 */
import type { Clock, TimerHandle } from '../../common/util/clock.ts';
import type { EventType, StoredEntry, StoreEvent } from './store.ts';
import type { JsonObject, KObject } from './types.ts';

/** The part of an HTTP response a watcher writes to. */
export interface WatchSink {
  write(chunk: Buffer): boolean;
  /** Writes several buffers as one unit (lets the sink frame and copy them once). */
  writeAll?(parts: readonly Buffer[], total: number): boolean;
  end(): void;
  readonly writableLength: number;
  once(event: 'drain', listener: () => void): unknown;
}

/** Encodes one event for this watcher (the default shares the store's pre-serialized lines). */
export type WatchEncoder = (type: EventType, obj: KObject, ev: StoreEvent | undefined, fromPrev: boolean) => Buffer;

export type WatchCloseReason = 'timeout' | 'slow' | 'client' | 'error' | 'server' | 'expired';

export interface WatcherOptions {
  readonly sink: WatchSink;
  readonly filter: (obj: KObject) => boolean;
  readonly clock: Clock;
  /** End the stream cleanly after this long. */
  readonly timeoutMs: number;
  readonly encoder?: WatchEncoder;
  /** Send a BOOKMARK this often (only when the client asked for bookmarks). */
  readonly bookmarkIntervalMs?: number;
  /** Builds the BOOKMARK object for a revision (apiVersion, kind, metadata.resourceVersion). */
  readonly bookmarkObject?: (rv: number, annotations?: Record<string, string>) => JsonObject;
  readonly currentRevision: () => number;
  readonly maxBufferedBytes?: number;
  readonly onClose: (w: Watcher, reason: WatchCloseReason) => void;
  /** Shared flush scheduler (default: once per event-loop turn). */
  readonly scheduler?: FlushScheduler;
}

/**
 * Flushes the output of many watchers together: once per event-loop turn, or after `delayMs` when
 * set (a short delay batches more events per write under load, at that much added latency).
 */
export class FlushScheduler {
  private readonly delayMs: number;
  private readonly dirty = new Set<Watcher>();
  private scheduled = false;

  constructor(delayMs = 0) {
    this.delayMs = delayMs;
  }

  mark(w: Watcher): void {
    this.dirty.add(w);
    if (this.scheduled) return;
    this.scheduled = true;
    const run = (): void => {
      this.scheduled = false;
      const list = [...this.dirty];
      this.dirty.clear();
      for (const x of list) x.flush();
    };
    if (this.delayMs > 0) setTimeout(run, this.delayMs);
    else setImmediate(run);
  }
}

const defaultScheduler = new FlushScheduler();

export class Watcher {
  private readonly opts: WatcherOptions;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private blocked = false;
  private closed = false;
  private endAfterFlush = false;
  private readonly timers: TimerHandle[] = [];
  /** Events this watcher has been sent (for tests and metrics). */
  sent = 0;

  constructor(opts: WatcherOptions) {
    this.opts = opts;
    this.timers.push(opts.clock.setTimer(opts.timeoutMs, () => this.close('timeout')));
    if (opts.bookmarkIntervalMs !== undefined && opts.bookmarkObject !== undefined) this.scheduleBookmark();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private scheduleBookmark(): void {
    const interval = this.opts.bookmarkIntervalMs ?? 60_000;
    this.timers.push(
      this.opts.clock.setTimer(interval, () => {
        if (this.closed) return;
        this.sendBookmark();
        this.scheduleBookmark();
      }),
    );
  }

  /** Sends a BOOKMARK at the current revision (optionally annotated, e.g. initial-events-end). */
  sendBookmark(annotations?: Record<string, string>): void {
    const make = this.opts.bookmarkObject;
    if (make === undefined || this.closed) return;
    const obj = make(this.opts.currentRevision(), annotations);
    this.enqueue(Buffer.from(`{"type":"BOOKMARK","object":${JSON.stringify(obj)}}\n`));
  }

  /** Handles one change of the watched type. */
  deliver(ev: StoreEvent): void {
    if (this.closed) return;
    const f = this.opts.filter;
    const before = ev.type !== 'ADDED' && ev.prev !== undefined && f(ev.prev);
    const after = ev.type !== 'DELETED' && f(ev.obj);
    let type: EventType;
    let fromPrev = false;
    if (ev.type === 'DELETED') {
      if (!before) return;
      type = 'DELETED';
    } else if (after && before) type = 'MODIFIED';
    else if (after) type = 'ADDED';
    else if (before) {
      type = 'DELETED';
      fromPrev = true;
    } else return;
    const enc = this.opts.encoder;
    this.enqueue(enc === undefined ? ev.line(type, fromPrev) : enc(type, ev.objectFor(fromPrev), ev, fromPrev));
  }

  /** Sends a synthetic ADDED for an existing object (initial events). */
  deliverInitial(entry: StoredEntry): void {
    if (this.closed || !this.opts.filter(entry.obj)) return;
    const enc = this.opts.encoder;
    this.enqueue(
      enc === undefined
        ? Buffer.from(`{"type":"ADDED","object":${entry.json}}\n`)
        : enc('ADDED', entry.obj, undefined, false),
    );
  }

  /** Sends an ERROR event carrying a Status and ends the stream. */
  fail(status: JsonObject, reason: WatchCloseReason = 'error'): void {
    if (this.closed) return;
    this.enqueue(Buffer.from(`{"type":"ERROR","object":${JSON.stringify(status)}}\n`));
    this.close(reason);
  }

  private enqueue(b: Buffer): void {
    if (this.closed) return;
    this.pending.push(b);
    this.pendingBytes += b.length;
    this.sent++;
    const limit = this.opts.maxBufferedBytes ?? 16 * 1024 * 1024;
    if (this.pendingBytes + this.opts.sink.writableLength > limit) {
      this.terminate('slow');
      return;
    }
    (this.opts.scheduler ?? defaultScheduler).mark(this);
  }

  /** Writes what is pending (called by the shared scheduler). */
  flush(): void {
    if (this.blocked || this.pending.length === 0) {
      if (this.endAfterFlush && !this.blocked && this.pending.length === 0) this.finish();
      return;
    }
    const data =
      this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    const ok = this.opts.sink.write(data);
    if (!ok) {
      this.blocked = true;
      this.opts.sink.once('drain', () => {
        this.blocked = false;
        this.flush();
      });
      return;
    }
    if (this.endAfterFlush) this.finish();
  }

  /** Ends the stream cleanly after what is pending has been written. */
  close(reason: WatchCloseReason): void {
    if (this.closed) return;
    this.closed = true;
    this.cancelTimers();
    this.opts.onClose(this, reason);
    this.endAfterFlush = true;
    if (this.pending.length === 0 && !this.blocked) this.finish();
    else (this.opts.scheduler ?? defaultScheduler).mark(this);
  }

  /** Drops what is pending and ends the stream (a client that does not keep up). */
  terminate(reason: WatchCloseReason): void {
    this.pending = [];
    this.pendingBytes = 0;
    if (this.closed) return;
    this.closed = true;
    this.cancelTimers();
    this.opts.onClose(this, reason);
    this.finish();
  }

  /** The client went away: stop without writing anything. */
  detach(): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.cancelTimers();
    this.opts.onClose(this, 'client');
  }

  private finish(): void {
    this.endAfterFlush = false;
    this.opts.sink.end();
  }

  private cancelTimers(): void {
    for (const t of this.timers) t.cancel();
    this.timers.length = 0;
  }
}
