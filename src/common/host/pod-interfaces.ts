/**
 * PodInterfaceConfigurator: how a Pod's network interface is made on this OS (ARCHITECTURE §3).
 * Linux: a veth pair whose container end lives in the Pod's network namespace; Windows: an HNS
 * endpoint attached to the Pod's compartment, joined to OVS as an internal port.
 *
 * The CNI server (common) drives it: IPAM first, then {@link PodInterfaceConfigurator.configure},
 * then the OVS port (of {@link PodInterfaceConfigurator.ovsPortType}) with the container's
 * external_ids, then the Pod's flows. Data-only differences between the OSes are properties here,
 * so the common code reads them instead of asking which OS it runs on.
 */
import { createHash } from 'node:crypto';
import type { CniDns, CniIpConfig, CniRoute } from '../apis/cni/spec.ts';

export interface PodInterfaceRequest {
  readonly containerId: string;
  /** The interface name inside the Pod (CNI_IFNAME). */
  readonly ifname: string;
  /** The Pod's network namespace as the agent reaches it (CNI_NETNS with hostProcPathPrefix). */
  readonly netns: string;
  readonly podName: string;
  readonly podNamespace: string;
  /** The host-side name (the OVS port name), from {@link podHostInterfaceName}. */
  readonly hostInterfaceName: string;
  readonly mtu: number;
  /** Turn TX checksum offload off on the container side (needed with OVS's userspace datapath). */
  readonly disableTxChecksumOffload: boolean;
  /**
   * The Pod's addressing from IPAM. It may still be pending when `configure` is called, so the
   * link can be made while IPAM runs (Linux does; an OS that needs the address to create the
   * interface waits for it first). If it rejects, `configure` removes what it made and rejects
   * with that same error.
   */
  readonly addressing: Promise<PodAddressing>;
  /**
   * The container end's MAC, chosen by the caller (so the Pod's flows can be installed while the
   * link is made). Linux uses it; an OS whose interface gets its MAC elsewhere (Windows: HNS)
   * ignores it. Either way the result reports the MAC the interface has.
   */
  readonly containerMac?: string;
  /**
   * Called once, when the host end exists and is up and before the Pod's addresses are applied
   * (Linux), so the caller can attach it to OVS meanwhile. A configurator that cannot tell (Windows:
   * HNS makes the endpoint with its address) does not call it. Must not throw.
   */
  readonly hostInterfaceReady?: () => void;
}

export interface PodAddressing {
  /** The Pod's addresses (CIDR) with their gateways. */
  readonly ips: readonly CniIpConfig[];
  /** Routes to install in the Pod (the default route via the gateway included). */
  readonly routes: readonly CniRoute[];
  readonly dns: CniDns;
}

/** What {@link PodInterfaceConfigurator.configure} made. */
export interface PodInterface {
  readonly hostInterface: { readonly name: string; readonly mac: string };
  readonly containerInterface: { readonly name: string; readonly mac: string };
}

export interface PodInterfaceRef {
  readonly containerId: string;
  readonly ifname: string;
  readonly hostInterfaceName: string;
  /** The Pod's namespace, when known (DEL may come without it). */
  readonly netns?: string;
}

export interface PodInterfaceExpectation extends PodInterfaceRef {
  readonly netns: string;
  readonly mac: string;
  readonly ips: readonly CniIpConfig[];
  readonly routes: readonly CniRoute[];
}

export type OfportAssignment = 'immediate' | 'async';

/**
 * CNI chaining (trafficEncapMode networkPolicyOnly): antrea runs after a primary plugin that made
 * the Pod's interface, its addresses and the host routes to it. Antrea takes the host side over
 * for OVS and leaves IPAM and the interface itself to the primary plugin (its DEL removes them).
 */
export interface ChainedPodInterfaces {
  /**
   * The container interface `ifname` in `netns` and its host-side peer (a veth end in the agent's
   * namespace). Read-only. Throws PodInterfaceError POD_NETNS_NOT_FOUND when the namespace does not
   * exist, POD_INTERFACE_NOT_FOUND when the interface is absent, is not a veth, or its peer is not
   * in the agent's namespace.
   */
  find(netns: string, ifname: string): Promise<PodInterface>;

  /**
   * Takes the host side over for OVS (Antrea's MigrateRoutesToGw): every route out of
   * `hostInterfaceName` (except the kernel's own address routes) is moved to `gateway`, and so are
   * its global addresses (the primary plugin's gateway address, often shared by every Pod); the host
   * side stops answering ARP (with OVS's userspace datapath the kernel still sees its frames);
   * optionally the container side's TX checksum offload is turned off.
   * Returns the destinations of the moved routes. Idempotent: nothing left to move, nothing moves.
   * Throws POD_INTERFACE_NOT_FOUND when the host side is gone, HostNetworkError
   * HOST_INTERFACE_NOT_FOUND when `gateway` does not exist.
   */
  takeOver(spec: {
    readonly hostInterfaceName: string;
    readonly gateway: string;
    /**
     * Turn TX checksum offload off on the container side `ifname` in `netns` (OVS's userspace
     * datapath needs full checksums, as for the Pods antrea makes itself).
     */
    readonly disableTxChecksumOffload?: { readonly netns: string; readonly ifname: string };
  }): Promise<string[]>;

  /**
   * Removes the host routes to `ips` (/32, /128) that go out of `gateway` (Antrea's
   * UnMigrateRoutesFromGw). The gateway's addresses stay: other Pods may share them. Absent routes
   * or gateway: nothing happens; safe to repeat.
   */
  releaseRoutes(spec: { readonly ips: readonly string[]; readonly gateway: string }): Promise<void>;
}

export interface PodInterfaceConfigurator {
  /**
   * The OVS port type of the host side: `system` for a Linux veth end (an existing device),
   * `internal` for a Windows HNS endpoint's vNIC.
   */
  readonly ovsPortType: 'system' | 'internal';
  /**
   * `immediate`: ovs-vswitchd assigns the ofport as soon as the port is added (Linux), so the CNI
   * server waits for it and installs flows before answering. `async`: the device appears later and
   * the ofport arrives with an OpenFlow PortStatus message (Windows); flows follow then.
   */
  readonly ofportAssignment: OfportAssignment;

  /**
   * Creates the Pod's interface: on Linux a veth pair named `hostInterfaceName` / `ifname` with the
   * container end moved into `netns`, MTU on both ends, a random locally administered MAC inside,
   * both ends up (the container MAC is `containerMac` when given), then (once `addressing` resolves) the addresses and routes. Throws
   * the addressing's own error when it rejects, otherwise PodInterfaceError:
   * POD_NETNS_NOT_FOUND when `netns` does not exist, POD_INTERFACE_EXISTS when `ifname` already
   * exists in the namespace or the host name is taken, POD_INTERFACE_FAILED otherwise. On failure
   * it leaves nothing behind. Not idempotent by design (the spec requires ADD to fail when the
   * interface exists); the CNI server removes leftovers first.
   */
  configure(req: PodInterfaceRequest): Promise<PodInterface>;

  /**
   * Removes the Pod's interface (Linux: deleting the host end removes both). Idempotent: an absent
   * interface or namespace is not an error; safe to repeat.
   */
  remove(ref: PodInterfaceRef): Promise<void>;

  /**
   * Compares the Pod's interface with what was configured: the host side exists, the container
   * side exists in `netns` with this MAC, these addresses and these routes. Returns the problems
   * found (empty when it matches). Read-only.
   */
  check(expect: PodInterfaceExpectation): Promise<string[]>;

  /** The host side of a Pod interface (name and MAC), or undefined when it does not exist. Read-only. */
  hostInterface(name: string): Promise<{ readonly name: string; readonly mac: string } | undefined>;

  /** Whether a Pod network namespace (as the agent reaches it) exists. Read-only. */
  netnsExists(netns: string): Promise<boolean>;

  /** Linux only (absent where CNI chaining is not supported): see {@link ChainedPodInterfaces}. */
  readonly chaining?: ChainedPodInterfaces;

  /**
   * Linux only (absent on Windows, where HNS handles it): announces the Pod's addresses from inside
   * the Pod (3 gratuitous ARPs 50 ms apart for IPv4) so neighbours drop stale entries. Called after
   * the Pod's flows are installed; resolves when all announcements were sent. Best effort: a
   * vanished interface ends it quietly.
   */
  advertise?(req: {
    readonly netns: string;
    readonly ifname: string;
    readonly ips: readonly CniIpConfig[];
  }): Promise<void>;
}

/**
 * The host-side (OVS port) name of a Pod interface, as Antrea names it: up to 8 characters of the
 * Pod name (leading '-' removed), '-', then the first 6 hex digits of SHA-1(containerID), or of
 * SHA-1(containerID + ifname) for interfaces other than eth0. At most 15 characters. Without a Pod
 * name (no K8S_POD_NAME in CNI_ARGS) the prefix is "pod".
 */
export function podHostInterfaceName(podName: string, containerId: string, ifname: string): string {
  const key = ifname === 'eth0' ? containerId : containerId + ifname;
  const prefix = podName.slice(0, 8).replace(/^-+/, '');
  const hash = createHash('sha1').update(key).digest('hex').slice(0, 6);
  return `${prefix === '' ? 'pod' : prefix}-${hash}`;
}
