/**
 * Fakes for unit tests of the OVSDB client and the bridge client:
 * - {@link FakeOvsdbServer}: an in-memory peer speaking OVSDB JSON-RPC over `duplexPair()` streams,
 *   with scripted replies, so connection handling (handshake, monitor, echo, drops, reconnects) is
 *   tested without a real ovsdb-server;
 * - {@link RecordingTransactor}: an OvsdbTransactor that records transactions (for golden JSON) and
 *   answers from a script, with a real OvsdbCache the test fills.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { duplexPair, type Duplex } from 'node:stream';
import { OvsdbCache, type TableUpdates2 } from '../../src/common/ovs/ovsdb/cache.ts';
import { DEFAULT_INDEXES, DEFAULT_MONITOR, type OvsdbTransactor } from '../../src/common/ovs/ovsdb/client.ts';
import { OvsdbError } from '../../src/common/ovs/ovsdb/errors.ts';
import { JsonStreamParser } from '../../src/common/ovs/ovsdb/jsonrpc.ts';
import type { Operation, OperationResult } from '../../src/common/ovs/ovsdb/operations.ts';
import { type DatabaseSchema, parseSchema } from '../../src/common/ovs/ovsdb/schema.ts';
import type { Connector } from '../../src/common/ovs/ovsdb/transport.ts';

export const SCHEMA_JSON: unknown = JSON.parse(
  readFileSync(join(import.meta.dirname, '..', 'unit', 'fixtures', 'vswitch-8.3.1.ovsschema'), 'utf8'),
);
export const SCHEMA: DatabaseSchema = parseSchema(SCHEMA_JSON);

/** Lets stream events and promise callbacks run (no timers involved). */
export async function settle(rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}

/** Polls `cond` between event-loop turns; throws if it never holds. */
export async function until(cond: () => boolean, what = 'condition', rounds = 500): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    if (cond()) return;
    await new Promise<void>((r) => setImmediate(r));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export interface Received {
  readonly method: string;
  readonly params: unknown;
  readonly id: unknown;
}

export type TransactHandler = (params: unknown[]) => unknown;

/** One accepted connection of the fake server. */
export class FakeSession {
  readonly received: Received[] = [];
  private readonly stream: Duplex;
  private readonly parser = new JsonStreamParser();
  private readonly server: FakeOvsdbServer;
  closed = false;

  constructor(stream: Duplex, server: FakeOvsdbServer) {
    this.stream = stream;
    this.server = server;
    stream.on('data', (chunk: Buffer) => {
      for (const m of this.parser.push(chunk)) this.onMessage(m as Record<string, unknown>);
    });
    stream.on('end', () => (this.closed = true));
    stream.on('close', () => (this.closed = true));
    stream.on('error', () => (this.closed = true));
  }

  send(msg: unknown): void {
    if (!this.closed) this.stream.write(JSON.stringify(msg));
  }

  /** Sends an update2 notification for the client's monitor. */
  notifyUpdate2(updates: TableUpdates2, monitorId = 'antrea-ts'): void {
    this.send({ method: 'update2', params: [monitorId, updates], id: null });
  }

  /** Drops the connection (as a crashing server would). */
  drop(): void {
    this.closed = true;
    this.stream.destroy();
  }

  private onMessage(m: Record<string, unknown>): void {
    const method = m['method'];
    if (typeof method !== 'string') return; // a reply to our own request
    const params = m['params'];
    const id = m['id'];
    this.received.push({ method, params, id });
    const reply = (result: unknown, error: unknown = null): void => this.send({ result, error, id });
    const s = this.server;
    switch (method) {
      case 'get_schema':
        reply(SCHEMA_JSON);
        return;
      case 'monitor_cond':
        if (!s.supportsMonitorCond) reply(null, { error: 'unknown method' });
        else if (s.updateWithMonitorReply === undefined) reply(s.initial2);
        else {
          // One write, so the client reads the reply and the notification in the same chunk.
          const note = { method: 'update2', params: [(params as unknown[])[1], s.updateWithMonitorReply], id: null };
          if (!this.closed)
            this.stream.write(JSON.stringify({ result: s.initial2, error: null, id }) + JSON.stringify(note));
        }
        return;
      case 'monitor':
        reply(s.initial1);
        return;
      case 'echo':
        if (s.answerEcho) reply(params);
        return;
      case 'transact': {
        if (s.holdTransactions) return;
        try {
          reply(s.onTransact((params as unknown[]).slice(1)));
        } catch (err) {
          reply(null, { error: String(err) });
        }
        return;
      }
      default:
        reply(null, { error: 'unknown method', details: method });
    }
  }
}

/** An in-memory OVSDB server reached through {@link FakeOvsdbServer.connector}. */
export class FakeOvsdbServer {
  readonly sessions: FakeSession[] = [];
  /** What monitor_cond returns (table-updates2). */
  initial2: TableUpdates2 = {};
  /** An update2 notification sent together with the monitor_cond reply (as a busy server may). */
  updateWithMonitorReply: TableUpdates2 | undefined;
  /** What monitor returns (table-updates). */
  initial1: unknown = {};
  supportsMonitorCond = true;
  answerEcho = true;
  holdTransactions = false;
  /** Refuse new connections (as if the daemon were not running). */
  refuse = false;
  connectAttempts = 0;
  onTransact: TransactHandler = (ops) => ops.map(() => ({}));

  get last(): FakeSession {
    const s = this.sessions.at(-1);
    if (s === undefined) throw new Error('no session yet');
    return s;
  }

  readonly connector: Connector = () => {
    this.connectAttempts++;
    if (this.refuse) {
      return Promise.reject(
        new OvsdbError('OVSDB_CONNECT_FAILED', 'cannot connect to fake: ECONNREFUSED', { endpoint: 'fake' }),
      );
    }
    const [client, server] = duplexPair();
    this.sessions.push(new FakeSession(server, this));
    return Promise.resolve(client);
  };
}

export interface RecordedTransaction {
  readonly ops: readonly Operation[];
}

/**
 * An OvsdbTransactor that records each transaction and answers with `respond` (default: an empty
 * result per operation, with a fresh UUID for inserts). Its cache is a real OvsdbCache configured
 * with the vswitch schema; tests fill it with {@link RecordingTransactor.load}.
 */
export class RecordingTransactor implements OvsdbTransactor {
  readonly database = 'Open_vSwitch';
  readonly cache = new OvsdbCache({ indexes: DEFAULT_INDEXES });
  readonly transactions: (readonly Operation[])[] = [];
  respond: (ops: readonly Operation[]) => OperationResult[] = (ops) =>
    ops.map((o, i) =>
      o.op === 'insert' ? { uuid: ['uuid', `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`] } : {},
    );

  constructor() {
    const monitored = new Map<string, readonly string[]>();
    for (const [t, cols] of Object.entries(DEFAULT_MONITOR)) if (cols !== 'all') monitored.set(t, cols);
    this.cache.configure(SCHEMA, monitored);
  }

  /** Replaces the cache content (update2 initial form). */
  load(initial: TableUpdates2): void {
    this.cache.replaceAll(initial, 'update2');
  }

  transact(ops: readonly Operation[]): Promise<OperationResult[]> {
    this.transactions.push(ops);
    try {
      return Promise.resolve(this.respond(ops));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }
}
