/**
 * A supervisor for one private Open vSwitch instance (ovsdb-server + ovs-vswitchd), used by the
 * integration tests and by antrea-lab. Each instance has its own run directory holding its database,
 * sockets, pid files and logs, and optionally runs inside a network namespace. It never touches the
 * machine's default OVS directories.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { type Clock, systemClock } from '../../common/util/clock.ts';
import { AntreaError, errorMessage } from '../../common/util/errors.ts';
import type { CommandRunner, ProcessHandle, ProcessLauncher } from '../../common/util/exec.ts';
import { type Logger, nullLogger } from '../../common/util/log.ts';
import { netnsExecPrefix } from './netns.ts';

export type OvsDaemon = 'ovsdb-server' | 'ovs-vswitchd';
export type OvsDaemonErrorCode = 'OVS_START_FAILED' | 'OVS_NOT_INSTALLED';

export class OvsDaemonError extends AntreaError<OvsDaemonErrorCode> {}

export const DEFAULT_OVS_SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';

export interface OvsDaemonsOptions {
  /** Private run directory (created if missing). Keep it short: unix socket paths are limited to 107 bytes. */
  readonly runDir: string;
  /** Run both daemons inside this (existing) network namespace. */
  readonly netns?: string;
  readonly runner: CommandRunner;
  readonly launcher: ProcessLauncher;
  readonly logger?: Logger;
  readonly clock?: Clock;
  readonly schemaPath?: string;
  /** How long to wait for each daemon to become ready (default 15 s). */
  readonly readyTimeoutMs?: number;
  /** Start ovs-vswitchd with --disable-system: no kernel datapath, userspace (netdev) only. Default true. */
  readonly userspaceOnly?: boolean;
}

export class OvsDaemons {
  readonly runDir: string;
  readonly netns: string | undefined;
  private readonly opts: OvsDaemonsOptions;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly procs = new Map<OvsDaemon, ProcessHandle>();

  constructor(opts: OvsDaemonsOptions) {
    this.opts = opts;
    this.runDir = opts.runDir;
    this.netns = opts.netns;
    this.logger = (opts.logger ?? nullLogger).child({ component: 'ovs-daemons', runDir: opts.runDir });
    this.clock = opts.clock ?? systemClock;
  }

  /** The OVSDB unix socket, as a path. */
  get dbSocketPath(): string {
    return join(this.runDir, 'db.sock');
  }
  /** The OVSDB endpoint in OVS syntax (`unix:PATH`). */
  get dbEndpoint(): string {
    return `unix:${this.dbSocketPath}`;
  }
  /** The OpenFlow management socket of a bridge. */
  bridgeMgmtSocketPath(bridge: string): string {
    return join(this.runDir, `${bridge}.mgmt`);
  }
  /** The unixctl socket of a daemon (for ovs-appctl -t). */
  ctlSocketPath(daemon: OvsDaemon): string {
    return join(this.runDir, `${daemon}.ctl`);
  }
  logPath(daemon: OvsDaemon): string {
    return join(this.runDir, `${daemon}.log`);
  }
  pidPath(daemon: OvsDaemon): string {
    return join(this.runDir, `${daemon}.pid`);
  }
  get dbPath(): string {
    return join(this.runDir, 'conf.db');
  }

  /** Environment that points OVS tools at this instance. */
  get env(): Record<string, string> {
    return { OVS_RUNDIR: this.runDir, OVS_DBDIR: this.runDir, OVS_LOGDIR: this.runDir, OVS_SYSCONFDIR: this.runDir };
  }

  running(daemon: OvsDaemon): boolean {
    return this.procs.get(daemon)?.running() === true;
  }

  /**
   * Creates the database if needed and starts both daemons, waiting until each is ready. Idempotent
   * for daemons already running. On failure nothing started by this call is left running.
   */
  async start(): Promise<void> {
    mkdirSync(this.runDir, { recursive: true });
    const startedHere: OvsDaemon[] = [];
    try {
      if (!this.running('ovsdb-server')) {
        await this.startDaemon('ovsdb-server');
        startedHere.push('ovsdb-server');
      }
      if (!this.running('ovs-vswitchd')) {
        await this.startDaemon('ovs-vswitchd');
        startedHere.push('ovs-vswitchd');
      }
    } catch (err) {
      for (const d of startedHere.reverse()) await this.stopDaemon(d);
      throw err;
    }
  }

  /** Stops both daemons (vswitchd first). Idempotent. */
  async stop(): Promise<void> {
    await this.stopDaemon('ovs-vswitchd');
    await this.stopDaemon('ovsdb-server');
  }

  /** Stops and starts the given daemon(s); the database is kept. */
  async restart(which: OvsDaemon | 'both' = 'both'): Promise<void> {
    const list: OvsDaemon[] = which === 'both' ? ['ovs-vswitchd', 'ovsdb-server'] : [which];
    for (const d of list) await this.stopDaemon(d);
    for (const d of [...list].reverse()) await this.startDaemon(d);
  }

  /** Kills a daemon abruptly (fault injection) and waits until it is gone. */
  async kill(daemon: OvsDaemon, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.procs.get(daemon);
    if (p === undefined || !p.running()) return;
    process.kill(p.pid, signal);
    await p.exited;
  }

  /** Stops the daemons and removes the run directory. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.runDir, { recursive: true, force: true });
  }

  /**
   * Kills any daemons left running from `runDir` by a process that died (found through their pid
   * files), without needing the supervisor that started them. Idempotent.
   */
  static async killStale(runDir: string, clock: Clock = systemClock): Promise<number> {
    let killed = 0;
    for (const d of ['ovs-vswitchd', 'ovsdb-server'] as const) {
      const pid = readPid(join(runDir, `${d}.pid`));
      if (pid === undefined || !isOvsProcess(pid, d)) continue;
      try {
        process.kill(pid, 'SIGKILL');
        killed++;
      } catch {
        continue;
      }
      for (let i = 0; i < 50 && processAlive(pid); i++) await clock.sleep(20);
    }
    return killed;
  }

  private async startDaemon(daemon: OvsDaemon): Promise<void> {
    await OvsDaemons.killStaleOne(this.runDir, daemon, this.clock);
    let argv: string[];
    if (daemon === 'ovsdb-server') {
      await this.ensureDatabase();
      rmSync(this.dbSocketPath, { force: true });
      argv = [
        'ovsdb-server',
        this.dbPath,
        `--remote=punix:${this.dbSocketPath}`,
        `--pidfile=${this.pidPath(daemon)}`,
        `--unixctl=${this.ctlSocketPath(daemon)}`,
        `--log-file=${this.logPath(daemon)}`,
        '-vconsole:off',
      ];
    } else {
      argv = [
        'ovs-vswitchd',
        this.dbEndpoint,
        `--pidfile=${this.pidPath(daemon)}`,
        `--unixctl=${this.ctlSocketPath(daemon)}`,
        `--log-file=${this.logPath(daemon)}`,
        '-vconsole:off',
        ...(this.opts.userspaceOnly === false ? [] : ['--disable-system']),
      ];
      rmSync(this.ctlSocketPath(daemon), { force: true });
    }
    const full = [...netnsExecPrefix(this.netns), ...argv];
    const [cmd, ...args] = full as [string, ...string[]];
    this.logger.debug('starting', { daemon, netns: this.netns });
    let proc: ProcessHandle;
    try {
      proc = await this.opts.launcher.launch(cmd, args, { env: this.env, logFile: join(this.runDir, `${daemon}.out`) });
    } catch (err) {
      throw new OvsDaemonError('OVS_NOT_INSTALLED', `cannot start ${daemon}: ${errorMessage(err)}`, { cause: err });
    }
    this.procs.set(daemon, proc);
    const socket = daemon === 'ovsdb-server' ? this.dbSocketPath : this.ctlSocketPath(daemon);
    try {
      await this.waitReady(daemon, proc, socket);
    } catch (err) {
      await proc.stop(1000);
      this.procs.delete(daemon);
      throw err;
    }
    if (daemon === 'ovsdb-server') {
      // Initialize the Open_vSwitch root row and record the versions, as `ovs-ctl start` does.
      const version = await this.ovsVersion();
      await this.opts.runner.run(
        'ovs-vsctl',
        [
          `--db=${this.dbEndpoint}`,
          '--no-wait',
          'init',
          ...(version === undefined ? [] : ['--', 'set', 'Open_vSwitch', '.', `ovs_version=${version}`]),
        ],
        { timeoutMs: 10_000 },
      );
    }
    this.logger.info('started', { daemon, pid: proc.pid, netns: this.netns });
  }

  /** The installed ovs-vswitchd's version ("3.1.0"), or undefined when it cannot be read. */
  private async ovsVersion(): Promise<string | undefined> {
    try {
      const out = await this.opts.runner.run('ovs-vswitchd', ['--version'], { timeoutMs: 5_000 });
      return /\(Open vSwitch\)\s+(\S+)/.exec(out.stdout)?.[1];
    } catch (err) {
      this.logger.warn('cannot read the OVS version', { error: errorMessage(err) });
      return undefined;
    }
  }

  private async stopDaemon(daemon: OvsDaemon): Promise<void> {
    const p = this.procs.get(daemon);
    if (p !== undefined) {
      await p.stop(3000);
      this.procs.delete(daemon);
      this.logger.info('stopped', { daemon });
    }
    await OvsDaemons.killStaleOne(this.runDir, daemon, this.clock);
  }

  private static async killStaleOne(runDir: string, daemon: OvsDaemon, clock: Clock): Promise<void> {
    const pid = readPid(join(runDir, `${daemon}.pid`));
    if (pid !== undefined && isOvsProcess(pid, daemon)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        return;
      }
      for (let i = 0; i < 50 && processAlive(pid); i++) await clock.sleep(20);
    }
  }

  private async ensureDatabase(): Promise<void> {
    if (existsSync(this.dbPath)) return;
    const schema = this.opts.schemaPath ?? DEFAULT_OVS_SCHEMA;
    if (!existsSync(schema)) {
      throw new OvsDaemonError('OVS_NOT_INSTALLED', `OVS schema ${schema} not found: is openvswitch-switch installed?`);
    }
    await this.opts.runner.run('ovsdb-tool', ['create', this.dbPath, schema]);
  }

  private async waitReady(daemon: OvsDaemon, proc: ProcessHandle, socket: string): Promise<void> {
    const deadline = this.clock.monotonic() + (this.opts.readyTimeoutMs ?? 15_000);
    while (this.clock.monotonic() < deadline) {
      if (!proc.running()) {
        const info = await proc.exited;
        throw new OvsDaemonError(
          'OVS_START_FAILED',
          `${daemon} exited during start-up (code ${info.code}, signal ${info.signal}); see ${this.logPath(daemon)}: ${lastLines(this.logPath(daemon))}`,
        );
      }
      if (await canConnect(socket)) return;
      await this.clock.sleep(20);
    }
    throw new OvsDaemonError(
      'OVS_START_FAILED',
      `${daemon} not ready after ${this.opts.readyTimeoutMs ?? 15_000}ms; see ${this.logPath(daemon)}`,
    );
  }
}

function canConnect(path: string): Promise<boolean> {
  if (!existsSync(path)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function readPid(path: string): number | undefined {
  try {
    const n = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \([^)]*\) Z/.test(stat); // a zombie is gone for our purposes
  } catch {
    return false;
  }
}

function isOvsProcess(pid: number, daemon: OvsDaemon): boolean {
  try {
    return processAlive(pid) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(daemon);
  } catch {
    return false;
  }
}

function lastLines(path: string, n = 5): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-n).join(' | ');
  } catch {
    return '(no log)';
  }
}
