/**
 * Flow matches. A {@link Match} is normalized the way OVS normalizes `struct match`, so that two
 * matches selecting the same packets have the same content, the same canonical text and the same
 * key: xreg/xxreg matches are split into their 32-bit registers, ip_dscp is kept as nw_tos, the
 * ARP opcode lives in nw_proto, ICMP type/code in tp_src/tp_dst, and values are stored already
 * masked.
 *
 * Text rendering follows OVS `match_format()` field for field, so it equals what
 * `ovs-ofctl -O OpenFlow15 dump-flows` prints; {@link parseMatch} reads that text (and the usual
 * ovs-ofctl spellings) back.
 */
import { ValidationError } from '../../util/errors.ts';
import {
  ByteReader,
  ByteWriter,
  OpenFlowDecodeError,
  cidrLength,
  formatIpv4,
  formatIpv6,
  formatMac,
  hexAlt,
  hexMin,
  ones,
  parseIpv4,
  parseIpv6,
  parseMac,
  parseUint,
  prefixMask,
} from './bytes.ts';
import { OFPP, formatPort, parsePort, port16to32 } from './consts.ts';
import { OXM_CLASS, readOxmHeader } from './fields.ts';

export const ETH_TYPE = { IP: 0x0800, ARP: 0x0806, RARP: 0x8035, IPV6: 0x86dd, MPLS: 0x8847, MPLSM: 0x8848 } as const;
export const IP_PROTO = { ICMP: 1, IGMP: 2, TCP: 6, UDP: 17, ICMPV6: 58, SCTP: 132 } as const;

export interface MatchField {
  readonly value: bigint;
  readonly mask: bigint;
  /** Value width in bytes, for variable-length tunnel metadata only. */
  readonly bytes?: number;
}

interface KeyInfo {
  readonly bits: number;
  readonly maskable: boolean;
}

const KEYS: Record<string, KeyInfo> = {
  conj_id: { bits: 32, maskable: false },
  pkt_mark: { bits: 32, maskable: true },
  recirc_id: { bits: 32, maskable: false },
  dp_hash: { bits: 32, maskable: true },
  actset_output: { bits: 32, maskable: false },
  ct_state: { bits: 8, maskable: true },
  ct_zone: { bits: 16, maskable: false },
  ct_mark: { bits: 32, maskable: true },
  ct_label: { bits: 128, maskable: true },
  ct_nw_src: { bits: 32, maskable: true },
  ct_nw_dst: { bits: 32, maskable: true },
  ct_ipv6_src: { bits: 128, maskable: true },
  ct_ipv6_dst: { bits: 128, maskable: true },
  ct_nw_proto: { bits: 8, maskable: false },
  ct_tp_src: { bits: 16, maskable: true },
  ct_tp_dst: { bits: 16, maskable: true },
  dl_type: { bits: 16, maskable: false },
  nw_proto: { bits: 8, maskable: false },
  tun_id: { bits: 64, maskable: true },
  tun_src: { bits: 32, maskable: true },
  tun_dst: { bits: 32, maskable: true },
  tun_ipv6_src: { bits: 128, maskable: true },
  tun_ipv6_dst: { bits: 128, maskable: true },
  metadata: { bits: 64, maskable: true },
  in_port: { bits: 32, maskable: false },
  vlan_tci: { bits: 16, maskable: true },
  dl_src: { bits: 48, maskable: true },
  dl_dst: { bits: 48, maskable: true },
  nw_src: { bits: 32, maskable: true },
  nw_dst: { bits: 32, maskable: true },
  ipv6_src: { bits: 128, maskable: true },
  ipv6_dst: { bits: 128, maskable: true },
  ipv6_label: { bits: 20, maskable: true },
  nw_tos: { bits: 8, maskable: false },
  nw_ecn: { bits: 2, maskable: false },
  nw_ttl: { bits: 8, maskable: false },
  nw_frag: { bits: 2, maskable: true },
  arp_sha: { bits: 48, maskable: true },
  arp_tha: { bits: 48, maskable: true },
  tp_src: { bits: 16, maskable: true },
  tp_dst: { bits: 16, maskable: true },
  nd_target: { bits: 128, maskable: true },
  tcp_flags: { bits: 12, maskable: true },
};
for (let i = 0; i < 16; i++) KEYS[`reg${i}`] = { bits: 32, maskable: true };
for (let i = 0; i < 64; i++) KEYS[`tun_metadata${i}`] = { bits: 124 * 8, maskable: true };

function keyInfo(key: string): KeyInfo {
  const info = KEYS[key];
  if (info === undefined) throw new ValidationError(key, 'not a match field');
  return info;
}

/** Names of the canonical match keys. */
export function isMatchKey(key: string): boolean {
  return key in KEYS;
}

/** An immutable, normalized match. */
/**
 * Encoding order of the keys: prerequisites (dl_type, nw_proto, ICMP type) come before the fields
 * that need them, as OVS checks prerequisites entry by entry.
 */
const KEY_ORDER: readonly string[] = [
  'in_port',
  'dl_dst',
  'dl_src',
  'dl_type',
  'vlan_tci',
  'nw_proto',
  'nw_tos',
  'nw_ecn',
  'nw_ttl',
  'nw_frag',
  'nw_src',
  'nw_dst',
  'ipv6_src',
  'ipv6_dst',
  'ipv6_label',
  'tp_src',
  'tp_dst',
  'arp_sha',
  'arp_tha',
  'nd_target',
  'tcp_flags',
  'tun_id',
  'tun_src',
  'tun_dst',
  'tun_ipv6_src',
  'tun_ipv6_dst',
  ...Array.from({ length: 64 }, (_, i) => `tun_metadata${i}`),
  'metadata',
  ...Array.from({ length: 16 }, (_, i) => `reg${i}`),
  'pkt_mark',
  'ct_state',
  'ct_zone',
  'ct_mark',
  'ct_label',
  'ct_nw_proto',
  'ct_nw_src',
  'ct_nw_dst',
  'ct_ipv6_src',
  'ct_ipv6_dst',
  'ct_tp_src',
  'ct_tp_dst',
  'conj_id',
  'recirc_id',
  'dp_hash',
  'actset_output',
];
const RANK = new Map(KEY_ORDER.map((k, i) => [k, i]));

type Entry = readonly [key: string, field: MatchField, rank: number];

/**
 * Checks and normalizes one field: the value is masked, an all-zero mask means "not matched"
 * (undefined). Throws a ValidationError naming the key for unknown keys, values or masks wider than
 * the field, masks on fields that cannot be masked, and invalid port numbers.
 */
function normalizeField(
  key: string,
  value: bigint,
  mask: bigint | undefined,
  bytes: number | undefined,
): MatchField | undefined {
  const info = KEYS[key];
  if (info === undefined || !RANK.has(key)) throw new ValidationError(key, 'not a match field');
  const bits = bytes === undefined ? info.bits : bytes * 8;
  const full = ones(bits);
  const m = mask ?? full;
  if (value < 0n || value > full) throw new ValidationError(key, `value ${hexMin(value)} does not fit ${bits} bits`);
  if (m < 0n || m > full) throw new ValidationError(key, `mask ${hexMin(m)} does not fit ${bits} bits`);
  if (key === 'in_port' && value >= 0xff00n && value < 0xfffffff8n) {
    throw new ValidationError(key, `${value} is not an OpenFlow port number (1..65279 or a reserved port)`);
  }
  if (m === 0n) return undefined;
  if (!info.maskable && m !== full) throw new ValidationError(key, 'this field cannot be masked');
  return bytes === undefined ? { value: value & m, mask: m } : { value: value & m, mask: m, bytes };
}

/** What match changes need: read a field, set a field (Match returns a copy, MatchDraft itself). */
export interface MatchOps {
  get(key: string): MatchField | undefined;
  with(key: string, value: bigint, mask?: bigint, bytes?: number): MatchOps;
}

/** A mutable match under construction (used by flow builders to avoid copies); see {@link Match.with}. */
export class MatchDraft implements MatchOps {
  private readonly fields = new Map<string, MatchField>();

  get(key: string): MatchField | undefined {
    return this.fields.get(key);
  }
  with(key: string, value: bigint, mask?: bigint, bytes?: number): this {
    const f = normalizeField(key, value, mask, bytes);
    if (f === undefined) this.fields.delete(key);
    else this.fields.set(key, f);
    return this;
  }
  build(): Match {
    return Match.fromFields(this.fields);
  }
}

/** An immutable, normalized match. */
export class Match {
  static readonly EMPTY = new Match([]);
  /** Entries sorted by encoding rank (few: a linear scan beats a Map here). */
  private readonly list: readonly Entry[];
  private text: string | undefined;

  private constructor(list: readonly Entry[]) {
    this.list = list;
  }

  /** Builds a match from canonical keys (see the module comment). */
  static of(entries: Iterable<readonly [string, MatchField]>): Match {
    let m = Match.EMPTY;
    for (const [k, v] of entries) m = m.with(k, v.value, v.mask, v.bytes);
    return m;
  }

  get size(): number {
    return this.list.length;
  }
  get(key: string): MatchField | undefined {
    for (const e of this.list) if (e[0] === key) return e[1];
    return undefined;
  }
  has(key: string): boolean {
    return this.get(key) !== undefined;
  }
  /** Entries in encoding order. */
  *entries(): IterableIterator<[string, MatchField]> {
    for (const e of this.list) yield [e[0], e[1]];
  }
  /** The exact value of a fully-masked key, or undefined. */
  exact(key: string): bigint | undefined {
    const f = this.get(key);
    if (f === undefined) return undefined;
    const bits = f.bytes === undefined ? keyInfo(key).bits : f.bytes * 8;
    return f.mask === ones(bits) ? f.value : undefined;
  }

  /**
   * A copy with `key` set to `value` under `mask` (default: exact). A zero mask removes the key.
   * Throws a ValidationError naming the key for unknown keys, values wider than the field, or masks
   * on fields that cannot be masked.
   */
  with(key: string, value: bigint, mask?: bigint, bytes?: number): Match {
    const field = normalizeField(key, value, mask, bytes);
    const rest = this.list.filter((e) => e[0] !== key);
    if (field === undefined) return rest.length === this.list.length ? this : new Match(rest);
    const rank = RANK.get(key) ?? 0;
    let i = 0;
    while (i < rest.length && (rest[i]?.[2] ?? 0) < rank) i++;
    return new Match([...rest.slice(0, i), [key, field, rank], ...rest.slice(i)]);
  }

  /** A match from normalized fields (see {@link MatchDraft}). */
  static fromFields(fields: ReadonlyMap<string, MatchField>): Match {
    const list: Entry[] = [];
    for (const [k, f] of fields) list.push([k, f, RANK.get(k) ?? 0]);
    list.sort((a, b) => a[2] - b[2]);
    return new Match(list);
  }

  without(key: string): Match {
    const rest = this.list.filter((e) => e[0] !== key);
    return rest.length === this.list.length ? this : new Match(rest);
  }

  /** The match in ovs-ofctl syntax (without priority), e.g. "tcp,reg0=0x1/0xf,nw_dst=10.0.0.1". */
  toString(): string {
    this.text ??= formatMatch(this);
    return this.text;
  }

  equals(other: Match): boolean {
    return this.toString() === other.toString();
  }
}

// ---- rendering (OVS match_format) ------------------------------------------------------------

const CT_STATE_BITS: readonly [number, string][] = [
  [0x01, 'new'],
  [0x02, 'est'],
  [0x04, 'rel'],
  [0x08, 'rpl'],
  [0x10, 'inv'],
  [0x20, 'trk'],
  [0x40, 'snat'],
  [0x80, 'dnat'],
];
const TCP_FLAG_BITS: readonly [number, string][] = [
  [0x001, 'fin'],
  [0x002, 'syn'],
  [0x004, 'rst'],
  [0x008, 'psh'],
  [0x010, 'ack'],
  [0x020, 'urg'],
  [0x040, 'ece'],
  [0x080, 'cwr'],
  [0x100, 'ns'],
];

function flagName(table: readonly [number, string][], bit: number): string | undefined {
  return table.find(([b]) => b === bit)?.[1];
}

/** OVS format_flags: names joined by '|', or "0". */
function formatFlags(table: readonly [number, string][], flags: number): string {
  if (flags === 0) return '0';
  const out: string[] = [];
  for (let bit = 1; bit <= flags; bit <<= 1) {
    if ((flags & bit) === 0) continue;
    out.push(flagName(table, bit) ?? `[${bit.toString(16)}]`);
  }
  return out.join('|');
}

/** OVS format_flags_masked (without the name). */
function formatFlagsMasked(table: readonly [number, string][], flags: number, mask: number, max: number): string {
  if (mask === max) return formatFlags(table, flags);
  if (mask === 0) return '0/0';
  let out = '';
  for (let bit = 1; bit <= mask; bit <<= 1) {
    if ((mask & bit) === 0) continue;
    out += `${(flags & bit) !== 0 ? '+' : '-'}${flagName(table, bit) ?? '[Unknown]'}`;
  }
  return out;
}

export function formatCtState(value: number, mask: number): string {
  return mask === 0xff ? formatFlags(CT_STATE_BITS, value) : formatFlagsMasked(CT_STATE_BITS, value, mask, 0xff);
}

export function formatTcpFlags(value: number, mask: number): string {
  return formatFlagsMasked(TCP_FLAG_BITS, value, mask, 0xfff);
}

function ipMasked(v: bigint, m: bigint): string {
  if (m === 0xffffffffn) return formatIpv4(v);
  const len = cidrLength(m, 32);
  return `${formatIpv4(v)}/${len >= 0 ? String(len) : formatIpv4(m)}`;
}

function ipv6Masked(v: bigint, m: bigint): string {
  if (m === ones(128)) return formatIpv6(v);
  const len = cidrLength(m, 128);
  return `${formatIpv6(v)}/${len >= 0 ? String(len) : formatIpv6(m)}`;
}

function ethMasked(v: bigint, m: bigint): string {
  return m === ones(48) ? formatMac(v) : `${formatMac(v)}/${formatMac(m)}`;
}

/** Renders a match exactly as OVS match_format() does (priority excluded). */
export function formatMatch(m: Match): string {
  const s: string[] = [];
  const g = (k: string): MatchField | undefined => m.get(k);
  const u32m = (name: string, key = name): void => {
    const f = g(key);
    if (f === undefined) return;
    s.push(f.mask === 0xffffffffn ? `${name}=${hexAlt(f.value)}` : `${name}=${hexAlt(f.value)}/${hexAlt(f.mask)}`);
  };
  const u64m = (name: string, key = name): void => {
    const f = g(key);
    if (f === undefined) return;
    s.push(f.mask === ones(64) ? `${name}=${hexAlt(f.value)}` : `${name}=${hexAlt(f.value)}/${hexAlt(f.mask)}`);
  };
  const u16m = (name: string, key = name): void => {
    const f = g(key);
    if (f === undefined) return;
    s.push(f.mask === 0xffffn ? `${name}=${f.value}` : `${name}=0x${f.value.toString(16)}/0x${f.mask.toString(16)}`);
  };
  const ip = (name: string, key = name): void => {
    const f = g(key);
    if (f !== undefined) s.push(`${name}=${ipMasked(f.value, f.mask)}`);
  };
  const ip6 = (name: string, key = name): void => {
    const f = g(key);
    if (f !== undefined) s.push(`${name}=${ipv6Masked(f.value, f.mask)}`);
  };
  const eth = (name: string, key = name): void => {
    const f = g(key);
    if (f !== undefined) s.push(`${name}=${ethMasked(f.value, f.mask)}`);
  };

  u32m('pkt_mark');
  u32m('recirc_id');
  u32m('dp_hash');
  const conj = g('conj_id');
  if (conj !== undefined) s.push(`conj_id=${conj.value}`);
  const actset = g('actset_output');
  if (actset !== undefined) s.push(`actset_output=${formatPort(Number(actset.value))}`);
  const cts = g('ct_state');
  if (cts !== undefined) s.push(`ct_state=${formatCtState(Number(cts.value), Number(cts.mask))}`);
  u16m('ct_zone');
  u32m('ct_mark');
  const label = g('ct_label');
  if (label !== undefined) {
    s.push(
      label.mask === ones(128)
        ? `ct_label=${hexMin(label.value)}`
        : `ct_label=${hexMin(label.value)}/${hexMin(label.mask)}`,
    );
  }
  ip('ct_nw_src');
  ip6('ct_ipv6_src');
  ip('ct_nw_dst');
  ip6('ct_ipv6_dst');
  const ctProto = g('ct_nw_proto');
  if (ctProto !== undefined) {
    s.push(`ct_nw_proto=${ctProto.value}`);
    u16m('ct_tp_src');
    u16m('ct_tp_dst');
  }

  const dlType = m.exact('dl_type');
  const nwProto = g('nw_proto');
  let skipType = false;
  let skipProto = false;
  if (dlType !== undefined) {
    skipType = true;
    const p = nwProto?.value;
    if (dlType === BigInt(ETH_TYPE.IP)) {
      const name =
        p === undefined
          ? 'ip'
          : ({ 1: 'icmp', 2: 'igmp', 6: 'tcp', 17: 'udp', 132: 'sctp' } as Record<string, string>)[String(p)];
      s.push(name ?? 'ip');
      skipProto = p !== undefined && name !== undefined;
    } else if (dlType === BigInt(ETH_TYPE.IPV6)) {
      const name =
        p === undefined
          ? 'ipv6'
          : ({ 58: 'icmp6', 6: 'tcp6', 17: 'udp6', 132: 'sctp6' } as Record<string, string>)[String(p)];
      s.push(name ?? 'ipv6');
      skipProto = p !== undefined && name !== undefined;
    } else if (dlType === BigInt(ETH_TYPE.ARP)) s.push('arp');
    else if (dlType === BigInt(ETH_TYPE.RARP)) s.push('rarp');
    else if (dlType === BigInt(ETH_TYPE.MPLS)) s.push('mpls');
    else if (dlType === BigInt(ETH_TYPE.MPLSM)) s.push('mplsm');
    else skipType = false;
  }
  for (let i = 0; i < 16; i++) u32m(`reg${i}`);

  u64m('tun_id');
  ip('tun_src');
  ip('tun_dst');
  ip6('tun_ipv6_src');
  ip6('tun_ipv6_dst');
  for (let i = 0; i < 64; i++) {
    const f = g(`tun_metadata${i}`);
    if (f === undefined) continue;
    const full = f.mask === ones((f.bytes ?? 124) * 8);
    s.push(full ? `tun_metadata${i}=${hexMin(f.value)}` : `tun_metadata${i}=${hexMin(f.value)}/${hexMin(f.mask)}`);
  }
  u64m('metadata');
  const inPort = g('in_port');
  if (inPort !== undefined) s.push(`in_port=${formatPort(Number(inPort.value))}`);

  const tci = g('vlan_tci');
  if (tci !== undefined) {
    const v = Number(tci.value);
    const mk = Number(tci.mask);
    const vidMask = mk & 0x0fff;
    const pcpMask = mk & 0xe000;
    const cfi = mk & 0x1000;
    if (
      cfi !== 0 &&
      (v & 0x1000) !== 0 &&
      (vidMask === 0 || vidMask === 0x0fff) &&
      (pcpMask === 0 || pcpMask === 0xe000) &&
      (vidMask !== 0 || pcpMask !== 0)
    ) {
      if (vidMask !== 0) s.push(`dl_vlan=${v & 0xfff}`);
      if (pcpMask !== 0) s.push(`dl_vlan_pcp=${v >> 13}`);
    } else if (mk === 0xffff) {
      s.push(`vlan_tci=0x${v.toString(16).padStart(4, '0')}`);
    } else {
      s.push(`vlan_tci=0x${v.toString(16).padStart(4, '0')}/0x${mk.toString(16).padStart(4, '0')}`);
    }
  }
  eth('dl_src');
  eth('dl_dst');
  if (!skipType && dlType !== undefined) s.push(`dl_type=0x${dlType.toString(16).padStart(4, '0')}`);
  const isArp = dlType === BigInt(ETH_TYPE.ARP) || dlType === BigInt(ETH_TYPE.RARP);
  if (dlType === BigInt(ETH_TYPE.IPV6)) {
    ip6('ipv6_src');
    ip6('ipv6_dst');
    const lbl = g('ipv6_label');
    if (lbl !== undefined) {
      const hex = (x: bigint): string => `0x${x.toString(16).padStart(5, '0')}`;
      s.push(lbl.mask === 0xfffffn ? `ipv6_label=${hex(lbl.value)}` : `ipv6_label=${hex(lbl.value)}/${hex(lbl.mask)}`);
    }
  } else if (isArp) {
    ip('arp_spa', 'nw_src');
    ip('arp_tpa', 'nw_dst');
  } else {
    ip('nw_src');
    ip('nw_dst');
  }
  if (!skipProto && nwProto !== undefined) s.push(`${isArp ? 'arp_op' : 'nw_proto'}=${nwProto.value}`);
  if (isArp) {
    eth('arp_sha');
    eth('arp_tha');
  }
  const tos = g('nw_tos');
  if (tos !== undefined) s.push(`nw_tos=${tos.value & 0xfcn}`);
  const ecn = g('nw_ecn');
  if (ecn !== undefined) s.push(`nw_ecn=${ecn.value}`);
  const ttl = g('nw_ttl');
  if (ttl !== undefined) s.push(`nw_ttl=${ttl.value}`);
  const frag = g('nw_frag');
  if (frag !== undefined) {
    const v = Number(frag.value);
    const any = (v & 1) !== 0;
    const later = (v & 2) !== 0;
    if (frag.mask === 3n) s.push(`nw_frag=${any ? (later ? 'later' : 'first') : later ? '<error>' : 'no'}`);
    else if (frag.mask === 1n) s.push(`nw_frag=${any ? 'yes' : 'no'}`);
    else s.push(`nw_frag=${later ? 'later' : 'not_later'}`);
  }
  const proto = nwProto?.value;
  if (dlType === BigInt(ETH_TYPE.IP) && proto === BigInt(IP_PROTO.ICMP)) {
    u16m('icmp_type', 'tp_src');
    u16m('icmp_code', 'tp_dst');
  } else if (dlType === BigInt(ETH_TYPE.IP) && proto === BigInt(IP_PROTO.IGMP)) {
    u16m('igmp_type', 'tp_src');
    u16m('igmp_code', 'tp_dst');
  } else if (dlType === BigInt(ETH_TYPE.IPV6) && proto === BigInt(IP_PROTO.ICMPV6)) {
    u16m('icmp_type', 'tp_src');
    u16m('icmp_code', 'tp_dst');
    ip6('nd_target');
    eth('nd_sll', 'arp_sha');
    eth('nd_tll', 'arp_tha');
  } else {
    u16m('tp_src');
    u16m('tp_dst');
  }
  const tcpFlags = g('tcp_flags');
  if (
    tcpFlags !== undefined &&
    (dlType === BigInt(ETH_TYPE.IP) || dlType === BigInt(ETH_TYPE.IPV6)) &&
    proto === BigInt(IP_PROTO.TCP)
  ) {
    s.push(`tcp_flags=${formatTcpFlags(Number(tcpFlags.value), Number(tcpFlags.mask))}`);
  }
  return s.join(',');
}

// ---- wire encoding ---------------------------------------------------------------------------

interface Code {
  readonly cls: number;
  readonly field: number;
  readonly bytes: number;
}
const OF = (field: number, bytes: number): Code => ({ cls: OXM_CLASS.OPENFLOW_BASIC, field, bytes });
const NX1 = (field: number, bytes: number): Code => ({ cls: OXM_CLASS.NXM_1, field, bytes });
const NX0 = (field: number, bytes: number): Code => ({ cls: OXM_CLASS.NXM_0, field, bytes });

function putOxm(w: ByteWriter, c: Code, value: bigint, mask: bigint, full: bigint): void {
  const masked = mask !== full;
  w.u32(((c.cls << 16) | (c.field << 9) | (masked ? 0x100 : 0) | (masked ? c.bytes * 2 : c.bytes)) >>> 0);
  w.uint(value, c.bytes);
  if (masked) w.uint(mask, c.bytes);
}

/** Encodes the match as an OpenFlow 1.5 `ofp_match` (type OXM), padded to 8 bytes. */
export function encodeMatch(m: Match, w: ByteWriter): void {
  const start = w.length;
  w.u16(1); // OFPMT_OXM
  w.u16(0); // length, patched below
  const dlType = m.exact('dl_type');
  const proto = m.exact('nw_proto');
  const isArp = dlType === ARP || dlType === RARP;
  const isV6 = dlType === IPV6;
  for (const [key, f] of m.entries()) {
    const c0 = codeFor(key, isArp, isV6, proto);
    const c = c0.bytes === 0 ? { ...c0, bytes: f.bytes ?? 124 } : c0;
    const keyBits = f.bytes === undefined ? keyInfo(key).bits : f.bytes * 8;
    const exact = f.mask === ones(keyBits);
    const full = ones(c.bytes * 8);
    const value = key === 'nw_tos' ? f.value >> 2n : f.value;
    putOxm(w, c, value, exact ? full : f.mask, full);
  }
  w.setU16(start + 2, w.length - start);
  w.pad8(start);
}

const ARP = BigInt(ETH_TYPE.ARP);
const RARP = BigInt(ETH_TYPE.RARP);
const IPV6 = BigInt(ETH_TYPE.IPV6);

/** Fixed code points by key (those that do not depend on the protocol). */
const FIXED_CODES: Readonly<Record<string, Code>> = {
  in_port: OF(0, 4),
  dl_dst: OF(3, 6),
  dl_src: OF(4, 6),
  dl_type: OF(5, 2),
  vlan_tci: NX0(4, 2),
  nw_tos: OF(8, 1),
  nw_ecn: OF(9, 1),
  nw_ttl: NX1(29, 1),
  nw_frag: NX1(26, 1),
  ipv6_src: OF(26, 16),
  ipv6_dst: OF(27, 16),
  ipv6_label: OF(28, 4),
  nd_target: OF(31, 16),
  tcp_flags: OF(42, 2),
  tun_id: OF(38, 8),
  tun_src: NX1(31, 4),
  tun_dst: NX1(32, 4),
  tun_ipv6_src: NX1(109, 16),
  tun_ipv6_dst: NX1(110, 16),
  metadata: OF(2, 8),
  pkt_mark: NX1(33, 4),
  ct_state: NX1(105, 4),
  ct_zone: NX1(106, 2),
  ct_mark: NX1(107, 4),
  ct_label: NX1(108, 16),
  ct_nw_proto: NX1(119, 1),
  ct_nw_src: NX1(120, 4),
  ct_nw_dst: NX1(121, 4),
  ct_ipv6_src: NX1(122, 16),
  ct_ipv6_dst: NX1(123, 16),
  ct_tp_src: NX1(124, 2),
  ct_tp_dst: NX1(125, 2),
  conj_id: NX1(37, 4),
  recirc_id: NX1(36, 4),
  dp_hash: NX1(35, 4),
  actset_output: OF(43, 4),
  ...Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`reg${i}`, NX1(i, 4)])),
};

const L4_CODES: Readonly<Record<string, readonly [Code, Code]>> = {
  [IP_PROTO.TCP]: [OF(13, 2), OF(14, 2)],
  [IP_PROTO.UDP]: [OF(15, 2), OF(16, 2)],
  [IP_PROTO.SCTP]: [OF(17, 2), OF(18, 2)],
};

function codeFor(key: string, isArp: boolean, isV6: boolean, proto: bigint | undefined): Code {
  const fixed = FIXED_CODES[key];
  if (fixed !== undefined) return fixed;
  switch (key) {
    case 'nw_proto':
      return isArp ? OF(21, 2) : OF(10, 1);
    case 'nw_src':
      return isArp ? OF(22, 4) : OF(11, 4);
    case 'nw_dst':
      return isArp ? OF(23, 4) : OF(12, 4);
    case 'arp_sha':
      return isArp ? OF(24, 6) : OF(32, 6);
    case 'arp_tha':
      return isArp ? OF(25, 6) : OF(33, 6);
    case 'tp_src':
    case 'tp_dst': {
      const dst = key === 'tp_dst' ? 1 : 0;
      const l4 = proto === undefined ? undefined : L4_CODES[String(proto)];
      if (l4 !== undefined) return l4[dst];
      if (proto === BigInt(IP_PROTO.ICMP) && !isV6) return OF(19 + dst, 1);
      if (proto === BigInt(IP_PROTO.ICMPV6) && isV6) return OF(29 + dst, 1);
      throw new ValidationError(key, 'transport ports need tcp, udp, sctp, icmp or icmp6 to be matched first');
    }
  }
  const tm = /^tun_metadata(\d+)$/.exec(key);
  if (tm !== null) {
    const i = Number(tm[1]);
    return NX1(40 + i, 0);
  }
  throw new ValidationError(key, 'not a match field');
}

/**
 * Decodes OXM/NXM entries into canonical keys. Used for `ofp_match` in replies and for the
 * metadata of NXT_PACKET_IN2. Unknown entries are skipped (and listed in `unknown`).
 */
export function decodeOxmEntries(r: ByteReader, end: number, unknown: string[] = []): Match {
  const entries = new Map<string, { value: bigint; mask: bigint; bytes?: number }>();
  const set = (key: string, value: bigint, mask: bigint, bytes?: number): void => {
    const prev = entries.get(key);
    if (prev === undefined) entries.set(key, bytes === undefined ? { value, mask } : { value, mask, bytes });
    else entries.set(key, { value: (prev.value & ~mask) | (value & mask), mask: prev.mask | mask });
  };
  const pending: { cls: number; field: number; value: bigint; mask: bigint; len: number }[] = [];
  while (r.pos + 4 <= end) {
    const { cls, field: fieldNo, hasMask, length: n } = readOxmHeader(r);
    const value = r.uint(n, 'OXM value');
    const mask = hasMask ? r.uint(n, 'OXM mask') : ones(n * 8);
    pending.push({ cls, field: fieldNo, value, mask, len: n });
  }
  for (const p of pending) {
    const { cls, field: fn, value: v, mask: mk, len } = p;
    if (cls === OXM_CLASS.OPENFLOW_BASIC) {
      switch (fn) {
        case 0:
          set('in_port', v, mk);
          break;
        case 2:
          set('metadata', v, mk);
          break;
        case 3:
          set('dl_dst', v, mk);
          break;
        case 4:
          set('dl_src', v, mk);
          break;
        case 5:
          set('dl_type', v, mk);
          break;
        case 6:
          set('vlan_tci', v & 0x1fffn, mk & 0x1fffn);
          break;
        case 7:
          set('vlan_tci', (v & 7n) << 13n, 0xe000n);
          break;
        case 8:
          set('nw_tos', (v & 0x3fn) << 2n, 0xffn);
          break;
        case 9:
          set('nw_ecn', v, mk);
          break;
        case 10:
          set('nw_proto', v, mk);
          break;
        case 11:
          set('nw_src', v, mk);
          break;
        case 12:
          set('nw_dst', v, mk);
          break;
        case 13:
        case 15:
        case 17:
          set('tp_src', v, mk);
          break;
        case 14:
        case 16:
        case 18:
          set('tp_dst', v, mk);
          break;
        case 19:
        case 29:
          set('tp_src', v, 0xffffn);
          break;
        case 20:
        case 30:
          set('tp_dst', v, 0xffffn);
          break;
        case 21:
          set('nw_proto', v & 0xffn, 0xffn);
          break;
        case 22:
          set('nw_src', v, mk);
          break;
        case 23:
          set('nw_dst', v, mk);
          break;
        case 24:
        case 32:
          set('arp_sha', v, mk);
          break;
        case 25:
        case 33:
          set('arp_tha', v, mk);
          break;
        case 26:
          set('ipv6_src', v, mk);
          break;
        case 27:
          set('ipv6_dst', v, mk);
          break;
        case 28:
          set('ipv6_label', v, mk);
          break;
        case 31:
          set('nd_target', v, mk);
          break;
        case 38:
          set('tun_id', v, mk);
          break;
        case 42:
          set('tcp_flags', v & 0xfffn, mk & 0xfffn);
          break;
        case 43:
          set('actset_output', v, mk);
          break;
        default:
          unknown.push(`OXM_OF(${fn})`);
      }
    } else if (cls === OXM_CLASS.PACKET_REGS) {
      set(`reg${fn * 2}`, v >> 32n, mk >> 32n);
      set(`reg${fn * 2 + 1}`, v & 0xffffffffn, mk & 0xffffffffn);
    } else if (cls === OXM_CLASS.NXM_0) {
      const map: Record<number, string> = {
        1: 'dl_dst',
        2: 'dl_src',
        3: 'dl_type',
        4: 'vlan_tci',
        6: 'nw_proto',
        7: 'nw_src',
        8: 'nw_dst',
        9: 'tp_src',
        10: 'tp_dst',
        11: 'tp_src',
        12: 'tp_dst',
        16: 'nw_src',
        17: 'nw_dst',
      };
      if (fn === 0) set('in_port', BigInt(port16to32(Number(v))), 0xffffffffn);
      else if (fn === 5) set('nw_tos', v & 0xfcn, 0xffn);
      else if (fn === 13) set('tp_src', v, 0xffffn);
      else if (fn === 14) set('tp_dst', v, 0xffffn);
      else if (fn === 15) set('nw_proto', v & 0xffn, 0xffn);
      else if (map[fn] !== undefined) set(map[fn], v, mk);
      else unknown.push(`NXM_OF(${fn})`);
    } else if (cls === OXM_CLASS.NXM_1) {
      if (fn < 16) set(`reg${fn}`, v, mk);
      else if (fn >= 40 && fn < 104) set(`tun_metadata${fn - 40}`, v, mk, len);
      else if (fn >= 111 && fn < 115) {
        const base = (fn - 111) * 4;
        for (let i = 0; i < 4; i++) {
          const shift = BigInt((3 - i) * 32);
          set(`reg${base + i}`, (v >> shift) & 0xffffffffn, (mk >> shift) & 0xffffffffn);
        }
      } else {
        const map: Record<number, string> = {
          16: 'tun_id',
          17: 'arp_sha',
          18: 'arp_tha',
          19: 'ipv6_src',
          20: 'ipv6_dst',
          21: 'tp_src',
          22: 'tp_dst',
          23: 'nd_target',
          24: 'arp_sha',
          25: 'arp_tha',
          26: 'nw_frag',
          27: 'ipv6_label',
          28: 'nw_ecn',
          29: 'nw_ttl',
          31: 'tun_src',
          32: 'tun_dst',
          33: 'pkt_mark',
          34: 'tcp_flags',
          35: 'dp_hash',
          36: 'recirc_id',
          37: 'conj_id',
          105: 'ct_state',
          106: 'ct_zone',
          107: 'ct_mark',
          108: 'ct_label',
          109: 'tun_ipv6_src',
          110: 'tun_ipv6_dst',
          119: 'ct_nw_proto',
          120: 'ct_nw_src',
          121: 'ct_nw_dst',
          122: 'ct_ipv6_src',
          123: 'ct_ipv6_dst',
          124: 'ct_tp_src',
          125: 'ct_tp_dst',
        };
        const key = map[fn];
        if (key === undefined) unknown.push(`NXM_NX(${fn})`);
        else if (key === 'tp_src' || key === 'tp_dst') set(key, v, 0xffffn);
        else if (key === 'ct_state') set(key, v & 0xffn, mk & 0xffn);
        else set(key, v, mk);
      }
    } else {
      unknown.push(`class 0x${cls.toString(16)}(${fn})`);
    }
  }
  let m = Match.EMPTY;
  for (const [k, e] of entries) {
    const info = keyInfo(k);
    const bits = e.bytes === undefined ? info.bits : e.bytes * 8;
    // Zero-valued "packet absent" entries (e.g. packet-in metadata) keep their meaning; full masks are exact.
    m = m.with(k, e.value & ones(bits), e.mask & ones(bits), e.bytes);
  }
  return m;
}

/** Decodes an `ofp_match` (type OXM) and skips its padding. */
export function decodeMatch(r: ByteReader): Match {
  const start = r.pos;
  const type = r.u16('match type');
  const length = r.u16('match length');
  if (type !== 1) throw new OpenFlowDecodeError(`unsupported match type ${type}`);
  if (length < 4) throw new OpenFlowDecodeError(`bad match length ${length}`);
  const m = decodeOxmEntries(r, start + length);
  r.pos = start + length;
  const pad = (8 - (length % 8)) % 8;
  r.skip(pad, 'match padding');
  return m;
}

// ---- text parsing ----------------------------------------------------------------------------

const SHORTHANDS: Record<string, [number, number | undefined]> = {
  ip: [ETH_TYPE.IP, undefined],
  ipv4: [ETH_TYPE.IP, undefined],
  icmp: [ETH_TYPE.IP, IP_PROTO.ICMP],
  igmp: [ETH_TYPE.IP, IP_PROTO.IGMP],
  tcp: [ETH_TYPE.IP, IP_PROTO.TCP],
  udp: [ETH_TYPE.IP, IP_PROTO.UDP],
  sctp: [ETH_TYPE.IP, IP_PROTO.SCTP],
  ipv6: [ETH_TYPE.IPV6, undefined],
  icmp6: [ETH_TYPE.IPV6, IP_PROTO.ICMPV6],
  tcp6: [ETH_TYPE.IPV6, IP_PROTO.TCP],
  udp6: [ETH_TYPE.IPV6, IP_PROTO.UDP],
  sctp6: [ETH_TYPE.IPV6, IP_PROTO.SCTP],
  arp: [ETH_TYPE.ARP, undefined],
  rarp: [ETH_TYPE.RARP, undefined],
  mpls: [ETH_TYPE.MPLS, undefined],
  mplsm: [ETH_TYPE.MPLSM, undefined],
};

/** Sets dl_type (and nw_proto) for a protocol shorthand such as "ip", "tcp6" or "arp". */
export function withProtocol<M extends MatchOps>(m: M, shorthand: string): M {
  const p = SHORTHANDS[shorthand];
  if (p === undefined) throw new ValidationError('protocol', `unknown protocol "${shorthand}"`);
  const out = m.with('dl_type', BigInt(p[0])) as M;
  return p[1] === undefined ? out : (out.with('nw_proto', BigInt(p[1])) as M);
}

/** Whether `token` is a protocol shorthand such as "ip" or "tcp6". */
export function isProtocolShorthand(token: string): boolean {
  return token in SHORTHANDS;
}

function splitMask(s: string): [string, string | undefined] {
  const i = s.indexOf('/');
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}

function parseIntMasked(s: string, key: string): [bigint, bigint | undefined] {
  const [v, m] = splitMask(s);
  return [parseUint(v, key), m === undefined ? undefined : parseUint(m, key)];
}

function parseIpMasked(s: string, key: string): [bigint, bigint | undefined] {
  const [v, m] = splitMask(s);
  const addr = parseIpv4(v, key);
  if (m === undefined) return [addr, undefined];
  if (/^\d+$/.test(m)) {
    const len = Number(m);
    if (len > 32) throw new ValidationError(key, `bad prefix length /${m}`);
    return [addr, prefixMask(len, 32)];
  }
  return [addr, parseIpv4(m, key)];
}

function parseIpv6Masked(s: string, key: string): [bigint, bigint | undefined] {
  const [v, m] = splitMask(s);
  const addr = parseIpv6(v, key);
  if (m === undefined) return [addr, undefined];
  if (/^\d+$/.test(m)) {
    const len = Number(m);
    if (len > 128) throw new ValidationError(key, `bad prefix length /${m}`);
    return [addr, prefixMask(len, 128)];
  }
  return [addr, parseIpv6(m, key)];
}

function parseEthMasked(s: string, key: string): [bigint, bigint | undefined] {
  const [v, m] = splitMask(s);
  return [parseMac(v, key), m === undefined ? undefined : parseMac(m, key)];
}

function parseFlags(s: string, key: string, table: readonly [number, string][], max: number): [bigint, bigint] {
  const t = s.trim();
  if (/^(0x[0-9a-f]+|\d+)(\/(0x[0-9a-f]+|\d+))?$/i.test(t)) {
    const [v, m] = parseIntMasked(t, key);
    return [v, m ?? BigInt(max)];
  }
  const lookup = (name: string): number => {
    const e = table.find(([, n]) => n === name);
    if (e === undefined) throw new ValidationError(key, `unknown flag "${name}"`);
    return e[0];
  };
  if (t.startsWith('+') || t.startsWith('-')) {
    let value = 0;
    let mask = 0;
    for (const m of t.matchAll(/([+-])([a-z]+)/g)) {
      const bit = lookup(m[2] ?? '');
      mask |= bit;
      if (m[1] === '+') value |= bit;
    }
    if (t.replace(/([+-])([a-z]+)/g, '') !== '') throw new ValidationError(key, `bad flags "${s}"`);
    return [BigInt(value), BigInt(mask)];
  }
  let value = 0;
  for (const name of t.split('|')) value |= lookup(name);
  return [BigInt(value), BigInt(max)];
}

/** Applies one "name=value" (or a protocol shorthand) from ovs-ofctl match syntax to `m`. */
export function applyMatchItem(m: Match, name: string, value: string | undefined): Match {
  const need = (): string => {
    if (value === undefined || value === '') throw new ValidationError(name, 'missing value');
    return value;
  };
  if (value === undefined && SHORTHANDS[name] !== undefined) return withProtocol(m, name);
  const intKey = (key: string): Match => {
    const [v, mk] = parseIntMasked(need(), name);
    return m.with(key, v, mk);
  };
  const reg = /^reg(\d+)$/.exec(name);
  if (reg !== null && Number(reg[1]) < 16) return intKey(`reg${reg[1]}`);
  const xreg = /^xreg(\d+)$/.exec(name);
  if (xreg !== null && Number(xreg[1]) < 8) {
    const i = Number(xreg[1]);
    const [v, mk] = parseIntMasked(need(), name);
    const mask = mk ?? ones(64);
    if (v > ones(64) || mask > ones(64)) throw new ValidationError(name, 'value does not fit 64 bits');
    return m
      .with(`reg${2 * i}`, (v >> 32n) & (mask >> 32n), mask >> 32n)
      .with(`reg${2 * i + 1}`, v & 0xffffffffn & mask, mask & 0xffffffffn);
  }
  const xxreg = /^xxreg(\d+)$/.exec(name);
  if (xxreg !== null && Number(xxreg[1]) < 4) {
    const i = Number(xxreg[1]);
    const [v, mk] = parseIntMasked(need(), name);
    const mask = mk ?? ones(128);
    if (v > ones(128) || mask > ones(128)) throw new ValidationError(name, 'value does not fit 128 bits');
    let out = m;
    for (let j = 0; j < 4; j++) {
      const shift = BigInt((3 - j) * 32);
      out = out.with(`reg${4 * i + j}`, (v >> shift) & 0xffffffffn, (mask >> shift) & 0xffffffffn);
    }
    return out;
  }
  const tm = /^tun_metadata(\d+)$/.exec(name);
  if (tm !== null && Number(tm[1]) < 64) {
    const [v, mk] = parseIntMasked(need(), name);
    const hexLen = Math.max(v.toString(16).length, mk === undefined ? 1 : mk.toString(16).length);
    const bytes = Math.max(4, Math.ceil(Math.ceil(hexLen / 2) / 4) * 4);
    return m.with(name, v, mk, bytes);
  }
  switch (name) {
    case 'conj_id':
    case 'pkt_mark':
    case 'recirc_id':
    case 'dp_hash':
    case 'ct_mark':
    case 'ct_zone':
    case 'ct_label':
    case 'ct_nw_proto':
    case 'ct_tp_src':
    case 'ct_tp_dst':
    case 'metadata':
    case 'nw_ttl':
    case 'nw_ecn':
    case 'ipv6_label':
      return intKey(name);
    case 'ip_ecn':
      return intKey('nw_ecn');
    case 'tun_id':
    case 'tunnel_id':
      return intKey('tun_id');
    case 'ct_state': {
      const [v, mk] = parseFlags(need(), name, CT_STATE_BITS, 0xff);
      return m.with('ct_state', v, mk);
    }
    case 'tcp_flags': {
      const [v, mk] = parseFlags(need(), name, TCP_FLAG_BITS, 0xfff);
      return m.with('tcp_flags', v, mk);
    }
    case 'ct_nw_src':
    case 'ct_nw_dst':
    case 'tun_src':
    case 'tun_dst': {
      const [v, mk] = parseIpMasked(need(), name);
      return m.with(name, v, mk);
    }
    case 'nw_src':
    case 'ip_src':
    case 'arp_spa': {
      const [v, mk] = parseIpMasked(need(), name);
      return m.with('nw_src', v, mk);
    }
    case 'nw_dst':
    case 'ip_dst':
    case 'arp_tpa': {
      const [v, mk] = parseIpMasked(need(), name);
      return m.with('nw_dst', v, mk);
    }
    case 'ct_ipv6_src':
    case 'ct_ipv6_dst':
    case 'tun_ipv6_src':
    case 'tun_ipv6_dst':
    case 'ipv6_src':
    case 'ipv6_dst':
    case 'nd_target': {
      const [v, mk] = parseIpv6Masked(need(), name);
      return m.with(name, v, mk);
    }
    case 'dl_src':
    case 'eth_src':
      return withEth(m, 'dl_src', need(), name);
    case 'dl_dst':
    case 'eth_dst':
      return withEth(m, 'dl_dst', need(), name);
    case 'arp_sha':
    case 'nd_sll':
      return withEth(m, 'arp_sha', need(), name);
    case 'arp_tha':
    case 'nd_tll':
      return withEth(m, 'arp_tha', need(), name);
    case 'dl_type':
    case 'eth_type':
      return intKey('dl_type');
    case 'nw_proto':
    case 'ip_proto':
    case 'arp_op':
      return intKey('nw_proto');
    case 'in_port':
    case 'in_port_oxm':
      return m.with('in_port', BigInt(parsePort(need(), name)));
    case 'actset_output':
      return m.with('actset_output', BigInt(parsePort(need(), name)));
    case 'tp_src':
    case 'tcp_src':
    case 'udp_src':
    case 'sctp_src':
    case 'icmp_type':
    case 'icmpv6_type':
    case 'igmp_type':
      return intKey('tp_src');
    case 'tp_dst':
    case 'tcp_dst':
    case 'udp_dst':
    case 'sctp_dst':
    case 'icmp_code':
    case 'icmpv6_code':
    case 'igmp_code':
      return intKey('tp_dst');
    case 'nw_tos': {
      const v = parseUint(need(), name);
      if ((v & 3n) !== 0n || v > 0xffn)
        throw new ValidationError(name, 'nw_tos must be a DSCP value shifted left 2 bits');
      return m.with('nw_tos', v);
    }
    case 'ip_dscp': {
      const v = parseUint(need(), name);
      if (v > 63n) throw new ValidationError(name, 'ip_dscp must be 0..63');
      return m.with('nw_tos', v << 2n);
    }
    case 'nw_frag':
    case 'ip_frag': {
      const table: Record<string, [bigint, bigint]> = {
        no: [0n, 1n],
        yes: [1n, 1n],
        first: [1n, 3n],
        later: [3n, 3n],
        not_later: [0n, 2n],
      };
      const e = table[need()];
      if (e === undefined) throw new ValidationError(name, `bad fragment type "${value}"`);
      return m.with('nw_frag', e[0], e[1]);
    }
    case 'vlan_tci':
      return intKey('vlan_tci');
    case 'dl_vlan': {
      const vid = parseUint(need(), name);
      if (vid > 0xfffn) throw new ValidationError(name, 'VLAN id must be 0..4095');
      const cur = m.get('vlan_tci');
      const v = ((cur?.value ?? 0n) & ~0x1fffn) | 0x1000n | vid;
      return m.with('vlan_tci', v, (cur?.mask ?? 0n) | 0x1fffn);
    }
    case 'dl_vlan_pcp': {
      const pcp = parseUint(need(), name);
      if (pcp > 7n) throw new ValidationError(name, 'VLAN PCP must be 0..7');
      const cur = m.get('vlan_tci');
      const v = ((cur?.value ?? 0n) & ~0xe000n) | 0x1000n | (pcp << 13n);
      return m.with('vlan_tci', v, (cur?.mask ?? 0n) | 0xf000n);
    }
    default:
      throw new ValidationError(name, 'unknown match field');
  }
}

function withEth(m: Match, key: string, s: string, name: string): Match {
  const [v, mk] = parseEthMasked(s, name);
  return m.with(key, v, mk);
}

/** Parses comma-separated ovs-ofctl match syntax ("tcp,nw_dst=10.0.0.1,tp_dst=80"). */
export function parseMatch(text: string): Match {
  let m = Match.EMPTY;
  for (const item of text.split(',')) {
    const t = item.trim();
    if (t === '') continue;
    const eq = t.indexOf('=');
    m = eq < 0 ? applyMatchItem(m, t, undefined) : applyMatchItem(m, t.slice(0, eq).trim(), t.slice(eq + 1).trim());
  }
  return m;
}

export { OFPP };
