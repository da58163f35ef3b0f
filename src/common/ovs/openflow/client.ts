/**
 * A reconnecting OpenFlow client: keeps one {@link OpenFlowConnection} to the switch, reconnecting
 * with exponential backoff when it drops (ovs-vswitchd restart, bridge re-creation), and runs the
 * registered connect handlers (table names, flow replay...) on every (re)connection before
 * {@link OpenFlowClient.ready} resolves.
 */
import { Backoff, type BackoffOptions } from '../../util/backoff.ts';
import { type Clock, abortReason, systemClock } from '../../util/clock.ts';
import { errorMessage } from '../../util/errors.ts';
import { type Logger, nullLogger } from '../../util/log.ts';
import type { Runnable } from '../../util/runnable.ts';
import { OpenFlowConnection, type OpenFlowConnectionOptions, type PacketInListener } from './connection.ts';
import { OpenFlowError } from './errors.ts';

export interface OpenFlowClientOptions extends OpenFlowConnectionOptions {
  /** Reconnect backoff (default 100 ms doubling to 5 s). */
  readonly backoff?: BackoffOptions;
}

/** Runs on every connection, in registration order, before the client reports ready. */
export type ConnectHandler = (conn: OpenFlowConnection, info: { readonly reconnect: boolean }) => Promise<void>;

export class OpenFlowClient implements Runnable {
  private readonly opts: OpenFlowClientOptions;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly handlers: ConnectHandler[] = [];
  private readonly packetInListeners = new Set<PacketInListener>();
  private conn: OpenFlowConnection | undefined;
  private readyConn: OpenFlowConnection | undefined;
  private waiters: ((c: OpenFlowConnection) => void)[] = [];
  private connects = 0;
  private running = false;

  constructor(opts: OpenFlowClientOptions) {
    this.opts = opts;
    this.logger = (opts.logger ?? nullLogger).child({ component: 'openflow-client', endpoint: opts.endpoint });
    this.clock = opts.clock ?? systemClock;
  }

  /** Registers a handler run on each connection; returns a function that removes it. */
  onConnect(handler: ConnectHandler): () => void {
    this.handlers.push(handler);
    return () => {
      const i = this.handlers.indexOf(handler);
      if (i >= 0) this.handlers.splice(i, 1);
    };
  }

  /** Receives packet-ins from whichever connection is current. */
  onPacketIn(listener: PacketInListener): () => void {
    this.packetInListeners.add(listener);
    return () => this.packetInListeners.delete(listener);
  }

  /** How many times a connection was established (1 after the first). */
  get connectCount(): number {
    return this.connects;
  }

  /** The ready connection; throws OPENFLOW_DISCONNECTED when there is none right now. */
  connection(): OpenFlowConnection {
    const c = this.readyConn;
    if (c === undefined || c.isClosed) {
      throw new OpenFlowError('OPENFLOW_DISCONNECTED', `${this.opts.endpoint}: not connected`);
    }
    return c;
  }

  /** Resolves with the connection once connected and all connect handlers ran. */
  ready(signal?: AbortSignal): Promise<OpenFlowConnection> {
    const c = this.readyConn;
    if (c !== undefined && !c.isClosed) return Promise.resolve(c);
    return new Promise((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(abortReason(signal));
        return;
      }
      const onAbort = (): void => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(abortReason(signal));
      };
      const waiter = (conn: OpenFlowConnection): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(conn);
      };
      this.waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Connects, and reconnects with backoff whenever the connection drops, until `signal` aborts.
   * A connect handler that fails closes that connection and is retried on the next one.
   */
  async run(signal: AbortSignal): Promise<void> {
    if (this.running) throw new OpenFlowError('OPENFLOW_HANDSHAKE', 'OpenFlowClient.run() is already running');
    this.running = true;
    const backoff = new Backoff(this.opts.backoff ?? { initialMs: 100, maxMs: 5_000 });
    const onAbort = (): void => this.conn?.close();
    // Read through a function: the loop condition would otherwise narrow `aborted` to false.
    const stopped = (): boolean => signal.aborted;
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (!signal.aborted) {
        let conn: OpenFlowConnection;
        try {
          conn = await OpenFlowConnection.connect(this.opts);
        } catch (err) {
          const delay = backoff.next();
          this.logger.debug('connect failed; retrying', { error: errorMessage(err), delayMs: Math.round(delay) });
          await this.clock.sleep(delay, signal).catch(() => undefined);
          continue;
        }
        if (stopped()) {
          conn.close();
          break;
        }
        this.conn = conn;
        const reconnect = this.connects > 0;
        this.connects++;
        const offPin = conn.onPacketIn((pin) => {
          for (const l of this.packetInListeners) l(pin);
        });
        try {
          for (const h of [...this.handlers]) await h(conn, { reconnect });
          backoff.reset();
          this.readyConn = conn;
          this.logger.info(reconnect ? 'reconnected' : 'connected', { datapathId: conn.datapathId.toString(16) });
          const waiters = this.waiters;
          this.waiters = [];
          for (const w of waiters) w(conn);
        } catch (err) {
          this.logger.warn('connect handler failed; reconnecting', { error: errorMessage(err) });
          conn.close();
        }
        await conn.closed;
        offPin();
        this.readyConn = undefined;
        this.conn = undefined;
        if (!stopped()) await this.clock.sleep(backoff.next(), signal).catch(() => undefined);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.conn?.close();
      this.conn = undefined;
      this.readyConn = undefined;
      this.running = false;
    }
  }
}
