/**
 * CNI chaining on Linux (trafficEncapMode networkPolicyOnly): the Pod's veth pair, its addresses
 * and the host routes to it come from the primary plugin (ptp, a cloud CNI); antrea finds the pair,
 * moves the primary's host routes (and the host side's addresses) to antrea-gw0 as Antrea's
 * MigrateRoutesToGw does, and removes those routes again on DEL. The veth itself is never deleted
 * here: the primary plugin's DEL does that.
 */
import { HostNetworkError, podInterfaceError } from '../../common/host/errors.ts';
import type { ChainedPodInterfaces, PodInterface } from '../../common/host/pod-interfaces.ts';
import { errorMessage } from '../../common/util/errors.ts';
import { canonicalIp, cidrIp, ipFamily } from '../../common/util/ip.ts';
import { type Logger, nullLogger } from '../../common/util/log.ts';
import { disableTxChecksum, inNetns } from './libc.ts';
import type { Netlink, RouteInfo } from './netlink.ts';
import { openPodNetlink, silenceHostArp } from './pod-links.ts';

/** rtm_protocol of the routes the kernel derives from addresses (they follow the address). */
const RTPROT_KERNEL = 2;

function isLinkLocal(cidr: string): boolean {
  const ip = canonicalIp(cidrIp(cidr));
  return ip.startsWith('169.254.') || /^fe[89ab][0-9a-f]:/.test(ip);
}

export interface LinuxChainedInterfacesOptions {
  /** The netlink socket of the agent's namespace (where the host sides and antrea-gw0 live). */
  readonly host: Netlink;
  /** The path of that namespace when it is not this process's own (tests). */
  readonly hostNetns?: string;
  readonly logger?: Logger;
}

export class LinuxChainedInterfaces implements ChainedPodInterfaces {
  private readonly host: Netlink;
  private readonly hostNetns: string | undefined;
  private readonly logger: Logger;

  constructor(o: LinuxChainedInterfacesOptions) {
    this.host = o.host;
    this.hostNetns = o.hostNetns;
    this.logger = (o.logger ?? nullLogger).child({ component: 'cni-chaining' });
  }

  async find(netns: string, ifname: string): Promise<PodInterface> {
    const pod = openPodNetlink(netns);
    try {
      const link = await pod.link(ifname);
      if (link === undefined) {
        throw podInterfaceError(
          'POD_INTERFACE_NOT_FOUND',
          `interface ${ifname} does not exist in ${netns} (did the primary plugin run before antrea?)`,
        );
      }
      if (link.kind !== 'veth' || link.peerIndex === undefined) {
        throw podInterfaceError(
          'POD_INTERFACE_NOT_FOUND',
          `interface ${ifname} in ${netns} is a ${link.kind === '' ? 'link of unknown kind' : link.kind}, not a veth`,
        );
      }
      // The peer's index is in the peer's namespace: check the host link points back at this one.
      const peer = (await this.host.links()).find((l) => l.index === link.peerIndex);
      if (peer === undefined || peer.kind !== 'veth' || peer.peerIndex !== link.index) {
        throw podInterfaceError(
          'POD_INTERFACE_NOT_FOUND',
          `the host side of ${ifname} in ${netns} is not in the agent's network namespace`,
        );
      }
      return {
        hostInterface: { name: peer.name, mac: peer.mac },
        containerInterface: { name: ifname, mac: link.mac },
      };
    } finally {
      pod.close();
    }
  }

  private async gatewayLink(name: string): Promise<number> {
    const gw = await this.host.link(name);
    if (gw === undefined) throw new HostNetworkError('HOST_INTERFACE_NOT_FOUND', `gateway ${name} does not exist`);
    return gw.index;
  }

  async takeOver(spec: {
    hostInterfaceName: string;
    gateway: string;
    disableTxChecksumOffload?: { netns: string; ifname: string };
  }): Promise<string[]> {
    const link = await this.host.link(spec.hostInterfaceName);
    if (link === undefined) {
      throw podInterfaceError('POD_INTERFACE_NOT_FOUND', `host interface ${spec.hostInterfaceName} does not exist`);
    }
    const gw = await this.gatewayLink(spec.gateway);
    silenceHostArp(spec.hostInterfaceName, this.hostNetns);
    const pod = spec.disableTxChecksumOffload;
    if (pod !== undefined) {
      try {
        inNetns(pod.netns, () => disableTxChecksum(pod.ifname));
      } catch (err) {
        throw podInterfaceError(
          'POD_INTERFACE_FAILED',
          `turning TX checksum offload off on ${pod.ifname} in ${pod.netns}: ${errorMessage(err)}`,
          err,
        );
      }
    }
    // Routes first, then addresses: a route may go away with the address it depends on.
    const routes: RouteInfo[] = [...(await this.host.routes(4)), ...(await this.host.routes(6))].filter(
      (r) => r.oif === link.index && r.protocol !== RTPROT_KERNEL && !isLinkLocal(r.dst),
    );
    for (const r of routes) {
      // NLM_F_REPLACE: the same destination (and metric) through the gateway replaces the route.
      await this.host.addRoute({
        dst: r.dst,
        ...(r.gateway === undefined ? {} : { gateway: r.gateway, onlink: true }),
        oif: gw,
        protocol: r.protocol,
      });
    }
    const addrs = (await this.host.addresses(link.index)).filter((a) => a.scope === 0 && !isLinkLocal(a.cidr));
    for (const a of addrs) {
      await this.host.addAddress(gw, a.cidr);
      await this.host.deleteAddress(link.index, a.cidr);
    }
    if (routes.length > 0 || addrs.length > 0) {
      this.logger.info('took over the host side of a chained Pod', {
        port: spec.hostInterfaceName,
        gateway: spec.gateway,
        routes: routes.map((r) => r.dst),
        addresses: addrs.map((a) => a.cidr),
      });
    }
    return routes.map((r) => r.dst);
  }

  async releaseRoutes(spec: { ips: readonly string[]; gateway: string }): Promise<void> {
    const gw = await this.host.link(spec.gateway);
    if (gw === undefined) return;
    for (const ip of spec.ips) {
      const fam = ipFamily(ip);
      if (fam === undefined) continue;
      const dst = `${canonicalIp(ip)}/${fam === 4 ? 32 : 128}`;
      const hit = (await this.host.routes(fam)).find(
        (r) => r.oif === gw.index && `${canonicalIp(cidrIp(r.dst))}/${r.dst.split('/')[1] ?? ''}` === dst,
      );
      // The kernel matches rtm_protocol too: delete with the route's own.
      if (hit !== undefined) await this.host.deleteRoute({ dst, oif: gw.index, protocol: hit.protocol });
    }
  }
}
