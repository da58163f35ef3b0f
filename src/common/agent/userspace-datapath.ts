/**
 * Work-arounds for the userspace (`netdev`) datapath of ovs-vswitchd, over its unixctl socket.
 *
 * Conntrack settings, applied by the agent on every connection to ovs-vswitchd (they live in the
 * daemon's memory, so a restart loses them): TCP sequence checking is turned off (`dpctl/ct-disable-tcp-seq-chk`). With it on, the userspace
 * conntrack judges a fresh SYN that reuses the 5-tuple of a connection still in SYN_SENT (a client
 * retrying from the same source port after a NetworkPolicy dropped its SYN at the server's Node)
 * invalid, and the pipeline drops `+inv` packets: the pair stays blocked for the SYN_SENT timeout
 * (30 s) after the policy allows it. The kernel's conntrack (the `system` datapath) accepts such a
 * SYN; without the sequence check the userspace one does too. Connection states (new,
 * established, reply direction) are still tracked, so policy decisions are unchanged.
 */
/*
 * Datapath flows after a change of the OpenFlow tables: ovs-vswitchd caches each translation as a
 * datapath flow (a megaflow) and its revalidators re-translate those after every table change.
 * With the userspace datapath of OVS 3.1 a megaflow can keep its old actions while the
 * revalidator's record already holds the new ones: packets then keep following a translation of
 * tables that no longer exist — seen as an allowed pair staying dropped (its datapath flow says
 * `drop`, `ofproto/trace` says allow) until the flow goes idle, which a retrying client never lets
 * happen. The same fault could keep a pair allowed after a policy denied it. So after every
 * committed change (and every replay) the agent purges the datapath's flows
 * (`revalidator/purge`): the next packets are translated from the current tables. The cost is one
 * upcall per active megaflow after a change.
 */
import { unixctl, vswitchdControlSocket } from '../ovs/unixctl.ts';
import type { Logger } from '../util/log.ts';

/**
 * Turns the TCP sequence check of the userspace datapath off. Idempotent. Throws an OvsdbError when
 * ovs-vswitchd's control socket is absent or the command fails.
 */
export async function configureUserspaceConntrack(ovsRunDir: string, logger: Logger): Promise<void> {
  const socket = vswitchdControlSocket(ovsRunDir);
  await unixctl(socket, 'dpctl/ct-disable-tcp-seq-chk');
  logger.info('userspace conntrack: TCP sequence checking disabled', { socket });
}

/**
 * Removes every datapath flow of the ovs-vswitchd whose control socket is `vswitchdSocket`
 * (`revalidator/purge`; it returns once they are gone). Idempotent. Throws an OvsdbError when the
 * control socket is absent or the command fails.
 */
export async function purgeDatapathFlows(vswitchdSocket: string): Promise<void> {
  await unixctl(vswitchdSocket, 'revalidator/purge');
}
