/**
 * NodeNetwork: what the agent core needs from the OS to set up a Node's host networking around the
 * OVS bridge (ARCHITECTURE §3). Linux: sysctls and netlink; Windows: the HNS network with the OVS
 * extension, the uplink and the bridge's LOCAL port.
 *
 * The bridge and its ports (br-int, antrea-gw0, antrea-tun0) are created by the common initializer
 * through OVSDB, identically on both OSes; this interface covers what happens on the host around
 * them.
 */
import type { OvsBridgeClient } from '../ovs/ovsdb/bridge.ts';

/** A host network interface as the OS reports it. */
export interface HostInterface {
  readonly name: string;
  /** OS interface index. */
  readonly index: number;
  readonly mtu: number;
  /** Lower-case colon-separated MAC, or '' when the device has none. */
  readonly mac: string;
  /** Addresses in CIDR notation (global scope only). */
  readonly addresses: readonly string[];
}

export interface HostPrepareOptions {
  readonly ipv4: boolean;
  readonly ipv6: boolean;
  /**
   * The Node as the initializer knows it. Windows needs it to create the HNS network (Pod CIDR
   * subnet, management IP, the uplink by transportInterface or by Node IP, the bridge name the
   * host vNIC takes); Linux ignores it.
   */
  readonly node?: {
    readonly podCIDRs: readonly string[];
    readonly nodeIPs: readonly string[];
    readonly transportInterface: string;
    readonly bridgeName: string;
  };
  /**
   * OVS runs the userspace (netdev) datapath: the host ends of Pod links stay ordinary host
   * interfaces, so the host must not answer ARP on them for its other addresses (Linux:
   * arp_ignore=1), or Pods would send their traffic to the host stack as well as to OVS.
   */
  readonly userspaceDatapath?: boolean;
}

export interface TransportSelector {
  /** The configured transportInterface ('' to find it by address). */
  readonly name: string;
  /** The Node's IPs; the interface holding one of them is the transport interface. */
  readonly nodeIPs: readonly string[];
}

export interface GatewaySpec {
  /** The gateway device (antrea-gw0), an OVS internal port the initializer has just created. */
  readonly name: string;
  /** Exactly these addresses (CIDR notation: first address of each Pod CIDR with its prefix). */
  readonly addresses: readonly string[];
  readonly mtu: number;
  /**
   * Keep global addresses not in `addresses` instead of removing them (networkPolicyOnly: CNI ADDs
   * move the primary plugin's Pod gateway addresses onto the gateway).
   */
  readonly keepOtherAddresses?: boolean;
  /** How long to wait for the device to appear after its OVS port was created (default 10 s). */
  readonly appearTimeoutMs?: number;
}

export interface NodeNetwork {
  /**
   * Prepares the host before the bridge is set up. Linux: enables IP forwarding for the requested
   * families. Windows: creates (or re-enables) the HNS network with the OVS extension. Idempotent:
   * what is already in place is left as is; safe to repeat at every start.
   */
  prepareHost(opts: HostPrepareOptions): Promise<void>;

  /**
   * The transport interface: the one named by `sel.name`, else the one holding one of `sel.nodeIPs`.
   * Read-only; safe to repeat. Throws HostNetworkError HOST_INTERFACE_NOT_FOUND when there is none.
   */
  transportInterface(sel: TransportSelector): Promise<HostInterface>;

  /**
   * Configures the gateway device once its OVS internal port exists: waits until the device
   * appears (throws HOST_INTERFACE_NOT_FOUND after the timeout), sets its MTU, makes its global
   * addresses exactly `spec.addresses` (adds the missing ones, removes others unless
   * `keepOtherAddresses`, keeps the rest), brings
   * it up and applies the gateway's per-interface settings (Linux: arp_announce=1). Already
   * configured: nothing changes. Safe to repeat (the agent re-checks the gateway periodically).
   */
  configureGateway(spec: GatewaySpec): Promise<HostInterface>;

  /**
   * Windows only (absent on Linux): after the bridge exists, attaches the uplink NIC (ofport_request
   * 32770, `antrea-type=uplink`, no-flood) and the bridge LOCAL port carrying the host vNIC
   * (`antrea-type=host`), and pins `other_config:datapath-id` to the uplink MAC so the OpenFlow
   * session survives restarts. Idempotent: existing ports are updated in place.
   */
  prepareBridge?(bridge: OvsBridgeClient, uplink: HostInterface): Promise<void>;

  /**
   * Linux only (the userspace datapath needs the underlay address on an OVS bridge for tunnels):
   * moves every global address of device `from` to device `to`, with the routes that went out of
   * `from` through a gateway, waiting for `to` to appear (HOST_INTERFACE_NOT_FOUND after the
   * timeout) and bringing it up. Returns `to` as it is afterwards. Idempotent: when `from` holds no
   * address, nothing moves; safe to repeat. Its inverse is the same call with the devices swapped.
   */
  moveTransportAddresses?(spec: {
    readonly from: string;
    readonly to: string;
    readonly appearTimeoutMs?: number;
  }): Promise<HostInterface>;
}
