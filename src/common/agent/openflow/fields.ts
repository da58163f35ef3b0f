/**
 * Register, ct_mark and ct_label bit fields shared by the pipeline (facts §1.3, §1.4): a field is a
 * bit range of a register (or ct_mark/ct_label), a mark is a value of a field. Flow builders match
 * and load them; conntrack exec() loads ct marks and labels.
 */
import { ValidationError } from '../../util/errors.ts';
import { type Action, setField, move as moveAction } from '../../ovs/openflow/actions.ts';
import { type Subfield, field as ofField, subfield } from '../../ovs/openflow/fields.ts';
import { ones } from '../../ovs/openflow/bytes.ts';

/** A bit range [start, end] (inclusive) of reg0..reg15, ct_mark, ct_label (128) or xxreg0..3 (128). */
export class BitField {
  readonly name: string;
  /** OVS field name: "reg4", "ct_mark", "ct_label", "xxreg3". */
  readonly target: string;
  readonly start: number;
  readonly end: number;
  readonly width: number;

  constructor(target: string, start: number, end: number, name: string) {
    const def = ofField(target, 'target');
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end >= def.bits) {
      throw new ValidationError('range', `[${start}..${end}] does not fit ${target}`);
    }
    this.name = name;
    this.target = target;
    this.start = start;
    this.end = end;
    this.width = end - start + 1;
  }

  get bits(): number {
    return this.width;
  }

  /** The mask of the field's bits within the whole register. */
  get mask(): bigint {
    return ones(this.width) << BigInt(this.start);
  }

  /** `value` shifted into place (checked against the width). */
  shifted(value: number | bigint): bigint {
    const v = BigInt(value);
    if (v < 0n || v > ones(this.width))
      throw new ValidationError(this.name, `value ${value} does not fit ${this.width} bits`);
    return v << BigInt(this.start);
  }

  /** The subfield, e.g. NXM_NX_REG4[0..15], for move/learn/output. */
  get subfield(): Subfield {
    return subfield(this.target, this.start, this.width, this.name);
  }

  /** set_field of `value` into the field (other bits untouched). */
  load(value: number | bigint): Action {
    return setField(ofField(this.target), this.shifted(value), this.mask);
  }

  /** Copies `src` into this field. */
  moveFrom(src: BitField | Subfield): Action {
    return moveAction(src instanceof BitField ? src.subfield : src, this.subfield);
  }

  mark(value: number | bigint, name: string): Mark {
    return new Mark(this, BigInt(value), name);
  }
}

/** A value of a {@link BitField}. */
export class Mark {
  readonly field: BitField;
  readonly value: bigint;
  readonly name: string;

  constructor(f: BitField, value: bigint, name: string) {
    f.shifted(value);
    this.field = f;
    this.value = value;
    this.name = name;
  }

  load(): Action {
    return this.field.load(this.value);
  }
}

const reg = (n: number, start: number, end: number, name: string): BitField =>
  new BitField(`reg${n}`, start, end, name);

// ---- reg0 ----------------------------------------------------------------------------------------
export const PktSourceField = reg(0, 0, 3, 'PktSourceField');
export const FromTunnelRegMark = PktSourceField.mark(1, 'FromTunnelRegMark');
export const FromGatewayRegMark = PktSourceField.mark(2, 'FromGatewayRegMark');
export const FromPodRegMark = PktSourceField.mark(3, 'FromPodRegMark');
export const FromUplinkRegMark = PktSourceField.mark(4, 'FromUplinkRegMark');
export const FromBridgeRegMark = PktSourceField.mark(5, 'FromBridgeRegMark');
export const FromTCReturnRegMark = PktSourceField.mark(6, 'FromTCReturnRegMark');
export const FromL7NPReturnRegMark = PktSourceField.mark(7, 'FromL7NPReturnRegMark');
export const PktDestinationField = reg(0, 4, 7, 'PktDestinationField');
export const ToTunnelRegMark = PktDestinationField.mark(1, 'ToTunnelRegMark');
export const ToGatewayRegMark = PktDestinationField.mark(2, 'ToGatewayRegMark');
export const ToUplinkRegMark = PktDestinationField.mark(4, 'ToUplinkRegMark');
export const RewriteMACField = reg(0, 9, 9, 'RewriteMACField');
export const RewriteMACRegMark = RewriteMACField.mark(1, 'RewriteMACRegMark');
export const NotRewriteMACRegMark = RewriteMACField.mark(0, 'NotRewriteMACRegMark');
export const APDenyRegMark = reg(0, 10, 10, 'APDenyField').mark(1, 'APDenyRegMark');
export const APDispositionField = reg(0, 11, 12, 'APDispositionField');
export const GeneratedRejectPacketOutRegMark = reg(0, 13, 13, 'GeneratedRejectPacketOutField').mark(
  1,
  'GeneratedRejectPacketOutRegMark',
);
export const SvcNoEpRegMark = reg(0, 14, 14, 'SvcNoEpField').mark(1, 'SvcNoEpRegMark');
export const RemoteSNATRegMark = reg(0, 19, 19, 'RemoteSNATField').mark(1, 'RemoteSNATRegMark');
export const L7NPRegField = reg(0, 20, 20, 'L7NPRegField');
export const L7NPRedirectRegMark = L7NPRegField.mark(1, 'L7NPRedirectRegMark');
export const OutputRegField = reg(0, 21, 22, 'OutputRegField');
export const OutputToOFPortRegMark = OutputRegField.mark(1, 'OutputToOFPortRegMark');
export const OutputToControllerRegMark = OutputRegField.mark(2, 'OutputToControllerRegMark');
export const CtStateRestoredField = reg(0, 23, 23, 'CtStateRestoredField');
export const PacketInOperationField = reg(0, 25, 31, 'PacketInOperationField');

// ---- reg1..reg9 ----------------------------------------------------------------------------------
export const TargetOFPortField = reg(1, 0, 31, 'TargetOFPortField');
export const SwapField = reg(2, 0, 31, 'SwapField');
export const PacketInTableField = reg(2, 0, 7, 'PacketInTableField');
export const EndpointIPField = reg(3, 0, 31, 'EndpointIPField');
export const APConjIDField = reg(3, 0, 31, 'APConjIDField');
export const EndpointPortField = reg(4, 0, 15, 'EndpointPortField');
export const ServiceEPStateField = reg(4, 16, 18, 'ServiceEPStateField');
export const EpToSelectRegMark = ServiceEPStateField.mark(0b001, 'EpToSelectRegMark');
export const EpSelectedRegMark = ServiceEPStateField.mark(0b010, 'EpSelectedRegMark');
export const EpToLearnRegMark = ServiceEPStateField.mark(0b011, 'EpToLearnRegMark');
export const EpUnionField = reg(4, 0, 18, 'EpUnionField');
export const ToNodePortAddressRegMark = reg(4, 19, 19, 'ToNodePortAddressField').mark(1, 'ToNodePortAddressRegMark');
export const AntreaFlexibleIPAMField = reg(4, 20, 20, 'AntreaFlexibleIPAMField');
export const AntreaFlexibleIPAMRegMark = AntreaFlexibleIPAMField.mark(1, 'AntreaFlexibleIPAMRegMark');
export const NotAntreaFlexibleIPAMRegMark = AntreaFlexibleIPAMField.mark(0, 'NotAntreaFlexibleIPAMRegMark');
export const ToExternalAddressRegMark = reg(4, 21, 21, 'ToExternalAddressField').mark(1, 'ToExternalAddressRegMark');
export const TrafficControlActionField = reg(4, 22, 23, 'TrafficControlActionField');
export const NestedServiceRegMark = reg(4, 24, 24, 'NestedServiceField').mark(1, 'NestedServiceRegMark');
export const DSRServiceField = reg(4, 25, 25, 'DSRServiceField');
export const RemoteEndpointRegMark = reg(4, 26, 26, 'RemoteEndpointField').mark(1, 'RemoteEndpointRegMark');
export const FromExternalRegMark = reg(4, 27, 27, 'FromExternalField').mark(1, 'FromExternalRegMark');
export const FromLocalRegMark = reg(4, 28, 28, 'FromLocalField').mark(1, 'FromLocalRegMark');
export const TFEgressConjIDField = reg(5, 0, 31, 'TFEgressConjIDField');
export const TFIngressConjIDField = reg(6, 0, 31, 'TFIngressConjIDField');
export const ServiceGroupIDField = reg(7, 0, 31, 'ServiceGroupIDField');
export const VLANIDField = reg(8, 0, 11, 'VLANIDField');
export const CtZoneTypeField = reg(8, 12, 15, 'CtZoneTypeField');
export const CtZoneField = reg(8, 0, 15, 'CtZoneField');
export const TrafficControlTargetOFPortField = reg(9, 0, 31, 'TrafficControlTargetOFPortField');
export const EndpointIP6Field = new BitField('xxreg3', 0, 127, 'EndpointIP6Field');

// ---- ct_mark / ct_label --------------------------------------------------------------------------
export const ConnSourceCTMarkField = new BitField('ct_mark', 0, 3, 'ConnSourceCTMarkField');
export const FromTunnelCTMark = ConnSourceCTMarkField.mark(1, 'FromTunnelCTMark');
export const FromGatewayCTMark = ConnSourceCTMarkField.mark(2, 'FromGatewayCTMark');
export const FromBridgeCTMark = ConnSourceCTMarkField.mark(5, 'FromBridgeCTMark');
export const ServiceCTMarkField = new BitField('ct_mark', 4, 4, 'ServiceCTMarkField');
export const ServiceCTMark = ServiceCTMarkField.mark(1, 'ServiceCTMark');
export const NotServiceCTMark = ServiceCTMarkField.mark(0, 'NotServiceCTMark');
export const ConnSNATCTMarkField = new BitField('ct_mark', 5, 5, 'ConnSNATCTMarkField');
export const ConnSNATCTMark = ConnSNATCTMarkField.mark(1, 'ConnSNATCTMark');
export const NotConnSNATCTMark = ConnSNATCTMarkField.mark(0, 'NotConnSNATCTMark');
export const HairpinCTMark = new BitField('ct_mark', 6, 6, 'HairpinCTMarkField').mark(1, 'HairpinCTMark');
export const L7NPRedirectCTMark = new BitField('ct_mark', 7, 7, 'L7NPRedirectCTMarkField').mark(
  1,
  'L7NPRedirectCTMark',
);
export const IngressRuleCTLabel = new BitField('ct_label', 0, 31, 'IngressRuleCTLabel');
export const EgressRuleCTLabel = new BitField('ct_label', 32, 63, 'EgressRuleCTLabel');
export const L7NPRuleVlanIDCTLabel = new BitField('ct_label', 64, 75, 'L7NPRuleVlanIDCTLabel');

/** Conntrack zones (facts §1.4). */
export const CT_ZONE = { CtZone: 0xfff0, SNATCtZone: 0xfff1, CtZoneV6: 0xffe6, SNATCtZoneV6: 0xffe7 } as const;
/** Flow priorities (facts §1.1). */
export const PRIORITY = {
  high: 210,
  normal: 200,
  low: 190,
  miss: 0,
  topAntreaPolicy: 64990,
  dnsIntercept: 64991,
} as const;
