/**
 * The lab's data directory and its state file. One data directory is one lab: the supervisor keeps
 * its state, logs, kubeconfigs, each Node's OVS run directory, CNI directories and agent files, and
 * each Pod's control socket there. `antrea-lab down` removes the whole directory, which is why the
 * lab only ever uses a directory it created (marked by {@link MARKER}).
 *
 * Default: /var/lib/antrea-lab (not /tmp, which may be mounted noexec: the CNI plugin runs from here).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { ValidationError } from '../common/util/errors.ts';
import type { LabEncap } from './topology.ts';

export const DEFAULT_DATA_DIR = '/var/lib/antrea-lab';
export const MARKER = '.antrea-lab';
/** Unix socket paths are limited to 107 bytes; Pod and OVS sockets live below the data directory. */
export const MAX_DATA_DIR_LENGTH = 60;

export type LabCni = 'antrea' | 'bridge';

export type LabPhase = 'starting' | 'ready' | 'stopping' | 'failed';

export interface LabNodeState {
  readonly name: string;
  readonly netns: string;
  readonly nodeIP: string;
  readonly controlIP: string;
  podCIDR?: string;
  /** Processes the supervisor runs for this Node. */
  pids: Record<string, number>;
}

export interface LabState {
  readonly version: 1;
  readonly dataDir: string;
  readonly prefix: string;
  /** The supervisor's pid. */
  readonly pid: number;
  readonly startedAt: string;
  phase: LabPhase;
  error?: string;
  readonly options: { readonly nodes: number; readonly encap: LabEncap; readonly cni: LabCni };
  slot?: number;
  apiServerURL?: string;
  controllerPid?: number;
  nodes: LabNodeState[];
  readyAt?: string;
  /** Milliseconds from start to ready. */
  upMs?: number;
}

/** The files and directories of one lab. */
export class LabPaths {
  readonly dataDir: string;

  constructor(dataDir: string) {
    this.dataDir = dataDir;
  }

  get marker(): string {
    return join(this.dataDir, MARKER);
  }
  get state(): string {
    return join(this.dataDir, 'state.json');
  }
  get supervisorLog(): string {
    return join(this.dataDir, 'supervisor.log');
  }
  /** Human progress lines written by the supervisor and shown by `up`. */
  get progress(): string {
    return join(this.dataDir, 'progress.log');
  }
  /** Where the supervisor takes component requests (kill/stop/start/restart; see components.ts). */
  get controlSocket(): string {
    return join(this.dataDir, 'control.sock');
  }
  get adminKubeconfig(): string {
    return join(this.dataDir, 'admin.kubeconfig');
  }
  get apiServerDir(): string {
    return join(this.dataDir, 'apiserver');
  }
  get compileCache(): string {
    return join(this.dataDir, 'cache');
  }
  get podsDir(): string {
    return join(this.dataDir, 'pods');
  }
  get controllerDir(): string {
    return join(this.dataDir, 'controller');
  }
  get controllerKubeconfig(): string {
    return join(this.controllerDir, 'kubeconfig');
  }
  get controllerConfig(): string {
    return join(this.controllerDir, 'antrea-controller.conf');
  }
  get controllerLog(): string {
    return join(this.dataDir, 'antrea-controller.log');
  }
  nodeDir(node: string): string {
    return join(this.dataDir, 'nodes', node);
  }
  /** Short on purpose (socket paths). */
  /** The kubeconfig of a Node's antrea-agent (the antrea-agent ServiceAccount, a token bound to the Node). */
  agentKubeconfig(node: string): string {
    return join(this.nodeDir(node), 'agent-kubeconfig');
  }
  ovsRunDir(node: string): string {
    return join(this.nodeDir(node), 'ovs');
  }
  cniBinDir(node: string): string {
    return join(this.nodeDir(node), 'cni', 'bin');
  }
  cniConfDir(node: string): string {
    return join(this.nodeDir(node), 'cni', 'net.d');
  }
  /** The kubelet stand-in's cache of CNI results (libcni keeps these under /var/lib/cni/results). */
  cniCacheDir(node: string): string {
    return join(this.nodeDir(node), 'cni', 'results');
  }
  ipamDir(node: string): string {
    return join(this.nodeDir(node), 'ipam');
  }
  podSocket(podKey: string): string {
    return join(this.podsDir, `${podKey}.sock`);
  }
  podRecord(namespace: string, name: string): string {
    return join(this.podsDir, `${namespace}_${name}.json`);
  }
}

/** Resolves and checks a --data-dir value. */
export function resolveDataDir(value: string | undefined): string {
  const dir = resolve(value ?? process.env['ANTREA_LAB_DATA_DIR'] ?? DEFAULT_DATA_DIR);
  if (!isAbsolute(dir) || dir === '/') throw new ValidationError('--data-dir', `not a usable directory: "${dir}"`);
  if (dir.length > MAX_DATA_DIR_LENGTH) {
    throw new ValidationError(
      '--data-dir',
      `"${dir}" is ${dir.length} characters long; at most ${MAX_DATA_DIR_LENGTH} (unix socket paths are short)`,
    );
  }
  return dir;
}

/**
 * Creates the data directory for a new lab, or reuses one a lab created before (it carries the
 * marker). Refuses a non-empty directory without the marker, so `down` never deletes foreign files.
 */
export function prepareDataDir(paths: LabPaths): void {
  if (existsSync(paths.dataDir)) {
    const entries = readdirSync(paths.dataDir);
    if (entries.length > 0 && !entries.includes(MARKER)) {
      throw new ValidationError(
        '--data-dir',
        `${paths.dataDir} is not empty and was not created by antrea-lab; choose another directory`,
      );
    }
  }
  mkdirSync(paths.dataDir, { recursive: true, mode: 0o755 });
  writeFileSync(paths.marker, 'antrea-lab data directory: `antrea-lab down` removes it entirely\n');
}

export function isLabDataDir(paths: LabPaths): boolean {
  return existsSync(paths.marker);
}

/** Removes the data directory if the lab created it. Returns whether it removed anything. */
export function removeDataDir(paths: LabPaths): boolean {
  if (!isLabDataDir(paths)) return false;
  rmSync(paths.dataDir, { recursive: true, force: true });
  return true;
}

export function readState(paths: LabPaths): LabState | undefined {
  try {
    const s = JSON.parse(readFileSync(paths.state, 'utf8')) as { version?: unknown };
    return s.version === 1 ? (s as LabState) : undefined;
  } catch {
    return undefined;
  }
}

/** Writes the state atomically (readers never see half a file). */
export function writeState(paths: LabPaths, state: LabState): void {
  const tmp = `${paths.state}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  renameSync(tmp, paths.state);
}
