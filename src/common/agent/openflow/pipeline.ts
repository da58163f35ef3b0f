/**
 * The OpenFlow pipeline, declared once.
 *
 *   pipelines  root ──► ARP ──► IP ──► multicast ──► non-IP        (ascending id)
 *   stages     start, classifier, validation, conntrackState, preRouting, egressSecurity, routing,
 *              postRouting, switching, ingressSecurity, conntrack, output
 *   tables     declared below, in execution order within their pipeline
 *
 * A table only becomes an OVS table when an active feature needs it (framework.ts); table ids are
 * then assigned densely in (pipeline, declaration) order, so they depend on the feature set: always
 * refer to tables by name.
 *
 * Attention: to add a table, reuse an existing one first; otherwise name it for its function, put it
 * in the right stage (never add a stage lightly) and in execution order, and regenerate
 * docs/design/ovs-pipeline.md (`node scripts/gen-ovs-pipeline-doc.ts`).
 */
import { ValidationError } from '../../util/errors.ts';

export const PIPELINES = ['root', 'arp', 'ip', 'multicast', 'nonIP'] as const;
export type PipelineId = (typeof PIPELINES)[number];

/** Stages in execution order, with what happens in each. */
export const STAGES = [
  ['start', 'Entry: split traffic between the pipelines.'],
  ['classifier', 'Classify packets by where they come from.'],
  ['validation', 'Drop spoofed packets (wrong source MAC/IP for the port).'],
  ['conntrackState', 'Run conntrack (un-SNAT, zone lookup) and act on the connection state.'],
  ['preRouting', 'Service load balancing: select and DNAT to an Endpoint.'],
  ['egressSecurity', 'Egress NetworkPolicy rules of the source.'],
  ['routing', 'L3 forwarding: MAC rewrite, tunnel destination, TTL.'],
  ['postRouting', 'SNAT for hairpin and external Service traffic.'],
  ['switching', 'L2 forwarding: choose the output port.'],
  ['ingressSecurity', 'Ingress NetworkPolicy rules of the destination.'],
  ['conntrack', 'Commit new connections to conntrack.'],
  ['output', 'Output the packet (port, in_port, controller).'],
] as const;
export type StageId = (typeof STAGES)[number][0];

/** What a table does with packets no flow matches. */
export type MissAction = 'next' | 'drop' | 'normal';

export interface TableDef {
  readonly name: string;
  readonly pipeline: PipelineId;
  readonly stage: StageId;
  /** Declared miss action; the last table of a pipeline always drops. */
  readonly missAction: MissAction;
  /** One line on the table's purpose (for docs and antctl). */
  readonly purpose: string;
  /** Position in declaration order (global). */
  readonly order: number;
}

/** An ordered catalog of table declarations. */
export class TableCatalog {
  private readonly list: TableDef[] = [];
  private readonly byName = new Map<string, TableDef>();

  /** Declares a table; declaration order is execution order within its pipeline. */
  declare(
    name: string,
    stage: StageId,
    pipeline: PipelineId,
    purpose: string,
    opts: { missAction?: MissAction } = {},
  ): TableDef {
    if (!/^[A-Za-z][A-Za-z0-9]{0,31}$/.test(name)) throw new ValidationError('name', `bad table name "${name}"`);
    if (this.byName.has(name)) throw new ValidationError('name', `table ${name} declared twice`);
    const last = [...this.list].reverse().find((t) => t.pipeline === pipeline);
    if (last !== undefined && stageIndex(stage) < stageIndex(last.stage)) {
      throw new ValidationError(
        'stage',
        `table ${name} (stage ${stage}) is declared after ${last.name} (stage ${last.stage})`,
      );
    }
    const def: TableDef = {
      name,
      pipeline,
      stage,
      missAction: opts.missAction ?? 'next',
      purpose,
      order: this.list.length,
    };
    this.list.push(def);
    this.byName.set(name, def);
    return def;
  }

  get tables(): readonly TableDef[] {
    return this.list;
  }

  /** The table with this name; throws a ValidationError for unknown names. */
  get(name: string): TableDef {
    const t = this.byName.get(name);
    if (t === undefined) throw new ValidationError('table', `unknown table "${name}"`);
    return t;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }
}

export function stageIndex(stage: StageId): number {
  return STAGES.findIndex(([s]) => s === stage);
}

export function pipelineIndex(p: PipelineId): number {
  return PIPELINES.indexOf(p);
}

/** Antrea's tables (facts §1.2), in execution order. */
export const CATALOG = new TableCatalog();
const t = CATALOG.declare.bind(CATALOG);

export const T = {
  PipelineRootClassifier: t(
    'PipelineRootClassifier',
    'start',
    'root',
    'Split ARP, IP (and multicast, non-IP) traffic into their pipelines.',
    {
      missAction: 'drop',
    },
  ),

  ARPSpoofGuard: t(
    'ARPSpoofGuard',
    'validation',
    'arp',
    'Accept ARP only with the right (in_port, sender MAC, sender IP).',
    {
      missAction: 'drop',
    },
  ),
  ARPResponder: t('ARPResponder', 'output', 'arp', 'Answer ARP for remote gateways with the virtual MAC; else NORMAL.'),

  Classifier: t('Classifier', 'classifier', 'ip', 'Mark where the packet comes from (reg0[0..3]) by in_port.', {
    missAction: 'drop',
  }),
  SpoofGuard: t('SpoofGuard', 'validation', 'ip', 'Check the source IP and MAC of Pod ports.', { missAction: 'drop' }),
  IPv6: t('IPv6', 'validation', 'ip', 'Neighbor discovery and IPv6 multicast via NORMAL.'),
  PipelineIPClassifier: t(
    'PipelineIPClassifier',
    'validation',
    'ip',
    'Fork multicast (224.0.0.0/4) to the multicast pipeline.',
  ),
  UnSNAT: t('UnSNAT', 'conntrackState', 'ip', 'Un-SNAT replies to the virtual Service IP and the gateway IP.'),
  ConntrackZone: t('ConntrackZone', 'conntrackState', 'ip', 'Run all IP traffic through conntrack (zone 65520, nat).'),
  ConntrackState: t(
    'ConntrackState',
    'conntrackState',
    'ip',
    'Drop invalid connections; established traffic skips Service load balancing.',
  ),
  PreRoutingClassifier: t(
    'PreRoutingClassifier',
    'preRouting',
    'ip',
    'Resubmit to NodePortMark, SessionAffinity and ServiceLB.',
  ),
  NodePortMark: t(
    'NodePortMark',
    'preRouting',
    'ip',
    'Mark destinations that are NodePort addresses (reg4[19]); resubmitted to, so a miss returns.',
    { missAction: 'drop' },
  ),
  SessionAffinity: t(
    'SessionAffinity',
    'preRouting',
    'ip',
    'Learned session-affinity flows; resubmitted to, so a miss returns (ServiceLB then selects).',
    { missAction: 'drop' },
  ),
  ServiceLB: t('ServiceLB', 'preRouting', 'ip', 'Match Service IP:port and select an Endpoint through a group.'),
  DSRServiceMark: t('DSRServiceMark', 'preRouting', 'ip', 'Mark and learn Direct Server Return connections.'),
  EndpointDNAT: t(
    'EndpointDNAT',
    'preRouting',
    'ip',
    'DNAT to the selected Endpoint (ct commit, nat); no-Endpoint packet-in.',
  ),
  DNAT: t('DNAT', 'preRouting', 'ip', 'Without AntreaProxy: send Service traffic to the gateway.'),
  EgressSecurityClassifier: t(
    'EgressSecurityClassifier',
    'egressSecurity',
    'ip',
    'Classify traffic before egress policy (ExternalNode).',
  ),
  AntreaPolicyEgressRule: t(
    'AntreaPolicyEgressRule',
    'egressSecurity',
    'ip',
    'Antrea-native policy egress rules (non-baseline tiers).',
  ),
  EgressRule: t('EgressRule', 'egressSecurity', 'ip', 'Kubernetes NetworkPolicy egress rules (conjunctions).'),
  EgressDefaultRule: t(
    'EgressDefaultRule',
    'egressSecurity',
    'ip',
    'Kubernetes NetworkPolicy egress isolation and baseline tier.',
  ),
  EgressMetric: t('EgressMetric', 'egressSecurity', 'ip', 'Per-rule egress counters; drops denied packets.'),
  L3Forwarding: t(
    'L3Forwarding',
    'routing',
    'ip',
    'Rewrite MACs, set the tunnel destination, classify the destination.',
  ),
  EgressMark: t('EgressMark', 'routing', 'ip', 'Egress: mark packets for SNAT or tunnel them to the Egress Node.'),
  EgressQoS: t('EgressQoS', 'routing', 'ip', 'Egress traffic shaping with meters.'),
  L3DecTTL: t('L3DecTTL', 'routing', 'ip', 'Decrement the TTL of routed packets (not those from the gateway).'),
  SNATMark: t('SNATMark', 'postRouting', 'ip', 'Commit and mark connections that need SNAT.'),
  SNAT: t('SNAT', 'postRouting', 'ip', 'SNAT hairpin and external Service connections (zone 65521).'),
  L2ForwardingCalc: t('L2ForwardingCalc', 'switching', 'ip', 'Destination MAC to output port (reg1).'),
  TrafficControl: t('TrafficControl', 'switching', 'ip', 'Mark packets to mirror or redirect (TrafficControl).'),
  IngressSecurityClassifier: t(
    'IngressSecurityClassifier',
    'ingressSecurity',
    'ip',
    'Skip ingress policy for gateway, tunnel, uplink and hairpin traffic.',
  ),
  AntreaPolicyIngressRule: t(
    'AntreaPolicyIngressRule',
    'ingressSecurity',
    'ip',
    'Antrea-native policy ingress rules (non-baseline tiers).',
  ),
  IngressRule: t('IngressRule', 'ingressSecurity', 'ip', 'Kubernetes NetworkPolicy ingress rules (conjunctions).'),
  IngressDefaultRule: t(
    'IngressDefaultRule',
    'ingressSecurity',
    'ip',
    'Kubernetes NetworkPolicy ingress isolation and baseline tier.',
  ),
  IngressMetric: t('IngressMetric', 'ingressSecurity', 'ip', 'Per-rule ingress counters; drops denied packets.'),
  ConntrackCommit: t('ConntrackCommit', 'conntrack', 'ip', 'Commit new connections that were not SNATed (zone 65520).'),
  VLAN: t('VLAN', 'output', 'ip', 'Push or pop VLAN tags for AntreaIPAM Pods.'),
  Output: t('Output', 'output', 'ip', 'Output to reg1, IN_PORT, or the controller (packet-in).'),

  MulticastEgressRule: t('MulticastEgressRule', 'egressSecurity', 'multicast', 'Multicast egress policy rules.'),
  MulticastEgressMetric: t('MulticastEgressMetric', 'egressSecurity', 'multicast', 'Multicast egress rule counters.'),
  MulticastEgressPodMetric: t(
    'MulticastEgressPodMetric',
    'egressSecurity',
    'multicast',
    'Per-Pod multicast egress counters.',
  ),
  MulticastRouting: t('MulticastRouting', 'routing', 'multicast', 'Multicast group to output group.'),
  MulticastIngressRule: t('MulticastIngressRule', 'ingressSecurity', 'multicast', 'Multicast ingress policy rules.'),
  MulticastIngressMetric: t(
    'MulticastIngressMetric',
    'ingressSecurity',
    'multicast',
    'Multicast ingress rule counters.',
  ),
  MulticastIngressPodMetric: t(
    'MulticastIngressPodMetric',
    'ingressSecurity',
    'multicast',
    'Per-Pod multicast ingress counters.',
  ),
  MulticastOutput: t('MulticastOutput', 'output', 'multicast', 'Output multicast packets.'),

  NonIP: t(
    'NonIP',
    'classifier',
    'nonIP',
    'Forward non-IP packets between the uplink and the host port (ExternalNode).',
    {
      missAction: 'drop',
    },
  ),
} as const;

export type TableName = keyof typeof T;
