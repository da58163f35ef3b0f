/**
 * CNI chaining (trafficEncapMode networkPolicyOnly; Antrea's interceptAdd/interceptDel): antrea
 * runs after a primary plugin that owns IPAM, the Pod's veth pair and the routing. ADD finds the
 * container interface the primary made and its host peer, attaches the peer to br-int, moves the
 * primary's host routes for the Pod to antrea-gw0 (so host traffic to the Pod enters OVS and meets
 * the policy pipeline), and installs the Pod's flows. DEL undoes exactly that: flows, OVS port and
 * the Pod's routes on antrea-gw0; the veth and the IP belong to the primary, whose DEL runs too.
 */
import { CniError, type CniIpConfig, type CniResult } from '../../apis/cni/spec.ts';
import { PodInterfaceError } from '../../host/errors.ts';
import type { ChainedPodInterfaces } from '../../host/pod-interfaces.ts';
import type { OvsBridgeClient, PortSpec } from '../../ovs/ovsdb/bridge.ts';
import { errorMessage } from '../../util/errors.ts';
import { canonicalIp, cidrIp } from '../../util/ip.ts';
import type { Logger } from '../../util/log.ts';
import {
  type ContainerInfo,
  containerPortSpec,
  EXT,
  type InterfaceConfig,
  interfaceKey,
  type InterfaceStore,
} from '../interfacestore.ts';
import type { PodFlowClient } from './server.ts';

export interface ChainedAddRequest {
  readonly containerId: string;
  readonly ifname: string;
  /** CNI_NETNS as the runtime gave it (recorded in the port's external_ids). */
  readonly netns: string;
  /** The namespace as the agent reaches it. */
  readonly agentNetns: string;
  readonly podName: string;
  readonly podNamespace: string;
  /** The primary plugin's result. */
  readonly prevResult: CniResult;
}

export interface ChainedPodsOptions {
  readonly bridge: OvsBridgeClient;
  readonly store: InterfaceStore;
  readonly chaining: ChainedPodInterfaces;
  readonly ovsPortType: PortSpec['type'];
  /** The gateway device (antrea-gw0) the Pods' routes move to. */
  readonly gateway: string;
  /** Turn the Pod side's TX checksum offload off (config, or OVS's userspace datapath). */
  readonly disableTxChecksumOffload: boolean;
  /** The Pod flow client (absent until the pipeline is up). */
  readonly podFlows: () => PodFlowClient | undefined;
  readonly logger: Logger;
}

/**
 * The addresses `prevResult` gives the container interface `ifname` in `netns`: those whose
 * `interface` index points at it, and those without an index. Throws INVALID_NETWORK_CONFIG naming
 * prevResult when there is none.
 */
export function chainedPodIps(prev: CniResult, ifname: string, netns: string): CniIpConfig[] {
  const idx = prev.interfaces.findIndex((i) => i.name === ifname && (i.sandbox === undefined || i.sandbox === netns));
  const ips = prev.ips.filter((ip) => ip.interface === undefined || ip.interface === idx);
  if (ips.length === 0) {
    throw new CniError('INVALID_NETWORK_CONFIG', `prevResult: no address for interface ${ifname} in ${netns}`);
  }
  return ips;
}

export class ChainedPods {
  private readonly o: ChainedPodsOptions;

  constructor(o: ChainedPodsOptions) {
    this.o = o;
  }

  /**
   * Attaches the primary plugin's Pod interface. Not idempotent by itself: the caller removes an
   * interface already stored for the container first. A failure undoes what was done and throws a
   * CniError (INVALID_ENVIRONMENT_VARIABLES for a missing namespace, CONFIG_INTERFACE_FAILURE
   * otherwise).
   */
  async add(req: ChainedAddRequest): Promise<InterfaceConfig> {
    const ips = chainedPodIps(req.prevResult, req.ifname, req.netns);
    let found;
    try {
      found = await this.o.chaining.find(req.agentNetns, req.ifname);
    } catch (err) {
      if (err instanceof PodInterfaceError && err.code === 'POD_NETNS_NOT_FOUND') {
        throw new CniError('INVALID_ENVIRONMENT_VARIABLES', `CNI_NETNS: ${err.message}`, { cause: err });
      }
      throw new CniError(
        'CONFIG_INTERFACE_FAILURE',
        `failed to connect container ${req.containerId} to OVS: ${errorMessage(err)}`,
        { cause: err },
      );
    }
    const name = found.hostInterface.name;
    const owner = this.o.bridge.getPort(name)?.externalIds[EXT.containerId];
    if (owner !== undefined && owner !== req.containerId) {
      throw new CniError('CONFIG_INTERFACE_FAILURE', `host interface ${name} is already used by container ${owner}`);
    }
    let iface: InterfaceConfig & { container: ContainerInfo } = {
      type: 'container',
      name,
      ofport: undefined,
      mac: found.containerInterface.mac,
      ips: ips.map((i) => canonicalIp(cidrIp(i.address))),
      container: {
        containerId: req.containerId,
        podName: req.podName,
        podNamespace: req.podNamespace,
        ifDev: req.ifname,
        netns: req.netns,
      },
    };
    const done = { port: false, routes: false, flows: false };
    try {
      await this.o.bridge.createPort(containerPortSpec(iface, this.o.ovsPortType));
      done.port = true;
      const ofport = await this.o.bridge.waitForOFPort(name);
      iface = { ...iface, ofport };
      done.routes = true; // a partial move is undone too
      const moved = await this.o.chaining.takeOver({
        hostInterfaceName: name,
        gateway: this.o.gateway,
        ...(this.o.disableTxChecksumOffload
          ? { disableTxChecksumOffload: { netns: req.agentNetns, ifname: req.ifname } }
          : {}),
      });
      const flows = this.o.podFlows();
      if (flows !== undefined) {
        done.flows = true;
        await flows.installPodFlows({ ...iface, ofport });
      }
      this.o.store.add(iface);
      this.o.logger.info('chained Pod attached', {
        pod: `${req.podNamespace}/${req.podName}`,
        containerId: req.containerId,
        port: name,
        ofport,
        ips: iface.ips,
        routesMoved: moved,
      });
      return iface;
    } catch (err) {
      await this.undo(iface, done);
      throw new CniError(
        'CONFIG_INTERFACE_FAILURE',
        `failed to connect container ${req.containerId} to OVS: ${errorMessage(err)}`,
        { cause: err },
      );
    }
  }

  /**
   * Detaches a chained Pod: its flows, its OVS port (when it is still this container's) and its
   * routes on the gateway; the store entry goes last. The veth stays (the primary plugin owns it).
   * Each step tolerates absence; safe to repeat.
   */
  async remove(i: InterfaceConfig): Promise<void> {
    await this.o.podFlows()?.uninstallPodFlows(i.name);
    const port = this.o.bridge.getPort(i.name);
    if (port !== undefined && port.externalIds[EXT.containerId] === i.container?.containerId) {
      await this.o.bridge.deletePort(i.name);
    }
    await this.o.chaining.releaseRoutes({ ips: i.ips, gateway: this.o.gateway });
    this.o.store.delete(interfaceKey(i));
  }

  private async undo(i: InterfaceConfig, done: { port: boolean; routes: boolean; flows: boolean }): Promise<void> {
    const steps: [string, boolean, () => Promise<void>][] = [
      ['flows', done.flows, () => this.o.podFlows()?.uninstallPodFlows(i.name) ?? Promise.resolve()],
      ['routes', done.routes, () => this.o.chaining.releaseRoutes({ ips: i.ips, gateway: this.o.gateway })],
      ['port', done.port, () => this.o.bridge.deletePort(i.name)],
    ];
    for (const [what, needed, fn] of steps) {
      if (!needed) continue;
      try {
        await fn();
      } catch (err) {
        this.o.logger.error('undoing a chained ADD failed', { step: what, port: i.name, err });
      }
    }
  }
}
