/**
 * Where an OVSDB server is and how to open a byte stream to it. The client only sees a
 * {@link Connector}, so another transport (for example a Windows named pipe, which `net.connect`
 * also opens) is a new connector, not a change to the client. On Windows, `unix:\\.\pipe\NAME`
 * already works through {@link netConnector}: `net.connect({ path })` opens named pipes there.
 */
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { abortReason } from '../../util/clock.ts';
import { ValidationError } from '../../util/errors.ts';
import { OvsdbError } from './errors.ts';

export type OvsdbEndpoint =
  | { readonly kind: 'unix'; readonly path: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

/** Parses `unix:PATH` or `tcp:HOST:PORT` (`tcp:[V6ADDR]:PORT` for IPv6). Throws a ValidationError naming `field`. */
export function parseEndpoint(text: string, field = 'endpoint'): OvsdbEndpoint {
  if (text.startsWith('unix:')) {
    const path = text.slice(5);
    if (path === '') throw new ValidationError(field, `"${text}": unix endpoint needs a socket path`);
    return { kind: 'unix', path };
  }
  if (text.startsWith('tcp:')) {
    const rest = text.slice(4);
    const m = /^\[([^\]]+)\]:(\d+)$/.exec(rest) ?? /^([^:]+):(\d+)$/.exec(rest);
    const port = m === null ? NaN : Number(m[2]);
    if (m === null || !(port >= 1 && port <= 65535)) {
      throw new ValidationError(field, `"${text}": expected tcp:HOST:PORT with a port in 1-65535`);
    }
    return { kind: 'tcp', host: m[1] ?? '', port };
  }
  throw new ValidationError(field, `"${text}": expected unix:PATH or tcp:HOST:PORT`);
}

export function formatEndpoint(e: OvsdbEndpoint): string {
  return e.kind === 'unix' ? `unix:${e.path}` : `tcp:${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port}`;
}

/** Opens a new stream to the server. Rejects with OVSDB_CONNECT_FAILED when it cannot. */
export type Connector = (signal?: AbortSignal) => Promise<Duplex>;

/** A connector for unix sockets and TCP through `node:net`, with a connect timeout. */
export function netConnector(endpoint: OvsdbEndpoint, timeoutMs = 5000): Connector {
  const text = formatEndpoint(endpoint);
  return (signal) =>
    new Promise<Duplex>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(abortReason(signal));
        return;
      }
      const socket =
        endpoint.kind === 'unix'
          ? connect({ path: endpoint.path })
          : connect({ host: endpoint.host, port: endpoint.port });
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        socket.off('error', onError);
        socket.off('connect', onConnect);
      };
      const onError = (err: NodeJS.ErrnoException): void => {
        done();
        socket.destroy();
        const hint =
          err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? ' (is ovsdb-server running at this endpoint?)' : '';
        reject(
          new OvsdbError('OVSDB_CONNECT_FAILED', `cannot connect to ${text}: ${err.code ?? err.message}${hint}`, {
            endpoint: text,
          }),
        );
      };
      const onConnect = (): void => {
        done();
        socket.setNoDelay(true);
        resolve(socket);
      };
      const onAbort = (): void => {
        done();
        socket.destroy();
        reject(abortReason(signal));
      };
      const timer = setTimeout(() => {
        done();
        socket.destroy();
        reject(
          new OvsdbError('OVSDB_CONNECT_FAILED', `cannot connect to ${text}: timed out after ${timeoutMs}ms`, {
            endpoint: text,
          }),
        );
      }, timeoutMs);
      socket.once('error', onError);
      socket.once('connect', onConnect);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
}
