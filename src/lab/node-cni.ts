/**
 * How a lab Node gets its Pod network: the CNI plugin installed into the Node's CNI directories (and,
 * for Antrea, the agent that serves it). The kubelet stand-in only ever sees the configuration list
 * and the plugins, exactly like a container runtime.
 *
 * - `bridge`: the reference plugins of containernetworking-plugins (bridge + host-local), no OVS and
 *   no agent, with Pod CIDR routes between Nodes set by the lab (kubenet-style). It needs nothing
 *   from antrea-ts, so the lab's own machinery (kubelet, runtime, probes, conformance runner) can be
 *   checked against a known-good plugin, and it is the baseline of the lab benchmark. It enforces
 *   no NetworkPolicy.
 * - `antrea`: antrea-ts itself, as on a real Node: `install-cni` writes the `antrea` plugin (plus
 *   loopback and host-local) and `10-antrea.conflist` into the Node's CNI directories, and an
 *   `antrea-agent` runs inside the Node's network namespace on the Node's private Open vSwitch,
 *   serving the plugin on a unix socket. The Node counts as started once the plugin's STATUS says
 *   the Pod network is ready.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Clock, systemClock } from '../common/util/clock.ts';
import { AntreaError } from '../common/util/errors.ts';
import type { CommandRunner, ProcessHandle, ProcessLauncher } from '../common/util/exec.ts';
import { type Logger, nullLogger } from '../common/util/log.ts';
import type { LabPaths } from './state.ts';
import { agentTrafficSettings, type LabEncap } from './topology.ts';

/** Where Debian's containernetworking-plugins are installed. */
export const SYSTEM_CNI_DIR = '/usr/lib/cni';

export interface NodeCniContext {
  readonly nodeName: string;
  readonly netns: string;
  readonly podCIDR: string;
  /** The Node's InternalIP (on its uplink). */
  readonly nodeIP: string;
  readonly paths: LabPaths;
  /** antrea-controller, when the lab runs one: where it listens, its CA bundle and this Node's agent token. */
  readonly controller?: { readonly url: string; readonly caFile: string; readonly tokenFile: string };
  /**
   * A kubeconfig for the lab's API server (as the Node's antrea-agent ServiceAccount), reachable from
   * inside the Node's namespace over the control subnet; absent when the lab has no RBAC for it.
   */
  readonly kubeconfig?: string;
}

export interface NodeCni {
  readonly kind: string;
  /**
   * The lab routes each Node's Pod CIDR to it (on the other Nodes of its subnet and on the router),
   * as kubenet's cloud routes do. Antrea routes (or tunnels) by itself, so it leaves this off.
   */
  readonly staticRoutes: boolean;
  /** Directories the runtime searches for plugins (CNI_PATH). */
  binDirs(ctx: NodeCniContext): string[];
  /**
   * Installs the plugin and its configuration list for the Node (and starts what serves it).
   * Resolves once the configuration list is in place. Idempotent.
   */
  start(ctx: NodeCniContext, signal: AbortSignal): Promise<void>;
  /** Stops what `start` started (files stay until the data directory is removed). Idempotent. */
  stop(ctx: NodeCniContext): Promise<void>;
  /**
   * SIGKILLs what `start` started, as a crash would (fault injection); resolves once it is gone.
   * Nothing restarts it until `start`. Absent when the CNI runs no process; a no-op when none runs.
   */
  kill?(ctx: NodeCniContext): Promise<void>;
  /** The processes `start` runs for the Node (name → pid), for the state file. */
  pids?(ctx: NodeCniContext): Record<string, number>;
}

function writeAtomically(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

/** The bridge + host-local configuration list of a Node. */
export function bridgeConflist(podCIDR: string, ipamDataDir: string): string {
  return (
    JSON.stringify(
      {
        cniVersion: '1.0.0',
        name: 'lab-bridge',
        plugins: [
          {
            type: 'bridge',
            bridge: 'cni0',
            isGateway: true,
            ipMasq: false,
            hairpinMode: true,
            ipam: {
              type: 'host-local',
              ranges: [[{ subnet: podCIDR }]],
              routes: [{ dst: '0.0.0.0/0' }],
              dataDir: ipamDataDir,
            },
          },
        ],
      },
      null,
      2,
    ) + '\n'
  );
}

export const bridgeCni: NodeCni = {
  kind: 'bridge',
  staticRoutes: true,
  binDirs: (ctx) => [ctx.paths.cniBinDir(ctx.nodeName), SYSTEM_CNI_DIR],
  start(ctx) {
    const conf = ctx.paths.cniConfDir(ctx.nodeName);
    mkdirSync(conf, { recursive: true });
    mkdirSync(ctx.paths.cniBinDir(ctx.nodeName), { recursive: true });
    writeAtomically(join(conf, '10-lab-bridge.conflist'), bridgeConflist(ctx.podCIDR, ctx.paths.ipamDir(ctx.nodeName)));
    return Promise.resolve();
  },
  stop: () => Promise.resolve(),
};

export type NodeCniErrorCode = 'AGENT_EXITED' | 'AGENT_NOT_READY';
export class NodeCniError extends AntreaError<NodeCniErrorCode> {}

export interface AntreaCniOptions {
  readonly runner: CommandRunner;
  readonly launcher: ProcessLauncher;
  /** argv that starts antrea-agent (node + src/cmd/antrea-agent.ts). */
  readonly agentCommand: readonly string[];
  /** argv of install-cni (node + src/cmd/install-cni.ts). */
  readonly installCniCommand: readonly string[];
  readonly encap: LabEncap;
  readonly serviceCIDR: string;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** How long an agent may take until STATUS succeeds (default 90 s). */
  readonly readyTimeoutMs?: number;
}

/** Where a Node's agent keeps its files (short: the CNI socket path is limited to 107 bytes). */
export function agentFiles(
  paths: LabPaths,
  node: string,
): {
  dir: string;
  config: string;
  socket: string;
  stateDir: string;
  log: string;
} {
  const dir = join(paths.nodeDir(node), 'agent');
  return {
    dir,
    config: join(dir, 'antrea-agent.conf'),
    socket: join(dir, 'cni.sock'),
    stateDir: join(dir, 'state'),
    log: join(paths.nodeDir(node), 'antrea-agent.log'),
  };
}

/** The antrea-agent.conf of a lab Node (Antrea's keys; every path inside the lab's data directory). */
export function antreaAgentConfig(ctx: NodeCniContext, encap: LabEncap, serviceCIDR: string): string {
  const f = agentFiles(ctx.paths, ctx.nodeName);
  const t = agentTrafficSettings(encap);
  return [
    '# Written by antrea-lab for one lab Node.',
    `ovsRunDir: ${ctx.paths.ovsRunDir(ctx.nodeName)}`,
    'ovsDatapathType: netdev',
    `cniSocket: ${f.socket}`,
    `stateDir: ${f.stateDir}`,
    `hostLocalDataDir: ${ctx.paths.ipamDir(ctx.nodeName)}`,
    `cniPluginDirs: [${SYSTEM_CNI_DIR}]`,
    'hostProcPathPrefix: ""',
    `trafficEncapMode: ${t.trafficEncapMode}`,
    `tunnelType: ${t.tunnelType}`,
    `serviceCIDR: ${serviceCIDR}`,
    // With the API server, the agent routes to the other Nodes and runs AntreaProxy (NodePort too).
    ...(ctx.kubeconfig === undefined
      ? []
      : ['clientConnection:', `  kubeconfig: ${ctx.kubeconfig}`, 'antreaProxy:', '  proxyAll: true']),
    '',
  ].join('\n');
}

function tail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** The Nodes' CNI is antrea-ts: install-cni, then one antrea-agent per Node namespace. */
export function antreaCni(o: AntreaCniOptions): NodeCni & { readonly kind: 'antrea' } {
  const agents = new Map<string, ProcessHandle>();
  const clock = o.clock ?? systemClock;
  const log = (o.logger ?? nullLogger).child({ component: 'lab-antrea-cni' });
  const [installCmd, ...installArgs] = o.installCniCommand;
  const [agentCmd, ...agentArgs] = o.agentCommand;
  if (installCmd === undefined || agentCmd === undefined) throw new Error('antreaCni: empty command');

  /** STATUS through the installed plugin, as a CNI 1.1 runtime asks it. */
  const status = async (ctx: NodeCniContext): Promise<{ ok: boolean; detail: string }> => {
    const plugin = join(ctx.paths.cniBinDir(ctx.nodeName), 'antrea');
    const r = await o.runner.run(plugin, [], {
      env: { CNI_COMMAND: 'STATUS', CNI_PATH: ctx.paths.cniBinDir(ctx.nodeName) },
      input: JSON.stringify({ cniVersion: '1.1.0', name: 'antrea', type: 'antrea' }),
      okExitCodes: [1, 2],
      timeoutMs: 10_000,
    });
    return { ok: r.exitCode === 0, detail: (r.stdout + r.stderr).trim() };
  };

  const waitReady = async (ctx: NodeCniContext, proc: ProcessHandle, signal: AbortSignal): Promise<void> => {
    const f = agentFiles(ctx.paths, ctx.nodeName);
    const deadline = clock.monotonic() + (o.readyTimeoutMs ?? 90_000);
    for (;;) {
      if (!proc.running()) {
        const info = await proc.exited;
        throw new NodeCniError(
          'AGENT_EXITED',
          `antrea-agent of ${ctx.nodeName} exited (code ${info.code}, signal ${info.signal}):\n${tail(f.log)}`,
        );
      }
      const s = existsSync(f.socket) ? await status(ctx) : { ok: false, detail: 'no CNI socket yet' };
      if (s.ok) return;
      if (clock.monotonic() > deadline) {
        throw new NodeCniError(
          'AGENT_NOT_READY',
          `antrea-agent of ${ctx.nodeName} not ready: ${s.detail}\n${tail(f.log)}`,
        );
      }
      await clock.sleep(200, signal);
    }
  };

  return {
    kind: 'antrea',
    staticRoutes: false,
    binDirs: (ctx) => [ctx.paths.cniBinDir(ctx.nodeName)],
    async start(ctx, signal) {
      if (agents.get(ctx.nodeName)?.running() === true) return;
      const f = agentFiles(ctx.paths, ctx.nodeName);
      mkdirSync(f.dir, { recursive: true });
      writeAtomically(f.config, antreaAgentConfig(ctx, o.encap, o.serviceCIDR));
      const installed = await o.runner.run(
        installCmd,
        [
          ...installArgs,
          '--bin-dir',
          ctx.paths.cniBinDir(ctx.nodeName),
          '--conf-dir',
          ctx.paths.cniConfDir(ctx.nodeName),
          '--cni-socket',
          f.socket,
          '--compile-cache',
          join(ctx.paths.compileCache, 'cni'),
          '--copy-plugins',
          'loopback,host-local',
          '--copy-from',
          SYSTEM_CNI_DIR,
        ],
        { timeoutMs: 60_000 },
      );
      // Which form the plugin took (the standalone executable, or on Node and why).
      log.info('CNI plugin installed', { node: ctx.nodeName, installCni: installed.stdout.trim() });
      const proc = await o.launcher.launch(
        'ip',
        [
          'netns',
          'exec',
          ctx.netns,
          agentCmd,
          ...agentArgs,
          '--config',
          f.config,
          '--node-name',
          ctx.nodeName,
          '--pod-cidr',
          ctx.podCIDR,
          '--node-ip',
          ctx.nodeIP,
          '--log-format',
          'text',
          ...(ctx.controller === undefined
            ? []
            : [
                '--controller-url',
                ctx.controller.url,
                '--controller-ca',
                ctx.controller.caFile,
                '--controller-token-file',
                ctx.controller.tokenFile,
              ]),
        ],
        { logFile: f.log, env: { NODE_COMPILE_CACHE: ctx.paths.compileCache } },
      );
      agents.set(ctx.nodeName, proc);
      log.info('antrea-agent started', { node: ctx.nodeName, pid: proc.pid });
      try {
        await waitReady(ctx, proc, signal);
      } catch (err) {
        // A Node that did not start leaves no agent behind.
        agents.delete(ctx.nodeName);
        await proc.stop(5_000);
        throw err;
      }
    },
    async stop(ctx) {
      const p = agents.get(ctx.nodeName);
      agents.delete(ctx.nodeName);
      if (p !== undefined) await p.stop(10_000);
    },
    async kill(ctx) {
      const p = agents.get(ctx.nodeName);
      if (p === undefined || !p.running()) return;
      process.kill(p.pid, 'SIGKILL');
      await p.exited;
      log.info('antrea-agent killed', { node: ctx.nodeName, pid: p.pid });
    },
    pids(ctx) {
      const p = agents.get(ctx.nodeName);
      return p?.running() === true ? { 'antrea-agent': p.pid } : {};
    },
  };
}
