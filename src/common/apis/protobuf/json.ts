/**
 * The JSON form of messages described by the protobuf field tables of wire.ts, as Kubernetes
 * serves them: field names as in the tables (the Go json tags), `ip` fields as base64 of the
 * 16-byte form (Go marshals `[]byte` as base64), IntOrString as a number or a string, maps as
 * objects. {@link fromJSON} checks every field's type and reports the first problem as a
 * {@link JsonShapeError} naming the field path.
 */
import { AntreaError } from '../../util/errors.ts';
import { formatIP, ipTo16 } from '../../util/ipaddr.ts';
import { type FieldDesc, type MessageType, zeroValue } from './wire.ts';

export class JsonShapeError extends AntreaError<'JSON_MALFORMED'> {
  constructor(path: string, message: string) {
    super('JSON_MALFORMED', `${path}: ${message}`, { details: { path } });
  }
}

type Obj = Readonly<Record<string, unknown>>;

function scalarToJSON(f: FieldDesc, v: unknown): unknown {
  if (f.kind === 'ip') return v === '' ? '' : Buffer.from(ipTo16(v as string)).toString('base64');
  if (f.kind === 'bytes') return Buffer.from(v as Uint8Array).toString('base64');
  if (f.kind === 'message') return toJSON(f.type as MessageType, v as Obj);
  return v;
}

/** The JSON value of `obj` (a plain object ready for JSON.stringify). Absent optional fields are left out. */
export function toJSON(type: MessageType, obj: Obj): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of type.fields) {
    const v = obj[f.name];
    if (v === undefined) continue;
    if (f.kind === 'map') out[f.name] = v;
    else if (f.repeated === true) {
      const arr = v as readonly unknown[];
      // Go's omitempty drops empty slices of optional fields.
      if (arr.length === 0 && !f.required) continue;
      out[f.name] = f.kind === 'string' || f.kind === 'int32' ? arr : arr.map((x) => scalarToJSON(f, x));
    } else out[f.name] = scalarToJSON(f, v);
  }
  return out;
}

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

function isInt(v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

function scalarFromJSON(f: FieldDesc, v: unknown, path: string): unknown {
  switch (f.kind) {
    case 'string':
      if (typeof v !== 'string') throw new JsonShapeError(path, `expected a string, got ${typeName(v)}`);
      if (f.enumSet !== undefined && !f.enumSet.has(v)) {
        throw new JsonShapeError(path, `"${v}" is not one of ${[...f.enumSet].join(', ')}`);
      }
      return v;
    case 'bytes':
    case 'ip': {
      if (typeof v !== 'string' || !BASE64_RE.test(v) || v.length % 4 !== 0) {
        throw new JsonShapeError(path, 'expected base64 bytes');
      }
      const b = Buffer.from(v, 'base64');
      if (f.kind === 'bytes') return new Uint8Array(b);
      if (b.length === 0) return '';
      if (b.length === 4) return formatIP(b);
      if (b.length !== 16) throw new JsonShapeError(path, `an IP address has 4 or 16 bytes, not ${b.length}`);
      let mapped = b[10] === 0xff && b[11] === 0xff;
      for (let i = 0; i < 10 && mapped; i++) if (b[i] !== 0) mapped = false;
      return formatIP(mapped ? b.subarray(12) : b);
    }
    case 'int32':
      if (!isInt(v, -(2 ** 31), 2 ** 31 - 1)) throw new JsonShapeError(path, `expected a 32-bit integer`);
      return v;
    case 'uint32':
      if (!isInt(v, 0, 2 ** 32 - 1)) throw new JsonShapeError(path, `expected an unsigned 32-bit integer`);
      return v;
    case 'int64':
      if (!isInt(v, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER))
        throw new JsonShapeError(path, `expected an integer`);
      return v;
    case 'bool':
      if (typeof v !== 'boolean') throw new JsonShapeError(path, `expected a boolean, got ${typeName(v)}`);
      return v;
    case 'double':
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new JsonShapeError(path, `expected a number`);
      return v;
    case 'intOrString':
      if (typeof v === 'string') return v;
      if (!isInt(v, -(2 ** 31), 2 ** 31 - 1)) throw new JsonShapeError(path, `expected an integer or a string`);
      return v;
    case 'message':
      return fromJSON(f.type as MessageType, v, path);
    case 'map': {
      if (typeof v !== 'object' || v === null || Array.isArray(v))
        throw new JsonShapeError(path, `expected an object, got ${typeName(v)}`);
      const out: Record<string, string> = {};
      for (const [k, x] of Object.entries(v)) {
        if (typeof x !== 'string') throw new JsonShapeError(`${path}.${k}`, `expected a string, got ${typeName(x)}`);
        out[k] = x;
      }
      return out;
    }
  }
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

/**
 * The object a JSON value stands for; required fields default to their zero value, unknown keys are
 * ignored (forward compatibility), `null` counts as absent (as in Go).
 */
export function fromJSON(type: MessageType, json: unknown, path: string = type.name): Record<string, unknown> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new JsonShapeError(path, `expected an object, got ${typeName(json)}`);
  }
  const src = json as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const f of type.fields) {
    const v = src[f.name];
    const p = `${path}.${f.name}`;
    if (v === undefined || v === null) {
      if (f.required) out[f.name] = zeroValue(f);
      continue;
    }
    if (f.repeated === true) {
      if (!Array.isArray(v)) throw new JsonShapeError(p, `expected an array, got ${typeName(v)}`);
      out[f.name] = v.map((x, i) => scalarFromJSON(f, x, `${p}[${i}]`));
    } else out[f.name] = scalarFromJSON(f, v, p);
  }
  return out;
}
