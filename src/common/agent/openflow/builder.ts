/**
 * Immutable builders for flows, action lists and learn actions. Every method returns a new builder,
 * so a partly built flow can be shared and extended (e.g. one base per table, many flows from it).
 *
 *   table.flow(PRIORITY.normal).cookie(c).matchProtocol('ip').matchInPort(5)
 *     .loadRegMark(FromPodRegMark, FromLocalRegMark).gotoStage('validation').done()
 *
 * Invalid input (a port value without a protocol, a value wider than its field, a backwards goto)
 * fails with a ValidationError naming the field when `done()` builds the flow.
 */
import { ValidationError } from '../../util/errors.ts';
import {
  type Action,
  type LearnAction,
  type LearnSpec,
  type NatSpec,
  conjunction as conjunctionAction,
  ct as ctAction,
  move as moveAction,
  nat as natSpec,
  note as noteAction,
  resubmit as resubmitAction,
  setField as setFieldAction,
} from '../../ovs/openflow/actions.ts';
import { ones, parseIpv4, parseIpv6, parseMac, prefixMask } from '../../ovs/openflow/bytes.ts';
import { OFPP, type PacketInReason } from '../../ovs/openflow/consts.ts';
import { type Subfield, field as ofField, subfield } from '../../ovs/openflow/fields.ts';
import { Flow, type FlowSpec } from '../../ovs/openflow/flow.ts';
import { ETH_TYPE, MatchDraft, type MatchOps, withProtocol } from '../../ovs/openflow/match.ts';
import type { FlowFlag } from '../../ovs/openflow/consts.ts';
import { BitField, Mark } from './fields.ts';
import type { StageId } from './pipeline.ts';

/** A realized table as flow builders see it. */
export interface FlowTable {
  readonly id: number;
  readonly name: string;
  /** The next table of the same pipeline, or undefined for the last one. */
  readonly next: FlowTable | undefined;
  /** The first active table of `stage` (or of a later stage) after this one in its pipeline. */
  stageTable(stage: StageId): FlowTable | undefined;
}

export type Protocol = 'ip' | 'ipv6' | 'arp' | 'tcp' | 'udp' | 'sctp' | 'icmp' | 'tcp6' | 'udp6' | 'sctp6' | 'icmp6';

/** A parsed address or network: family, value and prefix mask. */
export interface IpNet {
  readonly v6: boolean;
  readonly value: bigint;
  readonly mask: bigint;
}

/** Parses "10.0.0.1", "10.0.0.0/24", "fd00::1" or "fd00::/64". */
export function parseIpNet(text: string, what = 'ip'): IpNet {
  const [addr, len] = text.split('/');
  const v6 = (addr ?? '').includes(':');
  const bits = v6 ? 128 : 32;
  const value = v6 ? parseIpv6(addr ?? '', what) : parseIpv4(addr ?? '', what);
  if (len === undefined) return { v6, value, mask: ones(bits) };
  if (!/^\d+$/.test(len) || Number(len) > bits) throw new ValidationError(what, `bad prefix length in "${text}"`);
  const mask = prefixMask(Number(len), bits);
  return { v6, value: value & mask, mask };
}

export interface CtOptions {
  readonly commit?: boolean;
  readonly force?: boolean;
  /** Recirculate to this table after conntrack. */
  readonly table?: FlowTable | number;
  /** Zone number, or a 16-bit register field holding it. */
  readonly zone?: number | BitField;
  readonly nat?: NatSpec;
  /** Loads into ct_mark/ct_label (marks, or actions built with ActionList). */
  readonly exec?: readonly (Mark | Action)[];
}

export interface ControllerOptions {
  readonly maxLen?: number;
  readonly reason?: PacketInReason;
  readonly userdata?: Uint8Array;
  readonly pause?: boolean;
  readonly meterId?: number;
  readonly controllerId?: number;
}

/** The action methods shared by flow builders and plain action lists. */
abstract class ActionMethods<Self> {
  protected abstract add(...a: Action[]): Self;

  /** Appends raw actions. */
  action(...a: Action[]): Self {
    return this.add(...a);
  }
  output(port: number): Self {
    return this.add({ type: 'output', port, maxLen: port === OFPP.CONTROLLER ? 0xffff : 0 });
  }
  /** Output to the port number held in a register field (e.g. reg1). */
  outputToField(f: BitField | Subfield): Self {
    return this.add({ type: 'output_reg', src: f instanceof BitField ? f.subfield : f, maxLen: 0xffff });
  }
  outputInPort(): Self {
    return this.output(OFPP.IN_PORT);
  }
  normal(): Self {
    return this.output(OFPP.NORMAL);
  }
  /** Send to the controller (packet-in); with userdata, pause or a meter this is controller(...). */
  controller(o: ControllerOptions = {}): Self {
    const plain = o.reason === undefined && o.userdata === undefined && o.pause !== true && o.meterId === undefined;
    if (plain && (o.controllerId ?? 0) === 0)
      return this.add({ type: 'output', port: OFPP.CONTROLLER, maxLen: o.maxLen ?? 0xffff });
    return this.add({
      type: 'controller',
      maxLen: o.maxLen ?? 0xffff,
      reason: o.reason ?? 'action',
      controllerId: o.controllerId ?? 0,
      pause: o.pause ?? false,
      ...(o.userdata === undefined ? {} : { userdata: o.userdata }),
      ...(o.meterId === undefined ? {} : { meterId: o.meterId }),
    });
  }
  group(groupId: number): Self {
    return this.add({ type: 'group', groupId });
  }
  loadRegMark(...marks: Mark[]): Self {
    return this.add(...marks.map((m) => m.load()));
  }
  loadToField(f: BitField, value: number | bigint): Self {
    return this.add(f.load(value));
  }
  /** set_field with an optional mask ("load" in older ovs-ofctl syntax). */
  setField(name: string, value: bigint | number, mask?: bigint): Self {
    return this.add(setFieldAction(ofField(name, 'setField'), BigInt(value), mask));
  }
  move(src: BitField | Subfield, dst: BitField | Subfield): Self {
    return this.add(
      moveAction(src instanceof BitField ? src.subfield : src, dst instanceof BitField ? dst.subfield : dst),
    );
  }
  /** move between whole fields by name ("eth_src" -> "eth_dst"), or NXM subfield syntax. */
  moveField(src: string, dst: string, bits?: { srcOfs?: number; dstOfs?: number; nBits?: number }): Self {
    const s = subfield(src, bits?.srcOfs ?? 0, bits?.nBits, 'move');
    return this.add(moveAction(s, subfield(dst, bits?.dstOfs ?? 0, s.nBits, 'move')));
  }
  setSrcMAC(mac: string): Self {
    return this.add(setFieldAction(ofField('eth_src'), parseMac(mac, 'eth_src')));
  }
  setDstMAC(mac: string): Self {
    return this.add(setFieldAction(ofField('eth_dst'), parseMac(mac, 'eth_dst')));
  }
  setSrcIP(ip: string): Self {
    const n = parseIpNet(ip, 'ip_src');
    return this.add(setFieldAction(ofField(n.v6 ? 'ipv6_src' : 'ip_src'), n.value));
  }
  setDstIP(ip: string): Self {
    const n = parseIpNet(ip, 'ip_dst');
    return this.add(setFieldAction(ofField(n.v6 ? 'ipv6_dst' : 'ip_dst'), n.value));
  }
  setTunnelDst(ip: string): Self {
    const n = parseIpNet(ip, 'tun_dst');
    return this.add(setFieldAction(ofField(n.v6 ? 'tun_ipv6_dst' : 'tun_dst'), n.value));
  }
  setTunnelID(id: bigint | number): Self {
    return this.add(setFieldAction(ofField('tun_id'), BigInt(id)));
  }
  setARPOp(op: number): Self {
    return this.add(setFieldAction(ofField('arp_op'), BigInt(op)));
  }
  setARPSha(mac: string): Self {
    return this.add(setFieldAction(ofField('arp_sha'), parseMac(mac, 'arp_sha')));
  }
  setARPSpa(ip: string): Self {
    return this.add(setFieldAction(ofField('arp_spa'), parseIpv4(ip, 'arp_spa')));
  }
  /** Sets the pkt_mark bits selected by `mask`. */
  setPktMark(value: number | bigint, mask?: bigint): Self {
    return this.add(setFieldAction(ofField('pkt_mark'), BigInt(value), mask));
  }
  resubmit(table: FlowTable | number, port?: number): Self {
    return this.add(resubmitAction(typeof table === 'number' ? table : table.id, port));
  }
  /** resubmit(,table,ct): look up with the conntrack original-direction tuple. */
  resubmitWithCT(table: FlowTable | number): Self {
    return this.add(resubmitAction(typeof table === 'number' ? table : table.id, undefined, true));
  }
  ct(o: CtOptions = {}): Self {
    const exec = (o.exec ?? []).map((x) => (x instanceof Mark ? x.load() : x));
    return this.add(
      ctAction({
        commit: o.commit ?? false,
        force: o.force ?? false,
        table: o.table === undefined ? undefined : typeof o.table === 'number' ? o.table : o.table.id,
        zone: o.zone instanceof BitField ? o.zone.subfield : (o.zone ?? 0),
        nat: o.nat,
        exec,
      }),
    );
  }
  ctClear(): Self {
    return this.add({ type: 'ct_clear' });
  }
  conjunction(id: number, clause: number, nClauses: number): Self {
    return this.add(conjunctionAction(id, clause, nClauses));
  }
  learn(l: LearnBuilder | LearnAction): Self {
    return this.add(l instanceof LearnBuilder ? l.done() : l);
  }
  decTTL(): Self {
    return this.add({ type: 'dec_ttl' });
  }
  note(data: Uint8Array): Self {
    return this.add(noteAction(data));
  }
  /** Pushes an 802.1Q tag with this VLAN id. */
  pushVLAN(vid: number): Self {
    if (!Number.isInteger(vid) || vid < 0 || vid > 4095)
      throw new ValidationError('vlan', `VLAN id ${vid} is not 0..4095`);
    return this.add(
      { type: 'push_vlan', ethertype: 0x8100 },
      setFieldAction(ofField('vlan_vid'), BigInt(0x1000 | vid)),
    );
  }
  popVLAN(): Self {
    return this.add({ type: 'pop_vlan' });
  }
  /** Runs `actions` on a clone of the packet. */
  clone(actions: ActionList): Self {
    return this.add({ type: 'clone', actions: actions.actions });
  }
}

/** An immutable list of actions (group buckets, clone(), ct exec). */
export class ActionList extends ActionMethods<ActionList> {
  static readonly EMPTY = new ActionList([]);
  readonly actions: readonly Action[];

  constructor(actions: readonly Action[]) {
    super();
    this.actions = actions;
  }

  protected add(...a: Action[]): ActionList {
    return new ActionList([...this.actions, ...a]);
  }
}

/** Starts an action list. */
export function actions(): ActionList {
  return ActionList.EMPTY;
}

interface Meta {
  readonly cookie?: bigint;
  readonly idleTimeout?: number;
  readonly hardTimeout?: number;
  readonly flags?: readonly FlowFlag[];
}

/**
 * One builder call. A builder is a table, a priority and the chain of calls made so far: every call
 * adds one link (O(1), shared with the builder it came from) and done() replays the chain once.
 */
type Step =
  | { readonly k: 'match'; readonly f: (m: MatchOps) => MatchOps; readonly prev: Step | undefined }
  | { readonly k: 'actions'; readonly a: readonly Action[]; readonly prev: Step | undefined }
  | { readonly k: 'meta'; readonly m: Meta; readonly prev: Step | undefined }
  | { readonly k: 'error'; readonly e: ValidationError; readonly prev: Step | undefined };

/** Builds one flow of a table. */
export class FlowBuilder extends ActionMethods<FlowBuilder> {
  private readonly table: FlowTable;
  private readonly priority: number;
  private readonly step: Step | undefined;

  private constructor(table: FlowTable, priority: number, step: Step | undefined) {
    super();
    this.table = table;
    this.priority = priority;
    this.step = step;
  }

  static for(table: FlowTable, priority: number): FlowBuilder {
    return new FlowBuilder(table, priority, undefined);
  }

  private with(m: Meta): FlowBuilder {
    return new FlowBuilder(this.table, this.priority, { k: 'meta', m, prev: this.step });
  }

  /** Records a match change; an invalid value is reported by done() (the first one wins). */
  private m(f: (m: MatchOps) => MatchOps): FlowBuilder {
    return new FlowBuilder(this.table, this.priority, { k: 'match', f, prev: this.step });
  }

  private fail(e: ValidationError): FlowBuilder {
    return new FlowBuilder(this.table, this.priority, { k: 'error', e, prev: this.step });
  }

  protected add(...a: Action[]): FlowBuilder {
    return new FlowBuilder(this.table, this.priority, { k: 'actions', a, prev: this.step });
  }

  cookie(cookie: bigint): FlowBuilder {
    return this.with({ cookie });
  }
  idleTimeout(seconds: number): FlowBuilder {
    return this.with({ idleTimeout: seconds });
  }
  hardTimeout(seconds: number): FlowBuilder {
    return this.with({ hardTimeout: seconds });
  }
  flags(...flags: FlowFlag[]): FlowBuilder {
    return this.with({ flags });
  }

  // ---- matches ---------------------------------------------------------------------------------

  /** Generic match on a canonical key (see match.ts). */
  match(key: string, value: bigint | number, mask?: bigint): FlowBuilder {
    return this.m((m) => m.with(key, BigInt(value), mask));
  }
  matchProtocol(p: Protocol): FlowBuilder {
    return this.m((m) => withProtocol(m, p));
  }
  matchIPProtocolValue(v6: boolean, proto: number): FlowBuilder {
    return this.m((m) => m.with('dl_type', BigInt(v6 ? ETH_TYPE.IPV6 : ETH_TYPE.IP)).with('nw_proto', BigInt(proto)));
  }
  matchInPort(port: number): FlowBuilder {
    return this.match('in_port', port);
  }
  matchSrcMAC(mac: string, mask?: string): FlowBuilder {
    return this.m((m) =>
      m.with('dl_src', parseMac(mac, 'dl_src'), mask === undefined ? undefined : parseMac(mask, 'dl_src')),
    );
  }
  matchDstMAC(mac: string, mask?: string): FlowBuilder {
    return this.m((m) =>
      m.with('dl_dst', parseMac(mac, 'dl_dst'), mask === undefined ? undefined : parseMac(mask, 'dl_dst')),
    );
  }
  private ip(keyV4: string, keyV6: string, text: string): FlowBuilder {
    return this.m((m) => {
      const n = parseIpNet(text, keyV4);
      return m.with(n.v6 ? keyV6 : keyV4, n.value, n.mask);
    });
  }
  /** Source IP or network ("10.0.0.1", "10.0.0.0/24", IPv6 too). Needs matchProtocol first. */
  matchSrcIP(ipOrNet: string): FlowBuilder {
    return this.ip('nw_src', 'ipv6_src', ipOrNet);
  }
  matchDstIP(ipOrNet: string): FlowBuilder {
    return this.ip('nw_dst', 'ipv6_dst', ipOrNet);
  }
  matchARPOp(op: number): FlowBuilder {
    return this.match('nw_proto', op);
  }
  matchARPSpa(ip: string): FlowBuilder {
    return this.ip('nw_src', 'nw_src', ip);
  }
  matchARPTpa(ip: string): FlowBuilder {
    return this.ip('nw_dst', 'nw_dst', ip);
  }
  matchARPSha(mac: string): FlowBuilder {
    return this.m((m) => m.with('arp_sha', parseMac(mac, 'arp_sha')));
  }
  matchARPTha(mac: string): FlowBuilder {
    return this.m((m) => m.with('arp_tha', parseMac(mac, 'arp_tha')));
  }
  /** Transport source port (TCP/UDP/SCTP), optionally masked (port ranges as value/mask pairs). */
  matchSrcPort(port: number, mask?: number): FlowBuilder {
    return this.match('tp_src', port, mask === undefined ? undefined : BigInt(mask));
  }
  matchDstPort(port: number, mask?: number): FlowBuilder {
    return this.match('tp_dst', port, mask === undefined ? undefined : BigInt(mask));
  }
  matchTCPFlags(flags: number, mask: number): FlowBuilder {
    return this.match('tcp_flags', flags, BigInt(mask));
  }
  matchICMPType(type: number): FlowBuilder {
    return this.match('tp_src', type);
  }
  matchICMPCode(code: number): FlowBuilder {
    return this.match('tp_dst', code);
  }
  matchNDTarget(ip: string): FlowBuilder {
    return this.m((m) => m.with('nd_target', parseIpv6(ip, 'nd_target')));
  }
  /** DSCP value (0..63). */
  matchIPDSCP(dscp: number): FlowBuilder {
    if (!Number.isInteger(dscp) || dscp < 0 || dscp > 63)
      return this.fail(new ValidationError('ip_dscp', `${dscp} is not 0..63`));
    return this.match('nw_tos', dscp << 2);
  }
  matchVLAN(vid: number): FlowBuilder {
    return this.match('vlan_tci', 0x1000 | vid, 0x1fffn);
  }
  matchRegMark(...marks: Mark[]): FlowBuilder {
    return marks.reduce<FlowBuilder>((b, mk) => b.matchField(mk.field, mk.value), this);
  }
  /** Matches a field's bits (other bits of the register keep their current match). */
  matchField(f: BitField, value: number | bigint): FlowBuilder {
    const key = f.target === 'ct_mark' ? 'ct_mark' : f.target === 'ct_label' ? 'ct_label' : f.target;
    if (key.startsWith('xxreg')) {
      const base = Number(key.slice(5)) * 4;
      return this.m((m) => {
        let out = m;
        const shifted = f.shifted(value);
        for (let i = 0; i < 4; i++) {
          const shift = BigInt((3 - i) * 32);
          const mk = (f.mask >> shift) & 0xffffffffn;
          if (mk === 0n) continue;
          const cur = out.get(`reg${base + i}`);
          out = out.with(
            `reg${base + i}`,
            ((cur?.value ?? 0n) & ~mk) | ((shifted >> shift) & mk),
            (cur?.mask ?? 0n) | mk,
          );
        }
        return out;
      });
    }
    return this.m((m) => {
      const cur = m.get(key);
      const shifted = f.shifted(value);
      return m.with(key, ((cur?.value ?? 0n) & ~f.mask) | shifted, (cur?.mask ?? 0n) | f.mask);
    });
  }
  /** ct_state flags: true = set (+), false = unset (-); absent flags are not matched. */
  matchCTState(s: {
    new?: boolean;
    est?: boolean;
    rel?: boolean;
    rpl?: boolean;
    inv?: boolean;
    trk?: boolean;
    snat?: boolean;
    dnat?: boolean;
  }): FlowBuilder {
    const bits = { new: 0x01, est: 0x02, rel: 0x04, rpl: 0x08, inv: 0x10, trk: 0x20, snat: 0x40, dnat: 0x80 } as const;
    let value = 0;
    let mask = 0;
    for (const [k, v] of Object.entries(s) as [keyof typeof bits, boolean | undefined][]) {
      if (v === undefined) continue;
      mask |= bits[k];
      if (v) value |= bits[k];
    }
    return this.match('ct_state', value, BigInt(mask));
  }
  matchCTMark(...marks: Mark[]): FlowBuilder {
    return this.matchRegMark(...marks);
  }
  matchCTZone(zone: number): FlowBuilder {
    return this.match('ct_zone', zone);
  }
  matchCTSrcIP(ipOrNet: string): FlowBuilder {
    return this.ip('ct_nw_src', 'ct_ipv6_src', ipOrNet);
  }
  matchCTDstIP(ipOrNet: string): FlowBuilder {
    return this.ip('ct_nw_dst', 'ct_ipv6_dst', ipOrNet);
  }
  matchCTProtocol(proto: number): FlowBuilder {
    return this.match('ct_nw_proto', proto);
  }
  matchCTSrcPort(port: number, mask?: number): FlowBuilder {
    return this.match('ct_tp_src', port, mask === undefined ? undefined : BigInt(mask));
  }
  matchCTDstPort(port: number, mask?: number): FlowBuilder {
    return this.match('ct_tp_dst', port, mask === undefined ? undefined : BigInt(mask));
  }
  matchTunnelID(id: bigint | number): FlowBuilder {
    return this.match('tun_id', id);
  }
  matchTunnelDst(ip: string): FlowBuilder {
    return this.ip('tun_dst', 'tun_ipv6_dst', ip);
  }
  matchTunnelSrc(ip: string): FlowBuilder {
    return this.ip('tun_src', 'tun_ipv6_src', ip);
  }
  /** tun_metadata<index>, `bytes` being the TLV option length (multiple of 4). */
  matchTunMetadata(index: number, value: bigint, bytes: number, mask?: bigint): FlowBuilder {
    return this.m((m) => m.with(`tun_metadata${index}`, value, mask, bytes));
  }
  matchConjID(id: number): FlowBuilder {
    return this.match('conj_id', id);
  }
  matchMetadata(value: bigint, mask?: bigint): FlowBuilder {
    return this.match('metadata', value, mask);
  }
  matchPktMark(value: number | bigint, mask?: bigint): FlowBuilder {
    return this.match('pkt_mark', value, mask);
  }

  // ---- forwarding (terminal actions) -------------------------------------------------------------

  /** goto_table to the next table of the pipeline (drop if this is the last one) and build. */
  next(): Flow {
    const n = this.table.next;
    return n === undefined ? this.done() : this.gotoTable(n);
  }
  /** goto_table (forward only) and build. */
  gotoTable(table: FlowTable | number): Flow {
    const id = typeof table === 'number' ? table : table.id;
    return this.add({ type: 'goto_table', table: id }).done();
  }
  /** goto the first active table of `stage` (forward only) and build. */
  gotoStage(stage: StageId): Flow {
    const target = this.table.stageTable(stage);
    if (target === undefined)
      throw new ValidationError('stage', `no active table in stage ${stage} after ${this.table.name}`);
    return this.gotoTable(target);
  }
  /** Builds the flow ("drop" when it has no actions). */
  done(): Flow {
    const steps: Step[] = [];
    for (let st = this.step; st !== undefined; st = st.prev) steps.push(st);
    const draft = new MatchDraft();
    const actionList: Action[] = [];
    let meta: Meta = {};
    for (let i = steps.length - 1; i >= 0; i--) {
      const st = steps[i];
      if (st === undefined) continue;
      switch (st.k) {
        case 'match':
          try {
            st.f(draft);
          } catch (err) {
            throw this.explain(err);
          }
          break;
        case 'actions':
          actionList.push(...st.a);
          break;
        case 'meta':
          meta = { ...meta, ...st.m };
          break;
        case 'error':
          throw this.explain(st.e);
      }
    }
    const spec: FlowSpec = {
      table: this.table.id,
      priority: this.priority,
      cookie: meta.cookie ?? 0n,
      match: draft.build(),
      actions: actionList,
      idleTimeout: meta.idleTimeout ?? 0,
      hardTimeout: meta.hardTimeout ?? 0,
      flags: meta.flags ?? [],
    };
    try {
      return new Flow(spec);
    } catch (err) {
      throw this.explain(err);
    }
  }

  private explain(err: unknown): unknown {
    if (!(err instanceof ValidationError)) return err;
    return new ValidationError(err.field, `${err.message.replace(/^[^:]*: /, '')} (flow in table ${this.table.name})`, {
      cause: err,
    });
  }
}

/** Builds a learn() action (e.g. session affinity). */
export class LearnBuilder {
  private readonly a: LearnAction;

  private constructor(a: LearnAction) {
    this.a = a;
  }

  static for(table: FlowTable | number, priority: number): LearnBuilder {
    return new LearnBuilder({
      type: 'learn',
      table: typeof table === 'number' ? table : table.id,
      idleTimeout: 0,
      hardTimeout: 0,
      finIdleTimeout: 0,
      finHardTimeout: 0,
      priority,
      cookie: 0n,
      sendFlowRem: false,
      deleteLearned: false,
      limit: 0,
      specs: [],
    });
  }

  private with(p: Partial<LearnAction>): LearnBuilder {
    return new LearnBuilder({ ...this.a, ...p });
  }
  private spec(s: LearnSpec): LearnBuilder {
    return this.with({ specs: [...this.a.specs, s] });
  }

  cookie(c: bigint): LearnBuilder {
    return this.with({ cookie: c });
  }
  idleTimeout(s: number): LearnBuilder {
    return this.with({ idleTimeout: s });
  }
  hardTimeout(s: number): LearnBuilder {
    return this.with({ hardTimeout: s });
  }
  finTimeouts(idle: number, hard: number): LearnBuilder {
    return this.with({ finIdleTimeout: idle, finHardTimeout: hard });
  }
  /** Delete the learned flows when this learn flow is deleted. */
  deleteLearned(): LearnBuilder {
    return this.with({ deleteLearned: true });
  }
  /** The learned flow matches `field` == `value` (whole field, e.g. "eth_type", 0x800). */
  matchValue(fieldName: string, value: bigint | number): LearnBuilder {
    const dst = subfield(fieldName, 0, undefined, 'learn');
    const v = BigInt(value);
    if (v > ones(dst.nBits)) throw new ValidationError('learn', `value does not fit ${fieldName}`);
    return this.spec({ kind: 'match_imm', dst, value: v });
  }
  /** The learned flow matches `dst` against the current packet's `src` (same field when omitted). */
  matchField(dst: string | Subfield, src?: string | Subfield): LearnBuilder {
    const d = typeof dst === 'string' ? subfield(dst, 0, undefined, 'learn') : dst;
    const s = src === undefined ? d : typeof src === 'string' ? subfield(src, 0, undefined, 'learn') : src;
    if (s.nBits !== d.nBits) throw new ValidationError('learn', 'source and destination widths differ');
    return this.spec({ kind: 'match', dst: d, src: s });
  }
  /** The learned flow loads the current value of `src` into `dst`. */
  loadField(src: BitField | Subfield, dst?: BitField | Subfield): LearnBuilder {
    const s = src instanceof BitField ? src.subfield : src;
    const d = dst === undefined ? s : dst instanceof BitField ? dst.subfield : dst;
    if (s.nBits !== d.nBits) throw new ValidationError('learn', 'source and destination widths differ');
    return this.spec({ kind: 'load', src: s, dst: d });
  }
  /** The learned flow loads a mark (constant). */
  loadMark(mark: Mark): LearnBuilder {
    return this.spec({ kind: 'load_imm', dst: mark.field.subfield, value: mark.value });
  }
  outputToField(src: BitField | Subfield): LearnBuilder {
    return this.spec({ kind: 'output', src: src instanceof BitField ? src.subfield : src });
  }
  done(): LearnAction {
    if (this.a.specs.length === 0) throw new ValidationError('learn', 'a learn action needs at least one spec');
    return this.a;
  }
}

/** NAT spec helpers for ct(). */
export const Nat = {
  /** Reuse the connection's NAT (plain "nat"). */
  restore: (): NatSpec => ({}),
  dst: (ip: string, port?: number, portMax?: number): NatSpec => natRange('dst', ip, port, portMax),
  src: (ip: string, port?: number, portMax?: number): NatSpec => natRange('src', ip, port, portMax),
} as const;

function natRange(kind: 'src' | 'dst', ip: string, port?: number, portMax?: number): NatSpec {
  const [lo, hi] = ip.split('-');
  const a = parseIpNet(lo ?? '', 'nat');
  const b = hi === undefined ? undefined : parseIpNet(hi, 'nat');
  return natSpec({
    kind,
    family: a.v6 ? 'ipv6' : 'ipv4',
    ipMin: a.value,
    ipMax: b?.value,
    portMin: port,
    portMax,
  });
}
