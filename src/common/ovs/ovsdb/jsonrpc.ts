/**
 * JSON-RPC 1.0 as OVSDB uses it (RFC 7047 §4): JSON objects written back to back on a byte stream,
 * with no delimiter. {@link JsonStreamParser} cuts the stream into values; {@link JsonRpcConnection}
 * matches replies to requests, routes notifications and requests from the peer, and fails every open
 * request with a typed error when the stream closes.
 */
import type { Duplex } from 'node:stream';
import { type Clock, type TimerHandle, systemClock, abortReason } from '../../util/clock.ts';
import { errorMessage } from '../../util/errors.ts';
import { type Logger, nullLogger } from '../../util/log.ts';
import { OvsdbError } from './errors.ts';

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/**
 * Splits a byte stream into top-level JSON objects/arrays. Structural characters are ASCII, so the
 * scan works on bytes; multi-byte UTF-8 sequences never contain them.
 */
export class JsonStreamParser {
  private readonly maxBytes: number;
  private parts: Buffer[] = [];
  private partsLen = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;

  constructor(maxBytes = 64 * 1024 * 1024) {
    this.maxBytes = maxBytes;
  }

  /** Feeds bytes; returns the values completed by them. Throws OVSDB_PROTOCOL_ERROR on garbage. */
  push(chunk: Buffer): unknown[] {
    const out: unknown[] = [];
    let start = this.depth === 0 ? -1 : 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i] as number;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (b === BACKSLASH) this.escaped = true;
        else if (b === QUOTE) this.inString = false;
        continue;
      }
      if (this.depth === 0) {
        if (isSpace(b)) continue;
        if (b !== OPEN_BRACE && b !== OPEN_BRACKET) {
          this.reset();
          throw new OvsdbError(
            'OVSDB_PROTOCOL_ERROR',
            `unexpected byte 0x${b.toString(16)} between JSON-RPC messages (expected "{")`,
          );
        }
        start = i;
        this.depth = 1;
        continue;
      }
      if (b === QUOTE) this.inString = true;
      else if (b === OPEN_BRACE || b === OPEN_BRACKET) this.depth++;
      else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
        this.depth--;
        if (this.depth === 0) {
          const piece = chunk.subarray(start, i + 1);
          const whole = this.parts.length === 0 ? piece : Buffer.concat([...this.parts, piece]);
          this.parts = [];
          this.partsLen = 0;
          start = -1;
          try {
            out.push(JSON.parse(whole.toString('utf8')));
          } catch (err) {
            this.reset();
            throw new OvsdbError('OVSDB_PROTOCOL_ERROR', `invalid JSON from peer: ${errorMessage(err)}`, {}, err);
          }
        }
      }
    }
    if (this.depth > 0 && start >= 0) {
      const rest = chunk.subarray(start);
      this.parts.push(rest);
      this.partsLen += rest.length;
      if (this.partsLen > this.maxBytes) {
        this.reset();
        throw new OvsdbError('OVSDB_PROTOCOL_ERROR', `JSON-RPC message larger than ${this.maxBytes} bytes`);
      }
    }
    return out;
  }

  private reset(): void {
    this.parts = [];
    this.partsLen = 0;
    this.depth = 0;
    this.inString = false;
    this.escaped = false;
  }
}

export interface JsonRpcHandlers {
  /** A notification (a request with a null id) from the peer. */
  onNotification?(method: string, params: unknown): void;
  /**
   * A request from the peer; the returned value is sent as the result. `echo` is answered
   * automatically and never reaches this handler. Unhandled methods get a JSON-RPC error reply.
   */
  onRequest?(method: string, params: unknown): unknown;
}

export interface RequestOptions {
  /** Fail with OVSDB_TIMEOUT after this long (default: the connection's default). */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface JsonRpcConnectionOptions {
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Default request timeout in ms (default 60 s). */
  readonly requestTimeoutMs?: number;
  /** Limit for one incoming message (default 64 MiB). */
  readonly maxMessageBytes?: number;
  /** Added to error contexts. */
  readonly endpoint?: string;
}

interface Pending {
  readonly method: string;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: Error) => void;
  readonly timer: TimerHandle | undefined;
  readonly cleanup: () => void;
}

/** One JSON-RPC session over a connected stream. Not reusable after it closes. */
export class JsonRpcConnection {
  private readonly stream: Duplex;
  private readonly handlers: JsonRpcHandlers;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly requestTimeoutMs: number;
  private readonly endpoint: string | undefined;
  private readonly parser: JsonStreamParser;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closeError: OvsdbError | undefined;
  private isClosed = false;
  private resolveClosed!: (err: OvsdbError | undefined) => void;
  /** Monotonic time of the last byte received. */
  lastReceivedAt: number;
  /** Resolves once the session ended, with the reason (undefined for a local close()). */
  readonly closed: Promise<OvsdbError | undefined>;

  constructor(stream: Duplex, handlers: JsonRpcHandlers, opts: JsonRpcConnectionOptions = {}) {
    this.stream = stream;
    this.handlers = handlers;
    this.logger = opts.logger ?? nullLogger;
    this.clock = opts.clock ?? systemClock;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 60_000;
    this.endpoint = opts.endpoint;
    this.parser = new JsonStreamParser(opts.maxMessageBytes);
    this.lastReceivedAt = this.clock.monotonic();
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', (err: Error) => this.fail(this.disconnected(`connection error: ${err.message}`, err)));
    stream.on('close', () => this.fail(this.disconnected('connection closed by peer')));
    stream.on('end', () => this.fail(this.disconnected('connection closed by peer')));
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  /** Number of requests awaiting a reply. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Sends a request and resolves with its result. Rejects with an OvsdbError. */
  request(method: string, params: unknown, opts: RequestOptions = {}): Promise<unknown> {
    if (this.isClosed) return Promise.reject(this.closeError ?? this.disconnected('connection is closed'));
    if (opts.signal?.aborted === true) return Promise.reject(abortReason(opts.signal));
    const id = this.nextId++;
    return new Promise<unknown>((resolve, reject) => {
      const timeoutMs = opts.timeoutMs ?? this.requestTimeoutMs;
      const timer =
        timeoutMs === Infinity
          ? undefined
          : this.clock.setTimer(timeoutMs, () => {
              this.settle(id)?.reject(
                new OvsdbError('OVSDB_TIMEOUT', `${method}: no reply after ${timeoutMs}ms`, this.ctx()),
              );
            });
      const onAbort = (): void => this.settle(id)?.reject(abortReason(opts.signal));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const cleanup = (): void => opts.signal?.removeEventListener('abort', onAbort);
      this.pending.set(id, { method, resolve, reject, timer, cleanup });
      this.send({ method, params, id });
    });
  }

  /** Sends a notification (no reply expected). */
  notify(method: string, params: unknown): void {
    if (!this.isClosed) this.send({ method, params, id: null });
  }

  /** Closes the session; open requests fail with OVSDB_DISCONNECTED. Idempotent. */
  close(reason?: OvsdbError): void {
    this.fail(reason, true);
  }

  private ctx(): { endpoint?: string } {
    return this.endpoint === undefined ? {} : { endpoint: this.endpoint };
  }

  private disconnected(message: string, cause?: unknown): OvsdbError {
    return new OvsdbError('OVSDB_DISCONNECTED', message, this.ctx(), cause);
  }

  private send(msg: unknown): void {
    try {
      this.stream.write(JSON.stringify(msg));
    } catch (err) {
      this.fail(this.disconnected(`write failed: ${errorMessage(err)}`, err));
    }
  }

  private settle(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (p === undefined) return undefined;
    this.pending.delete(id);
    p.timer?.cancel();
    p.cleanup();
    return p;
  }

  private fail(reason: OvsdbError | undefined, local = false): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closeError = reason;
    const err = reason ?? this.disconnected('connection closed');
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(err);
    this.stream.destroy();
    if (!local && reason !== undefined) this.logger.debug('json-rpc session ended', { reason: reason.message });
    this.resolveClosed(reason);
  }

  private onData(chunk: Buffer): void {
    this.lastReceivedAt = this.clock.monotonic();
    let messages: unknown[];
    try {
      messages = this.parser.push(chunk);
    } catch (err) {
      this.fail(err instanceof OvsdbError ? err : this.disconnected(errorMessage(err), err));
      return;
    }
    for (const m of messages) {
      if (this.isClosed) return;
      this.dispatch(m);
    }
  }

  private dispatch(m: unknown): void {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) {
      this.fail(new OvsdbError('OVSDB_PROTOCOL_ERROR', 'JSON-RPC message is not an object', this.ctx()));
      return;
    }
    const msg = m as Record<string, unknown>;
    const id = msg['id'];
    if (typeof msg['method'] === 'string') {
      const method = msg['method'];
      if (id === null || id === undefined) {
        this.safely(() => this.handlers.onNotification?.(method, msg['params']), method);
        return;
      }
      if (method === 'echo') {
        this.send({ result: msg['params'] ?? [], error: null, id });
        return;
      }
      if (this.handlers.onRequest === undefined) {
        this.send({ result: null, error: { error: 'unknown method', details: method }, id });
        return;
      }
      const handler = this.handlers.onRequest.bind(this.handlers);
      this.safely(() => this.send({ result: handler(method, msg['params']) ?? null, error: null, id }), method);
      return;
    }
    if (typeof id !== 'number') {
      this.logger.debug('reply with unknown id ignored', { id });
      return;
    }
    const p = this.settle(id);
    if (p === undefined) {
      this.logger.debug('late or unknown reply ignored', { id });
      return;
    }
    const error = msg['error'];
    if (error !== null && error !== undefined) {
      const e = error as { error?: unknown; details?: unknown };
      const what = typeof e.error === 'string' ? e.error : JSON.stringify(error);
      const details = typeof e.details === 'string' ? e.details : undefined;
      p.reject(
        new OvsdbError('OVSDB_RPC_ERROR', `${p.method}: ${what}${details === undefined ? '' : `: ${details}`}`, {
          ...this.ctx(),
          ovsdbError: what,
          ...(details === undefined ? {} : { ovsdbDetails: details }),
        }),
      );
      return;
    }
    p.resolve(msg['result']);
  }

  private safely(fn: () => void, method: string): void {
    try {
      fn();
    } catch (err) {
      this.logger.error('handler for peer message failed', { method, err });
    }
  }
}
