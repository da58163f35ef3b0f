/**
 * ServiceHostNetwork: what the host must do so NodePort Services load-balanced in OVS answer on the
 * Node's addresses (Antrea's proxyAll host side, facts §4.1-§4.3, §5.3). Traffic to
 * `<Node address>:<NodePort>` (from outside or from the Node itself) is DNATed to the virtual
 * NodePort IP 169.254.0.252 and routed into OVS through the gateway, where the Service feature
 * selects an Endpoint.
 */
export interface NodePortSpec {
  readonly port: number;
  readonly protocol: 'TCP' | 'UDP' | 'SCTP';
}

export interface ServiceHostNetwork {
  /**
   * Prepares the host: the virtual Service IP's neighbour (the global virtual MAC) and route on the
   * gateway, the route to the virtual NodePort IP, the DNAT and masquerade rules and the NodePort
   * set (empty). `nodePortAddresses` are the addresses NodePorts answer on. Idempotent; safe to
   * repeat (existing rules are replaced, not duplicated).
   */
  initialize(o: { readonly gatewayName: string; readonly nodePortAddresses: readonly string[] }): Promise<void>;
  /**
   * Makes the NodePorts redirected into OVS exactly `ports` (on every NodePort address), atomically.
   * Call after {@link initialize}. Idempotent.
   */
  setNodePorts(ports: readonly NodePortSpec[]): Promise<void>;
}
