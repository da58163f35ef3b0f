/**
 * antrea-cni as one executable, without Node on the host: install-cni builds this entry with Bun's
 * compiler (`bun build --compile`) into the `antrea` plugin in the CNI bin directory. It is the
 * same plugin as antrea-cni.ts (src/common/cni/plugin.ts) over Bun's own I/O
 * (src/common/cni/standalone-io.ts), and starts in ~5 ms where Node alone takes ~30 ms here
 * (docs/design/cni-performance.md).
 *
 * The agent's endpoint: $ANTREA_CNI_SOCKET, else the socket baked in by the build
 * (`--define BUILT_IN_CNI_SOCKET=...`), else Antrea's default.
 *
 * Linux only: on Windows the plugin is antrea.exe, the native launcher running antrea-cni.ts on Node.
 */
import { runPluginProcess } from '../common/cni/plugin.ts';
import { standaloneIo } from '../common/cni/standalone-io.ts';

/** Replaced by the build with the agent's socket (a string literal); undefined otherwise. */
declare const BUILT_IN_CNI_SOCKET: string | undefined;

/** Antrea's CNI socket on Linux. */
export const DEFAULT_CNI_SOCKET = '/var/run/antrea/cni.sock';

if (import.meta.main) {
  const socket = typeof BUILT_IN_CNI_SOCKET === 'string' ? BUILT_IN_CNI_SOCKET : DEFAULT_CNI_SOCKET;
  void runPluginProcess(standaloneIo(), socket);
}
