/**
 * RouteClient: host routes and SNAT for remote Pod CIDRs per traffic mode (ARCHITECTURE §3,
 * Antrea's pkg/agent/route). The NodeRoute controller (common) decides, per remote Node, whether
 * the Node is reached through the tunnel or routed directly ({@link needsTunnelToPeer}) and tells
 * both the OpenFlow pipeline and this client; the strategy only realizes the decision on the host.
 *
 * Linux: ipsets ANTREA-POD-IP/ANTREA-POD-IP6, iptables chains written with iptables-restore
 * (masquerade of Pod traffic leaving the Node unless noSNAT), routes through netlink. Windows:
 * host routes and NetNat.
 */
import type { AgentTunnelType, TrafficEncapMode } from '../agent/config.ts';
import { cidrContains } from '../util/ip.ts';

export interface RouteConfig {
  readonly trafficEncapMode: TrafficEncapMode;
  /** Do not masquerade Pod traffic leaving the Node (noEncap only). */
  readonly noSNAT: boolean;
  /** MASQUERADE with --random-fully. */
  readonly snatFullyRandomPorts: boolean;
  /** The gateway device (antrea-gw0). */
  readonly gatewayName: string;
  /** The local Node's Pod CIDRs. */
  readonly localPodCIDRs: readonly string[];
  /** The tunnel type and UDP port in use (encap and hybrid), for the host's tunnel rules. */
  readonly tunnelType: AgentTunnelType;
  /** The tunnel's UDP destination port (0 for gre). */
  readonly tunnelPort: number;
}

/** One remote Pod CIDR and how to reach it. */
export interface PeerRoute {
  readonly podCIDR: string;
  readonly nodeName: string;
  /** The remote Node's transport address (same family as the CIDR). */
  readonly nodeIP: string;
  /** The remote gateway: the first address of `podCIDR`. */
  readonly peerGatewayIP: string;
  /**
   * `tunnel`: the route goes to the gateway (next hop peerGatewayIP, on-link) and OVS tunnels it;
   * `direct`: routed via `nodeIP` on the underlay; `none`: no route (the underlay routes Pod
   * CIDRs itself, e.g. noEncap towards another subnet), only the Pod-address set entry.
   */
  readonly via: 'tunnel' | 'direct' | 'none';
}

export interface RouteClient {
  /**
   * Prepares host routing for the local Node: address sets, the SNAT and forwarding rules, the
   * jumps into them. Must be called before the other methods. Idempotent; safe to repeat (a
   * restarted agent rewrites the same state).
   */
  initialize(cfg: RouteConfig): Promise<void>;
  /**
   * Makes `peer.podCIDR` reachable as `peer.via` says and adds the CIDR to the Pod-address set.
   * Replaces an existing route for the CIDR; safe to repeat.
   */
  addRoutes(peer: PeerRoute): Promise<void>;
  /** Removes what {@link addRoutes} made for `podCIDR`. Absent: nothing happens. */
  deleteRoutes(podCIDR: string): Promise<void>;
  /**
   * Removes routes and set entries for remote Pod CIDRs not in `desiredPodCIDRs` (start-up, after
   * the first Node list). The local Pod CIDRs are always kept. Safe to repeat.
   */
  reconcile(desiredPodCIDRs: readonly string[]): Promise<void>;
  /**
   * Restores everything this client made (sets, rules, jumps, routes) where it was changed or
   * removed behind its back. The agent calls it periodically (Antrea: every 60 s). Safe to repeat;
   * does nothing before {@link initialize}.
   */
  sync(): Promise<void>;
}

/** Antrea's period of the host-network resync. */
export const ROUTE_SYNC_INTERVAL_MS = 60_000;

/**
 * Whether traffic to a peer Node goes through the tunnel (Antrea's NeedsTunnelToPeer): always in
 * encap, in hybrid only when the peer is outside every local transport subnet, never otherwise.
 */
export function needsTunnelToPeer(
  mode: TrafficEncapMode,
  peerNodeIP: string,
  localTransportCIDRs: readonly string[],
): boolean {
  if (mode === 'encap') return true;
  if (mode !== 'hybrid') return false;
  return !localTransportCIDRs.some((c) => cidrContains(c, peerNodeIP));
}

/** How the host reaches a peer's Pod CIDR (see {@link PeerRoute.via}). */
export function peerRouteKind(
  mode: TrafficEncapMode,
  peerNodeIP: string,
  localTransportCIDRs: readonly string[],
): PeerRoute['via'] {
  if (needsTunnelToPeer(mode, peerNodeIP, localTransportCIDRs)) return 'tunnel';
  if (mode === 'networkPolicyOnly') return 'none';
  return localTransportCIDRs.some((c) => cidrContains(c, peerNodeIP)) ? 'direct' : 'none';
}
