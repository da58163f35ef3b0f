/**
 * antrea-cni: the CNI plugin executable a container runtime runs for every Pod network operation.
 * It forwards the request to the agent's CNI socket and prints the answer (src/common/cni/plugin.ts).
 * This entry runs it on Node; antrea-cni-standalone.ts is the same plugin built into one executable.
 *
 * The agent's endpoint: $ANTREA_CNI_SOCKET (set by the launcher the install step writes), else
 * Antrea's default (/var/run/antrea/cni.sock on Linux, \\.\pipe\cnisock on Windows).
 *
 * Start-up time counts towards every Pod's start, so this file and what it imports stay small: no
 * logger, no gRPC library, only node: built-ins; the install step bundles them into one script
 * (src/common/cni/compile.ts).
 */
import { readFileSync } from 'node:fs';
import { connectNodeStream } from '../common/cni/node-stream.ts';
import { type PluginOutput, runPluginProcess } from '../common/cni/plugin.ts';

export const DEFAULT_CNI_SOCKET = process.platform === 'win32' ? '\\\\.\\pipe\\cnisock' : '/var/run/antrea/cni.sock';

function readStdin(): Promise<Uint8Array> {
  try {
    return Promise.resolve(readFileSync(0));
  } catch (err) {
    // EAGAIN on a non-blocking terminal, EOF on a closed stdin: treat as empty input.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EAGAIN' || code === 'EOF') return Promise.resolve(new Uint8Array());
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

/**
 * Prints the output and ends the process once it is out. The plugin's work is done by then:
 * exiting at once spares every Pod's ADD and DEL the heap teardown of a normal exit.
 */
function exit(out: PluginOutput): void {
  process.exitCode = out.exitCode;
  if (out.stderr !== '') process.stderr.write(out.stderr);
  if (out.stdout !== '') process.stdout.write(out.stdout);
  let pending = 2;
  const flushed = (): void => {
    if (--pending === 0) process.exit(out.exitCode);
  };
  process.stdout.write('', flushed);
  process.stderr.write('', flushed);
}

if (import.meta.main) {
  void runPluginProcess({ env: process.env, readStdin, connect: connectNodeStream, exit }, DEFAULT_CNI_SOCKET);
}
