/**
 * The Open vSwitch field catalog (ovs-fields(7)): names, NXM/OXM code points, widths and text
 * formats. Used for set_field, move, learn, output-to-register, ct zone sources and for decoding the
 * OXM/NXM headers in matches.
 *
 * Header layout (32 bits): class(16) | field(7) | hasmask(1) | length(8).
 */
import { ValidationError } from '../../util/errors.ts';
import { type ByteReader, OpenFlowDecodeError } from './bytes.ts';

export const OXM_CLASS = {
  NXM_0: 0x0000,
  NXM_1: 0x0001,
  OPENFLOW_BASIC: 0x8000,
  PACKET_REGS: 0x8001,
  EXPERIMENTER: 0xffff,
} as const;

export type FieldFormat =
  'hex' | 'dec' | 'eth' | 'ipv4' | 'ipv6' | 'port16' | 'port32' | 'ctstate' | 'tcpflags' | 'frag' | 'tunflags';

export interface FieldCode {
  readonly cls: number;
  readonly field: number;
}

export interface FieldDef {
  /** The OVS field name used by set_field and learn (e.g. "eth_src", "reg0"). */
  readonly name: string;
  /** Other accepted names (e.g. "dl_src"). */
  readonly aliases: readonly string[];
  /** The name OVS prints in subfield syntax (e.g. "NXM_OF_ETH_SRC" in "NXM_OF_ETH_SRC[]"). */
  readonly nxmName: string;
  /** Code points; the first is the one we encode. */
  readonly codes: readonly FieldCode[];
  /** The code point we encode in OXM contexts (set_field, copy_field, matches). */
  readonly code: FieldCode;
  /** The NXM code point when the field has one (learn specs, output_reg, ct zone), else `code`. */
  readonly nxm: FieldCode;
  /** Width on the wire in bytes. */
  readonly bytes: number;
  /** Significant bits (bit ranges are checked against this). */
  readonly bits: number;
  readonly maskable: boolean;
  readonly format: FieldFormat;
  readonly writable: boolean;
  /** Variable-length tunnel metadata field (tun_metadata<N>): `bytes` is the maximum. */
  readonly variable?: boolean;
}

function f(
  name: string,
  nxmName: string,
  codes: readonly FieldCode[],
  bytes: number,
  format: FieldFormat,
  opts: { aliases?: string[]; bits?: number; maskable?: boolean; writable?: boolean; variable?: boolean } = {},
): FieldDef {
  const [code] = codes;
  if (code === undefined) throw new Error(`field ${name} has no code point`);
  const def: FieldDef = {
    name,
    aliases: opts.aliases ?? [],
    nxmName,
    codes,
    code,
    nxm: codes.find((c) => c.cls === OXM_CLASS.NXM_0 || c.cls === OXM_CLASS.NXM_1) ?? code,
    bytes,
    bits: opts.bits ?? bytes * 8,
    maskable: opts.maskable ?? true,
    format,
    writable: opts.writable ?? true,
  };
  return opts.variable === true ? { ...def, variable: true } : def;
}

const OF = (field: number): FieldCode => ({ cls: OXM_CLASS.OPENFLOW_BASIC, field });
const N0 = (field: number): FieldCode => ({ cls: OXM_CLASS.NXM_0, field });
const N1 = (field: number): FieldCode => ({ cls: OXM_CLASS.NXM_1, field });

const defs: FieldDef[] = [
  f('conj_id', 'NXM_NX_CONJ_ID', [N1(37)], 4, 'dec', { maskable: false, writable: false }),
  f('tun_id', 'NXM_NX_TUN_ID', [OF(38), N1(16)], 8, 'hex', { aliases: ['tunnel_id'] }),
  f('tun_src', 'NXM_NX_TUN_IPV4_SRC', [N1(31)], 4, 'ipv4'),
  f('tun_dst', 'NXM_NX_TUN_IPV4_DST', [N1(32)], 4, 'ipv4'),
  f('tun_ipv6_src', 'NXM_NX_TUN_IPV6_SRC', [N1(109)], 16, 'ipv6'),
  f('tun_ipv6_dst', 'NXM_NX_TUN_IPV6_DST', [N1(110)], 16, 'ipv6'),
  f('tun_flags', 'NXM_NX_TUN_FLAGS', [N1(104)], 2, 'tunflags', { bits: 1 }),
  f('metadata', 'OXM_OF_METADATA', [OF(2)], 8, 'hex'),
  f('in_port', 'NXM_OF_IN_PORT', [N0(0)], 2, 'port16', { maskable: false }),
  f('in_port_oxm', 'OXM_OF_IN_PORT', [OF(0)], 4, 'port32', { maskable: false }),
  f('pkt_mark', 'NXM_NX_PKT_MARK', [N1(33)], 4, 'hex'),
  f('ct_state', 'NXM_NX_CT_STATE', [N1(105)], 4, 'ctstate', { writable: false }),
  f('ct_zone', 'NXM_NX_CT_ZONE', [N1(106)], 2, 'hex', { maskable: false, writable: false }),
  f('ct_mark', 'NXM_NX_CT_MARK', [N1(107)], 4, 'hex'),
  f('ct_label', 'NXM_NX_CT_LABEL', [N1(108)], 16, 'hex'),
  f('ct_nw_proto', 'NXM_NX_CT_NW_PROTO', [N1(119)], 1, 'dec', { maskable: false, writable: false }),
  f('ct_nw_src', 'NXM_NX_CT_NW_SRC', [N1(120)], 4, 'ipv4', { writable: false }),
  f('ct_nw_dst', 'NXM_NX_CT_NW_DST', [N1(121)], 4, 'ipv4', { writable: false }),
  f('ct_ipv6_src', 'NXM_NX_CT_IPV6_SRC', [N1(122)], 16, 'ipv6', { writable: false }),
  f('ct_ipv6_dst', 'NXM_NX_CT_IPV6_DST', [N1(123)], 16, 'ipv6', { writable: false }),
  f('ct_tp_src', 'NXM_NX_CT_TP_SRC', [N1(124)], 2, 'dec', { writable: false }),
  f('ct_tp_dst', 'NXM_NX_CT_TP_DST', [N1(125)], 2, 'dec', { writable: false }),
  ...Array.from({ length: 16 }, (_, i) => f(`reg${i}`, `NXM_NX_REG${i}`, [N1(i)], 4, 'hex')),
  ...Array.from({ length: 8 }, (_, i) =>
    f(`xreg${i}`, `OXM_OF_PKT_REG${i}`, [{ cls: OXM_CLASS.PACKET_REGS, field: i }], 8, 'hex'),
  ),
  ...Array.from({ length: 4 }, (_, i) => f(`xxreg${i}`, `NXM_NX_XXREG${i}`, [N1(111 + i)], 16, 'hex')),
  f('eth_src', 'NXM_OF_ETH_SRC', [OF(4), N0(2)], 6, 'eth', { aliases: ['dl_src'] }),
  f('eth_dst', 'NXM_OF_ETH_DST', [OF(3), N0(1)], 6, 'eth', { aliases: ['dl_dst'] }),
  f('eth_type', 'NXM_OF_ETH_TYPE', [OF(5), N0(3)], 2, 'hex', {
    aliases: ['dl_type'],
    maskable: false,
    writable: false,
  }),
  f('vlan_tci', 'NXM_OF_VLAN_TCI', [N0(4)], 2, 'hex'),
  f('vlan_vid', 'OXM_OF_VLAN_VID', [OF(6)], 2, 'dec', { bits: 13 }),
  f('vlan_pcp', 'OXM_OF_VLAN_PCP', [OF(7)], 1, 'dec', { bits: 3, maskable: false }),
  f('ip_src', 'NXM_OF_IP_SRC', [OF(11), N0(7)], 4, 'ipv4', { aliases: ['nw_src'] }),
  f('ip_dst', 'NXM_OF_IP_DST', [OF(12), N0(8)], 4, 'ipv4', { aliases: ['nw_dst'] }),
  f('ipv6_src', 'NXM_NX_IPV6_SRC', [OF(26), N1(19)], 16, 'ipv6'),
  f('ipv6_dst', 'NXM_NX_IPV6_DST', [OF(27), N1(20)], 16, 'ipv6'),
  f('ipv6_label', 'NXM_NX_IPV6_LABEL', [OF(28), N1(27)], 4, 'hex', { bits: 20 }),
  f('nw_proto', 'NXM_OF_IP_PROTO', [OF(10), N0(6)], 1, 'dec', {
    aliases: ['ip_proto'],
    maskable: false,
    writable: false,
  }),
  f('nw_tos', 'NXM_OF_IP_TOS', [N0(5)], 1, 'dec', { maskable: false }),
  f('ip_dscp', 'OXM_OF_IP_DSCP', [OF(8)], 1, 'dec', { bits: 6, maskable: false }),
  f('nw_ecn', 'NXM_NX_IP_ECN', [OF(9), N1(28)], 1, 'dec', { aliases: ['ip_ecn'], bits: 2, maskable: false }),
  f('nw_ttl', 'NXM_NX_IP_TTL', [N1(29)], 1, 'dec', { maskable: false }),
  f('ip_frag', 'NXM_NX_IP_FRAG', [N1(26)], 1, 'frag', { aliases: ['nw_frag'], bits: 2, writable: false }),
  f('arp_op', 'NXM_OF_ARP_OP', [OF(21), N0(15)], 2, 'dec', { maskable: false }),
  f('arp_spa', 'NXM_OF_ARP_SPA', [OF(22), N0(16)], 4, 'ipv4'),
  f('arp_tpa', 'NXM_OF_ARP_TPA', [OF(23), N0(17)], 4, 'ipv4'),
  f('arp_sha', 'NXM_NX_ARP_SHA', [OF(24), N1(17)], 6, 'eth'),
  f('arp_tha', 'NXM_NX_ARP_THA', [OF(25), N1(18)], 6, 'eth'),
  f('tcp_src', 'NXM_OF_TCP_SRC', [OF(13), N0(9)], 2, 'dec', { aliases: ['tp_src'] }),
  f('tcp_dst', 'NXM_OF_TCP_DST', [OF(14), N0(10)], 2, 'dec', { aliases: ['tp_dst'] }),
  f('tcp_flags', 'NXM_NX_TCP_FLAGS', [OF(42), N1(34)], 2, 'tcpflags', { bits: 12, writable: false }),
  f('udp_src', 'NXM_OF_UDP_SRC', [OF(15), N0(11)], 2, 'dec'),
  f('udp_dst', 'NXM_OF_UDP_DST', [OF(16), N0(12)], 2, 'dec'),
  f('sctp_src', 'OXM_OF_SCTP_SRC', [OF(17)], 2, 'dec'),
  f('sctp_dst', 'OXM_OF_SCTP_DST', [OF(18)], 2, 'dec'),
  f('icmp_type', 'NXM_OF_ICMP_TYPE', [OF(19), N0(13)], 1, 'dec', { maskable: false }),
  f('icmp_code', 'NXM_OF_ICMP_CODE', [OF(20), N0(14)], 1, 'dec', { maskable: false }),
  f('icmpv6_type', 'NXM_NX_ICMPV6_TYPE', [OF(29), N1(21)], 1, 'dec', { maskable: false }),
  f('icmpv6_code', 'NXM_NX_ICMPV6_CODE', [OF(30), N1(22)], 1, 'dec', { maskable: false }),
  f('nd_target', 'NXM_NX_ND_TARGET', [OF(31), N1(23)], 16, 'ipv6'),
  f('nd_sll', 'NXM_NX_ND_SLL', [OF(32), N1(24)], 6, 'eth'),
  f('nd_tll', 'NXM_NX_ND_TLL', [OF(33), N1(25)], 6, 'eth'),
  f('packet_type', 'OXM_OF_PACKET_TYPE', [OF(44)], 4, 'hex', { maskable: false, writable: false }),
  f('actset_output', 'OXM_OF_ACTSET_OUTPUT', [OF(43)], 4, 'port32', { maskable: false, writable: false }),
  f('recirc_id', 'NXM_NX_RECIRC_ID', [N1(36)], 4, 'dec', { maskable: false, writable: false }),
  f('dp_hash', 'NXM_NX_DP_HASH', [N1(35)], 4, 'hex', { writable: false }),
  ...Array.from({ length: 64 }, (_, i) =>
    f(`tun_metadata${i}`, `NXM_NX_TUN_METADATA${i}`, [N1(40 + i)], 124, 'hex', { variable: true }),
  ),
];

const byName = new Map<string, FieldDef>();
const byCode = new Map<number, FieldDef>();
for (const d of defs) {
  byName.set(d.name, d);
  for (const a of d.aliases) byName.set(a, d);
  byName.set(d.nxmName, d);
  for (const c of d.codes) byCode.set((c.cls << 7) | c.field, d);
}
// Extra spellings OVS accepts in subfield syntax.
const extra: [string, string][] = [
  ['OXM_OF_ETH_SRC', 'eth_src'],
  ['OXM_OF_ETH_DST', 'eth_dst'],
  ['OXM_OF_ETH_TYPE', 'eth_type'],
  ['OXM_OF_IPV4_SRC', 'ip_src'],
  ['OXM_OF_IPV4_DST', 'ip_dst'],
  ['OXM_OF_TCP_SRC', 'tcp_src'],
  ['OXM_OF_TCP_DST', 'tcp_dst'],
  ['OXM_OF_UDP_SRC', 'udp_src'],
  ['OXM_OF_UDP_DST', 'udp_dst'],
  ['OXM_OF_TUNNEL_ID', 'tun_id'],
  ['OXM_OF_ARP_OP', 'arp_op'],
  ['OXM_OF_ARP_SPA', 'arp_spa'],
  ['OXM_OF_ARP_TPA', 'arp_tpa'],
  ['OXM_OF_ARP_SHA', 'arp_sha'],
  ['OXM_OF_ARP_THA', 'arp_tha'],
  ['OXM_OF_IPV6_SRC', 'ipv6_src'],
  ['OXM_OF_IPV6_DST', 'ipv6_dst'],
  ['OXM_OF_IP_PROTO', 'nw_proto'],
];
for (const [n, target] of extra) {
  const d = byName.get(target);
  if (d !== undefined) byName.set(n, d);
}

/** All known fields. */
export const FIELDS: readonly FieldDef[] = defs;

/** The field with this name, alias or NXM/OXM name, or undefined. */
export function findField(name: string): FieldDef | undefined {
  return byName.get(name);
}

/** The field with this name; throws a ValidationError naming `what` otherwise. */
export function field(name: string, what = 'field'): FieldDef {
  const d = byName.get(name);
  if (d === undefined) throw new ValidationError(what, `unknown field "${name}"`);
  return d;
}

/** The field for an OXM/NXM class and field number, or undefined. */
export function fieldByCode(cls: number, fieldNo: number): FieldDef | undefined {
  return byCode.get((cls << 7) | fieldNo);
}

/** The 32-bit header of `def` (first code point) for a value of `length` bytes (doubled when masked). */
export function fieldHeader(def: FieldDef, masked: boolean, length = def.bytes): number {
  const c = def.code;
  return ((c.cls << 16) | (c.field << 9) | (masked ? 0x100 : 0) | (masked ? length * 2 : length)) >>> 0;
}

/** A decoded OXM/NXM header; `length` is the value length (without a mask and experimenter id). */
export interface OxmHeader {
  readonly cls: number;
  readonly field: number;
  readonly hasMask: boolean;
  readonly length: number;
}

/** Reads an OXM/NXM header (and the experimenter id of experimenter OXMs). */
export function readOxmHeader(r: ByteReader): OxmHeader {
  const h = r.u32('OXM header');
  const cls = h >>> 16;
  const hasMask = (h & 0x100) !== 0;
  let len = h & 0xff;
  if (cls === OXM_CLASS.EXPERIMENTER) {
    r.skip(4, 'OXM experimenter id');
    len -= 4;
  }
  const length = hasMask ? len / 2 : len;
  if (!Number.isInteger(length) || length < 0) throw new OpenFlowDecodeError(`bad OXM length ${len}`);
  return { cls, field: (h >>> 9) & 0x7f, hasMask, length };
}

/** A bit range of a field: field[ofs .. ofs+nBits-1]. */
export interface Subfield {
  readonly field: FieldDef;
  readonly ofs: number;
  readonly nBits: number;
}

/** Builds a subfield, checking the range against the field width. */
export function subfield(name: string | FieldDef, ofs = 0, nBits?: number, what = 'subfield'): Subfield {
  const def = typeof name === 'string' ? field(name, what) : name;
  const n = nBits ?? def.bits - ofs;
  if (!Number.isInteger(ofs) || ofs < 0 || !Number.isInteger(n) || n < 1 || ofs + n > def.bits) {
    throw new ValidationError(what, `bit range [${ofs}..${ofs + n - 1}] does not fit ${def.name} (${def.bits} bits)`);
  }
  return { field: def, ofs, nBits: n };
}

/** OVS subfield text: NXM_NX_REG0[], NXM_NX_REG0[5], NXM_NX_REG0[0..15]. */
export function formatSubfield(sf: Subfield): string {
  const name = sf.field.nxmName;
  if (sf.ofs === 0 && sf.nBits === sf.field.bits) return `${name}[]`;
  if (sf.nBits === 1) return `${name}[${sf.ofs}]`;
  return `${name}[${sf.ofs}..${sf.ofs + sf.nBits - 1}]`;
}

/** Parses OVS subfield syntax ("NXM_NX_REG0[0..15]", "reg0[]", "reg0[3]", "reg0" for the whole field). */
export function parseSubfield(text: string, what = 'subfield'): Subfield {
  const m = /^([A-Za-z0-9_]+)(?:\[(?:(\d+)(?:\.\.(\d+))?)?\])?$/.exec(text.trim());
  if (m === null) throw new ValidationError(what, `bad subfield "${text}"`);
  const def = field(m[1] ?? '', what);
  if (m[2] === undefined) return subfield(def, 0, def.bits, what);
  const start = Number(m[2]);
  const end = m[3] === undefined ? start : Number(m[3]);
  if (end < start) throw new ValidationError(what, `bad bit range in "${text}"`);
  return subfield(def, start, end - start + 1, what);
}

/** Same field and range. */
export function subfieldEquals(a: Subfield, b: Subfield): boolean {
  return a.field === b.field && a.ofs === b.ofs && a.nBits === b.nBits;
}
