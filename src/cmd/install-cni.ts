/**
 * install-cni: writes the antrea CNI plugin and 10-antrea.conflist (as Antrea's install_cni init
 * container does).
 *
 *   install-cni --bin-dir DIR --conf-dir DIR [--cni-socket PATH] [--compile-cache DIR]
 *               [--copy-plugins NAME,NAME --copy-from DIR] [--portmap] [--bandwidth]
 *               [--os linux|windows] [--launcher antrea-cni-launcher.exe] [--primary-plugin JSON]
 *               [--bun PATH | --node-plugin]
 *
 * On Linux the plugin is built into one standalone executable with Bun's compiler, found in the
 * project's node_modules (the optional `bun` package) or given with --bun; --node-plugin runs it on
 * Node instead. Without Bun, or if the build fails, it runs on Node and the output says why.
 * --primary-plugin writes a chained conflist for trafficEncapMode networkPolicyOnly: the given
 * primary plugin (e.g. '{"type":"ptp","ipam":{"type":"host-local","ranges":[[{"subnet":"10.1.0.0/24"}]]}}')
 * first, antrea after it.
 * The plugin runs on this Node and this source tree: on Windows run install-cni from the host copy
 * (a HostProcess container's files vanish when it ends), with --launcher pointing at the compiled
 * build/images/windows/antrea-cni-launcher.c.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { findBun, type InstallTargetOs, installCni } from '../common/cni/install.ts';
import { createCommandRunner } from '../common/util/exec.ts';

/** Antrea's CNI endpoints per OS. */
const DEFAULT_SOCKETS = { linux: '/var/run/antrea/cni.sock', windows: '\\\\.\\pipe\\cnisock' } as const;

export const USAGE = `usage: install-cni --bin-dir DIR --conf-dir DIR [--cni-socket PATH] [--compile-cache DIR]
                   [--copy-plugins NAME,NAME --copy-from DIR] [--portmap] [--bandwidth]
                   [--os linux|windows] [--launcher antrea-cni-launcher.exe] [--primary-plugin JSON]
                   [--bun PATH | --node-plugin]`;

export async function main(argv: readonly string[]): Promise<string> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      'bin-dir': { type: 'string' },
      'conf-dir': { type: 'string' },
      'cni-socket': { type: 'string' },
      'compile-cache': { type: 'string' },
      'copy-plugins': { type: 'string' },
      'copy-from': { type: 'string' },
      portmap: { type: 'boolean' },
      bandwidth: { type: 'boolean' },
      os: { type: 'string' },
      launcher: { type: 'string' },
      'primary-plugin': { type: 'string' },
      bun: { type: 'string' },
      'node-plugin': { type: 'boolean' },
    },
    strict: true,
  });
  const binDir = values['bin-dir'];
  const confDir = values['conf-dir'];
  if (binDir === undefined || confDir === undefined) throw new Error(`--bin-dir and --conf-dir are required\n${USAGE}`);
  const osArg = values.os ?? (process.platform === 'win32' ? 'windows' : 'linux');
  if (osArg !== 'linux' && osArg !== 'windows') throw new Error(`--os must be linux or windows, got ${osArg}`);
  const os: InstallTargetOs = osArg;
  if (os === 'windows' && values.launcher === undefined)
    throw new Error(`--launcher is required for --os windows\n${USAGE}`);
  let primaryPlugin: Record<string, unknown> | undefined;
  if (values['primary-plugin'] !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(values['primary-plugin']);
    } catch (err) {
      throw new Error(`--primary-plugin: not JSON: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new Error("--primary-plugin: must be a JSON object (the primary plugin's configuration)");
    }
    primaryPlugin = parsed as Record<string, unknown>;
  }
  if (values.bun !== undefined && values['node-plugin'] === true) {
    throw new Error(`--bun and --node-plugin exclude each other\n${USAGE}`);
  }
  if (values.bun !== undefined && os !== 'linux') throw new Error(`--bun: the standalone plugin is built for Linux`);
  if (values.bun !== undefined && !existsSync(values.bun)) throw new Error(`--bun: ${values.bun} does not exist`);
  const native = os === (process.platform === 'win32' ? 'windows' : 'linux');
  const bunPath =
    values['node-plugin'] === true || os !== 'linux' || !native
      ? undefined
      : (values.bun ?? findBun(join(import.meta.dirname, '..', '..'), process.platform, process.arch));
  const copy = (values['copy-plugins'] ?? '').split(',').filter((s) => s !== '');
  const r = await installCni({
    binDir,
    confDir,
    nodePath: process.execPath,
    pluginEntry: join(import.meta.dirname, 'antrea-cni.ts'),
    cniSocket: values['cni-socket'] ?? DEFAULT_SOCKETS[os],
    compileCacheDir: values['compile-cache'] ?? join(binDir, '.antrea-cni-cache'),
    chainPortmap: values.portmap === true,
    chainBandwidth: values.bandwidth === true,
    copyPlugins: copy,
    targetOs: os,
    ...(primaryPlugin === undefined ? {} : { primaryPlugin }),
    ...(values.launcher === undefined ? {} : { launcherExe: values.launcher }),
    ...(values['copy-from'] === undefined ? {} : { copyFrom: values['copy-from'] }),
    ...(bunPath === undefined
      ? {}
      : { standalone: { bunPath, entry: join(import.meta.dirname, 'antrea-cni-standalone.ts') } }),
    // Warm the compile cache by running the plugin, when it can run here.
    ...(native ? { runner: createCommandRunner() } : {}),
  });
  const form = r.form === 'standalone' ? 'standalone executable' : 'on Node';
  const notes = [...r.notes];
  if (os === 'linux' && native && values['node-plugin'] !== true && bunPath === undefined) {
    notes.push('no Bun compiler found (the optional bun package, or --bun): the plugin runs on Node');
  }
  const copied = r.copied.length > 0 ? `; copied ${r.copied.join(', ')}` : '';
  return [`installed ${r.pluginPath} (${form}) and ${r.conflistPath}${copied}`, ...notes].join('\n');
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (msg) => console.log(msg),
    (err: unknown) => {
      console.error(`install-cni: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    },
  );
}
