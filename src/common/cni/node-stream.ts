/**
 * The plugin's byte stream on Node: a `node:net` connection to a unix socket or a named pipe.
 */
import { connect } from 'node:net';
import type { ByteStream, StreamConnector, StreamEvents } from './grpc-client.ts';

/** Connects with `net.connect`; writes before the connection is up are buffered by the socket. */
export const connectNodeStream: StreamConnector = (endpoint: string, events: StreamEvents): ByteStream => {
  const sock = connect(endpoint);
  let closed = false;
  sock.on('connect', () => events.connected());
  sock.on('data', (chunk: Buffer) => events.data(chunk));
  sock.on('error', (err: Error) => events.failed(err));
  sock.on('close', () => {
    if (!closed) events.closed();
  });
  return {
    write(bytes) {
      if (!closed) sock.write(bytes);
    },
    close() {
      closed = true;
      sock.destroy();
    },
  };
};
