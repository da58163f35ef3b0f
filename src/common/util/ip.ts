/**
 * The agent's view of IP addresses on top of the shared ipaddr module: parsing with errors that
 * name the field, CIDRs that keep the address as written (10.10.1.5/24 is an interface address,
 * not just a network), the "first address of a subnet" rule Antrea uses for gateways, and random
 * MACs.
 */
import { ValidationError } from './errors.ts';
import { canonicalIP, cidrHas, formatIP, type IPFamily, parseCIDR, parseIP } from './ipaddr.ts';

export type IpFamily = IPFamily;

export interface Cidr {
  /** The address as written (not masked), e.g. 10.10.1.5 in 10.10.1.5/24. */
  readonly ip: Buffer;
  readonly prefix: number;
  readonly family: IpFamily;
}

/** The bytes of an IP address (4 or 16), or undefined if `s` is not one. */
export function ipBytes(s: string): Buffer | undefined {
  const p = parseIP(s);
  return p === undefined ? undefined : Buffer.from(p.bytes);
}

/** Parses an IP address; throws ValidationError naming `field`. */
export function parseIp(s: string, field = 'ip'): Buffer {
  const b = ipBytes(s);
  if (b === undefined) throw new ValidationError(field, `not an IP address: ${JSON.stringify(s)}`);
  return b;
}

/** Formats 4 or 16 bytes as canonical text. */
export function formatIp(b: Uint8Array): string {
  return formatIP(b);
}

/** Parses `addr/prefix`, keeping the address as written; throws ValidationError naming `field`. */
export function parseCidr(s: string, field = 'cidr'): Cidr {
  const net = parseCIDR(s);
  if (net === undefined) throw new ValidationError(field, `not a CIDR (address/prefix): ${JSON.stringify(s)}`);
  return { ip: parseIp(s.slice(0, s.indexOf('/')), field), prefix: net.prefixLength, family: net.family };
}

/** `a + n` as an address of the same length. */
export function addToIp(a: Uint8Array, n: number): Buffer {
  const out = Buffer.from(a);
  let carry = n;
  for (let i = out.length - 1; i >= 0 && carry > 0; i--) {
    const v = (out[i] ?? 0) + carry;
    out[i] = v & 0xff;
    carry = Math.floor(v / 256);
  }
  return out;
}

/** The first address after the network address (Antrea's gateway IP for a Pod CIDR). */
export function firstHostIp(cidr: string, field = 'cidr'): string {
  const net = parseCIDR(cidr);
  if (net === undefined) throw new ValidationError(field, `not a CIDR (address/prefix): ${JSON.stringify(cidr)}`);
  return formatIP(addToIp(net.bytes, 1));
}

/** Whether the address `ip` lies in `cidr` (false for anything unparsable). */
export function cidrContains(cidr: string, ip: string): boolean {
  const net = parseCIDR(cidr);
  const addr = parseIP(ip);
  return net !== undefined && addr !== undefined && cidrHas(net, addr);
}

/** The family of an address string (4 or 6), or undefined. */
export function ipFamily(s: string): IpFamily | undefined {
  return parseIP(s)?.family;
}

/** The address part of a CIDR string ("10.0.0.5/24" → "10.0.0.5"). */
export function cidrIp(s: string): string {
  const slash = s.indexOf('/');
  return slash < 0 ? s : s.slice(0, slash);
}

/** Canonical text of an address (`s` unchanged when it is not one). */
export function canonicalIp(s: string): string {
  return canonicalIP(s) ?? s;
}

/** A random locally administered unicast MAC (Antrea's GenerateRandomMAC). */
export function randomMac(
  random: (n: number) => Uint8Array = (n) => crypto.getRandomValues(new Uint8Array(n)),
): string {
  const b = random(6);
  b[0] = ((b[0] ?? 0) & 0xfe) | 0x02;
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}
