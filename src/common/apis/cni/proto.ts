/**
 * Antrea's CNI gRPC API (`pkg/apis/cni/v1beta1/cni.proto`, package
 * `antrea_io.antrea.pkg.apis.cni.v1beta1`), encoded by hand: the four messages are small, and the
 * antrea-cni plugin must start fast, so it does not load a protobuf library.
 *
 * Wire compatibility: field numbers and types follow cni.proto exactly (proto3: default values are
 * not written; unknown fields are skipped when decoding). Two RPCs are added to Antrea's service,
 * `CmdGC` and `CmdStatus` (CNI spec 1.1.0 verbs Antrea lacks); a plugin calling them on an agent
 * that does not have them gets gRPC UNIMPLEMENTED, which it maps to INCOMPATIBLE_API_VERSION.
 *
 * This module imports nothing but Buffer, so the plugin can load it cheaply.
 */

/** The gRPC service path prefix. */
export const CNI_SERVICE = 'antrea_io.antrea.pkg.apis.cni.v1beta1.Cni';

/** The RPCs of the service (Antrea's three plus our GC and STATUS). */
export const CNI_METHODS = ['CmdAdd', 'CmdCheck', 'CmdDel', 'CmdGC', 'CmdStatus'] as const;
export type CniMethod = (typeof CNI_METHODS)[number];

/** The full gRPC method path, e.g. `/antrea_io.antrea.pkg.apis.cni.v1beta1.Cni/CmdAdd`. */
export function cniMethodPath(method: CniMethod): string {
  return `/${CNI_SERVICE}/${method}`;
}

/** Antrea's `AntreaCNIVersion`: the version of this gRPC API. */
export const ANTREA_CNI_API_VERSION = '1.0.0-beta.1';

/**
 * `ErrorCode` of cni.proto. 1-11 mirror the CNI spec's well-known codes, 101-103 are Antrea's agent
 * errors, 201-202 are reserved for the plugin side. 50 and 51 are the CNI 1.1 STATUS codes, which
 * Antrea's enum does not list (proto3 enums are open, so an older peer decodes them as numbers).
 */
export const ErrorCode = {
  UNKNOWN: 0,
  INCOMPATIBLE_CNI_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENVIRONMENT_VARIABLES: 4,
  IO_FAILURE: 5,
  DECODING_FAILURE: 6,
  INVALID_NETWORK_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
  PLUGIN_NOT_AVAILABLE: 50,
  LIMITED_CONNECTIVITY: 51,
  IPAM_FAILURE: 101,
  CONFIG_INTERFACE_FAILURE: 102,
  CHECK_INTERFACE_FAILURE: 103,
  UNKNOWN_RPC_ERROR: 201,
  INCOMPATIBLE_API_VERSION: 202,
} as const;
export type ErrorCodeName = keyof typeof ErrorCode;

/** `CniCmdArgs`. */
export interface CniCmdArgs {
  /** 1: CNI_CONTAINERID. */
  readonly containerId: string;
  /** 2: CNI_NETNS. */
  readonly netns: string;
  /** 3: CNI_IFNAME. */
  readonly ifname: string;
  /** 4: CNI_ARGS, raw ("K8S_POD_NAMESPACE=..;K8S_POD_NAME=..;..."). */
  readonly args: string;
  /** 5: CNI_PATH. */
  readonly path: string;
  /** 6: the plugin's stdin: the network configuration JSON (with prevResult for CHECK and DEL). */
  readonly networkConfiguration: Uint8Array;
}

/** `CniCmdRequest`: field 1 is the arguments. */
export interface CniCmdRequest {
  readonly cniArgs: CniCmdArgs;
}

/** `google.protobuf.Any`. */
export interface AnyMessage {
  readonly typeUrl: string;
  readonly value: Uint8Array;
}

/** `Error`. */
export interface CniError {
  readonly code: number;
  readonly message: string;
  readonly details: readonly AnyMessage[];
}

/** `CniCmdResponse`: the CNI result already in the requested cniVersion, or an error. */
export interface CniCmdResponse {
  readonly cniResult: Uint8Array;
  readonly error: CniError | undefined;
}

/** Raised for bytes that are not a valid encoding of the expected message. */
export class ProtoDecodeError extends Error {
  readonly code = 'PROTO_DECODE_FAILED';
  override readonly name = 'ProtoDecodeError';
}

// ---- encoding -------------------------------------------------------------------------------

class Writer {
  private readonly parts: Uint8Array[] = [];

  varint(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`varint out of range: ${n}`);
    const bytes: number[] = [];
    let v = n;
    while (v > 0x7f) {
      bytes.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    bytes.push(v);
    this.parts.push(Uint8Array.from(bytes));
  }

  tag(field: number, wireType: number): void {
    this.varint(field * 8 + wireType);
  }

  /** A length-delimited field, skipped when empty (proto3 default). */
  bytes(field: number, value: Uint8Array, always = false): void {
    if (value.length === 0 && !always) return;
    this.tag(field, 2);
    this.varint(value.length);
    this.parts.push(value);
  }

  string(field: number, value: string): void {
    this.bytes(field, Buffer.from(value, 'utf8'));
  }

  /** A varint field, skipped when 0. */
  uint(field: number, value: number): void {
    if (value === 0) return;
    this.tag(field, 0);
    this.varint(value);
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function encodeArgs(a: CniCmdArgs): Buffer {
  const w = new Writer();
  w.string(1, a.containerId);
  w.string(2, a.netns);
  w.string(3, a.ifname);
  w.string(4, a.args);
  w.string(5, a.path);
  w.bytes(6, a.networkConfiguration);
  return w.finish();
}

export function encodeCniCmdRequest(req: CniCmdRequest): Buffer {
  const w = new Writer();
  // A present sub-message is written even when empty, so the receiver can tell it was set.
  w.bytes(1, encodeArgs(req.cniArgs), true);
  return w.finish();
}

function encodeError(e: CniError): Buffer {
  const w = new Writer();
  w.uint(1, e.code);
  w.string(2, e.message);
  for (const d of e.details) {
    const a = new Writer();
    a.string(1, d.typeUrl);
    a.bytes(2, d.value);
    w.bytes(3, a.finish(), true);
  }
  return w.finish();
}

export function encodeCniCmdResponse(resp: CniCmdResponse): Buffer {
  const w = new Writer();
  w.bytes(1, resp.cniResult);
  if (resp.error !== undefined) w.bytes(2, encodeError(resp.error), true);
  return w.finish();
}

// ---- decoding -------------------------------------------------------------------------------

class Reader {
  private pos = 0;
  private readonly buf: Uint8Array;

  constructor(buf: Uint8Array) {
    this.buf = buf;
  }

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.buf[this.pos++];
      if (b === undefined) throw new ProtoDecodeError('truncated varint');
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) {
        if (!Number.isSafeInteger(result)) throw new ProtoDecodeError('varint too large');
        return result;
      }
      mul *= 0x80;
    }
    throw new ProtoDecodeError('varint longer than 10 bytes');
  }

  bytes(): Uint8Array {
    const len = this.varint();
    if (this.pos + len > this.buf.length) throw new ProtoDecodeError('length-delimited field past the end');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  string(): string {
    return Buffer.from(this.bytes()).toString('utf8');
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.advance(8);
        return;
      case 2:
        this.bytes();
        return;
      case 5:
        this.advance(4);
        return;
      default:
        throw new ProtoDecodeError(`unsupported wire type ${wireType}`);
    }
  }

  private advance(n: number): void {
    if (this.pos + n > this.buf.length) throw new ProtoDecodeError('fixed-width field past the end');
    this.pos += n;
  }

  /** Calls `fn(field, wireType)` for each field; `fn` returns false to have the field skipped. */
  fields(fn: (field: number, wireType: number) => boolean): void {
    while (!this.done) {
      const key = this.varint();
      const field = Math.floor(key / 8);
      const wireType = key % 8;
      if (field === 0) throw new ProtoDecodeError('field number 0');
      if (!fn(field, wireType)) this.skip(wireType);
    }
  }
}

function expectWire(got: number, want: number, what: string): void {
  if (got !== want) throw new ProtoDecodeError(`${what}: wire type ${got}, expected ${want}`);
}

function decodeArgs(buf: Uint8Array): CniCmdArgs {
  const out: { -readonly [K in keyof CniCmdArgs]: CniCmdArgs[K] } = {
    containerId: '',
    netns: '',
    ifname: '',
    args: '',
    path: '',
    networkConfiguration: new Uint8Array(),
  };
  const r = new Reader(buf);
  const names = ['', 'containerId', 'netns', 'ifname', 'args', 'path'] as const;
  r.fields((field, wt) => {
    if (field >= 1 && field <= 5) {
      expectWire(wt, 2, `CniCmdArgs.${names[field]}`);
      out[names[field] as Exclude<(typeof names)[number], ''>] = r.string();
      return true;
    }
    if (field === 6) {
      expectWire(wt, 2, 'CniCmdArgs.network_configuration');
      out.networkConfiguration = r.bytes();
      return true;
    }
    return false;
  });
  return out;
}

/** Decodes a request; a request without cni_args decodes with empty arguments. */
export function decodeCniCmdRequest(buf: Uint8Array): CniCmdRequest {
  let cniArgs: CniCmdArgs | undefined;
  const r = new Reader(buf);
  r.fields((field, wt) => {
    if (field !== 1) return false;
    expectWire(wt, 2, 'CniCmdRequest.cni_args');
    cniArgs = decodeArgs(r.bytes());
    return true;
  });
  return { cniArgs: cniArgs ?? decodeArgs(new Uint8Array()) };
}

function decodeAny(buf: Uint8Array): AnyMessage {
  let typeUrl = '';
  let value: Uint8Array = new Uint8Array();
  const r = new Reader(buf);
  r.fields((field, wt) => {
    if (field === 1) {
      expectWire(wt, 2, 'Any.type_url');
      typeUrl = r.string();
      return true;
    }
    if (field === 2) {
      expectWire(wt, 2, 'Any.value');
      value = r.bytes();
      return true;
    }
    return false;
  });
  return { typeUrl, value };
}

function decodeError(buf: Uint8Array): CniError {
  let code = 0;
  let message = '';
  const details: AnyMessage[] = [];
  const r = new Reader(buf);
  r.fields((field, wt) => {
    if (field === 1) {
      expectWire(wt, 0, 'Error.code');
      code = r.varint();
      return true;
    }
    if (field === 2) {
      expectWire(wt, 2, 'Error.message');
      message = r.string();
      return true;
    }
    if (field === 3) {
      expectWire(wt, 2, 'Error.details');
      details.push(decodeAny(r.bytes()));
      return true;
    }
    return false;
  });
  return { code, message, details };
}

export function decodeCniCmdResponse(buf: Uint8Array): CniCmdResponse {
  let cniResult: Uint8Array = new Uint8Array();
  let error: CniError | undefined;
  const r = new Reader(buf);
  r.fields((field, wt) => {
    if (field === 1) {
      expectWire(wt, 2, 'CniCmdResponse.cni_result');
      cniResult = r.bytes();
      return true;
    }
    if (field === 2) {
      expectWire(wt, 2, 'CniCmdResponse.error');
      error = decodeError(r.bytes());
      return true;
    }
    return false;
  });
  return { cniResult, error };
}
