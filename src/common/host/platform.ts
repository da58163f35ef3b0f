/**
 * PlatformStrategy: the read-only bundle of OS-specific ports the agent core runs on, built once at
 * start-up by createLinuxPlatform() or createWindowsPlatform() in the composition root
 * (ARCHITECTURE §3). The core never asks which OS it runs on; it reads `os`, `capabilities` and the
 * data-only properties of the ports.
 */
import type { AgentConfig, AgentTunnelType, OvsDatapathType, TrafficEncapMode } from '../agent/config.ts';
import { ValidationError } from '../util/errors.ts';
import type { NodeNetwork } from './node-network.ts';
import type { PodInterfaceConfigurator } from './pod-interfaces.ts';
import type { RouteClient } from './routes.ts';
import type { ServiceHostNetwork } from './service-network.ts';

export type OsName = 'linux' | 'windows';

/** Antrea's per-OS default locations (configuration keys override them). */
export interface PlatformPaths {
  /** OVS run directory (db.sock, <bridge>.mgmt). */
  readonly ovsRunDir: string;
  /** The CNI server endpoint: a unix socket path or a named pipe. */
  readonly cniSocket: string;
  /** The agent's state directory. */
  readonly stateDir: string;
  /** Where install-cni writes the plugin and where IPAM plugins are found. */
  readonly cniBinDir: string;
  /** Where install-cni writes the conflist. */
  readonly cniConfDir: string;
}

/** What a platform can do, as data. */
export interface CapabilityTable {
  readonly datapathTypes: readonly OvsDatapathType[];
  readonly trafficEncapModes: readonly TrafficEncapMode[];
  /** Tunnel types per datapath type. */
  readonly tunnelTypes: Readonly<Record<OvsDatapathType, readonly AgentTunnelType[]>>;
  readonly encryptionModes: readonly AgentConfig['trafficEncryptionMode'][];
  /** Feature gates that must stay off on this platform. */
  readonly unsupportedFeatureGates: readonly string[];
  /**
   * Gates on by default elsewhere that this platform turns off by itself (Antrea does so on
   * Windows), so a default configuration stays valid; enabling one explicitly is not checked.
   */
  readonly forcedOffFeatureGates?: readonly string[];
  /** Whether the tunnel port needs `options:local_ip` (Windows). */
  readonly tunnelNeedsLocalIp: boolean;
  /** Boolean settings that must stay false here, with the reason. */
  readonly unsupportedSettings?: Readonly<Partial<Record<'enableBridgingMode' | 'snatFullyRandomPorts', string>>>;
}

/** The capability data plus the check of a configuration against it. */
export interface PlatformCapabilities extends CapabilityTable {
  /**
   * Every item of `config` this platform cannot honour, each naming its field; empty when all is
   * supported. Reports all problems at once.
   */
  validate(config: AgentConfig): ValidationError[];
}

export interface PlatformStrategy {
  readonly os: OsName;
  readonly capabilities: PlatformCapabilities;
  readonly paths: PlatformPaths;
  readonly nodeNetwork: NodeNetwork;
  readonly podInterfaces: PodInterfaceConfigurator;
  /** Routes and SNAT for remote Pod CIDRs (see routes.ts); absent on a platform without them yet. */
  readonly routes?: RouteClient;
  /** Host side of NodePort Services (DNAT into OVS): present when the strategy can run commands. */
  readonly serviceNetwork?: ServiceHostNetwork;
  /** Releases what the strategy holds (netlink sockets, PowerShell sessions). Idempotent. */
  close(): Promise<void>;
}

/** Capabilities from a table; `validate` checks the configuration against it. */
export function capabilitiesFrom(os: OsName, t: CapabilityTable): PlatformCapabilities {
  return {
    ...t,
    validate(config: AgentConfig): ValidationError[] {
      const problems: ValidationError[] = [];
      const not = (field: string, what: string): void => {
        problems.push(new ValidationError(field, `${what} is not supported on ${os}`));
      };
      if (!t.datapathTypes.includes(config.ovsDatapathType)) {
        not('ovsDatapathType', `OVS datapath type "${config.ovsDatapathType}"`);
      }
      if (!t.trafficEncapModes.includes(config.trafficEncapMode)) {
        not('trafficEncapMode', `traffic mode "${config.trafficEncapMode}"`);
      }
      const tunnels = t.tunnelTypes[config.ovsDatapathType];
      const tunnelled = config.trafficEncapMode === 'encap' || config.trafficEncapMode === 'hybrid';
      if (tunnelled && !tunnels.includes(config.tunnelType)) {
        not('tunnelType', `tunnel type "${config.tunnelType}" with datapath "${config.ovsDatapathType}"`);
      }
      if (!t.encryptionModes.includes(config.trafficEncryptionMode)) {
        not('trafficEncryptionMode', `encryption mode "${config.trafficEncryptionMode}"`);
      }
      for (const gate of t.unsupportedFeatureGates) {
        if (config.featureGates[gate] === true) not(`featureGates.${gate}`, `feature gate ${gate}`);
      }
      for (const [key, why] of Object.entries(t.unsupportedSettings ?? {})) {
        if (config[key as 'enableBridgingMode' | 'snatFullyRandomPorts']) not(key, `${key} (${why})`);
      }
      return problems;
    },
  };
}

/**
 * The `unix:` endpoint of an OVS socket (`db.sock`, `<bridge>.mgmt`) in `runDir`. On Windows OVS
 * listens on a named pipe whose name is the file's path with the separators removed
 * (`\\.\pipe\C:openvswitchvarrunopenvswitchdb.sock`, as Antrea's default_windows.go builds it).
 */
export function ovsSocketEndpoint(os: OsName, runDir: string, file: string): string {
  if (os === 'windows') return `unix:\\\\.\\pipe\\${`${runDir}\\${file}`.replace(/[\\/]/g, '')}`;
  return `unix:${runDir.replace(/\/+$/, '')}/${file}`;
}
