/**
 * IP addresses and prefixes as bytes: parsing, formatting, containment and the "first address of a
 * subnet" rule Antrea uses for gateways. IPv4 and IPv6 (including `::` and embedded IPv4).
 */
import { isIP } from 'node:net';
import { ValidationError } from './errors.ts';

export type IpFamily = 4 | 6;

export interface Cidr {
  /** The address as written (not masked), e.g. 10.10.1.5 in 10.10.1.5/24. */
  readonly ip: Buffer;
  readonly prefix: number;
  readonly family: IpFamily;
}

function parseV6(s: string): Buffer | undefined {
  let text = s;
  const out = Buffer.alloc(16);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4 !== null) {
    const b = parseV4(v4[2] ?? '');
    if (b === undefined) return undefined;
    text = `${v4[1] ?? ''}${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string | undefined): string[] => (h === undefined || h === '' ? [] : h.split(':'));
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...Array<string>(halves.length === 1 ? 0 : missing).fill('0'), ...tail];
  for (let i = 0; i < 8; i++) {
    const g = all[i] ?? '';
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    out.writeUInt16BE(parseInt(g, 16), i * 2);
  }
  return out;
}

function parseV4(s: string): Buffer | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out = Buffer.alloc(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i] ?? '';
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    out[i] = Number(p);
  }
  return out;
}

/** The bytes of an IP address (4 or 16), or undefined if `s` is not one. */
export function ipBytes(s: string): Buffer | undefined {
  const fam = isIP(s);
  if (fam === 4) return parseV4(s);
  if (fam === 6) return parseV6(s);
  return undefined;
}

/** Parses an IP address; throws ValidationError naming `field`. */
export function parseIp(s: string, field = 'ip'): Buffer {
  const b = ipBytes(s);
  if (b === undefined) throw new ValidationError(field, `not an IP address: ${JSON.stringify(s)}`);
  return b;
}

/** Formats 4 or 16 bytes as an address (IPv6 in its shortest form). */
export function formatIp(b: Uint8Array): string {
  if (b.length === 4) return Array.from(b).join('.');
  if (b.length !== 16) throw new RangeError(`an IP address has 4 or 16 bytes, not ${b.length}`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] ?? 0) << 8) | (b[i + 1] ?? 0));
  // The longest run of two or more zero groups becomes "::".
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Parses `addr/prefix`; throws ValidationError naming `field`. */
export function parseCidr(s: string, field = 'cidr'): Cidr {
  const slash = s.indexOf('/');
  if (slash < 0) throw new ValidationError(field, `not a CIDR (address/prefix): ${JSON.stringify(s)}`);
  const ip = ipBytes(s.slice(0, slash));
  const prefixText = s.slice(slash + 1);
  if (ip === undefined || !/^\d{1,3}$/.test(prefixText)) {
    throw new ValidationError(field, `not a CIDR (address/prefix): ${JSON.stringify(s)}`);
  }
  const prefix = Number(prefixText);
  const family: IpFamily = ip.length === 4 ? 4 : 6;
  if (prefix > ip.length * 8) throw new ValidationError(field, `prefix /${prefix} too long for IPv${family}`);
  return { ip, prefix, family };
}

/** The network address of a prefix (host bits cleared). */
export function networkAddress(c: Cidr): Buffer {
  const out = Buffer.from(c.ip);
  for (let bit = c.prefix; bit < out.length * 8; bit++) {
    const i = bit >> 3;
    out[i] = (out[i] ?? 0) & ~(0x80 >> (bit & 7));
  }
  return out;
}

/** `a + n` as an address of the same length (wrapping is the caller's problem). */
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
  return formatIp(addToIp(networkAddress(parseCidr(cidr, field)), 1));
}

/** Whether `ip` lies in `cidr`. */
export function cidrContains(cidr: string, ip: string): boolean {
  const c = parseCidr(cidr);
  const b = ipBytes(ip);
  if (b === undefined || b.length !== c.ip.length) return false;
  return networkAddress({ ip: b, prefix: c.prefix, family: c.family }).equals(networkAddress(c));
}

/** The family of an address string (4 or 6), or undefined. */
export function ipFamily(s: string): IpFamily | undefined {
  const f = isIP(s);
  return f === 4 ? 4 : f === 6 ? 6 : undefined;
}

/** The address part of a CIDR string ("10.0.0.5/24" → "10.0.0.5"). */
export function cidrIp(s: string): string {
  const slash = s.indexOf('/');
  return slash < 0 ? s : s.slice(0, slash);
}

/** Canonical text of an address (lower case, shortest IPv6). */
export function canonicalIp(s: string): string {
  const b = ipBytes(s);
  return b === undefined ? s : formatIp(b);
}

/** A random locally administered unicast MAC (Antrea's GenerateRandomMAC). */
export function randomMac(
  random: (n: number) => Uint8Array = (n) => crypto.getRandomValues(new Uint8Array(n)),
): string {
  const b = random(6);
  b[0] = ((b[0] ?? 0) & 0xfe) | 0x02;
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}
