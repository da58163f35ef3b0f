/**
 * The agent's rule cache (Antrea's pkg/agent/controller/networkpolicy/cache.go; facts §6.2): the
 * policies, AddressGroups and AppliedToGroups received for this Node, the rules of every policy keyed
 * by a content hash (a changed rule is a deletion plus an addition), and indexes from groups and
 * policies to rules. Every mutation returns the ids of the rules it affected (added, changed,
 * removed); {@link RuleCache.completed} resolves a rule's groups for the reconciler.
 */
import { createHash } from 'node:crypto';
import {
  type AddressGroup,
  type AddressGroupPatch,
  type AppliedToGroup,
  type AppliedToGroupPatch,
  type Direction,
  type GroupMember,
  groupMemberKey,
  type NetworkPolicy,
  type NetworkPolicyPeer,
  type NetworkPolicyReference,
  type RuleAction,
  type Service,
} from '../../apis/controlplane/types.ts';

/** One rule of one policy, as the cache keeps it. */
export interface CacheRule {
  /** First 16 hex characters of SHA-1 over the rule's content and its policy. */
  readonly id: string;
  /** The internal policy's name. */
  readonly policy: string;
  readonly policyGeneration: number;
  readonly sourceRef: NetworkPolicyReference | undefined;
  /** Antrea-native policies have a tier priority; Kubernetes ones do not. */
  readonly tierPriority: number | undefined;
  readonly direction: Direction;
  /** The peers: `from` of an In rule, `to` of an Out rule. */
  readonly peer: NetworkPolicyPeer;
  readonly services: readonly Service[];
  readonly appliedToGroups: readonly string[];
  readonly action: RuleAction | undefined;
  readonly priority: number;
  readonly name: string | undefined;
}

/** A rule with its groups resolved. */
export interface CompletedRule extends CacheRule {
  /** Members of the peer AddressGroups (deduplicated). */
  readonly peerMembers: readonly GroupMember[];
  /** Members of the AppliedToGroups (deduplicated). */
  readonly targets: readonly GroupMember[];
}

/** Whether the peer names any address (empty peers match nothing on their side). */
export function peerIsEmpty(p: NetworkPolicyPeer): boolean {
  return p.addressGroups.length === 0 && p.ipBlocks.length === 0;
}

function ruleId(policy: NetworkPolicy, body: Omit<CacheRule, 'id' | 'policyGeneration'>): string {
  const text = JSON.stringify({ uid: policy.metadata.uid ?? policy.metadata.name, ...body });
  return createHash('sha1').update(text).digest('hex').slice(0, 16);
}

/** The rules of a policy (identical rules collapse into one). */
export function rulesOf(policy: NetworkPolicy): CacheRule[] {
  const out = new Map<string, CacheRule>();
  for (const r of policy.rules) {
    const body = {
      policy: policy.metadata.name,
      sourceRef: policy.sourceRef,
      tierPriority: policy.tierPriority,
      direction: r.direction,
      peer: r.direction === 'In' ? r.from : r.to,
      services: r.services,
      appliedToGroups:
        r.appliedToGroups !== undefined && r.appliedToGroups.length > 0 ? r.appliedToGroups : policy.appliedToGroups,
      action: r.action,
      priority: r.priority,
      name: r.name,
    };
    const id = ruleId(policy, body);
    out.set(id, { id, policyGeneration: policy.metadata.generation ?? 0, ...body });
  }
  return [...out.values()];
}

export type GroupKind = 'addressgroups' | 'appliedtogroups';

export class RuleCache {
  private readonly policies = new Map<string, NetworkPolicy>();
  private readonly rules = new Map<string, CacheRule>();
  private readonly rulesByPolicy = new Map<string, Set<string>>();
  private readonly groups: Record<GroupKind, Map<string, Map<string, GroupMember>>> = {
    addressgroups: new Map(),
    appliedtogroups: new Map(),
  };
  private readonly rulesByGroup: Record<GroupKind, Map<string, Set<string>>> = {
    addressgroups: new Map(),
    appliedtogroups: new Map(),
  };

  get policyCount(): number {
    return this.policies.size;
  }
  get ruleCount(): number {
    return this.rules.size;
  }

  policy(name: string): NetworkPolicy | undefined {
    return this.policies.get(name);
  }
  rule(id: string): CacheRule | undefined {
    return this.rules.get(id);
  }
  ruleIds(): string[] {
    return [...this.rules.keys()];
  }
  ruleIdsOfPolicy(name: string): string[] {
    return [...(this.rulesByPolicy.get(name) ?? [])];
  }
  /** Every policy held, as received (sorted by name). */
  policyList(): NetworkPolicy[] {
    return [...this.policies.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  }
  /** Every group of a kind with its current members (sorted by name); empty when none arrived. */
  groupList(kind: GroupKind): { name: string; members: GroupMember[] }[] {
    return [...this.groups[kind]]
      .map(([name, m]) => ({ name, members: [...m.values()] }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  // ---- policies --------------------------------------------------------------------------------

  /** Adds or replaces a policy. Returns the rules added and removed. */
  setPolicy(p: NetworkPolicy): Set<string> {
    const name = p.metadata.name;
    const dirty = new Set<string>();
    const old = this.rulesByPolicy.get(name) ?? new Set<string>();
    const next = new Map(rulesOf(p).map((r) => [r.id, r]));
    for (const id of old) {
      if (!next.has(id)) {
        this.removeRule(id);
        dirty.add(id);
      }
    }
    for (const [id, r] of next) {
      const prev = this.rules.get(id);
      if (prev === undefined || prev.policyGeneration !== r.policyGeneration) dirty.add(id);
      if (prev === undefined) this.addRule(r);
      else this.rules.set(id, r);
    }
    this.policies.set(name, p);
    this.rulesByPolicy.set(name, new Set(next.keys()));
    return dirty;
  }

  /** Deletes a policy (no-op if absent). Returns its rules. */
  deletePolicy(name: string): Set<string> {
    const dirty = new Set<string>(this.rulesByPolicy.get(name) ?? []);
    for (const id of dirty) this.removeRule(id);
    this.rulesByPolicy.delete(name);
    this.policies.delete(name);
    return dirty;
  }

  /** Makes `list` the complete set of policies. Returns every rule affected. */
  replacePolicies(list: readonly NetworkPolicy[]): Set<string> {
    const dirty = new Set<string>();
    const keep = new Set(list.map((p) => p.metadata.name));
    for (const name of [...this.policies.keys()])
      if (!keep.has(name)) for (const id of this.deletePolicy(name)) dirty.add(id);
    for (const p of list) for (const id of this.setPolicy(p)) dirty.add(id);
    return dirty;
  }

  private addRule(r: CacheRule): void {
    this.rules.set(r.id, r);
    const index = (kind: GroupKind, names: readonly string[]): void => {
      for (const g of names) {
        let s = this.rulesByGroup[kind].get(g);
        if (s === undefined) this.rulesByGroup[kind].set(g, (s = new Set()));
        s.add(r.id);
      }
    };
    index('addressgroups', r.peer.addressGroups);
    index('appliedtogroups', r.appliedToGroups);
  }

  private removeRule(id: string): void {
    const r = this.rules.get(id);
    if (r === undefined) return;
    this.rules.delete(id);
    const unindex = (kind: GroupKind, names: readonly string[]): void => {
      for (const g of names) {
        const s = this.rulesByGroup[kind].get(g);
        s?.delete(id);
        if (s?.size === 0) this.rulesByGroup[kind].delete(g);
      }
    };
    unindex('addressgroups', r.peer.addressGroups);
    unindex('appliedtogroups', r.appliedToGroups);
  }

  // ---- groups ----------------------------------------------------------------------------------

  private dependents(kind: GroupKind, name: string): Set<string> {
    return new Set(this.rulesByGroup[kind].get(name) ?? []);
  }

  /** Adds or replaces a group. Returns the rules using it. */
  setGroup(kind: GroupKind, g: AddressGroup | AppliedToGroup): Set<string> {
    this.groups[kind].set(g.metadata.name, new Map(g.groupMembers.map((m) => [groupMemberKey(m), m])));
    return this.dependents(kind, g.metadata.name);
  }

  /** Applies a patch; returns undefined when the group is unknown. */
  patchGroup(kind: GroupKind, p: AddressGroupPatch | AppliedToGroupPatch): Set<string> | undefined {
    const members = this.groups[kind].get(p.metadata.name);
    if (members === undefined) return undefined;
    for (const m of p.removedGroupMembers) members.delete(groupMemberKey(m));
    for (const m of p.addedGroupMembers) members.set(groupMemberKey(m), m);
    return this.dependents(kind, p.metadata.name);
  }

  deleteGroup(kind: GroupKind, name: string): Set<string> {
    this.groups[kind].delete(name);
    return this.dependents(kind, name);
  }

  replaceGroups(kind: GroupKind, list: readonly (AddressGroup | AppliedToGroup)[]): Set<string> {
    const dirty = new Set<string>();
    const keep = new Set(list.map((g) => g.metadata.name));
    for (const name of [...this.groups[kind].keys()]) {
      if (!keep.has(name)) for (const id of this.deleteGroup(kind, name)) dirty.add(id);
    }
    for (const g of list) for (const id of this.setGroup(kind, g)) dirty.add(id);
    return dirty;
  }

  /** Rules applied to a Pod (through any AppliedToGroup holding it) or with it as a peer. */
  rulesOfPod(namespace: string, name: string): Set<string> {
    const out = new Set<string>();
    for (const kind of ['appliedtogroups', 'addressgroups'] as const) {
      for (const [g, members] of this.groups[kind]) {
        for (const m of members.values()) {
          if (m.pod?.name === name && m.pod.namespace === namespace) {
            for (const id of this.dependents(kind, g)) out.add(id);
            break;
          }
        }
      }
    }
    return out;
  }

  /**
   * The rule with its groups resolved; `undefined` if the rule is gone; `'unrealizable'` while a
   * group it needs has not arrived (the rule waits for it).
   */
  completed(id: string): CompletedRule | 'unrealizable' | undefined {
    const r = this.rules.get(id);
    if (r === undefined) return undefined;
    const collect = (kind: GroupKind, names: readonly string[]): GroupMember[] | undefined => {
      const out = new Map<string, GroupMember>();
      for (const g of names) {
        const members = this.groups[kind].get(g);
        if (members === undefined) return undefined;
        for (const [k, m] of members) out.set(k, m);
      }
      return [...out.values()];
    };
    const peerMembers = collect('addressgroups', r.peer.addressGroups);
    const targets = collect('appliedtogroups', r.appliedToGroups);
    if (peerMembers === undefined || targets === undefined) return 'unrealizable';
    return { ...r, peerMembers, targets };
  }
}
