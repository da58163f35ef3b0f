/**
 * IP addresses and CIDRs as text and bytes: strict parsing (no leading zeros in IPv4 octets, no zone
 * in IPv6), canonical text (RFC 5952 for IPv6), network masking, containment, and the 16-byte form
 * (IPv4 as `::ffff:a.b.c.d`) that Go's `net.IP` and therefore Antrea's wire format use.
 */

export type IPFamily = 4 | 6;

export interface ParsedIP {
  readonly family: IPFamily;
  /** 4 bytes for IPv4, 16 for IPv6. */
  readonly bytes: Uint8Array;
}

export interface ParsedCIDR {
  readonly family: IPFamily;
  /** The network address (host bits cleared), canonical text. */
  readonly ip: string;
  readonly prefixLength: number;
  readonly bytes: Uint8Array;
}

const OCTET_RE = /^(0|[1-9][0-9]{0,2})$/;
const HEXTET_RE = /^[0-9a-fA-F]{1,4}$/;

function parseIPv4(s: string, out: Uint8Array, offset: number): boolean {
  const parts = s.split('.');
  if (parts.length !== 4) return false;
  for (const [i, p] of parts.entries()) {
    if (!OCTET_RE.test(p)) return false;
    const n = Number(p);
    if (n > 255) return false;
    out[offset + i] = n;
  }
  return true;
}

function parseIPv6(s: string): Uint8Array | undefined {
  if (s.length < 2 || s.includes('%')) return undefined;
  const out = new Uint8Array(16);
  const dbl = s.indexOf('::');
  if (dbl >= 0 && s.indexOf('::', dbl + 1) >= 0) return undefined;
  const head = dbl >= 0 ? s.slice(0, dbl) : s;
  const tail = dbl >= 0 ? s.slice(dbl + 2) : '';
  const headParts = head === '' ? [] : head.split(':');
  const tailParts = tail === '' ? [] : tail.split(':');
  // An embedded IPv4 address may end the address.
  const all = dbl >= 0 ? tailParts : headParts;
  let v4: Uint8Array | undefined;
  const last = all[all.length - 1];
  if (last?.includes('.') === true) {
    v4 = new Uint8Array(4);
    if (!parseIPv4(last, v4, 0)) return undefined;
    all.pop();
  }
  const groups = headParts.length + tailParts.length + (v4 === undefined ? 0 : 2);
  if (dbl < 0 && groups !== 8) return undefined;
  if (dbl >= 0 && groups > 7) return undefined;
  const put = (parts: string[], start: number): boolean => {
    for (const [i, p] of parts.entries()) {
      if (!HEXTET_RE.test(p)) return false;
      const n = parseInt(p, 16);
      out[start + i * 2] = n >> 8;
      out[start + i * 2 + 1] = n & 0xff;
    }
    return true;
  };
  if (!put(headParts, 0)) return undefined;
  const tailBytes = tailParts.length * 2 + (v4 === undefined ? 0 : 4);
  if (!put(tailParts, 16 - tailBytes)) return undefined;
  if (v4 !== undefined) out.set(v4, 12);
  return out;
}

/** Parses an IPv4 or IPv6 address, or returns undefined. */
export function parseIP(s: string): ParsedIP | undefined {
  if (s.includes(':')) {
    const bytes = parseIPv6(s);
    return bytes === undefined ? undefined : { family: 6, bytes };
  }
  const bytes = new Uint8Array(4);
  return parseIPv4(s, bytes, 0) ? { family: 4, bytes } : undefined;
}

function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** Canonical text of a 4- or 16-byte address (RFC 5952 for IPv6; IPv4-mapped as `::ffff:a.b.c.d`). */
export function formatIP(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) throw new RangeError(`an IP address has 4 or 16 bytes, not ${b.length}`);
  if (isV4Mapped(b)) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push(((b[i] ?? 0) << 8) | (b[i + 1] ?? 0));
  // The longest run of two or more zero groups (the first one on a tie) becomes '::'.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

/** Canonical text of an address, or undefined if `s` is not one. */
export function canonicalIP(s: string): string | undefined {
  const p = parseIP(s);
  return p === undefined ? undefined : formatIP(p.bytes);
}

/** Parses `addr/len`, clearing host bits (like Go's net.ParseCIDR), or returns undefined. */
export function parseCIDR(s: string): ParsedCIDR | undefined {
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIP(s.slice(0, slash));
  const lenText = s.slice(slash + 1);
  if (ip === undefined || !/^(0|[1-9][0-9]{0,2})$/.test(lenText)) return undefined;
  const prefixLength = Number(lenText);
  const bits = ip.bytes.length * 8;
  if (prefixLength > bits) return undefined;
  const bytes = maskBytes(ip.bytes, prefixLength);
  return { family: ip.family, ip: formatIP(bytes), prefixLength, bytes };
}

function maskBytes(b: Uint8Array, prefixLength: number): Uint8Array {
  const out = new Uint8Array(b);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, prefixLength - i * 8));
    out[i] = (out[i] ?? 0) & ((0xff << (8 - keep)) & 0xff);
  }
  return out;
}

/** True if `inner` lies within `outer` (same family, prefix at least as long, same network bits). */
export function cidrContains(outer: ParsedCIDR, inner: ParsedCIDR): boolean {
  if (outer.family !== inner.family || inner.prefixLength < outer.prefixLength) return false;
  const masked = maskBytes(inner.bytes, outer.prefixLength);
  for (let i = 0; i < masked.length; i++) if (masked[i] !== outer.bytes[i]) return false;
  return true;
}

/** True if the address `ip` lies within `cidr`. */
export function cidrHas(cidr: ParsedCIDR, ip: ParsedIP): boolean {
  if (cidr.family !== ip.family) return false;
  const masked = maskBytes(ip.bytes, cidr.prefixLength);
  for (let i = 0; i < masked.length; i++) if (masked[i] !== cidr.bytes[i]) return false;
  return true;
}

/**
 * The 16-byte form of an address, IPv4 as IPv4-mapped IPv6 (what Go's net.ParseIP returns and what
 * Antrea puts on the wire). Throws a RangeError if `s` is not an address.
 */
export function ipTo16(s: string): Uint8Array {
  const p = parseIP(s);
  if (p === undefined) throw new RangeError(`"${s}" is not an IP address`);
  if (p.family === 6) return p.bytes;
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(p.bytes, 12);
  return out;
}
