/**
 * Minimal Ethernet/IPv4/UDP/ICMP packet building and parsing, for PACKET_OUT payloads (probes,
 * generated replies) and for reading packet-ins.
 */
import { ValidationError } from '../../util/errors.ts';
import { ByteReader, ByteWriter, formatIpv4, formatMac, parseIpv4, parseMac } from './bytes.ts';

/** The Internet checksum (RFC 1071) of `data`, folded to 16 bits. */
export function inetChecksum(data: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < data.length; i += 2) sum += ((data[i] ?? 0) << 8) | (data[i + 1] ?? 0);
  if (data.length % 2 === 1) sum += (data[data.length - 1] ?? 0) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export interface Ipv4PacketSpec {
  readonly srcMac: string;
  readonly dstMac: string;
  readonly srcIp: string;
  readonly dstIp: string;
  readonly ttl?: number;
  readonly id?: number;
}

function ipv4Header(spec: Ipv4PacketSpec, proto: number, payloadLen: number): Uint8Array {
  const w = new ByteWriter(20);
  w.u8(0x45)
    .u8(0)
    .u16(20 + payloadLen)
    .u16(spec.id ?? 0)
    .u16(0x4000)
    .u8(spec.ttl ?? 64)
    .u8(proto)
    .u16(0);
  w.uint(parseIpv4(spec.srcIp, 'srcIp'), 4).uint(parseIpv4(spec.dstIp, 'dstIp'), 4);
  const h = w.finish();
  const c = inetChecksum(h);
  h[10] = c >> 8;
  h[11] = c & 0xff;
  return h;
}

function ethernet(spec: Ipv4PacketSpec, etherType: number, payload: Uint8Array): Uint8Array {
  const w = new ByteWriter(14 + payload.length);
  w.uint(parseMac(spec.dstMac, 'dstMac'), 6).uint(parseMac(spec.srcMac, 'srcMac'), 6).u16(etherType).bytes(payload);
  return w.finish();
}

/** An Ethernet/IPv4/UDP packet (with IP and UDP checksums). */
export function buildUdpPacket(
  spec: Ipv4PacketSpec & { srcPort: number; dstPort: number; payload: Uint8Array },
): Uint8Array {
  for (const [k, v] of [
    ['srcPort', spec.srcPort],
    ['dstPort', spec.dstPort],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new ValidationError(k, `${v} is not a port`);
  }
  const udpLen = 8 + spec.payload.length;
  const udp = new ByteWriter(udpLen)
    .u16(spec.srcPort)
    .u16(spec.dstPort)
    .u16(udpLen)
    .u16(0)
    .bytes(spec.payload)
    .finish();
  const pseudo = new ByteWriter(12)
    .uint(parseIpv4(spec.srcIp, 'srcIp'), 4)
    .uint(parseIpv4(spec.dstIp, 'dstIp'), 4)
    .u8(0)
    .u8(17)
    .u16(udpLen)
    .finish();
  let c = inetChecksum(concatBytes(pseudo, udp));
  if (c === 0) c = 0xffff;
  udp[6] = c >> 8;
  udp[7] = c & 0xff;
  return ethernet(spec, 0x0800, concatBytes(ipv4Header(spec, 17, udpLen), udp));
}

/** An Ethernet/IPv4/ICMP echo request. */
export function buildIcmpEcho(
  spec: Ipv4PacketSpec & { identifier: number; sequence: number; payload?: Uint8Array },
): Uint8Array {
  const payload = spec.payload ?? new Uint8Array(0);
  const icmp = new ByteWriter(8 + payload.length)
    .u8(8)
    .u8(0)
    .u16(0)
    .u16(spec.identifier)
    .u16(spec.sequence)
    .bytes(payload)
    .finish();
  const c = inetChecksum(icmp);
  icmp[2] = c >> 8;
  icmp[3] = c & 0xff;
  return ethernet(spec, 0x0800, concatBytes(ipv4Header(spec, 1, icmp.length), icmp));
}

export interface ParsedPacket {
  readonly dstMac: string;
  readonly srcMac: string;
  readonly etherType: number;
  readonly ipv4?: {
    readonly src: string;
    readonly dst: string;
    readonly proto: number;
    readonly ttl: number;
    readonly srcPort?: number;
    readonly dstPort?: number;
    readonly payload: Uint8Array;
  };
}

/** Parses Ethernet and, for IPv4, the IP header and UDP/TCP ports. */
export function parsePacket(b: Uint8Array): ParsedPacket {
  const r = new ByteReader(b);
  const dstMac = formatMac(r.uint(6));
  const srcMac = formatMac(r.uint(6));
  let etherType = r.u16();
  if (etherType === 0x8100) {
    r.skip(2);
    etherType = r.u16();
  }
  if (etherType !== 0x0800 || r.remaining < 20) return { dstMac, srcMac, etherType };
  const start = r.pos;
  const ihl = (r.u8() & 0x0f) * 4;
  r.skip(1);
  const total = r.u16();
  r.skip(4);
  const ttl = r.u8();
  const proto = r.u8();
  r.skip(2);
  const src = formatIpv4(r.uint(4));
  const dst = formatIpv4(r.uint(4));
  r.pos = start + ihl;
  const end = Math.min(b.length, start + total);
  if ((proto === 17 || proto === 6) && end - r.pos >= 8) {
    const l4 = r.pos;
    const srcPort = r.u16();
    const dstPort = r.u16();
    const headerLen = proto === 17 ? 8 : ((b[l4 + 12] ?? 0x50) >> 4) * 4;
    const payload = b.subarray(Math.min(end, l4 + headerLen), end);
    return { dstMac, srcMac, etherType, ipv4: { src, dst, proto, ttl, srcPort, dstPort, payload } };
  }
  return { dstMac, srcMac, etherType, ipv4: { src, dst, proto, ttl, payload: b.subarray(r.pos, end) } };
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
