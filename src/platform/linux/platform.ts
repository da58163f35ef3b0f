/**
 * The Linux platform strategy (createLinuxPlatform): netlink for links, addresses and routes, koffi
 * for setns and the packet/ethtool calls, /proc/sys for sysctls. It acts on the network namespace
 * the agent process runs in.
 */
import type { PlatformStrategy } from '../../common/host/platform.ts';
import { type Clock, systemClock } from '../../common/util/clock.ts';
import { type CommandRunner, createCommandRunner } from '../../common/util/exec.ts';
import { type Logger, nullLogger } from '../../common/util/log.ts';
import { Netlink } from './netlink.ts';
import { LinuxNodeNetwork } from './node-network.ts';
import { LinuxPodInterfaces } from './pod-interfaces.ts';
import { LinuxServiceNetwork } from './service-network.ts';
import { LinuxRouteClient } from './routes.ts';
import { LINUX_CAPABILITIES, LINUX_PATHS } from './capabilities.ts';

export { LINUX_CAPABILITIES, LINUX_PATHS };

export interface LinuxPlatformOptions {
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Root of the sysctl tree (default /proc/sys). */
  readonly procSys?: string;
  /**
   * Runs ip, ipset and iptables for the route client (default: a plain command runner) and the
   * Service host side (without a runner there is no serviceNetwork).
   */
  readonly runner?: CommandRunner;
}

export function createLinuxPlatform(opts: LinuxPlatformOptions = {}): PlatformStrategy {
  const logger = opts.logger ?? nullLogger;
  const clock = opts.clock ?? systemClock;
  const host = Netlink.open();
  return {
    os: 'linux',
    capabilities: LINUX_CAPABILITIES,
    paths: LINUX_PATHS,
    nodeNetwork: new LinuxNodeNetwork({
      host,
      logger,
      clock,
      ...(opts.procSys === undefined ? {} : { procSys: opts.procSys }),
    }),
    podInterfaces: new LinuxPodInterfaces({ host, logger, clock }),
    routes: new LinuxRouteClient({ host, runner: opts.runner ?? createCommandRunner(), logger }),
    ...(opts.runner === undefined ? {} : { serviceNetwork: new LinuxServiceNetwork({ runner: opts.runner, logger }) }),
    close() {
      host.close();
      return Promise.resolve();
    },
  };
}
