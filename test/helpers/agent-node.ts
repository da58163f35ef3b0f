/**
 * A real Node for integration tests and benchmarks: a network namespace with an uplink holding the
 * Node IP, a private OVS (userspace datapath) inside it, the antrea-cni plugin installed into
 * private CNI bin/conf directories, and the antrea-agent process (src/cmd/antrea-agent.ts) started
 * inside the namespace with its own socket and state directory. Pods are network namespaces; the
 * plugin is invoked exactly as a container runtime does (environment + stdin). Everything is
 * removed at teardown.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { installCni, type PluginForm } from '../../src/common/cni/install.ts';
import type { CommandRunner, ProcessHandle } from '../../src/common/util/exec.ts';
import type { OvsDaemons } from '../../src/platform/linux/ovs-daemons.ts';
import { launcher, runner, shortTempDir, tempNetns, tempOvs } from './env.ts';
import { NO_BUN, STANDALONE } from './bun.ts';

const ROOT = join(import.meta.dirname, '..', '..');
export const AGENT_ENTRY = join(ROOT, 'src', 'cmd', 'antrea-agent.ts');
export const PLUGIN_ENTRY = join(ROOT, 'src', 'cmd', 'antrea-cni.ts');
/** Where Debian's containernetworking-plugins live (host-local, loopback). */
export const CNI_PLUGIN_DIR = '/usr/lib/cni';

export interface AgentNodeOptions {
  /** The Node's name (default node-1). */
  readonly nodeName?: string;
  readonly podCIDR?: string;
  readonly nodeIP?: string;
  /** Extra antrea-agent.conf lines. */
  readonly extraConfig?: string;
  readonly podNetworkWaitTimeoutMs?: number;
  /** Extra antrea-agent flags (e.g. --policy-file). */
  readonly extraArgs?: readonly string[];
  /**
   * How the installed plugin runs: `standalone` (the executable built with Bun, as install-cni
   * installs it; the default where Bun is installed) or `node`.
   */
  readonly plugin?: 'standalone' | 'node';
}

export interface PodRef {
  readonly containerId: string;
  /** Path of the Pod's network namespace (CNI_NETNS). */
  readonly netns: string;
  readonly name: string;
  readonly namespace?: string;
  readonly ifname?: string;
}

export interface CniCallOptions {
  readonly version?: string;
  /** Merged into the network configuration. */
  readonly config?: Record<string, unknown>;
  /** Replaces the whole stdin. */
  readonly stdin?: string;
  /** Replaces or removes (undefined) environment variables. */
  readonly env?: Record<string, string | undefined>;
  /** Who execs the plugin (default: this process). */
  readonly runner?: CommandRunner;
}

export interface CniCallResult {
  readonly exitCode: number;
  readonly stdout: string;
  /** Parsed stdout (result or error), undefined when empty. */
  readonly json: Record<string, unknown> | undefined;
  readonly ms: number;
}

/** What AgentNode needs from a test: somewhere to register cleanups (tap's Test, or a benchmark's). */
export type Teardown = Pick<Test, 'teardown'>;

/** Cleanups for code outside tap (benchmarks): run them in reverse with {@link Cleanup.run}. */
export class Cleanup implements Teardown {
  private readonly fns: (() => unknown)[] = [];
  teardown(fn: () => unknown): void {
    this.fns.push(fn);
  }
  async run(): Promise<void> {
    for (const fn of this.fns.reverse()) {
      try {
        await fn();
      } catch {
        // keep cleaning
      }
    }
  }
}

export class AgentNode {
  readonly ns: string;
  readonly ovs: OvsDaemons;
  readonly dir: string;
  readonly podCIDR: string;
  readonly nodeIP: string;
  readonly nodeName: string;
  readonly gatewayIP: string;
  readonly configPath: string;
  readonly socket: string;
  readonly stateDir: string;
  readonly binDir: string;
  readonly confDir: string;
  /** How the installed plugin runs (set by create). */
  pluginForm: PluginForm = 'node-source';
  private proc: ProcessHandle | undefined;
  private readonly t: Teardown;
  private starts = 0;
  private readonly extraArgs: readonly string[];

  private constructor(t: Teardown, ns: string, ovs: OvsDaemons, dir: string, opts: AgentNodeOptions) {
    this.t = t;
    this.ns = ns;
    this.ovs = ovs;
    this.dir = dir;
    this.podCIDR = opts.podCIDR ?? '10.10.1.0/24';
    this.nodeIP = opts.nodeIP ?? '192.0.2.10';
    this.nodeName = opts.nodeName ?? 'node-1';
    this.gatewayIP = this.podCIDR.replace(/\.0\/\d+$/, '.1');
    this.configPath = join(dir, 'antrea-agent.conf');
    this.socket = join(dir, 'cni.sock');
    this.stateDir = join(dir, 'state');
    this.binDir = join(dir, 'bin');
    this.confDir = join(dir, 'net.d');
    this.extraArgs = opts.extraArgs ?? [];
  }

  /** Builds the Node (namespace, uplink, OVS, plugin, configuration); the agent is not started. */
  static async create(t: Teardown, opts: AgentNodeOptions = {}): Promise<AgentNode> {
    // The env helpers only register teardowns.
    const tt = t as Test;
    const ovs = await tempOvs(tt);
    const ns = ovs.netns;
    if (ns === undefined) throw new Error('tempOvs gave no namespace');
    const dir = shortTempDir(tt, 'an');
    const node = new AgentNode(t, ns, ovs, dir, opts);
    await runner.run('ip', ['-n', ns, 'link', 'add', 'uplink', 'type', 'veth', 'peer', 'name', 'uplink-peer']);
    await runner.run('ip', ['-n', ns, 'addr', 'add', `${node.nodeIP}/24`, 'dev', 'uplink']);
    await runner.run('ip', ['-n', ns, 'link', 'set', 'uplink', 'up']);
    writeFileSync(
      node.configPath,
      [
        `ovsRunDir: ${ovs.runDir}`,
        `cniSocket: ${node.socket}`,
        `stateDir: ${node.stateDir}`,
        'ovsDatapathType: netdev',
        'hostProcPathPrefix: ""',
        `cniPluginDirs: [${CNI_PLUGIN_DIR}]`,
        `podNetworkWaitTimeoutMs: ${opts.podNetworkWaitTimeoutMs ?? 30_000}`,
        opts.extraConfig ?? '',
      ].join('\n'),
    );
    const standalone = (opts.plugin ?? (STANDALONE === undefined ? 'node' : 'standalone')) === 'standalone';
    if (standalone && STANDALONE === undefined) throw new Error(`a standalone plugin needs Bun: ${String(NO_BUN)}`);
    const installed = await installCni({
      ...(standalone && STANDALONE !== undefined ? { standalone: STANDALONE } : {}),
      binDir: node.binDir,
      confDir: node.confDir,
      nodePath: process.execPath,
      pluginEntry: PLUGIN_ENTRY,
      cniSocket: node.socket,
      compileCacheDir: join(dir, 'cache'),
      copyPlugins: ['loopback'],
      copyFrom: CNI_PLUGIN_DIR,
      runner,
    });
    if (installed.notes.length > 0) throw new Error(`install-cni: ${installed.notes.join('; ')}`);
    node.pluginForm = installed.form;
    t.teardown(() => node.kill('SIGKILL'));
    return node;
  }

  get logPath(): string {
    return join(this.dir, 'agent.log');
  }

  log(): string {
    return existsSync(this.logPath) ? readFileSync(this.logPath, 'utf8') : '';
  }

  get pid(): number | undefined {
    return this.proc?.running() === true ? this.proc.pid : undefined;
  }

  /** Starts the agent (optionally armed with a crash point) and waits until STATUS succeeds. */
  async start(opts: { crashPoint?: string; waitReady?: boolean } = {}): Promise<void> {
    if (this.proc?.running() === true) throw new Error('the agent is already running');
    this.starts++;
    this.proc = await launcher.launch(
      'ip',
      [
        'netns',
        'exec',
        this.ns,
        process.execPath,
        AGENT_ENTRY,
        '--config',
        this.configPath,
        '--node-name',
        this.nodeName,
        '--pod-cidr',
        this.podCIDR,
        '--node-ip',
        this.nodeIP,
        '--log-level',
        'debug',
        ...this.extraArgs,
      ],
      {
        logFile: this.logPath,
        env: opts.crashPoint === undefined ? { ANTREA_CRASH_POINT: '' } : { ANTREA_CRASH_POINT: opts.crashPoint },
      },
    );
    if (opts.waitReady !== false) await this.waitReady();
  }

  /** Polls STATUS through the plugin until it answers 0. */
  async waitReady(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.proc?.running() !== true) {
        throw new Error(`the agent exited during start-up:\n${this.log().split('\n').slice(-15).join('\n')}`);
      }
      const r = await this.cni('STATUS', undefined, { version: '1.1.0' });
      if (r.exitCode === 0) return;
      if (Date.now() > deadline) throw new Error(`agent not ready after ${timeoutMs}ms: ${r.stdout}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  /** Stops the agent gracefully (SIGTERM); resolves with its exit code. */
  async stop(): Promise<number | null> {
    const p = this.proc;
    if (p === undefined) return null;
    const info = await p.stop(10_000);
    return info.code;
  }

  /** Kills the agent (default SIGKILL) and waits until it is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc;
    if (p === undefined || !p.running()) return;
    process.kill(p.pid, signal);
    await p.exited;
  }

  /** Waits for the agent process to exit (e.g. at a crash point). */
  async exited(timeoutMs = 30_000): Promise<void> {
    const p = this.proc;
    if (p === undefined) return;
    await Promise.race([
      p.exited,
      new Promise((_, rej) => setTimeout(() => rej(new Error('the agent did not exit')), timeoutMs).unref()),
    ]);
  }

  /** A fresh Pod network namespace (removed at teardown). */
  async podNetns(t: Teardown = this.t): Promise<string> {
    return `/run/netns/${await tempNetns(t as Test, 'pod-')}`;
  }

  /** The network configuration a runtime derives from the conflist for this plugin. */
  pluginConfig(version: string, extra: Record<string, unknown> = {}): string {
    const list = JSON.parse(readFileSync(join(this.confDir, '10-antrea.conflist'), 'utf8')) as {
      name: string;
      plugins: Record<string, unknown>[];
    };
    return JSON.stringify({ cniVersion: version, name: list.name, ...list.plugins[0], ...extra });
  }

  /** Runs the installed plugin as a runtime does: CNI_* environment and the configuration on stdin. */
  async cni(command: string, pod: PodRef | undefined, o: CniCallOptions = {}): Promise<CniCallResult> {
    const env: Record<string, string> = {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      CNI_COMMAND: command,
      CNI_PATH: CNI_PLUGIN_DIR,
    };
    if (pod !== undefined) {
      env['CNI_CONTAINERID'] = pod.containerId;
      env['CNI_NETNS'] = pod.netns;
      env['CNI_IFNAME'] = pod.ifname ?? 'eth0';
      env['CNI_ARGS'] =
        `IgnoreUnknown=1;K8S_POD_NAMESPACE=${pod.namespace ?? 'default'};K8S_POD_NAME=${pod.name};K8S_POD_INFRA_CONTAINER_ID=${pod.containerId}`;
    }
    const overrides = o.env ?? {};
    const finalEnv = Object.fromEntries(
      [...Object.entries(env), ...Object.entries(overrides)].filter(
        (e): e is [string, string] => e[1] !== undefined && !(e[0] in overrides && overrides[e[0]] === undefined),
      ),
    );
    const stdin = o.stdin ?? this.pluginConfig(o.version ?? '1.0.0', o.config);
    const t0 = performance.now();
    const r = await (o.runner ?? runner).run(join(this.binDir, 'antrea'), [], {
      env: finalEnv,
      replaceEnv: true,
      input: stdin,
      okExitCodes: [1],
      timeoutMs: 120_000,
    });
    const ms = performance.now() - t0;
    const text = r.stdout.trim();
    return {
      exitCode: r.exitCode,
      stdout: text,
      json: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>),
      ms,
    };
  }

  /** Runs a command inside a Pod namespace. */
  async inPod(
    netns: string,
    cmd: string,
    args: readonly string[],
    okExitCodes: number[] = [],
  ): Promise<{ stdout: string; exitCode: number }> {
    const name = netns.replace(/^\/run\/netns\//, '');
    return runner.run('ip', ['netns', 'exec', name, cmd, ...args], { okExitCodes, timeoutMs: 30_000 });
  }

  /** OVS ports on br-int (other than the bridge's own). */
  async ports(): Promise<string[]> {
    const out = await runner.run('ovs-vsctl', [`--db=${this.ovs.dbEndpoint}`, 'list-ports', 'br-int'], {
      timeoutMs: 20_000,
    });
    return out.stdout
      .split('\n')
      .filter((l) => l !== '')
      .sort();
  }

  /** A port's external_ids. */
  async portExternalIds(name: string): Promise<Record<string, string>> {
    const out = await runner.run(
      'ovs-vsctl',
      [`--db=${this.ovs.dbEndpoint}`, '--format=json', '--columns=external_ids', 'list', 'Port', name],
      { timeoutMs: 20_000 },
    );
    const doc = JSON.parse(out.stdout) as { data: [['map', [string, string][]]][] };
    return Object.fromEntries(doc.data[0]?.[0][1] ?? []);
  }

  async ofport(name: string): Promise<number> {
    const out = await runner.run('ovs-vsctl', [`--db=${this.ovs.dbEndpoint}`, 'get', 'Interface', name, 'ofport'], {
      timeoutMs: 20_000,
    });
    return Number(out.stdout.trim());
  }

  /** `ovs-ofctl dump-flows` lines (no stats) of br-int. */
  async flows(): Promise<string[]> {
    const out = await runner.run(
      'ovs-ofctl',
      ['-O', 'OpenFlow15', '--no-stats', 'dump-flows', `unix:${this.ovs.bridgeMgmtSocketPath('br-int')}`],
      { timeoutMs: 30_000 },
    );
    return out.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
  }

  /** Links in the Node namespace: name → kind (veth, tun, ...). */
  async links(): Promise<Map<string, string>> {
    const out = await runner.run('ip', ['-n', this.ns, '-d', '-o', 'link', 'show'], { timeoutMs: 20_000 });
    const m = new Map<string, string>();
    for (const line of out.stdout.split('\n')) {
      const hit = /^\d+: ([^:@]+)[@:]/.exec(line);
      if (hit === null) continue;
      const kind = /\s(veth|tun|openvswitch) /.exec(line)?.[1] ?? 'other';
      m.set(hit[1]!, kind);
    }
    return m;
  }

  /** host-local reservations: IP → "containerID/ifname". */
  reservations(): Map<string, string> {
    const out = new Map<string, string>();
    const base = join(this.stateDir, 'networks');
    if (!existsSync(base)) return out;
    for (const net of readdirSync(base)) {
      for (const f of readdirSync(join(base, net))) {
        if (!/^\d+\.\d+\.\d+\.\d+$/.test(f)) continue;
        const [id = '', ifn = ''] = readFileSync(join(base, net, f), 'utf8').split(/\r?\n/);
        out.set(f, `${id}/${ifn}`);
      }
    }
    return out;
  }

  /** Pending-ADD journal records. */
  pendingRecords(): string[] {
    const d = join(this.stateDir, 'cni-pending');
    return existsSync(d) ? readdirSync(d) : [];
  }

  /**
   * The consistency invariants after any sequence of operations and crashes: every Pod port has
   * its veth, a flow set and the IP reservation of its container; every reservation and every
   * veth belongs to a Pod port; no Pod flow points to a missing port; no pending ADD.
   * Returns the violations (empty when consistent).
   */
  async violations(): Promise<string[]> {
    const problems: string[] = [];
    const ports = (await this.ports()).filter((p) => p !== 'antrea-gw0' && p !== 'antrea-tun0');
    const links = await this.links();
    const reservations = this.reservations();
    const flows = await this.flows();
    const ofports = new Set<number>();
    const podIps = new Set<string>();
    for (const p of ports) {
      const ids = await this.portExternalIds(p);
      if (ids['antrea-type'] !== 'container') {
        problems.push(`port ${p} is not a container port`);
        continue;
      }
      const of = await this.ofport(p);
      ofports.add(of);
      if (!links.has(p)) problems.push(`port ${p} has no veth`);
      const ip = ids['ip-address'] ?? '';
      podIps.add(ip);
      const owner = reservations.get(ip);
      if (owner !== `${ids['container-id']}/eth0`)
        problems.push(`port ${p}: IP ${ip} is reserved by ${owner ?? 'nobody'}`);
      if (!flows.some((f) => f.includes(`priority=190,in_port=${of} `)))
        problems.push(`port ${p} (ofport ${of}) has no flows`);
    }
    for (const [ip, owner] of reservations) {
      if (!podIps.has(ip)) problems.push(`IP ${ip} is reserved by ${owner} but no Pod port holds it`);
    }
    for (const [name, kind] of links) {
      if (kind === 'veth' && name !== 'uplink' && name !== 'uplink-peer' && !ports.includes(name)) {
        problems.push(`veth ${name} is not attached to OVS`);
      }
    }
    for (const f of flows) {
      const m = /priority=190,in_port=(\d+) /.exec(f);
      if (m !== null && !ofports.has(Number(m[1]))) problems.push(`a Pod flow points to missing ofport ${m[1]}: ${f}`);
    }
    for (const r of this.pendingRecords()) problems.push(`pending ADD left: ${r}`);
    return problems;
  }

  get startCount(): number {
    return this.starts;
  }
}
