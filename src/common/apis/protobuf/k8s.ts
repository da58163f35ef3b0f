/**
 * Kubernetes' protobuf framing (k8s.io/apimachinery):
 *
 * - an object is the magic `k8s\0` followed by a `runtime.Unknown`
 *   {1 typeMeta {1 apiVersion, 2 kind}, 2 raw (the object's own message), 3 contentEncoding,
 *   4 contentType};
 * - a watch stream is a sequence of frames, each a 4-byte big-endian length followed by a
 *   `meta.v1.WatchEvent` {1 type, 2 object (RawExtension {1 raw})} whose raw is an enveloped object.
 *
 * {@link WatchFrameReader} splits a byte stream into frames with a bound on the frame size; every
 * problem is a {@link ProtobufError}.
 */
import { ProtobufError, ProtoReader, type ProtoWriter, WireType, message } from './wire.ts';

export const K8S_MAGIC: Uint8Array = Uint8Array.of(0x6b, 0x38, 0x73, 0x00);

/** Content types of the two encodings. */
export const PROTOBUF_CONTENT_TYPE = 'application/vnd.kubernetes.protobuf';
export const JSON_CONTENT_TYPE = 'application/json';
/** The content type of a protobuf watch stream. */
export const PROTOBUF_WATCH_CONTENT_TYPE = 'application/vnd.kubernetes.protobuf;stream=watch';

/** Default bound on one frame (and one JSON line) of a watch stream. */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;

/**
 * Writes an enveloped object at the writer's position: magic, then the Unknown whose raw field is
 * what `body` writes. Go writes the empty contentEncoding and contentType too; so do we.
 */
export function writeEnvelope(w: ProtoWriter, apiVersion: string, kind: string, body: (w: ProtoWriter) => void): void {
  w.ensure(4);
  w.buf.set(K8S_MAGIC, w.pos);
  w.pos += 4;
  w.tag(1, WireType.Bytes);
  const tm = w.beginLength();
  w.tag(1, WireType.Bytes);
  w.string(apiVersion);
  w.tag(2, WireType.Bytes);
  w.string(kind);
  w.endLength(tm);
  w.tag(2, WireType.Bytes);
  const raw = w.beginLength();
  body(w);
  w.endLength(raw);
  w.tag(3, WireType.Bytes);
  w.uvarint(0);
  w.tag(4, WireType.Bytes);
  w.uvarint(0);
}

export interface Envelope {
  readonly apiVersion: string;
  readonly kind: string;
  /** The object's message bytes (a view into the input). */
  readonly raw: Uint8Array;
}

/** Reads an enveloped object. */
export function readEnvelope(buf: Uint8Array, path = 'object'): Envelope {
  if (buf.length < 4 || buf[0] !== 0x6b || buf[1] !== 0x38 || buf[2] !== 0x73 || buf[3] !== 0x00) {
    throw new ProtobufError(`${path}: missing the k8s protobuf magic`, { path, offset: 0 });
  }
  const r = new ProtoReader(buf, 4);
  r.path = path;
  let apiVersion = '';
  let kind = '';
  let raw: Uint8Array = new Uint8Array(0);
  let contentEncoding = '';
  while (!r.done) {
    const key = r.uvarint();
    const wire = key & 7;
    switch (key) {
      case 0x0a: {
        const { start, end } = r.lengthDelimited();
        const tm = new ProtoReader(buf, start, end);
        tm.path = `${path}.typeMeta`;
        while (!tm.done) {
          const k = tm.uvarint();
          if (k === 0x0a) apiVersion = tm.string();
          else if (k === 0x12) kind = tm.string();
          else tm.skip(k & 7);
        }
        break;
      }
      case 0x12:
        raw = r.bytes();
        break;
      case 0x1a:
        contentEncoding = r.string();
        break;
      default:
        r.skip(wire);
    }
  }
  if (contentEncoding !== '') r.fail(`unsupported contentEncoding "${contentEncoding}"`);
  if (kind === '') r.fail('the envelope has no kind');
  return { apiVersion, kind, raw };
}

/**
 * Writes one watch frame: the 4-byte length, then the WatchEvent carrying the enveloped object that
 * `body` writes. Returns a copy of the frame's bytes.
 */
export function writeWatchFrame(
  w: ProtoWriter,
  type: string,
  apiVersion: string,
  kind: string,
  body: (w: ProtoWriter) => void,
): Buffer {
  w.reset();
  w.ensure(4);
  w.pos = 4;
  w.tag(1, WireType.Bytes);
  w.string(type);
  w.tag(2, WireType.Bytes);
  const ext = w.beginLength();
  w.tag(1, WireType.Bytes);
  const raw = w.beginLength();
  writeEnvelope(w, apiVersion, kind, body);
  w.endLength(raw);
  w.endLength(ext);
  w.buf.writeUInt32BE(w.pos - 4, 0);
  return w.finish();
}

export interface RawWatchEvent {
  readonly type: string;
  readonly object: Envelope;
}

/** Reads the WatchEvent of one frame (without its length prefix). */
export function readWatchEvent(frame: Uint8Array): RawWatchEvent {
  const r = new ProtoReader(frame);
  r.path = 'WatchEvent';
  let type: string | undefined;
  let object: Uint8Array | undefined;
  while (!r.done) {
    const key = r.uvarint();
    if (key === 0x0a) type = r.string();
    else if (key === 0x12) {
      const { start, end } = r.lengthDelimited();
      const ext = new ProtoReader(frame, start, end);
      ext.path = 'WatchEvent.object';
      while (!ext.done) {
        const k = ext.uvarint();
        if (k === 0x0a) object = ext.bytes();
        else ext.skip(k & 7);
      }
    } else r.skip(key & 7);
  }
  if (type === undefined || type === '') return r.fail('the watch event has no type');
  if (object === undefined) return r.fail('the watch event has no object');
  return { type, object: readEnvelope(object, 'WatchEvent.object') };
}

/** Splits a protobuf watch stream into frames. Feed it chunks; it keeps partial frames. */
export class WatchFrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private readonly maxFrameBytes: number;

  constructor(maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Bytes held for an incomplete frame. */
  get pending(): number {
    return this.buffered;
  }

  /** Adds a chunk and returns the frames it completes. Throws a ProtobufError on an oversized frame. */
  push(chunk: Buffer): Buffer[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const frames: Buffer[] = [];
    for (;;) {
      if (this.buffered < 4) break;
      const head = this.peek(4);
      const len = head.readUInt32BE(0);
      if (len > this.maxFrameBytes) {
        throw new ProtobufError(`watch frame of ${len} bytes exceeds the limit of ${this.maxFrameBytes}`, {
          path: 'frame',
        });
      }
      if (this.buffered < 4 + len) break;
      const all = this.take(4 + len);
      frames.push(all.subarray(4));
    }
    return frames;
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) return first;
    this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] as Buffer;
  }

  private take(n: number): Buffer {
    const first = this.peek(n);
    const out = first.subarray(0, n);
    const rest = first.subarray(n);
    if (rest.length > 0) this.chunks[0] = rest;
    else this.chunks.shift();
    this.buffered -= n;
    return out;
  }
}

/** Splits a JSON watch stream into lines (one event each), with a bound on the line length. */
export class JsonLineReader {
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private readonly maxLineBytes: number;

  constructor(maxLineBytes = DEFAULT_MAX_FRAME_BYTES) {
    this.maxLineBytes = maxLineBytes;
  }

  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      let line: Buffer = chunk.subarray(start, nl);
      if (this.partial.length > 0) {
        line = Buffer.concat([...this.partial, line]);
        this.partial = [];
        this.partialBytes = 0;
      }
      if (line.length > this.maxLineBytes) this.tooLong(line.length);
      const text = line.toString('utf8').trim();
      if (text !== '') lines.push(text);
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.partial.push(rest);
      this.partialBytes += rest.length;
      if (this.partialBytes > this.maxLineBytes) this.tooLong(this.partialBytes);
    }
    return lines;
  }

  private tooLong(n: number): never {
    throw new ProtobufError(`watch line of ${n} bytes exceeds the limit of ${this.maxLineBytes}`, { path: 'line' });
  }
}

/** meta.v1.Status, as sent in ERROR watch events and error responses. */
export interface Status {
  readonly status: string;
  readonly message: string;
  readonly reason: string;
  readonly code: number;
}

export const ListMetaMsg = message('ListMeta', [
  { no: 1, name: 'selfLink', kind: 'string' },
  { no: 2, name: 'resourceVersion', kind: 'string' },
  { no: 3, name: 'continue', kind: 'string' },
  { no: 4, name: 'remainingItemCount', kind: 'int64' },
]);

export const StatusMsg = message('Status', [
  { no: 1, name: 'metadata', kind: 'message', type: ListMetaMsg },
  { no: 2, name: 'status', kind: 'string', presence: 'required' },
  { no: 3, name: 'message', kind: 'string', presence: 'required' },
  { no: 4, name: 'reason', kind: 'string', presence: 'required' },
  { no: 6, name: 'code', kind: 'int32', presence: 'required' },
]);
