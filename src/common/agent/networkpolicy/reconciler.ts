/**
 * The reconciler (Antrea's pod_reconciler.go; facts §6.3, §1.11): turns completed rules into
 * conjunction flows on this Node and keeps them current.
 *
 * A rule becomes one or more OpenFlow rules, one per distinct set of resolved services (a named port
 * resolves per Pod: per target Pod for ingress, per peer Pod for egress), each with its own conj_id.
 * Ingress: From = peer IPs and ipBlocks (minus excepts), To = the target Pods' ofports; egress: From
 * = the target Pods' IPs, To = peer IPs and ipBlocks. A clause is present when the rule has it (the
 * targets always; the peers when the rule names any; the services when it lists any); a present
 * clause that resolves to nothing makes the rule match nothing, and a rule with a single clause (a
 * default-deny rule) only isolates. Every target Pod of a rule is isolated in the rule's direction.
 *
 * Match flows are shared between rules (one flow, several conjunction actions) and isolation drops
 * are reference-counted. {@link PolicyReconciler.reconcile} applies every change of one call in one
 * OpenFlow bundle; on failure nothing is recorded and the call can be retried as a whole.
 *
 * conj_ids carry the cookie round's parity in bit 31, so the ids of a restarted agent never collide
 * with the previous round's flows that stay until the new round has converged.
 */
import type { GroupMember, Service } from '../../apis/controlplane/types.ts';
import type { Flow, FlowStats } from '../../ovs/openflow/flow.ts';
import type { RealizedPipeline } from '../openflow/framework.ts';
import { decodeCookie } from '../openflow/cookie.ts';
import {
  type ConjRef,
  type MatchKey,
  matchKeyText,
  type NetworkPolicyFeature,
  type PolicyAddress,
  type PolicyDirection,
  type PolicyService,
} from '../openflow/network-policy.ts';
import type { PlanBuilder } from '../openflow/store.ts';
import { T } from '../openflow/pipeline.ts';
import { canonicalCIDR4, cidrMinus, isIPv4 } from './addresses.ts';
import { type CompletedRule, peerIsEmpty } from './cache.ts';
import { portRangeToMasks } from './ports.ts';

/** What the reconciler needs from the OpenFlow bridge client (BridgeClient implements it). */
export interface PolicyFlowSink {
  readonly pipeline: RealizedPipeline;
  /** Applies the changes as one atomic bundle; records nothing on failure. */
  change(build: (b: PlanBuilder) => void): Promise<void>;
  /** Flows as the switch has them, with counters. */
  dumpFlowsFiltered(filter: { table?: number; cookie?: bigint; cookieMask?: bigint }): Promise<FlowStats[]>;
}

/** A local Pod interface. */
export interface LocalPodInterface {
  readonly ofport: number;
  readonly ips: readonly string[];
}

/** Local Pods by namespace and name (the interface store's view). Absent: the Pod is not on this Node. */
export interface LocalPods {
  get(namespace: string, name: string): readonly LocalPodInterface[] | undefined;
}

/** One OpenFlow rule: a part of a rule with one set of resolved services. */
interface OFRule {
  readonly key: string;
  readonly ruleId: string;
  readonly direction: PolicyDirection;
  /** undefined: the clause is absent (matches anything). */
  readonly from: readonly PolicyAddress[] | undefined;
  readonly to: readonly PolicyAddress[] | undefined;
  readonly services: readonly PolicyService[] | undefined;
}

interface Compiled {
  readonly ofRules: OFRule[];
  /** Isolation drops: direction + address. */
  readonly isolate: PolicyAddress[];
  readonly direction: PolicyDirection;
}

interface InstalledRule {
  readonly conjId: number;
  readonly ruleId: string;
  readonly direction: PolicyDirection;
  /** The match keys it contributes to (text) with the clause number. */
  readonly matches: ReadonlyMap<string, ConjRef>;
}

interface MatchEntry {
  readonly direction: PolicyDirection;
  readonly key: MatchKey;
  readonly conjs: ReadonlyMap<number, ConjRef>;
}

interface DropEntry {
  readonly direction: PolicyDirection;
  readonly address: PolicyAddress;
  readonly rules: ReadonlySet<string>;
}

/** Per-rule counters read from the metric flows. */
export interface RuleStats {
  readonly ruleId: string;
  readonly conjId: number;
  readonly direction: PolicyDirection;
  /** Connections the rule allowed (packets of its +new metric flow). */
  readonly sessions: number;
  readonly packets: number;
  readonly bytes: number;
}

const ruleFlowKey = (conjId: number): string => `np/rule/${conjId}`;
const matchFlowKey = (k: string): string => `np/match/${k}`;
const dropFlowKey = (k: string): string => `np/drop/${k}`;

function addressText(a: PolicyAddress): string {
  return a.kind === 'ip' ? a.cidr : `ofport${a.port}`;
}

/** The IPv4 addresses of members (IPv6 ones are not enforced yet). */
function memberAddresses(m: GroupMember): PolicyAddress[] {
  return (m.ips ?? []).filter(isIPv4).map((ip) => ({ kind: 'ip', cidr: canonicalCIDR4(ip) }));
}

function protocolOf(s: Service): PolicyService['protocol'] | undefined {
  switch (s.protocol ?? 'TCP') {
    case 'TCP':
      return 'tcp';
    case 'UDP':
      return 'udp';
    case 'SCTP':
      return 'sctp';
    case 'ICMP':
      return 'icmp';
    case 'IGMP':
      return undefined;
  }
}

/**
 * The services of a rule for one member (its named ports resolve numbers); a named port the member
 * does not have is dropped. `member` undefined: named ports resolve to nothing (ipBlocks).
 */
export function resolveServices(services: readonly Service[], member: GroupMember | undefined): PolicyService[] {
  const out: PolicyService[] = [];
  for (const s of services) {
    const protocol = protocolOf(s);
    if (protocol === undefined) continue;
    if (protocol === 'icmp') {
      out.push({
        protocol,
        ...(s.icmpType === undefined ? {} : { icmpType: s.icmpType }),
        ...(s.icmpCode === undefined ? {} : { icmpCode: s.icmpCode }),
      });
      continue;
    }
    let port: number | undefined;
    if (typeof s.port === 'string') {
      const named = member?.ports?.find((p) => p.name === s.port && p.protocol === (s.protocol ?? 'TCP'));
      if (named === undefined) continue;
      port = named.port;
    } else port = s.port;
    if (port === undefined || port === 0) {
      out.push({ protocol });
      continue;
    }
    const end = typeof s.port === 'string' ? port : (s.endPort ?? port);
    for (const pm of portRangeToMasks(port, Math.max(port, end))) out.push({ protocol, port: pm });
  }
  const seen = new Set<string>();
  return out.filter((s) => {
    const k = matchKeyText('In', { clause: 'service', service: s });
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function servicesKey(s: readonly PolicyService[]): string {
  return s
    .map((x) => matchKeyText('In', { clause: 'service', service: x }).slice(11))
    .sort()
    .join(',');
}

function dedupe(addrs: readonly PolicyAddress[]): PolicyAddress[] {
  const m = new Map<string, PolicyAddress>();
  for (const a of addrs) m.set(addressText(a), a);
  return [...m.values()].sort((a, b) => addressText(a).localeCompare(addressText(b)));
}

/** Compiles a completed rule for this Node's Pods (pure). */
export function compileRule(rule: CompletedRule, pods: LocalPods): Compiled {
  const direction = rule.direction;
  const local: { member: GroupMember; ifaces: readonly LocalPodInterface[] }[] = [];
  for (const m of rule.targets) {
    if (m.pod === undefined) continue;
    const ifaces = pods.get(m.pod.namespace, m.pod.name);
    if (ifaces !== undefined && ifaces.length > 0) local.push({ member: m, ifaces });
  }
  const targetAddrs = (ifaces: readonly LocalPodInterface[]): PolicyAddress[] =>
    direction === 'In'
      ? ifaces.map((i) => ({ kind: 'ofport', port: i.ofport }))
      : ifaces.flatMap((i) => i.ips.filter(isIPv4).map((ip) => ({ kind: 'ip' as const, cidr: canonicalCIDR4(ip) })));
  const isolate = dedupe(local.flatMap((l) => targetAddrs(l.ifaces)));
  const ofRules: OFRule[] = [];
  if (local.length === 0) return { ofRules, isolate, direction };

  const peerPresent = !peerIsEmpty(rule.peer);
  const blockAddrs: PolicyAddress[] = rule.peer.ipBlocks
    .filter((b) => isIPv4(b.cidr.ip))
    .flatMap((b, i) =>
      cidrMinus(
        `${b.cidr.ip}/${b.cidr.prefixLength}`,
        b.except.filter((e) => isIPv4(e.ip)).map((e) => `${e.ip}/${e.prefixLength}`),
        `ipBlocks[${i}]`,
      ),
    )
    .map((cidr) => ({ kind: 'ip', cidr }));
  const hasServices = rule.services.length > 0;
  const groups = new Map<string, { services: PolicyService[]; targets: PolicyAddress[]; peers: PolicyAddress[] }>();
  const groupFor = (
    services: PolicyService[],
  ): { services: PolicyService[]; targets: PolicyAddress[]; peers: PolicyAddress[] } => {
    const k = servicesKey(services);
    let g = groups.get(k);
    if (g === undefined) groups.set(k, (g = { services, targets: [], peers: [] }));
    return g;
  };

  if (direction === 'In') {
    const peers = [...rule.peerMembers.flatMap(memberAddresses), ...blockAddrs];
    for (const l of local) {
      const services = hasServices ? resolveServices(rule.services, l.member) : [];
      if (hasServices && services.length === 0) continue;
      const g = groupFor(services);
      g.targets.push(...targetAddrs(l.ifaces));
      if (g.peers.length === 0) g.peers.push(...peers);
    }
  } else {
    const targets = local.flatMap((l) => targetAddrs(l.ifaces));
    const add = (services: PolicyService[], addrs: PolicyAddress[]): void => {
      if (hasServices && services.length === 0) return;
      const g = groupFor(services);
      g.peers.push(...addrs);
      if (g.targets.length === 0) g.targets.push(...targets);
    };
    for (const m of rule.peerMembers) add(hasServices ? resolveServices(rule.services, m) : [], memberAddresses(m));
    if (blockAddrs.length > 0) add(hasServices ? resolveServices(rule.services, undefined) : [], blockAddrs);
    if (!peerPresent) add(hasServices ? resolveServices(rule.services, undefined) : [], []);
  }
  for (const [k, g] of groups) {
    const peers = peerPresent ? dedupe(g.peers) : undefined;
    const targets = dedupe(g.targets);
    ofRules.push({
      key: `${rule.id}|${k}`,
      ruleId: rule.id,
      direction,
      from: direction === 'In' ? peers : targets,
      to: direction === 'In' ? targets : peers,
      services: hasServices ? g.services : undefined,
    });
  }
  return { ofRules, isolate, direction };
}

/** The match keys of an OpenFlow rule with their clause numbers; undefined if it can match nothing. */
function clausesOf(r: OFRule): { key: MatchKey; clause: number; n: number }[] | undefined {
  const dims: MatchKey[][] = [];
  for (const [clause, list] of [
    ['from', r.from],
    ['to', r.to],
  ] as const) {
    if (list === undefined) continue;
    dims.push(list.map((address) => ({ clause, address })));
  }
  if (r.services !== undefined) dims.push(r.services.map((service) => ({ clause: 'service' as const, service })));
  if (dims.length <= 1 || dims.some((d) => d.length === 0)) return undefined;
  return dims.flatMap((d, i) => d.map((key) => ({ key, clause: i + 1, n: dims.length })));
}

export interface ReconcilerOptions {
  readonly sink: PolicyFlowSink;
  readonly feature: NetworkPolicyFeature;
  readonly pods: LocalPods;
}

export class PolicyReconciler {
  private readonly sink: PolicyFlowSink;
  private readonly feature: NetworkPolicyFeature;
  private readonly pods: LocalPods;
  private readonly installed = new Map<string, InstalledRule>();
  private readonly subsOfRule = new Map<string, Set<string>>();
  private readonly dropsOfRule = new Map<string, Set<string>>();
  private readonly matches = new Map<string, MatchEntry>();
  private readonly drops = new Map<string, DropEntry>();
  private readonly conjOwner = new Map<number, string>();
  private nextConj = 1;
  private readonly conjBase: number;

  constructor(o: ReconcilerOptions) {
    this.sink = o.sink;
    this.feature = o.feature;
    this.pods = o.pods;
    this.conjBase = (o.feature.cookies.round & 1) === 1 ? 0x80000000 : 0;
  }

  /** OpenFlow rules installed. */
  get ofRuleCount(): number {
    return this.installed.size;
  }

  /** Rule ids that have at least one installed OpenFlow rule or isolation. */
  installedRuleIds(): string[] {
    return [...new Set([...this.subsOfRule.keys(), ...this.dropsOfRule.keys()])];
  }

  /** conj_ids of a rule. */
  conjIdsOf(ruleId: string): number[] {
    return [...(this.subsOfRule.get(ruleId) ?? [])]
      .map((k) => this.installed.get(k)?.conjId ?? 0)
      .filter((x) => x !== 0);
  }

  private allocate(): number {
    for (;;) {
      const id = (this.conjBase | this.nextConj) >>> 0;
      this.nextConj = this.nextConj >= 0x7fffffff ? 1 : this.nextConj + 1;
      if (!this.conjOwner.has(id)) return id;
    }
  }

  /**
   * Brings the flows of the given rules to their new state (undefined: the rule is gone) in one
   * bundle. Rules not named are untouched.
   */
  async reconcile(rules: ReadonlyMap<string, CompletedRule | undefined>): Promise<void> {
    const p = this.sink.pipeline;
    // Shadow copies of what changes; committed only after the bundle succeeded.
    const installed = new Map<string, InstalledRule | undefined>();
    const subsOfRule = new Map<string, Set<string> | undefined>();
    const dropsOfRule = new Map<string, Set<string> | undefined>();
    const matches = new Map<string, MatchEntry | undefined>();
    const drops = new Map<string, DropEntry | undefined>();
    const conjOwner = new Map<number, string | undefined>();
    const getMatch = (k: string): MatchEntry | undefined => (matches.has(k) ? matches.get(k) : this.matches.get(k));
    const getDrop = (k: string): DropEntry | undefined => (drops.has(k) ? drops.get(k) : this.drops.get(k));
    const ruleFlows = new Map<number, Flow[] | undefined>();
    const allocated: number[] = [];

    const unlinkOne = (mk: string, ref: ConjRef): void => {
      const e = getMatch(mk);
      if (e === undefined || !e.conjs.has(ref.id)) return;
      const conjs = new Map(e.conjs);
      conjs.delete(ref.id);
      matches.set(mk, conjs.size === 0 ? undefined : { ...e, conjs });
    };
    const link = (direction: PolicyDirection, key: MatchKey, ref: ConjRef): string => {
      const mk = matchKeyText(direction, key);
      const e = getMatch(mk);
      const conjs = new Map(e?.conjs ?? []);
      conjs.set(ref.id, ref);
      matches.set(mk, { direction, key, conjs });
      return mk;
    };

    try {
      for (const [ruleId, rule] of rules) {
        const compiled = rule === undefined ? undefined : compileRule(rule, this.pods);
        // OpenFlow rules.
        const oldSubs = this.subsOfRule.get(ruleId) ?? new Set<string>();
        const want = new Map((compiled?.ofRules ?? []).map((r) => [r.key, r]));
        const nextSubs = new Set<string>();
        for (const key of oldSubs) {
          const old = this.installed.get(key);
          if (old === undefined) continue;
          const w = want.get(key);
          want.delete(key);
          const clauses = w === undefined ? undefined : clausesOf(w);
          if (w === undefined || clauses === undefined) {
            for (const [mk, ref] of old.matches) unlinkOne(mk, ref);
            installed.set(key, undefined);
            conjOwner.set(old.conjId, undefined);
            ruleFlows.set(old.conjId, undefined);
            continue;
          }
          // Same conj id: only the match flows whose contribution changed are touched.
          const refs = new Map<string, ConjRef>();
          const keys = clauses.map((c) => matchKeyText(w.direction, c.key));
          clauses.forEach((c, i) => refs.set(keys[i] ?? '', { id: old.conjId, clause: c.clause, n: c.n }));
          let changed = false;
          for (const [mk, ref] of old.matches) {
            const nr = refs.get(mk);
            if (nr === undefined || nr.clause !== ref.clause || nr.n !== ref.n) {
              unlinkOne(mk, ref);
              changed = true;
            }
          }
          clauses.forEach((c, i) => {
            const mk = keys[i] ?? '';
            const or = old.matches.get(mk);
            if (or === undefined || or.clause !== c.clause || or.n !== c.n) {
              link(w.direction, c.key, { id: old.conjId, clause: c.clause, n: c.n });
              changed = true;
            }
          });
          if (changed) installed.set(key, { ...old, matches: refs });
          nextSubs.add(key);
        }
        for (const [key, w] of want) {
          const clauses = clausesOf(w);
          if (clauses === undefined) continue;
          const id = this.allocate();
          allocated.push(id);
          this.conjOwner.set(id, key); // reserved while planning; rolled back on failure
          conjOwner.set(id, key);
          const refs = new Map<string, ConjRef>();
          for (const c of clauses)
            refs.set(link(w.direction, c.key, { id, clause: c.clause, n: c.n }), { id, clause: c.clause, n: c.n });
          installed.set(key, { conjId: id, ruleId, direction: w.direction, matches: refs });
          ruleFlows.set(id, [
            this.feature.actionFlow(p, w.direction, id),
            ...this.feature.metricFlows(p, w.direction, id),
          ]);
          nextSubs.add(key);
        }
        subsOfRule.set(ruleId, nextSubs.size === 0 ? undefined : nextSubs);

        // Isolation.
        const oldDrops = this.dropsOfRule.get(ruleId) ?? new Set<string>();
        const nextDrops = new Set((compiled?.isolate ?? []).map((a) => `${compiled?.direction}|${addressText(a)}`));
        for (const dk of oldDrops) {
          if (nextDrops.has(dk)) continue;
          const e = getDrop(dk);
          if (e === undefined) continue;
          const rs = new Set(e.rules);
          rs.delete(ruleId);
          drops.set(dk, rs.size === 0 ? undefined : { ...e, rules: rs });
        }
        for (const a of compiled?.isolate ?? []) {
          const dk = `${compiled?.direction}|${addressText(a)}`;
          if (oldDrops.has(dk)) continue;
          const e = getDrop(dk);
          const rs = new Set(e?.rules ?? []);
          rs.add(ruleId);
          drops.set(dk, { direction: compiled?.direction ?? 'In', address: a, rules: rs });
        }
        dropsOfRule.set(ruleId, nextDrops.size === 0 ? undefined : nextDrops);
      }

      await this.sink.change((b) => {
        for (const [id, flows] of ruleFlows) {
          if (flows === undefined) b.deleteFlows(ruleFlowKey(id));
          else b.replaceFlows(ruleFlowKey(id), flows);
        }
        for (const [mk, e] of matches) {
          if (e === undefined) b.deleteFlows(matchFlowKey(mk));
          // One flow per key with a fixed match: adding it replaces (modifies) the previous one.
          else b.addFlows(matchFlowKey(mk), [this.feature.matchFlow(p, e.direction, e.key, [...e.conjs.values()])]);
        }
        for (const [dk, e] of drops) {
          if (e === undefined) b.deleteFlows(dropFlowKey(dk));
          else if (this.drops.get(dk) === undefined)
            b.replaceFlows(dropFlowKey(dk), [this.feature.dropFlow(p, e.direction, e.address)]);
        }
      });
    } catch (err) {
      for (const id of allocated) this.conjOwner.delete(id);
      throw err;
    }
    const commit = <K, V>(dst: Map<K, V>, src: Map<K, V | undefined>): void => {
      for (const [k, v] of src) {
        if (v === undefined) dst.delete(k);
        else dst.set(k, v);
      }
    };
    commit(this.installed, installed);
    commit(this.subsOfRule, subsOfRule);
    commit(this.dropsOfRule, dropsOfRule);
    commit(this.matches, matches);
    commit(this.drops, drops);
    commit(this.conjOwner, conjOwner);
  }

  /**
   * Per-rule counters from the metric flows (OpenFlow flow stats of this round's NetworkPolicy
   * flows, grouped by the conj_id in the cookie). Rules with no counters yet report zeros.
   */
  async ruleStats(): Promise<RuleStats[]> {
    const p = this.sink.pipeline;
    const filter = this.feature.cookies.categoryFilter('NetworkPolicy');
    const byConj = new Map<number, { sessions: number; packets: number; bytes: number }>();
    for (const table of [T.IngressMetric, T.EgressMetric]) {
      const stats = await this.sink.dumpFlowsFiltered({ ...filter, table: p.table(table).id });
      for (const s of stats) {
        const id = decodeCookie(s.flow.cookie).objectId;
        if (id === 0) continue;
        const acc = byConj.get(id) ?? { sessions: 0, packets: 0, bytes: 0 };
        acc.packets += Number(s.packetCount);
        acc.bytes += Number(s.byteCount);
        if (/ct_state=\+new/.test(s.flow.toString())) acc.sessions += Number(s.packetCount);
        byConj.set(id, acc);
      }
    }
    const out: RuleStats[] = [];
    for (const sub of this.installed.values()) {
      const acc = byConj.get(sub.conjId) ?? { sessions: 0, packets: 0, bytes: 0 };
      out.push({ ruleId: sub.ruleId, conjId: sub.conjId, direction: sub.direction, ...acc });
    }
    return out.sort((a, b) => a.conjId - b.conjId);
  }
}
