/**
 * The container runtime's half of CNI, as containerd/CRI-O do it through libcni: load the first
 * network configuration list from a configuration directory, and run its plugins for ADD (in order,
 * each given the previous plugin's result as `prevResult`), CHECK (in order, with the cached result)
 * and DEL (in reverse order, with the cached result), passing the attachment through the CNI_*
 * environment variables and the plugin configuration on stdin. Results are cached per attachment
 * as libcni does under /var/lib/cni/results. Plugins run inside the Node's network namespace (where
 * a real runtime runs them).
 *
 * Spec: CNI SPEC 1.1.0, sections 2 and 3.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AntreaError, errorMessage } from '../common/util/errors.ts';
import { ExecError, type CommandRunner } from '../common/util/exec.ts';
import { type Logger, nullLogger } from '../common/util/log.ts';
import { netnsRunner } from '../platform/linux/netns.ts';

/** The spec versions this runtime speaks, oldest first. */
export const RUNTIME_CNI_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;

export type CniRuntimeErrorCode = 'CNI_NO_CONFIG' | 'CNI_BAD_CONFIG' | 'CNI_PLUGIN_NOT_FOUND' | 'CNI_PLUGIN_FAILED';

/** A failed plugin call; `cniCode` is the plugin's error code (11 means try again later). */
export class CniRuntimeError extends AntreaError<CniRuntimeErrorCode> {
  readonly cniCode: number | undefined;
  readonly plugin: string | undefined;

  constructor(
    code: CniRuntimeErrorCode,
    message: string,
    o: { cniCode?: number; plugin?: string; cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, { cause: o.cause, details: { ...o.details, cniCode: o.cniCode, plugin: o.plugin } });
    this.cniCode = o.cniCode;
    this.plugin = o.plugin;
  }

  /** The plugin asked to be called again later (CNI error code 11). */
  get tryAgainLater(): boolean {
    return this.cniCode === 11;
  }
}

export interface PluginConf {
  readonly type: string;
  readonly [key: string]: unknown;
}

export interface NetworkConfigList {
  /** The file it came from. */
  readonly file: string;
  readonly name: string;
  /** The version the runtime chose (the list's `cniVersion`, or the newest shared entry of `cniVersions`). */
  readonly cniVersion: string;
  readonly disableCheck: boolean;
  readonly plugins: readonly PluginConf[];
}

export interface CniAttachment {
  readonly containerId: string;
  /** Path of the Pod's network namespace (CNI_NETNS). */
  readonly netnsPath: string;
  readonly ifName: string;
  readonly podNamespace: string;
  readonly podName: string;
  readonly podUid: string;
}

export interface CniIP {
  readonly address: string;
  readonly gateway?: string;
  readonly interface?: number;
}

export interface CniResult {
  readonly cniVersion?: string;
  readonly interfaces?: readonly { readonly name: string; readonly mac?: string; readonly sandbox?: string }[];
  readonly ips?: readonly CniIP[];
  readonly routes?: readonly { readonly dst: string; readonly gw?: string }[];
  readonly dns?: Readonly<Record<string, unknown>>;
  readonly [key: string]: unknown;
}

function versionRank(v: string): number {
  const [a, b, c] = v.split('.').map((x) => Number.parseInt(x, 10));
  return ((a ?? 0) * 1000 + (b ?? 0)) * 1000 + (c ?? 0);
}

/**
 * Parses a configuration list (or, as libcni does, a single-plugin `.conf` file, wrapped into a
 * list). Throws CNI_BAD_CONFIG naming the file and field.
 */
export function parseNetworkConfig(text: string, file: string): NetworkConfigList {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CniRuntimeError('CNI_BAD_CONFIG', `${file}: not JSON: ${errorMessage(err)}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CniRuntimeError('CNI_BAD_CONFIG', `${file}: not a JSON object`);
  }
  const o = raw as Record<string, unknown>;
  const bad = (field: string, why: string): CniRuntimeError =>
    new CniRuntimeError('CNI_BAD_CONFIG', `${file}: ${field}: ${why}`, { details: { file, field } });
  const name = o['name'];
  if (typeof name !== 'string' || name === '') throw bad('name', 'must be a non-empty string');
  let plugins: unknown = o['plugins'];
  if (plugins === undefined && typeof o['type'] === 'string') plugins = [o];
  if (!Array.isArray(plugins) || plugins.length === 0) throw bad('plugins', 'must be a non-empty list');
  const confs: PluginConf[] = plugins.map((p, i) => {
    if (typeof p !== 'object' || p === null || typeof (p as { type?: unknown }).type !== 'string') {
      throw bad(`plugins[${i}].type`, 'must be a string');
    }
    return p as PluginConf;
  });
  const supported = new Set<string>(RUNTIME_CNI_VERSIONS);
  let version: string | undefined;
  const versions = o['cniVersions'];
  if (Array.isArray(versions)) {
    const shared = versions.filter((v): v is string => typeof v === 'string' && supported.has(v));
    version = shared.sort((a, b) => versionRank(b) - versionRank(a))[0];
  }
  if (version === undefined) {
    const v = o['cniVersion'];
    if (typeof v !== 'string') throw bad('cniVersion', 'must be a string');
    if (!supported.has(v))
      throw bad('cniVersion', `${v} is not supported (supported: ${RUNTIME_CNI_VERSIONS.join(', ')})`);
    version = v;
  }
  return { file, name, cniVersion: version, disableCheck: o['disableCheck'] === true, plugins: confs };
}

/** The first configuration in `dir`, in lexical order of .conflist/.conf/.json files (as libcni). */
export function loadNetworkConfig(dir: string): NetworkConfigList {
  const files = existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => /\.(conflist|conf|json)$/.test(f))
        .sort()
    : [];
  const first = files[0];
  if (first === undefined) throw new CniRuntimeError('CNI_NO_CONFIG', `no CNI network configuration in ${dir}`);
  const file = join(dir, first);
  return parseNetworkConfig(readFileSync(file, 'utf8'), file);
}

/** The IPv4/IPv6 addresses (without prefix length) a result gives to the container's interface. */
export function resultIPs(result: CniResult, ifName = 'eth0'): string[] {
  const ifaces = result.interfaces ?? [];
  const out: string[] = [];
  for (const ip of result.ips ?? []) {
    const iface = ip.interface === undefined ? undefined : ifaces[ip.interface];
    if (iface !== undefined && iface.sandbox === undefined) continue; // a host-side interface
    if (iface !== undefined && iface.name !== ifName) continue;
    out.push(ip.address.split('/')[0] ?? ip.address);
  }
  return out;
}

export interface CniRuntimeOptions {
  readonly confDir: string;
  /** Where plugins are looked up (CNI_PATH). */
  readonly binDirs: readonly string[];
  /** Cached results. */
  readonly cacheDir: string;
  readonly runner: CommandRunner;
  /** The Node's network namespace, where plugins run (default: the current one). */
  readonly netns?: string;
  readonly logger?: Logger;
  /** Per plugin call (default 120 s: ADD may wait for the agent to become ready). */
  readonly timeoutMs?: number;
}

interface CacheEntry {
  readonly kind: 'cniCacheV1';
  readonly containerId: string;
  readonly ifName: string;
  readonly networkName: string;
  readonly cniArgs: string;
  readonly result: CniResult;
  readonly config: NetworkConfigList;
}

export class CniRuntime {
  private readonly o: CniRuntimeOptions;
  private readonly runner: CommandRunner;
  private readonly logger: Logger;

  constructor(o: CniRuntimeOptions) {
    this.o = o;
    this.runner = o.netns === undefined ? o.runner : netnsRunner(o.runner, o.netns);
    this.logger = (o.logger ?? nullLogger).child({ component: 'cni-runtime' });
  }

  /** Whether a network configuration is present (containerd's NetworkReady condition). */
  networkReady(): boolean {
    try {
      loadNetworkConfig(this.o.confDir);
      return true;
    } catch {
      return false;
    }
  }

  private cachePath(network: string, a: Pick<CniAttachment, 'containerId' | 'ifName'>): string {
    return join(this.o.cacheDir, `${network}-${a.containerId}-${a.ifName}`);
  }

  /** The cached ADD result of an attachment, if any. */
  cachedResult(network: string, a: Pick<CniAttachment, 'containerId' | 'ifName'>): CacheEntry | undefined {
    try {
      return JSON.parse(readFileSync(this.cachePath(network, a), 'utf8')) as CacheEntry;
    } catch {
      return undefined;
    }
  }

  private static cniArgs(a: CniAttachment): string {
    return [
      'IgnoreUnknown=1',
      `K8S_POD_NAMESPACE=${a.podNamespace}`,
      `K8S_POD_NAME=${a.podName}`,
      `K8S_POD_INFRA_CONTAINER_ID=${a.containerId}`,
      `K8S_POD_UID=${a.podUid}`,
    ].join(';');
  }

  private findPlugin(type: string): string {
    if (!/^[A-Za-z0-9_.-]+$/.test(type)) {
      throw new CniRuntimeError('CNI_BAD_CONFIG', `invalid plugin type "${type}"`, { plugin: type });
    }
    for (const d of this.o.binDirs) {
      const p = join(d, type);
      if (existsSync(p)) return p;
    }
    throw new CniRuntimeError('CNI_PLUGIN_NOT_FOUND', `plugin "${type}" not found in ${this.o.binDirs.join(':')}`, {
      plugin: type,
    });
  }

  private async exec(
    command: 'ADD' | 'DEL' | 'CHECK' | 'STATUS',
    list: NetworkConfigList,
    plugin: PluginConf,
    a: CniAttachment | undefined,
    prevResult: CniResult | undefined,
    signal?: AbortSignal,
  ): Promise<CniResult | undefined> {
    const path = this.findPlugin(plugin.type);
    const conf: Record<string, unknown> = { ...plugin, cniVersion: list.cniVersion, name: list.name };
    if (prevResult !== undefined) conf['prevResult'] = prevResult;
    const env: Record<string, string> = {
      CNI_COMMAND: command,
      CNI_PATH: this.o.binDirs.join(':'),
      PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    };
    if (a !== undefined) {
      Object.assign(env, {
        CNI_CONTAINERID: a.containerId,
        CNI_NETNS: a.netnsPath,
        CNI_IFNAME: a.ifName,
        CNI_ARGS: CniRuntime.cniArgs(a),
      });
    }
    const t0 = performance.now();
    let stdout: string;
    try {
      const r = await this.runner.run(path, [], {
        input: JSON.stringify(conf),
        env,
        replaceEnv: true,
        timeoutMs: this.o.timeoutMs ?? 120_000,
        ...(signal === undefined ? {} : { signal }),
      });
      stdout = r.stdout;
    } catch (err) {
      const out = err instanceof ExecError ? err.stdout : '';
      let cniCode: number | undefined;
      let msg = errorMessage(err);
      try {
        const e = JSON.parse(out) as { code?: number; msg?: string; details?: string };
        if (typeof e.code === 'number') {
          cniCode = e.code;
          msg = `${e.msg ?? ''}${e.details === undefined || e.details === '' ? '' : `: ${e.details}`}`;
        }
      } catch {
        // not a CNI error object
      }
      throw new CniRuntimeError(
        'CNI_PLUGIN_FAILED',
        `${plugin.type} ${command}${a === undefined ? '' : ` for ${a.podNamespace}/${a.podName}`} failed${cniCode === undefined ? '' : ` (code ${cniCode})`}: ${msg}`,
        { plugin: plugin.type, cause: err, ...(cniCode === undefined ? {} : { cniCode }) },
      );
    }
    this.logger.debug('plugin call', { command, plugin: plugin.type, ms: Math.round(performance.now() - t0) });
    if (command !== 'ADD') return undefined;
    try {
      return JSON.parse(stdout) as CniResult;
    } catch (err) {
      throw new CniRuntimeError(
        'CNI_PLUGIN_FAILED',
        `${plugin.type} ADD printed no result JSON: ${stdout.slice(0, 200)}`,
        {
          plugin: plugin.type,
          cause: err,
        },
      );
    }
  }

  /**
   * ADD: runs every plugin of the list in order and caches the final result. On failure the result
   * is not cached and the error is thrown; the caller (like a runtime) then calls {@link del}.
   */
  async add(a: CniAttachment, signal?: AbortSignal): Promise<CniResult> {
    const list = loadNetworkConfig(this.o.confDir);
    let result: CniResult | undefined;
    for (const p of list.plugins) result = await this.exec('ADD', list, p, a, result, signal);
    if (result === undefined) throw new CniRuntimeError('CNI_PLUGIN_FAILED', 'the plugin list gave no result');
    mkdirSync(this.o.cacheDir, { recursive: true });
    const entry: CacheEntry = {
      kind: 'cniCacheV1',
      containerId: a.containerId,
      ifName: a.ifName,
      networkName: list.name,
      cniArgs: CniRuntime.cniArgs(a),
      result,
      config: list,
    };
    const path = this.cachePath(list.name, a);
    writeFileSync(`${path}.tmp`, JSON.stringify(entry));
    renameSync(`${path}.tmp`, path);
    return result;
  }

  /** CHECK: runs every plugin in order with the cached result (skipped when the list disables it). */
  async check(a: CniAttachment, signal?: AbortSignal): Promise<void> {
    const list = loadNetworkConfig(this.o.confDir);
    if (list.disableCheck || versionRank(list.cniVersion) < versionRank('0.4.0')) return;
    const cached = this.cachedResult(list.name, a);
    if (cached === undefined) {
      throw new CniRuntimeError('CNI_PLUGIN_FAILED', `no cached result for ${a.podNamespace}/${a.podName}`);
    }
    for (const p of list.plugins) await this.exec('CHECK', list, p, a, cached.result, signal);
  }

  /**
   * DEL: runs the plugins in reverse order with the cached result (the configuration used at ADD
   * when cached, else the current one), then drops the cache entry. Idempotent as far as the plugins
   * are (the spec requires DEL to be).
   */
  async del(a: CniAttachment, signal?: AbortSignal): Promise<void> {
    const current = loadNetworkConfig(this.o.confDir);
    const cached = this.cachedResult(current.name, a);
    const list = cached?.config ?? current;
    const prev = versionRank(list.cniVersion) >= versionRank('0.4.0') ? cached?.result : undefined;
    for (const p of [...list.plugins].reverse()) await this.exec('DEL', list, p, a, prev, signal);
    rmSync(this.cachePath(list.name, a), { force: true });
  }

  /** STATUS (CNI 1.1): asks each plugin whether it can take ADDs; rejects with the first failure. */
  async status(signal?: AbortSignal): Promise<void> {
    const list = loadNetworkConfig(this.o.confDir);
    if (versionRank(list.cniVersion) < versionRank('1.1.0')) return;
    for (const p of list.plugins) await this.exec('STATUS', list, p, undefined, undefined, signal);
  }
}
