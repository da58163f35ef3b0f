/**
 * Helpers shared by the Pod interface code (veth Pods and chained Pods): a netlink socket inside a
 * Pod's namespace, and the host side's ARP silence.
 */
import { existsSync } from 'node:fs';
import { podInterfaceError } from '../../common/host/errors.ts';
import { errorMessage } from '../../common/util/errors.ts';
import { inNetns } from './libc.ts';
import { Netlink } from './netlink.ts';
import { setSysctl } from './node-network.ts';

/** A netlink socket inside a Pod's namespace; POD_NETNS_NOT_FOUND if it does not exist. */
export function openPodNetlink(netns: string): Netlink {
  try {
    return Netlink.openInNetns(netns);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw podInterfaceError('POD_NETNS_NOT_FOUND', `network namespace ${netns} does not exist`, err);
    }
    throw podInterfaceError(
      'POD_NETNS_NOT_FOUND',
      `${netns} is not a usable network namespace: ${errorMessage(err)}`,
      err,
    );
  }
}

/**
 * Makes a host-side Pod link never answer ARP (arp_ignore=8): with the userspace datapath the
 * kernel still sees its frames and would answer a Pod's ARP for the gateway with the veth's MAC.
 * With `noIpv6`, the link also gets no IPv6 (link-local) address (call it before the link comes
 * up): it needs none, and ovs-vswitchd tracks every address of its ports (its tunnel code rescans
 * them on each link change), so each one would slow every later Pod's port.
 * `hostNetns`: the namespace the link lives in when it is not this process's own. Idempotent.
 */
export function silenceHostArp(name: string, hostNetns: string | undefined, o: { noIpv6?: boolean } = {}): void {
  const set = (): void => {
    setSysctl(`net/ipv4/conf/${name}/arp_ignore`, '8');
    if (o.noIpv6 === true && existsSync(`/proc/sys/net/ipv6/conf/${name}`)) {
      setSysctl(`net/ipv6/conf/${name}/disable_ipv6`, '1');
    }
  };
  if (hostNetns === undefined) set();
  else inNetns(hostNetns, set);
}
