/**
 * Host networking of a Linux Node around the OVS bridge: sysctls, the transport interface, and the
 * gateway device (antrea-gw0) once OVS has created it. Everything acts on the namespace the agent
 * runs in (the lab runs each agent inside its Node's namespace), through netlink and /proc/sys.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { HostNetworkError } from '../../common/host/errors.ts';
import type {
  GatewaySpec,
  HostInterface,
  HostPrepareOptions,
  NodeNetwork,
  TransportSelector,
} from '../../common/host/node-network.ts';
import { type Clock, systemClock } from '../../common/util/clock.ts';
import { errorMessage } from '../../common/util/errors.ts';
import { canonicalIp, cidrIp } from '../../common/util/ip.ts';
import { type Logger, nullLogger } from '../../common/util/log.ts';
import type { AddressInfo, LinkInfo, Netlink } from './netlink.ts';

/** Where sysctls live (tests point it elsewhere). */
export const PROC_SYS = '/proc/sys';

/**
 * Sets a sysctl (a path under /proc/sys, with '/' separators, e.g. net/ipv4/ip_forward) when its
 * value differs. Returns whether it changed anything.
 */
export function setSysctl(key: string, value: string, root = PROC_SYS): boolean {
  const path = `${root}/${key}`;
  try {
    if (readFileSync(path, 'utf8').trim() === value) return false;
    writeFileSync(path, value);
    return true;
  } catch (err) {
    throw new HostNetworkError('HOST_OPERATION_FAILED', `sysctl ${key}=${value}: ${errorMessage(err)}`, { cause: err });
  }
}

export interface LinuxNodeNetworkOptions {
  readonly host: Netlink;
  readonly logger?: Logger;
  readonly clock?: Clock;
  readonly procSys?: string;
}

function sameAddress(a: string, b: string): boolean {
  return canonicalIp(cidrIp(a)) === canonicalIp(cidrIp(b)) && a.split('/')[1] === b.split('/')[1];
}

export class LinuxNodeNetwork implements NodeNetwork {
  private readonly host: Netlink;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly procSys: string;

  constructor(opts: LinuxNodeNetworkOptions) {
    this.host = opts.host;
    this.logger = (opts.logger ?? nullLogger).child({ component: 'node-network' });
    this.clock = opts.clock ?? systemClock;
    this.procSys = opts.procSys ?? PROC_SYS;
  }

  prepareHost(opts: HostPrepareOptions): Promise<void> {
    if (opts.ipv4 && setSysctl('net/ipv4/ip_forward', '1', this.procSys)) this.logger.info('enabled IPv4 forwarding');
    if (opts.ipv6 && setSysctl('net/ipv6/conf/all/forwarding', '1', this.procSys)) {
      this.logger.info('enabled IPv6 forwarding');
    }
    if (opts.userspaceDatapath === true) {
      // Answer ARP only for addresses of the receiving interface: a Pod asking for its gateway
      // must get antrea-gw0's MAC, not that of its host-side veth (which the kernel also sees).
      for (const scope of ['all', 'default']) {
        if (setSysctl(`net/ipv4/conf/${scope}/arp_ignore`, '1', this.procSys)) {
          this.logger.info('set arp_ignore=1 for the userspace datapath', { scope });
        }
      }
    }
    return Promise.resolve();
  }

  private static describe(link: LinkInfo, addrs: readonly AddressInfo[]): HostInterface {
    return {
      name: link.name,
      index: link.index,
      mtu: link.mtu,
      mac: link.mac,
      addresses: addrs.filter((a) => a.index === link.index && a.scope === 0).map((a) => a.cidr),
    };
  }

  async transportInterface(sel: TransportSelector): Promise<HostInterface> {
    const links = await this.host.links();
    const addrs = await this.host.addresses();
    if (sel.name !== '') {
      const link = links.find((l) => l.name === sel.name);
      if (link === undefined) {
        throw new HostNetworkError('HOST_INTERFACE_NOT_FOUND', `transport interface ${sel.name} does not exist`);
      }
      return LinuxNodeNetwork.describe(link, addrs);
    }
    const wanted = new Set(sel.nodeIPs.map(canonicalIp));
    const hit = addrs.find((a) => wanted.has(canonicalIp(cidrIp(a.cidr))));
    const link = hit === undefined ? undefined : links.find((l) => l.index === hit.index);
    if (link === undefined) {
      throw new HostNetworkError(
        'HOST_INTERFACE_NOT_FOUND',
        `no interface holds the Node IP ${sel.nodeIPs.join(', ')} (set transportInterface or defaultMTU)`,
      );
    }
    return LinuxNodeNetwork.describe(link, addrs);
  }

  /** Waits until device `name` exists (it may be an OVS internal port just created). */
  private async waitForLink(name: string, what: string, timeoutMs: number): Promise<LinkInfo> {
    const deadline = this.clock.monotonic() + timeoutMs;
    let link = await this.host.link(name);
    while (link === undefined) {
      if (this.clock.monotonic() > deadline) {
        throw new HostNetworkError(
          'HOST_INTERFACE_NOT_FOUND',
          `${what} ${name} did not appear within ${timeoutMs}ms (is ovs-vswitchd running?)`,
        );
      }
      await this.clock.sleep(20);
      link = await this.host.link(name);
    }
    return link;
  }

  async moveTransportAddresses(spec: { from: string; to: string; appearTimeoutMs?: number }): Promise<HostInterface> {
    const to = await this.waitForLink(spec.to, 'device', spec.appearTimeoutMs ?? 10_000);
    const from = await this.host.link(spec.from);
    if (from === undefined) throw new HostNetworkError('HOST_INTERFACE_NOT_FOUND', `${spec.from} does not exist`);
    if (!to.up) await this.host.setLink(to.index, { up: true });
    const addrs = (await this.host.addresses(from.index)).filter((a) => a.scope === 0);
    if (addrs.length > 0) {
      // Routes out of `from` through a gateway disappear with its addresses: keep them to re-add.
      const routes = [...(await this.host.routes(4)), ...(await this.host.routes(6))].filter(
        (r) => r.oif === from.index && r.gateway !== undefined,
      );
      for (const a of addrs) await this.host.addAddress(to.index, a.cidr);
      for (const a of addrs) await this.host.deleteAddress(from.index, a.cidr);
      for (const r of routes) {
        await this.addRouteOnceReachable(spec.to, {
          dst: r.dst,
          ...(r.gateway === undefined ? {} : { gateway: r.gateway }),
          oif: to.index,
          protocol: r.protocol,
        });
      }
      this.logger.info('moved the transport addresses', {
        from: spec.from,
        to: spec.to,
        addresses: addrs.map((a) => a.cidr),
        routes: routes.map((r) => `${r.dst} via ${r.gateway ?? ''}`),
      });
    }
    const final = await this.host.link(spec.to);
    if (final === undefined) throw new HostNetworkError('HOST_INTERFACE_NOT_FOUND', `${spec.to} vanished`);
    return LinuxNodeNetwork.describe(final, await this.host.addresses(final.index));
  }

  /**
   * Adds a gateway route out of `linkName`, retrying for up to `timeoutMs` while the kernel answers
   * ENETUNREACH: ovs-vswitchd may still be taking the bridge's fresh internal port down and up,
   * and while it is down its connected route, through which the gateway is reached, is gone. Any
   * other error, or ENETUNREACH past the deadline, is thrown.
   */
  private async addRouteOnceReachable(
    linkName: string,
    route: Parameters<Netlink['addRoute']>[0],
    timeoutMs = 5_000,
  ): Promise<void> {
    const deadline = this.clock.monotonic() + timeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.host.addRoute(route);
        if (attempt > 1) this.logger.info('gateway route added after retrying', { link: linkName, attempt });
        return;
      } catch (err) {
        const errno = err instanceof HostNetworkError ? err.details['errno'] : undefined;
        if (errno !== 'ENETUNREACH' || this.clock.monotonic() >= deadline) throw err;
        const link = await this.host.link(linkName);
        if (link !== undefined && !link.up) await this.host.setLink(link.index, { up: true });
        await this.clock.sleep(50);
      }
    }
  }

  async configureGateway(spec: GatewaySpec): Promise<HostInterface> {
    const timeoutMs = spec.appearTimeoutMs ?? 10_000;
    const link = await this.waitForLink(spec.name, 'gateway', timeoutMs);
    if (link.mtu !== spec.mtu) await this.host.setLink(link.index, { mtu: spec.mtu });
    const current = (await this.host.addresses(link.index)).filter((a) => a.scope === 0);
    for (const want of spec.addresses) {
      if (!current.some((a) => sameAddress(a.cidr, want))) await this.host.addAddress(link.index, want);
    }
    for (const have of spec.keepOtherAddresses === true ? [] : current) {
      if (!spec.addresses.some((w) => sameAddress(have.cidr, w))) {
        this.logger.info('removing a stale gateway address', { gateway: spec.name, address: have.cidr });
        await this.host.deleteAddress(link.index, have.cidr);
      }
    }
    if (!link.up) await this.host.setLink(link.index, { up: true });
    // ARP requests from the gateway must carry its own address to pass ARP SpoofGuard.
    setSysctl(`net/ipv4/conf/${spec.name}/arp_announce`, '1', this.procSys);
    const final = await this.host.link(spec.name);
    if (final === undefined) throw new HostNetworkError('HOST_INTERFACE_NOT_FOUND', `gateway ${spec.name} vanished`);
    return LinuxNodeNetwork.describe(final, await this.host.addresses(final.index));
  }
}
