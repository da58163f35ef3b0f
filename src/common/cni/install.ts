/**
 * The install step (Antrea's install_cni): writes the `antrea` plugin executable into the CNI bin
 * directory and `10-antrea.conflist` into the CNI configuration directory, optionally copying
 * companion plugins (loopback, portmap, bandwidth, host-local) next to it. For CNI chaining
 * (trafficEncapMode networkPolicyOnly, Antrea's install_cni_chaining) the conflist lists the primary
 * plugin first (e.g. ptp with host-local IPAM) and antrea after it, without IPAM.
 *
 * Where Bun's compiler is at hand (the `bun` package, an optional dependency), the plugin is one
 * executable built from src/cmd/antrea-cni-standalone.ts with the agent's socket baked in: it needs
 * no Node on the host and starts in ~5 ms where Node alone takes ~30 ms here
 * (docs/design/cni-performance.md). The build is checked by running it (VERSION); if it cannot be
 * built or run, the install says so and falls back to Node.
 *
 * On Node, the plugin executable is a small launcher that runs src/cmd/antrea-cni.ts on the
 * project's pinned Node with a compile cache (type stripping on every call would cost ~60 ms; with
 * the cache the plugin starts within a few ms of bare Node), and points it at the agent's CNI socket. By default
 * it runs the plugin bundled into one plain JavaScript file at install time (compile.ts), so Node
 * neither loads its TypeScript stripper nor its ES module loader. The install
 * runs the plugin once (VERSION) to warm that cache. Files are written to a temporary name and
 * renamed, so a runtime never executes a half-written plugin.
 *
 * On Windows, containerd looks for `antrea.exe`, and a script cannot be one: the plugin is then the
 * native launcher built from build/images/windows/antrea-cni-launcher.c (copied as antrea.exe),
 * which reads `antrea.launcher` next to it (Node, entry, default environment) and runs the plugin
 * with stdin, stdout, stderr, environment and exit code passed through.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ValidationError } from '../util/errors.ts';
import type { CommandRunner } from '../util/exec.ts';
import { buildStandalonePlugin, compilePlugin, typeStripper } from './compile.ts';

export const PLUGIN_NAME = 'antrea';
/** The OS the plugin is installed for (its form differs; the conflist too). */
export type InstallTargetOs = 'linux' | 'windows';
/** The plugin file in the CNI bin directory, per OS. */
export const PLUGIN_FILE = { linux: 'antrea', windows: 'antrea.exe' } as const;
/** The Windows launcher's configuration, next to antrea.exe. */
export const WINDOWS_LAUNCHER_CONFIG = 'antrea.launcher';
export const CONFLIST_NAME = '10-antrea.conflist';
/** The bundled plugin, in the compile cache directory. */
export const PLUGIN_BUNDLE = 'antrea-cni.cjs';

/**
 * How the installed plugin runs: `standalone` (one executable built with Bun's compiler), or on
 * Node, from the bundled script (`node-bundle`) or from the TypeScript entry (`node-source`).
 */
export type PluginForm = 'standalone' | 'node-bundle' | 'node-source';

/** What the standalone build needs. */
export interface StandaloneBuild {
  /** The Bun executable that compiles (findBun). */
  readonly bunPath: string;
  /** Absolute path of src/cmd/antrea-cni-standalone.ts. */
  readonly entry: string;
}

/**
 * The Bun executable of the `bun` package installed under `projectRoot`, for this OS and CPU
 * (Node's `process.platform` and `process.arch` names), or undefined when there is none. The
 * package's own install script may have moved it from the platform package to bun/bin/bun.exe.
 */
export function findBun(projectRoot: string, platform: string, arch: string): string | undefined {
  const cpu = arch === 'arm64' ? 'aarch64' : arch;
  const modules = join(projectRoot, 'node_modules');
  const candidates = [
    join(modules, '@oven', `bun-${platform}-${cpu}`, 'bin', 'bun'),
    join(modules, '@oven', `bun-${platform}-${cpu}-baseline`, 'bin', 'bun'),
    join(modules, 'bun', 'bin', 'bun.exe'),
  ];
  return candidates.find((c) => existsSync(c));
}

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
  /**
   * CNI chaining: the primary plugin's configuration (an object with a `type`, e.g.
   * `{type: 'ptp', ipam: {type: 'host-local', ...}}`), listed before antrea; antrea then has no
   * IPAM. Absent: antrea is the only interface plugin, with host-local IPAM.
   */
  readonly primaryPlugin?: Readonly<Record<string, unknown>>;
  /** Declare the `dns` capability on the antrea plugin (Antrea's Windows conflist does). */
  readonly dnsCapability?: boolean;
  /** Copy these plugins from `copyFrom` into binDir (e.g. loopback, host-local, portmap). */
  readonly copyPlugins?: readonly string[];
  readonly copyFrom?: string;
  /** linux (default): a shell launcher; windows: antrea.exe (the native launcher) and its configuration. */
  readonly targetOs?: InstallTargetOs;
  /** windows: the compiled antrea-cni-launcher.exe to install as antrea.exe. */
  readonly launcherExe?: string;
  /** Runs the plugin once to fill the compile cache (skipped when absent). */
  readonly runner?: CommandRunner;
  /**
   * Linux: build the plugin into one executable with Bun's compiler and run that (needs `runner`).
   * When the build or its check fails, the plugin runs on Node and `notes` says why.
   */
  readonly standalone?: StandaloneBuild;
  /**
   * On Node: run the plugin as one JavaScript file bundled from `pluginEntry` into
   * `compileCacheDir`/antrea-cni.cjs (compile.ts), not as TypeScript: a faster start. Default true
   * where Node can strip types.
   */
  readonly compile?: boolean;
}

export interface InstallResult {
  readonly pluginPath: string;
  readonly form: PluginForm;
  /** What runs: the standalone executable (pluginPath), or the launcher's bundled script or `pluginEntry`. */
  readonly entry: string;
  /** Why the plugin is not in the form asked for (e.g. the standalone build failed). */
  readonly notes: readonly string[];
  readonly conflistPath: string;
  readonly copied: readonly string[];
}

/** Single-quotes a string for a POSIX shell. */
function shQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** Sets NAME to `value` (taken literally) unless the caller set it to something non-empty. */
function shDefault(name: string, value: string): string {
  return `[ -n "$${name}" ] || ${name}=${shQuote(value)}`;
}

/** The launcher script of the plugin on Node. */
export function pluginLauncher(
  o: Pick<InstallCniOptions, 'nodePath' | 'pluginEntry' | 'cniSocket' | 'compileCacheDir'>,
): string {
  return [
    '#!/bin/sh',
    '# antrea CNI plugin launcher, written by antrea-ts install-cni: runs the plugin on the pinned Node.',
    shDefault('ANTREA_CNI_SOCKET', o.cniSocket),
    shDefault('NODE_COMPILE_CACHE', o.compileCacheDir),
    'export ANTREA_CNI_SOCKET NODE_COMPILE_CACHE',
    `exec ${shQuote(o.nodePath)} ${shQuote(o.pluginEntry)} "$@"`,
    '',
  ].join('\n');
}

/**
 * The Windows launcher's configuration (CRLF lines). The environment defaults apply only when the
 * runtime did not set the variable. Values cannot hold line breaks (ValidationError naming the field).
 */
export function windowsLauncherConfig(
  o: Pick<InstallCniOptions, 'nodePath' | 'pluginEntry' | 'cniSocket' | 'compileCacheDir'>,
): string {
  const fields = [
    ['nodePath', o.nodePath],
    ['pluginEntry', o.pluginEntry],
    ['cniSocket', o.cniSocket],
    ['compileCacheDir', o.compileCacheDir],
  ] as const;
  for (const [field, v] of fields) {
    if (v === '' || /[\r\n]/.test(v)) throw new ValidationError(field, 'must be a non-empty single line');
  }
  return [
    '# antrea CNI plugin launcher configuration, written by antrea-ts install-cni (read by antrea.exe).',
    `node=${o.nodePath}`,
    `entry=${o.pluginEntry}`,
    `env=ANTREA_CNI_SOCKET=${o.cniSocket}`,
    `env=NODE_COMPILE_CACHE=${o.compileCacheDir}`,
    '',
  ].join('\r\n');
}

/**
 * The conflist (cniVersion 1.0.0 by default, also offering 1.1.0 to runtimes that know it unless
 * antrea is chained after a primary plugin).
 */
export function antreaConflist(
  o: Pick<
    InstallCniOptions,
    'cniVersion' | 'networkName' | 'chainPortmap' | 'chainBandwidth' | 'dnsCapability' | 'primaryPlugin'
  >,
): string {
  const version = o.cniVersion ?? '1.0.0';
  const primary = o.primaryPlugin;
  if (primary !== undefined) {
    const type = primary['type'];
    if (typeof type !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(type)) {
      throw new ValidationError('primaryPlugin.type', `must be a plugin name, got ${JSON.stringify(type)}`);
    }
    if (type === PLUGIN_NAME) throw new ValidationError('primaryPlugin.type', 'antrea cannot chain after itself');
  }
  const antrea: Record<string, unknown> =
    primary === undefined ? { type: PLUGIN_NAME, ipam: { type: 'host-local' } } : { type: PLUGIN_NAME };
  if (o.dnsCapability === true) antrea['capabilities'] = { dns: true };
  const plugins: Record<string, unknown>[] = primary === undefined ? [antrea] : [{ ...primary }, antrea];
  if (o.chainPortmap === true) plugins.push({ type: 'portmap', capabilities: { portMappings: true } });
  if (o.chainBandwidth === true) plugins.push({ type: 'bandwidth', capabilities: { bandwidth: true } });
  const conf: Record<string, unknown> = { cniVersion: version, name: o.networkName ?? 'antrea' };
  // 1.1.0 is offered only when antrea is alone: a primary plugin may not speak it (ptp does not),
  // and a runtime picks the newest version listed.
  if (version === '1.0.0' && primary === undefined) conf['cniVersions'] = ['1.0.0', '1.1.0'];
  conf['plugins'] = plugins;
  return JSON.stringify(conf, null, 2) + '\n';
}

function writeAtomically(path: string, content: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, content, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

function copyAtomically(src: string, dst: string): void {
  const tmp = `${dst}.tmp-${process.pid}`;
  copyFileSync(src, tmp);
  chmodSync(tmp, 0o755);
  renameSync(tmp, dst);
}

export async function installCni(o: InstallCniOptions): Promise<InstallResult> {
  if (!existsSync(o.nodePath)) throw new ValidationError('nodePath', `${o.nodePath} does not exist`);
  if (!existsSync(o.pluginEntry)) throw new ValidationError('pluginEntry', `${o.pluginEntry} does not exist`);
  const launcher = o.targetOs === 'windows' ? o.launcherExe : undefined;
  if (o.targetOs === 'windows') {
    if (launcher === undefined) throw new ValidationError('launcherExe', 'is required for a Windows install');
    if (!existsSync(launcher)) throw new ValidationError('launcherExe', `${launcher} does not exist`);
  }
  // The standalone build's inputs, checked before anything is written.
  let build: (StandaloneBuild & { readonly runner: CommandRunner }) | undefined;
  if (o.standalone !== undefined && o.targetOs !== 'windows') {
    if (o.runner === undefined) throw new ValidationError('runner', 'is required to build the standalone plugin');
    for (const [field, path] of [
      ['standalone.bunPath', o.standalone.bunPath],
      ['standalone.entry', o.standalone.entry],
    ] as const) {
      if (!existsSync(path)) throw new ValidationError(field, `${path} does not exist`);
    }
    build = { ...o.standalone, runner: o.runner };
  }
  mkdirSync(o.binDir, { recursive: true });
  mkdirSync(o.confDir, { recursive: true });
  mkdirSync(o.compileCacheDir, { recursive: true });
  const copied: string[] = [];
  for (const name of o.copyPlugins ?? []) {
    if (o.copyFrom === undefined) throw new ValidationError('copyFrom', 'is required to copy plugins');
    const src = join(o.copyFrom, name);
    if (!existsSync(src)) throw new ValidationError('copyPlugins', `${src} does not exist`);
    copyAtomically(src, join(o.binDir, name));
    copied.push(name);
  }
  const windows = launcher !== undefined;
  const notes: string[] = [];
  let standalone: string | undefined;
  if (build !== undefined) {
    try {
      standalone = await buildStandalonePlugin(
        build.runner,
        build.bunPath,
        build.entry,
        join(o.binDir, PLUGIN_FILE.linux),
        o.cniSocket,
      );
    } catch (err) {
      notes.push(
        `the standalone plugin was not built, it runs on Node: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }
  const bundled = standalone === undefined && o.compile !== false && typeStripper() !== undefined;
  const entry =
    standalone ?? (bundled ? compilePlugin(o.pluginEntry, join(o.compileCacheDir, PLUGIN_BUNDLE)) : o.pluginEntry);
  const form: PluginForm = standalone !== undefined ? 'standalone' : bundled ? 'node-bundle' : 'node-source';
  const run = { ...o, pluginEntry: entry };
  const pluginPath = join(o.binDir, PLUGIN_FILE[windows ? 'windows' : 'linux']);
  if (windows) {
    // The configuration first: a new antrea.exe never starts without it.
    writeAtomically(join(o.binDir, WINDOWS_LAUNCHER_CONFIG), windowsLauncherConfig(run), 0o644);
    copyAtomically(launcher, pluginPath);
  } else if (standalone === undefined) {
    writeAtomically(pluginPath, pluginLauncher(run), 0o755);
  } // else: the standalone executable was built in place (under a temporary name, then renamed)
  const conflistPath = join(o.confDir, CONFLIST_NAME);
  // Antrea's Windows conflist declares the dns capability (containerd passes the Pod's DNS to HNS).
  writeAtomically(conflistPath, antreaConflist({ ...o, dnsCapability: o.dnsCapability ?? windows }), 0o644);
  if (o.runner !== undefined && standalone === undefined) {
    // Warms the compile cache (the standalone build was run already).
    await o.runner.run(pluginPath, [], { env: { CNI_COMMAND: 'VERSION' }, replaceEnv: true, timeoutMs: 30_000 });
  }
  return { pluginPath, form, entry, notes, conflistPath, copied };
}
