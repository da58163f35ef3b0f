/**
 * Conntrack settings of the userspace (`netdev`) datapath, applied by the agent on every connection
 * to ovs-vswitchd (they live in the daemon's memory, so a restart loses them).
 *
 * TCP sequence checking is turned off (`dpctl/ct-disable-tcp-seq-chk`). With it on, the userspace
 * conntrack judges a fresh SYN that reuses the 5-tuple of a connection still in SYN_SENT (a client
 * retrying from the same source port after a NetworkPolicy dropped its SYN at the server's Node)
 * invalid, and the pipeline drops `+inv` packets: the pair stays blocked for the SYN_SENT timeout
 * (30 s) after the policy allows it. The kernel's conntrack (the `system` datapath) accepts such a
 * SYN; without the sequence check the userspace one does too. Connection states (new,
 * established, reply direction) are still tracked, so policy decisions are unchanged.
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
