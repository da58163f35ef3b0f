/**
 * Port ranges as OpenFlow (value, mask) pairs: OVS matches tp_dst/tp_src with a bit mask, so a range
 * [start, end] becomes the smallest set of aligned power-of-two blocks covering it exactly (Antrea's
 * BitRange decomposition). Every port in the range matches exactly one pair; no port outside matches.
 */
import { ValidationError } from '../../util/errors.ts';

/** A masked port match: ports p with (p & mask) === value. mask 0 matches every port. */
export interface PortMask {
  readonly value: number;
  readonly mask: number;
}

function checkPort(v: number, field: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new ValidationError(field, `${v} is not a port (0..65535)`);
}

/**
 * Decomposes [start, end] (inclusive) into aligned blocks. Throws a ValidationError naming `start`
 * or `end` for values outside 0..65535 or end < start.
 */
export function portRangeToMasks(start: number, end: number = start): PortMask[] {
  checkPort(start, 'start');
  checkPort(end, 'end');
  if (end < start) throw new ValidationError('end', `end ${end} is below start ${start}`);
  const out: PortMask[] = [];
  let p = start;
  while (p <= end) {
    // The largest block aligned at p: its size is p's lowest set bit (65536 for p = 0)...
    let size = p === 0 ? 0x10000 : p & -p;
    // ...shrunk until it fits in what is left.
    while (p + size - 1 > end) size >>= 1;
    out.push({ value: p, mask: 0xffff & ~(size - 1) });
    p += size;
  }
  return out;
}

/** Whether `port` matches `m`. */
export function portMatches(m: PortMask, port: number): boolean {
  return (port & m.mask) === m.value;
}
