/**
 * Host networking of a Windows Node around the OVS bridge (Antrea's agent_windows.go): the
 * Transparent HNS network on the uplink with the OVS switch extension enabled, the host vNIC
 * renamed to the bridge name and attached as the bridge's LOCAL port, the uplink attached to
 * br-int, and the gateway vNIC (antrea-gw0) configured once OVS has created it.
 */
import { HostNetworkError } from '../../common/host/errors.ts';
import type {
  GatewaySpec,
  HostInterface,
  HostPrepareOptions,
  NodeNetwork,
  TransportSelector,
} from '../../common/host/node-network.ts';
import type { OvsBridgeClient } from '../../common/ovs/ovsdb/bridge.ts';
import { type Clock, systemClock } from '../../common/util/clock.ts';
import { ValidationError } from '../../common/util/errors.ts';
import { canonicalIp, cidrIp, firstHostIp, ipFamily, parseCidr } from '../../common/util/ip.ts';
import { type Logger, nullLogger } from '../../common/util/log.ts';
import { HNS_NETWORK_NAME, HnsClient, type HnsNetwork, OVS_EXTENSION_ID } from './hns.ts';
import { type NetAdapter, WindowsNet } from './net.ts';
import type { PowerShellRunner } from './powershell.ts';

/** Antrea's fixed OpenFlow port of the uplink on Windows. */
export const UPLINK_OFPORT = 32770;

/** The bridge datapath ID Antrea derives from the uplink MAC (stable across restarts). */
export function datapathIdFromMac(mac: string): string {
  return `0000${mac.replace(/:/g, '').toLowerCase()}`;
}

const OVS_PORT_NAME = /^[A-Za-z0-9_.:~@-]{1,15}$/;

export interface WindowsNodeNetworkOptions {
  readonly ps: PowerShellRunner;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** How long to wait for the Node IP to move to the host vNIC after creating the network (6 s). */
  readonly vnicTimeoutMs?: number;
}

export class WindowsNodeNetwork implements NodeNetwork {
  private readonly hns: HnsClient;
  private readonly net: WindowsNet;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly vnicTimeoutMs: number;

  constructor(opts: WindowsNodeNetworkOptions) {
    this.hns = new HnsClient(opts.ps);
    this.net = new WindowsNet(opts.ps);
    this.logger = (opts.logger ?? nullLogger).child({ component: 'node-network' });
    this.clock = opts.clock ?? systemClock;
    this.vnicTimeoutMs = opts.vnicTimeoutMs ?? 6000;
  }

  /**
   * Creates the HNS network `antrea-hnsnetwork` (Transparent, on the adapter holding the Node IP or
   * named transportInterface, subnet = the IPv4 Pod CIDR), moves the Node IP to the host vNIC if HNS
   * did not, renames the vNIC to the bridge name and enables the OVS extension and software RSC.
   * Already there: only re-enables the OVS extension if it is off. Another type of network with
   * that name: HOST_OPERATION_FAILED (Clean-AntreaNetwork.ps1 removes it).
   */
  async prepareHost(opts: HostPrepareOptions): Promise<void> {
    const node = opts.node;
    if (node === undefined) throw new ValidationError('node', 'the Windows strategy needs the Node to prepare HNS');
    const existing = await this.hns.networkByName(HNS_NETWORK_NAME);
    if (existing !== undefined) {
      if (existing.type.toLowerCase() !== 'transparent') {
        throw new HostNetworkError(
          'HOST_OPERATION_FAILED',
          `HNS network ${HNS_NETWORK_NAME} exists with type ${existing.type}, not Transparent (run Clean-AntreaNetwork.ps1)`,
        );
      }
      await this.ensureOvsExtension(existing);
      return;
    }
    const podCIDR = node.podCIDRs.find((c) => parseCidr(c).family === 4);
    if (podCIDR === undefined) throw new ValidationError('podCIDRs', 'Windows Nodes need an IPv4 Pod CIDR');
    const nodeIP = node.nodeIPs.find((ip) => ipFamily(ip) === 4);
    if (nodeIP === undefined) throw new ValidationError('nodeIPs', 'Windows Nodes need an IPv4 Node IP');
    const uplink = await this.findUplink({ name: node.transportInterface, nodeIPs: [nodeIP] });
    if (uplink.virtual) {
      throw new HostNetworkError(
        'HOST_OPERATION_FAILED',
        `adapter ${uplink.name} holding ${nodeIP} is virtual; the HNS Transparent network needs a physical adapter`,
      );
    }
    const addr = (await this.net.ipAddresses(uplink.ifIndex)).find(
      (a) => canonicalIp(a.ipAddress) === canonicalIp(nodeIP),
    );
    const gateway = (await this.net.routes(uplink.ifIndex)).find((r) => r.destinationPrefix === '0.0.0.0/0')?.nextHop;
    this.logger.info('creating the HNS network', { adapter: uplink.name, podCIDR, nodeIP });
    const network = await this.hns.createTransparentNetwork({
      name: HNS_NETWORK_NAME,
      adapterName: uplink.name,
      subnet: { addressPrefix: podCIDR, gatewayAddress: firstHostIp(podCIDR) },
      managementIp: nodeIP,
      sourceMac: uplink.macAddress,
    });
    await this.moveNodeIp(uplink, nodeIP, addr?.prefixLength ?? 24, gateway);
    await this.net.renameHostVNic(HNS_NETWORK_NAME, uplink.macAddress, node.bridgeName);
    // After the IP moved (enabling the extension earlier breaks DHCP renewals, as Antrea notes).
    await this.ensureOvsExtension(network);
    await this.net.enableSoftwareRsc(HNS_NETWORK_NAME);
  }

  private async ensureOvsExtension(network: HnsNetwork): Promise<void> {
    const ext = network.extensions.find((e) => e.id === OVS_EXTENSION_ID);
    if (ext?.isEnabled === true) return;
    this.logger.info('enabling the OVS extension on the HNS network', { network: network.id });
    await this.hns.setExtension(network.id, OVS_EXTENSION_ID, true);
  }

  /** Waits for HNS to move the Node IP to the vNIC with the uplink's MAC, else copies it there. */
  private async moveNodeIp(
    uplink: NetAdapter,
    nodeIP: string,
    prefix: number,
    gateway: string | undefined,
  ): Promise<void> {
    const deadline = this.clock.monotonic() + this.vnicTimeoutMs;
    let vnic: NetAdapter | undefined;
    for (;;) {
      const adapters = await this.net.adapters();
      vnic = adapters.find((a) => a.macAddress === uplink.macAddress && a.ifIndex !== uplink.ifIndex);
      if (vnic !== undefined) {
        const addrs = await this.net.ipAddresses(vnic.ifIndex);
        if (addrs.some((a) => canonicalIp(a.ipAddress) === canonicalIp(nodeIP))) return;
      }
      if (this.clock.monotonic() >= deadline) break;
      await this.clock.sleep(500);
    }
    if (vnic === undefined) {
      throw new HostNetworkError(
        'HOST_INTERFACE_NOT_FOUND',
        `HNS created no host vNIC for ${uplink.name} within ${this.vnicTimeoutMs}ms`,
      );
    }
    this.logger.info('copying the Node IP to the host vNIC', { vnic: vnic.name, nodeIP });
    await this.net.addIPAddress(vnic.ifIndex, `${nodeIP}/${prefix}`, gateway);
  }

  private async findUplink(sel: TransportSelector): Promise<NetAdapter> {
    const adapters = await this.net.adapters();
    if (sel.name !== '') {
      const a = adapters.find((x) => x.name === sel.name);
      if (a === undefined)
        throw new HostNetworkError('HOST_INTERFACE_NOT_FOUND', `transport interface ${sel.name} does not exist`);
      return a;
    }
    const network = await this.hns.networkByName(HNS_NETWORK_NAME);
    if (network !== undefined && network.networkAdapterName !== '') {
      const a = adapters.find((x) => x.name === network.networkAdapterName);
      if (a !== undefined) return a;
    }
    const wanted = new Set(sel.nodeIPs.map(canonicalIp));
    const hit = (await this.net.ipAddresses()).find((x) => wanted.has(canonicalIp(x.ipAddress)));
    const a = hit === undefined ? undefined : adapters.find((x) => x.ifIndex === hit.interfaceIndex);
    if (a === undefined) {
      throw new HostNetworkError(
        'HOST_INTERFACE_NOT_FOUND',
        `no adapter holds the Node IP ${sel.nodeIPs.join(', ')} (set transportInterface or defaultMTU)`,
      );
    }
    return a;
  }

  /**
   * The uplink: the adapter named `sel.name`, else the HNS network's adapter, else the one holding
   * a Node IP. Its addresses and MTU are read from the adapters sharing its MAC (once the HNS network
   * exists the IP lives on the host vNIC, not on the physical adapter). Read-only.
   */
  async transportInterface(sel: TransportSelector): Promise<HostInterface> {
    const uplink = await this.findUplink(sel);
    const adapters = (await this.net.adapters()).filter((a) => a.macAddress === uplink.macAddress);
    const addresses: string[] = [];
    let mtu: number | undefined;
    for (const a of [uplink, ...adapters.filter((x) => x.ifIndex !== uplink.ifIndex)]) {
      for (const ip of await this.net.ipAddresses(a.ifIndex)) {
        if (ip.family === 4) addresses.push(`${ip.ipAddress}/${ip.prefixLength}`);
      }
      if (mtu === undefined) mtu = (await this.net.ipInterfaces(a.ifIndex)).find((i) => i.family === 4)?.nlMtu;
    }
    if (mtu === undefined) {
      throw new HostNetworkError('HOST_INTERFACE_NOT_FOUND', `no IPv4 interface for ${uplink.name} (set defaultMTU)`);
    }
    return { name: uplink.name, index: uplink.ifIndex, mtu, mac: uplink.macAddress, addresses };
  }

  /**
   * Waits for the gateway vNIC (named like the port, or `vEthernet (<port>)`), enables it, sets its
   * IPv4 MTU and forwarding, and makes its IPv4 addresses exactly `spec.addresses`. Safe to repeat.
   */
  async configureGateway(spec: GatewaySpec): Promise<HostInterface> {
    const timeoutMs = spec.appearTimeoutMs ?? 10_000;
    const deadline = this.clock.monotonic() + timeoutMs;
    const names = [spec.name, `vEthernet (${spec.name})`];
    let gw: NetAdapter | undefined;
    for (;;) {
      gw = (await this.net.adapters()).find((a) => names.includes(a.name));
      if (gw !== undefined) break;
      if (this.clock.monotonic() >= deadline) {
        throw new HostNetworkError(
          'HOST_INTERFACE_NOT_FOUND',
          `gateway ${spec.name} did not appear within ${timeoutMs}ms (is ovs-vswitchd running?)`,
        );
      }
      await this.clock.sleep(200);
    }
    if (gw.status === 'Disabled') await this.net.enableAdapter(gw.name);
    const ipIf = (await this.net.ipInterfaces(gw.ifIndex)).find((i) => i.family === 4);
    if (ipIf?.nlMtu !== spec.mtu || !ipIf.forwarding) {
      await this.net.setIPInterface(gw.ifIndex, { mtu: spec.mtu, forwarding: true });
    }
    const want = spec.addresses.filter((a) => ipFamily(cidrIp(a)) === 4);
    const have = await this.net.ipAddresses(gw.ifIndex);
    const key = (ip: string, prefix: number | string): string => `${canonicalIp(ip)}/${prefix}`;
    const haveKeys = new Set(have.filter((a) => a.family === 4).map((a) => key(a.ipAddress, a.prefixLength)));
    for (const w of want) {
      if (!haveKeys.has(key(cidrIp(w), w.split('/')[1] ?? ''))) await this.net.addIPAddress(gw.ifIndex, w);
    }
    const wantKeys = new Set(want.map((w) => key(cidrIp(w), w.split('/')[1] ?? '')));
    for (const a of have) {
      // Link-local (APIPA) addresses are the OS's own; leave them.
      if (a.family !== 4 || a.ipAddress.startsWith('169.254.')) continue;
      if (!wantKeys.has(key(a.ipAddress, a.prefixLength))) {
        this.logger.info('removing a stale gateway address', { gateway: spec.name, address: a.ipAddress });
        await this.net.removeIPAddress(gw.ifIndex, a.ipAddress);
      }
    }
    return { name: spec.name, index: gw.ifIndex, mtu: spec.mtu, mac: gw.macAddress, addresses: want };
  }

  /**
   * Attaches the uplink (ofport_request 32770, antrea-type=uplink), marks the bridge's LOCAL port
   * (the host vNIC, named like the bridge) antrea-type=host, and pins the datapath ID to the uplink
   * MAC. Existing ports are updated in place; safe to repeat.
   */
  async prepareBridge(bridge: OvsBridgeClient, uplink: HostInterface): Promise<void> {
    if (!OVS_PORT_NAME.test(uplink.name)) {
      throw new HostNetworkError(
        'HOST_OPERATION_FAILED',
        `uplink adapter "${uplink.name}" cannot be an OVS port name here (at most 15 of [A-Za-z0-9_.:~@-]); rename it with Rename-NetAdapter`,
      );
    }
    const info = bridge.get();
    const dpid = datapathIdFromMac(uplink.mac);
    if (info?.otherConfig['datapath-id'] !== dpid) {
      await bridge.create({ otherConfig: { ...info?.otherConfig, 'datapath-id': dpid } });
    }
    // The LOCAL port exists with the bridge; createPort updates it in place.
    await bridge.createPorts([
      { name: bridge.name, type: 'internal', externalIds: { 'antrea-type': 'host' } },
      { name: uplink.name, type: 'system', ofportRequest: UPLINK_OFPORT, externalIds: { 'antrea-type': 'uplink' } },
    ]);
  }
}
