/**
 * The plugin's I/O when it runs as the standalone executable (built by install-cni with Bun's
 * compiler from src/cmd/antrea-cni-standalone.ts): Bun's own socket, stdin and stdout calls.
 *
 * Why not the Node modules, which Bun also offers: in a Bun executable, loading its `node:net` costs
 * ~14 ms and touching `process.stdout` ~10 ms, more than the whole plugin run otherwise (~5 ms).
 * This module imports nothing and reads the `Bun` global, typed here with the few members it uses.
 */
import type { ByteStream, StreamConnector, StreamEvents } from './grpc-client.ts';
import type { PluginOutput, PluginProcessIo } from './plugin.ts';

/** Bun's TCP/unix socket, as far as it is used here. */
interface BunSocket {
  /** Returns how many bytes were taken (fewer when the kernel buffer is full; the rest waits for drain). */
  write(data: Uint8Array): number;
  terminate(): void;
}

interface BunSocketHandlers {
  open(s: BunSocket): void;
  data(s: BunSocket, chunk: Uint8Array): void;
  drain(s: BunSocket): void;
  close(s: BunSocket): void;
  error(s: BunSocket, err: Error): void;
  connectError(s: BunSocket, err: Error): void;
}

interface BunApi {
  connect(o: { unix: string; socket: BunSocketHandlers }): Promise<BunSocket>;
  readonly stdin: { bytes(): Promise<Uint8Array> };
  readonly stdout: object;
  readonly stderr: object;
  write(destination: object, data: string): Promise<number>;
}

/** Bun's API; a TypeError when this code runs anywhere else. */
function bun(): BunApi {
  const api = (globalThis as { Bun?: BunApi }).Bun;
  if (api === undefined) throw new TypeError('the standalone plugin runs only as the Bun-built executable');
  return api;
}

/** Bun says only "Failed to connect"; the error names the cause as Node's does (`connect ENOENT /path`). */
function connectFailure(endpoint: string, err: unknown): Error {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return new Error(`connect ${code} ${endpoint}`, { cause: err });
  return err instanceof Error ? err : new Error(`connect ${endpoint}: ${String(err)}`);
}

/**
 * A unix socket through `Bun.connect`. Bun's `write` may take only part of the bytes; the rest is
 * kept, in order, and written on `drain`, as are the bytes written before the socket opened.
 * Bun may report a failed connect while `Bun.connect` is still running: events are held until this
 * connector has returned, as StreamConnector promises. A failure is reported once.
 */
export const connectBunStream: StreamConnector = (endpoint: string, events: StreamEvents): ByteStream => {
  let sock: BunSocket | undefined;
  let closed = false;
  let failed = false;
  let queue: Uint8Array[] = [];
  let held: (() => void)[] | undefined = [];
  const deliver = (event: () => void): void => {
    if (held !== undefined) held.push(event);
    else event();
  };
  const flush = (): void => {
    while (sock !== undefined && queue.length > 0) {
      const head = queue[0] as Uint8Array;
      const n = sock.write(head);
      if (n < 0) return; // closed: close and error events follow
      if (n < head.length) {
        queue[0] = head.subarray(n);
        return;
      }
      queue.shift();
    }
  };
  const fail = (err: Error): void =>
    deliver(() => {
      if (closed || failed) return;
      failed = true;
      events.failed(err);
    });
  bun()
    .connect({
      unix: endpoint,
      socket: {
        open(s) {
          if (closed) {
            s.terminate();
            return;
          }
          sock = s;
          deliver(() => {
            if (closed) return;
            events.connected();
            flush();
          });
        },
        // Copied: the receiver keeps what it is given.
        data: (_s, chunk) => {
          const copy = Buffer.from(chunk);
          deliver(() => {
            if (!closed) events.data(copy);
          });
        },
        drain: () => flush(),
        close: () =>
          deliver(() => {
            if (!closed) events.closed();
          }),
        error: (_s, err) => fail(err),
        connectError: (_s, err) => fail(connectFailure(endpoint, err)),
      },
    })
    .catch((err: unknown) => fail(connectFailure(endpoint, err)));
  queueMicrotask(() => {
    const early = held ?? [];
    held = undefined;
    for (const event of early) event();
  });
  return {
    write(bytes) {
      if (closed) return;
      queue.push(bytes);
      if (queue.length === 1) flush();
    },
    close() {
      closed = true;
      queue = [];
      sock?.terminate();
    },
  };
};

/** Reads stdin, connects with Bun's sockets, prints with `Bun.write`, exits with `process.exit`. */
export function standaloneIo(): PluginProcessIo {
  const api = bun();
  return {
    env: process.env,
    readStdin: () => api.stdin.bytes(),
    connect: connectBunStream,
    exit(out: PluginOutput) {
      const done = (): never => process.exit(out.exitCode);
      const stderr = out.stderr === '' ? Promise.resolve(0) : api.write(api.stderr, out.stderr);
      const stdout = out.stdout === '' ? Promise.resolve(0) : api.write(api.stdout, out.stdout);
      Promise.all([stderr, stdout]).then(done, done);
    },
  };
}
