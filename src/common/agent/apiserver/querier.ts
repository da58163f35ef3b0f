/**
 * What the agent API answers, computed from the agent's live parts (Antrea's pkg/agent/querier and
 * the handlers of pkg/agent/apiserver/handlers): agent information, local Pod interfaces, OVS flows
 * in `ovs-ofctl dump-flows` text (rendered by our own formatter from OpenFlow flow stats, never by
 * running ovs-ofctl), and the NetworkPolicies, AddressGroups and AppliedToGroups as this agent holds
 * them, the policies with per-rule packet, byte and session counts from the metric flows.
 *
 * The agent registers its parts as they come up ({@link AgentQuerier.setPipeline},
 * {@link AgentQuerier.setPolicyController}); until then the answers that need them fail with a 503
 * (AgentNotReady) naming what is missing, and `agentinfo` reports what is known.
 */
import type { AddressGroup, AppliedToGroup, GroupMember, NetworkPolicy } from '../../apis/controlplane/types.ts';
import { formatFlow } from '../../ovs/openflow/flow.ts';
import type { FlowStats } from '../../ovs/openflow/flow.ts';
import { Match } from '../../ovs/openflow/match.ts';
import { OFP_DEFAULT_PRIORITY } from '../../ovs/openflow/consts.ts';
import { HttpError } from '../../apiserver/http.ts';
import { ValidationError } from '../../util/errors.ts';
import { rulesOf } from '../networkpolicy/cache.ts';
import type { NetworkPolicyController } from '../networkpolicy/controller.ts';
import type { BridgeClient } from '../openflow/bridge.ts';
import { podFlowKey } from '../openflow/pod-connectivity.ts';
import type { InterfaceConfig } from '../interfacestore.ts';

/** One local Pod interface (Antrea's PodInterface response). */
export interface PodInterfaceResponse {
  readonly name: string;
  readonly podNamespace: string;
  readonly interfaceName: string;
  readonly ips: readonly string[];
  readonly mac: string;
  readonly ofPort: number;
  readonly containerID: string;
}

export interface AgentCondition {
  readonly type: 'AgentHealthy' | 'ControllerConnectionUp' | 'OVSDBConnectionUp' | 'OpenflowConnectionUp';
  readonly status: 'True' | 'False' | 'Unknown';
  readonly lastHeartbeatTime: string;
  readonly reason?: string;
  readonly message?: string;
}

/** The AntreaAgentInfo fields (without the Kubernetes bookkeeping), as Antrea's `/agentinfo`. */
export interface AgentInfoResponse {
  readonly version: string;
  readonly podRef: { readonly kind: 'Pod'; readonly namespace: string; readonly name: string };
  readonly nodeRef: { readonly kind: 'Node'; readonly name: string };
  readonly nodeSubnets: readonly string[];
  readonly ovsInfo: {
    readonly bridgeName: string;
    readonly flowTable: Readonly<Record<string, number>>;
  };
  readonly networkPolicyControllerInfo: {
    readonly networkPolicyNum: number;
    readonly addressGroupNum: number;
    readonly appliedToGroupNum: number;
  };
  readonly localPodNum: number;
  readonly agentConditions: readonly AgentCondition[];
  readonly apiPort: number;
}

/** Counters of traffic a rule (or a whole policy) allowed, as Antrea's stats API names them. */
export interface TrafficStats {
  readonly packets: number;
  readonly bytes: number;
  readonly sessions: number;
}

/** A NetworkPolicy as realized by this agent, with its counters. */
export interface NetworkPolicyResponse extends NetworkPolicy {
  readonly trafficStats: TrafficStats;
  /** One entry per rule of the policy (same order as `rules`). */
  readonly ruleTrafficStats: readonly {
    readonly ruleIndex: number;
    readonly name?: string;
    readonly direction: 'In' | 'Out';
    readonly trafficStats: TrafficStats;
  }[];
}

/** How `/ovsflows` selects flows. */
export interface OvsFlowQuery {
  /** Table ids (empty: all tables). */
  readonly tables?: readonly number[];
  /** Only the flows installed for this Pod's interfaces. */
  readonly pod?: { readonly namespace: string; readonly name: string };
}

/** The agent's live state the querier reads; each member may arrive later (see the setters). */
export interface AgentQuerierOptions {
  readonly nodeName: string;
  readonly bridgeName: string;
  readonly apiPort: number;
  readonly version: string;
  /** The agent's own Pod (POD_NAMESPACE / POD_NAME), when known. */
  readonly podNamespace?: string;
  readonly podName?: string;
  /** Local interfaces (the interface store). */
  readonly interfaces: () => readonly InterfaceConfig[];
  /** Connection states for the conditions (undefined: unknown). */
  readonly ovsdbConnected?: () => boolean;
  readonly openflowConnected?: () => boolean;
  readonly controllerConnected?: () => boolean | undefined;
  readonly now?: () => number;
}

const zero = (): { packets: number; bytes: number; sessions: number } => ({ packets: 0, bytes: 0, sessions: 0 });

/** Duration as ovs-ofctl prints it: seconds, and milliseconds (rounded) when there are nanoseconds. */
function formatDuration(sec: number, nsec: number): string {
  if (nsec <= 0) return `${sec}s`;
  const ms = Math.round(nsec / 1e6);
  return ms >= 1000 ? `${sec + 1}.000s` : `${sec}.${String(ms).padStart(3, '0')}s`;
}

/**
 * One flow with its counters, as `ovs-ofctl -O OpenFlow15 dump-flows` prints it (OVS
 * ofputil_flow_stats_format): cookie, duration, table, n_packets, n_bytes, the timeouts, flags and
 * importance, idle_age, then priority, match and actions as {@link formatFlow} renders them.
 */
export function formatFlowStats(s: FlowStats): string {
  const f = s.flow;
  const plain = { cookie: 0n, table: 0, idleTimeout: 0, hardTimeout: 0, flags: 0, importance: 0 };
  // The part between the counters and the match: timeouts, flags, importance.
  const head = formatFlow({
    ...plain,
    idleTimeout: f.idleTimeout,
    hardTimeout: f.hardTimeout,
    flags: f.flags,
    importance: f.importance,
    match: Match.EMPTY,
    priority: OFP_DEFAULT_PRIORITY,
    actions: [],
  });
  const mid = head.slice(0, head.lastIndexOf('actions='));
  const tail = formatFlow({ ...plain, priority: f.priority, match: f.match, actions: f.actions });
  let out = `cookie=0x${f.cookie.toString(16)}, duration=${formatDuration(s.durationSec, s.durationNsec)}, `;
  out += `table=${f.table}, n_packets=${s.packetCount}, n_bytes=${s.byteCount}, ${mid}`;
  if (s.idleAgeSec !== undefined) out += `idle_age=${s.idleAgeSec}, `;
  return out + tail;
}

export const notReady = (what: string): HttpError =>
  new HttpError(503, 'AgentNotReady', `${what} is not available yet (the agent is starting)`);

export class AgentQuerier {
  private readonly o: AgentQuerierOptions;
  private bridge: BridgeClient | undefined;
  private policy: NetworkPolicyController | undefined;
  /** This Node's name (known once the Node is initialized). */
  nodeName: string;

  constructor(o: AgentQuerierOptions) {
    this.o = o;
    this.nodeName = o.nodeName;
  }

  /** The OpenFlow pipeline is programmed: flows and table names can be served. */
  setPipeline(bridge: BridgeClient): void {
    this.bridge = bridge;
  }

  /** The NetworkPolicy controller exists: policies, groups and counters can be served. */
  setPolicyController(policy: NetworkPolicyController): void {
    this.policy = policy;
  }

  /** Table name → id of the realized pipeline (empty before it is programmed). */
  tables(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const t of this.bridge?.pipeline.tables ?? []) out[t.name] = t.id;
    return out;
  }

  /** Resolves `-T` values (names or numbers) to table ids; a ValidationError names an unknown one. */
  resolveTables(values: readonly string[]): number[] {
    if (values.length === 0) return [];
    const bridge = this.bridge;
    if (bridge === undefined) throw notReady('the OpenFlow pipeline');
    const byName = this.tables();
    const ids = new Set(Object.values(byName));
    return values.map((v) => {
      if (/^\d+$/.test(v)) {
        const n = Number(v);
        if (!ids.has(n)) throw new ValidationError('table', `no table ${n} in the pipeline`);
        return n;
      }
      const id = byName[v];
      if (id === undefined) {
        throw new ValidationError('table', `unknown table "${v}" (tables: ${Object.keys(byName).join(', ')})`);
      }
      return id;
    });
  }

  podInterfaces(filter: { name?: string; namespace?: string } = {}): PodInterfaceResponse[] {
    const out: PodInterfaceResponse[] = [];
    for (const i of this.o.interfaces()) {
      const c = i.container;
      if (i.type !== 'container' || c === undefined) continue;
      if (filter.name !== undefined && c.podName !== filter.name) continue;
      if (filter.namespace !== undefined && c.podNamespace !== filter.namespace) continue;
      out.push({
        name: c.podName,
        podNamespace: c.podNamespace,
        interfaceName: i.name,
        ips: [...i.ips],
        mac: i.mac,
        ofPort: i.ofport ?? -1,
        containerID: c.containerId,
      });
    }
    return out.sort((a, b) =>
      a.podNamespace === b.podNamespace ? a.name.localeCompare(b.name) : a.podNamespace.localeCompare(b.podNamespace),
    );
  }

  /**
   * Flows with their counters in ovs-ofctl text, ordered by table then descending priority (as
   * ovs-ofctl --sort would not: it sorts by priority only, we keep the pipeline order readable).
   * With `pod`, only the flows installed for that Pod's interfaces (none when it has no interface
   * on this Node).
   */
  async ovsFlows(q: OvsFlowQuery): Promise<string[]> {
    const bridge = this.bridge;
    if (bridge === undefined) throw notReady('the OpenFlow pipeline');
    const tables = q.tables ?? [];
    let stats: FlowStats[] = [];
    if (tables.length === 0) stats = await bridge.dumpFlows();
    else for (const t of tables) stats.push(...(await bridge.dumpFlows(t)));
    if (q.pod !== undefined) {
      const pod = q.pod;
      const ports = this.podInterfaces({ name: pod.name, namespace: pod.namespace }).map((p) => p.interfaceName);
      const wanted = new Set(ports.flatMap((p) => bridge.recordedFlows(podFlowKey(p)).map((f) => f.toString())));
      stats = stats.filter((s) => wanted.has(s.flow.toString()));
    }
    stats.sort((a, b) => a.flow.table - b.flow.table || b.flow.priority - a.flow.priority);
    return stats.map((s) => formatFlowStats(s));
  }

  private requirePolicy(): NetworkPolicyController {
    if (this.policy === undefined) throw notReady('the NetworkPolicy controller');
    return this.policy;
  }

  /** Policies held by this agent, each with its counters (summed over its rules) and per rule. */
  async networkPolicies(
    filter: { name?: string; namespace?: string; sourceName?: string } = {},
  ): Promise<NetworkPolicyResponse[]> {
    const policy = this.requirePolicy();
    const stats = await policy.ruleStats();
    const byRule = new Map<string, { packets: number; bytes: number; sessions: number }>();
    for (const s of stats) {
      const acc = byRule.get(s.ruleId) ?? zero();
      acc.packets += s.packets;
      acc.bytes += s.bytes;
      acc.sessions += s.sessions;
      byRule.set(s.ruleId, acc);
    }
    const out: NetworkPolicyResponse[] = [];
    for (const p of policy.cache.policyList()) {
      if (filter.name !== undefined && p.metadata.name !== filter.name) continue;
      if (filter.namespace !== undefined && p.sourceRef?.namespace !== filter.namespace) continue;
      if (filter.sourceName !== undefined && p.sourceRef?.name !== filter.sourceName) continue;
      const total = zero();
      const rules = p.rules.map((r, ruleIndex) => {
        const [cacheRule] = rulesOf({ ...p, rules: [r] });
        const s = (cacheRule === undefined ? undefined : byRule.get(cacheRule.id)) ?? zero();
        total.packets += s.packets;
        total.bytes += s.bytes;
        total.sessions += s.sessions;
        return {
          ruleIndex,
          ...(r.name === undefined ? {} : { name: r.name }),
          direction: r.direction,
          trafficStats: { ...s },
        };
      });
      out.push({ ...p, trafficStats: total, ruleTrafficStats: rules });
    }
    return out;
  }

  addressGroups(name?: string): AddressGroup[] {
    return this.groups('addressgroups', name);
  }

  appliedToGroups(name?: string): AppliedToGroup[] {
    return this.groups('appliedtogroups', name);
  }

  private groups(kind: 'addressgroups' | 'appliedtogroups', name: string | undefined): AddressGroup[] {
    return this.requirePolicy()
      .cache.groupList(kind)
      .filter((g) => name === undefined || g.name === name)
      .map((g) => ({ metadata: { name: g.name }, groupMembers: sortMembers(g.members) }));
  }

  agentInfo(): AgentInfoResponse {
    const o = this.o;
    const now = new Date((o.now ?? Date.now)()).toISOString();
    const cond = (type: AgentCondition['type'], ok: boolean | undefined): AgentCondition => ({
      type,
      status: ok === undefined ? 'Unknown' : ok ? 'True' : 'False',
      lastHeartbeatTime: now,
    });
    const policy = this.policy;
    const ovsdb = o.ovsdbConnected?.();
    const openflow = this.bridge === undefined ? undefined : o.openflowConnected?.();
    const conditions = [
      cond('AgentHealthy', ovsdb !== false && openflow !== false),
      cond('ControllerConnectionUp', o.controllerConnected?.()),
      cond('OVSDBConnectionUp', ovsdb),
      cond('OpenflowConnectionUp', openflow),
    ];
    const pods = new Set(this.podInterfaces().map((p) => `${p.podNamespace}/${p.name}`));
    return {
      version: o.version,
      podRef: { kind: 'Pod', namespace: o.podNamespace ?? '', name: o.podName ?? '' },
      nodeRef: { kind: 'Node', name: this.nodeName },
      nodeSubnets: this.nodeSubnets,
      ovsInfo: { bridgeName: o.bridgeName, flowTable: this.flowTableSizes },
      networkPolicyControllerInfo: {
        networkPolicyNum: policy?.cache.policyCount ?? 0,
        addressGroupNum: policy?.cache.groupList('addressgroups').length ?? 0,
        appliedToGroupNum: policy?.cache.groupList('appliedtogroups').length ?? 0,
      },
      localPodNum: pods.size,
      agentConditions: conditions,
      apiPort: o.apiPort,
    };
  }

  /** Pod CIDRs of this Node, once initialized. */
  nodeSubnets: readonly string[] = [];

  /** Flows per table name (from the recorded flows; empty before the pipeline is programmed). */
  private get flowTableSizes(): Record<string, number> {
    const bridge = this.bridge;
    if (bridge === undefined) return {};
    const counts = new Map<number, number>();
    for (const f of bridge.recordedFlows()) counts.set(f.table, (counts.get(f.table) ?? 0) + 1);
    const out: Record<string, number> = {};
    for (const t of bridge.pipeline.tables) out[t.name] = counts.get(t.id) ?? 0;
    return out;
  }
}

function memberKey(m: GroupMember): string {
  if (m.pod !== undefined) return `0/${m.pod.namespace}/${m.pod.name}`;
  if (m.node !== undefined) return `1/${m.node.name}`;
  return `2/${JSON.stringify(m)}`;
}

function sortMembers(members: readonly GroupMember[]): GroupMember[] {
  return [...members].sort((a, b) => memberKey(a).localeCompare(memberKey(b)));
}
