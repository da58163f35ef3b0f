/**
 * The field tables of the controlplane.antrea.io/v1beta2 messages (Antrea's generated.proto: field
 * numbers and wire types) for the codec in wire.ts and json.ts. Field names are those of types.ts
 * (= the proto and JSON names). `required` marks Go's non-pointer fields: always written, zero when
 * absent; `optional` fields are written only when set.
 */
import { ListMetaMsg } from '../protobuf/k8s.ts';
import { type FieldSpec, type MessageType, message } from '../protobuf/wire.ts';
import { Direction, NetworkPolicyType, Protocol, RuleAction } from './types.ts';

const req = 'required' as const;
const str = (no: number, name: string, presence: 'required' | 'optional' = 'optional'): FieldSpec => ({
  no,
  name,
  kind: 'string',
  presence,
});
const msg = (
  no: number,
  name: string,
  type: MessageType,
  presence: 'required' | 'optional' = 'optional',
): FieldSpec => ({
  no,
  name,
  kind: 'message',
  type,
  presence,
});
const list = (no: number, name: string, type: MessageType, presence: 'required' | 'optional' = req): FieldSpec => ({
  no,
  name,
  kind: 'message',
  type,
  repeated: true,
  presence,
});

/** The subset of meta.v1.ObjectMeta the controlplane objects carry. */
export const ObjectMetaMsg = message('ObjectMeta', [
  str(1, 'name', req),
  str(5, 'uid'),
  str(6, 'resourceVersion'),
  { no: 7, name: 'generation', kind: 'int64' },
  { no: 11, name: 'labels', kind: 'map' },
  { no: 12, name: 'annotations', kind: 'map' },
]);

export const NetworkPolicyReferenceMsg = message('NetworkPolicyReference', [
  { no: 1, name: 'type', kind: 'string', presence: req, enum: Object.values(NetworkPolicyType) },
  str(2, 'namespace', req),
  str(3, 'name', req),
  str(4, 'uid', req),
]);

export const IPNetMsg = message('IPNet', [
  { no: 1, name: 'ip', kind: 'ip', presence: req },
  { no: 2, name: 'prefixLength', kind: 'int32', presence: req },
]);

export const IPBlockMsg = message('IPBlock', [msg(1, 'cidr', IPNetMsg, req), list(2, 'except', IPNetMsg)]);

export const ServiceReferenceMsg = message('ServiceReference', [str(1, 'name', req), str(2, 'namespace', req)]);

export const NetworkPolicyPeerMsg = message('NetworkPolicyPeer', [
  { no: 1, name: 'addressGroups', kind: 'string', repeated: true, presence: req },
  list(2, 'ipBlocks', IPBlockMsg),
  { no: 3, name: 'fqdns', kind: 'string', repeated: true },
  list(4, 'toServices', ServiceReferenceMsg, 'optional'),
  { no: 5, name: 'labelIdentities', kind: 'uint32', repeated: true },
]);

export const ServiceMsg = message('Service', [
  { no: 1, name: 'protocol', kind: 'string', enum: Object.values(Protocol) },
  { no: 2, name: 'port', kind: 'intOrString' },
  { no: 3, name: 'endPort', kind: 'int32' },
  { no: 4, name: 'icmpType', kind: 'int32' },
  { no: 5, name: 'icmpCode', kind: 'int32' },
  { no: 6, name: 'igmpType', kind: 'int32' },
  str(7, 'groupAddress'),
  { no: 8, name: 'srcPort', kind: 'int32' },
  { no: 9, name: 'srcEndPort', kind: 'int32' },
]);

export const HTTPProtocolMsg = message('HTTPProtocol', [str(1, 'host'), str(2, 'method'), str(3, 'path')]);
export const TLSProtocolMsg = message('TLSProtocol', [str(1, 'sni')]);
export const L7ProtocolMsg = message('L7Protocol', [msg(1, 'http', HTTPProtocolMsg), msg(2, 'tls', TLSProtocolMsg)]);

export const NetworkPolicyRuleMsg = message('NetworkPolicyRule', [
  { no: 1, name: 'direction', kind: 'string', presence: req, enum: Object.values(Direction) },
  msg(2, 'from', NetworkPolicyPeerMsg, req),
  msg(3, 'to', NetworkPolicyPeerMsg, req),
  list(4, 'services', ServiceMsg),
  { no: 5, name: 'priority', kind: 'int32', presence: req },
  { no: 6, name: 'action', kind: 'string', enum: Object.values(RuleAction) },
  { no: 7, name: 'enableLogging', kind: 'bool' },
  { no: 8, name: 'appliedToGroups', kind: 'string', repeated: true },
  str(9, 'name'),
  list(10, 'l7Protocols', L7ProtocolMsg, 'optional'),
  str(11, 'logLabel'),
]);

export const NetworkPolicyMsg = message('NetworkPolicy', [
  msg(1, 'metadata', ObjectMetaMsg, req),
  list(2, 'rules', NetworkPolicyRuleMsg),
  { no: 3, name: 'appliedToGroups', kind: 'string', repeated: true, presence: req },
  { no: 4, name: 'priority', kind: 'double' },
  { no: 5, name: 'tierPriority', kind: 'int32' },
  msg(6, 'sourceRef', NetworkPolicyReferenceMsg),
]);

const twoStrings = (name: string): MessageType => message(name, [str(1, 'name', req), str(2, 'namespace', req)]);
export const PodReferenceMsg = twoStrings('PodReference');
export const ExternalEntityReferenceMsg = twoStrings('ExternalEntityReference');
export const NodeReferenceMsg = message('NodeReference', [str(1, 'name', req)]);

export const NamedPortMsg = message('NamedPort', [
  { no: 1, name: 'port', kind: 'int32', presence: req },
  str(2, 'name', req),
  { no: 3, name: 'protocol', kind: 'string', presence: req, enum: Object.values(Protocol) },
]);

export const GroupMemberMsg = message('GroupMember', [
  msg(1, 'pod', PodReferenceMsg),
  msg(2, 'externalEntity', ExternalEntityReferenceMsg),
  { no: 3, name: 'ips', kind: 'ip', repeated: true },
  list(4, 'ports', NamedPortMsg, 'optional'),
  msg(5, 'node', NodeReferenceMsg),
  msg(6, 'service', ServiceReferenceMsg),
]);

const group = (name: string): MessageType =>
  message(name, [msg(1, 'metadata', ObjectMetaMsg, req), list(2, 'groupMembers', GroupMemberMsg)]);
const patch = (name: string): MessageType =>
  message(name, [
    msg(1, 'metadata', ObjectMetaMsg, req),
    list(2, 'addedGroupMembers', GroupMemberMsg),
    list(3, 'removedGroupMembers', GroupMemberMsg),
  ]);

export const AppliedToGroupMsg = group('AppliedToGroup');
export const AddressGroupMsg = group('AddressGroup');
export const AppliedToGroupPatchMsg = patch('AppliedToGroupPatch');
export const AddressGroupPatchMsg = patch('AddressGroupPatch');

const listOf = (name: string, item: MessageType): MessageType =>
  message(name, [msg(1, 'metadata', ListMetaMsg, req), list(2, 'items', item)]);

export const NetworkPolicyListMsg = listOf('NetworkPolicyList', NetworkPolicyMsg);
export const AddressGroupListMsg = listOf('AddressGroupList', AddressGroupMsg);
export const AppliedToGroupListMsg = listOf('AppliedToGroupList', AppliedToGroupMsg);

export const NetworkPolicyNodeStatusMsg = message('NetworkPolicyNodeStatus', [
  str(1, 'nodeName', req),
  { no: 2, name: 'generation', kind: 'int64', presence: req },
  { no: 3, name: 'realizationFailure', kind: 'bool' },
  str(4, 'message'),
]);

export const NetworkPolicyStatusMsg = message('NetworkPolicyStatus', [
  msg(1, 'metadata', ObjectMetaMsg, req),
  list(2, 'nodes', NetworkPolicyNodeStatusMsg),
]);
