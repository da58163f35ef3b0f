/**
 * Host routing on Windows (Antrea's route_windows.go): firewall rules accepting local Pod traffic,
 * NetNat `antrea-nat` SNATing Pod traffic that leaves the Node, forwarding on antrea-gw0, and one
 * route per remote Pod CIDR as the NodeRoute controller decided (PeerRoute.via): via the peer's
 * gateway IP on antrea-gw0 (through the tunnel), via the peer Node IP on the bridge's host vNIC
 * (routed directly), or none.
 */
import type { PeerRoute, RouteClient, RouteConfig } from '../../common/host/routes.ts';
import type { TrafficEncapMode } from '../../common/agent/config.ts';
import { HostNetworkError } from '../../common/host/errors.ts';
import { canonicalIp, cidrContains, parseCidr } from '../../common/util/ip.ts';
import { type Logger, nullLogger } from '../../common/util/log.ts';
import { WindowsNet } from './net.ts';
import type { PowerShellRunner } from './powershell.ts';

/** Antrea's names and metrics. */
export const ANTREA_NAT = 'antrea-nat';
export const FIREWALL_IN = 'Antrea: accept packets from local Pods';
export const FIREWALL_OUT = 'Antrea: accept packets to local Pods';
export const ROUTE_METRIC_DEFAULT = 256;

export interface WindowsRouteClientOptions {
  readonly ps: PowerShellRunner;
  readonly gatewayName: string;
  /** The bridge's host vNIC (named like the bridge, br-int). */
  readonly bridgeName: string;
  /** Informational: the NodeRoute controller decides per peer (PeerRoute.via); initialize's RouteConfig wins. */
  readonly trafficEncapMode?: TrafficEncapMode;
  readonly noSNAT?: boolean;
  readonly transportCIDRs?: readonly string[];
  readonly logger?: Logger;
}

function sameCidr(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  return x.prefix === y.prefix && canonicalIp(a.split('/')[0] ?? '') === canonicalIp(b.split('/')[0] ?? '');
}

export class WindowsRouteClient implements RouteClient {
  private readonly net: WindowsNet;
  private readonly o: WindowsRouteClientOptions;
  private readonly logger: Logger;
  private localPodCIDRs: readonly string[] = [];
  private cfg: RouteConfig | undefined;
  /** podCIDR → the peer route asked for (sync restores them). */
  private readonly peers = new Map<string, PeerRoute>();

  constructor(opts: WindowsRouteClientOptions) {
    this.net = new WindowsNet(opts.ps);
    this.o = opts;
    this.logger = (opts.logger ?? nullLogger).child({ component: 'routes' });
  }

  private async ifIndex(name: string): Promise<number> {
    const a = (await this.net.adapters()).find((x) => x.name === name || x.name === `vEthernet (${name})`);
    if (a === undefined) throw new HostNetworkError('HOST_INTERFACE_NOT_FOUND', `interface ${name} does not exist`);
    return a.ifIndex;
  }

  /**
   * Firewall rules for the first IPv4 Pod CIDR (created when missing), forwarding on the gateway,
   * and NetNat antrea-nat on the Pod CIDR unless noSNAT (a NetNat of that name on another prefix is
   * replaced). Idempotent; safe to repeat (the agent re-runs it periodically).
   */
  async initialize(cfg: RouteConfig): Promise<void> {
    this.cfg = cfg;
    this.localPodCIDRs = cfg.localPodCIDRs.filter((c) => parseCidr(c).family === 4);
    const podCIDR = this.localPodCIDRs[0];
    if (podCIDR === undefined) return;
    await this.net.ensureFirewallRule({ name: FIREWALL_IN, direction: 'Inbound', address: podCIDR });
    await this.net.ensureFirewallRule({ name: FIREWALL_OUT, direction: 'Outbound', address: podCIDR });
    const gw = await this.ifIndex(this.o.gatewayName);
    const ipIf = (await this.net.ipInterfaces(gw)).find((i) => i.family === 4);
    if (ipIf !== undefined && !ipIf.forwarding) await this.net.setIPInterface(gw, { forwarding: true });
    const nat = await this.net.nat(ANTREA_NAT);
    if (cfg.noSNAT) {
      if (nat !== undefined) await this.net.removeNat(ANTREA_NAT);
      return;
    }
    if (nat !== undefined && sameCidr(nat.internalIPInterfaceAddressPrefix, podCIDR)) return;
    if (nat !== undefined) {
      this.logger.info('replacing NetNat on another prefix', { had: nat.internalIPInterfaceAddressPrefix, podCIDR });
      await this.net.removeNat(ANTREA_NAT);
    }
    await this.net.newNat(ANTREA_NAT, podCIDR);
  }

  /**
   * Routes `peer.podCIDR` via the peer gateway on antrea-gw0 (`tunnel`), via the peer Node IP on
   * br-int (`direct`), or removes our route to it (`none`). Replaces a different route; safe to repeat.
   */
  async addRoutes(peer: PeerRoute): Promise<void> {
    const { podCIDR, nodeName, nodeIP, peerGatewayIP, via } = peer;
    parseCidr(podCIDR, 'podCIDR');
    if (via === 'none') {
      await this.deleteRoutes(podCIDR);
      this.peers.set(podCIDR, peer);
      return;
    }
    const direct = via === 'direct';
    const ifIndex = await this.ifIndex(direct ? this.o.bridgeName : this.o.gatewayName);
    const nextHop = direct ? nodeIP : peerGatewayIP;
    const existing = (await this.net.routes()).filter((r) => sameCidr(r.destinationPrefix, podCIDR));
    if (existing.some((r) => r.interfaceIndex === ifIndex && canonicalIp(r.nextHop) === canonicalIp(nextHop))) {
      this.peers.set(podCIDR, peer);
      return;
    }
    for (const idx of new Set(existing.map((r) => r.interfaceIndex))) await this.net.removeRoutes(podCIDR, idx);
    await this.net.addRoute(podCIDR, nextHop, ifIndex, ROUTE_METRIC_DEFAULT);
    this.peers.set(podCIDR, peer);
    this.logger.info('route added', { podCIDR, node: nodeName, nextHop, via });
  }

  /** Restores the firewall rules, forwarding, NetNat and every peer route. Nothing before initialize. */
  async sync(): Promise<void> {
    if (this.cfg === undefined) return;
    await this.initialize(this.cfg);
    for (const peer of [...this.peers.values()]) await this.addRoutes(peer);
  }

  /** Removes the routes to `podCIDR` on the gateway and the bridge vNIC. Absent: nothing happens. */
  async deleteRoutes(podCIDR: string): Promise<void> {
    parseCidr(podCIDR, 'podCIDR');
    const ours = new Set([await this.ifIndex(this.o.gatewayName), await this.ifIndex(this.o.bridgeName)]);
    const existing = (await this.net.routes()).filter(
      (r) => sameCidr(r.destinationPrefix, podCIDR) && ours.has(r.interfaceIndex),
    );
    for (const idx of new Set(existing.map((r) => r.interfaceIndex))) await this.net.removeRoutes(podCIDR, idx);
    this.peers.delete(podCIDR);
  }

  /**
   * Removes routes on antrea-gw0 to prefixes that are neither desired Pod CIDRs nor the local Pod
   * CIDR, keeping host routes (/32), multicast and broadcast (the OS's own). Safe to repeat.
   */
  async reconcile(desiredPodCIDRs: readonly string[]): Promise<void> {
    const gw = await this.ifIndex(this.o.gatewayName);
    const keep = [...desiredPodCIDRs, ...this.localPodCIDRs];
    for (const r of await this.net.routes(gw)) {
      const c = parseCidr(r.destinationPrefix, 'DestinationPrefix');
      if (c.prefix === 32 || c.prefix === 0 || cidrContains('224.0.0.0/4', r.destinationPrefix.split('/')[0] ?? ''))
        continue;
      if (keep.some((k) => sameCidr(k, r.destinationPrefix))) continue;
      this.logger.info('removing a stale route', { destination: r.destinationPrefix, nextHop: r.nextHop });
      await this.net.removeRoutes(r.destinationPrefix, gw);
      this.peers.delete(r.destinationPrefix);
    }
  }
}
