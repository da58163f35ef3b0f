/**
 * The install step (Antrea's install_cni): writes the `antrea` plugin executable into the CNI bin
 * directory and `10-antrea.conflist` into the CNI configuration directory, optionally copying
 * companion plugins (loopback, portmap, bandwidth, host-local) next to it.
 *
 * The plugin executable is a small launcher that runs src/cmd/antrea-cni.ts on the project's pinned
 * Node with a compile cache (type stripping on every call would cost ~60 ms; with the cache the
 * plugin starts within a few ms of bare Node), and points it at the agent's CNI socket. The install
 * runs the plugin once (VERSION) to warm that cache. Files are written to a temporary name and
 * renamed, so a runtime never executes a half-written plugin.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ValidationError } from '../util/errors.ts';
import type { CommandRunner } from '../util/exec.ts';

export const PLUGIN_NAME = 'antrea';
export const CONFLIST_NAME = '10-antrea.conflist';

export interface InstallCniOptions {
  readonly binDir: string;
  readonly confDir: string;
  /** The Node executable to run the plugin with (the pinned one). */
  readonly nodePath: string;
  /** Absolute path of src/cmd/antrea-cni.ts. */
  readonly pluginEntry: string;
  /** The agent's CNI socket baked into the launcher ($ANTREA_CNI_SOCKET still overrides it). */
  readonly cniSocket: string;
  /** Where Node keeps the plugin's compile cache. */
  readonly compileCacheDir: string;
  /** The conflist's cniVersion (default 1.0.0) and network name (default antrea). */
  readonly cniVersion?: string;
  readonly networkName?: string;
  /** Chain portmap and bandwidth after antrea, as Antrea's conflist can. */
  readonly chainPortmap?: boolean;
  readonly chainBandwidth?: boolean;
  /** Declare the `dns` capability on the antrea plugin (Antrea's Windows conflist does). */
  readonly dnsCapability?: boolean;
  /** Copy these plugins from `copyFrom` into binDir (e.g. loopback, host-local, portmap). */
  readonly copyPlugins?: readonly string[];
  readonly copyFrom?: string;
  /** Runs the plugin once to fill the compile cache (skipped when absent). */
  readonly runner?: CommandRunner;
}

export interface InstallResult {
  readonly pluginPath: string;
  readonly conflistPath: string;
  readonly copied: readonly string[];
}

/** Single-quotes a string for a POSIX shell. */
function shQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The launcher script. */
export function pluginLauncher(
  o: Pick<InstallCniOptions, 'nodePath' | 'pluginEntry' | 'cniSocket' | 'compileCacheDir'>,
): string {
  return [
    '#!/bin/sh',
    '# antrea CNI plugin launcher, written by antrea-ts install-cni: runs the plugin on the pinned Node.',
    `: "\${ANTREA_CNI_SOCKET:=${o.cniSocket.replaceAll('"', '\\"')}}"`,
    `: "\${NODE_COMPILE_CACHE:=${o.compileCacheDir.replaceAll('"', '\\"')}}"`,
    'export ANTREA_CNI_SOCKET NODE_COMPILE_CACHE',
    `exec ${shQuote(o.nodePath)} ${shQuote(o.pluginEntry)} "$@"`,
    '',
  ].join('\n');
}

/** The conflist (cniVersion 1.0.0 by default, also offering 1.1.0 to runtimes that know it). */
export function antreaConflist(
  o: Pick<InstallCniOptions, 'cniVersion' | 'networkName' | 'chainPortmap' | 'chainBandwidth' | 'dnsCapability'>,
): string {
  const version = o.cniVersion ?? '1.0.0';
  const antrea: Record<string, unknown> = { type: PLUGIN_NAME, ipam: { type: 'host-local' } };
  if (o.dnsCapability === true) antrea['capabilities'] = { dns: true };
  const plugins: Record<string, unknown>[] = [antrea];
  if (o.chainPortmap === true) plugins.push({ type: 'portmap', capabilities: { portMappings: true } });
  if (o.chainBandwidth === true) plugins.push({ type: 'bandwidth', capabilities: { bandwidth: true } });
  const conf: Record<string, unknown> = { cniVersion: version, name: o.networkName ?? 'antrea' };
  if (version === '1.0.0') conf['cniVersions'] = ['1.0.0', '1.1.0'];
  conf['plugins'] = plugins;
  return JSON.stringify(conf, null, 2) + '\n';
}

function writeAtomically(path: string, content: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, content, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

export async function installCni(o: InstallCniOptions): Promise<InstallResult> {
  if (!existsSync(o.nodePath)) throw new ValidationError('nodePath', `${o.nodePath} does not exist`);
  if (!existsSync(o.pluginEntry)) throw new ValidationError('pluginEntry', `${o.pluginEntry} does not exist`);
  mkdirSync(o.binDir, { recursive: true });
  mkdirSync(o.confDir, { recursive: true });
  mkdirSync(o.compileCacheDir, { recursive: true });
  const copied: string[] = [];
  for (const name of o.copyPlugins ?? []) {
    if (o.copyFrom === undefined) throw new ValidationError('copyFrom', 'is required to copy plugins');
    const src = join(o.copyFrom, name);
    if (!existsSync(src)) throw new ValidationError('copyPlugins', `${src} does not exist`);
    const dst = join(o.binDir, name);
    copyFileSync(src, `${dst}.tmp-${process.pid}`);
    chmodSync(`${dst}.tmp-${process.pid}`, 0o755);
    renameSync(`${dst}.tmp-${process.pid}`, dst);
    copied.push(name);
  }
  const pluginPath = join(o.binDir, PLUGIN_NAME);
  writeAtomically(pluginPath, pluginLauncher(o), 0o755);
  const conflistPath = join(o.confDir, CONFLIST_NAME);
  writeAtomically(conflistPath, antreaConflist(o), 0o644);
  if (o.runner !== undefined) {
    await o.runner.run(pluginPath, [], { env: { CNI_COMMAND: 'VERSION' }, replaceEnv: true, timeoutMs: 30_000 });
  }
  return { pluginPath, conflistPath, copied };
}
