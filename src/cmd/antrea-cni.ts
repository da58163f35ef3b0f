/**
 * antrea-cni: the CNI plugin executable a container runtime runs for every Pod network operation.
 * It forwards the request to the agent's CNI socket and prints the answer (src/common/cni/plugin.ts).
 *
 * The agent's endpoint: $ANTREA_CNI_SOCKET (set by the launcher the install step writes), else
 * Antrea's default (/var/run/antrea/cni.sock on Linux, \\.\pipe\cnisock on Windows).
 *
 * Start-up time counts towards every Pod's start, so this file and what it imports stay small: no
 * logger, no gRPC library, only node: built-ins; the install step bundles them into one script
 * (src/common/cni/compile.ts).
 */
import { readFileSync } from 'node:fs';
import { cniMethodPath } from '../common/apis/cni/proto.ts';
import { grpcUnaryCall } from '../common/cni/grpc-client.ts';
import { runPlugin } from '../common/cni/plugin.ts';

export const DEFAULT_CNI_SOCKET = process.platform === 'win32' ? '\\\\.\\pipe\\cnisock' : '/var/run/antrea/cni.sock';

function readStdin(command: string | undefined): Buffer {
  if (command === 'VERSION' || command === undefined || command === '') return Buffer.alloc(0);
  try {
    return readFileSync(0);
  } catch (err) {
    // EAGAIN on a non-blocking terminal, EOF on a closed stdin: treat as empty input.
    if ((err as NodeJS.ErrnoException).code === 'EAGAIN' || (err as NodeJS.ErrnoException).code === 'EOF') {
      return Buffer.alloc(0);
    }
    throw err;
  }
}

async function main(): Promise<number> {
  const endpoint = process.env['ANTREA_CNI_SOCKET'] ?? DEFAULT_CNI_SOCKET;
  const out = await runPlugin({ env: process.env, stdin: readStdin(process.env['CNI_COMMAND']) }, (method, request) =>
    grpcUnaryCall(endpoint, cniMethodPath(method), request),
  );
  if (out.stderr !== '') process.stderr.write(out.stderr);
  if (out.stdout !== '') process.stdout.write(out.stdout);
  return out.exitCode;
}

/**
 * Ends the process once what was written is out. The plugin's work is done by then: exiting at once
 * spares every Pod's ADD and DEL the heap teardown of a normal exit.
 */
function exitWhenFlushed(code: number): void {
  process.exitCode = code;
  let pending = 2;
  const flushed = (): void => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', flushed);
  process.stderr.write('', flushed);
}

if (import.meta.main) {
  main().then(exitWhenFlushed, (err: unknown) => {
    // Only an I/O failure reading stdin can get here; the spec's IO_FAILURE is code 5.
    process.stdout.write(JSON.stringify({ cniVersion: '1.1.0', code: 5, msg: `antrea-cni: ${String(err)}` }) + '\n');
    exitWhenFlushed(1);
  });
}
