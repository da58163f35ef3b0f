/**
 * Pod interfaces on Linux: a veth pair whose container end is created directly inside the Pod's
 * network namespace (IFLA_NET_NS_FD on the peer), configured through a netlink socket bound to that
 * namespace, with gratuitous ARP sent from a packet socket opened there (koffi `setns`, see
 * libc.ts). No command is spawned on this path.
 *
 * The host end is kept quiet for ovs-vswitchd, which runs in the same namespace and reconfigures
 * on every link event there: it comes up once (after the Pod's end, so with its carrier, and
 * already promiscuous), without ARP answers and without IPv6 addresses.
 */
import { closeSync, existsSync, openSync } from 'node:fs';
import type { CniIpConfig } from '../../common/apis/cni/spec.ts';
import { HostNetworkError, PodInterfaceError, podInterfaceError } from '../../common/host/errors.ts';
import type {
  PodInterface,
  PodInterfaceConfigurator,
  PodInterfaceExpectation,
  PodInterfaceRef,
  PodInterfaceRequest,
} from '../../common/host/pod-interfaces.ts';
import { type Clock, systemClock } from '../../common/util/clock.ts';
import { errorMessage } from '../../common/util/errors.ts';
import { canonicalIp, cidrIp, ipFamily, parseIp, randomMac } from '../../common/util/ip.ts';
import { type Logger, nullLogger } from '../../common/util/log.ts';
import { closeFd, disableTxChecksum, inNetns, openPacketSocket, sendFrame } from './libc.ts';
import { macToBuffer, Netlink, netlinkErrno } from './netlink.ts';
import { LinuxChainedInterfaces } from './chained-interfaces.ts';
import { openPodNetlink, silenceHostArp } from './pod-links.ts';

const ETH_P_ARP = 0x0806;

/** A gratuitous ARP request announcing `ip` at `mac` (SPA = TPA = ip, broadcast). */
export function gratuitousArp(mac: string, ip: string): Buffer {
  const m = macToBuffer(mac);
  const addr = parseIp(ip);
  const f = Buffer.alloc(42);
  f.fill(0xff, 0, 6); // broadcast
  m.copy(f, 6);
  f.writeUInt16BE(ETH_P_ARP, 12);
  f.writeUInt16BE(1, 14); // Ethernet
  f.writeUInt16BE(0x0800, 16); // IPv4
  f[18] = 6;
  f[19] = 4;
  f.writeUInt16BE(1, 20); // request
  m.copy(f, 22);
  addr.copy(f, 28);
  // target hardware address stays zero
  addr.copy(f, 38);
  return f;
}

export interface LinuxPodInterfacesOptions {
  /** The netlink socket of the agent's namespace (where host ends live). */
  readonly host: Netlink;
  /**
   * The path of the namespace `host` lives in, when it is not this process's own (tests): host-side
   * sysctls are written from inside it.
   */
  readonly hostNetns?: string;
  readonly logger?: Logger;
  readonly clock?: Clock;
}

export class LinuxPodInterfaces implements PodInterfaceConfigurator {
  readonly ovsPortType = 'system' as const;
  readonly ofportAssignment = 'immediate' as const;
  readonly chaining: LinuxChainedInterfaces;
  private readonly host: Netlink;
  private readonly hostNetns: string | undefined;
  private readonly logger: Logger;
  private readonly clock: Clock;

  constructor(opts: LinuxPodInterfacesOptions) {
    this.host = opts.host;
    this.hostNetns = opts.hostNetns;
    this.logger = (opts.logger ?? nullLogger).child({ component: 'pod-interfaces' });
    this.clock = opts.clock ?? systemClock;
    this.chaining = new LinuxChainedInterfaces({
      host: opts.host,
      ...(opts.hostNetns === undefined ? {} : { hostNetns: opts.hostNetns }),
      logger: this.logger,
    });
  }

  private openPodNetlink(netns: string): Netlink {
    return openPodNetlink(netns);
  }

  async configure(req: PodInterfaceRequest): Promise<PodInterface> {
    // Awaited after the link exists; observe it now so an early rejection is not "unhandled".
    req.addressing.catch(() => undefined);
    const pod = this.openPodNetlink(req.netns);
    let created = false;
    try {
      if ((await pod.link(req.ifname)) !== undefined) {
        throw podInterfaceError('POD_INTERFACE_EXISTS', `interface ${req.ifname} already exists in ${req.netns}`);
      }
      const containerMac = req.containerMac ?? randomMac();
      const nsFd = openSync(req.netns, 'r');
      try {
        await this.host.createVeth({
          name: req.hostInterfaceName,
          mtu: req.mtu,
          peer: { name: req.ifname, netnsFd: nsFd, mtu: req.mtu, mac: containerMac },
        });
      } catch (err) {
        if (netlinkErrno(err) === 'EEXIST') {
          throw podInterfaceError(
            'POD_INTERFACE_EXISTS',
            `host interface ${req.hostInterfaceName} already exists`,
            err,
          );
        }
        throw podInterfaceError(
          'POD_INTERFACE_FAILED',
          `creating veth ${req.hostInterfaceName}: ${errorMessage(err)}`,
          err,
        );
      } finally {
        closeSync(nsFd);
      }
      created = true;
      const hostLink = await this.host.link(req.hostInterfaceName);
      const podLink = await pod.link(req.ifname);
      if (hostLink === undefined || podLink === undefined) {
        throw podInterfaceError(
          'POD_INTERFACE_FAILED',
          `veth ${req.hostInterfaceName}/${req.ifname} vanished after creation`,
        );
      }
      silenceHostArp(req.hostInterfaceName, this.hostNetns, { noIpv6: true });
      if (req.disableTxChecksumOffload) inNetns(req.netns, () => disableTxChecksum(req.ifname));
      // ovs-vswitchd reconfigures every bridge on each link event in its namespace, so the host
      // end changes as few times as possible: the Pod's end first (the host end then comes up
      // with its carrier), and up together with promiscuous mode, which the OVS datapath would
      // otherwise set itself once the port is added (one more event).
      await pod.setLink(podLink.index, { up: true });
      await this.host.setLink(hostLink.index, { up: true, promisc: true });
      req.hostInterfaceReady?.();
      const addressing = await req.addressing;
      for (const ip of addressing.ips) await pod.addAddress(podLink.index, ip.address);
      for (const r of addressing.routes) {
        await pod.addRoute({ dst: r.dst, oif: podLink.index, ...(r.gw === undefined ? {} : { gateway: r.gw }) });
      }
      return {
        hostInterface: { name: req.hostInterfaceName, mac: hostLink.mac },
        containerInterface: { name: req.ifname, mac: podLink.mac === '' ? containerMac : podLink.mac },
      };
    } catch (err) {
      if (created) await this.deleteHostLink(req.hostInterfaceName);
      if (
        err instanceof PodInterfaceError ||
        (await req.addressing.then(
          () => false,
          (e: unknown) => e === err,
        ))
      ) {
        throw err;
      }
      throw podInterfaceError(
        'POD_INTERFACE_FAILED',
        `configuring ${req.ifname} in ${req.netns}: ${errorMessage(err)}`,
        err,
      );
    } finally {
      pod.close();
    }
  }

  private async deleteHostLink(name: string): Promise<void> {
    const l = await this.host.link(name);
    if (l !== undefined) await this.host.deleteLink(l.index);
  }

  async remove(ref: PodInterfaceRef): Promise<void> {
    // Deleting the host end removes the container end with it.
    await this.deleteHostLink(ref.hostInterfaceName);
  }

  async check(expect: PodInterfaceExpectation): Promise<string[]> {
    const problems: string[] = [];
    const hostLink = await this.host.link(expect.hostInterfaceName);
    if (hostLink === undefined) problems.push(`host interface ${expect.hostInterfaceName} does not exist`);
    else if (hostLink.kind !== '' && hostLink.kind !== 'veth') {
      problems.push(`host interface ${expect.hostInterfaceName} is a ${hostLink.kind}, not a veth`);
    }
    if (!existsSync(expect.netns)) {
      problems.push(`network namespace ${expect.netns} does not exist`);
      return problems;
    }
    const pod = this.openPodNetlink(expect.netns);
    try {
      const link = await pod.link(expect.ifname);
      if (link === undefined) {
        problems.push(`interface ${expect.ifname} does not exist in ${expect.netns}`);
        return problems;
      }
      if (expect.mac !== '' && link.mac !== expect.mac.toLowerCase()) {
        problems.push(`interface ${expect.ifname} has MAC ${link.mac}, expected ${expect.mac}`);
      }
      const have = new Set(
        (await pod.addresses(link.index)).map((a) => `${canonicalIp(cidrIp(a.cidr))}/${a.cidr.split('/')[1] ?? ''}`),
      );
      for (const ip of expect.ips) {
        const want = `${canonicalIp(cidrIp(ip.address))}/${ip.address.split('/')[1] ?? ''}`;
        if (!have.has(want)) problems.push(`interface ${expect.ifname} lacks address ${ip.address}`);
      }
      for (const r of expect.routes) {
        const fam = ipFamily(cidrIp(r.dst)) ?? 4;
        const routes = await pod.routes(fam);
        const dst = `${canonicalIp(cidrIp(r.dst))}/${r.dst.split('/')[1] ?? ''}`;
        const found = routes.some(
          (x) =>
            `${canonicalIp(cidrIp(x.dst))}/${x.dst.split('/')[1] ?? ''}` === dst &&
            (r.gw === undefined || (x.gateway !== undefined && canonicalIp(x.gateway) === canonicalIp(r.gw))),
        );
        if (!found)
          problems.push(`route to ${r.dst}${r.gw === undefined ? '' : ` via ${r.gw}`} is missing in ${expect.netns}`);
      }
    } finally {
      pod.close();
    }
    return problems;
  }

  async hostInterface(name: string): Promise<{ name: string; mac: string } | undefined> {
    const l = await this.host.link(name);
    return l === undefined ? undefined : { name: l.name, mac: l.mac };
  }

  netnsExists(netns: string): Promise<boolean> {
    return Promise.resolve(existsSync(netns));
  }

  async advertise(req: { netns: string; ifname: string; ips: readonly CniIpConfig[] }): Promise<void> {
    const v4 = req.ips.map((i) => cidrIp(i.address)).filter((ip) => ipFamily(ip) === 4);
    if (v4.length === 0) return;
    let pod: Netlink;
    try {
      pod = this.openPodNetlink(req.netns);
    } catch {
      return; // the Pod is gone already
    }
    let fd: number | undefined;
    try {
      const link = await pod.link(req.ifname);
      if (link === undefined) return;
      fd = inNetns(req.netns, () => openPacketSocket());
      const frames = v4.map((ip) => gratuitousArp(link.mac, ip));
      for (let round = 0; round < 3; round++) {
        if (round > 0) await this.clock.sleep(50);
        for (const f of frames) sendFrame(fd, link.index, f, ETH_P_ARP);
      }
    } catch (err) {
      if (!(err instanceof HostNetworkError) && !(err instanceof PodInterfaceError)) throw err;
      this.logger.debug('gratuitous ARP not sent', { netns: req.netns, ifname: req.ifname, err });
    } finally {
      if (fd !== undefined) closeFd(fd);
      pod.close();
    }
  }
}
