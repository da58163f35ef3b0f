/**
 * Agent start-up for a Node (Antrea's Initializer, the common part): Node config → host preparation
 * → MTU → bridge br-int → interface store from OVSDB → tunnel port antrea-tun0 → gateway antrea-gw0
 * (OVS internal port, then configured on the host by the platform's NodeNetwork). Everything is
 * idempotent: on restart, existing ports are kept (updated in place when the configuration changed)
 * and the gateway keeps its MAC.
 */
import type { HostInterface, NodeNetwork } from '../host/node-network.ts';
import type { PlatformStrategy } from '../host/platform.ts';
import type { OpenFlowProtocol, OvsBridgeClient, PortSpec } from '../ovs/ovsdb/bridge.ts';
import { ConfigError } from './config.ts';
import type { AgentConfig, AgentTunnelType } from './config.ts';
import { AntreaError, errorMessage } from '../util/errors.ts';
import { cidrIp, firstHostIp, ipFamily, parseCidr, randomMac } from '../util/ip.ts';
import { type Logger, nullLogger } from '../util/log.ts';
import { EXT, type InterfaceConfig, type InterfaceStore } from './interfacestore.ts';
import type { NodeConfig, NodeConfigSource } from './node-config.ts';
import type { NodeNetworkContext } from './cniserver/server.ts';
import { setupUplinkBridge } from './uplink-bridge.ts';

/** Antrea's fixed OpenFlow port numbers. */
export const TUNNEL_OFPORT = 32768;
export const GATEWAY_OFPORT = 32769;
export const TUNNEL_PORT_NAME = 'antrea-tun0';
export const BRIDGE_PROTOCOLS: readonly OpenFlowProtocol[] = ['OpenFlow10', 'OpenFlow15'];

/** IANA destination ports per tunnel type (tunnelPort: 0). */
export const DEFAULT_TUNNEL_DST_PORTS: Readonly<Record<AgentTunnelType, number>> = {
  geneve: 6081,
  vxlan: 4789,
  stt: 7471,
  gre: 0,
};

/** Whether the mode has a tunnel port (Antrea's SupportsEncap: encap and hybrid). */
export function supportsEncap(mode: AgentConfig['trafficEncapMode']): boolean {
  return mode === 'encap' || mode === 'hybrid';
}

/**
 * Encapsulation overhead (Antrea's CalculateMTUDeduction), IPv6 underlay adds 20; none without a
 * tunnel (noEncap, networkPolicyOnly).
 */
export function encapOverhead(
  cfg: Pick<AgentConfig, 'trafficEncapMode' | 'tunnelType'>,
  ipv6Underlay: boolean,
): number {
  if (!supportsEncap(cfg.trafficEncapMode)) return 0;
  const base = { geneve: 50, vxlan: 50, gre: 42, stt: 0 }[cfg.tunnelType];
  return base === 0 ? 0 : base + (ipv6Underlay ? 20 : 0);
}

/** The Pod MTU: defaultMTU if set, else the transport interface's minus the encapsulation overhead. */
export function podMtu(cfg: AgentConfig, transportMtu: number, ipv6Underlay: boolean): number {
  if (cfg.defaultMTU > 0) return cfg.defaultMTU;
  const mtu = transportMtu - encapOverhead(cfg, ipv6Underlay);
  return supportsEncap(cfg.trafficEncapMode) ? Math.min(mtu, 65000) : mtu;
}

/**
 * The gateway's addresses in networkPolicyOnly mode: the Node's transport address of each family
 * as a host address (/32, /128), as Antrea assigns it (the Pods' own gateway belongs to the primary
 * plugin). Per family: a Node IP the transport interface holds, else the interface's first address,
 * else the Node IP.
 */
export function policyOnlyGatewayAddresses(nodeIPs: readonly string[], transportCIDRs: readonly string[]): string[] {
  const out: string[] = [];
  for (const fam of [4, 6] as const) {
    const onTransport = transportCIDRs.map(cidrIp).filter((ip) => ipFamily(ip) === fam);
    const nodeIPsOfFamily = nodeIPs.filter((ip) => ipFamily(ip) === fam);
    const ip = nodeIPsOfFamily.find((n) => onTransport.includes(n)) ?? onTransport[0] ?? nodeIPsOfFamily[0];
    if (ip !== undefined) out.push(`${ip}/${fam === 4 ? 32 : 128}`);
  }
  return out;
}

/** The gateway's addresses: the first address of each Pod CIDR, with the CIDR's prefix. */
export function gatewayAddresses(podCIDRs: readonly string[]): string[] {
  return podCIDRs.map((c) => `${firstHostIp(c)}/${parseCidr(c).prefix}`);
}

/** The tunnel port spec for the configuration (antrea-tun0, flow-based). */
export function tunnelPortSpec(cfg: AgentConfig, localIp?: string): PortSpec {
  return {
    name: TUNNEL_PORT_NAME,
    type: cfg.tunnelType,
    ofportRequest: TUNNEL_OFPORT,
    tunnel: {
      remoteIp: 'flow',
      key: 'flow',
      ...(cfg.tunnelType !== 'gre' && cfg.tunnelPort !== 0 ? { dstPort: cfg.tunnelPort } : {}),
      ...(cfg.tunnelCsum ? { csum: true } : {}),
      ...(localIp === undefined ? {} : { localIp }),
    },
    externalIds: { [EXT.type]: 'tunnel' },
  };
}

export interface InitializedNode extends NodeNetworkContext {
  readonly node: NodeConfig;
  readonly gatewayName: string;
  readonly gatewayMac: string;
  readonly gatewayOfport: number;
  readonly tunnelOfport: number | undefined;
  readonly bridgeDatapathId: string;
  /** The transport interface's addresses with prefix ([] when unknown). */
  readonly transportCIDRs: readonly string[];
}

export interface InitializerOptions {
  readonly config: AgentConfig;
  readonly platform: PlatformStrategy;
  readonly bridge: OvsBridgeClient;
  readonly store: InterfaceStore;
  readonly nodeConfigSource: NodeConfigSource;
  /**
   * The uplink bridge (br-phy) client: with the userspace datapath in encap or hybrid mode the
   * transport interface is put behind it (see uplink-bridge.ts). Absent: never done.
   */
  readonly uplinkBridge?: OvsBridgeClient;
  readonly logger?: Logger;
}

export class Initializer {
  private readonly o: InitializerOptions;
  private readonly logger: Logger;

  constructor(opts: InitializerOptions) {
    this.o = opts;
    this.logger = (opts.logger ?? nullLogger).child({ component: 'initializer' });
  }

  private get net(): NodeNetwork {
    return this.o.platform.nodeNetwork;
  }

  /** Runs the start-up steps; safe to run again on the same host (each step converges). */
  async initialize(signal: AbortSignal): Promise<InitializedNode> {
    const { config, bridge, store, platform } = this.o;
    const problems = platform.capabilities.validate(config);
    if (problems.length > 0) throw new ConfigError(problems, `(not supported on ${platform.os})`);

    const node = await this.o.nodeConfigSource.get(signal);
    const families = new Set(node.podCIDRs.map((c) => parseCidr(c).family));
    this.logger.info('Node configuration', { node: node.name, podCIDRs: node.podCIDRs, nodeIPs: node.nodeIPs });
    await this.net.prepareHost({
      ipv4: families.has(4),
      ipv6: families.has(6),
      node: {
        podCIDRs: node.podCIDRs,
        nodeIPs: node.nodeIPs,
        transportInterface: config.transportInterface,
        bridgeName: config.ovsBridge,
      },
      userspaceDatapath: config.ovsDatapathType === 'netdev',
    });

    let transport: HostInterface | undefined;
    try {
      transport = await this.net.transportInterface({ name: config.transportInterface, nodeIPs: node.nodeIPs });
    } catch (err) {
      // With a fixed MTU the agent can run without knowing its transport interface (single Node).
      if (config.defaultMTU === 0) throw err;
      this.logger.warn('no transport interface', { error: errorMessage(err) });
    }
    const encap = supportsEncap(config.trafficEncapMode);
    if (transport !== undefined && encap && config.ovsDatapathType === 'netdev' && this.o.uplinkBridge !== undefined) {
      transport = await setupUplinkBridge(this.o.uplinkBridge, this.net, transport, this.logger);
    }
    if (transport !== undefined) {
      this.logger.info('transport interface', {
        name: transport.name,
        mtu: transport.mtu,
        addresses: transport.addresses,
      });
    }
    const transportMtu = transport?.mtu ?? 0;
    const ipv6Underlay =
      transport !== undefined &&
      transport.addresses.length > 0 &&
      transport.addresses.every((a) => ipFamily(cidrIp(a)) === 6);
    const mtu = podMtu(config, transportMtu, ipv6Underlay);
    signal.throwIfAborted();

    // fail_mode=secure: a restarted ovs-vswitchd forwards nothing until the agent has replayed its
    // flows (standalone would start with a NORMAL flow and bypass every NetworkPolicy meanwhile).
    const info = await bridge.create({
      datapathType: config.ovsDatapathType,
      protocols: BRIDGE_PROTOCOLS,
      failMode: 'secure',
    });
    const dpid = await bridge.waitForDatapathId();
    const kept = store.initialize(bridge.listPorts());
    this.logger.info('bridge ready', {
      bridge: info.name,
      datapathType: config.ovsDatapathType,
      dpid,
      knownPorts: kept,
    });
    if (platform.nodeNetwork.prepareBridge !== undefined) {
      const uplink = await this.net.transportInterface({ name: config.transportInterface, nodeIPs: node.nodeIPs });
      await platform.nodeNetwork.prepareBridge(bridge, uplink);
    }

    let tunnelOfport: number | undefined;
    if (encap) {
      const localIp = platform.capabilities.tunnelNeedsLocalIp
        ? node.nodeIPs.find((ip) => ipFamily(ip) === 4)
        : undefined;
      await bridge.createPort(tunnelPortSpec(config, localIp));
      tunnelOfport = await bridge.waitForOFPort(TUNNEL_PORT_NAME);
      store.add({ type: 'tunnel', name: TUNNEL_PORT_NAME, ofport: tunnelOfport, mac: '', ips: [] });
    } else if (bridge.getPort(TUNNEL_PORT_NAME) !== undefined) {
      await bridge.deletePort(TUNNEL_PORT_NAME);
      store.delete(TUNNEL_PORT_NAME);
    }

    const gwName = config.hostGateway;
    const existingMac = bridge.getPort(gwName)?.mac;
    await bridge.createPort({
      name: gwName,
      type: 'internal',
      ofportRequest: GATEWAY_OFPORT,
      mac: existingMac ?? randomMac(),
      mtuRequest: mtu,
      externalIds: { [EXT.type]: 'gateway' },
    });
    const gatewayOfport = await bridge.waitForOFPort(gwName);
    // networkPolicyOnly: the Node's transport address (/32); the primary plugin's Pod gateway
    // addresses that CNI ADDs moved here are kept.
    const policyOnly = config.trafficEncapMode === 'networkPolicyOnly';
    const gwAddrs = policyOnly
      ? policyOnlyGatewayAddresses(node.nodeIPs, transport?.addresses ?? [])
      : gatewayAddresses(node.podCIDRs);
    if (gwAddrs.length === 0) {
      throw new AntreaError('NO_GATEWAY_ADDRESS', 'networkPolicyOnly needs the Node IP for the gateway');
    }
    const gw = await this.net.configureGateway({
      name: gwName,
      addresses: gwAddrs,
      mtu,
      ...(policyOnly ? { keepOtherAddresses: true } : {}),
    });
    const gateway: InterfaceConfig = {
      type: 'gateway',
      name: gwName,
      ofport: gatewayOfport,
      mac: gw.mac,
      ips: gwAddrs.map(cidrIp),
    };
    store.add(gateway);
    this.logger.info('gateway ready', { name: gwName, ofport: gatewayOfport, mac: gw.mac, addresses: gwAddrs, mtu });
    if (gatewayOfport !== GATEWAY_OFPORT) {
      throw new AntreaError('OFPORT_MISMATCH', `gateway ${gwName} got ofport ${gatewayOfport}, not ${GATEWAY_OFPORT}`);
    }
    return {
      nodeName: node.name,
      podCIDRs: node.podCIDRs,
      gatewayIPs: policyOnly ? gwAddrs.map(cidrIp) : node.podCIDRs.map((c) => firstHostIp(c)),
      mtu,
      node,
      gatewayName: gwName,
      gatewayMac: gw.mac,
      gatewayOfport,
      tunnelOfport,
      bridgeDatapathId: dpid,
      transportCIDRs: transport?.addresses ?? [],
    };
  }
}
