/**
 * Byte-level helpers for the OpenFlow codec: a growable big-endian writer, a bounds-checked reader,
 * and conversions between bigints, byte strings and the text forms OVS prints.
 */
import { AntreaError, ValidationError } from '../../util/errors.ts';
import { parseIP } from '../../util/ipaddr.ts';

/** Raised when bytes received from the switch cannot be decoded. */
export class OpenFlowDecodeError extends AntreaError<'OPENFLOW_DECODE'> {
  constructor(message: string) {
    super('OPENFLOW_DECODE', message);
  }
}

export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }

  get length(): number {
    return this.pos;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
    return this;
  }
  u16(v: number): this {
    this.ensure(2);
    this.view.setUint16(this.pos, v & 0xffff);
    this.pos += 2;
    return this;
  }
  u32(v: number): this {
    this.ensure(4);
    this.view.setUint32(this.pos, v >>> 0);
    this.pos += 4;
    return this;
  }
  u64(v: bigint): this {
    this.ensure(8);
    this.view.setBigUint64(this.pos, BigInt.asUintN(64, v));
    this.pos += 8;
    return this;
  }
  /** Writes `v` as an unsigned big-endian integer of `n` bytes. */
  uint(v: bigint, n: number): this {
    this.ensure(n);
    if (n <= 4 && v <= 0xffffffffn) {
      let x = Number(v);
      for (let i = n - 1; i >= 0; i--) {
        this.buf[this.pos + i] = x & 0xff;
        x = Math.floor(x / 256);
      }
    } else {
      let x = v;
      for (let i = n - 1; i >= 0; i--) {
        this.buf[this.pos + i] = Number(x & 0xffn);
        x >>= 8n;
      }
    }
    this.pos += n;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }
  zeros(n: number): this {
    this.ensure(n);
    this.buf.fill(0, this.pos, this.pos + n);
    this.pos += n;
    return this;
  }
  /** Pads with zeros so that the length since `start` is a multiple of 8. */
  pad8(start = 0): this {
    const rem = (this.pos - start) % 8;
    return rem === 0 ? this : this.zeros(8 - rem);
  }
  /** Overwrites a 16-bit value at an earlier position (for length fields). */
  setU16(at: number, v: number): this {
    this.view.setUint16(at, v);
    return this;
  }
  setU32(at: number, v: number): this {
    this.view.setUint32(at, v >>> 0);
    return this;
  }
  /** A copy of the bytes written so far. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

export class ByteReader {
  readonly buf: Uint8Array;
  private readonly view: DataView;
  pos: number;
  readonly end: number;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, what: string): void {
    if (this.pos + n > this.end) {
      throw new OpenFlowDecodeError(`truncated ${what}: need ${n} bytes at offset ${this.pos}, have ${this.remaining}`);
    }
  }
  u8(what = 'u8'): number {
    this.need(1, what);
    return this.view.getUint8(this.pos++);
  }
  u16(what = 'u16'): number {
    this.need(2, what);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }
  u32(what = 'u32'): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }
  u64(what = 'u64'): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos);
    this.pos += 8;
    return v;
  }
  uint(n: number, what = 'integer'): bigint {
    this.need(n, what);
    const v = bytesToBigint(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return v;
  }
  bytes(n: number, what = 'bytes'): Uint8Array {
    this.need(n, what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  skip(n: number, what = 'padding'): void {
    this.need(n, what);
    this.pos += n;
  }
  /** A reader over the next `n` bytes, advancing this one past them. */
  sub(n: number, what = 'structure'): ByteReader {
    this.need(n, what);
    const r = new ByteReader(this.buf, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }
}

export function bytesToBigint(b: Uint8Array): bigint {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

export function bigintToBytes(v: bigint, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = v;
  for (let i = n - 1; i >= 0; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return out;
}

const ONES: bigint[] = [];

/** All-ones value of `bits` bits. */
export function ones(bits: number): bigint {
  let v = ONES[bits];
  if (v === undefined) {
    v = (1n << BigInt(bits)) - 1n;
    if (bits <= 1024) ONES[bits] = v;
  }
  return v;
}

/** OVS `ds_put_hex`: "0x" and minimal hex digits, or "0" for zero. */
export function hexMin(v: bigint): string {
  return v === 0n ? '0' : `0x${v.toString(16)}`;
}

/** C `%#x`: "0x..." for nonzero values, "0" for zero. */
export function hexAlt(v: bigint | number): string {
  return v === 0 || v === 0n ? '0' : `0x${v.toString(16)}`;
}

/** Dotted hex bytes as OVS prints userdata and notes ("01.02.0a"). */
export function dottedHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('.');
}

/** Parses hex bytes written as "01.02.0a", "01:02", "0102" or with spaces. */
export function parseHexBytes(s: string, field: string): Uint8Array {
  const clean = s.replace(/[.:\s]/g, '');
  if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean)) {
    throw new ValidationError(field, `bad hex bytes "${s}"`);
  }
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Parses an unsigned integer in decimal, 0x-hex or leading-0 octal (as OVS does). */
export function parseUint(s: string, field: string): bigint {
  const t = s.trim();
  if (/^0x[0-9a-fA-F]+$/i.test(t)) return BigInt(t);
  if (/^0[0-7]+$/.test(t)) return BigInt(`0o${t.slice(1)}`);
  if (/^\d+$/.test(t)) return BigInt(t);
  throw new ValidationError(field, `"${s}" is not an unsigned integer`);
}

// ---- addresses --------------------------------------------------------------------------------

export function formatMac(v: bigint): string {
  const parts: string[] = [];
  for (let i = 5; i >= 0; i--)
    parts.push(
      Number((v >> BigInt(i * 8)) & 0xffn)
        .toString(16)
        .padStart(2, '0'),
    );
  return parts.join(':');
}

export function parseMac(s: string, field: string): bigint {
  const m =
    /^([0-9a-fA-F]{1,2})[:-]([0-9a-fA-F]{1,2})[:-]([0-9a-fA-F]{1,2})[:-]([0-9a-fA-F]{1,2})[:-]([0-9a-fA-F]{1,2})[:-]([0-9a-fA-F]{1,2})$/.exec(
      s.trim(),
    );
  if (m === null) throw new ValidationError(field, `"${s}" is not an Ethernet address`);
  let v = 0n;
  for (const part of m.slice(1)) v = (v << 8n) | BigInt(Number.parseInt(part, 16));
  return v;
}

export function formatIpv4(v: bigint | number): string {
  const n = Number(v);
  return `${(n >>> 24) & 0xff}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
}

export function parseIpv4(s: string, field: string): bigint {
  const ip = parseIP(s.trim());
  if (ip?.family !== 4) throw new ValidationError(field, `"${s}" is not an IPv4 address`);
  return bytesToBigint(ip.bytes);
}

/** RFC 5952 text form of a 128-bit IPv6 address (what inet_ntop prints). */
export function formatIpv6(v: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((v >> BigInt(i * 16)) & 0xffffn));
  // IPv4-mapped and compatible forms, as glibc inet_ntop prints them.
  if (groups.slice(0, 5).every((g) => g === 0) && (groups[5] === 0xffff || (groups[5] === 0 && groups[6] !== 0))) {
    const v4 = formatIpv4((BigInt(groups[6] ?? 0) << 16n) | BigInt(groups[7] ?? 0));
    if (groups[5] === 0xffff) return `::ffff:${v4}`;
    return `::${v4}`;
  }
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
  const left = hex.slice(0, bestStart).join(':');
  const right = hex.slice(bestStart + bestLen).join(':');
  return `${left}::${right}`;
}

export function parseIpv6(s: string, field: string): bigint {
  let t = s.trim();
  if (t.startsWith('[') && t.endsWith(']')) t = t.slice(1, -1);
  const ip = parseIP(t);
  if (ip?.family !== 6) throw new ValidationError(field, `"${s}" is not an IPv6 address`);
  return bytesToBigint(ip.bytes);
}

/** Prefix length if `mask` is a CIDR mask of `bits` bits, else -1. */
export function cidrLength(mask: bigint, bits: number): number {
  const inv = ones(bits) ^ mask;
  if ((inv & (inv + 1n)) !== 0n) return -1;
  let n = 0;
  for (let m = mask; m !== 0n; m = (m << 1n) & ones(bits)) n++;
  return n;
}

export function prefixMask(len: number, bits: number): bigint {
  if (len <= 0) return 0n;
  return ones(bits) ^ ones(bits - len);
}
