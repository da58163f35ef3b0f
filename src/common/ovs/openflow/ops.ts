/**
 * Switch operations on an {@link OpenFlowConnection}: flow/group/meter modifications (alone, as a
 * barrier-checked batch, or as one atomic bundle), and the multipart dumps (flows, groups, group
 * stats, meters, ports, table names).
 */
import { ValidationError } from '../../util/errors.ts';
import { ByteReader } from './bytes.ts';
import type { FlowModCommand } from './consts.ts';
import { OFPG_ALL, OFPM_ALL, OFPMP, OFPP } from './consts.ts';
import { type OpenFlowConnection, type TrackedMessage, trackedBytes } from './connection.ts';
import type { ByteWriter } from './bytes.ts';
import { Flow, type FlowFilter, type FlowStats, decodeFlowDesc, writeFlowMod } from './flow.ts';
import { Group, type GroupStats, decodeGroupDesc, decodeGroupStats, encodeGroupMod } from './group.ts';
import { Match } from './match.ts';
import { Meter, decodeMeterConfig, encodeMeterMod } from './meter.ts';
import {
  type PortDesc,
  type PortStats,
  type TableName,
  type TlvMapping,
  decodePortDescs,
  decodePortStats,
  decodeTableNames,
  encodeFlowDescRequest,
  encodeIdRequest,
  encodeTableNames,
  encodeTlvTableMod,
} from './messages.ts';

/** One modification of switch state. */
export type SwitchOp =
  | { readonly kind: 'flow'; readonly command: FlowModCommand; readonly flow: Flow }
  | {
      readonly kind: 'flows';
      readonly command: 'modify' | 'delete' | 'delete_strict';
      readonly filter: FlowFilter;
      readonly flow?: Flow;
    }
  | { readonly kind: 'group'; readonly command: 'add' | 'modify' | 'delete' | 'insert_bucket'; readonly group: Group }
  | { readonly kind: 'group_delete'; readonly groupId: number }
  | { readonly kind: 'meter'; readonly command: 'add' | 'modify' | 'delete'; readonly meter: Meter }
  | { readonly kind: 'meter_delete'; readonly meterId: number };

export const op = {
  addFlow: (flow: Flow): SwitchOp => ({ kind: 'flow', command: 'add', flow }),
  modifyFlow: (flow: Flow): SwitchOp => ({ kind: 'flow', command: 'modify_strict', flow }),
  deleteFlow: (flow: Flow): SwitchOp => ({ kind: 'flow', command: 'delete_strict', flow }),
  /**
   * Non-strict modify: gives every flow of `template.table` whose match is covered by
   * `template.match` (any priority; optionally only cookies equal to template.cookie under
   * `cookieMask`) the template's actions. Cookies are not changed (OpenFlow 1.5).
   */
  modifyFlows: (template: Flow, cookieMask = 0n): SwitchOp => ({
    kind: 'flows',
    command: 'modify',
    filter: { table: template.table, cookie: template.cookie, cookieMask, match: template.match },
    flow: template,
  }),
  /** Deletes every flow selected by the filter (non-strict: the match selects flows it covers). */
  deleteFlows: (filter: FlowFilter): SwitchOp => ({ kind: 'flows', command: 'delete', filter }),
  addGroup: (group: Group): SwitchOp => ({ kind: 'group', command: 'add', group }),
  modifyGroup: (group: Group): SwitchOp => ({ kind: 'group', command: 'modify', group }),
  deleteGroup: (groupId: number): SwitchOp => ({ kind: 'group_delete', groupId }),
  addMeter: (meter: Meter): SwitchOp => ({ kind: 'meter', command: 'add', meter }),
  modifyMeter: (meter: Meter): SwitchOp => ({ kind: 'meter', command: 'modify', meter }),
  deleteMeter: (meterId: number): SwitchOp => ({ kind: 'meter_delete', meterId }),
} as const;

const FLOW_MOD_NAMES: Readonly<Record<FlowModCommand, string>> = {
  add: 'OFPT_FLOW_MOD ADD',
  modify: 'OFPT_FLOW_MOD MODIFY',
  modify_strict: 'OFPT_FLOW_MOD MODIFY_STRICT',
  delete: 'OFPT_FLOW_MOD DELETE',
  delete_strict: 'OFPT_FLOW_MOD DELETE_STRICT',
};

function describeFilter(f: FlowFilter): string {
  const parts: string[] = [];
  if (f.cookie !== undefined)
    parts.push(`cookie=0x${f.cookie.toString(16)}/0x${(f.cookieMask ?? 0xffffffffffffffffn).toString(16)}`);
  if (f.table !== undefined) parts.push(`table=${f.table}`);
  if (f.priority !== undefined) parts.push(`priority=${f.priority}`);
  const m = f.match?.toString() ?? '';
  if (m !== '') parts.push(m);
  return parts.join(',') || '(all flows)';
}

function putBytes(w: ByteWriter, xid: number, bytes: Uint8Array): void {
  const start = w.length;
  w.bytes(bytes);
  w.setU32(start + 4, xid);
}

/** Encodes one operation as a message with a description for errors. */
export function encodeOp(o: SwitchOp, index?: number): TrackedMessage {
  const at = index === undefined ? {} : { index };
  switch (o.kind) {
    case 'flow':
      return {
        write: (w, xid) => writeFlowMod(w, xid, o.command, o.flow),
        describe: () => ({ message: FLOW_MOD_NAMES[o.command], text: o.flow.toString(), ...at }),
      };
    case 'flows':
      return {
        write: (w, xid) =>
          writeFlowMod(
            w,
            xid,
            o.command,
            o.flow ?? o.filter,
            o.flow === undefined ? {} : { cookieMask: o.filter.cookieMask ?? 0n },
          ),
        describe: () => ({ message: FLOW_MOD_NAMES[o.command], text: describeFilter(o.filter), ...at }),
      };
    case 'group':
      return {
        write: (w, xid) => putBytes(w, xid, encodeGroupMod(0, o.command, o.group)),
        describe: () => ({ message: `OFPT_GROUP_MOD ${o.command.toUpperCase()}`, text: o.group.toString(), ...at }),
      };
    case 'group_delete':
      return {
        write: (w, xid) => putBytes(w, xid, encodeGroupMod(0, 'delete', { groupId: o.groupId })),
        describe: () => ({
          message: 'OFPT_GROUP_MOD DELETE',
          text: o.groupId === OFPG_ALL ? 'group_id=all' : `group_id=${o.groupId}`,
          ...at,
        }),
      };
    case 'meter':
      return {
        write: (w, xid) => putBytes(w, xid, encodeMeterMod(0, o.command, o.meter)),
        describe: () => ({
          message: `OFPT_METER_MOD ${o.command.toUpperCase()}`,
          text: o.meter.toString().replace('\n', ' '),
          ...at,
        }),
      };
    case 'meter_delete':
      return {
        write: (w, xid) => putBytes(w, xid, encodeMeterMod(0, 'delete', { meterId: o.meterId })),
        describe: () => ({
          message: 'OFPT_METER_MOD DELETE',
          text: o.meterId === OFPM_ALL ? 'meter=all' : `meter=${o.meterId}`,
          ...at,
        }),
      };
  }
}

/**
 * Applies operations one after the other (not atomic) and resolves once the switch processed them;
 * rejects with the first failure, which names the failing operation.
 */
export async function apply(conn: OpenFlowConnection, ops: readonly SwitchOp[]): Promise<void> {
  await conn.sendAll(ops.map((o) => encodeOp(o)));
}

/**
 * Applies operations atomically: all of them or (on any error) none. Several operations go in one
 * bundle; a single one is sent alone (one message is atomic by itself), saving two round trips.
 */
export async function applyBundle(conn: OpenFlowConnection, ops: readonly SwitchOp[]): Promise<void> {
  const [only] = ops;
  if (ops.length === 1 && only !== undefined) {
    await conn.sendAll([encodeOp(only)]);
    return;
  }
  await conn.bundle(ops.map((o, i) => encodeOp(o, i)));
}

/** Deletes all flows, groups and meters (e.g. to start from a clean switch). */
export async function clearAll(conn: OpenFlowConnection, opts: { meters?: boolean } = {}): Promise<void> {
  const ops: SwitchOp[] = [op.deleteFlows({}), op.deleteGroup(OFPG_ALL)];
  if (opts.meters !== false) ops.push(op.deleteMeter(OFPM_ALL));
  await apply(conn, ops);
}

export async function dumpFlows(
  conn: OpenFlowConnection,
  filter: {
    table?: number;
    cookie?: bigint;
    cookieMask?: bigint;
    match?: Match;
    outPort?: number;
    outGroup?: number;
  } = {},
): Promise<FlowStats[]> {
  const bodies = await conn.multipart(OFPMP.FLOW_DESC, encodeFlowDescRequest(filter));
  const out: FlowStats[] = [];
  for (const b of bodies) {
    const r = new ByteReader(b);
    while (r.remaining >= 8) out.push(decodeFlowDesc(r));
  }
  return out;
}

export async function dumpGroups(conn: OpenFlowConnection, groupId = OFPG_ALL): Promise<Group[]> {
  const bodies = await conn.multipart(OFPMP.GROUP_DESC, encodeIdRequest(groupId));
  const out: Group[] = [];
  for (const b of bodies) {
    const r = new ByteReader(b);
    while (r.remaining >= 16) out.push(decodeGroupDesc(r));
  }
  return out;
}

export async function groupStats(conn: OpenFlowConnection, groupId = OFPG_ALL): Promise<GroupStats[]> {
  const bodies = await conn.multipart(OFPMP.GROUP_STATS, encodeIdRequest(groupId));
  const out: GroupStats[] = [];
  for (const b of bodies) {
    const r = new ByteReader(b);
    while (r.remaining >= 40) out.push(decodeGroupStats(r));
  }
  return out;
}

export async function dumpMeters(conn: OpenFlowConnection, meterId = OFPM_ALL): Promise<Meter[]> {
  const bodies = await conn.multipart(OFPMP.METER_DESC, encodeIdRequest(meterId));
  const out: Meter[] = [];
  for (const b of bodies) {
    const r = new ByteReader(b);
    while (r.remaining >= 8) out.push(decodeMeterConfig(r));
  }
  return out;
}

export async function portStats(conn: OpenFlowConnection, portNo: number = OFPP.ANY): Promise<PortStats[]> {
  return decodePortStats(await conn.multipart(OFPMP.PORT_STATS, encodeIdRequest(portNo)));
}

export async function portDescs(conn: OpenFlowConnection): Promise<PortDesc[]> {
  return decodePortDescs(await conn.multipart(OFPMP.PORT_DESC, encodeIdRequest(OFPP.ANY)));
}

/** The OpenFlow port number of the named port (as OVS reports it), or undefined if absent. */
export async function portNumber(conn: OpenFlowConnection, name: string): Promise<number | undefined> {
  return (await portDescs(conn)).find((p) => p.name === name)?.portNo;
}

/**
 * Names tables (so ovs-ofctl accepts and, with --names, prints `table=Classifier`). Idempotent.
 * An empty name clears it.
 */
export async function setTableNames(conn: OpenFlowConnection, tables: readonly TableName[]): Promise<void> {
  if (tables.length === 0) return;
  const ids = new Set<number>();
  for (const t of tables) {
    if (!Number.isInteger(t.tableId) || t.tableId < 0 || t.tableId > 254) {
      throw new ValidationError('tableId', `${t.tableId} is not a table id`);
    }
    if (ids.has(t.tableId)) throw new ValidationError('tableId', `table ${t.tableId} named twice`);
    ids.add(t.tableId);
  }
  // The reply repeats the features of every table (about 1 MB); we only wait for its end.
  await conn.multipart(OFPMP.TABLE_FEATURES, encodeTableNames(tables));
}

export async function tableNames(conn: OpenFlowConnection): Promise<TableName[]> {
  return decodeTableNames(await conn.multipart(OFPMP.TABLE_FEATURES));
}

/** Maps tunnel TLV options to tun_metadata<N> fields (NXT_TLV_TABLE_MOD). */
export async function addTlvMappings(conn: OpenFlowConnection, mappings: readonly TlvMapping[]): Promise<void> {
  await conn.sendAll([
    trackedBytes(encodeTlvTableMod(0, 'add', mappings), () => ({ message: 'NXT_TLV_TABLE_MOD ADD' })),
  ]);
}

export async function clearTlvMappings(conn: OpenFlowConnection): Promise<void> {
  await conn.sendAll([trackedBytes(encodeTlvTableMod(0, 'clear', []), () => ({ message: 'NXT_TLV_TABLE_MOD CLEAR' }))]);
}
