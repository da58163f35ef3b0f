/**
 * The one error class of the OVSDB client and the bridge client. Its `code` tells apart what went
 * wrong where:
 *
 * | code                        | kind          | meaning                                                            |
 * | --------------------------- | ------------- | ------------------------------------------------------------------ |
 * | `OVSDB_CONNECT_FAILED`      | transport     | the endpoint cannot be reached (daemon not running, bad path)      |
 * | `OVSDB_DISCONNECTED`        | transport     | not connected, or the connection dropped while a request was open  |
 * | `OVSDB_TIMEOUT`             | transport     | no reply in time (or a `wait` / ofport wait ran out)               |
 * | `OVSDB_RPC_ERROR`           | rpc           | the server answered the JSON-RPC request itself with an error      |
 * | `OVSDB_PROTOCOL_ERROR`      | rpc           | the peer sent something that is not valid JSON-RPC / OVSDB         |
 * | `OVSDB_TRANSACTION_FAILED`  | transaction   | every operation succeeded but the commit failed (integrity, index) |
 * | `OVSDB_OPERATION_FAILED`    | operation     | one operation failed; `opIndex`, `table`, `column`, `value` say which |
 * | `OVSDB_INVALID_OPERATION`   | validation    | rejected before sending: the schema has no such table/column, or the value has the wrong type |
 * | `OVSDB_NOT_FOUND`           | bridge        | the bridge or port named does not exist                            |
 * | `OVSDB_CONFLICT`            | bridge        | the name is taken by something incompatible (a port on another bridge) |
 * | `OVSDB_PORT_FAILED`         | bridge        | ovs-vswitchd could not create the interface (ofport -1)            |
 */
import { AntreaError } from '../../util/errors.ts';

export const OVSDB_ERROR_KINDS = {
  OVSDB_CONNECT_FAILED: 'transport',
  OVSDB_DISCONNECTED: 'transport',
  OVSDB_TIMEOUT: 'transport',
  OVSDB_RPC_ERROR: 'rpc',
  OVSDB_PROTOCOL_ERROR: 'rpc',
  OVSDB_TRANSACTION_FAILED: 'transaction',
  OVSDB_OPERATION_FAILED: 'operation',
  OVSDB_INVALID_OPERATION: 'validation',
  OVSDB_NOT_FOUND: 'bridge',
  OVSDB_CONFLICT: 'bridge',
  OVSDB_PORT_FAILED: 'bridge',
} as const;

export type OvsdbErrorCode = keyof typeof OVSDB_ERROR_KINDS;
export type OvsdbErrorKind = (typeof OVSDB_ERROR_KINDS)[OvsdbErrorCode];

/** What an error is about, as far as it is known. */
export interface OvsdbErrorContext {
  /** Index of the failing operation within the transaction. */
  readonly opIndex?: number;
  /** The operation name (`insert`, `mutate`, ...). */
  readonly op?: string;
  readonly table?: string;
  readonly column?: string;
  /** The offending value, as sent (JSON). */
  readonly value?: unknown;
  /** The server's error string (`constraint violation`, `referential integrity violation`, ...). */
  readonly ovsdbError?: string;
  /** The server's `details` text. */
  readonly ovsdbDetails?: string;
  /** The endpoint the client talks to. */
  readonly endpoint?: string;
  /** Bridge or port names for bridge-level errors. */
  readonly bridge?: string;
  readonly port?: string;
}

export class OvsdbError extends AntreaError<OvsdbErrorCode> {
  readonly opIndex: number | undefined;
  readonly op: string | undefined;
  readonly table: string | undefined;
  readonly column: string | undefined;
  readonly value: unknown;
  readonly ovsdbError: string | undefined;
  readonly ovsdbDetails: string | undefined;

  constructor(code: OvsdbErrorCode, message: string, context: OvsdbErrorContext = {}, cause?: unknown) {
    const details: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(context)) if (v !== undefined) details[k] = v;
    super(code, message, { details, cause });
    this.opIndex = context.opIndex;
    this.op = context.op;
    this.table = context.table;
    this.column = context.column;
    this.value = context.value;
    this.ovsdbError = context.ovsdbError;
    this.ovsdbDetails = context.ovsdbDetails;
  }

  /** transport, rpc, transaction, operation, validation or bridge. */
  get kind(): OvsdbErrorKind {
    return OVSDB_ERROR_KINDS[this.code];
  }
}

/** True if `err` is an OvsdbError, optionally with one of the given codes. */
export function isOvsdbError(err: unknown, ...codes: OvsdbErrorCode[]): err is OvsdbError {
  return err instanceof OvsdbError && (codes.length === 0 || codes.includes(err.code));
}
