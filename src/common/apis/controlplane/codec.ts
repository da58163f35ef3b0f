/**
 * Encoding and decoding of controlplane.antrea.io/v1beta2 objects and watch streams, in both
 * encodings Antrea serves: Kubernetes protobuf (`application/vnd.kubernetes.protobuf`: enveloped
 * objects, length-prefixed watch frames) and JSON (objects with kind/apiVersion, one watch event per
 * line). Used by the controller's API server and by the agent's watcher, so both sides share one
 * definition of the wire.
 *
 * Decoding is all-or-nothing: any malformed input (truncated data, wrong wire type, invalid UTF-8,
 * an IP that is not 4 or 16 bytes, an unknown enum value, an unknown kind or event type) throws a
 * typed error (code PROTOBUF_MALFORMED or JSON_MALFORMED) and yields nothing.
 */
import { fromJSON, JsonShapeError, toJSON } from '../protobuf/json.ts';
import {
  DEFAULT_MAX_FRAME_BYTES,
  JSON_CONTENT_TYPE,
  JsonLineReader,
  PROTOBUF_CONTENT_TYPE,
  readEnvelope,
  readWatchEvent,
  type Status,
  StatusMsg,
  WatchFrameReader,
  writeEnvelope,
  writeWatchFrame,
} from '../protobuf/k8s.ts';
import { decode, encodeMessage, type MessageType, ProtobufError, ProtoWriter } from '../protobuf/wire.ts';
import {
  AddressGroupListMsg,
  AddressGroupMsg,
  AddressGroupPatchMsg,
  AppliedToGroupListMsg,
  AppliedToGroupMsg,
  AppliedToGroupPatchMsg,
  NetworkPolicyListMsg,
  NetworkPolicyMsg,
  NetworkPolicyStatusMsg,
} from './schema.ts';
import type {
  AddressGroup,
  AddressGroupList,
  AddressGroupPatch,
  AppliedToGroup,
  AppliedToGroupList,
  AppliedToGroupPatch,
  NetworkPolicy,
  NetworkPolicyList,
  NetworkPolicyStatus,
} from './types.ts';

export const API_GROUP = 'controlplane.antrea.io';
export const API_VERSION = 'v1beta2';
export const GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;

/** The TypeScript type of each kind. */
export interface KindTypes {
  NetworkPolicy: NetworkPolicy;
  AddressGroup: AddressGroup;
  AppliedToGroup: AppliedToGroup;
  AddressGroupPatch: AddressGroupPatch;
  AppliedToGroupPatch: AppliedToGroupPatch;
  NetworkPolicyList: NetworkPolicyList;
  AddressGroupList: AddressGroupList;
  AppliedToGroupList: AppliedToGroupList;
  NetworkPolicyStatus: NetworkPolicyStatus;
}
export type Kind = keyof KindTypes;

export const KIND_MESSAGES: Readonly<Record<Kind, MessageType>> = {
  NetworkPolicy: NetworkPolicyMsg,
  AddressGroup: AddressGroupMsg,
  AppliedToGroup: AppliedToGroupMsg,
  AddressGroupPatch: AddressGroupPatchMsg,
  AppliedToGroupPatch: AppliedToGroupPatchMsg,
  NetworkPolicyList: NetworkPolicyListMsg,
  AddressGroupList: AddressGroupListMsg,
  AppliedToGroupList: AppliedToGroupListMsg,
  NetworkPolicyStatus: NetworkPolicyStatusMsg,
};

function isKind(k: string): k is Kind {
  return Object.hasOwn(KIND_MESSAGES, k);
}

/** The three resources agents watch, with the kinds they carry. */
export const RESOURCES = {
  networkpolicies: { kind: 'NetworkPolicy', listKind: 'NetworkPolicyList', patchKind: 'NetworkPolicy' },
  addressgroups: { kind: 'AddressGroup', listKind: 'AddressGroupList', patchKind: 'AddressGroupPatch' },
  appliedtogroups: { kind: 'AppliedToGroup', listKind: 'AppliedToGroupList', patchKind: 'AppliedToGroupPatch' },
} as const satisfies Record<string, { kind: Kind; listKind: Kind; patchKind: Kind }>;
export type ControlplaneResource = keyof typeof RESOURCES;
export const RESOURCE_NAMES = Object.keys(RESOURCES) as readonly ControlplaneResource[];

export function isControlplaneResource(s: string): s is ControlplaneResource {
  return Object.hasOwn(RESOURCES, s);
}

export type Encoding = 'protobuf' | 'json';

export const CONTENT_TYPES: Readonly<Record<Encoding, string>> = {
  protobuf: PROTOBUF_CONTENT_TYPE,
  json: JSON_CONTENT_TYPE,
};

export const WATCH_EVENT_TYPES = ['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR'] as const;
export type WatchEventType = (typeof WATCH_EVENT_TYPES)[number];
const WATCH_EVENT_TYPE_SET: ReadonlySet<string> = new Set(WATCH_EVENT_TYPES);

/** The annotation of the bookmark that ends the initial events (watch-list semantics). */
export const INITIAL_EVENTS_END_ANNOTATION = 'k8s.io/initial-events-end';

type Obj = Readonly<Record<string, unknown>>;

/**
 * Encodes objects and watch frames. Holds one scratch buffer: not reentrant, keep one per caller
 * (encoding is synchronous, so one per process component is enough).
 */
export class ControlplaneEncoder {
  private readonly w = new ProtoWriter(64 * 1024);

  /** A whole object (the body of a GET or a POST). */
  object<K extends Kind>(encoding: Encoding, kind: K, obj: KindTypes[K]): Buffer {
    if (encoding === 'json') return Buffer.from(JSON.stringify(jsonObject(kind, obj)));
    const w = this.w;
    w.reset();
    writeEnvelope(w, GROUP_VERSION, kind, (ww) => encodeMessage(ww, KIND_MESSAGES[kind], obj as unknown as Obj));
    return w.finish();
  }

  /** One watch event, framed for the stream (length-prefixed protobuf, or a JSON line). */
  watchFrame<K extends Kind>(encoding: Encoding, type: WatchEventType, kind: K, obj: KindTypes[K]): Buffer {
    if (encoding === 'json') return Buffer.from(JSON.stringify({ type, object: jsonObject(kind, obj) }) + '\n');
    return writeWatchFrame(this.w, type, GROUP_VERSION, kind, (ww) =>
      encodeMessage(ww, KIND_MESSAGES[kind], obj as unknown as Obj),
    );
  }

  /** An ERROR watch event carrying a meta.v1 Status. */
  errorFrame(encoding: Encoding, status: Status): Buffer {
    if (encoding === 'json') {
      return Buffer.from(
        JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', ...status } }) + '\n',
      );
    }
    return writeWatchFrame(this.w, 'ERROR', 'v1', 'Status', (ww) =>
      encodeMessage(ww, StatusMsg, status as unknown as Obj),
    );
  }
}

function jsonObject(kind: Kind, obj: unknown): Record<string, unknown> {
  return { kind, apiVersion: GROUP_VERSION, ...toJSON(KIND_MESSAGES[kind], obj as Obj) };
}

export interface DecodedObject {
  readonly kind: Kind;
  readonly object: unknown;
}

/** Decodes a whole object; `expected` restricts the accepted kinds. */
export function decodeObject(encoding: Encoding, body: Uint8Array, expected?: readonly Kind[]): DecodedObject {
  if (encoding === 'json') {
    let json: unknown;
    try {
      json = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
    } catch (err) {
      throw new JsonShapeError('body', `not JSON: ${(err as Error).message}`);
    }
    return decodeJsonObject(json, 'body', expected);
  }
  const env = readEnvelope(body, 'body');
  return decodeEnvelope(env.apiVersion, env.kind, env.raw, 'body', expected);
}

function checkKind(kind: string, apiVersion: string, path: string, expected: readonly Kind[] | undefined): Kind {
  if (apiVersion !== GROUP_VERSION)
    throw new ProtobufError(`${path}: apiVersion "${apiVersion}", expected ${GROUP_VERSION}`);
  if (!isKind(kind) || (expected !== undefined && !expected.includes(kind))) {
    throw new ProtobufError(
      `${path}: unexpected kind "${kind}"${expected === undefined ? '' : ` (expected ${expected.join(' or ')})`}`,
    );
  }
  return kind;
}

function decodeEnvelope(
  apiVersion: string,
  kind: string,
  raw: Uint8Array,
  path: string,
  expected: readonly Kind[] | undefined,
): DecodedObject {
  const k = checkKind(kind, apiVersion, path, expected);
  return { kind: k, object: decode(KIND_MESSAGES[k], raw, `${path}(${k})`) };
}

function decodeJsonObject(json: unknown, path: string, expected: readonly Kind[] | undefined): DecodedObject {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new JsonShapeError(path, 'expected an object');
  const o = json as Record<string, unknown>;
  const kind = typeof o['kind'] === 'string' ? o['kind'] : '';
  const apiVersion = typeof o['apiVersion'] === 'string' ? o['apiVersion'] : '';
  let k: Kind;
  try {
    k = checkKind(kind, apiVersion, path, expected);
  } catch (err) {
    throw new JsonShapeError(path, (err as Error).message.replace(`${path}: `, ''));
  }
  return { kind: k, object: fromJSON(KIND_MESSAGES[k], o, `${path}(${k})`) };
}

export interface DecodedWatchEvent {
  readonly type: WatchEventType;
  /** The kind of the object (`Status` for ERROR events). */
  readonly kind: Kind | 'Status';
  readonly object: unknown;
}

function decodeStatusJson(o: unknown): Status {
  const s = (typeof o === 'object' && o !== null ? o : {}) as Record<string, unknown>;
  return {
    status: typeof s['status'] === 'string' ? s['status'] : '',
    message: typeof s['message'] === 'string' ? s['message'] : '',
    reason: typeof s['reason'] === 'string' ? s['reason'] : '',
    code: typeof s['code'] === 'number' ? s['code'] : 0,
  };
}

/**
 * Decodes a watch stream of one encoding, chunk by chunk. `push` returns the events the chunk
 * completes, or throws on the first malformed frame (after which the stream must be dropped).
 */
export class WatchDecoder {
  private readonly encoding: Encoding;
  private readonly frames: WatchFrameReader;
  private readonly lines: JsonLineReader;
  private readonly expected: readonly Kind[] | undefined;

  constructor(encoding: Encoding, opts: { maxFrameBytes?: number; expectedKinds?: readonly Kind[] } = {}) {
    this.encoding = encoding;
    this.frames = new WatchFrameReader(opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
    this.lines = new JsonLineReader(opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
    this.expected = opts.expectedKinds;
  }

  /** Bytes of an incomplete frame held back. */
  get pending(): number {
    return this.encoding === 'protobuf' ? this.frames.pending : 0;
  }

  push(chunk: Buffer): DecodedWatchEvent[] {
    const out: DecodedWatchEvent[] = [];
    if (this.encoding === 'protobuf') {
      for (const frame of this.frames.push(chunk)) {
        const ev = readWatchEvent(frame);
        if (!WATCH_EVENT_TYPE_SET.has(ev.type)) throw new ProtobufError(`unknown watch event type "${ev.type}"`);
        const type = ev.type as WatchEventType;
        if (type === 'ERROR') {
          const st = decode(StatusMsg, ev.object.raw, 'Status') as unknown as Status;
          out.push({ type, kind: 'Status', object: st });
          continue;
        }
        const d = decodeEnvelope(ev.object.apiVersion, ev.object.kind, ev.object.raw, `${type} event`, this.expected);
        out.push({ type, kind: d.kind, object: d.object });
      }
      return out;
    }
    for (const line of this.lines.push(chunk)) {
      let json: unknown;
      try {
        json = JSON.parse(line);
      } catch (err) {
        throw new JsonShapeError('watch event', `not JSON: ${(err as Error).message}`);
      }
      if (typeof json !== 'object' || json === null) throw new JsonShapeError('watch event', 'expected an object');
      const { type, object } = json as { type?: unknown; object?: unknown };
      if (typeof type !== 'string' || !WATCH_EVENT_TYPE_SET.has(type)) {
        throw new JsonShapeError('watch event.type', `unknown watch event type ${JSON.stringify(type)}`);
      }
      const t = type as WatchEventType;
      if (t === 'ERROR') {
        out.push({ type: t, kind: 'Status', object: decodeStatusJson(object) });
        continue;
      }
      const d = decodeJsonObject(object, `${t} event`, this.expected);
      out.push({ type: t, kind: d.kind, object: d.object });
    }
    return out;
  }
}
