/**
 * Node clean-up (`antrea-agent --cleanup`), for removing the agent from a Node: undoes what the
 * agent leaves on the host's own networking after it stops. Today that is the uplink bridge of
 * OVS's userspace datapath: the Node's addresses and gateway routes go back from br-phy to the
 * uplink and br-phy is deleted (what Antrea's RestoreOVSBridge does for its uplink bridge).
 *
 * Why a separate command and not the agent's shutdown: a stopping agent deliberately leaves the
 * datapath in place so Pods keep their network while it restarts; with the userspace datapath,
 * tunnels to other Nodes need the underlay address on br-phy, so restoring the uplink at every stop
 * would cut cross-Node traffic for the whole restart. br-int, its ports and the Pods are left
 * alone: the container runtime owns the Pods (their CNI DEL removes their ports).
 */
import type { HostInterface } from '../host/node-network.ts';
import { ovsSocketEndpoint, type PlatformStrategy } from '../host/platform.ts';
import { OvsdbBridge } from '../ovs/ovsdb/bridge.ts';
import { OvsdbClient } from '../ovs/ovsdb/client.ts';
import type { Clock } from '../util/clock.ts';
import { type Logger, nullLogger } from '../util/log.ts';
import type { AgentConfig } from './config.ts';
import { teardownUplinkBridge, UPLINK_BRIDGE, uplinkPortName } from './uplink-bridge.ts';

export interface CleanupReport {
  /** The uplink that got the Node's addresses back, when br-phy existed. */
  readonly uplinkRestored: HostInterface | undefined;
}

/**
 * Restores the uplink from br-phy and deletes br-phy. Nothing to undo (no br-phy, or a platform
 * without it): nothing happens. Safe to repeat. The agent must not be running.
 */
export async function cleanupNode(o: {
  readonly config: AgentConfig;
  readonly platform: PlatformStrategy;
  readonly logger?: Logger;
  readonly clock?: Clock;
}): Promise<CleanupReport> {
  const logger = (o.logger ?? nullLogger).child({ component: 'cleanup' });
  const endpoint = ovsSocketEndpoint(o.platform.os, o.config.ovsRunDir, 'db.sock');
  const ovsdb = await OvsdbClient.connect({
    endpoint,
    logger,
    timeoutMs: 30_000,
    ...(o.clock === undefined ? {} : { clock: o.clock }),
  });
  try {
    const bridge = new OvsdbBridge(ovsdb, UPLINK_BRIDGE, { logger });
    if (bridge.get() === undefined) {
      logger.info('no uplink bridge: nothing to restore');
      return { uplinkRestored: undefined };
    }
    const uplink = uplinkPortName(bridge);
    const restored = await teardownUplinkBridge(bridge, o.platform.nodeNetwork);
    logger.info('uplink restored and uplink bridge deleted', {
      bridge: UPLINK_BRIDGE,
      uplink,
      addresses: restored?.addresses,
    });
    return { uplinkRestored: restored };
  } finally {
    await ovsdb.close();
  }
}
