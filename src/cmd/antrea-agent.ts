/**
 * antrea-agent: the composition root of the Node agent. It reads antrea-agent.conf, picks the
 * platform strategy (the only place that asks which OS this is), builds the Node config source and
 * runs the agent until SIGTERM or SIGINT, then shuts down cleanly.
 *
 *   antrea-agent --config FILE [--node-name NAME] [--pod-cidr CIDR]... [--node-ip IP]...
 *                [--log-level info|debug|trace|N] [--log-format json|text]
 *   antrea-agent --config FILE --cleanup
 *
 * --cleanup undoes what the agent leaves on the host's networking (the userspace datapath's uplink
 * bridge br-phy: the Node's addresses and routes go back to the uplink) and exits; run it with the
 * agent stopped, when removing antrea from the Node (src/common/agent/cleanup.ts).
 *
 * The Node's name defaults to $NODE_NAME (as in Antrea's DaemonSet), then the host name. Pod CIDRs
 * and Node IPs come from the flags (a static Node config source). With
 * `clientConnection.kubeconfig` set, the agent watches the cluster's Nodes through that API server
 * and routes to the other Nodes' Pod CIDRs (NodeRoute controller); without it, it is a single Node.
 * NetworkPolicies come from antrea-controller (--controller-url, with the CA bundle and token files;
 * the last complete set is kept in <stateDir>/networkpolicy/snapshot for a start while the
 * controller is unreachable) or from --policy-file (JSON controlplane objects, re-read on change);
 * without either no policy is enforced. Set ANTREA_CRASH_POINT to kill the agent at a named step
 * (fault-injection tests).
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { Agent, type AgentOptions } from '../common/agent/agent.ts';
import {
  type ControllerEndpoint,
  PolicyWatcher,
  SnapshotStore,
  StatusReporter,
  tokenFromFile,
} from '../common/agent/controlplane/index.ts';
import { type AgentConfig, ConfigError, defaultAgentConfig, parseAgentConfig } from '../common/agent/config.ts';
import { StaticNodeConfigSource } from '../common/agent/node-config.ts';
import { cleanupNode } from '../common/agent/cleanup.ts';
import type { PolicyEventHandler } from '../common/agent/networkpolicy/controller.ts';
import { FilePolicySource } from '../common/agent/networkpolicy/file-source.ts';
import type { PlatformPaths, PlatformStrategy } from '../common/host/platform.ts';
import { crashPointsFromEnv } from '../common/util/crash.ts';
import { errorMessage, isAntreaError } from '../common/util/errors.ts';
import { type CommandRunner, createHelperRunner } from '../common/util/exec.ts';
import { InformerNodeSource } from '../common/agent/noderoute/node-source.ts';
import { kubeListWatch, loadKubeConfig, ResourcePaths } from '../common/k8s/client.ts';
import { createLogger, type Logger, parseLogLevel } from '../common/util/log.ts';

export const USAGE = `usage: antrea-agent --config FILE [--node-name NAME] [--pod-cidr CIDR]... [--node-ip IP]...
                    [--log-level LEVEL] [--log-format json|text]
       antrea-agent --config FILE --cleanup
                    [--controller-url https://HOST:PORT --controller-ca FILE --controller-token-file FILE
                     [--controller-server-name NAME] | --policy-file FILE]`;

/**
 * This OS's strategy module, loaded only here: the other OS's native modules do not load (netlink
 * and koffi's libc have no Windows build; the Linux strategy imports them at module load).
 */
async function platformModule(): Promise<
  | { os: 'linux'; mod: typeof import('../platform/linux/platform.ts') }
  | { os: 'windows'; mod: typeof import('../platform/windows/platform.ts') }
> {
  if (process.platform === 'linux') return { os: 'linux', mod: await import('../platform/linux/platform.ts') };
  if (process.platform === 'win32') return { os: 'windows', mod: await import('../platform/windows/platform.ts') };
  throw new Error(`antrea-agent: no platform strategy for ${process.platform}`);
}

/** Antrea's default locations for this OS. */
function platformPaths(p: Awaited<ReturnType<typeof platformModule>>): PlatformPaths {
  return p.os === 'linux' ? p.mod.LINUX_PATHS : p.mod.WINDOWS_PATHS;
}

function createPlatform(
  p: Awaited<ReturnType<typeof platformModule>>,
  logger: Logger,
  config: AgentConfig,
  runner: CommandRunner,
): PlatformStrategy {
  if (p.os === 'windows') {
    return p.mod.createWindowsPlatform({
      logger,
      routing: {
        gatewayName: config.hostGateway,
        bridgeName: config.ovsBridge,
        trafficEncapMode: config.trafficEncapMode,
        noSNAT: config.noSNAT,
        transportCIDRs: config.transportInterfaceCIDRs,
      },
    });
  }
  return p.mod.createLinuxPlatform({ logger, runner });
}

export interface ParsedFlags {
  readonly configPath: string;
  readonly nodeName: string;
  readonly podCIDRs: string[];
  readonly nodeIPs: string[];
  readonly logLevel: string;
  readonly logFormat: 'json' | 'text';
  /** Restore the host's networking (the uplink) and exit instead of running the agent. */
  readonly cleanup: boolean;
  /** This Node's controlplane objects from a file (until the controller connection is wired). */
  readonly policyFile: string | undefined;
  /** antrea-controller's API (https://host:10349), its CA bundle file and the agent's token file. */
  readonly controller:
    | { readonly url: string; readonly caFile: string; readonly tokenFile: string; readonly serverName?: string }
    | undefined;
}

export function parseFlags(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ParsedFlags {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      config: { type: 'string' },
      'node-name': { type: 'string' },
      'pod-cidr': { type: 'string', multiple: true },
      'node-ip': { type: 'string', multiple: true },
      'log-level': { type: 'string' },
      'log-format': { type: 'string' },
      'policy-file': { type: 'string' },
      'controller-url': { type: 'string' },
      'controller-ca': { type: 'string' },
      'controller-token-file': { type: 'string' },
      'controller-server-name': { type: 'string' },
      help: { type: 'boolean' },
      cleanup: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help === true) throw new Error(USAGE);
  if (values.config === undefined) throw new Error(`--config is required\n${USAGE}`);
  const format = values['log-format'] ?? 'json';
  if (format !== 'json' && format !== 'text') throw new Error(`--log-format: must be json or text, got ${format}`);
  return {
    configPath: values.config,
    nodeName: values['node-name'] ?? env['NODE_NAME'] ?? hostname(),
    podCIDRs: values['pod-cidr'] ?? [],
    nodeIPs: values['node-ip'] ?? [],
    logLevel: values['log-level'] ?? 'info',
    logFormat: format,
    cleanup: values.cleanup === true,
    policyFile: values['policy-file'],
    controller: controllerFlags(values),
  };
}

function controllerFlags(v: Record<string, string | boolean | string[] | undefined>): ParsedFlags['controller'] {
  const url = v['controller-url'];
  const ca = v['controller-ca'];
  const token = v['controller-token-file'];
  const serverName = v['controller-server-name'];
  if (url === undefined) {
    if (ca !== undefined || token !== undefined || serverName !== undefined)
      throw new Error(
        `--controller-ca, --controller-token-file and --controller-server-name need --controller-url\n${USAGE}`,
      );
    return undefined;
  }
  if (typeof url !== 'string' || !/^https:\/\/[^/]+$/.test(url))
    throw new Error(`--controller-url: expected https://host:port, got ${String(url)}`);
  if (typeof ca !== 'string') throw new Error('--controller-url needs --controller-ca FILE (the CA bundle)');
  if (typeof token !== 'string') throw new Error('--controller-url needs --controller-token-file FILE');
  if (v['policy-file'] !== undefined) throw new Error('--policy-file and --controller-url are exclusive');
  return { url, caFile: ca, tokenFile: token, ...(typeof serverName === 'string' ? { serverName } : {}) };
}

/** Runs the agent until `signal` aborts. Resolves after a clean stop; rejects on a fatal error. */
export async function runAgent(argv: readonly string[], signal: AbortSignal): Promise<void> {
  const flags = parseFlags(argv, process.env);
  const logger = createLogger({
    level: parseLogLevel(flags.logLevel),
    format: flags.logFormat,
    fields: { node: flags.nodeName },
  });
  const strategy = await platformModule();
  const paths = platformPaths(strategy);
  const base = defaultAgentConfig({ cniSocket: paths.cniSocket, ovsRunDir: paths.ovsRunDir });
  const config: AgentConfig = parseAgentConfig(readFileSync(flags.configPath, 'utf8'), base, flags.configPath);
  // Commands (host-local, ipset, iptables) start from a small helper: spawning from the agent itself is slow.
  const runner = createHelperRunner();
  const platform = createPlatform(strategy, logger, config, runner);
  try {
    if (flags.cleanup) {
      await cleanupNode({ config, platform, logger });
      return;
    }
    const controller = flags.controller;
    const endpoint: ControllerEndpoint | undefined =
      controller === undefined
        ? undefined
        : {
            url: controller.url,
            ca: () => readFile(controller.caFile, 'utf8'),
            token: tokenFromFile(controller.tokenFile),
            ...(controller.serverName === undefined ? {} : { serverName: controller.serverName }),
          };
    const reporter =
      endpoint === undefined ? undefined : new StatusReporter({ endpoint, nodeName: flags.nodeName, logger });
    const agent = new Agent({
      config,
      platform,
      nodeConfigSource: new StaticNodeConfigSource({
        name: flags.nodeName,
        podCIDRs: flags.podCIDRs,
        nodeIPs: flags.nodeIPs,
      }),
      ...(config.clientConnection.kubeconfig === ''
        ? {}
        : {
            nodeSource: new InformerNodeSource({
              client: kubeListWatch(loadKubeConfig(config.clientConnection.kubeconfig), ResourcePaths.nodes),
              logger,
            }),
          }),
      runner,
      logger,
      crashPoints: crashPointsFromEnv(process.env),
      api: {
        ...(process.env['POD_NAME'] === undefined ? {} : { podName: process.env['POD_NAME'] }),
        ...(process.env['POD_NAMESPACE'] === undefined ? {} : { podNamespace: process.env['POD_NAMESPACE'] }),
      },
      ...policySource(flags, config, logger, endpoint, reporter),
    });
    await Promise.all([agent.run(signal), reporter?.run(signal)]);
  } finally {
    runner.close();
    await platform.close();
  }
}

/**
 * Where NetworkPolicies come from: antrea-controller's watch (with the on-disk snapshot under the
 * state directory as fallback when it is unreachable at start), or a policy file, or nothing.
 */
function policySource(
  flags: ParsedFlags,
  config: AgentConfig,
  logger: Logger,
  endpoint: ControllerEndpoint | undefined,
  reporter: StatusReporter | undefined,
): Pick<AgentOptions, 'policySource' | 'policyStatus'> {
  if (endpoint !== undefined) {
    return {
      policySource: (handler: PolicyEventHandler) =>
        new PolicyWatcher({
          endpoint,
          nodeName: flags.nodeName,
          handler,
          snapshot: new SnapshotStore({
            path: join(config.stateDir, 'networkpolicy', 'snapshot'),
            nodeName: flags.nodeName,
          }),
          logger,
        }),
      ...(reporter === undefined ? {} : { policyStatus: reporter }),
    };
  }
  if (flags.policyFile !== undefined) {
    const path = flags.policyFile;
    return { policySource: (handler: PolicyEventHandler) => new FilePolicySource({ path, handler, logger }) };
  }
  return {};
}

if (import.meta.main) {
  const ac = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => ac.abort(new Error(`received ${sig}`)));
  runAgent(process.argv.slice(2), ac.signal).then(
    () => {
      process.exitCode = 0;
    },
    (err: unknown) => {
      const text = err instanceof ConfigError || !isAntreaError(err) ? errorMessage(err) : JSON.stringify(err);
      console.error(`antrea-agent: ${text}`);
      process.exitCode = 1;
    },
  );
}
