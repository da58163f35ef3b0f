/**
 * Typed OpenFlow errors. An OFPT_ERROR from the switch becomes an {@link OpenFlowError} that names
 * the error type and code the way ovs-ofctl does (e.g. OFPBAC_BAD_OUT_GROUP) and carries the
 * request that failed (its message type and, for flows, groups and meters, the canonical text).
 */
import { AntreaError } from '../../util/errors.ts';

export type OpenFlowErrorCode =
  'OPENFLOW_ERROR' | 'OPENFLOW_DISCONNECTED' | 'OPENFLOW_TIMEOUT' | 'OPENFLOW_HANDSHAKE' | 'OPENFLOW_BUNDLE';

/** Error types (OFPET_*), OpenFlow 1.5. */
export const OFPET_NAMES: Readonly<Record<number, string>> = {
  0: 'OFPET_HELLO_FAILED',
  1: 'OFPET_BAD_REQUEST',
  2: 'OFPET_BAD_ACTION',
  3: 'OFPET_BAD_INSTRUCTION',
  4: 'OFPET_BAD_MATCH',
  5: 'OFPET_FLOW_MOD_FAILED',
  6: 'OFPET_GROUP_MOD_FAILED',
  7: 'OFPET_PORT_MOD_FAILED',
  8: 'OFPET_TABLE_MOD_FAILED',
  9: 'OFPET_QUEUE_OP_FAILED',
  10: 'OFPET_SWITCH_CONFIG_FAILED',
  11: 'OFPET_ROLE_REQUEST_FAILED',
  12: 'OFPET_METER_MOD_FAILED',
  13: 'OFPET_TABLE_FEATURES_FAILED',
  14: 'OFPET_BAD_PROPERTY',
  15: 'OFPET_ASYNC_CONFIG_FAILED',
  16: 'OFPET_FLOW_MONITOR_FAILED',
  17: 'OFPET_BUNDLE_FAILED',
  0xffff: 'OFPET_EXPERIMENTER',
};

const CODES: Readonly<Record<number, readonly string[]>> = {
  0: ['OFPHFC_INCOMPATIBLE', 'OFPHFC_EPERM'],
  1: [
    'OFPBRC_BAD_VERSION',
    'OFPBRC_BAD_TYPE',
    'OFPBRC_BAD_STAT',
    'OFPBRC_BAD_VENDOR',
    'OFPBRC_BAD_SUBTYPE',
    'OFPBRC_EPERM',
    'OFPBRC_BAD_LEN',
    'OFPBRC_BUFFER_EMPTY',
    'OFPBRC_BUFFER_UNKNOWN',
    'OFPBRC_BAD_TABLE_ID',
    'OFPBRC_IS_SLAVE',
    'OFPBRC_BAD_PORT',
    'OFPBRC_BAD_PACKET',
    'OFPBRC_MULTIPART_BUFFER_OVERFLOW',
    'OFPBRC_MULTIPART_REQUEST_TIMEOUT',
    'OFPBRC_MULTIPART_REPLY_TIMEOUT',
    'OFPBRC_MULTIPART_BAD_SCHED',
    'OFPBRC_PIPELINE_FIELDS_ONLY',
  ],
  2: [
    'OFPBAC_BAD_TYPE',
    'OFPBAC_BAD_LEN',
    'OFPBAC_BAD_VENDOR',
    'OFPBAC_BAD_VENDOR_TYPE',
    'OFPBAC_BAD_OUT_PORT',
    'OFPBAC_BAD_ARGUMENT',
    'OFPBAC_EPERM',
    'OFPBAC_TOO_MANY',
    'OFPBAC_BAD_QUEUE',
    'OFPBAC_BAD_OUT_GROUP',
    'OFPBAC_MATCH_INCONSISTENT',
    'OFPBAC_UNSUPPORTED_ORDER',
    'OFPBAC_BAD_TAG',
    'OFPBAC_BAD_SET_TYPE',
    'OFPBAC_BAD_SET_LEN',
    'OFPBAC_BAD_SET_ARGUMENT',
    'OFPBAC_BAD_SET_MASK',
  ],
  3: [
    'OFPBIC_UNKNOWN_INST',
    'OFPBIC_UNSUP_INST',
    'OFPBIC_BAD_TABLE_ID',
    'OFPBIC_UNSUP_METADATA',
    'OFPBIC_UNSUP_METADATA_MASK',
    'OFPBIC_BAD_EXPERIMENTER',
    'OFPBIC_BAD_EXP_TYPE',
    'OFPBIC_BAD_LEN',
    'OFPBIC_EPERM',
    'OFPBIC_DUP_INST',
  ],
  4: [
    'OFPBMC_BAD_TYPE',
    'OFPBMC_BAD_LEN',
    'OFPBMC_BAD_TAG',
    'OFPBMC_BAD_DL_ADDR_MASK',
    'OFPBMC_BAD_NW_ADDR_MASK',
    'OFPBMC_BAD_WILDCARDS',
    'OFPBMC_BAD_FIELD',
    'OFPBMC_BAD_VALUE',
    'OFPBMC_BAD_MASK',
    'OFPBMC_BAD_PREREQ',
    'OFPBMC_DUP_FIELD',
    'OFPBMC_EPERM',
  ],
  5: [
    'OFPFMFC_UNKNOWN',
    'OFPFMFC_TABLE_FULL',
    'OFPFMFC_BAD_TABLE_ID',
    'OFPFMFC_OVERLAP',
    'OFPFMFC_EPERM',
    'OFPFMFC_BAD_TIMEOUT',
    'OFPFMFC_BAD_COMMAND',
    'OFPFMFC_BAD_FLAGS',
  ],
  6: [
    'OFPGMFC_GROUP_EXISTS',
    'OFPGMFC_INVALID_GROUP',
    'OFPGMFC_WEIGHT_UNSUPPORTED',
    'OFPGMFC_OUT_OF_GROUPS',
    'OFPGMFC_OUT_OF_BUCKETS',
    'OFPGMFC_CHAINING_UNSUPPORTED',
    'OFPGMFC_WATCH_UNSUPPORTED',
    'OFPGMFC_LOOP',
    'OFPGMFC_UNKNOWN_GROUP',
    'OFPGMFC_CHAINED_GROUP',
    'OFPGMFC_BAD_TYPE',
    'OFPGMFC_BAD_COMMAND',
    'OFPGMFC_BAD_BUCKET',
    'OFPGMFC_BAD_WATCH',
    'OFPGMFC_EPERM',
    'OFPGMFC_UNKNOWN_BUCKET',
    'OFPGMFC_BUCKET_EXISTS',
  ],
  7: ['OFPPMFC_BAD_PORT', 'OFPPMFC_BAD_HW_ADDR', 'OFPPMFC_BAD_CONFIG', 'OFPPMFC_BAD_ADVERTISE', 'OFPPMFC_EPERM'],
  8: ['OFPTMFC_BAD_TABLE', 'OFPTMFC_BAD_CONFIG', 'OFPTMFC_EPERM'],
  9: ['OFPQOFC_BAD_PORT', 'OFPQOFC_BAD_QUEUE', 'OFPQOFC_EPERM'],
  10: ['OFPSCFC_BAD_FLAGS', 'OFPSCFC_BAD_LEN', 'OFPSCFC_EPERM'],
  11: ['OFPRRFC_STALE', 'OFPRRFC_UNSUP', 'OFPRRFC_BAD_ROLE'],
  12: [
    'OFPMMFC_UNKNOWN',
    'OFPMMFC_METER_EXISTS',
    'OFPMMFC_INVALID_METER',
    'OFPMMFC_UNKNOWN_METER',
    'OFPMMFC_BAD_COMMAND',
    'OFPMMFC_BAD_FLAGS',
    'OFPMMFC_BAD_RATE',
    'OFPMMFC_BAD_BURST',
    'OFPMMFC_BAD_BAND',
    'OFPMMFC_BAD_BAND_VALUE',
    'OFPMMFC_OUT_OF_METERS',
    'OFPMMFC_OUT_OF_BANDS',
  ],
  13: ['OFPTFFC_BAD_TABLE', 'OFPTFFC_BAD_METADATA', '', '', '', 'OFPTFFC_EPERM'],
  14: [
    'OFPBPC_BAD_TYPE',
    'OFPBPC_BAD_LEN',
    'OFPBPC_BAD_VALUE',
    'OFPBPC_TOO_MANY',
    'OFPBPC_DUP_TYPE',
    'OFPBPC_BAD_EXPERIMENTER',
    'OFPBPC_BAD_EXP_TYPE',
    'OFPBPC_BAD_EXP_VALUE',
    'OFPBPC_EPERM',
  ],
  15: ['OFPACFC_INVALID', 'OFPACFC_UNSUPPORTED', 'OFPACFC_EPERM'],
  16: [
    'OFPMOFC_UNKNOWN',
    'OFPMOFC_MONITOR_EXISTS',
    'OFPMOFC_INVALID_MONITOR',
    'OFPMOFC_UNKNOWN_MONITOR',
    'OFPMOFC_BAD_COMMAND',
    'OFPMOFC_BAD_FLAGS',
    'OFPMOFC_BAD_TABLE_ID',
    'OFPMOFC_BAD_OUT',
  ],
  17: [
    'OFPBFC_UNKNOWN',
    'OFPBFC_EPERM',
    'OFPBFC_BAD_ID',
    'OFPBFC_BUNDLE_EXIST',
    'OFPBFC_BUNDLE_CLOSED',
    'OFPBFC_OUT_OF_BUNDLES',
    'OFPBFC_BAD_TYPE',
    'OFPBFC_BAD_FLAGS',
    'OFPBFC_MSG_BAD_LEN',
    'OFPBFC_MSG_BAD_XID',
    'OFPBFC_MSG_UNSUP',
    'OFPBFC_MSG_CONFLICT',
    'OFPBFC_MSG_TOO_MANY',
    'OFPBFC_MSG_FAILED',
    'OFPBFC_TIMEOUT',
    'OFPBFC_BUNDLE_IN_PROGRESS',
  ],
};

/** Nicira extension errors in OpenFlow 1.2+ (experimenter 0x2320, exp_code). */
const NX_CODES: Readonly<Record<number, string>> = {
  2: 'NXBRC_NXM_INVALID',
  3: 'NXBRC_NXM_BAD_TYPE',
  4: 'NXBRC_MUST_BE_ZERO',
  5: 'NXBRC_BAD_REASON',
  9: 'NXBRC_FM_BAD_EVENT',
  10: 'NXBRC_UNENCODABLE_ERROR',
  11: 'NXBAC_MUST_BE_ZERO',
  12: 'NXFMFC_HARDWARE',
  13: 'NXFMFC_BAD_TABLE_ID',
  15: 'NXBAC_BAD_CONJUNCTION',
  16: 'NXTTMFC_BAD_COMMAND',
  17: 'NXTTMFC_BAD_OPT_LEN',
  18: 'NXTTMFC_BAD_FIELD_IDX',
  19: 'NXTTMFC_TABLE_FULL',
  20: 'NXTTMFC_ALREADY_MAPPED',
  21: 'NXTTMFC_DUP_ENTRY',
  22: 'OFPBFC_BAD_VERSION',
  23: 'NXQOFC_QUEUE_ERROR',
  34: 'NXR_NOT_SUPPORTED',
  35: 'NXR_STALE',
  36: 'NXST_NOT_CONFIGURED',
  37: 'NXFMFC_INVALID_TLV_FIELD',
  38: 'NXTTMFC_INVALID_TLV_DEL',
  39: 'NXBAC_BAD_HEADER_TYPE',
  40: 'NXBAC_UNKNOWN_ED_PROP',
  41: 'NXBAC_BAD_ED_PROP',
  42: 'NXBAC_CT_DATAPATH_SUPPORT',
  43: 'NXBMC_CT_DATAPATH_SUPPORT',
};

/** The OVS name of an error (e.g. "OFPBAC_BAD_OUT_GROUP"), given its wire type/code. */
export function openFlowErrorName(type: number, code: number, experimenter?: number): string {
  if (type === 0xffff) {
    if (experimenter === 0x2320) return NX_CODES[code] ?? `NX_ERROR_${code}`;
    return `EXPERIMENTER_0x${(experimenter ?? 0).toString(16)}_${code}`;
  }
  const name = CODES[type]?.[code];
  return name === undefined || name === '' ? `${OFPET_NAMES[type] ?? `OFPET_${type}`}(${code})` : name;
}

/** What a failing request was, for error messages. */
export interface FailedRequest {
  /** Message type name, e.g. "OFPT_FLOW_MOD". */
  readonly message: string;
  readonly xid: number;
  /** Canonical text of the flow, group or meter, when known. */
  readonly text?: string;
  /** For a request inside a bundle: its position (0-based) in the bundle. */
  readonly index?: number;
}

export interface OpenFlowErrorInfo {
  readonly type: number;
  readonly code: number;
  readonly experimenter?: number;
  readonly typeName: string;
  readonly codeName: string;
  readonly request?: FailedRequest;
}

/** An OFPT_ERROR reply, or a local failure of the OpenFlow connection. */
export class OpenFlowError extends AntreaError<OpenFlowErrorCode> {
  readonly info: OpenFlowErrorInfo | undefined;

  constructor(code: OpenFlowErrorCode, message: string, info?: OpenFlowErrorInfo, cause?: unknown) {
    super(code, message, { cause, details: info === undefined ? {} : { ...info } });
    this.info = info;
  }

  /** The switch's error name, e.g. "OFPBAC_BAD_OUT_GROUP" (undefined for local failures). */
  get errorName(): string | undefined {
    return this.info?.codeName;
  }

  /** Builds the error for an OFPT_ERROR received in reply to `request`. */
  static fromSwitch(
    type: number,
    code: number,
    experimenter: number | undefined,
    request?: FailedRequest,
  ): OpenFlowError {
    const codeName = openFlowErrorName(type, code, experimenter);
    const typeName = OFPET_NAMES[type] ?? `OFPET_${type}`;
    let what = request === undefined ? 'request' : request.message;
    if (request?.index !== undefined) what += ` #${request.index} in bundle`;
    const text = request?.text === undefined ? '' : `: ${request.text}`;
    const info: OpenFlowErrorInfo = {
      type,
      code,
      typeName,
      codeName,
      ...(experimenter === undefined ? {} : { experimenter }),
      ...(request === undefined ? {} : { request }),
    };
    return new OpenFlowError('OPENFLOW_ERROR', `${codeName} for ${what}${text}`, info);
  }
}

export function isOpenFlowError(err: unknown, name?: string): err is OpenFlowError {
  return err instanceof OpenFlowError && (name === undefined || err.errorName === name);
}
