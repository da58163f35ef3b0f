/**
 * RouteClient: host routes and SNAT for remote Pod CIDRs per traffic mode (ARCHITECTURE §3,
 * Antrea's pkg/agent/route). Declared here so the strategies are shaped for it; it is implemented
 * with the multi-node work, and {@link PlatformStrategy.routes} stays absent until then.
 */
export interface RouteClient {
  /**
   * Prepares host routing for the local Pod CIDRs (Linux: ipsets, iptables chains and SNAT for
   * Pod traffic leaving the Node; Windows: firewall rules and NetNat). Idempotent; safe to repeat.
   */
  initialize(localPodCIDRs: readonly string[]): Promise<void>;
  /**
   * Makes `podCIDR` (a remote Node's) reachable: through antrea-gw0 and the tunnel in encap mode,
   * via `nodeIP` when routed directly. Replaces an existing route for the CIDR; safe to repeat.
   */
  addRoutes(podCIDR: string, nodeName: string, nodeIP: string, peerGatewayIP: string): Promise<void>;
  /** Removes what {@link addRoutes} made for `podCIDR`. Absent: nothing happens. */
  deleteRoutes(podCIDR: string): Promise<void>;
  /**
   * Removes routes and set entries for Pod CIDRs not in `desiredPodCIDRs` (start-up and periodic
   * resync). Safe to repeat.
   */
  reconcile(desiredPodCIDRs: readonly string[]): Promise<void>;
}
