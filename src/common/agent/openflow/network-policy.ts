/**
 * The NetworkPolicy feature (Antrea's featureNetworkPolicy; facts §1.11): the Kubernetes
 * NetworkPolicy tables and the flows a rule becomes.
 *
 * A rule is a conjunction: its clauses are, in this order and only when present, the sources
 * (From), the destinations (To) and the services. Each address or service of a clause is one match
 * flow at priority 200 with a `conjunction(id, clause/n)` action; identical matches of several rules
 * share one flow carrying several conjunction actions. The action flow `conj_id=id` (priority 190)
 * records the rule in reg6 (ingress) or reg5 (egress), commits the connection in zone 65520 with the
 * id in ct_label and continues in the metric table, where two flows per rule (+new / -new) count the
 * rule's sessions, packets and bytes. A Pod a rule applies to is isolated: a drop flow at priority
 * 200 in IngressDefaultRule (`reg1=<ofport>`) or EgressDefaultRule (`nw_src=<ip>`). Packets of
 * established connections skip the rules (priority 210, `-new+est` / `-new+rel`), so replies of an
 * allowed connection pass. Traffic to the gateway and the tunnel, and connections the Node itself
 * opens from the gateway (kubelet probes), skip ingress rules (IngressSecurityClassifier).
 *
 * Every flow carries the NetworkPolicy cookie category; action and metric flows carry the rule's
 * conj_id as the cookie's object id, so per-rule counters are read by cookie.
 */
import type { Flow } from '../../ovs/openflow/flow.ts';
import { ValidationError } from '../../util/errors.ts';
import { ipFamily } from '../../util/ip.ts';
import type { FlowBuilder } from './builder.ts';
import type { CookieAllocator, CookieCategory } from './cookie.ts';
import {
  CT_ZONE,
  EgressRuleCTLabel,
  IngressRuleCTLabel,
  PRIORITY,
  TargetOFPortField,
  TFEgressConjIDField,
  TFIngressConjIDField,
  ToGatewayRegMark,
  ToTunnelRegMark,
} from './fields.ts';
import type { Feature, RealizedPipeline, RealizedTable } from './framework.ts';
import { T, type TableDef } from './pipeline.ts';

export type PolicyDirection = 'In' | 'Out';

/** One address of a clause: an IPv4 CIDR (a bare IP is /32) or a local Pod's OpenFlow port. */
export type PolicyAddress =
  { readonly kind: 'ip'; readonly cidr: string } | { readonly kind: 'ofport'; readonly port: number };

/** One resolved service of a rule: a protocol and optionally a masked destination port or ICMP type/code. */
export interface PolicyService {
  readonly protocol: 'tcp' | 'udp' | 'sctp' | 'icmp';
  readonly port?: { readonly value: number; readonly mask: number };
  readonly icmpType?: number;
  readonly icmpCode?: number;
}

export type ClauseKind = 'from' | 'to' | 'service';

/** What one match flow matches. */
export type MatchKey =
  | { readonly clause: 'from' | 'to'; readonly address: PolicyAddress }
  | { readonly clause: 'service'; readonly service: PolicyService };

/** A conjunction action: rule `id`, clause `clause` of `n`. */
export interface ConjRef {
  readonly id: number;
  readonly clause: number;
  readonly n: number;
}

/** Priorities of Kubernetes NetworkPolicy flows (Antrea's fixed ones). */
export const NP_PRIORITY = {
  established: PRIORITY.high,
  match: PRIORITY.normal,
  action: PRIORITY.low,
  drop: PRIORITY.normal,
  metric: PRIORITY.normal,
} as const;

export interface NetworkPolicyFeatureConfig {
  readonly cookies: CookieAllocator;
  /** The gateway's addresses: connections the Node opens from them skip ingress rules. */
  readonly gatewayIPs: readonly string[];
}

/** A text key for a match (stable; used as the flow-cache key of shared match flows). */
export function matchKeyText(direction: PolicyDirection, k: MatchKey): string {
  if (k.clause === 'service') {
    const s = k.service;
    let t = s.protocol;
    if (s.port !== undefined) t += `:${s.port.value}/${s.port.mask}`;
    if (s.icmpType !== undefined) t += `:type${s.icmpType}`;
    if (s.icmpCode !== undefined) t += `:code${s.icmpCode}`;
    return `${direction}|service|${t}`;
  }
  const a = k.address;
  return `${direction}|${k.clause}|${a.kind === 'ip' ? a.cidr : `ofport${a.port}`}`;
}

export class NetworkPolicyFeature implements Feature {
  readonly name = 'NetworkPolicy';
  readonly category: CookieCategory = 'NetworkPolicy';
  private readonly cfg: NetworkPolicyFeatureConfig;

  constructor(cfg: NetworkPolicyFeatureConfig) {
    this.cfg = cfg;
  }

  get cookies(): CookieAllocator {
    return this.cfg.cookies;
  }

  requiredTables(): readonly TableDef[] {
    return [
      T.EgressRule,
      T.EgressDefaultRule,
      T.EgressMetric,
      T.IngressSecurityClassifier,
      T.IngressRule,
      T.IngressDefaultRule,
      T.IngressMetric,
    ];
  }

  private defaultCookie: bigint | undefined;

  private cookie(objectId = 0): bigint {
    if (objectId !== 0) return this.cfg.cookies.request('NetworkPolicy', objectId);
    return (this.defaultCookie ??= this.cfg.cookies.request('NetworkPolicy'));
  }

  /** The rule, default and metric tables of a direction. */
  tables(p: RealizedPipeline, d: PolicyDirection): { rule: RealizedTable; drop: RealizedTable; metric: RealizedTable } {
    return d === 'In'
      ? { rule: p.table(T.IngressRule), drop: p.table(T.IngressDefaultRule), metric: p.table(T.IngressMetric) }
      : { rule: p.table(T.EgressRule), drop: p.table(T.EgressDefaultRule), metric: p.table(T.EgressMetric) };
  }

  /** Established-connection bypasses and the ingress classifier. */
  initialFlows(p: RealizedPipeline): readonly Flow[] {
    const c = this.cookie();
    const out: Flow[] = [];
    for (const d of ['Out', 'In'] as const) {
      const { rule, metric } = this.tables(p, d);
      for (const st of [
        { new: false, est: true, trk: true },
        { new: false, rel: true, trk: true },
      ]) {
        out.push(rule.flow(NP_PRIORITY.established).cookie(c).matchProtocol('ip').matchCTState(st).gotoTable(metric));
      }
    }
    const isc = p.table(T.IngressSecurityClassifier);
    const inMetric = p.table(T.IngressMetric);
    out.push(isc.flow(PRIORITY.normal).cookie(c).matchRegMark(ToGatewayRegMark).gotoTable(inMetric));
    out.push(isc.flow(PRIORITY.normal).cookie(c).matchRegMark(ToTunnelRegMark).gotoTable(inMetric));
    for (const ip of this.cfg.gatewayIPs.filter((x) => ipFamily(x) === 4)) {
      out.push(
        isc
          .flow(PRIORITY.normal)
          .cookie(c)
          .matchProtocol('ip')
          .matchCTState({ rpl: false, trk: true })
          .matchSrcIP(ip)
          .gotoTable(p.table(T.ConntrackCommit)),
      );
    }
    return out;
  }

  /** One (possibly shared) match flow with its conjunction actions. */
  matchFlow(p: RealizedPipeline, d: PolicyDirection, k: MatchKey, conjs: readonly ConjRef[]): Flow {
    if (conjs.length === 0) throw new ValidationError('conjs', 'a match flow needs at least one conjunction');
    let b = this.match(this.tables(p, d).rule.flow(NP_PRIORITY.match).cookie(this.cookie()), d, k);
    const sorted = [...conjs].sort((x, y) => x.id - y.id || x.clause - y.clause);
    for (const c of sorted) b = b.conjunction(c.id, c.clause, c.n);
    return b.done();
  }

  private match(b: FlowBuilder, d: PolicyDirection, k: MatchKey): FlowBuilder {
    if (k.clause === 'service') {
      const s = k.service;
      b = b.matchProtocol(s.protocol);
      if (s.port !== undefined && s.port.mask !== 0)
        b = b.matchDstPort(s.port.value, s.port.mask === 0xffff ? undefined : s.port.mask);
      if (s.icmpType !== undefined) b = b.matchICMPType(s.icmpType);
      if (s.icmpCode !== undefined) b = b.matchICMPCode(s.icmpCode);
      return b;
    }
    const a = k.address;
    if (a.kind === 'ofport') {
      if (k.clause !== 'to' || d !== 'In')
        throw new ValidationError('address', 'an OpenFlow port is only a destination of ingress rules');
      return b.matchField(TargetOFPortField, a.port);
    }
    b = b.matchProtocol('ip');
    if (a.cidr === '0.0.0.0/0') return b;
    const ip = a.cidr.endsWith('/32') ? a.cidr.slice(0, -3) : a.cidr;
    return k.clause === 'from' ? b.matchSrcIP(ip) : b.matchDstIP(ip);
  }

  /** The rule's action flow: record the rule, commit with the id in ct_label, go count it. */
  actionFlow(p: RealizedPipeline, d: PolicyDirection, conjId: number): Flow {
    const { rule, metric } = this.tables(p, d);
    const reg = d === 'In' ? TFIngressConjIDField : TFEgressConjIDField;
    const label = d === 'In' ? IngressRuleCTLabel : EgressRuleCTLabel;
    return rule
      .flow(NP_PRIORITY.action)
      .cookie(this.cookie(conjId))
      .matchProtocol('ip')
      .matchConjID(conjId)
      .loadToField(reg, conjId)
      .ct({ commit: true, table: metric, zone: CT_ZONE.CtZone, exec: [label.load(conjId)] })
      .done();
  }

  /** The rule's counters: new and established packets of connections it allowed. */
  metricFlows(p: RealizedPipeline, d: PolicyDirection, conjId: number): Flow[] {
    const { metric } = this.tables(p, d);
    const label = d === 'In' ? IngressRuleCTLabel : EgressRuleCTLabel;
    return [true, false].map((isNew) =>
      metric
        .flow(NP_PRIORITY.metric)
        .cookie(this.cookie(conjId))
        .matchProtocol('ip')
        .matchCTState({ new: isNew, trk: true })
        .matchField(label, conjId)
        .next(),
    );
  }

  /** The isolation drop of a Pod: by ofport (ingress) or source IP (egress). */
  dropFlow(p: RealizedPipeline, d: PolicyDirection, target: PolicyAddress): Flow {
    const b = this.tables(p, d).drop.flow(NP_PRIORITY.drop).cookie(this.cookie());
    if (d === 'In') {
      if (target.kind !== 'ofport') throw new ValidationError('target', "ingress isolation needs the Pod's ofport");
      return b.matchField(TargetOFPortField, target.port).done();
    }
    if (target.kind !== 'ip') throw new ValidationError('target', "egress isolation needs the Pod's IP");
    return b.matchProtocol('ip').matchSrcIP(target.cidr.replace(/\/32$/, '')).done();
  }
}
