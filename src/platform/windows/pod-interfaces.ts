/**
 * Pod interfaces on Windows (Antrea's pod_configuration_windows.go): one HNS endpoint per Pod
 * interface, named like the OVS port, holding the Pod's IP from IPAM, attached to the Pod's HNS
 * namespace (CNI_NETNS is its GUID with containerd). The endpoint's vNIC joins OVS as an internal
 * port whose ofport arrives asynchronously (ofportAssignment 'async'). HNS answers ARP for the Pod,
 * so there is no gratuitous ARP here (`advertise` is absent).
 */
import { podInterfaceError, PodInterfaceError } from '../../common/host/errors.ts';
import type {
  PodInterface,
  PodInterfaceConfigurator,
  PodInterfaceExpectation,
  PodInterfaceRef,
  PodInterfaceRequest,
} from '../../common/host/pod-interfaces.ts';
import { errorMessage } from '../../common/util/errors.ts';
import { canonicalIp, cidrIp, ipFamily, parseCidr } from '../../common/util/ip.ts';
import { type Logger, nullLogger } from '../../common/util/log.ts';
import { HNS_NETWORK_NAME, HnsClient } from './hns.ts';
import { WindowsNet } from './net.ts';
import { PowerShellError, type PowerShellRunner } from './powershell.ts';

const GUID = /^\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?$/;

/** The HNS namespace GUID of a CNI_NETNS value, or undefined when it is not one. */
export function namespaceGuid(netns: string): string | undefined {
  return GUID.exec(netns)?.[1]?.toLowerCase();
}

export interface WindowsPodInterfacesOptions {
  readonly ps: PowerShellRunner;
  readonly logger?: Logger;
  /** The HNS network Pods join (antrea-hnsnetwork). */
  readonly networkName?: string;
}

export class WindowsPodInterfaces implements PodInterfaceConfigurator {
  readonly ovsPortType = 'internal' as const;
  readonly ofportAssignment = 'async' as const;
  private readonly hns: HnsClient;
  private readonly net: WindowsNet;
  private readonly logger: Logger;
  private readonly networkName: string;
  private networkId: string | undefined;

  constructor(opts: WindowsPodInterfacesOptions) {
    this.hns = new HnsClient(opts.ps);
    this.net = new WindowsNet(opts.ps);
    this.logger = (opts.logger ?? nullLogger).child({ component: 'pod-interfaces' });
    this.networkName = opts.networkName ?? HNS_NETWORK_NAME;
  }

  private async network(): Promise<string> {
    if (this.networkId !== undefined) return this.networkId;
    const n = await this.hns.networkByName(this.networkName);
    if (n === undefined)
      throw podInterfaceError('POD_INTERFACE_FAILED', `HNS network ${this.networkName} does not exist`);
    this.networkId = n.id;
    return n.id;
  }

  /**
   * Creates the HNS endpoint once IPAM answered (HNS needs the address), attaches it to the Pod's
   * namespace and sets the vNIC's MTU when it is already visible. POD_NETNS_NOT_FOUND when
   * CNI_NETNS is not an existing HNS namespace, POD_INTERFACE_EXISTS when an endpoint of that name
   * exists, the addressing's own error when IPAM failed, POD_INTERFACE_FAILED otherwise. On failure
   * the endpoint is deleted again.
   */
  async configure(req: PodInterfaceRequest): Promise<PodInterface> {
    req.addressing.catch(() => undefined);
    const ns = namespaceGuid(req.netns);
    if (ns === undefined)
      throw podInterfaceError('POD_NETNS_NOT_FOUND', `CNI_NETNS ${req.netns} is not an HNS namespace ID`);
    let created: string | undefined;
    try {
      if (!(await this.hns.namespaceExists(ns)))
        throw podInterfaceError('POD_NETNS_NOT_FOUND', `HNS namespace ${ns} does not exist`);
      if ((await this.hns.endpointByName(req.hostInterfaceName)) !== undefined) {
        throw podInterfaceError('POD_INTERFACE_EXISTS', `HNS endpoint ${req.hostInterfaceName} already exists`);
      }
      const networkId = await this.network();
      const addressing = await req.addressing;
      const v4 = addressing.ips.find((i) => ipFamily(cidrIp(i.address)) === 4);
      if (v4 === undefined) throw podInterfaceError('POD_INTERFACE_FAILED', 'Windows Pods need an IPv4 address');
      const ep = await this.hns.createEndpoint({
        name: req.hostInterfaceName,
        networkId,
        ipAddress: cidrIp(v4.address),
        prefixLength: parseCidr(v4.address).prefix,
        gatewayAddress: v4.gateway ?? '',
        dnsServerList: addressing.dns.nameservers ?? [],
        dnsSuffix: addressing.dns.search?.join(',') ?? addressing.dns.domain ?? '',
      });
      created = ep.id;
      await this.hns.attachEndpoint(ns, ep.id);
      await this.setMtu(req.hostInterfaceName, req.mtu);
      return {
        hostInterface: { name: req.hostInterfaceName, mac: ep.macAddress },
        containerInterface: { name: req.ifname, mac: ep.macAddress },
      };
    } catch (err) {
      if (created !== undefined) {
        try {
          await this.hns.deleteEndpoint(created);
        } catch (e) {
          this.logger.warn('rolling back an HNS endpoint failed', { endpoint: created, err: errorMessage(e) });
        }
      }
      if (err instanceof PodInterfaceError) throw err;
      if (
        await req.addressing.then(
          () => false,
          (e: unknown) => e === err,
        )
      )
        throw err;
      if (err instanceof PowerShellError && err.notFound) {
        throw podInterfaceError('POD_NETNS_NOT_FOUND', `attaching to HNS namespace ${ns}: ${err.message}`, err);
      }
      throw podInterfaceError(
        'POD_INTERFACE_FAILED',
        `creating HNS endpoint ${req.hostInterfaceName}: ${errorMessage(err)}`,
        err,
      );
    }
  }

  /** The endpoint vNIC's MTU; best effort (the vNIC may appear later; HNS then uses the network's). */
  private async setMtu(name: string, mtu: number): Promise<void> {
    const vnic = await this.net.adapter(`vEthernet (${name})`);
    if (vnic === undefined) {
      this.logger.debug('endpoint vNIC not visible yet; MTU left to HNS', { endpoint: name });
      return;
    }
    await this.net.setIPInterface(vnic.ifIndex, { mtu });
  }

  /** Detaches (when the namespace is known) and deletes the endpoint. Absent: nothing happens. */
  async remove(ref: PodInterfaceRef): Promise<void> {
    const ep = await this.hns.endpointByName(ref.hostInterfaceName);
    if (ep === undefined) return;
    const ns = ref.netns === undefined ? undefined : namespaceGuid(ref.netns);
    if (ns !== undefined) {
      try {
        await this.hns.detachEndpoint(ns, ep.id);
      } catch (err) {
        // The namespace may be gone already (the runtime removed the sandbox first).
        this.logger.debug('detaching an HNS endpoint failed', { endpoint: ep.name, err: errorMessage(err) });
      }
    }
    await this.hns.deleteEndpoint(ep.id);
  }

  async check(expect: PodInterfaceExpectation): Promise<string[]> {
    const problems: string[] = [];
    const ep = await this.hns.endpointByName(expect.hostInterfaceName);
    if (ep === undefined) return [`HNS endpoint ${expect.hostInterfaceName} does not exist`];
    if (expect.mac !== '' && ep.macAddress !== expect.mac.toLowerCase()) {
      problems.push(`HNS endpoint ${ep.name} has MAC ${ep.macAddress}, expected ${expect.mac}`);
    }
    for (const ip of expect.ips) {
      if (ipFamily(cidrIp(ip.address)) !== 4) continue;
      if (canonicalIp(cidrIp(ip.address)) !== canonicalIp(ep.ipAddress)) {
        problems.push(`HNS endpoint ${ep.name} has IP ${ep.ipAddress}, expected ${cidrIp(ip.address)}`);
      }
    }
    const ns = namespaceGuid(expect.netns);
    if (ns === undefined || !(await this.hns.namespaceExists(ns))) {
      problems.push(`HNS namespace ${expect.netns} does not exist`);
    }
    return problems;
  }

  async hostInterface(name: string): Promise<{ name: string; mac: string } | undefined> {
    const ep = await this.hns.endpointByName(name);
    return ep === undefined ? undefined : { name: ep.name, mac: ep.macAddress };
  }

  async netnsExists(netns: string): Promise<boolean> {
    const ns = namespaceGuid(netns);
    return ns !== undefined && (await this.hns.namespaceExists(ns));
  }
}
