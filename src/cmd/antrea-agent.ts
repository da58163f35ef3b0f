/**
 * antrea-agent: the composition root of the Node agent. It reads antrea-agent.conf, picks the
 * platform strategy (the only place that asks which OS this is), builds the Node config source and
 * runs the agent until SIGTERM or SIGINT, then shuts down cleanly.
 *
 *   antrea-agent --config FILE [--node-name NAME] [--pod-cidr CIDR]... [--node-ip IP]...
 *                [--log-level info|debug|trace|N] [--log-format json|text]
 *
 * The Node's name defaults to $NODE_NAME (as in Antrea's DaemonSet), then the host name. Pod CIDRs
 * and Node IPs come from the flags (a static Node config source) until the Kubernetes-backed source
 * is wired. Set ANTREA_CRASH_POINT to kill the agent at a named step (fault-injection tests).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { Agent } from '../common/agent/agent.ts';
import { type AgentConfig, ConfigError, defaultAgentConfig, parseAgentConfig } from '../common/agent/config.ts';
import { StaticNodeConfigSource } from '../common/agent/node-config.ts';
import type { PlatformPaths, PlatformStrategy } from '../common/host/platform.ts';
import { crashPointsFromEnv } from '../common/util/crash.ts';
import { errorMessage, isAntreaError } from '../common/util/errors.ts';
import { createHelperRunner } from '../common/util/exec.ts';
import { createLogger, type Logger, parseLogLevel } from '../common/util/log.ts';
import { createLinuxPlatform, LINUX_PATHS } from '../platform/linux/platform.ts';
import { createWindowsPlatform, WINDOWS_PATHS } from '../platform/windows/platform.ts';

export const USAGE = `usage: antrea-agent --config FILE [--node-name NAME] [--pod-cidr CIDR]... [--node-ip IP]...
                    [--log-level LEVEL] [--log-format json|text]`;

/** Antrea's default locations for this OS. */
function platformPaths(): PlatformPaths {
  if (process.platform === 'linux') return LINUX_PATHS;
  if (process.platform === 'win32') return WINDOWS_PATHS;
  throw new Error(`antrea-agent: no platform strategy for ${process.platform}`);
}

function createPlatform(logger: Logger, config: AgentConfig): PlatformStrategy {
  if (process.platform === 'win32') {
    return createWindowsPlatform({
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
  return createLinuxPlatform({ logger });
}

export interface ParsedFlags {
  readonly configPath: string;
  readonly nodeName: string;
  readonly podCIDRs: string[];
  readonly nodeIPs: string[];
  readonly logLevel: string;
  readonly logFormat: 'json' | 'text';
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
      help: { type: 'boolean' },
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
  };
}

/** Runs the agent until `signal` aborts. Resolves after a clean stop; rejects on a fatal error. */
export async function runAgent(argv: readonly string[], signal: AbortSignal): Promise<void> {
  const flags = parseFlags(argv, process.env);
  const logger = createLogger({
    level: parseLogLevel(flags.logLevel),
    format: flags.logFormat,
    fields: { node: flags.nodeName },
  });
  const paths = platformPaths();
  const base = defaultAgentConfig({ cniSocket: paths.cniSocket, ovsRunDir: paths.ovsRunDir });
  const config: AgentConfig = parseAgentConfig(readFileSync(flags.configPath, 'utf8'), base, flags.configPath);
  const platform = createPlatform(logger, config);
  // Commands (host-local) start from a small helper: spawning from the agent itself is slow.
  const runner = createHelperRunner();
  try {
    const agent = new Agent({
      config,
      platform,
      nodeConfigSource: new StaticNodeConfigSource({
        name: flags.nodeName,
        podCIDRs: flags.podCIDRs,
        nodeIPs: flags.nodeIPs,
      }),
      runner,
      logger,
      crashPoints: crashPointsFromEnv(process.env),
    });
    await agent.run(signal);
  } finally {
    runner.close();
    await platform.close();
  }
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
