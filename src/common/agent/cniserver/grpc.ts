/**
 * Serves the CNI server over gRPC (@grpc/grpc-js) with Antrea's service and method names and the
 * hand-written cni.proto codec. Insecure, as Antrea's: access is guarded by the endpoint itself
 * (a unix socket with mode 0600 on Linux; a named pipe, `\\.\pipe\cnisock`, on Windows, whose
 * default ACL admits only SYSTEM, administrators and the creator).
 *
 * Transport: grpc-js binds only TCP and unix sockets through its own resolver, and cannot listen
 * on a Windows named pipe. So the listener is ours: a `node:net` server on the endpoint path (a
 * named pipe on Windows, a unix socket elsewhere, both through `net.Server.listen(path)`) hands
 * every accepted connection to the grpc-js server through `Server.createConnectionInjector`, which
 * runs the same HTTP/2 + gRPC stack on it. This is the one code path on both OSes, so the Linux
 * tests (real plugin client, real grpc-js client, over a unix socket) exercise exactly what Windows
 * runs over the pipe.
 */
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { dirname } from 'node:path';
import {
  type handleUnaryCall,
  Server,
  ServerCredentials,
  status,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import {
  CNI_METHODS,
  type CniCmdRequest,
  type CniCmdResponse,
  type CniMethod,
  cniMethodPath,
  decodeCniCmdRequest,
  decodeCniCmdResponse,
  encodeCniCmdRequest,
  encodeCniCmdResponse,
} from '../../apis/cni/proto.ts';
import { AntreaError, errorMessage } from '../../util/errors.ts';
import { type Logger, nullLogger } from '../../util/log.ts';
import { aborted, type Runnable } from '../../util/runnable.ts';

/** What the transport serves: CniServer implements it. */
export interface CniHandler {
  handle(method: CniMethod, req: CniCmdRequest): Promise<CniCmdResponse>;
}

/** The service definition of cni.proto's `Cni` service (plus CmdGC and CmdStatus). */
export function cniServiceDefinition(): ServiceDefinition {
  const def: Record<string, ServiceDefinition[string]> = {};
  for (const m of CNI_METHODS) {
    def[m] = {
      path: cniMethodPath(m),
      requestStream: false,
      responseStream: false,
      requestSerialize: (r: CniCmdRequest) => encodeCniCmdRequest(r),
      requestDeserialize: (b: Buffer) => decodeCniCmdRequest(b),
      responseSerialize: (r: CniCmdResponse) => encodeCniCmdResponse(r),
      responseDeserialize: (b: Buffer) => decodeCniCmdResponse(b),
      originalName: m.charAt(0).toLowerCase() + m.slice(1),
    };
  }
  return def;
}

/** Whether `path` names a Windows named pipe (\\.\pipe\NAME or \\?\pipe\NAME). */
export function isNamedPipePath(path: string): boolean {
  return /^[\\/]{2}[.?][\\/]pipe[\\/]./i.test(path);
}

/** Listens on `path` (unix socket or named pipe); rejects with the listen error. */
export function listenPath(server: NetServer, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(path, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

export interface CniGrpcServiceOptions {
  /** The unix socket path, or the named pipe path on Windows. */
  readonly socketPath: string;
  readonly handler: CniHandler;
  readonly logger?: Logger;
}

/** The gRPC endpoint of the CNI server; `run` serves until the signal aborts, then stops cleanly. */
export class CniGrpcService implements Runnable {
  private readonly o: CniGrpcServiceOptions;
  private readonly logger: Logger;
  private listening: (() => void) | undefined;
  readonly ready: Promise<void>;

  constructor(opts: CniGrpcServiceOptions) {
    this.o = opts;
    this.logger = (opts.logger ?? nullLogger).child({ component: 'cni-grpc', socket: opts.socketPath });
    this.ready = new Promise((resolve) => {
      this.listening = resolve;
    });
  }

  async run(signal: AbortSignal): Promise<void> {
    const server = new Server();
    const impl: UntypedServiceImplementation = {};
    for (const m of CNI_METHODS) {
      const h: handleUnaryCall<CniCmdRequest, CniCmdResponse> = (call, callback) => {
        this.o.handler.handle(m, call.request).then(
          (resp) => callback(null, resp),
          (err: unknown) => callback({ code: status.INTERNAL, details: errorMessage(err) }),
        );
      };
      impl[m] = h;
    }
    server.addService(cniServiceDefinition(), impl);
    const path = this.o.socketPath;
    const pipe = isNamedPipePath(path);
    const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
    const sockets = new Set<Socket>();
    const listener = createServer((socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      injector.injectConnection(socket);
    });
    try {
      if (!pipe) {
        mkdirSync(dirname(path), { recursive: true });
        rmSync(path, { force: true }); // a stale socket from a previous run
      }
      await listenPath(listener, path);
    } catch (err) {
      injector.destroy();
      throw new AntreaError('CNI_SOCKET_FAILED', `cannot listen on ${path}: ${errorMessage(err)}`, { cause: err });
    }
    if (!pipe) chmodSync(path, 0o600);
    this.logger.info('CNI server listening');
    this.listening?.();
    await aborted(signal);
    // No new connections; in-flight calls get a short grace period, then everything is closed.
    const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
    injector.drain(2000);
    await new Promise<void>((resolve) => {
      server.tryShutdown(() => resolve());
      setTimeout(() => {
        server.forceShutdown();
        for (const s of sockets) s.destroy();
        resolve();
      }, 2000).unref();
    });
    injector.destroy();
    for (const s of sockets) s.destroy();
    await closed;
    if (!pipe) rmSync(path, { force: true });
    this.logger.info('CNI server stopped');
  }
}
