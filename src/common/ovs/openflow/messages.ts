/**
 * OpenFlow 1.5 message codec: framing, HELLO with version bitmap, FEATURES, ECHO, BARRIER, ERROR,
 * SET_CONFIG, multipart requests and replies, bundles, PACKET_OUT, Nicira NXT_PACKET_IN2 /
 * NXT_RESUME / NXT_SET_PACKET_IN_FORMAT / NXT_TLV_TABLE_MOD, and table features (table names).
 */
import { ValidationError } from '../../util/errors.ts';
import { ByteReader, ByteWriter, OpenFlowDecodeError, formatMac } from './bytes.ts';
import { type Action, encodeActionList } from './actions.ts';
import {
  NX_VENDOR_ID,
  NXPIF,
  NXT,
  OFP_NO_BUFFER,
  OFP_VERSION_15,
  OFPBCT,
  OFPP,
  OFPT,
  PACKET_IN_REASONS,
} from './consts.ts';
import type { PacketInReason } from './consts.ts';
import { Match, decodeOxmEntries, encodeMatch } from './match.ts';

export const OFP_HEADER_LEN = 8;

export interface OfpHeader {
  readonly version: number;
  readonly type: number;
  readonly length: number;
  readonly xid: number;
}

export function readHeader(b: Uint8Array, at = 0): OfpHeader {
  if (b.length - at < OFP_HEADER_LEN) throw new OpenFlowDecodeError('truncated OpenFlow header');
  const v = new DataView(b.buffer, b.byteOffset + at, 8);
  return { version: v.getUint8(0), type: v.getUint8(1), length: v.getUint16(2), xid: v.getUint32(4) };
}

/** Starts a message; call `finishMessage` to patch the length. */
export function startMessage(type: number, xid: number, w = new ByteWriter(64)): ByteWriter {
  w.u8(OFP_VERSION_15).u8(type).u16(0).u32(xid);
  return w;
}

export function finishMessage(w: ByteWriter): Uint8Array {
  w.setU16(2, w.length);
  return w.finish();
}

/** Copies a message with a new xid (and optionally a new type). */
export function withXid(msg: Uint8Array, xid: number): Uint8Array {
  const out = msg.slice();
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(4, xid >>> 0);
  return out;
}

export function encodeSimple(type: number, xid: number, body?: Uint8Array): Uint8Array {
  const w = startMessage(type, xid);
  if (body !== undefined) w.bytes(body);
  return finishMessage(w);
}

/** HELLO advertising exactly the versions in `versions` (OpenFlow 1.5 only by default). */
export function encodeHello(xid: number, versions: readonly number[] = [OFP_VERSION_15]): Uint8Array {
  const w = startMessage(OFPT.HELLO, xid);
  let bitmap = 0;
  for (const v of versions) bitmap |= 1 << v;
  w.u16(1)
    .u16(8)
    .u32(bitmap >>> 0); // OFPHET_VERSIONBITMAP
  return finishMessage(w);
}

/** The versions a HELLO advertises (its bitmap, or its header version when it has none). */
export function decodeHelloVersions(msg: Uint8Array): number[] {
  const h = readHeader(msg);
  const r = new ByteReader(msg, 8, h.length);
  const out: number[] = [];
  while (r.remaining >= 4) {
    const type = r.u16();
    const len = r.u16();
    if (len < 4) break;
    const body = r.sub(Math.min(len - 4, r.remaining));
    r.skip(Math.min(r.remaining, (8 - (len % 8)) % 8));
    if (type === 1) {
      let base = 0;
      while (body.remaining >= 4) {
        const bm = body.u32();
        for (let i = 0; i < 32; i++) if ((bm & (1 << i)) !== 0) out.push(base + i);
        base += 32;
      }
    }
  }
  return out.length > 0 ? out : [h.version];
}

export interface SwitchFeatures {
  readonly datapathId: bigint;
  readonly nBuffers: number;
  readonly nTables: number;
  readonly capabilities: number;
}

export function decodeFeaturesReply(msg: Uint8Array): SwitchFeatures {
  const r = new ByteReader(msg, 8, readHeader(msg).length);
  const datapathId = r.u64();
  const nBuffers = r.u32();
  const nTables = r.u8();
  r.skip(3);
  const capabilities = r.u32();
  return { datapathId, nBuffers, nTables, capabilities };
}

export function encodeSetConfig(xid: number, missSendLen = 0xffff, flags = 0): Uint8Array {
  const w = startMessage(OFPT.SET_CONFIG, xid);
  w.u16(flags).u16(missSendLen);
  return finishMessage(w);
}

export interface ErrorMessage {
  readonly type: number;
  readonly code: number;
  readonly experimenter?: number;
  /** The (start of the) failing request, as sent. */
  readonly data: Uint8Array;
}

export function decodeError(msg: Uint8Array): ErrorMessage {
  const r = new ByteReader(msg, 8, readHeader(msg).length);
  const type = r.u16();
  const code = r.u16();
  if (type === 0xffff) {
    const experimenter = r.u32();
    return { type, code, experimenter, data: r.bytes(r.remaining).slice() };
  }
  return { type, code, data: r.bytes(r.remaining).slice() };
}

// ---- Nicira experimenter messages ----------------------------------------------------------------

export function startNx(subtype: number, xid: number): ByteWriter {
  const w = startMessage(OFPT.EXPERIMENTER, xid);
  w.u32(NX_VENDOR_ID).u32(subtype);
  return w;
}

/** The Nicira subtype of an OFPT_EXPERIMENTER message, or undefined for other experimenters. */
export function nxSubtype(msg: Uint8Array): number | undefined {
  if (msg.length < 16) return undefined;
  const v = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  return v.getUint32(8) === NX_VENDOR_ID ? v.getUint32(12) : undefined;
}

export function encodeSetPacketInFormat(xid: number, format: number = NXPIF.NXT_PACKET_IN2): Uint8Array {
  const w = startNx(NXT.SET_PACKET_IN_FORMAT, xid);
  w.u32(format);
  return finishMessage(w);
}

export interface TlvMapping {
  readonly optClass: number;
  readonly optType: number;
  /** Option length in bytes (multiple of 4, up to 124). */
  readonly optLen: number;
  /** tun_metadata<index>. */
  readonly index: number;
}

export function encodeTlvTableMod(
  xid: number,
  command: 'add' | 'delete' | 'clear',
  mappings: readonly TlvMapping[],
): Uint8Array {
  const w = startNx(NXT.TLV_TABLE_MOD, xid);
  w.u16({ add: 0, delete: 1, clear: 2 }[command]).zeros(6);
  for (const m of mappings) {
    if (m.optLen % 4 !== 0 || m.optLen > 124 || m.index < 0 || m.index > 63) {
      throw new ValidationError('tlv', `invalid TLV mapping for tun_metadata${m.index}`);
    }
    w.u16(m.optClass).u8(m.optType).u8(m.optLen).u16(m.index).zeros(2);
  }
  return finishMessage(w);
}

// ---- multipart -----------------------------------------------------------------------------------

export const OFPMPF_REQ_MORE = 1;
export const OFPMPF_REPLY_MORE = 1;

export function encodeMultipartRequest(xid: number, mpType: number, body?: Uint8Array, flags = 0): Uint8Array {
  const w = startMessage(OFPT.MULTIPART_REQUEST, xid);
  w.u16(mpType).u16(flags).zeros(4);
  if (body !== undefined) w.bytes(body);
  return finishMessage(w);
}

export interface MultipartReplyPart {
  readonly mpType: number;
  readonly more: boolean;
  readonly body: Uint8Array;
}

export function decodeMultipartReply(msg: Uint8Array): MultipartReplyPart {
  const h = readHeader(msg);
  const r = new ByteReader(msg, 8, h.length);
  const mpType = r.u16();
  const flags = r.u16();
  r.skip(4);
  return { mpType, more: (flags & OFPMPF_REPLY_MORE) !== 0, body: msg.subarray(16, h.length) };
}

/** Body of a flow-desc (dump flows) request. */
export function encodeFlowDescRequest(filter: {
  table?: number;
  outPort?: number;
  outGroup?: number;
  cookie?: bigint;
  cookieMask?: bigint;
  match?: Match;
}): Uint8Array {
  const w = new ByteWriter(64);
  w.u8(filter.table ?? 0xff)
    .zeros(3)
    .u32(filter.outPort ?? OFPP.ANY)
    .u32(filter.outGroup ?? 0xffffffff)
    .zeros(4);
  w.u64(filter.cookie ?? 0n).u64(filter.cookieMask ?? 0n);
  encodeMatch(filter.match ?? Match.EMPTY, w);
  return w.finish();
}

/** Body of a request selecting one id (group desc/stats, meter config, port stats): id + 4 pad. */
export function encodeIdRequest(id: number): Uint8Array {
  return new ByteWriter(8).u32(id).zeros(4).finish();
}

export interface TableName {
  readonly tableId: number;
  readonly name: string;
}

/** Body of a table-features request that renames tables (command MODIFY, as ovs-ofctl mod-table does). */
export function encodeTableNames(tables: readonly TableName[]): Uint8Array {
  const w = new ByteWriter(64 * tables.length);
  for (const t of tables) {
    const name = new TextEncoder().encode(t.name);
    if (name.length > 31) throw new ValidationError('tableName', `table name "${t.name}" is longer than 31 bytes`);
    w.u16(64).u8(t.tableId).u8(1).u32(0);
    w.bytes(name).zeros(32 - name.length);
    w.u64(0xffffffffffffffffn).u64(0xffffffffffffffffn).u32(0).u32(1000000);
  }
  return w.finish();
}

/** Decodes table names from table-features reply bodies. */
export function decodeTableNames(bodies: readonly Uint8Array[]): TableName[] {
  const out: TableName[] = [];
  for (const b of bodies) {
    const r = new ByteReader(b);
    while (r.remaining >= 64) {
      const start = r.pos;
      const length = r.u16();
      const tableId = r.u8();
      r.skip(5);
      const raw = r.bytes(32);
      const end = raw.indexOf(0);
      out.push({ tableId, name: new TextDecoder().decode(raw.subarray(0, end < 0 ? 32 : end)) });
      r.pos = start + length;
    }
  }
  return out;
}

export interface PortDesc {
  readonly portNo: number;
  readonly hwAddr: string;
  readonly name: string;
  readonly config: number;
  readonly state: number;
}

export function decodePortDescs(bodies: readonly Uint8Array[]): PortDesc[] {
  const out: PortDesc[] = [];
  for (const b of bodies) {
    const r = new ByteReader(b);
    while (r.remaining >= 40) {
      const start = r.pos;
      const portNo = r.u32();
      const length = r.u16();
      r.skip(2);
      const hw = r.uint(6);
      r.skip(2);
      const raw = r.bytes(16);
      const end = raw.indexOf(0);
      const config = r.u32();
      const state = r.u32();
      out.push({
        portNo,
        hwAddr: formatMac(hw),
        name: new TextDecoder().decode(raw.subarray(0, end < 0 ? 16 : end)),
        config,
        state,
      });
      r.pos = start + length;
    }
  }
  return out;
}

export interface PortStats {
  readonly portNo: number;
  readonly durationSec: number;
  readonly rxPackets: bigint;
  readonly txPackets: bigint;
  readonly rxBytes: bigint;
  readonly txBytes: bigint;
  readonly rxDropped: bigint;
  readonly txDropped: bigint;
  readonly rxErrors: bigint;
  readonly txErrors: bigint;
}

export function decodePortStats(bodies: readonly Uint8Array[]): PortStats[] {
  const out: PortStats[] = [];
  for (const b of bodies) {
    const r = new ByteReader(b);
    while (r.remaining >= 80) {
      const start = r.pos;
      const length = r.u16();
      r.skip(2);
      const portNo = r.u32();
      const durationSec = r.u32();
      r.skip(4);
      out.push({
        portNo,
        durationSec,
        rxPackets: r.u64(),
        txPackets: r.u64(),
        rxBytes: r.u64(),
        txBytes: r.u64(),
        rxDropped: r.u64(),
        txDropped: r.u64(),
        rxErrors: r.u64(),
        txErrors: r.u64(),
      });
      r.pos = start + length;
    }
  }
  return out;
}

// ---- bundles -------------------------------------------------------------------------------------

export function encodeBundleControl(xid: number, bundleId: number, type: number, flags: number): Uint8Array {
  const w = startMessage(OFPT.BUNDLE_CONTROL, xid);
  w.u32(bundleId).u16(type).u16(flags);
  return finishMessage(w);
}

export function decodeBundleControl(msg: Uint8Array): { bundleId: number; type: number; flags: number } {
  const r = new ByteReader(msg, 8, readHeader(msg).length);
  return { bundleId: r.u32(), type: r.u16(), flags: r.u16() };
}

/** Size of the OFPT_BUNDLE_ADD_MESSAGE header before the embedded message. */
export const BUNDLE_ADD_HEADER_LEN = 16;

/** Writes a BUNDLE_ADD_MESSAGE wrapping the message `writeInner` writes (with the same xid) into `w`. */
export function writeBundleAdd(
  w: ByteWriter,
  xid: number,
  bundleId: number,
  flags: number,
  writeInner: (w: ByteWriter) => void,
): void {
  const start = w.length;
  w.u8(OFP_VERSION_15).u8(OFPT.BUNDLE_ADD_MESSAGE).u16(0).u32(xid);
  w.u32(bundleId).u16(0).u16(flags);
  writeInner(w);
  w.setU16(start + 2, w.length - start);
  w.setU32(start + BUNDLE_ADD_HEADER_LEN + 4, xid);
}

export { OFPBCT };

// ---- packet-out / packet-in ------------------------------------------------------------------------

export interface PacketOut {
  /** The packet's ingress port for the pipeline (default CONTROLLER). */
  readonly inPort?: number;
  readonly actions: readonly Action[];
  readonly packet: Uint8Array;
}

export function encodePacketOut(xid: number, po: PacketOut): Uint8Array {
  const w = startMessage(OFPT.PACKET_OUT, xid, new ByteWriter(64 + po.packet.length));
  w.u32(OFP_NO_BUFFER);
  const lenAt = w.length;
  w.u16(0).zeros(2);
  encodeMatch(Match.EMPTY.with('in_port', BigInt(po.inPort ?? OFPP.CONTROLLER)), w);
  const aStart = w.length;
  encodeActionList(w, po.actions);
  w.setU16(lenAt, w.length - aStart);
  w.bytes(po.packet);
  return finishMessage(w);
}

export interface PacketIn {
  readonly packet: Uint8Array;
  readonly fullLen: number;
  readonly bufferId: number;
  readonly tableId: number;
  readonly cookie: bigint;
  readonly reason: PacketInReason | `reason_${number}`;
  /** Pipeline fields when the packet was sent (in_port, registers, ct_state, tunnel...). */
  readonly metadata: Match;
  readonly userdata?: Uint8Array;
  /** Present when the controller() action had "pause": pass the packet-in to resume(). */
  readonly continuation?: Uint8Array;
  /** The raw properties, for NXT_RESUME. */
  readonly rawProperties: Uint8Array;
}

/** Decodes an NXT_PACKET_IN2 message (the format we select with NXT_SET_PACKET_IN_FORMAT). */
export function decodePacketIn2(msg: Uint8Array): PacketIn {
  const h = readHeader(msg);
  const r = new ByteReader(msg, 16, h.length);
  let packet = new Uint8Array(0);
  let fullLen: number | undefined;
  let bufferId = OFP_NO_BUFFER;
  let tableId = 0;
  let cookie = 0n;
  let reasonCode = 0;
  let metadata = Match.EMPTY;
  let userdata: Uint8Array | undefined;
  let continuation: Uint8Array | undefined;
  while (r.remaining >= 4) {
    const start = r.pos;
    const type = r.u16('packet-in property');
    const len = r.u16('packet-in property length');
    if (len < 4) throw new OpenFlowDecodeError(`bad packet-in property length ${len}`);
    const body = r.sub(len - 4, 'packet-in property');
    r.pos = Math.min(h.length, start + len + ((8 - (len % 8)) % 8));
    switch (type) {
      case 0:
        packet = body.bytes(body.remaining).slice();
        break;
      case 1:
        fullLen = body.u32();
        break;
      case 2:
        bufferId = body.u32();
        break;
      case 3:
        tableId = body.u8();
        break;
      case 4:
        if (body.remaining === 12) body.skip(4);
        cookie = body.u64();
        break;
      case 5:
        reasonCode = body.u8();
        break;
      case 6:
        metadata = decodeOxmEntries(body, body.end);
        break;
      case 7:
        userdata = body.bytes(body.remaining).slice();
        break;
      case 8:
        continuation = body.bytes(body.remaining).slice();
        break;
      default:
        break;
    }
  }
  return {
    packet,
    fullLen: fullLen ?? packet.length,
    bufferId,
    tableId,
    cookie,
    reason: PACKET_IN_REASONS[reasonCode] ?? `reason_${reasonCode}`,
    metadata,
    rawProperties: msg.slice(16, h.length),
    ...(userdata === undefined ? {} : { userdata }),
    ...(continuation === undefined ? {} : { continuation }),
  };
}

/** NXT_RESUME for a paused packet-in: the same properties the switch sent. */
export function encodeResume(xid: number, pin: PacketIn): Uint8Array {
  if (pin.continuation === undefined)
    throw new ValidationError('packetIn', 'only a paused packet-in (with a continuation) can be resumed');
  const w = startNx(NXT.RESUME, xid);
  w.bytes(pin.rawProperties);
  return finishMessage(w);
}
