/**
 * The OVSDB client (RFC 7047): one JSON-RPC session at a time to ovsdb-server, re-established with
 * backoff whenever it drops. On every (re)connect it fetches the schema, issues `monitor_cond`
 * (falling back to `monitor` on servers without it) for the configured tables and rebuilds the local
 * cache from the initial contents. It answers the server's echo requests and sends its own when the
 * line is quiet, treating a missed reply as a dead connection.
 *
 * Requests made while disconnected fail at once with OVSDB_DISCONNECTED; requests open when the
 * connection drops fail with OVSDB_DISCONNECTED too (a transaction may or may not have been
 * committed then: re-read the cache after reconnecting). Await {@link OvsdbClient.whenConnected} to
 * wait for the connection.
 */
import { Backoff } from '../../util/backoff.ts';
import { type Clock, type TimerHandle, abortReason, systemClock } from '../../util/clock.ts';
import { errorMessage } from '../../util/errors.ts';
import { type Logger, nullLogger } from '../../util/log.ts';
import { aborted, type Runnable } from '../../util/runnable.ts';
import { OvsdbCache, type OvsdbCacheView, type TableUpdates, type TableUpdates2 } from './cache.ts';
import { isOvsdbError, OvsdbError, type OvsdbErrorContext } from './errors.ts';
import { JsonRpcConnection } from './jsonrpc.ts';
import type { Operation, OperationResult } from './operations.ts';
import { type DatabaseSchema, parseSchema, validateOperations } from './schema.ts';
import { type Connector, formatEndpoint, netConnector, parseEndpoint } from './transport.ts';

export const OVS_DATABASE = 'Open_vSwitch';

/** Columns to monitor per table; `'all'` monitors every non-ephemeral column of the table. */
export type MonitorSpec = Readonly<Record<string, readonly string[] | 'all'>>;

/**
 * What the agent monitors by default: the bridge, port and interface columns it reads, without the
 * counters ovs-vswitchd rewrites every few seconds (statistics, status).
 */
export const DEFAULT_MONITOR: MonitorSpec = {
  Open_vSwitch: [
    'bridges',
    'other_config',
    'external_ids',
    'ovs_version',
    'db_version',
    'datapath_types',
    'iface_types',
  ],
  Bridge: ['name', 'ports', 'datapath_type', 'datapath_id', 'protocols', 'fail_mode', 'other_config', 'external_ids'],
  Port: ['name', 'interfaces', 'external_ids', 'other_config', 'tag', 'trunks', 'vlan_mode'],
  Interface: [
    'name',
    'type',
    'options',
    'ofport',
    'ofport_request',
    'external_ids',
    'other_config',
    'error',
    'mac',
    'mac_in_use',
    'mtu',
    'mtu_request',
    'admin_state',
    'link_state',
    'ifindex',
  ],
};

/** Indexes kept by default: rows by name. */
export const DEFAULT_INDEXES: Readonly<Record<string, readonly string[]>> = {
  Bridge: ['name'],
  Port: ['name'],
  Interface: ['name'],
};

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'backoff' | 'closed';

export interface OvsdbClientOptions {
  /** `unix:PATH` or `tcp:HOST:PORT`. */
  readonly endpoint: string;
  /** Opens the stream; defaults to a unix/TCP connector for `endpoint`. */
  readonly connector?: Connector;
  /** Database name (default Open_vSwitch). */
  readonly database?: string;
  /** Tables and columns kept in the cache (default {@link DEFAULT_MONITOR}; `{}` for none). */
  readonly monitor?: MonitorSpec;
  readonly cacheIndexes?: Readonly<Record<string, readonly string[]>>;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Reconnect backoff (default 200 ms doubling to 5 s). */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number; readonly random?: () => number };
  /** Send an echo after this long without traffic; a missed reply within the same time drops the connection. 0 disables (default 5000). */
  readonly echoIntervalMs?: number;
  /** Default request timeout (default 30 s). */
  readonly requestTimeoutMs?: number;
  /** TCP/unix connect timeout (default 5 s). */
  readonly connectTimeoutMs?: number;
}

export interface TransactOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Check the operations against the schema before sending (default true). */
  readonly validate?: boolean;
}

/** The part of the client that writes (what the bridge client and fakes of it need). */
export interface OvsdbTransactor {
  readonly database: string;
  readonly cache: OvsdbCacheView;
  /**
   * Runs the operations as one transaction and returns one result per operation. Throws an
   * OvsdbError: OVSDB_INVALID_OPERATION (rejected before sending), OVSDB_OPERATION_FAILED (one
   * operation failed; nothing was committed), OVSDB_TRANSACTION_FAILED (the commit failed; nothing
   * was committed), or a transport/rpc code.
   */
  transact(operations: readonly Operation[], opts?: TransactOptions): Promise<OperationResult[]>;
}

const MONITOR_ID = 'antrea-ts';

export class OvsdbClient implements Runnable, OvsdbTransactor {
  readonly database: string;
  readonly endpoint: string;
  readonly cache: OvsdbCache;
  private readonly connector: Connector;
  private readonly monitorSpec: MonitorSpec;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly opts: OvsdbClientOptions;
  private conn: JsonRpcConnection | undefined;
  private currentSchema: DatabaseSchema | undefined;
  private connState: ConnectionState = 'idle';
  private lastErr: unknown;
  /**
   * Monitor notifications that arrive on a connection before its initial monitor reply has been
   * applied (the reply resolves a promise, while a notification in the same read is handled at
   * once); they are replayed, in order, right after the reply.
   */
  private early: { conn: JsonRpcConnection; updates: [string, unknown][] } | undefined;
  private running = false;
  private ownAbort: AbortController | undefined;
  private runPromise: Promise<void> | undefined;
  private readonly stateListeners = new Set<(state: ConnectionState) => void>();
  private connects = 0;

  constructor(opts: OvsdbClientOptions) {
    this.opts = opts;
    this.database = opts.database ?? OVS_DATABASE;
    this.connector =
      opts.connector ?? netConnector(parseEndpoint(opts.endpoint, 'endpoint'), opts.connectTimeoutMs ?? 5000);
    this.endpoint = opts.connector === undefined ? formatEndpoint(parseEndpoint(opts.endpoint)) : opts.endpoint;
    this.monitorSpec = opts.monitor ?? DEFAULT_MONITOR;
    this.logger = (opts.logger ?? nullLogger).child({ component: 'ovsdb', endpoint: this.endpoint });
    this.clock = opts.clock ?? systemClock;
    this.cache = new OvsdbCache({ indexes: opts.cacheIndexes ?? DEFAULT_INDEXES, logger: this.logger });
  }

  /**
   * Creates a client, starts it in the background and waits for the first connection (default
   * timeout 10 s). Rejects with OVSDB_CONNECT_FAILED (carrying the last error) if it does not
   * connect in time; nothing is left running then. Stop it with {@link close}.
   */
  static async connect(opts: OvsdbClientOptions & { readonly timeoutMs?: number }): Promise<OvsdbClient> {
    const client = new OvsdbClient(opts);
    client.start();
    try {
      await client.whenConnected({ timeoutMs: opts.timeoutMs ?? 10_000 });
    } catch (err) {
      await client.close();
      throw err;
    }
    return client;
  }

  /** Runs {@link run} in the background until {@link close}. Idempotent. */
  start(): void {
    if (this.ownAbort !== undefined) return;
    this.ownAbort = new AbortController();
    this.runPromise = this.run(this.ownAbort.signal).catch((err: unknown) => {
      this.logger.error('ovsdb client stopped with an error', { err });
    });
  }

  /** Stops a client started with {@link start} or {@link connect}; resolves once it stopped. Idempotent. */
  async close(): Promise<void> {
    this.ownAbort?.abort(new OvsdbError('OVSDB_DISCONNECTED', 'client closed', { endpoint: this.endpoint }));
    await this.runPromise;
  }

  get state(): ConnectionState {
    return this.connState;
  }

  get isConnected(): boolean {
    return this.connState === 'connected';
  }

  /** The schema fetched on the last connect. */
  get schema(): DatabaseSchema | undefined {
    return this.currentSchema;
  }

  /** The last connection or handshake error (for diagnostics). */
  get lastError(): unknown {
    return this.lastErr;
  }

  /** How many times a session was established (1 after the first connect). */
  get connectCount(): number {
    return this.connects;
  }

  /** Calls `listener` on every state change; returns an unsubscribe function. */
  onStateChange(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /**
   * Resolves when connected (at once if already). Rejects with OVSDB_CONNECT_FAILED after
   * `timeoutMs` (carrying the last connection error as cause), or OVSDB_DISCONNECTED if the client
   * stops first.
   */
  whenConnected(opts: { readonly timeoutMs?: number; readonly signal?: AbortSignal } = {}): Promise<void> {
    if (this.connState === 'connected') return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let timer: TimerHandle | undefined;
      const finish = (err?: unknown): void => {
        unsubscribe();
        timer?.cancel();
        opts.signal?.removeEventListener('abort', onAbort);
        if (err === undefined) resolve();
        else reject(err instanceof Error ? err : new Error(errorMessage(err)));
      };
      const unsubscribe = this.onStateChange((s) => {
        if (s === 'connected') finish();
        else if (s === 'closed') finish(new OvsdbError('OVSDB_DISCONNECTED', 'client stopped', this.ctx()));
      });
      const onAbort = (): void => finish(abortReason(opts.signal));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (this.connState === 'closed') finish(new OvsdbError('OVSDB_DISCONNECTED', 'client stopped', this.ctx()));
      if (opts.timeoutMs !== undefined) {
        timer = this.clock.setTimer(opts.timeoutMs, () => {
          const last = this.lastErr;
          const why = last === undefined ? 'no connection yet' : errorMessage(last);
          finish(
            new OvsdbError(
              'OVSDB_CONNECT_FAILED',
              `not connected to ${this.endpoint} after ${opts.timeoutMs}ms: ${why}`,
              this.ctx(),
              last,
            ),
          );
        });
      }
    });
  }

  /** Keeps a session to the server until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    if (this.running) throw new Error('OvsdbClient.run is already running');
    this.running = true;
    const b = this.opts.backoff ?? { initialMs: 200, maxMs: 5000 };
    const backoff = new Backoff({ initialMs: b.initialMs, maxMs: b.maxMs, ...(b.random ? { random: b.random } : {}) });
    try {
      while (!signal.aborted) {
        let conn: JsonRpcConnection | undefined;
        let echo: TimerHandle | undefined;
        try {
          this.setState('connecting');
          const stream = await this.connector(signal);
          const c = new JsonRpcConnection(
            stream,
            { onNotification: (method, params) => this.onNotification(c, method, params) },
            {
              logger: this.logger,
              clock: this.clock,
              requestTimeoutMs: this.opts.requestTimeoutMs ?? 30_000,
              endpoint: this.endpoint,
            },
          );
          conn = c;
          await this.handshake(c, signal);
          this.conn = c;
          this.connects++;
          backoff.reset();
          this.lastErr = undefined;
          this.logger.info('connected', { connects: this.connects });
          this.setState('connected');
          echo = this.startEcho(c);
          const reason = await Promise.race([c.closed, aborted(signal).then(() => undefined)]);
          if (reason !== undefined) {
            this.lastErr = reason;
            this.logger.warn('connection lost', { reason: reason.message });
          }
        } catch (err) {
          if (isAborted(signal)) break;
          this.lastErr = err;
          this.logger.warn('connection attempt failed', { err: errorMessage(err) });
        } finally {
          echo?.cancel();
          this.conn = undefined;
          conn?.close(new OvsdbError('OVSDB_DISCONNECTED', 'connection closed', this.ctx()));
        }
        if (isAborted(signal)) break;
        const delay = backoff.next();
        this.setState('backoff');
        this.logger.debug('reconnecting', { delayMs: Math.round(delay) });
        await this.clock.sleep(delay, signal).catch(() => undefined);
      }
    } finally {
      this.running = false;
      this.setState('closed');
    }
  }

  /**
   * Runs a transaction (see {@link OvsdbTransactor.transact}). `wait` operations extend the request
   * timeout by their own timeout.
   */
  async transact(operations: readonly Operation[], opts: TransactOptions = {}): Promise<OperationResult[]> {
    if (opts.validate !== false && this.currentSchema !== undefined) {
      validateOperations(this.currentSchema, operations);
    }
    const conn = this.requireConnection('transact');
    const waitMs = Math.max(0, ...operations.map((o) => (o.op === 'wait' ? (o.timeout ?? 0) : 0)));
    const timeoutMs = opts.timeoutMs ?? (this.opts.requestTimeoutMs ?? 30_000) + waitMs;
    const result = await conn.request('transact', [this.database, ...operations], {
      timeoutMs,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return interpretTransactResult(operations, result, this.endpoint);
  }

  /** Sends any JSON-RPC request on the current session (for methods without a wrapper here). */
  async request(
    method: string,
    params: unknown,
    opts: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<unknown> {
    return this.requireConnection(method).request(method, params, opts);
  }

  /** Round-trips an echo; resolves with the time it took in ms. */
  async echo(timeoutMs?: number): Promise<number> {
    const t0 = this.clock.monotonic();
    await this.request('echo', ['ping'], timeoutMs === undefined ? {} : { timeoutMs });
    return this.clock.monotonic() - t0;
  }

  private ctx(): OvsdbErrorContext {
    return { endpoint: this.endpoint };
  }

  private requireConnection(what: string): JsonRpcConnection {
    const c = this.conn;
    if (c === undefined || !c.isOpen || this.connState !== 'connected') {
      const last = this.lastErr;
      throw new OvsdbError(
        'OVSDB_DISCONNECTED',
        `${what}: not connected to ${this.endpoint}${last === undefined ? '' : ` (${errorMessage(last)})`}`,
        this.ctx(),
        last,
      );
    }
    return c;
  }

  private setState(s: ConnectionState): void {
    if (this.connState === s) return;
    this.connState = s;
    for (const l of [...this.stateListeners]) {
      try {
        l(s);
      } catch (err) {
        this.logger.error('state listener failed', { err });
      }
    }
  }

  private async handshake(c: JsonRpcConnection, signal: AbortSignal): Promise<void> {
    const early: [string, unknown][] = [];
    this.early = { conn: c, updates: early }; // handshakes never overlap (one connection at a time)
    const timeoutMs = this.opts.requestTimeoutMs ?? 30_000;
    const schema = parseSchema(await c.request('get_schema', [this.database], { timeoutMs, signal }));
    const monitored = new Map<string, readonly string[]>();
    for (const [table, cols] of Object.entries(this.monitorSpec)) {
      const ts = schema.tables.get(table);
      if (ts === undefined) {
        this.logger.warn('monitored table not in schema; skipped', { table });
        continue;
      }
      const all = [...ts.columns.values()].filter((col) => !col.name.startsWith('_') && !col.ephemeral);
      const wanted = cols === 'all' ? all.map((col) => col.name) : cols.filter((col) => ts.columns.has(col));
      if (cols !== 'all' && wanted.length !== cols.length) {
        this.logger.warn('monitored columns not in schema; skipped', {
          table,
          columns: cols.filter((col) => !ts.columns.has(col)),
        });
      }
      monitored.set(table, wanted);
    }
    this.currentSchema = schema;
    if (monitored.size === 0) {
      this.cache.configure(schema, monitored);
      this.cache.replaceAll({}, 'update2');
      this.early = undefined;
      return;
    }
    const requests2: Record<string, unknown> = {};
    for (const [table, columns] of monitored) requests2[table] = [{ columns }];
    let initial: unknown;
    let format: 'update2' | 'update' = 'update2';
    try {
      initial = await c.request('monitor_cond', [this.database, MONITOR_ID, requests2], { timeoutMs, signal });
    } catch (err) {
      if (!(isOvsdbError(err, 'OVSDB_RPC_ERROR') && /unknown method/i.test(err.message))) throw err;
      format = 'update';
      const requests: Record<string, unknown> = {};
      for (const [table, columns] of monitored) requests[table] = { columns };
      initial = await c.request('monitor', [this.database, MONITOR_ID, requests], { timeoutMs, signal });
    }
    if (typeof initial !== 'object' || initial === null) {
      throw new OvsdbError('OVSDB_PROTOCOL_ERROR', 'monitor reply is not an object', this.ctx());
    }
    this.cache.configure(schema, monitored);
    this.cache.replaceAll(initial as TableUpdates2 | TableUpdates, format);
    this.early = undefined;
    for (const [method, params] of early) this.onNotification(c, method, params);
  }

  private onNotification(c: JsonRpcConnection, method: string, params: unknown): void {
    if (method !== 'update2' && method !== 'update') return;
    if (!Array.isArray(params) || params.length < 2 || params[0] !== MONITOR_ID) return;
    if (this.early?.conn === c) {
      this.early.updates.push([method, params]);
      return;
    }
    const updates = params[1] as unknown;
    if (typeof updates !== 'object' || updates === null) return;
    try {
      if (method === 'update2') this.cache.applyUpdate2(updates as TableUpdates2);
      else this.cache.applyUpdate(updates as TableUpdates);
    } catch (err) {
      // A cache that no longer matches the server is worse than a reconnect: force a resync.
      this.logger.error('cannot apply monitor update; resyncing', { err });
      c.close(err instanceof OvsdbError ? err : new OvsdbError('OVSDB_PROTOCOL_ERROR', errorMessage(err), this.ctx()));
    }
  }

  private startEcho(c: JsonRpcConnection): TimerHandle | undefined {
    const interval = this.opts.echoIntervalMs ?? 5000;
    if (interval <= 0) return undefined;
    let timer: TimerHandle | undefined;
    let stopped = false;
    const tick = (): void => {
      if (stopped || !c.isOpen) return;
      const idle = this.clock.monotonic() - c.lastReceivedAt;
      if (idle < interval) {
        timer = this.clock.setTimer(interval - idle, tick);
        return;
      }
      c.request('echo', ['keepalive'], { timeoutMs: interval }).then(
        () => {
          if (!stopped) timer = this.clock.setTimer(interval, tick);
        },
        (err: unknown) => {
          if (stopped || !c.isOpen) return;
          this.logger.warn('echo not answered; dropping the connection', { err: errorMessage(err) });
          c.close(
            new OvsdbError(
              'OVSDB_DISCONNECTED',
              `no echo reply within ${interval}ms: connection presumed dead`,
              this.ctx(),
              err,
            ),
          );
        },
      );
    };
    timer = this.clock.setTimer(interval, tick);
    return {
      cancel: () => {
        stopped = true;
        timer?.cancel();
      },
    };
  }
}

/** Reads `signal.aborted` afresh (the linter narrows the property across awaits). */
function isAborted(signal: AbortSignal): boolean {
  return signal.aborted;
}

const OP_PARSE_RE = /Parsing ovsdb operation (\d+) of \d+ failed/;

/**
 * Turns a `transact` result array into per-operation results, or throws the OvsdbError it reports:
 * an error at index < operations.length is that operation's (OVSDB_OPERATION_FAILED); an extra
 * element with an error is the commit's (OVSDB_TRANSACTION_FAILED).
 */
export function interpretTransactResult(
  operations: readonly Operation[],
  result: unknown,
  endpoint?: string,
): OperationResult[] {
  if (!Array.isArray(result)) {
    throw new OvsdbError('OVSDB_PROTOCOL_ERROR', `transact reply is not an array: ${JSON.stringify(result)}`);
  }
  const base: OvsdbErrorContext = endpoint === undefined ? {} : { endpoint };
  for (let i = 0; i < result.length; i++) {
    const r = result[i] as unknown;
    if (typeof r !== 'object' || r === null || typeof (r as { error?: unknown }).error !== 'string') continue;
    const { error, details, syntax } = r as { error: string; details?: unknown; syntax?: unknown };
    const det = typeof details === 'string' ? details : undefined;
    const text = `${error}${det === undefined ? '' : `: ${det}`}`;
    const about = describeServerError(det, typeof syntax === 'string' ? syntax : undefined);
    if (i < operations.length) {
      const m = det === undefined ? null : OP_PARSE_RE.exec(det);
      const opIndex = m === null ? i : Number(m[1]) - 1;
      const op = operations[opIndex];
      const table = about.table ?? (op !== undefined && 'table' in op ? op.table : undefined);
      const column = about.column ?? (op === undefined ? undefined : guessColumn(op, about.value));
      const label = op === undefined ? '' : ` (${op.op}${'table' in op ? ' ' + op.table : ''})`;
      throw new OvsdbError('OVSDB_OPERATION_FAILED', `operation ${opIndex}${label} failed: ${text}`, {
        ...base,
        opIndex,
        ...(op === undefined ? {} : { op: op.op }),
        ...(table === undefined ? {} : { table }),
        ...(column === undefined ? {} : { column }),
        ...(about.value === undefined ? {} : { value: about.value }),
        ovsdbError: error,
        ...(det === undefined ? {} : { ovsdbDetails: det }),
      });
    }
    throw new OvsdbError('OVSDB_TRANSACTION_FAILED', `transaction not committed: ${text}`, {
      ...base,
      ...(about.table === undefined ? {} : { table: about.table }),
      ...(about.column === undefined ? {} : { column: about.column }),
      ...(about.value === undefined ? {} : { value: about.value }),
      ovsdbError: error,
      ...(det === undefined ? {} : { ovsdbDetails: det }),
    });
  }
  if (result.length < operations.length) {
    throw new OvsdbError(
      'OVSDB_PROTOCOL_ERROR',
      `transact reply has ${result.length} results for ${operations.length} operations`,
      base,
    );
  }
  return result.slice(0, operations.length) as OperationResult[];
}

/** Group `i` of a match (always present for the patterns below). */
function g(m: RegExpExecArray, i: number): string {
  return m[i] ?? '';
}

/** Pulls table, column and value out of ovsdb-server's error details where its wording allows. */
function describeServerError(
  details: string | undefined,
  syntax: string | undefined,
): { table?: string; column?: string; value?: unknown } {
  const out: { table?: string; column?: string; value?: unknown } = {};
  if (syntax !== undefined) {
    try {
      out.value = JSON.parse(syntax) as unknown;
    } catch {
      out.value = syntax;
    }
  }
  if (details === undefined) return out;
  let m = /No column (\S+) in table (\S+?)\.?$/.exec(details);
  if (m !== null) return { ...out, column: g(m, 1), table: g(m, 2) };
  m = /(?:update|mutate) immutable column (\S+) in table (\S+?)\.?$/.exec(details);
  if (m !== null) return { ...out, column: g(m, 1), table: g(m, 2) };
  m = /^Table (\S+) column (\S+) row \S+ references nonexistent row (\S+) in table (\S+?)\.?$/.exec(details);
  if (m !== null) return { table: g(m, 1), column: g(m, 2), value: ['uuid', g(m, 3)] };
  m = /multiple rows in "([^"]+)" table to have identical values \((.*)\) for index on columns? "?([^".]+)"?/.exec(
    details,
  );
  if (m !== null) return { table: g(m, 1), value: g(m, 2), column: g(m, 3) };
  m = /No table named (\S+?)\.?$/.exec(details);
  if (m !== null) return { ...out, table: g(m, 1) };
  m = /^(\S+) is not (?:one of the allowed values|in the valid range)/.exec(details);
  if (m !== null && out.value === undefined) {
    const raw = g(m, 1);
    const n = Number(raw);
    out.value = Number.isNaN(n) ? raw : n;
  }
  return out;
}

/** The column of an insert/update row (or mutation) whose value matches what the server quoted. */
function guessColumn(op: Operation, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const wanted = JSON.stringify(value);
  const matches = (v: unknown): boolean => {
    const s = JSON.stringify(v);
    return s === wanted || s.includes(wanted);
  };
  const unique = (names: string[]): string | undefined => (new Set(names).size === 1 ? names[0] : undefined);
  if (op.op === 'insert' || op.op === 'update') {
    const hit = unique(Object.entries(op.row).flatMap(([k, v]) => (matches(v) ? [k] : [])));
    if (hit !== undefined) return hit;
  }
  if (op.op === 'mutate') {
    const hit = unique(op.mutations.flatMap((m) => (matches(m[2]) || JSON.stringify(m) === wanted ? [m[0]] : [])));
    if (hit !== undefined) return hit;
  }
  if ('where' in op) {
    return unique(op.where.flatMap((c) => (JSON.stringify(c) === wanted || matches(c[2]) ? [c[0]] : [])));
  }
  return undefined;
}
