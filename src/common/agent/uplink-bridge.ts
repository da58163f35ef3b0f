/**
 * The uplink bridge for OVS's userspace (netdev) datapath. There, ovs-vswitchd encapsulates tunnel
 * packets itself and sends them by its own routing table (built from the kernel's), which must
 * lead to a port of an OVS bridge: the underlay address has to live on an OVS bridge holding the
 * uplink (OVS Documentation/howto/userspace-tunneling.rst). So the agent puts the transport
 * interface on the netdev bridge `br-phy` (port with `antrea-type=uplink`), gives br-phy's internal
 * port the uplink's MAC and MTU, and moves the Node's addresses and gateway routes onto it; br-phy
 * has no controller and forwards with NORMAL (standalone). `ovs-appctl ovs/route/show` then lists
 * the underlay routes on br-phy and `ovs-appctl tnl/arp/show` the resolved tunnel next hops.
 *
 * {@link teardownUplinkBridge} is the inverse (addresses and routes back to the uplink, br-phy
 * deleted), run by `antrea-agent --cleanup` when the agent is removed from a Node (cleanup.ts says
 * why not at every agent stop).
 */
import type { HostInterface, NodeNetwork } from '../host/node-network.ts';
import type { OvsBridgeClient } from '../ovs/ovsdb/bridge.ts';
import { AntreaError } from '../util/errors.ts';
import { type Logger, nullLogger } from '../util/log.ts';
import { EXT } from './interfacestore.ts';

export const UPLINK_BRIDGE = 'br-phy';

/** The uplink port on br-phy, if the bridge holds one. */
export function uplinkPortName(bridge: OvsBridgeClient): string | undefined {
  return bridge.listPorts().find((p) => p.externalIds[EXT.type] === 'uplink')?.name;
}

/**
 * Puts `transport` (the Node's transport interface, or br-phy itself after a restart) behind br-phy
 * and returns br-phy's internal interface, which now holds the Node's addresses. Idempotent: on a
 * Node already set up, it checks the bridge and port and moves nothing.
 */
export async function setupUplinkBridge(
  bridge: OvsBridgeClient,
  net: NodeNetwork,
  transport: HostInterface,
  logger: Logger = nullLogger,
): Promise<HostInterface> {
  if (net.moveTransportAddresses === undefined) {
    throw new AntreaError('UPLINK_BRIDGE_UNSUPPORTED', 'this platform cannot move the transport addresses');
  }
  let uplink: { name: string; mac: string; mtu: number };
  if (transport.name === bridge.name) {
    const name = uplinkPortName(bridge);
    if (name === undefined) {
      throw new AntreaError('UPLINK_BRIDGE_BROKEN', `${bridge.name} holds the Node address but has no uplink port`);
    }
    uplink = { name, mac: transport.mac, mtu: transport.mtu };
  } else {
    uplink = transport;
  }
  await bridge.create({ datapathType: 'netdev', otherConfig: { hwaddr: uplink.mac } });
  await bridge.createPorts([
    { name: uplink.name, type: 'system', externalIds: { [EXT.type]: 'uplink' } },
    { name: bridge.name, type: 'internal', mtuRequest: uplink.mtu },
  ]);
  const moved = await net.moveTransportAddresses({ from: uplink.name, to: bridge.name });
  logger.info('uplink bridge ready', { bridge: bridge.name, uplink: uplink.name, addresses: moved.addresses });
  return moved;
}

/**
 * Moves the addresses and gateway routes back to the uplink, then deletes br-phy (the uplink keeps
 * working as a plain host interface). Returns the uplink as it is afterwards, or undefined when
 * there was no uplink port to give them to. Absent bridge: nothing happens; safe to repeat. Called
 * by {@link cleanupNode} (`antrea-agent --cleanup`).
 */
export async function teardownUplinkBridge(
  bridge: OvsBridgeClient,
  net: NodeNetwork,
): Promise<HostInterface | undefined> {
  if (bridge.get() === undefined) return undefined;
  const uplink = uplinkPortName(bridge);
  let restored: HostInterface | undefined;
  if (uplink !== undefined && net.moveTransportAddresses !== undefined) {
    restored = await net.moveTransportAddresses({ from: bridge.name, to: uplink });
  }
  await bridge.delete();
  return restored;
}
