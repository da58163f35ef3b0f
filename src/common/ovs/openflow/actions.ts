/**
 * OpenFlow 1.5 actions and instructions with the Nicira extensions Antrea uses (ovs-actions(7)):
 * the model, the wire codec and the ovs-ofctl text form (rendering mirrors OVS `ofpacts_format`).
 *
 * Instructions are folded into the action list the way ovs-ofctl shows them: `meter:N` first,
 * then the apply-actions, then `goto_table:N` last.
 */
import { ValidationError } from '../../util/errors.ts';
import {
  ByteReader,
  ByteWriter,
  OpenFlowDecodeError,
  cidrLength,
  dottedHex,
  formatIpv4,
  formatIpv6,
  formatMac,
  hexMin,
  ones,
  parseHexBytes,
  parseIpv4,
  parseIpv6,
  parseMac,
  parseUint,
  prefixMask,
} from './bytes.ts';
import {
  NX_CT_RECIRC_NONE,
  NX_VENDOR_ID,
  NXAST,
  OFPAT,
  OFPIT,
  OFPP,
  PACKET_IN_REASONS,
  type PacketInReason,
  formatPort,
  parsePort,
  port16to32,
  port32to16,
} from './consts.ts';
import {
  type FieldDef,
  type Subfield,
  field,
  fieldByCode,
  findField,
  formatSubfield,
  parseSubfield,
  readOxmHeader,
  subfield,
  subfieldEquals,
} from './fields.ts';
import { formatCtState, formatTcpFlags } from './match.ts';

// ---- model -------------------------------------------------------------------------------------

export interface NatSpec {
  /** Absent for a plain "nat" (reuse the connection's NAT binding). */
  readonly kind?: 'src' | 'dst';
  readonly family?: 'ipv4' | 'ipv6';
  readonly ipMin?: bigint;
  readonly ipMax?: bigint;
  readonly portMin?: number;
  readonly portMax?: number;
  readonly persistent?: boolean;
  readonly hash?: boolean;
  readonly random?: boolean;
}

export type LearnSpec =
  | { readonly kind: 'match'; readonly dst: Subfield; readonly src: Subfield }
  | { readonly kind: 'match_imm'; readonly dst: Subfield; readonly value: bigint }
  | { readonly kind: 'load'; readonly dst: Subfield; readonly src: Subfield }
  | { readonly kind: 'load_imm'; readonly dst: Subfield; readonly value: bigint }
  | { readonly kind: 'output'; readonly src: Subfield };

export interface LearnAction {
  readonly type: 'learn';
  readonly table: number;
  readonly idleTimeout: number;
  readonly hardTimeout: number;
  readonly finIdleTimeout: number;
  readonly finHardTimeout: number;
  readonly priority: number;
  readonly cookie: bigint;
  readonly sendFlowRem: boolean;
  readonly deleteLearned: boolean;
  readonly limit: number;
  readonly specs: readonly LearnSpec[];
}

export interface CtAction {
  readonly type: 'ct';
  readonly commit: boolean;
  readonly force: boolean;
  /** Recirculation table, or undefined for none. */
  readonly table?: number;
  /** Immediate zone, or a 16-bit subfield holding it. */
  readonly zone: number | Subfield;
  readonly alg: number;
  readonly nat?: NatSpec;
  /** Actions run in the context of the connection (ct_mark/ct_label set_field or move). */
  readonly exec: readonly Action[];
}

export interface ControllerAction {
  readonly type: 'controller';
  readonly maxLen: number;
  readonly reason: PacketInReason;
  readonly controllerId: number;
  readonly userdata?: Uint8Array;
  readonly pause: boolean;
  readonly meterId?: number;
}

export type Action =
  | { readonly type: 'output'; readonly port: number; readonly maxLen: number }
  | { readonly type: 'output_reg'; readonly src: Subfield; readonly maxLen: number }
  | { readonly type: 'group'; readonly groupId: number }
  | {
      readonly type: 'set_field';
      readonly field: FieldDef;
      readonly value: bigint;
      readonly mask: bigint;
      readonly bytes?: number;
    }
  | { readonly type: 'move'; readonly src: Subfield; readonly dst: Subfield }
  | { readonly type: 'resubmit'; readonly port?: number; readonly table?: number; readonly ct: boolean }
  | { readonly type: 'goto_table'; readonly table: number }
  | CtAction
  | { readonly type: 'ct_clear' }
  | { readonly type: 'conjunction'; readonly id: number; readonly clause: number; readonly nClauses: number }
  | LearnAction
  | { readonly type: 'dec_ttl' }
  | ControllerAction
  | { readonly type: 'note'; readonly data: Uint8Array }
  | { readonly type: 'push_vlan'; readonly ethertype: number }
  | { readonly type: 'pop_vlan' }
  | { readonly type: 'meter'; readonly meterId: number }
  | { readonly type: 'clone'; readonly actions: readonly Action[] }
  | { readonly type: 'exit' };

export type ActionType = Action['type'];

// ---- field value formatting (OVS mf_format) ----------------------------------------------------

function fieldBits(def: FieldDef, bytes?: number): number {
  return def.variable === true ? (bytes ?? def.bytes) * 8 : def.bits;
}

/** Formats a field value (and mask, unless all ones) as OVS mf_format() does. */
export function formatFieldValue(def: FieldDef, value: bigint, mask?: bigint, bytes?: number): string {
  const width = def.variable === true ? (bytes ?? def.bytes) * 8 : def.bytes * 8;
  const m = mask === undefined || mask === ones(width) ? undefined : mask;
  switch (def.format) {
    case 'hex':
      return m === undefined ? hexMin(value) : `${hexMin(value)}/${hexMin(m)}`;
    case 'dec':
      return m === undefined ? value.toString() : `${value}/${hexMin(m)}`;
    case 'eth':
      return m === undefined ? formatMac(value) : `${formatMac(value)}/${formatMac(m)}`;
    case 'ipv4': {
      if (m === undefined) return formatIpv4(value);
      const len = cidrLength(m, 32);
      return `${formatIpv4(value)}/${len >= 0 ? len : formatIpv4(m)}`;
    }
    case 'ipv6': {
      if (m === undefined) return formatIpv6(value);
      const len = cidrLength(m, 128);
      return `${formatIpv6(value)}/${len >= 0 ? len : formatIpv6(m)}`;
    }
    case 'port16':
      return formatPort(port16to32(Number(value)));
    case 'port32':
      return formatPort(Number(value));
    case 'ctstate':
      return formatCtState(Number(value), m === undefined ? 0xff : Number(m));
    case 'tcpflags':
      return formatTcpFlags(Number(value), m === undefined ? 0xfff : Number(m));
    case 'frag':
    case 'tunflags':
      return m === undefined ? hexMin(value) : `${hexMin(value)}/${hexMin(m)}`;
  }
}

/** Parses a field value ("10.0.0.1/24", "0x5/0xff", "aa:bb:..", "LOCAL") for `def`. */
export function parseFieldValue(def: FieldDef, text: string, what = def.name): { value: bigint; mask?: bigint } {
  const slash = def.format === 'ipv6' ? text.lastIndexOf('/') : text.indexOf('/');
  const vs = slash < 0 ? text : text.slice(0, slash);
  const ms = slash < 0 ? undefined : text.slice(slash + 1);
  switch (def.format) {
    case 'eth':
      return ms === undefined ? { value: parseMac(vs, what) } : { value: parseMac(vs, what), mask: parseMac(ms, what) };
    case 'ipv4': {
      const value = parseIpv4(vs, what);
      if (ms === undefined) return { value };
      return { value, mask: /^\d+$/.test(ms) ? prefixMask(Number(ms), 32) : parseIpv4(ms, what) };
    }
    case 'ipv6': {
      const value = parseIpv6(vs, what);
      if (ms === undefined) return { value };
      return { value, mask: /^\d+$/.test(ms) ? prefixMask(Number(ms), 128) : parseIpv6(ms, what) };
    }
    case 'port16':
      return { value: BigInt(port32to16(parsePort(vs, what))) };
    case 'port32':
      return { value: BigInt(parsePort(vs, what)) };
    case 'hex':
    case 'dec':
    case 'ctstate':
    case 'tcpflags':
    case 'frag':
    case 'tunflags':
      return ms === undefined
        ? { value: parseUint(vs, what) }
        : { value: parseUint(vs, what), mask: parseUint(ms, what) };
  }
}

// ---- rendering ---------------------------------------------------------------------------------

function formatNat(n: NatSpec): string {
  if (n.kind === undefined) return 'nat';
  let s = `nat(${n.kind}`;
  if (n.family !== undefined && n.ipMin !== undefined) {
    s += '=';
    const bracket = n.portMin !== undefined && n.portMin !== 0;
    const addr = (v: bigint): string =>
      n.family === 'ipv4' ? formatIpv4(v) : bracket ? `[${formatIpv6(v)}]` : formatIpv6(v);
    s += addr(n.ipMin);
    if (n.ipMax !== undefined && n.ipMax !== n.ipMin) s += `-${addr(n.ipMax)}`;
    if (n.portMin !== undefined && n.portMin !== 0) {
      s += `:${n.portMin}`;
      if (n.portMax !== undefined && n.portMax !== 0 && n.portMax !== n.portMin) s += `-${n.portMax}`;
    }
    if (n.persistent === true) s += ',persistent';
    if (n.hash === true) s += ',hash';
    if (n.random === true) s += ',random';
  }
  return `${s})`;
}

function formatLearn(a: LearnAction): string {
  let s = `learn(table=${a.table}`;
  if (a.idleTimeout !== 0) s += `,idle_timeout=${a.idleTimeout}`;
  if (a.hardTimeout !== 0) s += `,hard_timeout=${a.hardTimeout}`;
  if (a.finIdleTimeout !== 0) s += `,fin_idle_timeout=${a.finIdleTimeout}`;
  if (a.finHardTimeout !== 0) s += `,fin_hard_timeout=${a.finHardTimeout}`;
  if (a.priority !== 0x8000) s += `,priority=${a.priority}`;
  if (a.sendFlowRem) s += ',send_flow_rem';
  if (a.deleteLearned) s += ',delete_learned';
  if (a.cookie !== 0n) s += `,cookie=0x${a.cookie.toString(16)}`;
  if (a.limit !== 0) s += `,limit=${a.limit}`;
  for (const spec of a.specs) {
    s += ',';
    switch (spec.kind) {
      case 'match_imm': {
        const d = spec.dst;
        if (d.ofs === 0 && d.nBits === d.field.bits) s += `${d.field.name}=${formatFieldValue(d.field, spec.value)}`;
        else s += `${formatSubfield(d)}=${hexMin(spec.value)}`;
        break;
      }
      case 'match':
        s += formatSubfield(spec.dst);
        if (spec.src.field !== spec.dst.field || spec.src.ofs !== spec.dst.ofs) s += `=${formatSubfield(spec.src)}`;
        break;
      case 'load_imm':
        s += `load:${hexMin(spec.value)}->${formatSubfield(spec.dst)}`;
        break;
      case 'load':
        s += `load:${formatSubfield(spec.src)}->${formatSubfield(spec.dst)}`;
        break;
      case 'output':
        s += `output:${formatSubfield(spec.src)}`;
        break;
    }
  }
  return `${s})`;
}

function formatController(a: ControllerAction): string {
  if (
    a.reason === 'action' &&
    a.controllerId === 0 &&
    a.userdata === undefined &&
    !a.pause &&
    a.meterId === undefined
  ) {
    return `CONTROLLER:${a.maxLen}`;
  }
  const parts: string[] = [];
  if (a.reason !== 'action') parts.push(`reason=${a.reason}`);
  if (a.maxLen !== 0xffff) parts.push(`max_len=${a.maxLen}`);
  if (a.controllerId !== 0) parts.push(`id=${a.controllerId}`);
  if (a.userdata !== undefined && a.userdata.length > 0) parts.push(`userdata=${dottedHex(a.userdata)}`);
  if (a.pause) parts.push('pause');
  if (a.meterId !== undefined) parts.push(`meter_id=${a.meterId}`);
  return `controller(${parts.join(',')})`;
}

/** Renders one action as ovs-ofctl prints it. */
export function formatAction(a: Action): string {
  switch (a.type) {
    case 'output':
      if (a.port === OFPP.CONTROLLER) return `CONTROLLER:${a.maxLen}`;
      return a.port < OFPP.MAX ? `output:${a.port}` : formatPort(a.port);
    case 'output_reg':
      return `output:${formatSubfield(a.src)}`;
    case 'group':
      return `group:${a.groupId}`;
    case 'set_field':
      return `set_field:${formatFieldValue(a.field, a.value, a.mask, a.bytes)}->${a.field.name}`;
    case 'move':
      return `move:${formatSubfield(a.src)}->${formatSubfield(a.dst)}`;
    case 'resubmit': {
      const port = a.port ?? OFPP.IN_PORT;
      if (port !== OFPP.IN_PORT && a.table === undefined && !a.ct) return `resubmit:${formatPort(port)}`;
      return `resubmit(${port === OFPP.IN_PORT ? '' : formatPort(port)},${a.table ?? ''}${a.ct ? ',ct' : ''})`;
    }
    case 'goto_table':
      return `goto_table:${a.table}`;
    case 'ct': {
      const parts: string[] = [];
      if (a.commit) parts.push('commit');
      if (a.force) parts.push('force');
      if (a.table !== undefined) parts.push(`table=${a.table}`);
      if (typeof a.zone !== 'number') parts.push(`zone=${formatSubfield(a.zone)}`);
      else if (a.zone !== 0) parts.push(`zone=${a.zone}`);
      if (a.nat !== undefined) parts.push(formatNat(a.nat));
      if (a.exec.length > 0) parts.push(`exec(${formatActions(a.exec)})`);
      if (a.alg === 21) parts.push('alg=ftp');
      else if (a.alg === 69) parts.push('alg=tftp');
      else if (a.alg !== 0) parts.push(`alg=${a.alg}`);
      return `ct(${parts.join(',')})`;
    }
    case 'ct_clear':
      return 'ct_clear';
    case 'conjunction':
      return `conjunction(${a.id},${a.clause}/${a.nClauses})`;
    case 'learn':
      return formatLearn(a);
    case 'dec_ttl':
      return 'dec_ttl';
    case 'controller':
      return formatController(a);
    case 'note':
      return `note:${dottedHex(a.data)}`;
    case 'push_vlan':
      return `push_vlan:0x${a.ethertype.toString(16)}`;
    case 'pop_vlan':
      return 'pop_vlan';
    case 'meter':
      return `meter:${a.meterId}`;
    case 'clone':
      return `clone(${formatActions(a.actions)})`;
    case 'exit':
      return 'exit';
  }
}

/** Renders an action list as ovs-ofctl prints it ("drop" when empty). */
export function formatActions(actions: readonly Action[]): string {
  return actions.length === 0 ? 'drop' : actions.map(formatAction).join(',');
}

// ---- encoding ----------------------------------------------------------------------------------

function header32(code: { cls: number; field: number }, bytes: number, masked = false): number {
  return ((code.cls << 16) | (code.field << 9) | (masked ? 0x100 : 0) | (masked ? bytes * 2 : bytes)) >>> 0;
}

/** The NXM-style header used by learn specs, output_reg and ct zone sources. */
function nxmHeader(def: FieldDef, bytes?: number): number {
  return header32(def.nxm, def.variable === true ? (bytes ?? def.bytes) : def.bytes);
}

function oxmHeader(def: FieldDef, bytes: number, masked: boolean): number {
  return header32(def.code, bytes, masked);
}

function ofsNbits(ofs: number, nBits: number): number {
  return (ofs << 6) | (nBits - 1);
}

function nxHeader(w: ByteWriter, subtype: number): number {
  const start = w.length;
  w.u16(OFPAT.EXPERIMENTER).u16(0).u32(NX_VENDOR_ID).u16(subtype);
  return start;
}

function finishAction(w: ByteWriter, start: number, minLen = 0): void {
  if (w.length - start < minLen) w.zeros(minLen - (w.length - start));
  w.pad8(start);
  w.setU16(start + 2, w.length - start);
}

const REASON_CODES: Readonly<Record<PacketInReason, number>> = {
  no_match: 0,
  action: 1,
  invalid_ttl: 2,
  action_set: 3,
  group: 4,
  packet_out: 5,
};

function putProp(w: ByteWriter, type: number, payload: (w: ByteWriter) => void): void {
  const start = w.length;
  w.u16(type).u16(0);
  payload(w);
  w.setU16(start + 2, w.length - start);
  w.pad8(start);
}

function encodeNat(w: ByteWriter, n: NatSpec): void {
  const start = nxHeader(w, NXAST.NAT);
  let flags = 0;
  if (n.kind === 'src') flags |= 1;
  if (n.kind === 'dst') flags |= 2;
  if (n.persistent === true) flags |= 4;
  if (n.hash === true) flags |= 8;
  if (n.random === true) flags |= 16;
  w.zeros(2).u16(flags);
  const rangeAt = w.length;
  w.u16(0);
  let present = 0;
  if (n.family === 'ipv4' && n.ipMin !== undefined) {
    w.uint(n.ipMin, 4);
    present |= 1;
    if (n.ipMax !== undefined) {
      w.uint(n.ipMax, 4);
      present |= 2;
    }
  } else if (n.family === 'ipv6' && n.ipMin !== undefined) {
    w.uint(n.ipMin, 16);
    present |= 4;
    if (n.ipMax !== undefined) {
      w.uint(n.ipMax, 16);
      present |= 8;
    }
  }
  if (n.family !== undefined && n.portMin !== undefined && n.portMin !== 0) {
    w.u16(n.portMin);
    present |= 16;
    if (n.portMax !== undefined && n.portMax !== 0) {
      w.u16(n.portMax);
      present |= 32;
    }
  }
  w.setU16(rangeAt, present);
  finishAction(w, start);
}

function encodeLearn(w: ByteWriter, a: LearnAction): void {
  const v2 = a.limit !== 0;
  const start = nxHeader(w, v2 ? NXAST.LEARN2 : NXAST.LEARN);
  const flags = (a.sendFlowRem ? 1 : 0) | (a.deleteLearned ? 2 : 0);
  w.u16(a.idleTimeout).u16(a.hardTimeout).u16(a.priority).u64(a.cookie).u16(flags).u8(a.table).u8(0);
  w.u16(a.finIdleTimeout).u16(a.finHardTimeout);
  if (v2) w.u32(a.limit).u16(0).u16(0);
  for (const spec of a.specs) {
    switch (spec.kind) {
      case 'match':
        w.u16(spec.dst.nBits | (0 << 13) | (0 << 11));
        w.u32(nxmHeader(spec.src.field)).u16(spec.src.ofs);
        w.u32(nxmHeader(spec.dst.field)).u16(spec.dst.ofs);
        break;
      case 'match_imm':
        w.u16(spec.dst.nBits | (1 << 13) | (0 << 11));
        w.uint(spec.value, 2 * Math.ceil(spec.dst.nBits / 16));
        w.u32(nxmHeader(spec.dst.field)).u16(spec.dst.ofs);
        break;
      case 'load':
        w.u16(spec.dst.nBits | (0 << 13) | (1 << 11));
        w.u32(nxmHeader(spec.src.field)).u16(spec.src.ofs);
        w.u32(nxmHeader(spec.dst.field)).u16(spec.dst.ofs);
        break;
      case 'load_imm':
        w.u16(spec.dst.nBits | (1 << 13) | (1 << 11));
        w.uint(spec.value, 2 * Math.ceil(spec.dst.nBits / 16));
        w.u32(nxmHeader(spec.dst.field)).u16(spec.dst.ofs);
        break;
      case 'output':
        w.u16(spec.src.nBits | (0 << 13) | (2 << 11));
        w.u32(nxmHeader(spec.src.field)).u16(spec.src.ofs);
        break;
    }
  }
  finishAction(w, start);
}

/** Encodes one apply-action (not meter/goto_table, which are instructions or handled by the caller). */
export function encodeAction(w: ByteWriter, a: Action): void {
  switch (a.type) {
    case 'output':
      w.u16(OFPAT.OUTPUT).u16(16).u32(a.port).u16(a.maxLen).zeros(6);
      return;
    case 'output_reg': {
      const start = nxHeader(w, NXAST.OUTPUT_REG);
      w.u16(ofsNbits(a.src.ofs, a.src.nBits)).u32(nxmHeader(a.src.field)).u16(a.maxLen).zeros(6);
      finishAction(w, start);
      return;
    }
    case 'group':
      w.u16(OFPAT.GROUP).u16(8).u32(a.groupId);
      return;
    case 'set_field': {
      const start = w.length;
      const n = a.field.variable === true ? (a.bytes ?? a.field.bytes) : a.field.bytes;
      const full = ones(n * 8);
      const masked = a.mask !== full;
      w.u16(OFPAT.SET_FIELD)
        .u16(0)
        .u32(oxmHeader(a.field, n, masked))
        .uint(a.value, n);
      if (masked) w.uint(a.mask, n);
      finishAction(w, start);
      return;
    }
    case 'move': {
      const start = w.length;
      w.u16(OFPAT.COPY_FIELD).u16(0).u16(a.dst.nBits).u16(a.src.ofs).u16(a.dst.ofs).zeros(2);
      w.u32(oxmHeader(a.src.field, a.src.field.bytes, false)).u32(oxmHeader(a.dst.field, a.dst.field.bytes, false));
      finishAction(w, start);
      return;
    }
    case 'resubmit': {
      const start = nxHeader(w, a.ct ? NXAST.RESUBMIT_TABLE_CT : NXAST.RESUBMIT_TABLE);
      w.u16(port32to16(a.port ?? OFPP.IN_PORT))
        .u8(a.table ?? 0xff)
        .zeros(3);
      finishAction(w, start);
      return;
    }
    case 'ct': {
      const start = nxHeader(w, NXAST.CT);
      const flags = (a.commit ? 1 : 0) | (a.force ? 2 : 0);
      w.u16(flags);
      if (typeof a.zone === 'number') w.u32(0).u16(a.zone);
      else w.u32(nxmHeader(a.zone.field)).u16(ofsNbits(a.zone.ofs, a.zone.nBits));
      w.u8(a.table ?? NX_CT_RECIRC_NONE)
        .zeros(3)
        .u16(a.alg);
      if (a.nat !== undefined) encodeNat(w, a.nat);
      for (const x of a.exec) encodeAction(w, x);
      w.setU16(start + 2, w.length - start);
      return;
    }
    case 'ct_clear':
      finishAction(w, nxHeader(w, NXAST.CT_CLEAR), 16);
      return;
    case 'conjunction': {
      const start = nxHeader(w, NXAST.CONJUNCTION);
      w.u8(a.clause - 1)
        .u8(a.nClauses)
        .u32(a.id);
      finishAction(w, start);
      return;
    }
    case 'learn':
      encodeLearn(w, a);
      return;
    case 'dec_ttl':
      w.u16(OFPAT.DEC_NW_TTL).u16(8).zeros(4);
      return;
    case 'controller': {
      const start = nxHeader(w, NXAST.CONTROLLER2);
      w.zeros(6);
      if (a.maxLen !== 0xffff) putProp(w, 0, (x) => x.u16(a.maxLen));
      if (a.controllerId !== 0) putProp(w, 1, (x) => x.u16(a.controllerId));
      if (a.reason !== 'action') putProp(w, 2, (x) => x.u8(REASON_CODES[a.reason]));
      if (a.userdata !== undefined && a.userdata.length > 0) {
        const ud = a.userdata;
        putProp(w, 3, (x) => x.bytes(ud));
      }
      if (a.pause) putProp(w, 4, () => undefined);
      if (a.meterId !== undefined) {
        const id = a.meterId;
        putProp(w, 5, (x) => x.u32(id));
      }
      finishAction(w, start);
      return;
    }
    case 'note': {
      const start = nxHeader(w, NXAST.NOTE);
      w.bytes(a.data);
      finishAction(w, start, 16);
      return;
    }
    case 'push_vlan':
      w.u16(OFPAT.PUSH_VLAN).u16(8).u16(a.ethertype).zeros(2);
      return;
    case 'pop_vlan':
      w.u16(OFPAT.POP_VLAN).u16(8).zeros(4);
      return;
    case 'meter':
      w.u16(OFPAT.METER).u16(8).u32(a.meterId);
      return;
    case 'clone': {
      const start = nxHeader(w, NXAST.CLONE);
      w.zeros(6);
      for (const x of a.actions) encodeAction(w, x);
      w.setU16(start + 2, w.length - start);
      return;
    }
    case 'exit':
      finishAction(w, nxHeader(w, NXAST.EXIT), 16);
      return;
    case 'goto_table':
      throw new ValidationError('actions', 'goto_table is only allowed as the last action of a flow');
  }
}

/** Encodes a plain action list (group buckets, packet-out, nested lists). */
export function encodeActionList(w: ByteWriter, actions: readonly Action[]): void {
  for (const a of actions) encodeAction(w, a);
}

/** Encodes a flow's action list as OpenFlow 1.5 instructions (apply-actions, then goto-table). */
export function encodeInstructions(w: ByteWriter, actions: readonly Action[]): void {
  const last = actions[actions.length - 1];
  const gotoTable = last?.type === 'goto_table' ? last.table : undefined;
  const apply = gotoTable === undefined ? actions : actions.slice(0, -1);
  if (apply.length > 0) {
    const start = w.length;
    w.u16(OFPIT.APPLY_ACTIONS).u16(0).zeros(4);
    for (const a of apply) encodeAction(w, a);
    w.setU16(start + 2, w.length - start);
  }
  if (gotoTable !== undefined) w.u16(OFPIT.GOTO_TABLE).u16(8).u8(gotoTable).zeros(3);
}

// ---- decoding ----------------------------------------------------------------------------------

function decodeHeaderField(r: ByteReader, what: string): { def: FieldDef; bytes: number; masked: boolean } {
  const h = readOxmHeader(r);
  const def = fieldByCode(h.cls, h.field);
  if (def === undefined) {
    throw new OpenFlowDecodeError(`${what}: unknown field class 0x${h.cls.toString(16)} field ${h.field}`);
  }
  return { def, bytes: h.length, masked: h.hasMask };
}

function decodeNat(r: ByteReader): NatSpec {
  r.skip(2);
  const flags = r.u16('nat flags');
  const present = r.u16('nat range');
  const out: {
    kind?: 'src' | 'dst';
    family?: 'ipv4' | 'ipv6';
    ipMin?: bigint;
    ipMax?: bigint;
    portMin?: number;
    portMax?: number;
    persistent?: boolean;
    hash?: boolean;
    random?: boolean;
  } = {};
  if ((flags & 1) !== 0) out.kind = 'src';
  if ((flags & 2) !== 0) out.kind = 'dst';
  if ((flags & 4) !== 0) out.persistent = true;
  if ((flags & 8) !== 0) out.hash = true;
  if ((flags & 16) !== 0) out.random = true;
  if ((present & 1) !== 0) {
    out.family = 'ipv4';
    out.ipMin = r.uint(4);
    if ((present & 2) !== 0) out.ipMax = r.uint(4);
  } else if ((present & 4) !== 0) {
    out.family = 'ipv6';
    out.ipMin = r.uint(16);
    if ((present & 8) !== 0) out.ipMax = r.uint(16);
  }
  if ((present & 16) !== 0) {
    out.portMin = r.u16();
    if ((present & 32) !== 0) out.portMax = r.u16();
  }
  return out;
}

function decodeSubfieldAt(r: ByteReader, nBits: number, what: string): Subfield {
  const { def } = decodeHeaderField(r, what);
  const ofs = r.u16(`${what} offset`);
  return subfield(def, ofs, nBits, what);
}

function decodeLearn(r: ByteReader, v2: boolean): LearnAction {
  const idleTimeout = r.u16();
  const hardTimeout = r.u16();
  const priority = r.u16();
  const cookie = r.u64();
  const flags = r.u16();
  const table = r.u8();
  r.skip(1);
  const finIdleTimeout = r.u16();
  const finHardTimeout = r.u16();
  let limit = 0;
  if (v2) {
    limit = r.u32();
    r.skip(4);
  }
  const specs: LearnSpec[] = [];
  while (r.remaining >= 2) {
    const h = r.u16('learn spec');
    if (h === 0) break;
    const nBits = h & 0x3ff;
    const srcImm = (h & (1 << 13)) !== 0;
    const dstType = (h >> 11) & 3;
    let src: Subfield | undefined;
    let value = 0n;
    if (srcImm) value = r.uint(2 * Math.ceil(nBits / 16), 'learn immediate');
    else src = decodeSubfieldAt(r, nBits, 'learn source');
    if (dstType === 2) {
      if (src === undefined) throw new OpenFlowDecodeError('learn output spec needs a field source');
      specs.push({ kind: 'output', src });
      continue;
    }
    const dst = decodeSubfieldAt(r, nBits, 'learn destination');
    if (dstType === 0) specs.push(src === undefined ? { kind: 'match_imm', dst, value } : { kind: 'match', dst, src });
    else specs.push(src === undefined ? { kind: 'load_imm', dst, value } : { kind: 'load', dst, src });
  }
  return {
    type: 'learn',
    table,
    idleTimeout,
    hardTimeout,
    finIdleTimeout,
    finHardTimeout,
    priority,
    cookie,
    sendFlowRem: (flags & 1) !== 0,
    deleteLearned: (flags & 2) !== 0,
    limit,
    specs,
  };
}

function decodeController2(r: ByteReader): ControllerAction {
  r.skip(6);
  let maxLen = 0xffff;
  let controllerId = 0;
  let reason: PacketInReason = 'action';
  let userdata: Uint8Array | undefined;
  let pause = false;
  let meterId: number | undefined;
  while (r.remaining >= 4) {
    const type = r.u16('controller property');
    const len = r.u16('controller property length');
    if (len < 4) break;
    const body = r.sub(len - 4, 'controller property');
    r.skip(Math.min(r.remaining, (8 - (len % 8)) % 8));
    switch (type) {
      case 0:
        maxLen = body.u16();
        break;
      case 1:
        controllerId = body.u16();
        break;
      case 2:
        reason = PACKET_IN_REASONS[body.u8()] ?? 'action';
        break;
      case 3:
        userdata = body.bytes(body.remaining).slice();
        break;
      case 4:
        pause = true;
        break;
      case 5:
        meterId = body.u32();
        break;
      default:
        throw new OpenFlowDecodeError(`unknown controller2 property ${type}`);
    }
  }
  const out: ControllerAction = { type: 'controller', maxLen, reason, controllerId, pause };
  return {
    ...out,
    ...(userdata === undefined ? {} : { userdata }),
    ...(meterId === undefined ? {} : { meterId }),
  };
}

type Decoded = Action | { readonly type: 'nat'; readonly spec: NatSpec };

function decodeOneAction(r: ByteReader): Decoded {
  const start = r.pos;
  const type = r.u16('action type');
  const len = r.u16('action length');
  if (len < 8 || len % 8 !== 0) throw new OpenFlowDecodeError(`bad action length ${len}`);
  const body = new ByteReader(r.buf, start + 4, start + len);
  r.skip(len - 4, 'action');
  switch (type) {
    case OFPAT.OUTPUT: {
      const port = body.u32();
      const maxLen = body.u16();
      return { type: 'output', port, maxLen };
    }
    case OFPAT.GROUP:
      return { type: 'group', groupId: body.u32() };
    case OFPAT.DEC_NW_TTL:
      return { type: 'dec_ttl' };
    case OFPAT.PUSH_VLAN:
      return { type: 'push_vlan', ethertype: body.u16() };
    case OFPAT.POP_VLAN:
      return { type: 'pop_vlan' };
    case OFPAT.METER:
      return { type: 'meter', meterId: body.u32() };
    case OFPAT.SET_FIELD: {
      const { def, bytes, masked } = decodeHeaderField(body, 'set_field');
      const value = body.uint(bytes);
      const mask = masked ? body.uint(bytes) : ones(bytes * 8);
      const sf = { type: 'set_field' as const, field: def, value, mask };
      return def.variable === true ? { ...sf, bytes } : sf;
    }
    case OFPAT.COPY_FIELD: {
      const nBits = body.u16();
      const srcOfs = body.u16();
      const dstOfs = body.u16();
      body.skip(2);
      const src = decodeHeaderField(body, 'copy_field source').def;
      const dst = decodeHeaderField(body, 'copy_field destination').def;
      return { type: 'move', src: subfield(src, srcOfs, nBits), dst: subfield(dst, dstOfs, nBits) };
    }
    case OFPAT.EXPERIMENTER: {
      const vendor = body.u32();
      if (vendor !== NX_VENDOR_ID)
        throw new OpenFlowDecodeError(`unknown experimenter action vendor 0x${vendor.toString(16)}`);
      const subtype = body.u16();
      switch (subtype) {
        case NXAST.RESUBMIT:
        case NXAST.RESUBMIT_TABLE:
        case NXAST.RESUBMIT_TABLE_CT: {
          const port = port16to32(body.u16());
          const table = subtype === NXAST.RESUBMIT ? 0xff : body.u8();
          return {
            type: 'resubmit',
            ...(port === OFPP.IN_PORT ? {} : { port }),
            ...(table === 0xff ? {} : { table }),
            ct: subtype === NXAST.RESUBMIT_TABLE_CT,
          };
        }
        case NXAST.OUTPUT_REG: {
          const on = body.u16();
          const { def } = decodeHeaderField(body, 'output_reg');
          const maxLen = body.u16();
          return { type: 'output_reg', src: subfield(def, on >> 6, (on & 0x3f) + 1), maxLen };
        }
        case NXAST.OUTPUT_REG2: {
          const on = body.u16();
          const maxLen = body.u16();
          const { def } = decodeHeaderField(body, 'output_reg2');
          return { type: 'output_reg', src: subfield(def, on >> 6, (on & 0x3f) + 1), maxLen };
        }
        case NXAST.CT: {
          const flags = body.u16();
          const zoneSrc = body.u32();
          const zoneImmOrOfs = body.u16();
          const table = body.u8();
          body.skip(3);
          const alg = body.u16();
          let zone: number | Subfield = zoneImmOrOfs;
          if (zoneSrc !== 0) {
            const def = fieldByCode(zoneSrc >>> 16, (zoneSrc >>> 9) & 0x7f);
            if (def === undefined) throw new OpenFlowDecodeError('ct: unknown zone source field');
            zone = subfield(def, zoneImmOrOfs >> 6, (zoneImmOrOfs & 0x3f) + 1);
          }
          let nat: NatSpec | undefined;
          const exec: Action[] = [];
          while (body.pos + 4 <= body.end) {
            const x = decodeOneAction(body);
            if (x.type === 'nat') {
              if (nat !== undefined || exec.length > 0) throw new OpenFlowDecodeError('ct: nat must come first');
              nat = x.spec;
            } else exec.push(x);
          }
          const ct: CtAction = {
            type: 'ct',
            commit: (flags & 1) !== 0,
            force: (flags & 2) !== 0,
            zone,
            alg,
            exec,
            ...(table === NX_CT_RECIRC_NONE ? {} : { table }),
            ...(nat === undefined ? {} : { nat }),
          };
          return ct;
        }
        case NXAST.NAT:
          // Only valid nested in ct(); carried through as a pseudo action.
          return { type: 'nat', spec: decodeNat(body) };
        case NXAST.CT_CLEAR:
          return { type: 'ct_clear' };
        case NXAST.CONJUNCTION: {
          const clause = body.u8();
          const nClauses = body.u8();
          const id = body.u32();
          return { type: 'conjunction', id, clause: clause + 1, nClauses };
        }
        case NXAST.LEARN:
        case NXAST.LEARN2:
          return decodeLearn(body, subtype === NXAST.LEARN2);
        case NXAST.CONTROLLER: {
          const maxLen = body.u16();
          const controllerId = body.u16();
          const reason = PACKET_IN_REASONS[body.u8()] ?? 'action';
          return { type: 'controller', maxLen, controllerId, reason, pause: false };
        }
        case NXAST.CONTROLLER2:
          return decodeController2(body);
        case NXAST.NOTE:
          return { type: 'note', data: body.bytes(body.remaining).slice() };
        case NXAST.CLONE:
          body.skip(6);
          return { type: 'clone', actions: decodeActionList(body, body.end) };
        case NXAST.EXIT:
          return { type: 'exit' };
        default:
          throw new OpenFlowDecodeError(`unsupported Nicira action subtype ${subtype}`);
      }
    }
    default:
      throw new OpenFlowDecodeError(`unsupported action type ${type}`);
  }
}

/** Decodes actions until `end`. */
export function decodeActionList(r: ByteReader, end: number): Action[] {
  const out: Action[] = [];
  while (r.pos + 4 <= end) {
    const x = decodeOneAction(r);
    if (x.type === 'nat') throw new OpenFlowDecodeError('nat is only valid inside ct()');
    out.push(x);
  }
  return out;
}

/** Decodes OpenFlow 1.5 instructions into the folded action list. */
export function decodeInstructions(r: ByteReader, end: number): Action[] {
  const out: Action[] = [];
  let gotoTable: number | undefined;
  while (r.pos + 4 <= end) {
    const start = r.pos;
    const type = r.u16('instruction type');
    const len = r.u16('instruction length');
    if (len < 8) throw new OpenFlowDecodeError(`bad instruction length ${len}`);
    switch (type) {
      case OFPIT.GOTO_TABLE:
        gotoTable = r.u8();
        break;
      case OFPIT.METER:
        out.unshift({ type: 'meter', meterId: r.u32() });
        break;
      case OFPIT.APPLY_ACTIONS:
        r.skip(4);
        out.push(...decodeActionList(r, start + len));
        break;
      default:
        throw new OpenFlowDecodeError(`unsupported instruction type ${type}`);
    }
    r.pos = start + len;
  }
  if (gotoTable !== undefined) out.push({ type: 'goto_table', table: gotoTable });
  return out;
}

// ---- text parsing ------------------------------------------------------------------------------

/** Splits at top-level commas (outside parentheses and brackets). */
export function splitTopLevel(s: string, sep = ','): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(' || ch === '[') depth++;
    else if (ch === ')' || ch === ']') depth--;
    if (ch === sep && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (depth !== 0) throw new ValidationError('actions', `unbalanced parentheses in "${s}"`);
  if (cur !== '' || out.length > 0) out.push(cur);
  return out.map((x) => x.trim()).filter((x) => x !== '');
}

function keyValue(item: string): [string, string | undefined] {
  const eq = item.indexOf('=');
  return eq < 0 ? [item, undefined] : [item.slice(0, eq), item.slice(eq + 1)];
}

function parseInt16(s: string, what: string): number {
  const v = parseUint(s, what);
  if (v > 0xffffn) throw new ValidationError(what, `${s} does not fit 16 bits`);
  return Number(v);
}
function parseInt32(s: string, what: string): number {
  const v = parseUint(s, what);
  if (v > 0xffffffffn) throw new ValidationError(what, `${s} does not fit 32 bits`);
  return Number(v);
}

interface NatRange {
  family: 'ipv4' | 'ipv6';
  ipMin: bigint;
  ipMax: bigint | undefined;
  portMin: number | undefined;
  portMax: number | undefined;
}

/** Parses ADDR[-ADDR][:PORT[-PORT]] (IPv6 addresses in brackets when a port follows). */
function parseNatRange(v: string): NatRange {
  let addrs: string;
  let ports: string | undefined;
  let family: 'ipv4' | 'ipv6';
  if (v.startsWith('[')) {
    family = 'ipv6';
    const m = /^(\[[^\]]+\](?:-\[[^\]]+\])?)(?::(.*))?$/.exec(v);
    if (m === null) throw new ValidationError('nat', `invalid nat range "${v}"`);
    addrs = (m[1] ?? '').replaceAll('[', '').replaceAll(']', '');
    ports = m[2];
  } else if (v.includes('.')) {
    family = 'ipv4';
    const colon = v.indexOf(':');
    addrs = colon < 0 ? v : v.slice(0, colon);
    ports = colon < 0 ? undefined : v.slice(colon + 1);
  } else {
    family = 'ipv6';
    addrs = v;
  }
  const [a, b] = addrs.split('-');
  const parseAddr = (x: string): bigint => (family === 'ipv4' ? parseIpv4(x, 'nat') : parseIpv6(x, 'nat'));
  const out: NatRange = { family, ipMin: parseAddr(a ?? ''), ipMax: undefined, portMin: undefined, portMax: undefined };
  if (b !== undefined) out.ipMax = parseAddr(b);
  if (ports !== undefined) {
    const [p, q] = ports.split('-');
    out.portMin = parseInt16(p ?? '', 'nat');
    if (q !== undefined) out.portMax = parseInt16(q, 'nat');
  }
  return out;
}

function parseNat(arg: string | undefined): NatSpec {
  if (arg === undefined || arg === '') return {};
  let kind: 'src' | 'dst' | undefined;
  let family: 'ipv4' | 'ipv6' | undefined;
  let ipMin: bigint | undefined;
  let ipMax: bigint | undefined;
  let portMin: number | undefined;
  let portMax: number | undefined;
  let persistent = false;
  let hash = false;
  let random = false;
  for (const item of splitTopLevel(arg)) {
    const [k, v] = keyValue(item);
    if (k === 'src' || k === 'dst') {
      if (kind !== undefined) throw new ValidationError('nat', 'only one of src or dst may be given');
      kind = k;
      if (v === undefined || v === '') continue;
      const r = parseNatRange(v);
      ({ family, ipMin, ipMax, portMin, portMax } = r);
    } else if (k === 'persistent') persistent = true;
    else if (k === 'hash') hash = true;
    else if (k === 'random') random = true;
    else throw new ValidationError('nat', `invalid key "${k}"`);
  }
  return nat({ kind, family, ipMin, ipMax, portMin, portMax, persistent, hash, random });
}

/** Builds a validated NatSpec (drops undefined members). */
export function nat(spec: {
  kind?: 'src' | 'dst' | undefined;
  family?: 'ipv4' | 'ipv6' | undefined;
  ipMin?: bigint | undefined;
  ipMax?: bigint | undefined;
  portMin?: number | undefined;
  portMax?: number | undefined;
  persistent?: boolean | undefined;
  hash?: boolean | undefined;
  random?: boolean | undefined;
}): NatSpec {
  if (
    spec.kind === undefined &&
    (spec.ipMin !== undefined || spec.persistent === true || spec.hash === true || spec.random === true)
  ) {
    throw new ValidationError('nat', 'a range or flags need src or dst');
  }
  if (spec.hash === true && spec.random === true) throw new ValidationError('nat', 'hash and random are exclusive');
  if (spec.ipMin !== undefined && spec.ipMax !== undefined && spec.ipMax < spec.ipMin) {
    throw new ValidationError('nat', 'address range ends before it starts');
  }
  if (spec.portMin !== undefined && spec.portMax !== undefined && spec.portMax < spec.portMin) {
    throw new ValidationError('nat', 'port range ends before it starts');
  }
  if (spec.portMin !== undefined && spec.ipMin === undefined)
    throw new ValidationError('nat', 'a port range needs an address');
  const out: {
    -readonly [K in keyof NatSpec]: NatSpec[K];
  } = {};
  if (spec.kind !== undefined) out.kind = spec.kind;
  if (spec.family !== undefined) out.family = spec.family;
  if (spec.ipMin !== undefined) out.ipMin = spec.ipMin;
  if (spec.ipMax !== undefined) out.ipMax = spec.ipMax;
  if (spec.portMin !== undefined) out.portMin = spec.portMin;
  if (spec.portMax !== undefined) out.portMax = spec.portMax;
  if (spec.persistent === true) out.persistent = true;
  if (spec.hash === true) out.hash = true;
  if (spec.random === true) out.random = true;
  return out;
}

function parseLearn(arg: string): LearnAction {
  let table: number | undefined;
  let idleTimeout = 0;
  let hardTimeout = 0;
  let finIdleTimeout = 0;
  let finHardTimeout = 0;
  let priority = 0x8000;
  let cookie = 0n;
  let sendFlowRem = false;
  let deleteLearned = false;
  let limit = 0;
  const specs: LearnSpec[] = [];
  const isSubfield = (s: string): boolean => /\[[\d.]*\]$/.test(s) || /^(NXM|OXM)_/.test(s);
  for (const item of splitTopLevel(arg)) {
    if (item.startsWith('load:')) {
      const [src, dst] = item.slice(5).split('->');
      if (src === undefined || dst === undefined) throw new ValidationError('learn', `bad load "${item}"`);
      const d = parseSubfield(dst, 'learn');
      if (isSubfield(src)) {
        const s = parseSubfield(src, 'learn');
        if (s.nBits !== d.nBits) throw new ValidationError('learn', `"${item}": source and destination widths differ`);
        specs.push({ kind: 'load', src: s, dst: d });
      } else {
        const value = parseUint(src, 'learn');
        if (value > ones(d.nBits)) throw new ValidationError('learn', `"${item}": value does not fit ${d.nBits} bits`);
        specs.push({ kind: 'load_imm', value, dst: d });
      }
      continue;
    }
    if (item.startsWith('output:')) {
      specs.push({ kind: 'output', src: parseSubfield(item.slice(7), 'learn') });
      continue;
    }
    const [k, v] = keyValue(item);
    switch (k) {
      case 'table':
        table = Number(parseUint(v ?? '', 'learn.table'));
        continue;
      case 'idle_timeout':
        idleTimeout = parseInt16(v ?? '', 'learn.idle_timeout');
        continue;
      case 'hard_timeout':
        hardTimeout = parseInt16(v ?? '', 'learn.hard_timeout');
        continue;
      case 'fin_idle_timeout':
        finIdleTimeout = parseInt16(v ?? '', 'learn.fin_idle_timeout');
        continue;
      case 'fin_hard_timeout':
        finHardTimeout = parseInt16(v ?? '', 'learn.fin_hard_timeout');
        continue;
      case 'priority':
        priority = parseInt16(v ?? '', 'learn.priority');
        continue;
      case 'cookie':
        cookie = parseUint(v ?? '', 'learn.cookie');
        continue;
      case 'send_flow_rem':
        sendFlowRem = true;
        continue;
      case 'delete_learned':
        deleteLearned = true;
        continue;
      case 'limit':
        limit = parseInt32(v ?? '', 'learn.limit');
        continue;
    }
    if (v === undefined) {
      const sf = parseSubfield(k, 'learn');
      specs.push({ kind: 'match', dst: sf, src: sf });
      continue;
    }
    const dst = isSubfield(k) ? parseSubfield(k, 'learn') : subfield(findField(k) ?? parseSubfield(k, 'learn').field);
    if (isSubfield(v)) {
      const src = parseSubfield(v, 'learn');
      if (src.nBits !== dst.nBits)
        throw new ValidationError('learn', `"${item}": source and destination widths differ`);
      specs.push({ kind: 'match', dst, src });
    } else {
      const whole = dst.ofs === 0 && dst.nBits === dst.field.bits;
      const value = whole ? parseFieldValue(dst.field, v, 'learn').value : parseUint(v, 'learn');
      if (value > ones(dst.nBits))
        throw new ValidationError('learn', `"${item}": value does not fit ${dst.nBits} bits`);
      specs.push({ kind: 'match_imm', dst, value });
    }
  }
  if (table === undefined) throw new ValidationError('learn.table', 'learn needs a table');
  return {
    type: 'learn',
    table,
    idleTimeout,
    hardTimeout,
    finIdleTimeout,
    finHardTimeout,
    priority,
    cookie,
    sendFlowRem,
    deleteLearned,
    limit,
    specs,
  };
}

function parseController(arg: string | undefined): Action {
  let maxLen = 0xffff;
  let reason: PacketInReason = 'action';
  let controllerId = 0;
  let userdata: Uint8Array | undefined;
  let pause = false;
  let meterId: number | undefined;
  if (arg !== undefined && arg !== '') {
    if (/^\d+$/.test(arg)) maxLen = parseInt16(arg, 'controller.max_len');
    else {
      for (const item of splitTopLevel(arg)) {
        const [k, v] = keyValue(item);
        switch (k) {
          case 'reason':
            if (!(PACKET_IN_REASONS as readonly string[]).includes(v ?? '')) {
              throw new ValidationError('controller.reason', `unknown reason "${v}"`);
            }
            reason = v as PacketInReason;
            break;
          case 'max_len':
            maxLen = parseInt16(v ?? '', 'controller.max_len');
            break;
          case 'id':
            controllerId = parseInt16(v ?? '', 'controller.id');
            break;
          case 'userdata':
            userdata = parseHexBytes(v ?? '', 'controller.userdata');
            break;
          case 'pause':
            pause = true;
            break;
          case 'meter_id':
            meterId = parseInt32(v ?? '', 'controller.meter_id');
            break;
          default:
            throw new ValidationError('controller', `unknown key "${k}"`);
        }
      }
    }
  }
  if (reason === 'action' && controllerId === 0 && userdata === undefined && !pause && meterId === undefined) {
    return { type: 'output', port: OFPP.CONTROLLER, maxLen };
  }
  return {
    type: 'controller',
    maxLen,
    reason,
    controllerId,
    pause,
    ...(userdata === undefined ? {} : { userdata }),
    ...(meterId === undefined ? {} : { meterId }),
  };
}

function parseCt(arg: string | undefined): CtAction {
  let commit = false;
  let force = false;
  let table: number | undefined;
  let zone: number | Subfield = 0;
  let alg = 0;
  let natSpec: NatSpec | undefined;
  let exec: Action[] = [];
  for (const item of splitTopLevel(arg ?? '')) {
    if (item === 'nat' || item.startsWith('nat(')) {
      natSpec = parseNat(item === 'nat' ? undefined : item.slice(4, -1));
      continue;
    }
    if (item.startsWith('exec(')) {
      exec = parseActions(item.slice(5, -1));
      continue;
    }
    const [k, v] = keyValue(item);
    switch (k) {
      case 'commit':
        commit = true;
        break;
      case 'force':
        force = true;
        break;
      case 'table':
        table = Number(parseUint(v ?? '', 'ct.table'));
        break;
      case 'zone':
        zone = /^\d+$|^0x/i.test(v ?? '') ? parseInt16(v ?? '', 'ct.zone') : parseSubfield(v ?? '', 'ct.zone');
        break;
      case 'alg':
        alg = v === 'ftp' ? 21 : v === 'tftp' ? 69 : parseInt16(v ?? '', 'ct.alg');
        break;
      default:
        throw new ValidationError('ct', `invalid argument "${k}"`);
    }
  }
  return ct({ commit, force, table, zone, alg, nat: natSpec, exec });
}

/** Builds a validated ct action. */
export function ct(o: {
  commit?: boolean;
  force?: boolean;
  table?: number | undefined;
  zone?: number | Subfield;
  alg?: number;
  nat?: NatSpec | undefined;
  exec?: readonly Action[];
}): CtAction {
  const commit = o.commit ?? false;
  const force = o.force ?? false;
  const exec = o.exec ?? [];
  if (force && !commit) throw new ValidationError('ct.force', '"force" needs "commit"');
  if (exec.length > 0 && !commit) throw new ValidationError('ct.exec', 'exec() needs "commit"');
  if (o.nat !== undefined && o.nat.kind !== undefined && !commit) {
    throw new ValidationError('ct.nat', 'nat(src) or nat(dst) needs "commit" (a plain "nat" does not)');
  }
  for (const x of exec) {
    const dst = x.type === 'set_field' ? x.field : x.type === 'move' ? x.dst.field : undefined;
    if (dst === undefined || (dst.name !== 'ct_mark' && dst.name !== 'ct_label')) {
      throw new ValidationError(
        'ct.exec',
        `only set_field/move to ct_mark or ct_label are allowed in exec(), not ${formatAction(x)}`,
      );
    }
  }
  const zone = o.zone ?? 0;
  if (typeof zone === 'number' && (!Number.isInteger(zone) || zone < 0 || zone > 0xffff)) {
    throw new ValidationError('ct.zone', `zone ${zone} is not 0..65535`);
  }
  if (typeof zone !== 'number' && zone.nBits !== 16)
    throw new ValidationError('ct.zone', 'a zone subfield must be 16 bits wide');
  if (o.table !== undefined && (o.table < 0 || o.table > 254))
    throw new ValidationError('ct.table', 'table must be 0..254');
  return {
    type: 'ct',
    commit,
    force,
    zone,
    alg: o.alg ?? 0,
    exec,
    ...(o.table === undefined ? {} : { table: o.table }),
    ...(o.nat === undefined ? {} : { nat: o.nat }),
  };
}

/** Parses one action in ovs-ofctl syntax. */
export function parseAction(item: string): Action {
  const t = item.trim();
  const paren = /^([a-z_0-9]+)\((.*)\)$/s.exec(t);
  const colon = t.indexOf(':');
  const name = paren !== null ? (paren[1] ?? '') : colon >= 0 ? t.slice(0, colon) : t;
  const arg = paren !== null ? paren[2] : colon >= 0 ? t.slice(colon + 1) : undefined;
  const lower = name.toLowerCase();
  switch (lower) {
    case 'output': {
      const a = arg ?? '';
      if (/\[/.test(a)) return { type: 'output_reg', src: parseSubfield(a, 'output'), maxLen: 0xffff };
      const port = parsePort(a, 'output');
      return { type: 'output', port, maxLen: port === OFPP.CONTROLLER ? 0xffff : 0 };
    }
    case 'in_port':
    case 'normal':
    case 'flood':
    case 'all':
    case 'local':
    case 'table':
      if (arg === undefined) return { type: 'output', port: parsePort(name, 'output'), maxLen: 0 };
      break;
    case 'controller':
      if (paren !== null || arg === undefined) return parseController(arg);
      return { type: 'output', port: OFPP.CONTROLLER, maxLen: parseInt16(arg, 'controller') };
    case 'group':
      return { type: 'group', groupId: parseInt32(arg ?? '', 'group') };
    case 'drop':
      throw new ValidationError('actions', '"drop" must not be combined with other actions');
    case 'set_field':
    case 'load': {
      const a = arg ?? '';
      const arrow = a.lastIndexOf('->');
      if (arrow < 0) throw new ValidationError(name, `"${a}": missing "->"`);
      const v = a.slice(0, arrow);
      const dst = a.slice(arrow + 2);
      if (lower === 'load') {
        const sf = parseSubfield(dst, 'load');
        const value = parseUint(v, 'load');
        if (value > ones(sf.nBits)) throw new ValidationError('load', `value ${v} does not fit ${sf.nBits} bits`);
        return setField(sf.field, value << BigInt(sf.ofs), ones(sf.nBits) << BigInt(sf.ofs));
      }
      const def = findField(dst);
      if (def === undefined) throw new ValidationError('set_field', `unknown field "${dst}"`);
      const pv = parseFieldValue(def, v, 'set_field');
      const bytes = def.variable === true ? tunMetadataBytes(pv.value, pv.mask ?? 0n) : undefined;
      return setField(def, pv.value, pv.mask, bytes);
    }
    case 'move': {
      const a = arg ?? '';
      const [src, dst] = a.split('->');
      if (src === undefined || dst === undefined) throw new ValidationError('move', `"${a}": missing "->"`);
      return move(parseSubfield(src, 'move'), parseSubfield(dst, 'move'));
    }
    case 'mod_dl_src':
      return setField(field('eth_src'), parseMac(arg ?? '', 'mod_dl_src'));
    case 'mod_dl_dst':
      return setField(field('eth_dst'), parseMac(arg ?? '', 'mod_dl_dst'));
    case 'mod_nw_src':
      return setField(field('ip_src'), parseIpv4(arg ?? '', 'mod_nw_src'));
    case 'mod_nw_dst':
      return setField(field('ip_dst'), parseIpv4(arg ?? '', 'mod_nw_dst'));
    case 'resubmit': {
      if (paren === null) return { type: 'resubmit', port: parsePort(arg ?? '', 'resubmit'), ct: false };
      const parts = (arg ?? '').split(',');
      const port = parts[0] === undefined || parts[0] === '' ? undefined : parsePort(parts[0], 'resubmit');
      const table = parts[1] === undefined || parts[1] === '' ? undefined : Number(parseUint(parts[1], 'resubmit'));
      const withCt = parts[2] === 'ct';
      if (parts[2] !== undefined && parts[2] !== '' && !withCt)
        throw new ValidationError('resubmit', `unknown parameter "${parts[2]}"`);
      return resubmit(table, port, withCt);
    }
    case 'goto_table':
      return { type: 'goto_table', table: Number(parseUint(arg ?? '', 'goto_table')) };
    case 'ct':
      return parseCt(arg);
    case 'ct_clear':
      return { type: 'ct_clear' };
    case 'conjunction': {
      const m = /^\s*(\d+)\s*,\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(arg ?? '');
      if (m === null) throw new ValidationError('conjunction', '"conjunction" syntax is "conjunction(id,k/n)"');
      return conjunction(Number(m[1]), Number(m[2]), Number(m[3]));
    }
    case 'learn':
      return parseLearn(arg ?? '');
    case 'dec_ttl':
      return { type: 'dec_ttl' };
    case 'note':
      return note(parseHexBytes(arg ?? '', 'note'));
    case 'push_vlan':
      return { type: 'push_vlan', ethertype: parseInt16(arg ?? '', 'push_vlan') };
    case 'pop_vlan':
    case 'strip_vlan':
      return { type: 'pop_vlan' };
    case 'meter':
      return { type: 'meter', meterId: parseInt32(arg ?? '', 'meter') };
    case 'clone':
      return { type: 'clone', actions: parseActions(arg ?? '') };
    case 'exit':
      return { type: 'exit' };
  }
  throw new ValidationError('actions', `unknown action "${t}"`);
}

/** Parses an action list in ovs-ofctl syntax ("drop" is the empty list). */
export function parseActions(text: string): Action[] {
  const t = text.trim();
  if (t === 'drop' || t === '') return [];
  return splitTopLevel(t).map(parseAction);
}

// ---- constructors with validation ----------------------------------------------------------------

export function setField(def: FieldDef, value: bigint, mask?: bigint, bytes?: number): Action {
  if (!def.writable) throw new ValidationError('set_field', `${def.name} is read-only`);
  const width = fieldBits(def, bytes);
  const full = ones(def.variable === true ? width : def.bytes * 8);
  const m = mask ?? full;
  if (m !== full && !def.maskable) throw new ValidationError('set_field', `${def.name} cannot be set under a mask`);
  if (value > full || m > full) throw new ValidationError('set_field', `value does not fit ${def.name}`);
  const base = { type: 'set_field' as const, field: def, value: value & m, mask: m };
  return def.variable === true ? { ...base, bytes: bytes ?? def.bytes } : base;
}

/** A note action; the data is zero-padded the way OVS stores it (so that the action is 8-byte aligned). */
export function note(data: Uint8Array): Action {
  const padded = Math.max(6, Math.ceil((data.length + 10) / 8) * 8 - 10);
  const out = new Uint8Array(padded);
  out.set(data);
  return { type: 'note', data: out };
}

/** Tunnel-metadata value width: the smallest multiple of 4 bytes holding `v` (TLV options are 4-byte multiples). */
export function tunMetadataBytes(...values: bigint[]): number {
  const hexLen = Math.max(1, ...values.map((v) => v.toString(16).length));
  return Math.max(4, Math.ceil(Math.ceil(hexLen / 2) / 4) * 4);
}

export function move(src: Subfield, dst: Subfield): Action {
  if (src.nBits !== dst.nBits) {
    throw new ValidationError(
      'move',
      `${formatSubfield(src)} is ${src.nBits} bits but ${formatSubfield(dst)} is ${dst.nBits}`,
    );
  }
  if (!dst.field.writable) throw new ValidationError('move', `${dst.field.name} is read-only`);
  return { type: 'move', src, dst };
}

export function resubmit(table?: number, port?: number, withCt = false): Action {
  if (table === undefined && port === undefined) throw new ValidationError('resubmit', 'needs a port or a table');
  if (table !== undefined && (!Number.isInteger(table) || table < 0 || table > 254)) {
    throw new ValidationError('resubmit', `table ${table} is not 0..254`);
  }
  return {
    type: 'resubmit',
    ct: withCt,
    ...(table === undefined ? {} : { table }),
    ...(port === undefined ? {} : { port }),
  };
}

export function conjunction(id: number, clause: number, nClauses: number): Action {
  if (nClauses < 2 || nClauses > 64) throw new ValidationError('conjunction', 'conjunction must have 2..64 clauses');
  if (clause < 1 || clause > nClauses) throw new ValidationError('conjunction', 'clause index must be 1..n');
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff)
    throw new ValidationError('conjunction', 'id must be a 32-bit integer');
  return { type: 'conjunction', id, clause, nClauses };
}

export function subfieldsEqual(a: Subfield, b: Subfield): boolean {
  return subfieldEquals(a, b);
}

export { port16to32, port32to16 };
