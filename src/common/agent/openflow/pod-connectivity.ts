/**
 * The PodConnectivity feature (Antrea's featurePodConnectivity; facts §1.6, §1.7, §1.9): the
 * pipeline's base flows for the gateway, the tunnel and conntrack, and the per-Pod flows
 * (classifier, spoof guard, ARP spoof guard, L2 and L3 forwarding) installed before the CNI server
 * answers an ADD and removed on DEL.
 *
 * IPv4 only for now: IPv6 Pods get no SpoofGuard/L3 flows yet (and would be dropped by SpoofGuard).
 * The Service, NetworkPolicy and Egress features add their own tables around these.
 */
import type { Flow } from '../../ovs/openflow/flow.ts';
import type { PodFlowClient, PodFlowTarget } from '../cniserver/server.ts';
import { ValidationError } from '../../util/errors.ts';
import { cidrIp, firstHostIp, ipFamily } from '../../util/ip.ts';
import type { BridgeClient } from './bridge.ts';
import { Nat } from './builder.ts';
import type { CookieAllocator, CookieCategory } from './cookie.ts';
import {
  ConnSourceCTMarkField,
  CT_ZONE,
  FromExternalRegMark,
  FromGatewayCTMark,
  FromGatewayRegMark,
  FromLocalRegMark,
  FromPodRegMark,
  FromTunnelRegMark,
  NotConnSNATCTMark,
  NotRewriteMACRegMark,
  OutputToOFPortRegMark,
  PktSourceField,
  PRIORITY,
  RewriteMACRegMark,
  TargetOFPortField,
  ToGatewayRegMark,
  ToTunnelRegMark,
} from './fields.ts';
import type { Feature, RealizedPipeline } from './framework.ts';
import { T, type TableDef } from './pipeline.ts';

/** The MAC the agent uses as next hop for traffic to remote Nodes (Antrea's GlobalVirtualMAC). */
export const GLOBAL_VIRTUAL_MAC = 'aa:bb:cc:dd:ee:ff';

export interface PodConnectivityConfig {
  readonly cookies: CookieAllocator;
  readonly gateway: { readonly ofport: number; readonly mac: string; readonly ips: readonly string[] };
  /** Absent in noEncap mode. */
  readonly tunnel?: { readonly ofport: number };
  /** The Node's Pod CIDRs. */
  readonly podCIDRs: readonly string[];
  /**
   * networkPolicyOnly (CNI chaining): IPAM and routing belong to the primary plugin, so Pods are
   * forwarded by IP: a static ARP responder answers every ARP request with the virtual MAC, each
   * local Pod gets an L3 flow by its IP, and everything else goes to the gateway for the host to
   * route; no flow for the local Pod CIDR.
   */
  readonly networkPolicyOnly?: boolean;
}

/** A remote Node as the pipeline sees it (facts §1.8). */
export interface PeerNodeFlowTarget {
  readonly name: string;
  /** The remote Node's Pod CIDRs; each one's gateway is its first address. */
  readonly podCIDRs: readonly string[];
  /** The remote Node's transport IPv4 address (tun_dst). */
  readonly nodeIP: string;
  /** Through the tunnel (tun_dst = nodeIP), or to the gateway for the host to route. */
  readonly tunnel: boolean;
}

/** The flow-cache key of one remote Node's flows (Antrea keys them by Node name). */
export function nodeFlowKey(nodeName: string): string {
  return `node/${nodeName}`;
}

/** The flow-cache key of one Pod's flows (Antrea keys them by OVS port name). */
export function podFlowKey(portName: string): string {
  return `pod/${portName}`;
}

export class PodConnectivityFeature implements Feature {
  readonly name = 'PodConnectivity';
  readonly category: CookieCategory = 'PodConnectivity';
  private readonly cfg: PodConnectivityConfig;

  constructor(cfg: PodConnectivityConfig) {
    if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(cfg.gateway.mac)) {
      throw new ValidationError('gateway.mac', `invalid MAC ${JSON.stringify(cfg.gateway.mac)}`);
    }
    this.cfg = cfg;
  }

  requiredTables(): readonly TableDef[] {
    return [
      T.ARPSpoofGuard,
      T.ARPResponder,
      T.Classifier,
      T.SpoofGuard,
      T.ConntrackZone,
      T.ConntrackState,
      T.L3Forwarding,
      T.L3DecTTL,
      T.L2ForwardingCalc,
      T.ConntrackCommit,
      T.Output,
    ];
  }

  private get cookie(): bigint {
    return this.cfg.cookies.request('PodConnectivity');
  }

  /** Node-wide flows: gateway, tunnel, conntrack, TTL and output. */
  initialFlows(p: RealizedPipeline): readonly Flow[] {
    const c = this.cookie;
    const gw = this.cfg.gateway;
    const gw4 = gw.ips.filter((ip) => ipFamily(ip) === 4);
    const cidr4 = this.cfg.podCIDRs.filter((cidr) => ipFamily(cidrIp(cidr)) === 4);
    const out: Flow[] = [];
    const table = (t: TableDef): ReturnType<RealizedPipeline['table']> => p.table(t);

    // ARP: the gateway may announce its own address; everything accepted goes to NORMAL.
    for (const ip of gw4) {
      out.push(
        table(T.ARPSpoofGuard)
          .flow(PRIORITY.normal)
          .cookie(c)
          .matchProtocol('arp')
          .matchInPort(gw.ofport)
          .matchARPSha(gw.mac)
          .matchARPSpa(ip)
          .next(),
      );
    }
    out.push(table(T.ARPResponder).flow(PRIORITY.low).cookie(c).matchProtocol('arp').normal().done());

    // Classifier: where packets come from.
    for (const ip of gw4) {
      out.push(
        table(T.Classifier)
          .flow(PRIORITY.high)
          .cookie(c)
          .matchProtocol('ip')
          .matchInPort(gw.ofport)
          .matchSrcIP(ip)
          .loadRegMark(FromGatewayRegMark, FromLocalRegMark)
          .gotoStage('validation'),
      );
    }
    out.push(
      table(T.Classifier)
        .flow(PRIORITY.normal)
        .cookie(c)
        .matchInPort(gw.ofport)
        .loadRegMark(FromGatewayRegMark, FromExternalRegMark)
        .gotoStage('validation'),
    );
    if (this.cfg.tunnel !== undefined) {
      out.push(
        table(T.Classifier)
          .flow(PRIORITY.normal)
          .cookie(c)
          .matchInPort(this.cfg.tunnel.ofport)
          .loadRegMark(FromTunnelRegMark, RewriteMACRegMark)
          .gotoStage('conntrackState'),
      );
    }
    // SpoofGuard: the gateway is trusted.
    out.push(table(T.SpoofGuard).flow(PRIORITY.normal).cookie(c).matchProtocol('ip').matchInPort(gw.ofport).next());

    // Conntrack: every IP packet through zone 65520 (with NAT), invalid connections dropped.
    out.push(
      table(T.ConntrackZone)
        .flow(PRIORITY.normal)
        .cookie(c)
        .matchProtocol('ip')
        .ct({ table: table(T.ConntrackState), zone: CT_ZONE.CtZone, nat: Nat.restore() })
        .done(),
    );
    out.push(
      table(T.ConntrackState)
        .flow(PRIORITY.normal)
        .cookie(c)
        .matchProtocol('ip')
        .matchCTState({ inv: true, trk: true })
        .done(),
    );

    // L3Forwarding: to the gateway, replies of connections from the gateway, and local Pods.
    for (const ip of gw4) {
      out.push(
        table(T.L3Forwarding)
          .flow(PRIORITY.high)
          .cookie(c)
          .matchProtocol('ip')
          .matchDstIP(ip)
          .setDstMAC(gw.mac)
          .loadRegMark(ToGatewayRegMark)
          .gotoTable(table(T.L3DecTTL)),
      );
    }
    out.push(
      table(T.L3Forwarding)
        .flow(PRIORITY.high)
        .cookie(c)
        .matchProtocol('ip')
        .matchCTState({ rpl: true, trk: true })
        .matchCTMark(FromGatewayCTMark)
        .setDstMAC(gw.mac)
        .loadRegMark(ToGatewayRegMark)
        .gotoTable(table(T.L3DecTTL)),
    );
    if (this.cfg.networkPolicyOnly === true) {
      out.push(...this.policyOnlyFlows(p));
    } else {
      for (const cidr of cidr4) {
        out.push(
          table(T.L3Forwarding)
            .flow(PRIORITY.normal)
            .cookie(c)
            .matchProtocol('ip')
            .matchRegMark(NotRewriteMACRegMark)
            .matchDstIP(cidr)
            .gotoStage('switching'),
        );
      }
    }
    // L3DecTTL: packets from the gateway keep their TTL (the host routed them already).
    out.push(
      table(T.L3DecTTL).flow(PRIORITY.high).cookie(c).matchProtocol('ip').matchRegMark(FromGatewayRegMark).next(),
    );
    out.push(table(T.L3DecTTL).flow(PRIORITY.normal).cookie(c).matchProtocol('ip').decTTL().next());

    // L2ForwardingCalc: the gateway and the tunnel by destination MAC.
    out.push(
      table(T.L2ForwardingCalc)
        .flow(PRIORITY.normal)
        .cookie(c)
        .matchDstMAC(gw.mac)
        .loadToField(TargetOFPortField, gw.ofport)
        .loadRegMark(OutputToOFPortRegMark)
        .next(),
    );
    if (this.cfg.tunnel !== undefined) {
      out.push(
        table(T.L2ForwardingCalc)
          .flow(PRIORITY.normal)
          .cookie(c)
          .matchDstMAC(GLOBAL_VIRTUAL_MAC)
          .loadToField(TargetOFPortField, this.cfg.tunnel.ofport)
          .loadRegMark(OutputToOFPortRegMark)
          .next(),
      );
    }
    // ConntrackCommit: new connections remember where they came from (ct_mark[0..3]).
    out.push(
      table(T.ConntrackCommit)
        .flow(PRIORITY.normal)
        .cookie(c)
        .matchProtocol('ip')
        .matchCTState({ new: true, trk: true })
        .matchCTMark(NotConnSNATCTMark)
        .ct({
          commit: true,
          table: table(T.Output),
          zone: CT_ZONE.CtZone,
          exec: [ConnSourceCTMarkField.moveFrom(PktSourceField)],
        })
        .done(),
    );
    // Output: to the port chosen in reg1.
    out.push(
      table(T.Output)
        .flow(PRIORITY.normal)
        .cookie(c)
        .matchRegMark(OutputToOFPortRegMark)
        .outputToField(TargetOFPortField)
        .done(),
    );
    return out;
  }

  /**
   * networkPolicyOnly's Node-wide flows (Antrea's arpResponderStaticFlow and l3FwdFlowRouteToGW):
   * every ARP request is answered with the virtual MAC (target and sender addresses swapped through
   * reg2), and IP traffic no Pod flow claims goes to the gateway.
   */
  private policyOnlyFlows(p: RealizedPipeline): Flow[] {
    const c = this.cookie;
    return [
      p
        .table(T.ARPResponder)
        .flow(PRIORITY.normal)
        .cookie(c)
        .matchProtocol('arp')
        .matchARPOp(1)
        .moveField('eth_src', 'eth_dst')
        .setSrcMAC(GLOBAL_VIRTUAL_MAC)
        .setARPOp(2)
        .moveField('arp_sha', 'arp_tha')
        .setARPSha(GLOBAL_VIRTUAL_MAC)
        .moveField('arp_tpa', 'reg2')
        .moveField('arp_spa', 'arp_tpa')
        .moveField('reg2', 'arp_spa')
        .outputInPort()
        .done(),
      p
        .table(T.L3Forwarding)
        .flow(PRIORITY.low)
        .cookie(c)
        .matchProtocol('ip')
        .setDstMAC(this.cfg.gateway.mac)
        .loadRegMark(ToGatewayRegMark)
        .gotoTable(p.table(T.L3DecTTL)),
    ];
  }

  /**
   * The flows of one remote Node (facts §1.8), per IPv4 Pod CIDR: an ARP responder answering for
   * the remote gateway with the virtual MAC, and L3Forwarding to the CIDR, either through the tunnel
   * (gateway MAC as source, virtual MAC as destination, tun_dst = the Node's IP) or to the gateway
   * (the host routes it). Throws ValidationError when a tunnel is asked for without a tunnel port.
   */
  nodeFlows(p: RealizedPipeline, peer: PeerNodeFlowTarget): Flow[] {
    const c = this.cookie;
    const gw = this.cfg.gateway;
    if (peer.tunnel && this.cfg.tunnel === undefined) {
      throw new ValidationError('tunnel', `Node ${peer.name} needs the tunnel, but this Node has no tunnel port`);
    }
    if (peer.tunnel && ipFamily(peer.nodeIP) !== 4) {
      throw new ValidationError('nodeIP', `Node ${peer.name}: ${JSON.stringify(peer.nodeIP)} is not an IPv4 address`);
    }
    const out: Flow[] = [];
    for (const cidr of peer.podCIDRs.filter((x) => ipFamily(cidrIp(x)) === 4)) {
      const peerGw = firstHostIp(cidr, 'podCIDRs');
      out.push(
        p
          .table(T.ARPResponder)
          .flow(PRIORITY.normal)
          .cookie(c)
          .matchProtocol('arp')
          .matchARPOp(1)
          .matchARPTpa(peerGw)
          .moveField('eth_src', 'eth_dst')
          .setSrcMAC(GLOBAL_VIRTUAL_MAC)
          .setARPOp(2)
          .moveField('arp_sha', 'arp_tha')
          .setARPSha(GLOBAL_VIRTUAL_MAC)
          .moveField('arp_spa', 'arp_tpa')
          .setARPSpa(peerGw)
          .outputInPort()
          .done(),
      );
      const l3 = p.table(T.L3Forwarding).flow(PRIORITY.normal).cookie(c).matchProtocol('ip').matchDstIP(cidr);
      out.push(
        peer.tunnel
          ? l3
              .setSrcMAC(gw.mac)
              .setDstMAC(GLOBAL_VIRTUAL_MAC)
              .setTunnelDst(peer.nodeIP)
              .loadRegMark(ToTunnelRegMark)
              .gotoTable(p.table(T.L3DecTTL))
          : l3.setDstMAC(gw.mac).loadRegMark(ToGatewayRegMark).gotoTable(p.table(T.L3DecTTL)),
      );
    }
    return out;
  }

  /** The flows of one local Pod (facts §1.6). */
  podFlows(p: RealizedPipeline, pod: PodFlowTarget): Flow[] {
    const c = this.cookie;
    const gw = this.cfg.gateway;
    const mac = pod.mac.toLowerCase();
    const out: Flow[] = [
      p
        .table(T.Classifier)
        .flow(PRIORITY.low)
        .cookie(c)
        .matchInPort(pod.ofport)
        .loadRegMark(FromPodRegMark, FromLocalRegMark)
        .gotoStage('validation'),
      p
        .table(T.L2ForwardingCalc)
        .flow(PRIORITY.normal)
        .cookie(c)
        .matchDstMAC(mac)
        .loadToField(TargetOFPortField, pod.ofport)
        .loadRegMark(OutputToOFPortRegMark)
        .next(),
    ];
    for (const ip of pod.ips.filter((x) => ipFamily(x) === 4)) {
      out.push(
        p
          .table(T.ARPSpoofGuard)
          .flow(PRIORITY.normal)
          .cookie(c)
          .matchProtocol('arp')
          .matchInPort(pod.ofport)
          .matchARPSha(mac)
          .matchARPSpa(ip)
          .next(),
        p
          .table(T.SpoofGuard)
          .flow(PRIORITY.normal)
          .cookie(c)
          .matchProtocol('ip')
          .matchInPort(pod.ofport)
          .matchSrcMAC(mac)
          .matchSrcIP(ip)
          .next(),
        p
          .table(T.L3Forwarding)
          .flow(PRIORITY.normal)
          .cookie(c)
          .matchProtocol('ip')
          .matchRegMark(RewriteMACRegMark)
          .matchDstIP(ip)
          .setSrcMAC(gw.mac)
          .setDstMAC(mac)
          .gotoTable(p.table(T.L3DecTTL)),
      );
      // networkPolicyOnly: traffic to the Pod is routed by its IP whatever its MAC (the Pod and the
      // host address it with the virtual MAC the static ARP responder gives).
      if (this.cfg.networkPolicyOnly === true) {
        out.push(
          p
            .table(T.L3Forwarding)
            .flow(PRIORITY.normal)
            .cookie(c)
            .matchProtocol('ip')
            .matchDstIP(ip)
            .setDstMAC(mac)
            .gotoTable(p.table(T.L3DecTTL)),
        );
      }
    }
    return out;
  }
}

/** Installs and removes Pod flows through the bridge client (the CNI server's PodFlowClient). */
export class PodFlowInstaller implements PodFlowClient {
  private readonly bridge: BridgeClient;
  private readonly feature: PodConnectivityFeature;

  constructor(bridge: BridgeClient, feature: PodConnectivityFeature) {
    this.bridge = bridge;
    this.feature = feature;
  }

  /** Replaces the Pod's flows in one bundle (idempotent). */
  installPodFlows(pod: PodFlowTarget): Promise<void> {
    return this.bridge.replaceFlows(podFlowKey(pod.name), this.feature.podFlows(this.bridge.pipeline, pod));
  }

  /** Deletes the Pod's flows; nothing to delete is not an error. */
  uninstallPodFlows(portName: string): Promise<void> {
    return this.bridge.deleteFlows(podFlowKey(portName));
  }
}

/** Installs and removes remote Nodes' flows (the NodeRoute controller's NodeFlowClient). */
export class NodeFlowInstaller {
  private readonly bridge: BridgeClient;
  private readonly feature: PodConnectivityFeature;

  constructor(bridge: BridgeClient, feature: PodConnectivityFeature) {
    this.bridge = bridge;
    this.feature = feature;
  }

  /** Makes the Node's flows exactly these, in one bundle (idempotent; replaces a previous set). */
  installNodeFlows(peer: PeerNodeFlowTarget): Promise<void> {
    return this.bridge.replaceFlows(nodeFlowKey(peer.name), this.feature.nodeFlows(this.bridge.pipeline, peer));
  }

  /** Deletes the Node's flows; nothing to delete is not an error. */
  uninstallNodeFlows(nodeName: string): Promise<void> {
    return this.bridge.deleteFlows(nodeFlowKey(nodeName));
  }
}
