/**
 * The controlplane.antrea.io/v1beta2 types the controller computes and agents consume. Each interface
 * maps 1:1 onto the Antrea message of the same name (field names as in generated.proto; field numbers
 * in the comments), so the protobuf/JSON codec is a mechanical translation.
 *
 * Representation choices (the codec converts):
 * - `IPAddress` is the canonical text of the address; on the wire it is 16 bytes (IPv4 as
 *   IPv4-mapped IPv6, see `ipTo16` in common/util/ipaddr.ts).
 * - Optional proto2 fields are optional properties; repeated fields are arrays (possibly empty).
 * - Objects handed out by the controller's stores are immutable: never mutate them.
 */

/** Text form of an IP address; 16 bytes on the wire. */
export type IPAddress = string;

export type IntOrString = number | string;

export const Direction = { In: 'In', Out: 'Out' } as const;
export type Direction = (typeof Direction)[keyof typeof Direction];

export const RuleAction = { Allow: 'Allow', Drop: 'Drop', Reject: 'Reject', Pass: 'Pass' } as const;
export type RuleAction = (typeof RuleAction)[keyof typeof RuleAction];

export const Protocol = { TCP: 'TCP', UDP: 'UDP', SCTP: 'SCTP', ICMP: 'ICMP', IGMP: 'IGMP' } as const;
export type Protocol = (typeof Protocol)[keyof typeof Protocol];

export const NetworkPolicyType = {
  K8sNetworkPolicy: 'K8sNetworkPolicy',
  AntreaClusterNetworkPolicy: 'AntreaClusterNetworkPolicy',
  AntreaNetworkPolicy: 'AntreaNetworkPolicy',
  AdminNetworkPolicy: 'AdminNetworkPolicy',
  BaselineAdminNetworkPolicy: 'BaselineAdminNetworkPolicy',
  ClusterNetworkPolicy: 'ClusterNetworkPolicy',
} as const;
export type NetworkPolicyType = (typeof NetworkPolicyType)[keyof typeof NetworkPolicyType];

/** The subset of ObjectMeta the controlplane objects carry (meta.v1 field numbers). */
export interface ObjectMeta {
  /** 1 */ readonly name: string;
  /** 5 */ readonly uid?: string;
  /** 6 */ readonly resourceVersion?: string;
  /** 7 */ readonly generation?: number;
  /** 11 */ readonly labels?: Readonly<Record<string, string>>;
  /** 12 */ readonly annotations?: Readonly<Record<string, string>>;
}

/** NetworkPolicyReference: the user-facing policy an internal policy comes from. */
export interface NetworkPolicyReference {
  /** 1 */ readonly type: NetworkPolicyType;
  /** 2 */ readonly namespace: string;
  /** 3 */ readonly name: string;
  /** 4 */ readonly uid: string;
}

/** IPNet: 1 ip, 2 prefixLength. */
export interface IPNet {
  readonly ip: IPAddress;
  readonly prefixLength: number;
}

/** IPBlock: 1 cidr, 2 except. */
export interface IPBlock {
  readonly cidr: IPNet;
  readonly except: readonly IPNet[];
}

/** ServiceReference: 1 name, 2 namespace. */
export interface ServiceReference {
  readonly name: string;
  readonly namespace: string;
}

/** NetworkPolicyPeer. */
export interface NetworkPolicyPeer {
  /** 1 */ readonly addressGroups: readonly string[];
  /** 2 */ readonly ipBlocks: readonly IPBlock[];
  /** 3 (egress only) */ readonly fqdns?: readonly string[];
  /** 4 (egress only) */ readonly toServices?: readonly ServiceReference[];
  /** 5 (ingress only) */ readonly labelIdentities?: readonly number[];
}

/** Service: an L4 (or ICMP/IGMP) match. Protocol unset means TCP. */
export interface Service {
  /** 1 */ readonly protocol?: Protocol;
  /** 2 (number, or the name of a container port) */ readonly port?: IntOrString;
  /** 3 */ readonly endPort?: number;
  /** 4 */ readonly icmpType?: number;
  /** 5 */ readonly icmpCode?: number;
  /** 6 */ readonly igmpType?: number;
  /** 7 */ readonly groupAddress?: string;
  /** 8 */ readonly srcPort?: number;
  /** 9 */ readonly srcEndPort?: number;
}

export interface HTTPProtocol {
  /** 1 */ readonly host?: string;
  /** 2 */ readonly method?: string;
  /** 3 */ readonly path?: string;
}

export interface TLSProtocol {
  /** 1 */ readonly sni?: string;
}

/** L7Protocol: 1 http, 2 tls. */
export interface L7Protocol {
  readonly http?: HTTPProtocol;
  readonly tls?: TLSProtocol;
}

/** NetworkPolicyRule. */
export interface NetworkPolicyRule {
  /** 1 */ readonly direction: Direction;
  /** 2 (the peers of an In rule; empty for Out rules, always encoded as in Go) */ readonly from: NetworkPolicyPeer;
  /** 3 (the peers of an Out rule; empty for In rules) */ readonly to: NetworkPolicyPeer;
  /** 4 (empty: any port and protocol) */ readonly services: readonly Service[];
  /** 5 (K8s NetworkPolicy rules: -1; their default-deny rules: 0) */ readonly priority: number;
  /** 6 (unset means Allow for K8s NetworkPolicy rules and marks a default-deny rule) */ readonly action?: RuleAction;
  /** 7 */ readonly enableLogging?: boolean;
  /** 8 (rule-level appliedTo, exclusive with the policy-level list) */ readonly appliedToGroups?: readonly string[];
  /** 9 (unique within the policy; empty for K8s NetworkPolicy) */ readonly name?: string;
  /** 10 */ readonly l7Protocols?: readonly L7Protocol[];
  /** 11 */ readonly logLabel?: string;
}

/** NetworkPolicy: the internal policy an agent enforces. metadata.name = uid = the source's UID. */
export interface NetworkPolicy {
  /** 1 */ readonly metadata: ObjectMeta;
  /** 2 */ readonly rules: readonly NetworkPolicyRule[];
  /** 3 (policy-level appliedTo; empty when appliedTo is per rule) */ readonly appliedToGroups: readonly string[];
  /** 4 (unset for K8s NetworkPolicy) */ readonly priority?: number;
  /** 5 (unset for K8s NetworkPolicy) */ readonly tierPriority?: number;
  /** 6 */ readonly sourceRef?: NetworkPolicyReference;
}

export interface PodReference {
  /** 1 */ readonly name: string;
  /** 2 */ readonly namespace: string;
}

export interface ExternalEntityReference {
  /** 1 */ readonly name: string;
  /** 2 */ readonly namespace: string;
}

export interface NodeReference {
  /** 1 */ readonly name: string;
}

/** NamedPort: a named container port of a member (resolves named ports in rules). */
export interface NamedPort {
  /** 1 */ readonly port: number;
  /** 2 */ readonly name: string;
  /** 3 */ readonly protocol: Protocol;
}

/** GroupMember: exactly one of pod, externalEntity, node, service identifies it. */
export interface GroupMember {
  /** 1 */ readonly pod?: PodReference;
  /** 2 */ readonly externalEntity?: ExternalEntityReference;
  /** 3 (AddressGroup members only) */ readonly ips?: readonly IPAddress[];
  /** 4 */ readonly ports?: readonly NamedPort[];
  /** 5 */ readonly node?: NodeReference;
  /** 6 (AppliedToGroup members only) */ readonly service?: ServiceReference;
}

/** AppliedToGroup: the workloads a policy applies to (an agent receives those on its Node). */
export interface AppliedToGroup {
  /** 1 */ readonly metadata: ObjectMeta;
  /** 2 */ readonly groupMembers: readonly GroupMember[];
}

export interface AppliedToGroupPatch {
  /** 1 */ readonly metadata: ObjectMeta;
  /** 2 */ readonly addedGroupMembers: readonly GroupMember[];
  /** 3 */ readonly removedGroupMembers: readonly GroupMember[];
}

/** AddressGroup: the addresses a rule's peer stands for. */
export interface AddressGroup {
  /** 1 */ readonly metadata: ObjectMeta;
  /** 2 */ readonly groupMembers: readonly GroupMember[];
}

export interface AddressGroupPatch {
  /** 1 */ readonly metadata: ObjectMeta;
  /** 2 */ readonly addedGroupMembers: readonly GroupMember[];
  /** 3 */ readonly removedGroupMembers: readonly GroupMember[];
}

/** Tier priority K8s NetworkPolicies are evaluated at (between application 250 and baseline 253). */
export const K8S_NETWORK_POLICY_TIER_PRIORITY = 251;
/** Rule priority of K8s NetworkPolicy rules. */
export const DEFAULT_RULE_PRIORITY = -1;

/**
 * The key two GroupMembers are compared by (Antrea's GroupMemberSet key): the kind and reference of
 * the member followed by its IPs, so an IP change is a different member.
 */
export function groupMemberKey(m: GroupMember): string {
  let key: string;
  if (m.pod !== undefined) key = `Pod:${m.pod.namespace}/${m.pod.name}`;
  else if (m.externalEntity !== undefined)
    key = `ExternalEntity:${m.externalEntity.namespace}/${m.externalEntity.name}`;
  else if (m.service !== undefined) key = `Service:${m.service.namespace}/${m.service.name}`;
  else if (m.node !== undefined) key = `Node:${m.node.name}`;
  else key = '';
  if (m.ips !== undefined && m.ips.length > 0) key += `#${m.ips.join(',')}`;
  return key;
}

/** NetworkPolicyNodeStatus: what one Node realized of a policy. */
export interface NetworkPolicyNodeStatus {
  /** 1 */ readonly nodeName: string;
  /** 2 (the policy generation the Node realized) */ readonly generation: number;
  /** 3 */ readonly realizationFailure?: boolean;
  /** 4 */ readonly message?: string;
}

/** NetworkPolicyStatus: an agent's report for one policy (metadata.name = the internal policy's name). */
export interface NetworkPolicyStatus {
  /** 1 */ readonly metadata: ObjectMeta;
  /** 2 */ readonly nodes: readonly NetworkPolicyNodeStatus[];
}

/** ListMeta (meta.v1 field numbers). */
export interface ListMeta {
  /** 2 */ readonly resourceVersion?: string;
}

export interface NetworkPolicyList {
  /** 1 */ readonly metadata: ListMeta;
  /** 2 */ readonly items: readonly NetworkPolicy[];
}

export interface AddressGroupList {
  /** 1 */ readonly metadata: ListMeta;
  /** 2 */ readonly items: readonly AddressGroup[];
}

export interface AppliedToGroupList {
  /** 1 */ readonly metadata: ListMeta;
  /** 2 */ readonly items: readonly AppliedToGroup[];
}
