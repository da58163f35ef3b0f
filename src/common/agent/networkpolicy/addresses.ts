/**
 * IPv4 address sets for policy peers: an ipBlock is its CIDR minus its except CIDRs, expressed as
 * the smallest list of disjoint CIDRs (what nw_src/nw_dst flows can match).
 */
import { ValidationError } from '../../util/errors.ts';

interface Block {
  readonly base: number;
  readonly len: number;
}

function parse4(cidr: string, field: string): Block | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)(?:\/(\d+))?$/.exec(cidr);
  if (m === null) return undefined;
  const parts = m.slice(1, 5).map(Number);
  if (parts.some((x) => x > 255)) throw new ValidationError(field, `bad IPv4 address in "${cidr}"`);
  const len = m[5] === undefined ? 32 : Number(m[5]);
  if (len > 32) throw new ValidationError(field, `bad prefix length in "${cidr}"`);
  const ip = (((parts[0] ?? 0) << 24) | ((parts[1] ?? 0) << 16) | ((parts[2] ?? 0) << 8) | (parts[3] ?? 0)) >>> 0;
  return { base: (ip & maskOf(len)) >>> 0, len };
}

function maskOf(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

function format(b: Block): string {
  const ip = [b.base >>> 24, (b.base >>> 16) & 255, (b.base >>> 8) & 255, b.base & 255].join('.');
  return `${ip}/${b.len}`;
}

function contains(outer: Block, inner: Block): boolean {
  return outer.len <= inner.len && (inner.base & maskOf(outer.len)) >>> 0 === outer.base;
}

/** Whether a text is an IPv4 address or CIDR. */
export function isIPv4(cidrOrIp: string): boolean {
  return /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(cidrOrIp);
}

/** Canonical IPv4 CIDR text (host bits cleared; a bare address becomes /32). */
export function canonicalCIDR4(cidrOrIp: string, field = 'cidr'): string {
  const b = parse4(cidrOrIp, field);
  if (b === undefined) throw new ValidationError(field, `"${cidrOrIp}" is not an IPv4 address or CIDR`);
  return format(b);
}

/**
 * `cidr` minus every CIDR of `except`, as disjoint CIDRs sorted by address. Excepts outside `cidr`
 * are ignored; an except covering `cidr` leaves nothing.
 */
export function cidrMinus(cidr: string, except: readonly string[], field = 'ipBlock'): string[] {
  const whole = parse4(cidr, `${field}.cidr`);
  if (whole === undefined) throw new ValidationError(`${field}.cidr`, `"${cidr}" is not an IPv4 CIDR`);
  let blocks: Block[] = [whole];
  for (const [i, e] of except.entries()) {
    const ex = parse4(e, `${field}.except[${i}]`);
    if (ex === undefined) throw new ValidationError(`${field}.except[${i}]`, `"${e}" is not an IPv4 CIDR`);
    const next: Block[] = [];
    for (const b of blocks) {
      if (contains(ex, b)) continue;
      if (!contains(b, ex)) {
        next.push(b);
        continue;
      }
      // Split b down to ex, keeping the sibling halves that do not hold it.
      let cur = b;
      while (cur.len < ex.len) {
        const len = cur.len + 1;
        const lo: Block = { base: cur.base, len };
        const hi: Block = { base: (cur.base | (1 << (32 - len))) >>> 0, len };
        if (contains(lo, ex)) {
          next.push(hi);
          cur = lo;
        } else {
          next.push(lo);
          cur = hi;
        }
      }
    }
    blocks = next;
  }
  return blocks.sort((a, b) => a.base - b.base || a.len - b.len).map(format);
}
