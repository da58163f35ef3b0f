/**
 * OpenFlow 1.5 and Nicira extension constants (OpenFlow 1.5.1 spec; OVS nicira-ext.h).
 */
import { ValidationError } from '../../util/errors.ts';

export const OFP_VERSION_15 = 0x06;
/** Nicira vendor/experimenter id. */
export const NX_VENDOR_ID = 0x00002320;
/** Netronome (NTR) experimenter id, used by the group selection-method property. */
export const NTR_VENDOR_ID = 0x0000154d;

export const OFPT = {
  HELLO: 0,
  ERROR: 1,
  ECHO_REQUEST: 2,
  ECHO_REPLY: 3,
  EXPERIMENTER: 4,
  FEATURES_REQUEST: 5,
  FEATURES_REPLY: 6,
  GET_CONFIG_REQUEST: 7,
  GET_CONFIG_REPLY: 8,
  SET_CONFIG: 9,
  PACKET_IN: 10,
  FLOW_REMOVED: 11,
  PORT_STATUS: 12,
  PACKET_OUT: 13,
  FLOW_MOD: 14,
  GROUP_MOD: 15,
  PORT_MOD: 16,
  TABLE_MOD: 17,
  MULTIPART_REQUEST: 18,
  MULTIPART_REPLY: 19,
  BARRIER_REQUEST: 20,
  BARRIER_REPLY: 21,
  ROLE_REQUEST: 24,
  ROLE_REPLY: 25,
  GET_ASYNC_REQUEST: 26,
  GET_ASYNC_REPLY: 27,
  SET_ASYNC: 28,
  METER_MOD: 29,
  ROLE_STATUS: 30,
  TABLE_STATUS: 31,
  REQUESTFORWARD: 32,
  BUNDLE_CONTROL: 33,
  BUNDLE_ADD_MESSAGE: 34,
  CONTROLLER_STATUS: 35,
} as const;

export const OFPT_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(OFPT).map(([k, v]) => [v, `OFPT_${k}`]),
);

/** Nicira experimenter message subtypes (NXT_*). */
export const NXT = {
  SET_PACKET_IN_FORMAT: 16,
  TLV_TABLE_MOD: 24,
  TLV_TABLE_REQUEST: 25,
  TLV_TABLE_REPLY: 26,
  RESUME: 28,
  PACKET_IN2: 30,
} as const;

export const NXPIF = { STANDARD: 0, NXT_PACKET_IN: 1, NXT_PACKET_IN2: 2 } as const;

export const OFPMP = {
  DESC: 0,
  FLOW_DESC: 1,
  AGGREGATE_STATS: 2,
  TABLE_STATS: 3,
  PORT_STATS: 4,
  QUEUE_STATS: 5,
  GROUP_STATS: 6,
  GROUP_DESC: 7,
  GROUP_FEATURES: 8,
  METER_STATS: 9,
  METER_DESC: 10,
  METER_FEATURES: 11,
  TABLE_FEATURES: 12,
  PORT_DESC: 13,
  TABLE_DESC: 14,
  QUEUE_DESC: 15,
  FLOW_MONITOR: 16,
  FLOW_STATS: 17,
} as const;

export const OFPFC = { ADD: 0, MODIFY: 1, MODIFY_STRICT: 2, DELETE: 3, DELETE_STRICT: 4 } as const;
export type FlowModCommand = 'add' | 'modify' | 'modify_strict' | 'delete' | 'delete_strict';
export const FLOW_MOD_COMMANDS: Readonly<Record<FlowModCommand, number>> = {
  add: OFPFC.ADD,
  modify: OFPFC.MODIFY,
  modify_strict: OFPFC.MODIFY_STRICT,
  delete: OFPFC.DELETE,
  delete_strict: OFPFC.DELETE_STRICT,
};

/** Flow-mod flags, in the order ovs-ofctl prints them. */
export const OFPFF = {
  send_flow_rem: 1,
  check_overlap: 2,
  reset_counts: 4,
  no_packet_counts: 8,
  no_byte_counts: 16,
} as const;
export type FlowFlag = keyof typeof OFPFF;

export const OFPIT = {
  GOTO_TABLE: 1,
  WRITE_METADATA: 2,
  WRITE_ACTIONS: 3,
  APPLY_ACTIONS: 4,
  CLEAR_ACTIONS: 5,
  METER: 6,
  STAT_TRIGGER: 7,
} as const;

export const OFPAT = {
  OUTPUT: 0,
  PUSH_VLAN: 17,
  POP_VLAN: 18,
  GROUP: 22,
  SET_NW_TTL: 23,
  DEC_NW_TTL: 24,
  SET_FIELD: 25,
  COPY_FIELD: 28,
  METER: 29,
  EXPERIMENTER: 0xffff,
} as const;

export const NXAST = {
  RESUBMIT: 1,
  NOTE: 8,
  RESUBMIT_TABLE: 14,
  OUTPUT_REG: 15,
  LEARN: 16,
  EXIT: 17,
  CONTROLLER: 20,
  OUTPUT_REG2: 32,
  CONJUNCTION: 34,
  CT: 35,
  NAT: 36,
  CONTROLLER2: 37,
  CLONE: 42,
  CT_CLEAR: 43,
  RESUBMIT_TABLE_CT: 44,
  LEARN2: 45,
} as const;

export const OFPGC = { ADD: 0, MODIFY: 1, DELETE: 2, INSERT_BUCKET: 3, REMOVE_BUCKET: 5 } as const;
export const OFPGT = { ALL: 0, SELECT: 1, INDIRECT: 2, FF: 3 } as const;
export type GroupType = 'all' | 'select' | 'indirect' | 'ff';
export const GROUP_TYPES: Readonly<Record<GroupType, number>> = { all: 0, select: 1, indirect: 2, ff: 3 };
export const OFPG_ALL = 0xfffffffc;
export const OFPG_ANY = 0xffffffff;
export const OFPG15_BUCKET_FIRST = 0xfffffffd;
export const OFPG15_BUCKET_LAST = 0xfffffffe;
export const OFPG15_BUCKET_ALL = 0xffffffff;

export const OFPMC = { ADD: 0, MODIFY: 1, DELETE: 2 } as const;
export const OFPMF = { KBPS: 1, PKTPS: 2, BURST: 4, STATS: 8 } as const;
export const OFPMBT = { DROP: 1, DSCP_REMARK: 2 } as const;
export const OFPM_ALL = 0xffffffff;

export const OFPBCT = {
  OPEN_REQUEST: 0,
  OPEN_REPLY: 1,
  CLOSE_REQUEST: 2,
  CLOSE_REPLY: 3,
  COMMIT_REQUEST: 4,
  COMMIT_REPLY: 5,
  DISCARD_REQUEST: 6,
  DISCARD_REPLY: 7,
} as const;
export const OFPBF = { ATOMIC: 1, ORDERED: 2 } as const;

export const OFPTT_ALL = 0xff;
export const OFP_NO_BUFFER = 0xffffffff;
export const OFP_DEFAULT_PRIORITY = 0x8000;
export const NX_CT_RECIRC_NONE = 0xff;

/** Reserved OpenFlow 1.1+ port numbers. */
export const OFPP = {
  MAX: 0xffffff00,
  IN_PORT: 0xfffffff8,
  TABLE: 0xfffffff9,
  NORMAL: 0xfffffffa,
  FLOOD: 0xfffffffb,
  ALL: 0xfffffffc,
  CONTROLLER: 0xfffffffd,
  LOCAL: 0xfffffffe,
  ANY: 0xffffffff,
} as const;

const PORT_NAMES: Readonly<Record<number, string>> = {
  [OFPP.IN_PORT]: 'IN_PORT',
  [OFPP.TABLE]: 'TABLE',
  [OFPP.NORMAL]: 'NORMAL',
  [OFPP.FLOOD]: 'FLOOD',
  [OFPP.ALL]: 'ALL',
  [OFPP.CONTROLLER]: 'CONTROLLER',
  [OFPP.LOCAL]: 'LOCAL',
  [OFPP.ANY]: 'ANY',
};

/** The 32-bit (OpenFlow 1.1+) form of a 16-bit OVS port number. */
export function port16to32(p: number): number {
  return p >= 0xff00 ? (p + 0xffff0000) >>> 0 : p;
}
/** The 16-bit OVS form of a 32-bit port number. */
export function port32to16(p: number): number {
  return p >= OFPP.MAX ? p - 0xffff0000 : p;
}

/** Formats a port as ovs-ofctl does: reserved ports by name, others in decimal. */
export function formatPort(p: number): string {
  return PORT_NAMES[p] ?? String(p);
}

/** Parses a port number or reserved name (case-insensitive; "NONE" is "ANY"). */
export function parsePort(s: string, what = 'port'): number {
  const t = s.trim().toUpperCase();
  if (t === 'NONE') return OFPP.ANY;
  for (const [num, name] of Object.entries(PORT_NAMES)) if (name === t) return Number(num);
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    if (n < OFPP.MAX) return n;
  }
  throw new ValidationError(what, `"${s}" is not a port number or reserved port name`);
}

/** Packet-in reasons (ovs-ofctl names). */
export const PACKET_IN_REASONS = ['no_match', 'action', 'invalid_ttl', 'action_set', 'group', 'packet_out'] as const;
export type PacketInReason = (typeof PACKET_IN_REASONS)[number];
