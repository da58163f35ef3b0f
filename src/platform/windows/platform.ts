/**
 * The Windows platform strategy (createWindowsPlatform): HNS, NetTCPIP, NetNat and the firewall
 * through one PowerShell session (node-powershell), with Antrea's Windows paths: OVS's run
 * directory under C:\openvswitch, the CNI server on the named pipe \\.\pipe\cnisock.
 */
import { capabilitiesFrom, type PlatformStrategy } from '../../common/host/platform.ts';
import type { TrafficEncapMode } from '../../common/agent/config.ts';
import { type Clock, systemClock } from '../../common/util/clock.ts';
import { type Logger, nullLogger } from '../../common/util/log.ts';
import { HNS_PRELUDE } from './hns.ts';
import { WindowsNodeNetwork } from './node-network.ts';
import { WindowsPodInterfaces } from './pod-interfaces.ts';
import type { PowerShellRunner } from './powershell.ts';
import { WindowsRouteClient } from './routes.ts';
import { SessionPowerShellRunner } from './session.ts';

/**
 * What Antrea supports on Windows (cmd/antrea-agent/options_windows.go): the system datapath (the
 * Hyper-V switch extension) only, no GRE, no encryption, no bridging mode, no random-fully SNAT,
 * and none of the Linux-only feature gates.
 */
export const WINDOWS_CAPABILITIES = capabilitiesFrom('windows', {
  datapathTypes: ['system'],
  trafficEncapModes: ['encap', 'noEncap', 'hybrid'],
  tunnelTypes: { system: ['geneve', 'vxlan', 'stt'], netdev: [] },
  encryptionModes: ['none'],
  unsupportedFeatureGates: [
    'AntreaIPAM',
    'BGPPolicy',
    'SecondaryNetwork',
    'IPsecCertAuth',
    'Multicluster',
    'L7NetworkPolicy',
    'LoadBalancerModeDSR',
    'EgressTrafficShaping',
    'NodeNetworkPolicy',
    'FlowExporter',
    'NodeLatencyMonitor',
    'PacketCapture',
    'NFTablesHostNetworkMode',
  ],
  forcedOffFeatureGates: [
    'Egress',
    'EgressSeparateSubnet',
    'Multicast',
    'ServiceExternalIP',
    'AntreaNodeConfig',
    'CleanupStaleUDPSvcConntrack',
  ],
  tunnelNeedsLocalIp: true,
  unsupportedSettings: {
    enableBridgingMode: 'bridging mode is Linux only',
    snatFullyRandomPorts: 'NetNat has no fully random port allocation',
  },
});

export const WINDOWS_PATHS = {
  ovsRunDir: 'C:\\openvswitch\\var\\run\\openvswitch',
  cniSocket: '\\\\.\\pipe\\cnisock',
  stateDir: 'C:\\var\\run\\antrea',
  cniBinDir: 'C:\\opt\\cni\\bin',
  cniConfDir: 'C:\\etc\\cni\\net.d',
} as const;

export interface WindowsPlatformOptions {
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** The PowerShell port (default: one node-powershell session with the HNS prelude). */
  readonly ps?: PowerShellRunner;
  /** Routing needs these from the agent configuration (defaults: Antrea's). */
  readonly routing?: {
    readonly gatewayName: string;
    readonly bridgeName: string;
    readonly trafficEncapMode: TrafficEncapMode;
    readonly noSNAT: boolean;
    readonly transportCIDRs?: readonly string[];
  };
}

export function createWindowsPlatform(opts: WindowsPlatformOptions = {}): PlatformStrategy {
  const logger = opts.logger ?? nullLogger;
  const clock = opts.clock ?? systemClock;
  const ps = opts.ps ?? new SessionPowerShellRunner({ prelude: HNS_PRELUDE, logger });
  const routing = opts.routing ?? {
    gatewayName: 'antrea-gw0',
    bridgeName: 'br-int',
    trafficEncapMode: 'encap',
    noSNAT: false,
  };
  return {
    os: 'windows',
    capabilities: WINDOWS_CAPABILITIES,
    paths: WINDOWS_PATHS,
    nodeNetwork: new WindowsNodeNetwork({ ps, logger, clock }),
    podInterfaces: new WindowsPodInterfaces({ ps, logger }),
    routes: new WindowsRouteClient({ ps, logger, ...routing }),
    close: () => ps.close(),
  };
}
