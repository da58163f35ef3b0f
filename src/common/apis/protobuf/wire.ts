/**
 * A small protobuf (proto2) wire codec driven by per-message field tables: no generated code, no
 * library. {@link ProtoWriter} encodes into one growing buffer and writes canonical bytes (minimal
 * varints, fields in ascending number order, as Go's generated marshallers do); {@link ProtoReader}
 * reads with bounds checks and reports every problem as a {@link ProtobufError} naming the field
 * path and byte offset, so a receiver can drop malformed input as a whole instead of applying part
 * of it.
 *
 * A message is described by a {@link MessageType}: its fields with number, name, kind and presence.
 * `required` fields (non-pointer fields in Go) are always written and default to their zero value
 * when absent on decode; `optional` fields are written only when defined; repeated fields are
 * written once per element and decode to an array (left undefined when empty if the field is
 * optional). Unknown field numbers are skipped (forward compatibility) but must still be well-formed.
 */
import { isUtf8 } from 'node:buffer';
import { AntreaError } from '../../util/errors.ts';
import { formatIP, ipTo16 } from '../../util/ipaddr.ts';

export class ProtobufError extends AntreaError<'PROTOBUF_MALFORMED'> {
  constructor(message: string, details: { readonly path?: string; readonly offset?: number } = {}) {
    super('PROTOBUF_MALFORMED', message, { details });
  }
}

export const WireType = { Varint: 0, Fixed64: 1, Bytes: 2, Fixed32: 5 } as const;

const TWO_32 = 4294967296;
const EMPTY_BYTES = new Uint8Array(0);

/** An encoder writing into one buffer that grows as needed. Reuse it with {@link reset}. */
export class ProtoWriter {
  buf: Buffer;
  pos = 0;

  constructor(initialSize = 1024) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  reset(): void {
    this.pos = 0;
  }

  /** A copy of the bytes written so far. */
  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** An unsigned varint; `v` must be a non-negative safe integer. */
  uvarint(v: number): void {
    this.ensure(10);
    const b = this.buf;
    let p = this.pos;
    while (v >= 0x80) {
      b[p++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    b[p++] = v;
    this.pos = p;
  }

  /** A signed integer as a varint: negative values take 10 bytes (two's complement, as Go's int32/int64). */
  varint(v: number): void {
    if (v >= 0) {
      this.uvarint(v);
      return;
    }
    // Two's complement over 64 bits: low and high 32-bit halves.
    const lo = v % TWO_32 === 0 ? 0 : (v % TWO_32) + TWO_32;
    let hi = Math.floor(v / TWO_32) + TWO_32;
    let l = lo;
    this.ensure(10);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < 4; i++) {
      b[p++] = (l & 0x7f) | 0x80;
      l = Math.floor(l / 128);
    }
    // Bits 28..34: the top 4 bits of lo and the low 3 bits of hi.
    b[p++] = (l & 0x0f) | ((hi & 0x07) << 4) | 0x80;
    hi = Math.floor(hi / 8);
    for (let i = 0; i < 4; i++) {
      b[p++] = (hi & 0x7f) | 0x80;
      hi = Math.floor(hi / 128);
    }
    b[p++] = hi & 0x01;
    this.pos = p;
  }

  tag(field: number, wire: number): void {
    this.uvarint(field * 8 + wire);
  }

  bytes(data: Uint8Array): void {
    this.uvarint(data.length);
    this.ensure(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }

  string(s: string): void {
    // Short strings: reserve one length byte and write in place; otherwise measure first.
    if (s.length < 43) {
      this.ensure(1 + s.length * 3);
      const start = this.pos + 1;
      const n = this.buf.write(s, start, 'utf8');
      if (n < 128) {
        this.buf[this.pos] = n;
        this.pos = start + n;
        return;
      }
    }
    const n = Buffer.byteLength(s, 'utf8');
    this.uvarint(n);
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, n, 'utf8');
  }

  double(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  /**
   * Starts a length-delimited field: returns a mark for {@link endLength}. One byte is reserved for
   * the length; a longer length shifts the content (cheap: most nested messages are short).
   */
  beginLength(): number {
    this.ensure(1);
    return this.pos++;
  }

  endLength(mark: number): void {
    const len = this.pos - mark - 1;
    if (len < 128) {
      this.buf[mark] = len;
      return;
    }
    let extra = 0;
    for (let v = len; v >= 128; v = Math.floor(v / 128)) extra++;
    this.ensure(extra);
    this.buf.copyWithin(mark + 1 + extra, mark + 1, this.pos);
    let p = mark;
    let v = len;
    while (v >= 0x80) {
      this.buf[p++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[p] = v;
    this.pos += extra;
  }
}

/** A bounds-checked reader over `buf[start, end)`. */
export class ProtoReader {
  readonly buf: Uint8Array;
  pos: number;
  readonly end: number;
  /** Path of the message being read, for error messages. */
  path = '';

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  fail(message: string): never {
    throw new ProtobufError(`${this.path === '' ? '' : `${this.path}: `}${message} at byte ${this.pos}`, {
      path: this.path,
      offset: this.pos,
    });
  }

  /** An unsigned varint up to 2^53 - 1. */
  uvarint(): number {
    const b = this.buf;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const byte = b[this.pos++] ?? 0;
      result += (byte & 0x7f) * mul;
      if ((byte & 0x80) === 0) {
        if (result > Number.MAX_SAFE_INTEGER) this.fail('varint exceeds 2^53');
        return result;
      }
      mul *= 128;
    }
    return this.fail('varint longer than 10 bytes');
  }

  /** A varint as a signed 64-bit integer (must be a safe integer). */
  varint64(): number {
    const start = this.pos;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const byte = this.buf[this.pos++] ?? 0;
      const bits = byte & 0x7f;
      if (i < 4) lo += bits * 2 ** (7 * i);
      else if (i === 4) {
        lo += (bits & 0x0f) * 2 ** 28;
        hi += bits >> 4;
      } else hi += bits * 2 ** (7 * i - 32);
      if ((byte & 0x80) === 0) {
        hi = hi % TWO_32;
        const v = hi >= 2 ** 31 ? (hi - TWO_32) * TWO_32 + lo : hi * TWO_32 + lo;
        if (!Number.isSafeInteger(v)) {
          this.pos = start;
          this.fail('int64 value is not a safe integer');
        }
        return v;
      }
    }
    return this.fail('varint longer than 10 bytes');
  }

  /** A varint as a signed 32-bit integer (Go's int32: the low 32 bits). */
  varint32(): number {
    return this.varint64() | 0;
  }

  /** A varint as an unsigned 32-bit integer. */
  uvarint32(): number {
    return this.varint64() >>> 0;
  }

  /** The bounds of a length-delimited field; advances past it. */
  lengthDelimited(): { start: number; end: number } {
    const n = this.uvarint();
    const start = this.pos;
    if (n > this.end - start) this.fail(`length ${n} runs past the end of the message`);
    this.pos = start + n;
    return { start, end: start + n };
  }

  bytes(): Uint8Array {
    const { start, end } = this.lengthDelimited();
    return this.buf.subarray(start, end);
  }

  string(): string {
    const { start, end } = this.lengthDelimited();
    const view = this.buf.subarray(start, end);
    if (!isUtf8(view)) {
      this.pos = start;
      this.fail('string is not valid UTF-8');
    }
    return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('utf8');
  }

  double(): number {
    if (this.end - this.pos < 8) this.fail('truncated fixed64');
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 8).getFloat64(0, true);
    this.pos += 8;
    return v;
  }

  /** Skips a field of wire type `wire`. */
  skip(wire: number): void {
    switch (wire) {
      case WireType.Varint:
        this.varint64OrSkip();
        return;
      case WireType.Fixed64:
        if (this.end - this.pos < 8) this.fail('truncated fixed64');
        this.pos += 8;
        return;
      case WireType.Bytes:
        this.lengthDelimited();
        return;
      case WireType.Fixed32:
        if (this.end - this.pos < 4) this.fail('truncated fixed32');
        this.pos += 4;
        return;
      default:
        this.fail(`unsupported wire type ${wire}`);
    }
  }

  private varint64OrSkip(): void {
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint');
      if (((this.buf[this.pos++] ?? 0) & 0x80) === 0) return;
    }
    this.fail('varint longer than 10 bytes');
  }
}

// ------------------------------------------------------------------ field tables

/**
 * Field kinds. `ip` is Antrea's IPAddress: text in memory, 16 bytes on the wire (IPv4 as
 * IPv4-mapped IPv6); `intOrString` is k8s.io/apimachinery's IntOrString message; `map` is a
 * map<string,string>.
 */
export type FieldKind =
  'string' | 'bytes' | 'ip' | 'int32' | 'int64' | 'uint32' | 'bool' | 'double' | 'intOrString' | 'map' | 'message';

export interface FieldSpec {
  readonly no: number;
  readonly name: string;
  readonly kind: FieldKind;
  /** Default 'optional'. */
  readonly presence?: 'required' | 'optional';
  readonly repeated?: boolean;
  /** For kind 'message'. */
  readonly type?: MessageType;
  /** For kind 'string': the accepted values (anything else is malformed). */
  readonly enum?: readonly string[];
}

export interface FieldDesc extends FieldSpec {
  readonly required: boolean;
  readonly wire: number;
  readonly tag: number;
  readonly enumSet: ReadonlySet<string> | undefined;
}

export interface MessageType {
  readonly name: string;
  readonly fields: readonly FieldDesc[];
  readonly byNo: ReadonlyMap<number, FieldDesc>;
}

function wireOf(kind: FieldKind): number {
  if (kind === 'int32' || kind === 'int64' || kind === 'uint32' || kind === 'bool') return WireType.Varint;
  return kind === 'double' ? WireType.Fixed64 : WireType.Bytes;
}

/** Builds a message type; fields are sorted by number.  */
export function message(name: string, fields: readonly FieldSpec[]): MessageType {
  const descs = [...fields]
    .sort((a, b) => a.no - b.no)
    .map((f): FieldDesc => {
      const wire = wireOf(f.kind);
      return {
        ...f,
        required: f.presence === 'required',
        wire,
        tag: f.no * 8 + wire,
        enumSet: f.enum === undefined ? undefined : new Set(f.enum),
      };
    });
  return { name, fields: descs, byNo: new Map(descs.map((f) => [f.no, f])) };
}

/** The zero value of a required field (a message: its fields' zero values). */
export function zeroValue(f: FieldDesc): unknown {
  if (f.repeated === true) return [];
  switch (f.kind) {
    case 'string':
    case 'ip':
      return '';
    case 'bytes':
      return new Uint8Array(0);
    case 'int32':
    case 'int64':
    case 'uint32':
    case 'double':
      return 0;
    case 'bool':
      return false;
    case 'intOrString':
      return 0;
    case 'map':
      return {};
    case 'message':
      return decodeMessage(f.type as MessageType, new ProtoReader(new Uint8Array(0)));
  }
}

type Obj = Readonly<Record<string, unknown>>;

function encodeScalar(w: ProtoWriter, f: FieldDesc, v: unknown): void {
  w.uvarint(f.tag);
  switch (f.kind) {
    case 'string':
      w.string(v as string);
      return;
    case 'bytes':
      w.bytes(v as Uint8Array);
      return;
    case 'ip':
      w.bytes(v === '' ? EMPTY_BYTES : ipTo16(v as string));
      return;
    case 'int32':
    case 'int64':
      w.varint(v as number);
      return;
    case 'uint32':
      w.uvarint(v as number);
      return;
    case 'bool':
      w.uvarint(v === true ? 1 : 0);
      return;
    case 'double':
      w.double(v as number);
      return;
    case 'intOrString': {
      const m = w.beginLength();
      if (typeof v === 'number') {
        w.tag(1, WireType.Varint);
        w.uvarint(0);
        w.tag(2, WireType.Varint);
        w.varint(v);
        w.tag(3, WireType.Bytes);
        w.uvarint(0);
      } else {
        w.tag(1, WireType.Varint);
        w.uvarint(1);
        w.tag(2, WireType.Varint);
        w.uvarint(0);
        w.tag(3, WireType.Bytes);
        w.string(v as string);
      }
      w.endLength(m);
      return;
    }
    case 'message': {
      const m = w.beginLength();
      encodeMessage(w, f.type as MessageType, v as Obj);
      w.endLength(m);
      return;
    }
    case 'map':
      throw new TypeError('maps are encoded by encodeMap');
  }
}

function encodeMap(w: ProtoWriter, f: FieldDesc, v: Readonly<Record<string, string>>): void {
  // Go writes map entries in key order.
  for (const key of Object.keys(v).sort()) {
    w.uvarint(f.tag);
    const m = w.beginLength();
    w.tag(1, WireType.Bytes);
    w.string(key);
    w.tag(2, WireType.Bytes);
    w.string(v[key] ?? '');
    w.endLength(m);
  }
}

/** Writes the fields of `obj` (without a length prefix). */
export function encodeMessage(w: ProtoWriter, type: MessageType, obj: Obj): void {
  for (const f of type.fields) {
    let v = obj[f.name];
    if (v === undefined) {
      if (!f.required) continue;
      v = zeroValue(f);
    }
    if (f.kind === 'map') encodeMap(w, f, v as Record<string, string>);
    else if (f.repeated === true) for (const item of v as readonly unknown[]) encodeScalar(w, f, item);
    else encodeScalar(w, f, v);
  }
}

/** Encodes `obj` as a standalone message. */
export function encode(type: MessageType, obj: Obj, w = new ProtoWriter()): Buffer {
  w.reset();
  encodeMessage(w, type, obj);
  return w.finish();
}

function decodeIP(r: ProtoReader): string {
  const b = r.bytes();
  if (b.length === 0) return '';
  if (b.length === 16) {
    let mapped = b[10] === 0xff && b[11] === 0xff;
    for (let i = 0; i < 10 && mapped; i++) if (b[i] !== 0) mapped = false;
    return formatIP(mapped ? b.subarray(12) : b);
  }
  if (b.length === 4) return formatIP(b);
  r.pos -= b.length;
  return r.fail(`an IP address has 4 or 16 bytes, not ${b.length}`);
}

function decodeIntOrString(r: ProtoReader): number | string {
  const { start, end } = r.lengthDelimited();
  const sub = new ProtoReader(r.buf, start, end);
  sub.path = r.path;
  let type = 0;
  let intVal = 0;
  let strVal = '';
  while (!sub.done) {
    const key = sub.uvarint();
    const no = Math.floor(key / 8);
    const wire = key & 7;
    if (no === 1 && wire === WireType.Varint) type = sub.varint64();
    else if (no === 2 && wire === WireType.Varint) intVal = sub.varint32();
    else if (no === 3 && wire === WireType.Bytes) strVal = sub.string();
    else sub.skip(wire);
  }
  if (type !== 0 && type !== 1) return sub.fail(`IntOrString type must be 0 or 1, got ${type}`);
  return type === 1 ? strVal : intVal;
}

function decodeScalar(r: ProtoReader, f: FieldDesc): unknown {
  switch (f.kind) {
    case 'string': {
      const s = r.string();
      if (f.enumSet !== undefined && !f.enumSet.has(s)) {
        r.fail(`"${s}" is not one of ${[...f.enumSet].join(', ')}`);
      }
      return s;
    }
    case 'bytes':
      return new Uint8Array(r.bytes());
    case 'ip':
      return decodeIP(r);
    case 'int32':
      return r.varint32();
    case 'int64':
      return r.varint64();
    case 'uint32':
      return r.uvarint32();
    case 'bool':
      return r.varint64() !== 0;
    case 'double':
      return r.double();
    case 'intOrString':
      return decodeIntOrString(r);
    case 'message': {
      const { start, end } = r.lengthDelimited();
      const sub = new ProtoReader(r.buf, start, end);
      sub.path = r.path;
      return decodeMessage(f.type as MessageType, sub);
    }
    case 'map':
      throw new TypeError('maps are decoded by decodeMapEntry');
  }
}

function decodeMapEntry(r: ProtoReader, into: Record<string, string>): void {
  const { start, end } = r.lengthDelimited();
  const sub = new ProtoReader(r.buf, start, end);
  sub.path = r.path;
  let key = '';
  let value = '';
  while (!sub.done) {
    const tag = sub.uvarint();
    if (tag === 0x0a) key = sub.string();
    else if (tag === 0x12) value = sub.string();
    else sub.skip(tag & 7);
  }
  into[key] = value;
}

const PACKABLE = new Set<FieldKind>(['int32', 'int64', 'uint32', 'bool']);

/** Reads a message from `r` until its end. */
export function decodeMessage(type: MessageType, r: ProtoReader): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  // Required fields first, in field order, so every decoded object of a type starts with one shape.
  for (const f of type.fields) if (f.required) out[f.name] = zeroValue(f);
  const parent = r.path;
  while (!r.done) {
    const key = r.uvarint();
    const no = Math.floor(key / 8);
    const wire = key & 7;
    if (no === 0) r.fail('field number 0');
    const f = type.byNo.get(no);
    if (f === undefined) {
      r.skip(wire);
      continue;
    }
    r.path = parent === '' ? f.name : `${parent}.${f.name}`;
    if (f.repeated === true && PACKABLE.has(f.kind) && wire === WireType.Bytes) {
      // A packed repeated scalar.
      const { start, end } = r.lengthDelimited();
      const sub = new ProtoReader(r.buf, start, end);
      sub.path = r.path;
      const arr = (out[f.name] ?? []) as unknown[];
      while (!sub.done) arr.push(decodeScalar(sub, f));
      out[f.name] = arr;
    } else {
      if (wire !== f.wire) r.fail(`wire type ${wire}, expected ${f.wire}`);
      if (f.kind === 'map') {
        const m = (out[f.name] ?? {}) as Record<string, string>;
        decodeMapEntry(r, m);
        out[f.name] = m;
      } else if (f.repeated === true) {
        const v = decodeScalar(r, f);
        const arr = out[f.name] as unknown[] | undefined;
        if (arr === undefined) out[f.name] = [v];
        else arr.push(v);
      } else {
        out[f.name] = decodeScalar(r, f);
      }
    }
    r.path = parent;
  }
  return out;
}

/** Decodes a standalone message; throws a {@link ProtobufError} on malformed input. */
export function decode(type: MessageType, buf: Uint8Array, path = type.name): Record<string, unknown> {
  const r = new ProtoReader(buf);
  r.path = path;
  return decodeMessage(type, r);
}
