/**
 * Serves the CNI server over gRPC (@grpc/grpc-js) on a unix socket, with Antrea's service and
 * method names and the hand-written cni.proto codec. Insecure, as Antrea's: access is guarded by
 * the socket's file permissions (0600, owner only).
 *
 * Windows named pipes: grpc-js listens on TCP and unix sockets only, so the Windows strategy will
 * need its own listener for `\\.\pipe\cnisock`; the codec and CniServer.handle stay the same.
 */
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
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

export interface CniGrpcServiceOptions {
  /** The unix socket path. */
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
    mkdirSync(dirname(this.o.socketPath), { recursive: true });
    rmSync(this.o.socketPath, { force: true }); // a stale socket from a previous run
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(`unix:${this.o.socketPath}`, ServerCredentials.createInsecure(), (err) => {
        if (err !== null) {
          reject(
            new AntreaError('CNI_SOCKET_FAILED', `cannot listen on ${this.o.socketPath}: ${err.message}`, {
              cause: err,
            }),
          );
        } else resolve();
      });
    });
    chmodSync(this.o.socketPath, 0o600);
    this.logger.info('CNI server listening');
    this.listening?.();
    await aborted(signal);
    await new Promise<void>((resolve) => {
      server.tryShutdown(() => resolve());
      // In-flight calls get a short grace period, then the server is forced down.
      setTimeout(() => server.forceShutdown(), 2000).unref();
    });
    rmSync(this.o.socketPath, { force: true });
    this.logger.info('CNI server stopped');
  }
}
