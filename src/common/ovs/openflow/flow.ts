/**
 * OpenFlow flows: an immutable {@link Flow} (table, priority, cookie, match, actions, timeouts,
 * flags), its canonical text (what `ovs-ofctl -O OpenFlow15 --no-stats dump-flows` prints for it,
 * without the leading space) and its OFPT_FLOW_MOD encoding.
 */
import { ValidationError } from '../../util/errors.ts';
import { ByteReader, ByteWriter, ones, parseUint } from './bytes.ts';
import {
  type Action,
  decodeInstructions,
  encodeInstructions,
  formatActions,
  parseActions,
  splitTopLevel,
} from './actions.ts';
import {
  FLOW_MOD_COMMANDS,
  type FlowFlag,
  type FlowModCommand,
  OFP_DEFAULT_PRIORITY,
  OFP_NO_BUFFER,
  OFP_VERSION_15,
  OFPFF,
  OFPG_ANY,
  OFPP,
  OFPT,
  OFPTT_ALL,
} from './consts.ts';
import { ETH_TYPE, IP_PROTO, Match, applyMatchItem, decodeMatch, encodeMatch } from './match.ts';

export interface FlowSpec {
  readonly table?: number;
  readonly priority?: number;
  readonly cookie?: bigint;
  readonly match?: Match;
  readonly actions?: readonly Action[];
  readonly idleTimeout?: number;
  readonly hardTimeout?: number;
  readonly flags?: readonly FlowFlag[];
  readonly importance?: number;
}

const FLAG_ORDER = Object.keys(OFPFF) as FlowFlag[];

function u(n: number, bits: number, field: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 2 ** bits - 1)
    throw new ValidationError(field, `${n} is not a ${bits}-bit unsigned integer`);
  return n;
}

/** An immutable flow entry. Its identity in a table is (table, priority, match): see {@link Flow.key}. */
export class Flow {
  readonly table: number;
  readonly priority: number;
  readonly cookie: bigint;
  readonly match: Match;
  readonly actions: readonly Action[];
  readonly idleTimeout: number;
  readonly hardTimeout: number;
  readonly flags: number;
  readonly importance: number;
  private text: string | undefined;

  constructor(spec: FlowSpec) {
    this.table = u(spec.table ?? 0, 8, 'table');
    if (this.table === OFPTT_ALL) throw new ValidationError('table', 'table 255 is not a flow table');
    this.priority = u(spec.priority ?? OFP_DEFAULT_PRIORITY, 16, 'priority');
    const cookie = spec.cookie ?? 0n;
    if (cookie < 0n || cookie > ones(64))
      throw new ValidationError('cookie', 'cookie must be a 64-bit unsigned integer');
    this.cookie = cookie;
    this.match = spec.match ?? Match.EMPTY;
    this.actions = spec.actions ?? [];
    this.idleTimeout = u(spec.idleTimeout ?? 0, 16, 'idleTimeout');
    this.hardTimeout = u(spec.hardTimeout ?? 0, 16, 'hardTimeout');
    let flags = 0;
    for (const f of spec.flags ?? []) flags |= OFPFF[f];
    this.flags = flags;
    this.importance = u(spec.importance ?? 0, 16, 'importance');
    validateActionOrder(this.actions);
    validatePrerequisites(this.match);
    for (const a of this.actions) {
      if (a.type === 'goto_table' && a.table <= this.table) {
        throw new ValidationError('actions', `goto_table:${a.table} must go forward from table ${this.table}`);
      }
    }
  }

  /** Identity of the flow in the switch: table, priority and match. */
  get key(): string {
    return `${this.table}/${this.priority}/${this.match.toString()}`;
  }

  /** A copy with some properties replaced. */
  with(spec: FlowSpec): Flow {
    return new Flow({
      table: spec.table ?? this.table,
      priority: spec.priority ?? this.priority,
      cookie: spec.cookie ?? this.cookie,
      match: spec.match ?? this.match,
      actions: spec.actions ?? this.actions,
      idleTimeout: spec.idleTimeout ?? this.idleTimeout,
      hardTimeout: spec.hardTimeout ?? this.hardTimeout,
      flags: spec.flags ?? FLAG_ORDER.filter((f) => (this.flags & OFPFF[f]) !== 0),
      importance: spec.importance ?? this.importance,
    });
  }

  /** Canonical text, as `ovs-ofctl -O OpenFlow15 --no-stats dump-flows` prints it (no leading space). */
  toString(): string {
    this.text ??= formatFlow(this);
    return this.text;
  }

  /** The OFPT_FLOW_MOD for this flow with the given command (xid 0; callers patch it). */
  flowMod(command: FlowModCommand = 'add'): Uint8Array {
    return encodeFlowMod(0, command, this);
  }

  equals(other: Flow): boolean {
    return this.toString() === other.toString();
  }
}

function validateActionOrder(actions: readonly Action[]): void {
  actions.forEach((a, i) => {
    if (a.type === 'goto_table' && i !== actions.length - 1) {
      throw new ValidationError('actions', 'goto_table must be the last action');
    }
    if (a.type === 'meter' && i !== 0) throw new ValidationError('actions', 'meter must be the first action');
    if (a.type === 'conjunction' && actions.some((b) => b.type !== 'conjunction' && b.type !== 'note')) {
      throw new ValidationError('actions', 'conjunction may only be combined with other conjunction or note actions');
    }
  });
}

/** Rejects matches whose fields lack their protocol prerequisites (OVS would answer OFPBMC_BAD_PREREQ). */
export function validatePrerequisites(m: Match): void {
  const dl = m.exact('dl_type');
  const proto = m.exact('nw_proto');
  const ip = dl === BigInt(ETH_TYPE.IP);
  const ip6 = dl === BigInt(ETH_TYPE.IPV6);
  const arp = dl === BigInt(ETH_TYPE.ARP) || dl === BigInt(ETH_TYPE.RARP);
  const need = (key: string, ok: boolean, what: string): void => {
    if (m.has(key) && !ok) throw new ValidationError(key, `matching ${key} needs ${what}`);
  };
  need('nw_proto', ip || ip6 || arp, 'ip, ipv6 or arp');
  need('nw_src', ip || arp, 'ip or arp');
  need('nw_dst', ip || arp, 'ip or arp');
  need('ipv6_src', ip6, 'ipv6');
  need('ipv6_dst', ip6, 'ipv6');
  need('ipv6_label', ip6, 'ipv6');
  need('nw_tos', ip || ip6, 'ip or ipv6');
  need('nw_ecn', ip || ip6, 'ip or ipv6');
  need('nw_ttl', ip || ip6, 'ip or ipv6');
  need('nw_frag', ip || ip6, 'ip or ipv6');
  const l4 =
    (ip || ip6) &&
    (proto === BigInt(IP_PROTO.TCP) ||
      proto === BigInt(IP_PROTO.UDP) ||
      proto === BigInt(IP_PROTO.SCTP) ||
      (ip && proto === BigInt(IP_PROTO.ICMP)) ||
      (ip && proto === BigInt(IP_PROTO.IGMP)) ||
      (ip6 && proto === BigInt(IP_PROTO.ICMPV6)));
  need('tp_src', l4, 'tcp, udp, sctp, icmp or icmp6');
  need('tp_dst', l4, 'tcp, udp, sctp, icmp or icmp6');
  need('tcp_flags', (ip || ip6) && proto === BigInt(IP_PROTO.TCP), 'tcp or tcp6');
  const icmp6 = ip6 && proto === BigInt(IP_PROTO.ICMPV6);
  need('arp_sha', arp || icmp6, 'arp or icmp6');
  need('arp_tha', arp || icmp6, 'arp or icmp6');
  need('nd_target', icmp6, 'icmp6');
  const cts = m.get('ct_state');
  const ctValid =
    cts !== undefined &&
    ((cts.value & 0xcfn) !== 0n ||
      ((cts.value & 0x20n) !== 0n && (cts.mask & 0x10n) !== 0n && (cts.value & 0x10n) === 0n));
  for (const k of ['ct_nw_src', 'ct_nw_dst', 'ct_ipv6_src', 'ct_ipv6_dst', 'ct_nw_proto', 'ct_tp_src', 'ct_tp_dst']) {
    need(k, ctValid, 'ct_state with +trk (and -inv, or another state flag)');
  }
  need('ct_nw_src', ip, 'ip');
  need('ct_nw_dst', ip, 'ip');
  need('ct_ipv6_src', ip6, 'ipv6');
  need('ct_ipv6_dst', ip6, 'ipv6');
  need('ct_tp_src', m.has('ct_nw_proto'), 'ct_nw_proto');
  need('ct_tp_dst', m.has('ct_nw_proto'), 'ct_nw_proto');
}

/** Renders a flow like `ovs-ofctl --no-stats dump-flows` (OVS ofputil_flow_stats_format). */
export function formatFlow(f: {
  table: number;
  priority: number;
  cookie: bigint;
  match: Match;
  actions: readonly Action[];
  idleTimeout: number;
  hardTimeout: number;
  flags: number;
  importance: number;
}): string {
  let s = '';
  if (f.cookie !== 0n) s += `cookie=0x${f.cookie.toString(16)}, `;
  if (f.table !== 0) s += `table=${f.table}, `;
  if (f.idleTimeout !== 0) s += `idle_timeout=${f.idleTimeout}, `;
  if (f.hardTimeout !== 0) s += `hard_timeout=${f.hardTimeout}, `;
  for (const name of FLAG_ORDER) if ((f.flags & OFPFF[name]) !== 0) s += `${name} `;
  if (f.importance !== 0) s += `importance=${f.importance}, `;
  const match = f.match.toString();
  if (f.priority !== OFP_DEFAULT_PRIORITY)
    s += match === '' ? `priority=${f.priority}` : `priority=${f.priority},${match}`;
  else s += match;
  if (s.length > 0 && !s.endsWith(' ')) s += ' ';
  return `${s}actions=${formatActions(f.actions)}`;
}

const STAT_KEYS = new Set(['duration', 'n_packets', 'n_bytes', 'idle_age', 'hard_age', 'reset_counts']);

/**
 * Parses a flow in ovs-ofctl syntax: the canonical text, `dump-flows` lines with statistics, or
 * `add-flow` input ("table=3,priority=200,ip,nw_src=10.0.0.1,actions=goto_table:4").
 */
export function parseFlow(text: string): Flow {
  const t = text.trim();
  const at = t.search(/(^|[\s,])actions=/);
  if (at < 0) throw new ValidationError('flow', `missing "actions=" in "${text}"`);
  const head = t.slice(0, at);
  const actionsText = t.slice(t.indexOf('actions=', at) + 'actions='.length);
  let table = 0;
  let priority = OFP_DEFAULT_PRIORITY;
  let cookie = 0n;
  let idleTimeout = 0;
  let hardTimeout = 0;
  let importance = 0;
  const flags: FlowFlag[] = [];
  let match = Match.EMPTY;
  for (const raw of head.split(/[\s,]+/)) {
    if (raw === '') continue;
    const eq = raw.indexOf('=');
    const key = eq < 0 ? raw : raw.slice(0, eq);
    const value = eq < 0 ? undefined : raw.slice(eq + 1);
    if (key in OFPFF) {
      flags.push(key as FlowFlag);
      continue;
    }
    if (STAT_KEYS.has(key)) continue;
    switch (key) {
      case 'table':
        table = Number(parseUint(value ?? '', 'table'));
        break;
      case 'priority':
        priority = Number(parseUint(value ?? '', 'priority'));
        break;
      case 'cookie':
        cookie = parseUint((value ?? '').split('/')[0] ?? '', 'cookie');
        break;
      case 'idle_timeout':
        idleTimeout = Number(parseUint(value ?? '', 'idle_timeout'));
        break;
      case 'hard_timeout':
        hardTimeout = Number(parseUint(value ?? '', 'hard_timeout'));
        break;
      case 'importance':
        importance = Number(parseUint(value ?? '', 'importance'));
        break;
      default:
        match = applyMatchItem(match, key, value);
    }
  }
  return new Flow({
    table,
    priority,
    cookie,
    match,
    actions: parseActions(actionsText),
    idleTimeout,
    hardTimeout,
    flags,
    importance,
  });
}

// ---- wire ----------------------------------------------------------------------------------------

/** Selects flows for modify/delete by cookie, table, match and output port/group. */
export interface FlowFilter {
  /** Table, or undefined for all tables. */
  readonly table?: number;
  readonly cookie?: bigint;
  /** Only bits set here are compared (default: all ones when `cookie` is given, else 0). */
  readonly cookieMask?: bigint;
  readonly match?: Match;
  /** Needed for strict deletes. */
  readonly priority?: number;
  readonly outPort?: number;
  readonly outGroup?: number;
}

/** Encodes an OFPT_FLOW_MOD. For delete commands only the match/priority/cookie filter is sent. */
export function encodeFlowMod(
  xid: number,
  command: FlowModCommand,
  f: Flow | FlowFilter,
  opts: { cookieMask?: bigint; outPort?: number; outGroup?: number } = {},
): Uint8Array {
  const w = new ByteWriter(128);
  writeFlowMod(w, xid, command, f, opts);
  return w.finish();
}

/** Writes an OFPT_FLOW_MOD at the writer's current position (no intermediate buffer). */
export function writeFlowMod(
  w: ByteWriter,
  xid: number,
  command: FlowModCommand,
  f: Flow | FlowFilter,
  opts: { cookieMask?: bigint; outPort?: number; outGroup?: number } = {},
): void {
  const start = w.length;
  w.u8(OFP_VERSION_15).u8(OFPT.FLOW_MOD).u16(0).u32(xid);
  const isFlow = f instanceof Flow;
  const cookie = f.cookie ?? 0n;
  const filter = isFlow ? undefined : f;
  const cookieMask = opts.cookieMask ?? filter?.cookieMask ?? (filter?.cookie !== undefined ? ones(64) : 0n);
  w.u64(cookie).u64(command === 'add' ? 0n : cookieMask);
  w.u8(f.table ?? OFPTT_ALL).u8(FLOW_MOD_COMMANDS[command]);
  w.u16(isFlow ? f.idleTimeout : 0).u16(isFlow ? f.hardTimeout : 0);
  w.u16(f.priority ?? OFP_DEFAULT_PRIORITY);
  w.u32(OFP_NO_BUFFER);
  w.u32(opts.outPort ?? filter?.outPort ?? OFPP.ANY).u32(opts.outGroup ?? filter?.outGroup ?? OFPG_ANY);
  w.u16(isFlow ? f.flags : 0).u16(isFlow ? f.importance : 0);
  encodeMatch(f.match ?? Match.EMPTY, w);
  if (isFlow && command !== 'delete' && command !== 'delete_strict') encodeInstructions(w, f.actions);
  w.setU16(start + 2, w.length - start);
}

/** Decodes an OFPT_FLOW_MOD (for tests, tracing and tools): its command and flow. */
export function decodeFlowMod(msg: Uint8Array): { command: FlowModCommand; flow: Flow; cookieMask: bigint } {
  const r = new ByteReader(msg, 8, msg.length);
  const cookie = r.u64();
  const cookieMask = r.u64();
  const table = r.u8();
  const cmd = r.u8();
  const idleTimeout = r.u16();
  const hardTimeout = r.u16();
  const priority = r.u16();
  r.skip(12); // buffer_id, out_port, out_group
  const flagBits = r.u16();
  const importance = r.u16();
  const match = decodeMatch(r);
  const actions = decodeInstructions(r, msg.length);
  const command = (Object.keys(FLOW_MOD_COMMANDS) as FlowModCommand[]).find((c) => FLOW_MOD_COMMANDS[c] === cmd);
  if (command === undefined) throw new ValidationError('command', `unknown flow-mod command ${cmd}`);
  const flags = FLAG_ORDER.filter((name) => (flagBits & OFPFF[name]) !== 0);
  return {
    command,
    cookieMask,
    flow: new Flow({ table, priority, cookie, match, actions, idleTimeout, hardTimeout, flags, importance }),
  };
}

/** A flow entry from a flow-stats reply, with its counters. */
export interface FlowStats {
  readonly flow: Flow;
  readonly durationSec: number;
  readonly durationNsec: number;
  readonly idleAgeSec?: number;
  readonly packetCount: bigint;
  readonly byteCount: bigint;
}

/** Decodes one `ofp_flow_desc` entry (OpenFlow 1.5 OFPMP_FLOW_DESC reply). */
export function decodeFlowDesc(r: ByteReader): FlowStats {
  const start = r.pos;
  const length = r.u16('flow desc length');
  r.skip(2);
  const table = r.u8();
  r.skip(1);
  const priority = r.u16();
  const idleTimeout = r.u16();
  const hardTimeout = r.u16();
  const flagBits = r.u16();
  const importance = r.u16();
  const cookie = r.u64();
  const match = decodeMatch(r);
  // ofp_stats: reserved(2), length(2), OXS TLVs, padded to 8.
  const statsStart = r.pos;
  r.skip(2);
  const statsLen = r.u16('stats length');
  let durationSec = 0;
  let durationNsec = 0;
  let idleAgeSec: number | undefined;
  let packetCount = 0n;
  let byteCount = 0n;
  while (r.pos + 4 <= statsStart + statsLen) {
    const h = r.u32('OXS header');
    const cls = h >>> 16;
    const fieldNo = (h >>> 9) & 0x7f;
    const len = h & 0xff;
    const body = r.sub(len, 'OXS value');
    if (cls !== 0x8002) continue;
    if (fieldNo === 0) {
      durationSec = body.u32();
      durationNsec = body.u32();
    } else if (fieldNo === 1) {
      idleAgeSec = body.u32();
    } else if (fieldNo === 4) packetCount = body.u64();
    else if (fieldNo === 5) byteCount = body.u64();
  }
  r.pos = statsStart + statsLen;
  r.skip((8 - (statsLen % 8)) % 8);
  const actions = decodeInstructions(r, start + length);
  r.pos = start + length;
  const flags = FLAG_ORDER.filter((name) => (flagBits & OFPFF[name]) !== 0);
  const flow = new Flow({ table, priority, cookie, match, actions, idleTimeout, hardTimeout, flags, importance });
  return {
    flow,
    durationSec,
    durationNsec,
    packetCount,
    byteCount,
    ...(idleAgeSec === undefined ? {} : { idleAgeSec }),
  };
}

export { splitTopLevel };
