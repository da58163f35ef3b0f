/**
 * RFC 7047 transaction operations (§5.2) and their results, as plain JSON objects, with small
 * constructors so callers write `ops.insert('Port', row, 'port')` instead of object literals.
 */
import type { OvsdbRow, OvsdbValue, UuidAtom } from './values.ts';

export type ConditionFunction = '<' | '<=' | '==' | '!=' | '>=' | '>' | 'includes' | 'excludes';
export type Condition = readonly [column: string, fn: ConditionFunction, value: OvsdbValue];
export type Mutator = '+=' | '-=' | '*=' | '/=' | '%=' | 'insert' | 'delete';
export type Mutation = readonly [column: string, mutator: Mutator, value: OvsdbValue];

export interface InsertOp {
  readonly op: 'insert';
  readonly table: string;
  readonly row: OvsdbRow;
  /** Lets later operations in the same transaction refer to the new row as `["named-uuid", NAME]`. */
  readonly 'uuid-name'?: string;
}
export interface SelectOp {
  readonly op: 'select';
  readonly table: string;
  readonly where: readonly Condition[];
  readonly columns?: readonly string[];
}
export interface UpdateOp {
  readonly op: 'update';
  readonly table: string;
  readonly where: readonly Condition[];
  readonly row: OvsdbRow;
}
export interface MutateOp {
  readonly op: 'mutate';
  readonly table: string;
  readonly where: readonly Condition[];
  readonly mutations: readonly Mutation[];
}
export interface DeleteOp {
  readonly op: 'delete';
  readonly table: string;
  readonly where: readonly Condition[];
}
export interface WaitOp {
  readonly op: 'wait';
  readonly table: string;
  readonly where: readonly Condition[];
  readonly columns: readonly string[];
  readonly until: '==' | '!=';
  readonly rows: readonly OvsdbRow[];
  /** Milliseconds; the operation fails with "timed out" after this long. Absent: wait forever. */
  readonly timeout?: number;
}
export interface CommitOp {
  readonly op: 'commit';
  readonly durable: boolean;
}
export interface AbortOp {
  readonly op: 'abort';
}
export interface CommentOp {
  readonly op: 'comment';
  readonly comment: string;
}
export interface AssertOp {
  readonly op: 'assert';
  readonly lock: string;
}

export type Operation =
  InsertOp | SelectOp | UpdateOp | MutateOp | DeleteOp | WaitOp | CommitOp | AbortOp | CommentOp | AssertOp;

/** One element of a transaction's result array for an operation that succeeded. */
export interface OperationResult {
  /** insert: the new row's UUID. */
  readonly uuid?: UuidAtom;
  /** select: the matching rows. */
  readonly rows?: readonly OvsdbRow[];
  /** update, mutate, delete: the number of matching rows. */
  readonly count?: number;
}

export const ops = {
  insert(table: string, row: OvsdbRow, uuidName?: string): InsertOp {
    return uuidName === undefined ? { op: 'insert', table, row } : { op: 'insert', table, row, 'uuid-name': uuidName };
  },
  select(table: string, where: readonly Condition[], columns?: readonly string[]): SelectOp {
    return columns === undefined ? { op: 'select', table, where } : { op: 'select', table, where, columns };
  },
  update(table: string, where: readonly Condition[], row: OvsdbRow): UpdateOp {
    return { op: 'update', table, where, row };
  },
  mutate(table: string, where: readonly Condition[], mutations: readonly Mutation[]): MutateOp {
    return { op: 'mutate', table, where, mutations };
  },
  delete(table: string, where: readonly Condition[]): DeleteOp {
    return { op: 'delete', table, where };
  },
  wait(
    table: string,
    where: readonly Condition[],
    columns: readonly string[],
    until: '==' | '!=',
    rows: readonly OvsdbRow[],
    timeoutMs?: number,
  ): WaitOp {
    const base: WaitOp = { op: 'wait', table, where, columns, until, rows };
    return timeoutMs === undefined ? base : { ...base, timeout: timeoutMs };
  },
  comment(comment: string): CommentOp {
    return { op: 'comment', comment };
  },
} as const;

/** `[column, "==", value]`. */
export function eq(column: string, value: OvsdbValue): Condition {
  return [column, '==', value];
}
