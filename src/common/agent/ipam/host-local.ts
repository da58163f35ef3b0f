/**
 * IPAM by delegation to the real `host-local` plugin (Antrea's hostlocal delegator): the request's
 * network configuration gets the Node's Pod CIDRs as `ranges` (gateway = first address) and the
 * agent's `dataDir`, and host-local runs with the CNI environment. Its reservations are files named
 * after the IP under `<dataDir>/<network>/`, holding "containerID\r\nifname".
 *
 * Reservation GC ({@link HostLocalIpam.reservations} + {@link HostLocalIpam.release}) edits that
 * directory directly, as Antrea's gc.go does; callers run it under the agent's exclusive lock, when
 * no host-local process of ours runs. host-local's own files (`lock`, `last_reserved_ip.*`) are
 * never touched.
 */
import { accessSync, constants, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  CniError,
  compareCniVersions,
  type CniResult,
  type NetworkConfig,
  parseCniResult,
} from '../../apis/cni/spec.ts';
import { errorMessage } from '../../util/errors.ts';
import { type CommandRunner, ExecError } from '../../util/exec.ts';
import { canonicalIp, firstHostIp, ipBytes } from '../../util/ip.ts';
import { type Logger, nullLogger } from '../../util/log.ts';

export const HOST_LOCAL = 'host-local';

export interface IpamRequest {
  readonly containerId: string;
  readonly ifname: string;
  /** CNI_NETNS as given (host-local does not enter it). */
  readonly netns: string;
  /** CNI_ARGS. */
  readonly args: string;
  /** CNI_PATH. */
  readonly cniPath: string;
  readonly network: NetworkConfig;
  /** The Node's Pod CIDRs (one per family). */
  readonly podCIDRs: readonly string[];
}

export interface Reservation {
  /** The network (directory) name. */
  readonly network: string;
  readonly ip: string;
  readonly containerId: string;
  readonly ifname: string;
  readonly path: string;
}

export interface IpamDriver {
  /** Allocates addresses for the container. Throws CniError IPAM_FAILURE. */
  add(req: IpamRequest): Promise<CniResult>;
  /** Releases the container's addresses. Idempotent (nothing reserved: success). Throws IPAM_FAILURE. */
  del(req: IpamRequest): Promise<void>;
  /** Verifies the container still holds its reservation. Throws IPAM_FAILURE. */
  check(req: IpamRequest): Promise<void>;
  /**
   * Forwards STATUS to the delegate when it speaks spec 1.1.0 (older ones have no STATUS: then
   * there is nothing to ask). Throws IPAM_FAILURE with the delegate's answer.
   */
  status(req: IpamRequest): Promise<void>;
  /**
   * Forwards GC (with the request's valid attachments) to the delegate when it speaks spec 1.1.0;
   * resolves false when it does not (the caller's own reservation GC then does the work).
   */
  gc(req: IpamRequest): Promise<boolean>;
  /** Every reservation on disk. Read-only. */
  reservations(): Reservation[];
  /** Removes reservation files (GC). Absent files are ignored. */
  release(reservations: readonly Reservation[]): void;
}

export interface HostLocalIpamOptions {
  readonly runner: CommandRunner;
  /** Directories searched for host-local before the request's CNI_PATH (Antrea: /opt/cni/bin). */
  readonly pluginDirs: readonly string[];
  /** host-local's dataDir. */
  readonly dataDir: string;
  readonly logger?: Logger;
  /** Per-call timeout (default 30 s). */
  readonly timeoutMs?: number;
}

/** Parses a reservation file's name: an IP, with ':' escaped as '_' on Windows. */
export function reservationIp(fileName: string): string | undefined {
  const candidate = fileName.includes('_') && !fileName.includes(':') ? fileName.replaceAll('_', ':') : fileName;
  return ipBytes(candidate) === undefined ? undefined : canonicalIp(candidate);
}

export class HostLocalIpam implements IpamDriver {
  private readonly opts: HostLocalIpamOptions;
  private readonly logger: Logger;
  /** Highest spec version each binary speaks (from its VERSION answer). */
  private readonly versions = new Map<string, string[]>();

  constructor(opts: HostLocalIpamOptions) {
    this.opts = opts;
    this.logger = (opts.logger ?? nullLogger).child({ component: 'ipam', plugin: HOST_LOCAL });
  }

  get dataDir(): string {
    return this.opts.dataDir;
  }

  /** The host-local binary: the first executable found in pluginDirs, then CNI_PATH. */
  findPlugin(cniPath: string): string {
    const dirs = [...this.opts.pluginDirs, ...cniPath.split(':').filter((d) => d !== '')];
    for (const d of dirs) {
      const p = join(d, HOST_LOCAL);
      try {
        accessSync(p, constants.X_OK);
        return p;
      } catch {
        continue;
      }
    }
    throw new CniError('IPAM_FAILURE', `failed to find plugin "${HOST_LOCAL}" in path [${dirs.join(' ')}]`);
  }

  private async supportedVersions(bin: string): Promise<string[]> {
    const cached = this.versions.get(bin);
    if (cached !== undefined) return cached;
    let list: string[] = ['0.1.0', '0.2.0'];
    try {
      const r = await this.opts.runner.run(bin, [], {
        env: { CNI_COMMAND: 'VERSION' },
        replaceEnv: true,
        input: '{}',
        timeoutMs: this.opts.timeoutMs ?? 30_000,
      });
      const parsed = JSON.parse(r.stdout) as { supportedVersions?: unknown };
      if (Array.isArray(parsed.supportedVersions)) list = parsed.supportedVersions.filter((v) => typeof v === 'string');
    } catch (err) {
      this.logger.warn('host-local VERSION failed; assuming 0.1.0-0.2.0', { err });
    }
    this.versions.set(bin, list);
    return list;
  }

  /** The newest version both the request and host-local speak. */
  private async negotiate(bin: string, requested: string): Promise<string> {
    const theirs = await this.supportedVersions(bin);
    const usable = theirs
      .filter((v) => /^\d+\.\d+\.\d+$/.test(v) && compareCniVersions(v, requested) <= 0)
      .sort(compareCniVersions);
    const best = usable[usable.length - 1];
    if (best === undefined) {
      throw new CniError('IPAM_FAILURE', `${HOST_LOCAL} supports none of the versions up to ${requested}`);
    }
    return best;
  }

  /** The configuration fed to host-local: the request's, with our ranges and dataDir. */
  delegateConfig(req: IpamRequest, version: string): string {
    const ipam: Record<string, unknown> = { ...req.network.ipam, type: HOST_LOCAL };
    delete ipam['subnet'];
    delete ipam['rangeStart'];
    delete ipam['rangeEnd'];
    delete ipam['gateway'];
    ipam['ranges'] = req.podCIDRs.map((cidr) => [{ subnet: cidr, gateway: firstHostIp(cidr) }]);
    ipam['dataDir'] = this.opts.dataDir;
    const conf: Record<string, unknown> = { cniVersion: version, name: req.network.name, type: req.network.type, ipam };
    if (req.network.validAttachments !== undefined) conf['cni.dev/valid-attachments'] = req.network.validAttachments;
    return JSON.stringify(conf);
  }

  /** Whether the delegate found for this request speaks spec 1.1.0 (STATUS and GC). */
  async speaksV11(cniPath: string): Promise<boolean> {
    return (await this.supportedVersions(this.findPlugin(cniPath))).includes('1.1.0');
  }

  async status(req: IpamRequest): Promise<void> {
    if (await this.speaksV11(req.cniPath)) await this.exec('STATUS', req);
  }

  async gc(req: IpamRequest): Promise<boolean> {
    if (!(await this.speaksV11(req.cniPath))) return false;
    await this.exec('GC', req);
    return true;
  }

  private async exec(command: 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC', req: IpamRequest): Promise<string> {
    if (req.podCIDRs.length === 0) throw new CniError('IPAM_FAILURE', 'the Node has no Pod CIDR');
    const bin = this.findPlugin(req.cniPath);
    const version = await this.negotiate(bin, req.network.cniVersion);
    const env: Record<string, string> = {
      CNI_COMMAND: command,
      CNI_CONTAINERID: req.containerId,
      CNI_NETNS: req.netns,
      CNI_IFNAME: req.ifname,
      CNI_ARGS: req.args,
      CNI_PATH: req.cniPath,
    };
    try {
      const r = await this.opts.runner.run(bin, [], {
        env,
        replaceEnv: true,
        input: this.delegateConfig(req, version),
        timeoutMs: this.opts.timeoutMs ?? 30_000,
      });
      return r.stdout;
    } catch (err) {
      let msg = errorMessage(err);
      if (err instanceof ExecError) {
        try {
          const e = JSON.parse(err.stdout) as { msg?: unknown; details?: unknown };
          if (typeof e.msg === 'string') msg = typeof e.details === 'string' ? `${e.msg}: ${e.details}` : e.msg;
        } catch {
          msg = err.stderr.trim() !== '' ? err.stderr.trim() : msg;
        }
      }
      throw new CniError('IPAM_FAILURE', `${HOST_LOCAL} ${command} failed: ${msg}`, { cause: err });
    }
  }

  async add(req: IpamRequest): Promise<CniResult> {
    const out = await this.exec('ADD', req);
    try {
      return parseCniResult(JSON.parse(out), 'ipamResult');
    } catch (err) {
      throw new CniError('IPAM_FAILURE', `${HOST_LOCAL} returned an invalid result: ${errorMessage(err)}`, {
        cause: err,
      });
    }
  }

  async del(req: IpamRequest): Promise<void> {
    await this.exec('DEL', req);
  }

  async check(req: IpamRequest): Promise<void> {
    await this.exec('CHECK', req);
  }

  reservations(): Reservation[] {
    const out: Reservation[] = [];
    if (!existsSync(this.opts.dataDir)) return out;
    for (const network of readdirSync(this.opts.dataDir, { withFileTypes: true })) {
      if (!network.isDirectory()) continue;
      const dir = join(this.opts.dataDir, network.name);
      for (const f of readdirSync(dir)) {
        const ip = reservationIp(f);
        if (ip === undefined) continue;
        const path = join(dir, f);
        let content: string;
        try {
          content = readFileSync(path, 'utf8');
        } catch {
          continue; // released meanwhile
        }
        const [containerId = '', ifname = ''] = content.split(/\r?\n/).map((s) => s.trim());
        out.push({ network: network.name, ip, containerId, ifname, path });
      }
    }
    return out;
  }

  release(reservations: readonly Reservation[]): void {
    for (const r of reservations) {
      rmSync(r.path, { force: true });
      this.logger.info('released IP reservation', { ip: r.ip, network: r.network, containerId: r.containerId });
    }
  }
}
