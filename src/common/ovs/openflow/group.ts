/**
 * OpenFlow 1.5 groups: the model, canonical text (as `ovs-ofctl -O OpenFlow15 dump-groups` prints
 * a group, without the leading space), and the OFPT_GROUP_MOD / group-desc codec, including the
 * NTR selection-method property (selection_method=hash|dp_hash, fields, parameter).
 */
import { ValidationError } from '../../util/errors.ts';
import { ByteReader, ByteWriter, OpenFlowDecodeError, parseUint } from './bytes.ts';
import {
  type Action,
  decodeActionList,
  encodeActionList,
  formatActions,
  parseActions,
  splitTopLevel,
} from './actions.ts';
import {
  GROUP_TYPES,
  type GroupType,
  NTR_VENDOR_ID,
  OFP_VERSION_15,
  OFPG15_BUCKET_ALL,
  OFPG15_BUCKET_LAST,
  OFPG_ANY,
  OFPGC,
  OFPP,
  OFPT,
  formatPort,
  parsePort,
} from './consts.ts';
import { type FieldDef, fieldByCode, fieldHeader, findField } from './fields.ts';

export interface Bucket {
  /** Assigned in order (0, 1, ...) when absent. */
  readonly bucketId?: number;
  /** Select groups: relative weight (default 1). */
  readonly weight?: number;
  readonly watchPort?: number;
  readonly watchGroup?: number;
  readonly actions: readonly Action[];
}

export interface GroupSpec {
  readonly groupId: number;
  readonly type: GroupType;
  readonly buckets?: readonly Bucket[];
  /** Select groups: "hash" or "dp_hash" (absent: the switch default). */
  readonly selectionMethod?: string;
  readonly selectionMethodParam?: bigint;
  /** Fields hashed by selection_method=hash. */
  readonly fields?: readonly string[];
}

interface NormalBucket {
  readonly bucketId: number;
  readonly weight: number;
  readonly watchPort: number;
  readonly watchGroup: number;
  readonly actions: readonly Action[];
}

/** An immutable group. */
export class Group {
  readonly groupId: number;
  readonly type: GroupType;
  readonly buckets: readonly NormalBucket[];
  readonly selectionMethod: string | undefined;
  readonly selectionMethodParam: bigint;
  readonly fields: readonly FieldDef[];
  private text: string | undefined;

  constructor(spec: GroupSpec) {
    if (!Number.isInteger(spec.groupId) || spec.groupId < 0 || spec.groupId > 0xffffff00) {
      throw new ValidationError('groupId', `${spec.groupId} is not a valid group id`);
    }
    if (!(spec.type in GROUP_TYPES)) throw new ValidationError('type', `unknown group type "${spec.type}"`);
    this.groupId = spec.groupId;
    this.type = spec.type;
    const defaultWeight = spec.type === 'select' ? 1 : 0;
    const ids = new Set<number>();
    this.buckets = (spec.buckets ?? []).map((b, i) => {
      const bucketId = b.bucketId ?? i;
      if (ids.has(bucketId)) throw new ValidationError(`buckets[${i}].bucketId`, `duplicate bucket id ${bucketId}`);
      ids.add(bucketId);
      const weight = b.weight ?? defaultWeight;
      if (!Number.isInteger(weight) || weight < 0 || weight > 0xffff) {
        throw new ValidationError(`buckets[${i}].weight`, `${weight} is not a 16-bit weight`);
      }
      if (spec.type !== 'select' && weight !== 0) {
        throw new ValidationError(`buckets[${i}].weight`, 'only select groups have bucket weights');
      }
      for (const a of b.actions) {
        if (a.type === 'goto_table' || a.type === 'meter') {
          throw new ValidationError(`buckets[${i}].actions`, `${a.type} is not allowed in a bucket`);
        }
      }
      return {
        bucketId,
        weight,
        watchPort: b.watchPort ?? OFPP.ANY,
        watchGroup: b.watchGroup ?? OFPG_ANY,
        actions: b.actions,
      };
    });
    if (spec.type === 'indirect' && this.buckets.length !== 1) {
      throw new ValidationError('buckets', 'an indirect group has exactly one bucket');
    }
    if (spec.selectionMethod !== undefined && spec.type !== 'select') {
      throw new ValidationError('selectionMethod', 'only select groups have a selection method');
    }
    if (spec.selectionMethod !== undefined && spec.selectionMethod.length > 15) {
      throw new ValidationError('selectionMethod', 'at most 15 characters');
    }
    this.selectionMethod = spec.selectionMethod;
    this.selectionMethodParam = spec.selectionMethodParam ?? 0n;
    this.fields = (spec.fields ?? []).map((name, i) => {
      const d = findField(name);
      if (d === undefined) throw new ValidationError(`fields[${i}]`, `unknown field "${name}"`);
      return d;
    });
    if (this.fields.length > 0 && spec.selectionMethod !== 'hash') {
      throw new ValidationError('fields', 'fields need selection_method=hash');
    }
  }

  /** Canonical text, as `ovs-ofctl -O OpenFlow15 dump-groups` prints the group (no leading space). */
  toString(): string {
    this.text ??= formatGroup(this);
    return this.text;
  }

  equals(other: Group): boolean {
    return this.toString() === other.toString();
  }
}

export function formatGroup(g: Group): string {
  let s = `group_id=${g.groupId},type=${g.type}`;
  if (g.selectionMethod !== undefined && g.selectionMethod !== '') {
    s += `,selection_method=${g.selectionMethod}`;
    if (g.selectionMethodParam !== 0n) s += `,selection_method_param=${g.selectionMethodParam}`;
    const names = g.fields.map((f) => f.name);
    if (names.length === 1) s += `,fields=${names.join('')}`;
    else if (names.length > 1) s += `,fields(${names.join(',')})`;
  }
  const parts: string[] = [];
  for (const b of g.buckets) {
    let t = `bucket=bucket_id:${b.bucketId},`;
    if (b.weight !== (g.type === 'select' ? 1 : 0)) t += `weight:${b.weight},`;
    if (b.watchPort !== OFPP.ANY) t += `watch_port:${formatPort(b.watchPort)},`;
    if (b.watchGroup !== OFPG_ANY) t += `watch_group:${b.watchGroup},`;
    parts.push(`${t}actions=${formatActions(b.actions)}`);
  }
  return parts.length === 0 ? s : `${s},${parts.join(',')}`;
}

/** Parses a group in ovs-ofctl syntax (dump-groups output or add-group input). */
export function parseGroup(text: string): Group {
  const t = text.trim();
  const firstBucket = t.search(/(^|,)bucket=/);
  const head = firstBucket < 0 ? t : t.slice(0, firstBucket);
  const bucketText = firstBucket < 0 ? '' : t.slice(firstBucket).replace(/^,/, '');
  let groupId: number | undefined;
  let type: GroupType = 'all';
  let selectionMethod: string | undefined;
  let selectionMethodParam: bigint | undefined;
  let fields: string[] = [];
  for (const item of splitTopLevel(head)) {
    if (item.startsWith('fields(')) {
      fields = item
        .slice(7, -1)
        .split(',')
        .map((x) => x.trim());
      continue;
    }
    const eq = item.indexOf('=');
    const k = eq < 0 ? item : item.slice(0, eq);
    const v = eq < 0 ? '' : item.slice(eq + 1);
    switch (k) {
      case 'group_id':
        groupId = Number(parseUint(v, 'group_id'));
        break;
      case 'type':
        if (!(v in GROUP_TYPES)) throw new ValidationError('type', `unknown group type "${v}"`);
        type = v as GroupType;
        break;
      case 'selection_method':
        selectionMethod = v;
        break;
      case 'selection_method_param':
        selectionMethodParam = parseUint(v, 'selection_method_param');
        break;
      case 'fields':
        fields = [v];
        break;
      default:
        throw new ValidationError('group', `unknown group property "${k}"`);
    }
  }
  if (groupId === undefined) throw new ValidationError('group_id', 'missing group_id');
  const buckets: Bucket[] = [];
  for (const bt of bucketText === '' ? [] : bucketText.split(/,?bucket=/).filter((x) => x !== '')) {
    const ai = bt.indexOf('actions=');
    const props = ai < 0 ? bt : bt.slice(0, ai);
    const actions = ai < 0 ? [] : parseActions(bt.slice(ai + 'actions='.length));
    const b: { bucketId?: number; weight?: number; watchPort?: number; watchGroup?: number; actions: Action[] } = {
      actions,
    };
    for (const p of props.split(',').filter((x) => x !== '')) {
      const [k, v] = p.split(/[:=]/, 2) as [string, string | undefined];
      if (k === 'bucket_id') b.bucketId = Number(parseUint(v ?? '', 'bucket_id'));
      else if (k === 'weight') b.weight = Number(parseUint(v ?? '', 'weight'));
      else if (k === 'watch_port') b.watchPort = parsePort(v ?? '', 'watch_port');
      else if (k === 'watch_group') b.watchGroup = Number(parseUint(v ?? '', 'watch_group'));
      else throw new ValidationError('bucket', `unknown bucket property "${k}"`);
    }
    buckets.push(b);
  }
  return new Group({
    groupId,
    type,
    buckets,
    fields,
    ...(selectionMethod === undefined ? {} : { selectionMethod }),
    ...(selectionMethodParam === undefined ? {} : { selectionMethodParam }),
  });
}

// ---- wire ----------------------------------------------------------------------------------------

function encodeBucket(w: ByteWriter, b: NormalBucket, type: GroupType): void {
  const start = w.length;
  w.u16(0).u16(0).u32(b.bucketId);
  const actStart = w.length;
  encodeActionList(w, b.actions);
  const actLen = w.length - actStart;
  if (type === 'select') w.u16(0).u16(8).u16(b.weight).u16(0); // OFPGBPT15_WEIGHT
  if (b.watchPort !== OFPP.ANY) w.u16(1).u16(8).u32(b.watchPort);
  if (b.watchGroup !== OFPG_ANY) w.u16(2).u16(8).u32(b.watchGroup);
  w.setU16(start, w.length - start);
  w.setU16(start + 2, actLen);
}

function encodeSelectionMethod(w: ByteWriter, g: Group): void {
  if (g.selectionMethod === undefined) return;
  const start = w.length;
  w.u16(0xffff).u16(0).u32(NTR_VENDOR_ID).u32(1).zeros(4);
  const name = new TextEncoder().encode(g.selectionMethod);
  w.bytes(name).zeros(16 - name.length);
  w.u64(g.selectionMethodParam);
  // Each field is its OXM header followed by a mask (all ones: the whole field is hashed).
  for (const f of g.fields) w.u32(fieldHeader(f, false)).uint((1n << BigInt(f.bytes * 8)) - 1n, f.bytes);
  w.setU16(start + 2, w.length - start);
  w.pad8(start);
}

/** Encodes an OFPT_GROUP_MOD (add, modify, delete, insert_bucket). */
export function encodeGroupMod(
  xid: number,
  command: 'add' | 'modify' | 'delete' | 'insert_bucket',
  g: Group | { groupId: number },
): Uint8Array {
  const w = new ByteWriter(256);
  w.u8(OFP_VERSION_15).u8(OFPT.GROUP_MOD).u16(0).u32(xid);
  const cmd = { add: OFPGC.ADD, modify: OFPGC.MODIFY, delete: OFPGC.DELETE, insert_bucket: OFPGC.INSERT_BUCKET }[
    command
  ];
  const isGroup = g instanceof Group;
  w.u16(cmd)
    .u8(isGroup ? GROUP_TYPES[g.type] : 0)
    .u8(0)
    .u32(g.groupId);
  const lenAt = w.length;
  w.u16(0)
    .zeros(2)
    .u32(command === 'insert_bucket' ? OFPG15_BUCKET_LAST : OFPG15_BUCKET_ALL);
  if (isGroup && command !== 'delete') {
    const bStart = w.length;
    for (const b of g.buckets) encodeBucket(w, b, g.type);
    w.setU16(lenAt, w.length - bStart);
    if (command !== 'insert_bucket') encodeSelectionMethod(w, g);
  }
  w.setU16(2, w.length);
  return w.finish();
}

/** Decodes one OFPMP_GROUP_DESC reply entry. */
export function decodeGroupDesc(r: ByteReader): Group {
  const start = r.pos;
  const length = r.u16('group desc length');
  const typeNo = r.u8();
  r.skip(1);
  const groupId = r.u32();
  const bucketLen = r.u16();
  r.skip(6);
  const type = (Object.keys(GROUP_TYPES) as GroupType[]).find((k) => GROUP_TYPES[k] === typeNo);
  if (type === undefined) throw new OpenFlowDecodeError(`unknown group type ${typeNo}`);
  const buckets: Bucket[] = [];
  const bucketsEnd = r.pos + bucketLen;
  while (r.pos < bucketsEnd) {
    const bStart = r.pos;
    const len = r.u16('bucket length');
    const actLen = r.u16('bucket action length');
    const bucketId = r.u32();
    const actions = decodeActionList(r, r.pos + actLen);
    let weight: number | undefined;
    let watchPort: number | undefined;
    let watchGroup: number | undefined;
    while (r.pos + 4 <= bStart + len) {
      const pStart = r.pos;
      const pt = r.u16('bucket property');
      const pl = r.u16('bucket property length');
      if (pl < 4) throw new OpenFlowDecodeError(`bad bucket property length ${pl}`);
      const body = new ByteReader(r.buf, r.pos, pStart + pl);
      if (pt === 0) weight = body.u16();
      else if (pt === 1) watchPort = body.u32();
      else if (pt === 2) watchGroup = body.u32();
      r.pos = pStart + pl + ((8 - (pl % 8)) % 8);
    }
    r.pos = bStart + len;
    buckets.push({
      bucketId,
      actions,
      ...(weight === undefined ? {} : { weight }),
      ...(watchPort === undefined || watchPort === OFPP.ANY ? {} : { watchPort }),
      ...(watchGroup === undefined || watchGroup === OFPG_ANY ? {} : { watchGroup }),
    });
  }
  let selectionMethod: string | undefined;
  let selectionMethodParam: bigint | undefined;
  const fields: string[] = [];
  while (r.pos + 4 <= start + length) {
    const pStart = r.pos;
    const pt = r.u16();
    const pl = r.u16();
    if (pt === 0xffff && pl >= 40) {
      const exp = r.u32();
      const expType = r.u32();
      r.skip(4);
      if (exp === NTR_VENDOR_ID && expType === 1) {
        const raw = r.bytes(16);
        selectionMethod = new TextDecoder().decode(raw.subarray(0, raw.indexOf(0) < 0 ? 16 : raw.indexOf(0)));
        selectionMethodParam = r.u64();
        while (r.pos + 4 <= pStart + pl) {
          const h = r.u32();
          if (h === 0) break;
          const def = fieldByCode(h >>> 16, (h >>> 9) & 0x7f);
          if (def !== undefined) fields.push(def.name);
          r.skip((h & 0x100) !== 0 ? (h & 0xff) / 2 : h & 0xff);
        }
      }
    }
    r.pos = pStart + pl + ((8 - (pl % 8)) % 8);
  }
  r.pos = start + length;
  return new Group({
    groupId,
    type,
    buckets,
    fields,
    ...(selectionMethod === undefined || selectionMethod === '' ? {} : { selectionMethod }),
    ...(selectionMethodParam === undefined ? {} : { selectionMethodParam }),
  });
}

export interface GroupStats {
  readonly groupId: number;
  readonly refCount: number;
  readonly packetCount: bigint;
  readonly byteCount: bigint;
  readonly durationSec: number;
  readonly buckets: readonly { readonly packetCount: bigint; readonly byteCount: bigint }[];
}

/** Decodes one OFPMP_GROUP_STATS reply entry. */
export function decodeGroupStats(r: ByteReader): GroupStats {
  const start = r.pos;
  const length = r.u16();
  r.skip(2);
  const groupId = r.u32();
  const refCount = r.u32();
  r.skip(4);
  const packetCount = r.u64();
  const byteCount = r.u64();
  const durationSec = r.u32();
  r.skip(4);
  const buckets: { packetCount: bigint; byteCount: bigint }[] = [];
  while (r.pos + 16 <= start + length) buckets.push({ packetCount: r.u64(), byteCount: r.u64() });
  r.pos = start + length;
  return { groupId, refCount, packetCount, byteCount, durationSec, buckets };
}
