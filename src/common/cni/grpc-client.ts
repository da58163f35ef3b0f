/**
 * A minimal unary gRPC client for the antrea-cni plugin: HTTP/2 (RFC 9113) framing and HPACK
 * written over a plain byte stream. It speaks the same wire protocol as @grpc/grpc-js
 * (`application/grpc`, 5-byte message framing, `grpc-status` trailers) at a fraction of the
 * start-up cost: loading @grpc/grpc-js costs the plugin ~40 ms and even `node:http2` ~10 ms, which
 * every Pod ADD and DEL would pay (see the cni benchmark). One stream on one connection per call,
 * as Antrea's plugin does.
 *
 * Scope: a client with one request stream. It sends its SETTINGS, acknowledges the server's,
 * answers PINGs, honours flow control for the request body, accepts padding, priority and
 * CONTINUATION, and treats RST_STREAM and GOAWAY as failures.
 *
 * The byte stream comes from a `StreamConnector`, so this module imports no runtime module: the
 * plugin on Node connects with `node:net` (node-stream.ts), the standalone plugin with Bun's
 * sockets (standalone-io.ts). The endpoint is a unix socket path on Linux, a named pipe
 * (`\\.\pipe\cnisock`) on Windows.
 */
import { encodeHeaders, HpackDecoder } from './hpack.ts';

/** gRPC status codes the plugin distinguishes (grpc/doc/statuscodes.md). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

/** A call that ended with a non-OK gRPC status (connection failures are UNAVAILABLE). */
export class GrpcCallError extends Error {
  readonly code = 'GRPC_CALL_FAILED';
  readonly status: number;

  constructor(status: number, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.status = status;
  }
}

/** What a byte stream reports to its user. Each is called at most once, except `data`. */
export interface StreamEvents {
  /** The connection is up; writes may start. */
  connected(): void;
  /** Bytes arrived, in order. The chunk is the receiver's to keep. */
  data(chunk: Buffer): void;
  /** The connection could not be made or broke. */
  failed(err: Error): void;
  /** The peer closed the connection (also after `failed`). */
  closed(): void;
}

/** A connected (or connecting) byte stream. */
export interface ByteStream {
  /** Sends bytes in order (those written before `connected` once it is up); after `close`, drops them. */
  write(bytes: Uint8Array): void;
  /** Closes the connection at once; idempotent; no event follows. */
  close(): void;
}

/**
 * Opens a byte stream to `endpoint` (a unix socket path or a named pipe) and reports to `events`,
 * never before it has returned. A failure to connect is reported as `failed`, not thrown.
 */
export type StreamConnector = (endpoint: string, events: StreamEvents) => ByteStream;

export interface UnaryCallOptions {
  /** Fail with DEADLINE_EXCEEDED after this long (default: no deadline, as Antrea's plugin). */
  readonly timeoutMs?: number;
}

/** Frames one message: compressed flag 0, 4-byte big-endian length, bytes. */
export function frameGrpcMessage(message: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** Reads the single message of a unary response body. */
export function unframeGrpcMessage(body: Buffer): Buffer {
  if (body.length < 5) throw new GrpcCallError(GrpcStatus.INTERNAL, 'response has no complete gRPC message');
  if (body[0] !== 0) throw new GrpcCallError(GrpcStatus.INTERNAL, 'compressed gRPC responses are not supported');
  const len = body.readUInt32BE(1);
  if (body.length < 5 + len) throw new GrpcCallError(GrpcStatus.INTERNAL, 'truncated gRPC message');
  return body.subarray(5, 5 + len);
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME = {
  DATA: 0,
  HEADERS: 1,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;
const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;
const SETTINGS_ENABLE_PUSH = 0x2;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const SETTINGS_MAX_FRAME_SIZE = 0x5;
const STREAM = 1;

function frame(type: number, flags: number, stream: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

function decodeGrpcMessage(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Calls `path` (e.g. `/pkg.Service/Method`) with one request message and resolves with the response
 * message bytes. Rejects with GrpcCallError: UNAVAILABLE when the endpoint cannot be reached or the
 * connection ends before the status arrives, the server's status otherwise.
 */
export function grpcUnaryCall(
  connect: StreamConnector,
  endpoint: string,
  path: string,
  request: Uint8Array,
  opts: UnaryCallOptions = {},
): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (err: GrpcCallError | undefined, value?: Buffer): void => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      sock.close();
      if (err !== undefined) reject(err);
      else resolve(value ?? Buffer.alloc(0));
    };
    const unavailable = (why: string, cause?: unknown): void =>
      finish(new GrpcCallError(GrpcStatus.UNAVAILABLE, `cannot reach ${endpoint}: ${why}`, cause));
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(
        () => finish(new GrpcCallError(GrpcStatus.DEADLINE_EXCEEDED, `no answer within ${opts.timeoutMs}ms`)),
        opts.timeoutMs,
      );
    }

    // The request: headers, then the body sent as flow control allows.
    let body = frameGrpcMessage(request);
    let sendWindow = 65535; // the stream's and the connection's, until the server says otherwise
    let connWindow = 65535;
    let maxFrame = 16384;
    let bodyDone = false;
    /** Sends `before` and as much of the body as flow control allows, in one write. */
    const pump = (before: readonly Buffer[] = []): void => {
      const out = [...before];
      while (!bodyDone) {
        const n = Math.min(body.length, maxFrame, sendWindow, connWindow);
        if (n <= 0 && body.length > 0) break; // wait for WINDOW_UPDATE
        const last = n === body.length;
        out.push(frame(FRAME.DATA, last ? FLAG.END_STREAM : 0, STREAM, body.subarray(0, n)));
        body = body.subarray(n);
        sendWindow -= n;
        connWindow -= n;
        bodyDone = last;
      }
      if (out.length > 0) sock.write(out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out));
    };
    // Received bytes not yet given back with WINDOW_UPDATE: given back once they reach half the
    // default window, so a small answer costs no WINDOW_UPDATE and a large one keeps flowing.
    let unacked = 0;

    const decoder = new HpackDecoder();
    const headers: [string, string][] = [];
    const trailers: [string, string][] = [];
    let sawHeaders = false;
    let headerBlock: Buffer[] | undefined;
    let headerBlockEndsStream = false;
    const data: Buffer[] = [];
    let pending: Buffer = Buffer.alloc(0);

    const endOfStream = (): void => {
      const all = sawHeaders && trailers.length > 0 ? trailers : headers;
      const get = (name: string): string | undefined => all.find(([n]) => n === name)?.[1];
      const httpStatus = headers.find(([n]) => n === ':status')?.[1];
      if (httpStatus !== '200') {
        finish(
          new GrpcCallError(GrpcStatus.UNKNOWN, `unexpected HTTP status ${httpStatus ?? '(none)'} from ${endpoint}`),
        );
        return;
      }
      const statusText = get('grpc-status');
      if (statusText === undefined) {
        finish(new GrpcCallError(GrpcStatus.UNKNOWN, `no grpc-status from ${endpoint}`));
        return;
      }
      const status = Number(statusText);
      if (status !== GrpcStatus.OK) {
        finish(
          new GrpcCallError(
            Number.isInteger(status) ? status : GrpcStatus.UNKNOWN,
            decodeGrpcMessage(get('grpc-message') ?? ''),
          ),
        );
        return;
      }
      try {
        finish(undefined, unframeGrpcMessage(Buffer.concat(data)));
      } catch (err) {
        finish(err instanceof GrpcCallError ? err : new GrpcCallError(GrpcStatus.INTERNAL, String(err)));
      }
    };

    const headerBlockDone = (): void => {
      const block = Buffer.concat(headerBlock ?? []);
      headerBlock = undefined;
      const decoded = decoder.decode(block);
      if (!sawHeaders) {
        sawHeaders = true;
        headers.push(...decoded);
      } else trailers.push(...decoded);
      if (headerBlockEndsStream) endOfStream();
    };

    const onFrame = (type: number, flags: number, stream: number, payload: Buffer): void => {
      // Strip padding (and the priority fields of HEADERS).
      let p = payload;
      if ((type === FRAME.DATA || type === FRAME.HEADERS) && (flags & FLAG.PADDED) !== 0) {
        const pad = p[0] ?? 0;
        p = p.subarray(1, p.length - pad);
      }
      if (type === FRAME.HEADERS && (flags & FLAG.PRIORITY) !== 0) p = p.subarray(5);
      switch (type) {
        case FRAME.SETTINGS:
          if ((flags & FLAG.ACK) === 0) {
            for (let i = 0; i + 6 <= p.length; i += 6) {
              const id = p.readUInt16BE(i);
              const v = p.readUInt32BE(i + 2);
              if (id === SETTINGS_INITIAL_WINDOW_SIZE) sendWindow += v - 65535;
              if (id === SETTINGS_MAX_FRAME_SIZE) maxFrame = v;
            }
            pump([frame(FRAME.SETTINGS, FLAG.ACK, 0)]);
          }
          return;
        case FRAME.PING:
          if ((flags & FLAG.ACK) === 0) sock.write(frame(FRAME.PING, FLAG.ACK, 0, p));
          return;
        case FRAME.WINDOW_UPDATE: {
          const inc = p.readUInt32BE(0) & 0x7fffffff;
          if (stream === 0) connWindow += inc;
          else if (stream === STREAM) sendWindow += inc;
          pump();
          return;
        }
        case FRAME.GOAWAY:
          if (p.readUInt32BE(0) < STREAM) unavailable('the server closed the connection (GOAWAY)');
          return;
        case FRAME.RST_STREAM:
          if (stream === STREAM) unavailable(`the server reset the stream (error ${p.readUInt32BE(0)})`);
          return;
        case FRAME.HEADERS:
          if (stream !== STREAM) return;
          headerBlock = [p];
          headerBlockEndsStream = (flags & FLAG.END_STREAM) !== 0;
          if ((flags & FLAG.END_HEADERS) !== 0) headerBlockDone();
          return;
        case FRAME.CONTINUATION:
          if (stream !== STREAM || headerBlock === undefined) return;
          headerBlock.push(p);
          if ((flags & FLAG.END_HEADERS) !== 0) headerBlockDone();
          return;
        case FRAME.DATA:
          if (stream !== STREAM) return;
          data.push(p);
          unacked += payload.length;
          if (unacked >= 32768 && (flags & FLAG.END_STREAM) === 0) {
            const inc = Buffer.alloc(4);
            inc.writeUInt32BE(unacked, 0);
            unacked = 0;
            sock.write(
              Buffer.concat([frame(FRAME.WINDOW_UPDATE, 0, 0, inc), frame(FRAME.WINDOW_UPDATE, 0, STREAM, inc)]),
            );
          }
          if ((flags & FLAG.END_STREAM) !== 0) endOfStream();
          return;
        default:
          return; // PRIORITY, PUSH_PROMISE (disabled), unknown types: ignored
      }
    };

    const onConnected = (): void => {
      const settings = Buffer.alloc(6);
      settings.writeUInt16BE(SETTINGS_ENABLE_PUSH, 0);
      settings.writeUInt32BE(0, 2);
      const block = encodeHeaders([
        [':method', 'POST'],
        [':scheme', 'http'],
        [':path', path],
        [':authority', 'localhost'],
        ['content-type', 'application/grpc'],
        ['te', 'trailers'],
      ]);
      // The preface, our SETTINGS, the request's HEADERS and its body (as far as the default
      // windows allow) go out in one write.
      pump([PREFACE, frame(FRAME.SETTINGS, 0, 0, settings), frame(FRAME.HEADERS, FLAG.END_HEADERS, STREAM, block)]);
    };
    const onData = (chunk: Buffer): void => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      try {
        while (pending.length >= 9 && !settled) {
          const len = pending.readUIntBE(0, 3);
          if (pending.length < 9 + len) break;
          const payload = pending.subarray(9, 9 + len);
          onFrame(pending[3] ?? 0, pending[4] ?? 0, pending.readUInt32BE(5) & 0x7fffffff, payload);
          pending = pending.subarray(9 + len);
        }
      } catch (err) {
        finish(new GrpcCallError(GrpcStatus.INTERNAL, `malformed HTTP/2 from ${endpoint}: ${String(err)}`, err));
      }
    };
    const sock = connect(endpoint, {
      connected: onConnected,
      data: onData,
      failed: (err) => unavailable(err.message, err),
      closed: () => unavailable('connection closed before the call completed'),
    });
  });
}
