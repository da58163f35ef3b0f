/**
 * OpenFlow meters: the model, canonical text (as `ovs-ofctl -O OpenFlow15 dump-meters` prints one
 * meter: "meter=256 pktps burst stats bands=\ntype=drop rate=5000 burst_size=10000") and the
 * OFPT_METER_MOD / meter-config codec.
 */
import { ValidationError } from '../../util/errors.ts';
import { ByteReader, ByteWriter, OpenFlowDecodeError, parseUint } from './bytes.ts';
import { OFP_VERSION_15, OFPMBT, OFPMC, OFPMF, OFPT } from './consts.ts';

export type MeterUnit = 'kbps' | 'pktps';

export interface MeterBand {
  readonly type: 'drop' | 'dscp_remark';
  readonly rate: number;
  readonly burstSize?: number;
  /** dscp_remark only. */
  readonly precLevel?: number;
}

export interface MeterSpec {
  readonly meterId: number;
  readonly unit: MeterUnit;
  readonly burst?: boolean;
  readonly stats?: boolean;
  readonly bands: readonly MeterBand[];
}

export class Meter {
  readonly meterId: number;
  readonly unit: MeterUnit;
  readonly burst: boolean;
  readonly stats: boolean;
  readonly bands: readonly MeterBand[];

  constructor(spec: MeterSpec) {
    if (!Number.isInteger(spec.meterId) || spec.meterId < 1 || spec.meterId > 0xffff0000) {
      throw new ValidationError('meterId', `${spec.meterId} is not a valid meter id`);
    }
    if (!['kbps', 'pktps'].includes(spec.unit)) throw new ValidationError('unit', 'must be kbps or pktps');
    if (spec.bands.length === 0) throw new ValidationError('bands', 'a meter needs at least one band');
    spec.bands.forEach((b, i) => {
      if (!Number.isInteger(b.rate) || b.rate < 1 || b.rate > 0xffffffff) {
        throw new ValidationError(`bands[${i}].rate`, `${b.rate} is not a positive 32-bit rate`);
      }
      if (spec.burst === true && b.burstSize === undefined) {
        throw new ValidationError(`bands[${i}].burstSize`, 'a band must have a burst size when the meter has "burst"');
      }
    });
    this.meterId = spec.meterId;
    this.unit = spec.unit;
    this.burst = spec.burst ?? false;
    this.stats = spec.stats ?? false;
    this.bands = spec.bands;
  }

  get flags(): number {
    return (
      (this.unit === 'kbps' ? OFPMF.KBPS : OFPMF.PKTPS) |
      (this.burst ? OFPMF.BURST : 0) |
      (this.stats ? OFPMF.STATS : 0)
    );
  }

  /** Canonical text as `ovs-ofctl -O OpenFlow15 dump-meters` prints the meter (two or more lines). */
  toString(): string {
    let s = `meter=${this.meterId} ${this.unit} `;
    if (this.burst) s += 'burst ';
    if (this.stats) s += 'stats ';
    s += 'bands=';
    for (const b of this.bands) {
      s += `\ntype=${b.type} rate=${b.rate}`;
      if (this.burst) s += ` burst_size=${b.burstSize ?? 0}`;
      if (b.type === 'dscp_remark') s += ` prec_level=${b.precLevel ?? 0}`;
    }
    return s;
  }

  equals(other: Meter): boolean {
    return this.toString() === other.toString();
  }
}

/** Parses a meter in ovs-ofctl syntax (dump-meters output, with or without the line break, or add-meter input). */
export function parseMeter(text: string): Meter {
  const tokens = text
    .trim()
    .replace(/bands=/, 'bands= ')
    .split(/[\s,]+/)
    .filter((t) => t !== '');
  let meterId: number | undefined;
  let unit: MeterUnit = 'kbps';
  let burst = false;
  let stats = false;
  const bands: { type: 'drop' | 'dscp_remark'; rate: number; burstSize?: number; precLevel?: number }[] = [];
  for (const tok of tokens) {
    const [k, v] = tok.split('=', 2) as [string, string | undefined];
    switch (k) {
      case 'meter':
        meterId = Number(parseUint(v ?? '', 'meter'));
        break;
      case 'kbps':
      case 'pktps':
        unit = k;
        break;
      case 'burst':
        burst = true;
        break;
      case 'stats':
        stats = true;
        break;
      case 'bands':
        if (v !== undefined && v !== '') throw new ValidationError('bands', `unexpected "${v}"`);
        break;
      case 'type':
        if (v !== 'drop' && v !== 'dscp_remark') throw new ValidationError('type', `unknown band type "${v}"`);
        bands.push({ type: v, rate: 0 });
        break;
      case 'rate':
      case 'burst_size':
      case 'prec_level': {
        const b = bands[bands.length - 1];
        if (b === undefined) throw new ValidationError(k, `${k} before any band type`);
        const n = Number(parseUint(v ?? '', k));
        if (k === 'rate') b.rate = n;
        else if (k === 'burst_size') b.burstSize = n;
        else b.precLevel = n;
        break;
      }
      default:
        throw new ValidationError('meter', `unknown meter property "${k}"`);
    }
  }
  if (meterId === undefined) throw new ValidationError('meter', 'missing meter id');
  return new Meter({ meterId, unit, burst, stats, bands });
}

export function encodeMeterMod(
  xid: number,
  command: 'add' | 'modify' | 'delete',
  m: Meter | { meterId: number },
): Uint8Array {
  const w = new ByteWriter(64);
  w.u8(OFP_VERSION_15).u8(OFPT.METER_MOD).u16(0).u32(xid);
  const cmd = { add: OFPMC.ADD, modify: OFPMC.MODIFY, delete: OFPMC.DELETE }[command];
  const isMeter = m instanceof Meter;
  w.u16(cmd)
    .u16(isMeter ? m.flags : 0)
    .u32(m.meterId);
  if (isMeter && command !== 'delete') {
    for (const b of m.bands) {
      if (b.type === 'drop')
        w.u16(OFPMBT.DROP)
          .u16(16)
          .u32(b.rate)
          .u32(b.burstSize ?? 0)
          .zeros(4);
      else
        w.u16(OFPMBT.DSCP_REMARK)
          .u16(16)
          .u32(b.rate)
          .u32(b.burstSize ?? 0)
          .u8(b.precLevel ?? 0)
          .zeros(3);
    }
  }
  w.setU16(2, w.length);
  return w.finish();
}

/** Decodes one OFPMP_METER_DESC (meter config) reply entry. */
export function decodeMeterConfig(r: ByteReader): Meter {
  const start = r.pos;
  const length = r.u16('meter config length');
  const flags = r.u16();
  const meterId = r.u32();
  const bands: MeterBand[] = [];
  while (r.pos + 16 <= start + length) {
    const type = r.u16();
    const len = r.u16();
    const rate = r.u32();
    const burstSize = r.u32();
    if (type === OFPMBT.DROP) {
      r.skip(4);
      bands.push({ type: 'drop', rate, burstSize });
    } else if (type === OFPMBT.DSCP_REMARK) {
      const precLevel = r.u8();
      r.skip(3);
      bands.push({ type: 'dscp_remark', rate, burstSize, precLevel });
    } else {
      throw new OpenFlowDecodeError(`unknown meter band type ${type}`);
    }
    if (len > 16) r.skip(len - 16);
  }
  r.pos = start + length;
  const burst = (flags & OFPMF.BURST) !== 0;
  return new Meter({
    meterId,
    unit: (flags & OFPMF.KBPS) !== 0 ? 'kbps' : 'pktps',
    burst,
    stats: (flags & OFPMF.STATS) !== 0,
    bands: burst ? bands : bands.map(({ burstSize: _b, ...rest }) => rest),
  });
}
