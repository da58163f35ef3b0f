/**
 * A minimal unary gRPC client over node:http2 for the antrea-cni plugin: the same wire protocol as
 * @grpc/grpc-js (HTTP/2, `application/grpc`, 5-byte message framing, `grpc-status` trailers), at a
 * fraction of the start-up cost (loading @grpc/grpc-js roughly doubles the plugin's start-up time;
 * see the cni benchmark). One connection per call, as Antrea's plugin does.
 *
 * The endpoint is a path for `net.connect`: a unix socket on Linux or a named pipe
 * (`\\.\pipe\cnisock`) on Windows.
 */
import { connect as http2Connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { connect as netConnect } from 'node:net';

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

function decodeGrpcMessage(v: string | string[] | undefined): string {
  const s = Array.isArray(v) ? v.join(',') : (v ?? '');
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function statusOf(h: IncomingHttpHeaders): number | undefined {
  const v = h['grpc-status'];
  if (v === undefined) return undefined;
  const n = Number(Array.isArray(v) ? v[0] : v);
  return Number.isInteger(n) ? n : GrpcStatus.UNKNOWN;
}

/**
 * Calls `path` (e.g. `/pkg.Service/Method`) with one request message and resolves with the response
 * message bytes. Rejects with GrpcCallError: UNAVAILABLE when the endpoint cannot be reached or the
 * connection drops before the status arrives, the server's status otherwise.
 */
export function grpcUnaryCall(
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
      session.destroy();
      if (err !== undefined) reject(err);
      else resolve(value ?? Buffer.alloc(0));
    };
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(
        () => finish(new GrpcCallError(GrpcStatus.DEADLINE_EXCEEDED, `no answer within ${opts.timeoutMs}ms`)),
        opts.timeoutMs,
      );
    }
    const session: ClientHttp2Session = http2Connect('http://localhost', {
      createConnection: () => netConnect(endpoint),
    });
    session.on('error', (err: NodeJS.ErrnoException) =>
      finish(new GrpcCallError(GrpcStatus.UNAVAILABLE, `cannot reach ${endpoint}: ${err.message}`, err)),
    );
    const req = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    const chunks: Buffer[] = [];
    let headersStatus: number | undefined;
    let headersMessage = '';
    let trailerStatus: number | undefined;
    let trailerMessage = '';
    req.on('response', (h) => {
      const httpStatus = h[':status'];
      if (httpStatus !== 200) {
        finish(new GrpcCallError(GrpcStatus.UNKNOWN, `unexpected HTTP status ${String(httpStatus)} from ${endpoint}`));
        return;
      }
      // A "trailers-only" response carries the status in the headers.
      headersStatus = statusOf(h);
      headersMessage = decodeGrpcMessage(h['grpc-message']);
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('trailers', (t: IncomingHttpHeaders) => {
      trailerStatus = statusOf(t);
      trailerMessage = decodeGrpcMessage(t['grpc-message']);
    });
    req.on('error', (err: Error) => {
      // A failed connect surfaces as a canceled stream whose cause is the socket error.
      const cause = err.cause instanceof Error ? err.cause : err;
      finish(new GrpcCallError(GrpcStatus.UNAVAILABLE, `cannot reach ${endpoint}: ${cause.message}`, err));
    });
    req.on('close', () => {
      const status = trailerStatus ?? headersStatus;
      if (status === undefined) {
        finish(new GrpcCallError(GrpcStatus.UNAVAILABLE, `connection to ${endpoint} closed before the call completed`));
      } else if (status !== GrpcStatus.OK) {
        finish(new GrpcCallError(status, trailerStatus === undefined ? headersMessage : trailerMessage));
      } else {
        try {
          finish(undefined, unframeGrpcMessage(Buffer.concat(chunks)));
        } catch (err) {
          finish(err instanceof GrpcCallError ? err : new GrpcCallError(GrpcStatus.INTERNAL, String(err)));
        }
      }
    });
    req.end(frameGrpcMessage(request));
  });
}
