/**
 * The Service feature (Antrea's featureService, AntreaProxy datapath; facts §1.10, §5.3): Service
 * load balancing inside OVS.
 *
 *   PreRoutingClassifier  resubmit NodePortMark, EpToSelect, resubmit SessionAffinity, goto ServiceLB
 *   NodePortMark          dst is a NodePort address (Node IP, 169.254.0.252) → reg4[19]
 *   SessionAffinity       learned client → Endpoint flows (EpSelected), else nothing
 *   ServiceLB             Service IP:port (or NodePort) with EpToSelect → select group;
 *                         with affinity: the group resubmits here with EpToLearn → learn + EpSelected
 *   group (select)        one bucket per Endpoint: reg3 = Endpoint IP, reg4[0..15] = port →
 *                         resubmit EndpointDNAT; no Endpoint: SvcNoEp → EndpointDNAT → packet-in
 *   EndpointDNAT          per Endpoint: ct(commit, zone 65520, nat(dst=ep:port), ServiceCTMark)
 *   SNATMark / SNAT       hairpin (a Pod reaching itself) SNATed to the gateway IP (from Pods) or
 *                         169.254.0.253 (from the gateway) in zone 65521; NodePort from outside to
 *                         a remote Endpoint SNATed to the gateway IP (tunnel) or 169.254.0.253
 *   UnSNAT                replies to those addresses un-SNATed before the main zone
 *
 * The node-wide flows come from {@link ServiceFeature.initialFlows}; per Service port
 * {@link ServiceFeature.serviceFlows} and {@link ServiceFeature.serviceGroup}; per Endpoint
 * {@link ServiceFeature.endpointFlows} and {@link ServiceFeature.hairpinFlows} (shared by every
 * Service port using that Endpoint: the caller reference-counts them). IPv4 only.
 */
import type { Flow } from '../../ovs/openflow/flow.ts';
import { Group } from '../../ovs/openflow/group.ts';
import { parseIpv4 } from '../../ovs/openflow/bytes.ts';
import { ValidationError } from '../../util/errors.ts';
import { cidrIp, ipFamily } from '../../util/ip.ts';
import { actions, LearnBuilder, Nat, type FlowBuilder } from './builder.ts';
import type { CookieAllocator, CookieCategory } from './cookie.ts';
import {
  ConnSNATCTMark,
  ConnSourceCTMarkField,
  CT_ZONE,
  EndpointIPField,
  EndpointPortField,
  EpSelectedRegMark,
  EpToLearnRegMark,
  EpToSelectRegMark,
  EpUnionField,
  FromGatewayRegMark,
  FromLocalRegMark,
  FromPodRegMark,
  HairpinCTMark,
  NotServiceCTMark,
  PktSourceField,
  PRIORITY,
  RemoteEndpointRegMark,
  RewriteMACRegMark,
  ServiceCTMark,
  ServiceEPStateField,
  SvcNoEpRegMark,
  ToExternalAddressRegMark,
  ToGatewayRegMark,
  ToNodePortAddressRegMark,
  ToTunnelRegMark,
} from './fields.ts';
import type { Feature, RealizedPipeline } from './framework.ts';
import { T, type TableDef } from './pipeline.ts';

/** Source of hairpin traffic from the gateway after SNAT (Antrea's VirtualServiceIPv4). */
export const VIRTUAL_SERVICE_IP = '169.254.0.253';
/** Where the host DNATs NodePort traffic before sending it into OVS (Antrea's VirtualNodePortDNATIPv4). */
export const VIRTUAL_NODEPORT_DNAT_IP = '169.254.0.252';
/** Packet-in userdata category of "Service has no Endpoint" (Antrea's PacketInCategorySvcReject). */
export const PACKET_IN_CATEGORY_SVC_REJECT = 4;
/** Session-affinity timeouts are OpenFlow hard_timeouts (16 bits). */
export const MAX_AFFINITY_TIMEOUT = 0xffff;

export type ServiceProtocol = 'TCP' | 'UDP' | 'SCTP';
const PROTO = {
  TCP: { match: 'tcp', number: 6, dstField: 'tcp_dst' },
  UDP: { match: 'udp', number: 17, dstField: 'udp_dst' },
  SCTP: { match: 'sctp', number: 132, dstField: 'sctp_dst' },
} as const;

export function isServiceProtocol(p: string): p is ServiceProtocol {
  return p === 'TCP' || p === 'UDP' || p === 'SCTP';
}

export interface ServiceFeatureConfig {
  readonly cookies: CookieAllocator;
  readonly gateway: { readonly ofport: number; readonly mac: string; readonly ips: readonly string[] };
  /**
   * NodePort support: the Node addresses a NodePort answers on (besides the virtual NodePort DNAT
   * IP the host sends NodePort traffic to). Absent: no NodePort flows, no NodePortMark table.
   */
  readonly nodePortAddresses?: readonly string[];
}

/** One Endpoint of a Service port. */
export interface EndpointSpec {
  readonly ip: string;
  readonly port: number;
  /** On this Node (hairpin flows, local group). */
  readonly local: boolean;
  /** A Node address (hostNetwork Endpoint): never marked remote. */
  readonly isNodeAddress?: boolean;
}

/** The flows of one Service entry point (ClusterIP or NodePort) of one Service port. */
export interface ServiceFlowSpec {
  /** The ClusterIP (ignored for NodePort). */
  readonly ip: string;
  /** The Service port, or the NodePort. */
  readonly port: number;
  readonly protocol: ServiceProtocol;
  readonly nodePort: boolean;
  /** The group that selects the Endpoint. */
  readonly groupId: number;
  /**
   * externalTrafficPolicy Local on a NodePort: clients on this Node still reach every Endpoint
   * through this (cluster) group; others use `groupId` (the local group).
   */
  readonly localClientsGroupId?: number;
  /** sessionAffinity ClientIP: the timeout in seconds (1..65535). */
  readonly affinityTimeout?: number;
}

function checkPort(port: number, field: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 0xffff) throw new ValidationError(field, `${port} is not a port`);
}

function checkIPv4(ip: string, field: string): void {
  if (ipFamily(ip) !== 4) throw new ValidationError(field, `${JSON.stringify(ip)} is not an IPv4 address`);
}

export class ServiceFeature implements Feature {
  readonly name = 'Service';
  readonly category: CookieCategory = 'Service';
  private readonly cfg: ServiceFeatureConfig;

  constructor(cfg: ServiceFeatureConfig) {
    cfg.nodePortAddresses?.forEach((ip, i) => checkIPv4(ip, `nodePortAddresses[${i}]`));
    this.cfg = cfg;
  }

  get nodePortEnabled(): boolean {
    return this.cfg.nodePortAddresses !== undefined;
  }

  requiredTables(): readonly TableDef[] {
    return [
      T.UnSNAT,
      T.PreRoutingClassifier,
      ...(this.nodePortEnabled ? [T.NodePortMark] : []),
      T.SessionAffinity,
      T.ServiceLB,
      T.EndpointDNAT,
      T.SNATMark,
      T.SNAT,
    ];
  }

  /** The cookie of Service flows; `objectId` (a group id) scopes learn flows and what they learned. */
  cookie(objectId = 0): bigint {
    return this.cfg.cookies.request('Service', objectId);
  }

  private get gatewayIPv4(): string[] {
    return this.cfg.gateway.ips.filter((ip) => ipFamily(cidrIp(ip)) === 4);
  }

  /** Node-wide Service flows. */
  initialFlows(p: RealizedPipeline): readonly Flow[] {
    const c = this.cookie();
    const out: Flow[] = [];
    const gw = this.gatewayIPv4;

    // UnSNAT: replies to the hairpin SNAT addresses go through the SNAT zone first.
    for (const ip of [VIRTUAL_SERVICE_IP, ...gw]) {
      out.push(
        p
          .table(T.UnSNAT)
          .flow(PRIORITY.normal)
          .cookie(c)
          .matchProtocol('ip')
          .matchDstIP(ip)
          .ct({ table: p.table(T.ConntrackZone), zone: CT_ZONE.SNATCtZone, nat: Nat.restore() })
          .done(),
      );
    }
    // ConntrackState: established connections skip load balancing; Service ones need their MACs rewritten.
    out.push(
      p
        .table(T.ConntrackState)
        .flow(PRIORITY.low)
        .cookie(c)
        .matchProtocol('ip')
        .matchCTState({ new: false, trk: true })
        .matchCTMark(NotServiceCTMark)
        .gotoStage('egressSecurity'),
      // Also +new: a retransmitted first packet is already DNATed by ConntrackZone.
      p
        .table(T.ConntrackState)
        .flow(PRIORITY.low)
        .cookie(c)
        .matchProtocol('ip')
        .matchCTState({ trk: true })
        .matchCTMark(ServiceCTMark)
        .loadRegMark(RewriteMACRegMark)
        .gotoStage('egressSecurity'),
    );
    // PreRoutingClassifier: NodePort marking and affinity lookups return here; ServiceLB continues.
    let pre = p.table(T.PreRoutingClassifier).flow(PRIORITY.normal).cookie(c);
    if (this.nodePortEnabled) pre = pre.resubmit(p.table(T.NodePortMark));
    out.push(pre.loadRegMark(EpToSelectRegMark).resubmit(p.table(T.SessionAffinity)).gotoTable(p.table(T.ServiceLB)));
    if (this.nodePortEnabled) {
      for (const ip of [...(this.cfg.nodePortAddresses ?? []), VIRTUAL_NODEPORT_DNAT_IP]) {
        out.push(
          p
            .table(T.NodePortMark)
            .flow(PRIORITY.normal)
            .cookie(c)
            .matchProtocol('ip')
            .matchDstIP(ip)
            .loadRegMark(ToNodePortAddressRegMark)
            .done(),
        );
      }
    }
    // EndpointDNAT: a Service without Endpoints → packet-in (the agent rejects the connection);
    // a learned Endpoint that is gone → select again.
    out.push(
      p
        .table(T.EndpointDNAT)
        .flow(PRIORITY.normal)
        .cookie(c)
        .matchRegMark(SvcNoEpRegMark)
        .controller({ userdata: Uint8Array.of(PACKET_IN_CATEGORY_SVC_REJECT, 0) })
        .done(),
      p
        .table(T.EndpointDNAT)
        .flow(PRIORITY.low)
        .cookie(c)
        .matchRegMark(EpSelectedRegMark)
        .loadRegMark(EpToSelectRegMark)
        .resubmit(p.table(T.ServiceLB))
        .done(),
    );
    // SNAT: hairpin connections (marked in SNATMark per local Endpoint).
    const snatNext = p.table(T.SNAT).next ?? p.table(T.SNAT);
    const snat = (b: FlowBuilder, ip: string): Flow =>
      b
        .ct({
          commit: true,
          table: snatNext,
          zone: CT_ZONE.SNATCtZone,
          nat: Nat.src(ip),
          exec: [ServiceCTMark, ConnSNATCTMark, HairpinCTMark],
        })
        .done();
    const hairpinNew = (): FlowBuilder =>
      p
        .table(T.SNAT)
        .flow(PRIORITY.normal)
        .cookie(c)
        .matchProtocol('ip')
        .matchCTState({ new: true, trk: true })
        .matchCTMark(HairpinCTMark);
    const [gw4] = gw;
    if (gw4 !== undefined) out.push(snat(hairpinNew().matchRegMark(FromPodRegMark), gw4));
    out.push(snat(hairpinNew().matchRegMark(FromGatewayRegMark), VIRTUAL_SERVICE_IP));
    if (this.nodePortEnabled) {
      // NodePort from outside to an Endpoint on another Node: the reply must come back through this
      // Node, so the connection is SNATed (Antrea's SNATMark flows for ToExternalAddress): to the
      // gateway IP when tunnelled, to the virtual Service IP when routed back out of the gateway.
      const mark = (to: typeof ToTunnelRegMark, exec: readonly (typeof ConnSNATCTMark)[]): Flow =>
        p
          .table(T.SNATMark)
          .flow(PRIORITY.normal)
          .cookie(c)
          .matchProtocol('ip')
          .matchCTState({ new: true, trk: true })
          .matchRegMark(FromGatewayRegMark)
          .matchRegMark(to)
          .matchRegMark(ToExternalAddressRegMark)
          .ct({ commit: true, table: p.table(T.SNAT), zone: CT_ZONE.CtZone, exec: [...exec] })
          .done();
      out.push(mark(ToGatewayRegMark, [ConnSNATCTMark, HairpinCTMark]));
      if (gw4 !== undefined) {
        out.push(
          mark(ToTunnelRegMark, [ConnSNATCTMark]),
          p
            .table(T.SNAT)
            .flow(PRIORITY.low)
            .cookie(c)
            .matchProtocol('ip')
            .matchCTState({ new: true, trk: true })
            .matchCTMark(ConnSNATCTMark)
            .matchRegMark(FromGatewayRegMark)
            .ct({
              commit: true,
              table: snatNext,
              zone: CT_ZONE.SNATCtZone,
              nat: Nat.src(gw4),
              exec: [ServiceCTMark, ConnSNATCTMark],
            })
            .done(),
        );
      }
    }
    out.push(
      p
        .table(T.SNAT)
        .flow(PRIORITY.normal)
        .cookie(c)
        .matchProtocol('ip')
        .matchCTState({ new: false, rpl: false, trk: true })
        .matchCTMark(ConnSNATCTMark)
        .ct({ table: snatNext, zone: CT_ZONE.SNATCtZone, nat: Nat.restore() })
        .done(),
    );
    // Output: a hairpin packet leaves through the port it came in.
    out.push(
      p
        .table(T.Output)
        .flow(PRIORITY.high)
        .cookie(c)
        .matchProtocol('ip')
        .matchCTMark(HairpinCTMark)
        .outputInPort()
        .done(),
    );
    return out;
  }

  /**
   * The select group of one Service port: one bucket (weight 100) per Endpoint, or, with no
   * Endpoint, one bucket marking the packet for rejection.
   */
  serviceGroup(p: RealizedPipeline, groupId: number, endpoints: readonly EndpointSpec[], affinity: boolean): Group {
    const back = affinity ? p.table(T.ServiceLB) : p.table(T.EndpointDNAT);
    if (endpoints.length === 0) {
      return new Group({
        groupId,
        type: 'select',
        buckets: [
          {
            weight: 100,
            actions: actions().loadRegMark(SvcNoEpRegMark).resubmit(p.table(T.EndpointDNAT)).actions,
          },
        ],
      });
    }
    return new Group({
      groupId,
      type: 'select',
      buckets: endpoints.map((ep, i) => {
        checkIPv4(ep.ip, `endpoints[${i}].ip`);
        checkPort(ep.port, `endpoints[${i}].port`);
        let a = actions();
        if (!ep.local && ep.isNodeAddress !== true) a = a.loadRegMark(RemoteEndpointRegMark);
        a = a.loadToField(EndpointIPField, ipv4Number(ep.ip)).loadToField(EndpointPortField, ep.port).resubmit(back);
        return { weight: 100, actions: a.actions };
      }),
    });
  }

  /** ServiceLB flows of one entry point (and the learn flow with session affinity). */
  serviceFlows(p: RealizedPipeline, s: ServiceFlowSpec): Flow[] {
    checkPort(s.port, 'port');
    if (!s.nodePort) checkIPv4(s.ip, 'ip');
    if (s.nodePort && !this.nodePortEnabled) throw new ValidationError('nodePort', 'NodePort support is not enabled');
    const affinity = s.affinityTimeout !== undefined;
    if (affinity && (!Number.isInteger(s.affinityTimeout) || (s.affinityTimeout ?? 0) < 1)) {
      throw new ValidationError('affinityTimeout', `${s.affinityTimeout} is not a positive number of seconds`);
    }
    const proto = PROTO[s.protocol];
    const c = this.cookie();
    const base = (priority: number): FlowBuilder => {
      let b = p.table(T.ServiceLB).flow(priority).cookie(c).matchProtocol(proto.match);
      if (s.nodePort) b = b.matchRegMark(ToNodePortAddressRegMark);
      else b = b.matchDstIP(s.ip);
      return b.matchDstPort(s.port);
    };
    const select = (b: FlowBuilder, groupId: number): Flow => {
      let out = b.matchRegMark(EpToSelectRegMark).loadRegMark(RewriteMACRegMark);
      out = out.loadRegMark(affinity ? EpToLearnRegMark : EpSelectedRegMark);
      if (s.nodePort) out = out.loadRegMark(ToExternalAddressRegMark);
      return out.group(groupId).done();
    };
    const flows: Flow[] = [select(base(PRIORITY.normal), s.groupId)];
    if (s.localClientsGroupId !== undefined) {
      flows.push(select(base(PRIORITY.high).matchRegMark(FromLocalRegMark), s.localClientsGroupId));
    }
    if (affinity) {
      const timeout = Math.min(s.affinityTimeout ?? 0, MAX_AFFINITY_TIMEOUT);
      let learn = LearnBuilder.for(p.table(T.SessionAffinity), PRIORITY.normal)
        .hardTimeout(timeout)
        .deleteLearned()
        .cookie(this.cookie(s.groupId))
        .matchValue('eth_type', 0x0800)
        .matchValue('nw_proto', proto.number)
        .matchField(proto.dstField)
        .matchField('ip_dst')
        .matchField('ip_src')
        .loadField(EndpointPortField)
        .loadField(EndpointIPField)
        .loadMark(EpSelectedRegMark)
        .loadMark(RewriteMACRegMark);
      if (s.nodePort) learn = learn.loadMark(ToExternalAddressRegMark);
      flows.push(
        base(PRIORITY.low)
          .cookie(this.cookie(s.groupId))
          .matchRegMark(EpToLearnRegMark)
          .learn(learn)
          .loadRegMark(EpSelectedRegMark)
          .gotoTable(p.table(T.EndpointDNAT)),
      );
    }
    return flows;
  }

  /** The DNAT flow of one Endpoint (shared by every Service port that selects it). */
  endpointFlows(p: RealizedPipeline, ep: EndpointSpec, protocol: ServiceProtocol): Flow[] {
    checkIPv4(ep.ip, 'endpoint.ip');
    checkPort(ep.port, 'endpoint.port');
    const next = p.table(T.EndpointDNAT).next ?? p.table(T.EndpointDNAT);
    return [
      p
        .table(T.EndpointDNAT)
        .flow(PRIORITY.normal)
        .cookie(this.cookie())
        .matchProtocol(PROTO[protocol].match)
        .matchField(EndpointIPField, ipv4Number(ep.ip))
        .matchField(EpUnionField, (EpSelectedRegMark.value << BigInt(ServiceEPStateField.start)) | BigInt(ep.port))
        .ct({
          commit: true,
          table: next,
          zone: CT_ZONE.CtZone,
          nat: Nat.dst(ep.ip, ep.port),
          // The source type goes into the connection too (as ConntrackCommit does for other
          // connections): replies to the gateway's connections (NodePort) return to the gateway even
          // when they arrive from the tunnel.
          exec: [ServiceCTMark, ConnSourceCTMarkField.moveFrom(PktSourceField)],
        })
        .done(),
    ];
  }

  /** The hairpin mark of one local Endpoint IP: a Pod reaching itself through a Service. */
  hairpinFlows(p: RealizedPipeline, ip: string): Flow[] {
    checkIPv4(ip, 'endpoint.ip');
    return [
      p
        .table(T.SNATMark)
        .flow(PRIORITY.low)
        .cookie(this.cookie())
        .matchProtocol('ip')
        .matchCTState({ new: true, trk: true })
        .matchSrcIP(ip)
        .matchDstIP(ip)
        .ct({ commit: true, table: p.table(T.SNAT), zone: CT_ZONE.CtZone, exec: [ConnSNATCTMark, HairpinCTMark] })
        .done(),
    ];
  }
}

function ipv4Number(ip: string): number {
  return Number(parseIpv4(ip, 'ip'));
}
