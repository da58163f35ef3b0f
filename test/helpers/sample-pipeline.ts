/**
 * A test feature that needs Antrea's default Linux tables (IPv4, encap, AntreaProxy, AntreaPolicy,
 * Egress) and builds, with the framework's builders, the representative flows of facts §1.6-§1.14:
 * Pod classification and spoof guard, tunnel routing, the ARP responder, Service load balancing with
 * a select group, endpoint DNAT with ct(nat), session affinity (learn), conjunctive policy flows,
 * conntrack commit, a packet-in meter and output to a register.
 */
import { Group } from '../../src/common/ovs/openflow/group.ts';
import { Meter } from '../../src/common/ovs/openflow/meter.ts';
import type { Flow } from '../../src/common/ovs/openflow/flow.ts';
import { LearnBuilder, Nat, actions } from '../../src/common/agent/openflow/builder.ts';
import type { CookieAllocator } from '../../src/common/agent/openflow/cookie.ts';
import type { Feature, RealizedPipeline } from '../../src/common/agent/openflow/framework.ts';
import {
  CT_ZONE,
  ConnSourceCTMarkField,
  EndpointIPField,
  EndpointPortField,
  EpSelectedRegMark,
  EpToLearnRegMark,
  EpToSelectRegMark,
  FromGatewayCTMark,
  FromLocalRegMark,
  FromPodRegMark,
  FromTunnelRegMark,
  IngressRuleCTLabel,
  NotServiceCTMark,
  OutputToOFPortRegMark,
  PRIORITY,
  PktSourceField,
  RemoteEndpointRegMark,
  RewriteMACRegMark,
  ServiceCTMark,
  ServiceGroupIDField,
  TargetOFPortField,
  TFIngressConjIDField,
  ToTunnelRegMark,
} from '../../src/common/agent/openflow/fields.ts';
import { T, type TableDef } from '../../src/common/agent/openflow/pipeline.ts';

/** The tables of the default Linux configuration (facts §1.2, numbered 0..28). */
export const DEFAULT_TABLES: readonly TableDef[] = [
  T.ARPSpoofGuard,
  T.ARPResponder,
  T.Classifier,
  T.SpoofGuard,
  T.UnSNAT,
  T.ConntrackZone,
  T.ConntrackState,
  T.PreRoutingClassifier,
  T.SessionAffinity,
  T.ServiceLB,
  T.EndpointDNAT,
  T.AntreaPolicyEgressRule,
  T.EgressRule,
  T.EgressDefaultRule,
  T.EgressMetric,
  T.L3Forwarding,
  T.EgressMark,
  T.L3DecTTL,
  T.SNATMark,
  T.SNAT,
  T.L2ForwardingCalc,
  T.IngressSecurityClassifier,
  T.AntreaPolicyIngressRule,
  T.IngressRule,
  T.IngressDefaultRule,
  T.IngressMetric,
  T.ConntrackCommit,
  T.Output,
];

export const POD_PORT = 5;
export const GW_MAC = '0a:00:00:00:00:01';
export const VIRTUAL_MAC = 'aa:bb:cc:dd:ee:ff';

/** The representative flows, in facts order, with the canonical text each must render to. */
export function sampleFlows(p: RealizedPipeline, cookies: CookieAllocator): Flow[] {
  const pod = cookies.request('PodConnectivity');
  const svc = cookies.request('Service');
  const np = cookies.request('NetworkPolicy');
  const t = (d: TableDef): ReturnType<RealizedPipeline['table']> => p.table(d);
  const learn = LearnBuilder.for(t(T.SessionAffinity), PRIORITY.normal)
    .hardTimeout(300)
    .deleteLearned()
    .cookie(cookies.request('Service', 10))
    .matchValue('eth_type', 0x800)
    .matchValue('nw_proto', 6)
    .matchField('NXM_OF_TCP_DST')
    .matchField('NXM_OF_IP_DST')
    .matchField('NXM_OF_IP_SRC')
    .loadField(EndpointPortField)
    .loadField(RemoteEndpointRegMark.field)
    .loadField(EndpointIPField)
    .loadMark(EpSelectedRegMark)
    .loadMark(RewriteMACRegMark);
  return [
    // §1.14-1: classify a Pod port and mark it local
    t(T.Classifier)
      .flow(PRIORITY.low)
      .cookie(pod)
      .matchInPort(POD_PORT)
      .loadRegMark(FromPodRegMark, FromLocalRegMark)
      .gotoStage('validation'),
    // §1.14-2: anti-spoof
    t(T.SpoofGuard)
      .flow(PRIORITY.normal)
      .cookie(pod)
      .matchProtocol('ip')
      .matchInPort(POD_PORT)
      .matchSrcMAC('fa:b7:53:74:21:a6')
      .matchSrcIP('10.10.0.24')
      .next(),
    // §1.14-3: remote Pod CIDR over the tunnel
    t(T.L3Forwarding)
      .flow(PRIORITY.normal)
      .cookie(pod)
      .matchProtocol('ip')
      .matchDstIP('10.10.1.0/24')
      .setSrcMAC(GW_MAC)
      .setDstMAC(VIRTUAL_MAC)
      .setTunnelDst('192.168.77.103')
      .loadRegMark(ToTunnelRegMark)
      .gotoTable(t(T.L3DecTTL)),
    // §1.14-4: ARP proxy for a peer gateway
    t(T.ARPResponder)
      .flow(PRIORITY.normal)
      .cookie(pod)
      .matchProtocol('arp')
      .matchARPTpa('10.10.1.1')
      .matchARPOp(1)
      .moveField('eth_src', 'eth_dst')
      .setSrcMAC(VIRTUAL_MAC)
      .setARPOp(2)
      .moveField('arp_sha', 'arp_tha')
      .setARPSha(VIRTUAL_MAC)
      .moveField('arp_spa', 'arp_tpa')
      .setARPSpa('10.10.1.1')
      .outputInPort()
      .done(),
    // §1.14-5: ClusterIP to its group
    t(T.ServiceLB)
      .flow(PRIORITY.normal)
      .cookie(svc)
      .matchProtocol('tcp')
      .matchRegMark(EpToSelectRegMark)
      .matchDstIP('10.105.31.235')
      .matchDstPort(80)
      .loadRegMark(RewriteMACRegMark, EpSelectedRegMark)
      .loadToField(ServiceGroupIDField, 10)
      .group(10)
      .done(),
    // §1.10: session affinity learns the selected Endpoint
    t(T.ServiceLB)
      .flow(PRIORITY.low)
      .cookie(svc)
      .matchProtocol('tcp')
      .matchRegMark(EpToLearnRegMark)
      .matchDstIP('10.105.31.235')
      .matchDstPort(80)
      .learn(learn)
      .loadRegMark(EpSelectedRegMark)
      .next(),
    // §1.14-6: DNAT to the Endpoint
    t(T.EndpointDNAT)
      .flow(PRIORITY.normal)
      .cookie(svc)
      .matchProtocol('tcp')
      .matchField(EndpointIPField, 0x0a0a0018)
      .matchField(EndpointPortField, 80)
      .matchRegMark(EpSelectedRegMark)
      .ct({
        commit: true,
        table: t(T.AntreaPolicyEgressRule),
        zone: CT_ZONE.CtZone,
        nat: Nat.dst('10.10.0.24', 80),
        exec: [ServiceCTMark],
      })
      .done(),
    // §1.9: conntrack
    t(T.ConntrackZone)
      .flow(PRIORITY.normal)
      .cookie(pod)
      .matchProtocol('ip')
      .ct({ table: t(T.ConntrackState), zone: CT_ZONE.CtZone, nat: Nat.restore() })
      .done(),
    t(T.ConntrackState)
      .flow(PRIORITY.normal)
      .cookie(pod)
      .matchProtocol('ip')
      .matchCTState({ inv: true, trk: true })
      .done(),
    t(T.ConntrackState)
      .flow(PRIORITY.low)
      .cookie(pod)
      .matchProtocol('ip')
      .matchCTState({ new: false, trk: true })
      .matchCTMark(NotServiceCTMark)
      .gotoStage('egressSecurity'),
    t(T.ConntrackCommit)
      .flow(PRIORITY.normal)
      .cookie(pod)
      .matchProtocol('ip')
      .matchCTState({ new: true, trk: true })
      .matchCTMark(FromGatewayCTMark)
      .ct({
        commit: true,
        table: t(T.Output),
        zone: CT_ZONE.CtZone,
        exec: [ConnSourceCTMarkField.moveFrom(PktSourceField)],
      })
      .done(),
    // §1.14-7: K8s NP ingress conjunction (three clauses and the action flow)
    t(T.IngressRule)
      .flow(PRIORITY.normal)
      .cookie(np)
      .matchProtocol('ip')
      .matchSrcIP('10.10.0.26')
      .conjunction(3, 1, 3)
      .done(),
    t(T.IngressRule).flow(PRIORITY.normal).cookie(np).matchField(TargetOFPortField, 0x25).conjunction(3, 2, 3).done(),
    t(T.IngressRule).flow(PRIORITY.normal).cookie(np).matchProtocol('tcp').matchDstPort(80).conjunction(3, 3, 3).done(),
    t(T.IngressRule)
      .flow(PRIORITY.low)
      .cookie(np)
      .matchConjID(3)
      .matchProtocol('ip')
      .loadToField(TFIngressConjIDField, 3)
      .ct({ commit: true, table: t(T.IngressMetric), zone: CT_ZONE.CtZone, exec: [IngressRuleCTLabel.load(3)] })
      .done(),
    // §1.14-8: isolation drop
    t(T.IngressDefaultRule).flow(PRIORITY.normal).cookie(np).matchField(TargetOFPortField, 0x25).done(),
    // §1.14-9: output to the port in reg1
    t(T.Output)
      .flow(PRIORITY.normal)
      .cookie(pod)
      .matchRegMark(OutputToOFPortRegMark)
      .outputToField(TargetOFPortField)
      .done(),
    // §1.14-10: tunnel ingress
    t(T.Classifier)
      .flow(PRIORITY.normal)
      .cookie(pod)
      .matchInPort(32768)
      .loadRegMark(FromTunnelRegMark, RewriteMACRegMark)
      .gotoStage('conntrackState'),
    // §1.12: NetworkPolicy logging packet-in through meter 256
    t(T.Output)
      .flow(PRIORITY.normal)
      .cookie(np)
      .match('reg0', 0x2400000, 0xfe600000n)
      .action({ type: 'meter', meterId: 256 })
      .controller({ userdata: new Uint8Array([1, 1]) })
      .done(),
  ];
}

/** Canonical texts of {@link sampleFlows} for round 1, in the same order. */
export const SAMPLE_FLOW_TEXTS: readonly string[] = [
  'cookie=0x1010000000000, table=3, priority=190,in_port=5 actions=set_field:0x3/0xf->reg0,set_field:0x10000000/0x10000000->reg4,goto_table:4',
  'cookie=0x1010000000000, table=4, priority=200,ip,in_port=5,dl_src=fa:b7:53:74:21:a6,nw_src=10.10.0.24 actions=goto_table:5',
  'cookie=0x1010000000000, table=16, priority=200,ip,nw_dst=10.10.1.0/24 actions=set_field:0a:00:00:00:00:01->eth_src,set_field:aa:bb:cc:dd:ee:ff->eth_dst,set_field:192.168.77.103->tun_dst,set_field:0x10/0xf0->reg0,goto_table:18',
  'cookie=0x1010000000000, table=2, priority=200,arp,arp_tpa=10.10.1.1,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:aa:bb:cc:dd:ee:ff->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:aa:bb:cc:dd:ee:ff->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:10.10.1.1->arp_spa,IN_PORT',
  'cookie=0x1030000000000, table=10, priority=200,tcp,reg4=0x10000/0x70000,nw_dst=10.105.31.235,tp_dst=80 actions=set_field:0x200/0x200->reg0,set_field:0x20000/0x70000->reg4,set_field:0xa->reg7,group:10',
  'cookie=0x1030000000000, table=10, priority=190,tcp,reg4=0x30000/0x70000,nw_dst=10.105.31.235,tp_dst=80 actions=learn(table=9,hard_timeout=300,priority=200,delete_learned,cookie=0x103000000000a,eth_type=0x800,nw_proto=6,NXM_OF_TCP_DST[],NXM_OF_IP_DST[],NXM_OF_IP_SRC[],load:NXM_NX_REG4[0..15]->NXM_NX_REG4[0..15],load:NXM_NX_REG4[26]->NXM_NX_REG4[26],load:NXM_NX_REG3[]->NXM_NX_REG3[],load:0x2->NXM_NX_REG4[16..18],load:0x1->NXM_NX_REG0[9]),set_field:0x20000/0x70000->reg4,goto_table:11',
  'cookie=0x1030000000000, table=11, priority=200,tcp,reg3=0xa0a0018,reg4=0x20050/0x7ffff actions=ct(commit,table=12,zone=65520,nat(dst=10.10.0.24:80),exec(set_field:0x10/0x10->ct_mark))',
  'cookie=0x1010000000000, table=6, priority=200,ip actions=ct(table=7,zone=65520,nat)',
  'cookie=0x1010000000000, table=7, priority=200,ct_state=+inv+trk,ip actions=drop',
  'cookie=0x1010000000000, table=7, priority=190,ct_state=-new+trk,ct_mark=0/0x10,ip actions=goto_table:12',
  'cookie=0x1010000000000, table=27, priority=200,ct_state=+new+trk,ct_mark=0x2/0xf,ip actions=ct(commit,table=28,zone=65520,exec(move:NXM_NX_REG0[0..3]->NXM_NX_CT_MARK[0..3]))',
  'cookie=0x1020000000000, table=24, priority=200,ip,nw_src=10.10.0.26 actions=conjunction(3,1/3)',
  'cookie=0x1020000000000, table=24, priority=200,reg1=0x25 actions=conjunction(3,2/3)',
  'cookie=0x1020000000000, table=24, priority=200,tcp,tp_dst=80 actions=conjunction(3,3/3)',
  'cookie=0x1020000000000, table=24, priority=190,conj_id=3,ip actions=set_field:0x3->reg6,ct(commit,table=26,zone=65520,exec(set_field:0x3/0xffffffff->ct_label))',
  'cookie=0x1020000000000, table=25, priority=200,reg1=0x25 actions=drop',
  'cookie=0x1010000000000, table=28, priority=200,reg0=0x200000/0x600000 actions=output:NXM_NX_REG1[]',
  'cookie=0x1010000000000, table=3, priority=200,in_port=32768 actions=set_field:0x1/0xf->reg0,set_field:0x200/0x200->reg0,goto_table:5',
  'cookie=0x1020000000000, table=28, priority=200,reg0=0x2400000/0xfe600000 actions=meter:256,controller(userdata=01.01)',
];

export function sampleGroups(): Group[] {
  return [
    new Group({
      groupId: 10,
      type: 'select',
      buckets: [
        {
          weight: 100,
          actions: actions().loadToField(EndpointIPField, 0x0a0a0018).loadToField(EndpointPortField, 80).resubmit(11)
            .actions,
        },
        {
          weight: 100,
          actions: actions().loadToField(EndpointIPField, 0x0a0a0019).loadToField(EndpointPortField, 80).resubmit(11)
            .actions,
        },
      ],
    }),
  ];
}

export function sampleMeters(): Meter[] {
  return [
    new Meter({
      meterId: 256,
      unit: 'pktps',
      burst: true,
      stats: true,
      bands: [{ type: 'drop', rate: 5000, burstSize: 10000 }],
    }),
  ];
}

/** A feature that requires the default tables and installs the sample state at start. */
export function sampleFeature(cookies: CookieAllocator): Feature {
  return {
    name: 'Sample',
    category: 'PodConnectivity',
    requiredTables: () => DEFAULT_TABLES,
    initialMeters: () => sampleMeters(),
    initialGroups: () => sampleGroups(),
    initialFlows: (p) => sampleFlows(p, cookies),
  };
}
