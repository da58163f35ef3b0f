/**
 * Native OpenFlow 1.5 client for Open vSwitch (with Nicira extensions): the public surface.
 *
 * - Model and canonical text: Flow/parseFlow, Group/parseGroup, Meter/parseMeter, Match/parseMatch,
 *   actions (parseActions/formatActions and constructors). `String(x)` is what
 *   `ovs-ofctl -O OpenFlow15 --no-stats dump-flows` / `dump-groups` / `dump-meters` prints.
 * - Transport: OpenFlowConnection (one connection), OpenFlowClient (reconnecting, with handlers).
 * - Operations: op.* with apply/applyBundle, dumps and stats, table names, TLV maps (ops.ts).
 * - Packets: PACKET_OUT, NXT_PACKET_IN2 (PacketIn), NXT_RESUME; packet.ts builds/parses packets.
 */
export * from './actions.ts';
export { OpenFlowDecodeError } from './bytes.ts';
export { OpenFlowClient, type ConnectHandler, type OpenFlowClientOptions } from './client.ts';
export {
  OpenFlowConnection,
  type OpenFlowConnectionOptions,
  type PacketInListener,
  type TrackedMessage,
  trackedBytes,
} from './connection.ts';
export {
  FLOW_MOD_COMMANDS,
  type FlowFlag,
  type FlowModCommand,
  type GroupType,
  OFPP,
  formatPort,
  parsePort,
} from './consts.ts';
export {
  type FailedRequest,
  OpenFlowError,
  type OpenFlowErrorCode,
  isOpenFlowError,
  openFlowErrorName,
} from './errors.ts';
export {
  type FieldDef,
  type Subfield,
  FIELDS,
  field,
  findField,
  formatSubfield,
  parseSubfield,
  subfield,
} from './fields.ts';
export {
  Flow,
  type FlowFilter,
  type FlowSpec,
  type FlowStats,
  decodeFlowMod,
  encodeFlowMod,
  formatFlow,
  parseFlow,
  validatePrerequisites,
} from './flow.ts';
export { type Bucket, Group, type GroupSpec, type GroupStats, parseGroup } from './group.ts';
export {
  ETH_TYPE,
  IP_PROTO,
  Match,
  MatchDraft,
  type MatchField,
  type MatchOps,
  parseMatch,
  withProtocol,
} from './match.ts';
export {
  type PacketIn,
  type PacketOut,
  type PortDesc,
  type PortStats,
  type TableName,
  type TlvMapping,
} from './messages.ts';
export { Meter, type MeterBand, type MeterSpec, parseMeter } from './meter.ts';
export * from './ops.ts';
export * from './packet.ts';
