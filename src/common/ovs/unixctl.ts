/**
 * The OVS daemons' control channel (what `ovs-appctl` speaks): JSON-RPC 1.0 over the daemon's
 * unixctl socket, one request per command, its params an array of strings, its result the
 * command's text output. The framing is OVSDB's (see ./ovsdb/jsonrpc.ts), so errors are OvsdbErrors:
 * OVSDB_CONNECT_FAILED (no socket / daemon not running), OVSDB_RPC_ERROR (the command failed; the
 * daemon's message is the error's), OVSDB_TIMEOUT, OVSDB_DISCONNECTED.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OvsdbError } from './ovsdb/errors.ts';
import { JsonRpcConnection } from './ovsdb/jsonrpc.ts';
import { netConnector } from './ovsdb/transport.ts';

export interface UnixctlOptions {
  /** Per-command timeout (default 5 s). */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/**
 * Runs one command (e.g. `dpctl/ct-disable-tcp-seq-chk`) on the daemon listening on `socketPath`
 * and returns its text output. Opens and closes its own connection; not idempotent by itself (that
 * depends on the command).
 */
export async function unixctl(
  socketPath: string,
  command: string,
  args: readonly string[] = [],
  opts: UnixctlOptions = {},
): Promise<string> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const stream = await netConnector({ kind: 'unix', path: socketPath }, timeoutMs)(opts.signal);
  const conn = new JsonRpcConnection(stream, {}, { requestTimeoutMs: timeoutMs, endpoint: `unix:${socketPath}` });
  try {
    const result = await conn.request(command, [...args], opts.signal === undefined ? {} : { signal: opts.signal });
    return typeof result === 'string' ? result : JSON.stringify(result);
  } finally {
    conn.close();
    stream.destroy();
  }
}

/**
 * The unixctl socket of the ovs-vswitchd whose run directory is `runDir`: `ovs-vswitchd.ctl` when
 * the daemon was started with that name (`--unixctl`), else `ovs-vswitchd.<pid>.ctl` named by its
 * pidfile (the default of ovs-ctl and the distribution packages). Throws OVSDB_CONNECT_FAILED when
 * neither exists (the daemon is not running there).
 */
export function vswitchdControlSocket(runDir: string): string {
  const fixed = join(runDir, 'ovs-vswitchd.ctl');
  if (existsSync(fixed)) return fixed;
  const pidFile = join(runDir, 'ovs-vswitchd.pid');
  let pid = '';
  try {
    pid = readFileSync(pidFile, 'utf8').trim();
  } catch {
    // handled below
  }
  const byPid = join(runDir, `ovs-vswitchd.${pid}.ctl`);
  if (/^\d+$/.test(pid) && existsSync(byPid)) return byPid;
  throw new OvsdbError(
    'OVSDB_CONNECT_FAILED',
    `no ovs-vswitchd control socket in ${runDir} (neither ovs-vswitchd.ctl nor one named by ovs-vswitchd.pid)`,
    { endpoint: `unix:${fixed}` },
  );
}
