/**
 * The bridge client (Antrea's OVSBridge): bridges, ports and interfaces through OVSDB transactions,
 * with reads served from the client's monitor cache. {@link OvsBridgeClient} is the interface the
 * agent, CNI server and lab depend on; {@link OvsdbBridge} implements it on an
 * {@link OvsdbTransactor} (the real {@link OvsdbClient} or a fake).
 *
 * Every write is idempotent where Antrea's is: creating an existing bridge or port with the same
 * settings sends nothing; with other settings it updates the existing row in place; deleting
 * something absent is not an error.
 */
import { isIP } from 'node:net';
import { ValidationError } from '../../util/errors.ts';
import { type Logger, nullLogger } from '../../util/log.ts';
import type { CachedRow } from './cache.ts';
import type { OvsdbTransactor } from './client.ts';
import { isOvsdbError, OvsdbError } from './errors.ts';
import { type Condition, eq, type Mutation, type Operation, ops } from './operations.ts';
import {
  EMPTY_SET,
  mapToRecord,
  namedUuid,
  type NamedUuidAtom,
  type OvsdbRow,
  type OvsdbValue,
  optionalNumber,
  optionalString,
  ovsMap,
  ovsSet,
  recordsEqual,
  setElements,
  uuid,
  uuidSet,
  valuesEqual,
} from './values.ts';

export const PORT_TYPES = ['internal', 'system', 'geneve', 'vxlan', 'gre', 'stt'] as const;
export type PortType = (typeof PORT_TYPES)[number];
export const TUNNEL_TYPES = ['geneve', 'vxlan', 'gre', 'stt'] as const;
export type TunnelType = (typeof TUNNEL_TYPES)[number];
export const OPENFLOW_PROTOCOLS = [
  'OpenFlow10',
  'OpenFlow11',
  'OpenFlow12',
  'OpenFlow13',
  'OpenFlow14',
  'OpenFlow15',
] as const;
export type OpenFlowProtocol = (typeof OPENFLOW_PROTOCOLS)[number];
export type DatapathType = 'system' | 'netdev';
export type FailMode = 'secure' | 'standalone';

/** Highest ofport_request OVS accepts (Antrea's ofPortRequestMax). */
export const OFPORT_REQUEST_MAX = 65279;
/** The OpenFlow port number of a bridge's own (LOCAL) port. */
export const OFPORT_LOCAL = 65534;

export interface BridgeOptions {
  /** `system` (kernel) or `netdev` (userspace). Unset on a new bridge: OVS's default (system). */
  readonly datapathType?: DatapathType;
  /** OpenFlow versions the bridge speaks (Antrea: OpenFlow10 and OpenFlow15). */
  readonly protocols?: readonly OpenFlowProtocol[];
  readonly failMode?: FailMode;
  /** Keys set on the bridge's other_config (other keys are left alone). */
  readonly otherConfig?: Readonly<Record<string, string>>;
  /** Keys set on the bridge's external_ids (other keys are left alone). */
  readonly externalIds?: Readonly<Record<string, string>>;
}

export interface BridgeInfo {
  readonly name: string;
  readonly uuid: string;
  /** `system` when OVS has it empty. */
  readonly datapathType: string;
  readonly datapathId: string | undefined;
  readonly protocols: readonly string[];
  readonly failMode: string | undefined;
  readonly otherConfig: Readonly<Record<string, string>>;
  readonly externalIds: Readonly<Record<string, string>>;
  /** Names of all ports on the bridge, including its own LOCAL port, sorted. */
  readonly portNames: readonly string[];
}

/** Options of a tunnel interface (rendered into the Interface's `options` column). */
export interface TunnelOptions {
  /** `flow` (the remote is set per flow with tun_dst) or an IP address. Required. */
  readonly remoteIp: string;
  /** `flow` or a fixed VNI/key. */
  readonly key?: 'flow' | number;
  /** UDP destination port (geneve, vxlan, stt). */
  readonly dstPort?: number;
  /** Outer checksum. */
  readonly csum?: boolean;
  /** Local tunnel endpoint address (`flow` or an IP). */
  readonly localIp?: string;
}

export interface PortSpec {
  /** Port and interface name (≤ 15 characters: it is a network device name). */
  readonly name: string;
  /** `system` attaches an existing device (a veth end); `internal` creates one. */
  readonly type: PortType;
  /** OpenFlow port number to ask for (1-65279); OVS picks one when absent. */
  readonly ofportRequest?: number;
  /** Tunnel settings; only for tunnel types. */
  readonly tunnel?: TunnelOptions;
  /** Raw Interface options (merged under the tunnel options). */
  readonly options?: Readonly<Record<string, string>>;
  /** The Port's external_ids (Antrea keeps `antrea-type` and the container identity here). */
  readonly externalIds?: Readonly<Record<string, string>>;
  /** The Interface's external_ids. */
  readonly interfaceExternalIds?: Readonly<Record<string, string>>;
  /** Interface MAC (internal ports). */
  readonly mac?: string;
  readonly mtuRequest?: number;
}

export interface PortInfo {
  readonly name: string;
  readonly uuid: string;
  readonly interfaceUuid: string | undefined;
  /** `system` when OVS has the type empty. */
  readonly type: string;
  /** undefined while ovs-vswitchd has not assigned one; -1 when it failed (see `error`). */
  readonly ofport: number | undefined;
  readonly ofportRequest: number | undefined;
  readonly options: Readonly<Record<string, string>>;
  readonly externalIds: Readonly<Record<string, string>>;
  readonly interfaceExternalIds: Readonly<Record<string, string>>;
  /** The MAC in use (reported by ovs-vswitchd), else the requested one. */
  readonly mac: string | undefined;
  readonly mtu: number | undefined;
  /** Why ovs-vswitchd could not create the interface. */
  readonly error: string | undefined;
}

/** Operations on one bridge of one OVS instance. Reads come from the monitor cache and never block. */
export interface OvsBridgeClient {
  readonly name: string;

  /**
   * Creates the bridge (with its LOCAL internal port, as `ovs-vsctl add-br` does) or, if it exists,
   * updates what differs from `options` (unset options are left alone). Returns the bridge as
   * cached after the write. Throws OVSDB_NOT_FOUND if the database has no Open_vSwitch row.
   */
  create(options?: BridgeOptions): Promise<BridgeInfo>;
  /** Deletes the bridge and its ports. Absent: nothing happens. */
  delete(): Promise<void>;
  /** The bridge, or undefined if it does not exist. */
  get(): BridgeInfo | undefined;
  /** Sets these keys of the bridge's external_ids (others kept). Throws OVSDB_NOT_FOUND without the bridge. */
  setExternalIds(ids: Readonly<Record<string, string>>): Promise<void>;
  /** Removes these keys from the bridge's external_ids; absent keys are ignored. */
  removeExternalIds(keys: readonly string[]): Promise<void>;
  /** Waits until ovs-vswitchd reports the datapath ID (default 5 s); OVSDB_TIMEOUT otherwise. */
  waitForDatapathId(timeoutMs?: number): Promise<string>;

  /**
   * Creates the port with one interface. If a port of that name is already on this bridge, updates
   * what differs (type, options, ofport_request, MAC, MTU; external_ids given in the spec replace
   * the existing ones) and sends nothing when all matches. Does not wait for the ofport. Throws
   * ValidationError for a bad spec, OVSDB_NOT_FOUND without the bridge, OVSDB_CONFLICT if the
   * name is used on another bridge.
   */
  createPort(spec: PortSpec): Promise<PortInfo>;
  /**
   * {@link createPort} for several ports in one transaction (all or nothing). Throws a
   * ValidationError for a bad spec or a name given twice.
   */
  createPorts(specs: readonly PortSpec[]): Promise<PortInfo[]>;
  /** Deletes the port from this bridge. Absent (or on another bridge): nothing happens. */
  deletePort(name: string): Promise<void>;
  /** Deletes several ports in one transaction; absent ones are skipped. */
  deletePorts(names: readonly string[]): Promise<void>;
  /** The port on this bridge, or undefined. */
  getPort(name: string): PortInfo | undefined;
  /** The ports on this bridge, sorted by name, without the bridge's own LOCAL port. */
  listPorts(): PortInfo[];
  /**
   * Waits until ovs-vswitchd assigned the port's ofport (default 5 s) and returns it. Throws
   * OVSDB_NOT_FOUND if the interface does not exist, OVSDB_PORT_FAILED (with the Interface's error)
   * if the ofport is -1, OVSDB_TIMEOUT if none was assigned in time.
   */
  waitForOFPort(name: string, timeoutMs?: number): Promise<number>;
  /** Replaces the port's external_ids. Throws OVSDB_NOT_FOUND if the port is not on this bridge. */
  setPortExternalIds(name: string, ids: Readonly<Record<string, string>>): Promise<void>;
  /** Replaces the interface's external_ids. Throws OVSDB_NOT_FOUND if absent. */
  setInterfaceExternalIds(name: string, ids: Readonly<Record<string, string>>): Promise<void>;
  /** Replaces the interface's options. Throws OVSDB_NOT_FOUND if absent. */
  setInterfaceOptions(name: string, options: Readonly<Record<string, string>>): Promise<void>;

  /** The Open_vSwitch row's other_config. */
  getOvsOtherConfig(): Readonly<Record<string, string>>;
  /** Sets these keys of the Open_vSwitch row's other_config (e.g. flow-restore-wait); others kept. */
  setOvsOtherConfig(config: Readonly<Record<string, string>>): Promise<void>;
  /** Removes these keys from the Open_vSwitch row's other_config; absent keys are ignored. */
  removeOvsOtherConfig(keys: readonly string[]): Promise<void>;
  /** The OVS version ovs-vswitchd reported, if it did. */
  getOvsVersion(): string | undefined;
}

export interface OvsdbBridgeOptions {
  readonly logger?: Logger;
  /** Default timeout for waitForOFPort / waitForDatapathId (default 5000 ms, as Antrea). */
  readonly waitTimeoutMs?: number;
}

const NAME_RE = /^[A-Za-z0-9_.:~@-]{1,15}$/;
const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** Checks a bridge or port name (it becomes a network device name). */
export function validateDeviceName(name: string, field: string): void {
  if (typeof name !== 'string' || !NAME_RE.test(name) || name === '.' || name === '..') {
    throw new ValidationError(
      field,
      `invalid name ${JSON.stringify(name)}: 1-15 characters of letters, digits and _ . : ~ @ -`,
    );
  }
}

function isTunnel(type: string): type is TunnelType {
  return (TUNNEL_TYPES as readonly string[]).includes(type);
}

function checkInt(value: unknown, field: string, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(field, `must be an integer in ${min}-${max}, got ${JSON.stringify(value)}`);
  }
}

function checkStringMap(m: unknown, field: string): void {
  if (typeof m !== 'object' || m === null || Array.isArray(m))
    throw new ValidationError(field, 'must be an object of strings');
  for (const [k, v] of Object.entries(m)) {
    if (k === '') throw new ValidationError(field, 'keys must not be empty');
    if (typeof v !== 'string') throw new ValidationError(`${field}.${k}`, `must be a string, got ${JSON.stringify(v)}`);
  }
}

/** Validates a bridge's options; throws a ValidationError naming the field. */
export function validateBridgeOptions(o: BridgeOptions): void {
  // Inputs may come from configuration files: check them as untyped values.
  const dt = o.datapathType as unknown;
  if (dt !== undefined && dt !== 'system' && dt !== 'netdev') {
    throw new ValidationError('bridge.datapathType', `must be "system" or "netdev", got ${JSON.stringify(dt)}`);
  }
  const protocols = o.protocols as unknown;
  if (protocols !== undefined) {
    if (!Array.isArray(protocols)) throw new ValidationError('bridge.protocols', 'must be an array');
    for (const p of protocols as unknown[]) {
      if (typeof p !== 'string' || !(OPENFLOW_PROTOCOLS as readonly string[]).includes(p)) {
        throw new ValidationError(
          'bridge.protocols',
          `unknown protocol ${JSON.stringify(p)} (expected OpenFlow10-OpenFlow15)`,
        );
      }
    }
  }
  const fm = o.failMode as unknown;
  if (fm !== undefined && fm !== 'secure' && fm !== 'standalone') {
    throw new ValidationError('bridge.failMode', `must be "secure" or "standalone", got ${JSON.stringify(fm)}`);
  }
  if (o.otherConfig !== undefined) checkStringMap(o.otherConfig, 'bridge.otherConfig');
  if (o.externalIds !== undefined) checkStringMap(o.externalIds, 'bridge.externalIds');
}

/** Validates a port spec; throws a ValidationError naming the field. */
export function validatePortSpec(s: PortSpec): void {
  validateDeviceName(s.name, 'port.name');
  if (!(PORT_TYPES as readonly string[]).includes(s.type)) {
    throw new ValidationError('port.type', `must be one of ${PORT_TYPES.join(', ')}, got ${JSON.stringify(s.type)}`);
  }
  if (s.ofportRequest !== undefined) checkInt(s.ofportRequest, 'port.ofportRequest', 1, OFPORT_REQUEST_MAX);
  if (s.options !== undefined) checkStringMap(s.options, 'port.options');
  if (s.externalIds !== undefined) checkStringMap(s.externalIds, 'port.externalIds');
  if (s.interfaceExternalIds !== undefined) checkStringMap(s.interfaceExternalIds, 'port.interfaceExternalIds');
  if (s.mac !== undefined && !MAC_RE.test(s.mac))
    throw new ValidationError('port.mac', `invalid MAC ${JSON.stringify(s.mac)}`);
  if (s.mtuRequest !== undefined) checkInt(s.mtuRequest, 'port.mtuRequest', 68, 65535);
  if (s.tunnel !== undefined) {
    if (!isTunnel(s.type)) throw new ValidationError('port.tunnel', `tunnel options need a tunnel type, not ${s.type}`);
    const t = s.tunnel;
    const ipOrFlow = (v: unknown, field: string): void => {
      if (typeof v !== 'string' || (v !== 'flow' && isIP(v) === 0)) {
        throw new ValidationError(field, `must be "flow" or an IP address, got ${JSON.stringify(v)}`);
      }
    };
    ipOrFlow(t.remoteIp, 'port.tunnel.remoteIp');
    if (t.localIp !== undefined) ipOrFlow(t.localIp, 'port.tunnel.localIp');
    if (t.key !== undefined && t.key !== 'flow') {
      const max = s.type === 'gre' ? 0xffffffff : s.type === 'stt' ? Number.MAX_SAFE_INTEGER : 0xffffff;
      checkInt(t.key, 'port.tunnel.key', 0, max);
    }
    if (t.dstPort !== undefined) {
      if (s.type === 'gre') throw new ValidationError('port.tunnel.dstPort', 'gre has no destination port');
      checkInt(t.dstPort, 'port.tunnel.dstPort', 1, 65535);
    }
    if (t.csum !== undefined && typeof t.csum !== 'boolean') {
      throw new ValidationError('port.tunnel.csum', `must be a boolean, got ${JSON.stringify(t.csum)}`);
    }
  } else if (isTunnel(s.type) && s.options?.['remote_ip'] === undefined) {
    throw new ValidationError('port.tunnel', `a ${s.type} port needs tunnel.remoteIp (or options.remote_ip)`);
  }
}

/** The Interface `options` a spec asks for. */
export function interfaceOptions(s: PortSpec): Record<string, string> {
  const out: Record<string, string> = { ...s.options };
  const t = s.tunnel;
  if (t !== undefined) {
    out['remote_ip'] = t.remoteIp;
    if (t.key !== undefined) out['key'] = String(t.key);
    if (t.dstPort !== undefined) out['dst_port'] = String(t.dstPort);
    if (t.csum !== undefined) out['csum'] = String(t.csum);
    if (t.localIp !== undefined) out['local_ip'] = t.localIp;
  }
  return out;
}

function ovsType(t: PortType): string {
  return t === 'system' ? '' : t;
}

/** The Interface row a spec asks for (only the columns it sets). */
function interfaceRow(s: PortSpec): Record<string, OvsdbValue> {
  const row: Record<string, OvsdbValue> = { name: s.name, type: ovsType(s.type) };
  const options = interfaceOptions(s);
  if (Object.keys(options).length > 0) row['options'] = ovsMap(options);
  if (s.ofportRequest !== undefined) row['ofport_request'] = s.ofportRequest;
  if (s.interfaceExternalIds !== undefined) row['external_ids'] = ovsMap(s.interfaceExternalIds);
  if (s.mac !== undefined) row['mac'] = s.mac.toLowerCase();
  if (s.mtuRequest !== undefined) row['mtu_request'] = s.mtuRequest;
  return row;
}

/** Mutations that set `values`' keys of a string map column, leaving other keys alone. */
function setKeys(column: string, values: Readonly<Record<string, string>>): Mutation[] {
  const keys = Object.keys(values).sort();
  if (keys.length === 0) return [];
  return [
    [column, 'delete', ovsSet(keys)],
    [column, 'insert', ovsMap(values)],
  ];
}

function byUuid(id: string): Condition[] {
  return [eq('_uuid', uuid(id))];
}

export class OvsdbBridge implements OvsBridgeClient {
  readonly name: string;
  private readonly client: OvsdbTransactor;
  private readonly logger: Logger;
  private readonly waitTimeoutMs: number;

  constructor(client: OvsdbTransactor, name: string, opts: OvsdbBridgeOptions = {}) {
    validateDeviceName(name, 'bridge.name');
    this.client = client;
    this.name = name;
    this.logger = (opts.logger ?? nullLogger).child({ component: 'ovs-bridge', bridge: name });
    this.waitTimeoutMs = opts.waitTimeoutMs ?? 5000;
  }

  private get cache(): OvsdbTransactor['cache'] {
    return this.client.cache;
  }

  private bridgeRow(): CachedRow | undefined {
    return this.cache.lookup('Bridge', 'name', this.name)[0];
  }

  private requireBridge(): CachedRow {
    const row = this.bridgeRow();
    if (row === undefined) {
      throw new OvsdbError('OVSDB_NOT_FOUND', `bridge ${this.name} does not exist`, {
        bridge: this.name,
        table: 'Bridge',
      });
    }
    return row;
  }

  private rootRow(): CachedRow | undefined {
    for (const row of this.cache.rows('Open_vSwitch')) return row;
    return undefined;
  }

  private requireRoot(): CachedRow {
    const row = this.rootRow();
    if (row === undefined) {
      throw new OvsdbError(
        'OVSDB_NOT_FOUND',
        'the database has no Open_vSwitch row (not initialized: run "ovs-vsctl init")',
        { table: 'Open_vSwitch' },
      );
    }
    return row;
  }

  get(): BridgeInfo | undefined {
    const row = this.bridgeRow();
    return row === undefined ? undefined : this.bridgeInfo(row);
  }

  private bridgeInfo(row: CachedRow): BridgeInfo {
    const c = row.columns;
    const portNames = uuidSet(c['ports'])
      .flatMap((u) => {
        const p = this.cache.get('Port', u);
        return p === undefined ? [] : [String(p.columns['name'])];
      })
      .sort();
    const dpType = typeof c['datapath_type'] === 'string' && c['datapath_type'] !== '' ? c['datapath_type'] : 'system';
    return {
      name: this.name,
      uuid: row.uuid,
      datapathType: dpType,
      datapathId: optionalString(c['datapath_id']),
      protocols: setElements(c['protocols']).map(String).sort(),
      failMode: optionalString(c['fail_mode']),
      otherConfig: mapToRecord(c['other_config']),
      externalIds: mapToRecord(c['external_ids']),
      portNames,
    };
  }

  async create(options: BridgeOptions = {}): Promise<BridgeInfo> {
    validateBridgeOptions(options);
    const existing = this.bridgeRow();
    if (existing === undefined) {
      const root = this.requireRoot();
      const bridge: Record<string, OvsdbValue> = { name: this.name, ports: namedUuid('localport') };
      if (options.datapathType !== undefined) bridge['datapath_type'] = options.datapathType;
      if (options.protocols !== undefined) bridge['protocols'] = ovsSet([...options.protocols]);
      if (options.failMode !== undefined) bridge['fail_mode'] = options.failMode;
      if (options.otherConfig !== undefined) bridge['other_config'] = ovsMap(options.otherConfig);
      if (options.externalIds !== undefined) bridge['external_ids'] = ovsMap(options.externalIds);
      const txn: Operation[] = [
        ops.insert('Interface', { name: this.name, type: 'internal' }, 'localiface'),
        ops.insert('Port', { name: this.name, interfaces: namedUuid('localiface') }, 'localport'),
        ops.insert('Bridge', bridge, 'bridge'),
        ops.mutate('Open_vSwitch', byUuid(root.uuid), [['bridges', 'insert', ovsSet([namedUuid('bridge')])]]),
      ];
      try {
        await this.client.transact(txn);
        this.logger.info('bridge created', { datapathType: options.datapathType });
      } catch (err) {
        // Someone created it between our read and our write: fall through to the update path.
        if (!(isOvsdbError(err, 'OVSDB_TRANSACTION_FAILED') && err.ovsdbError === 'constraint violation')) throw err;
        if (this.bridgeRow() === undefined) throw err;
        return this.create(options);
      }
      return this.requireInfo();
    }
    const c = existing.columns;
    const row: Record<string, OvsdbValue> = {};
    if (options.datapathType !== undefined) {
      const cur = typeof c['datapath_type'] === 'string' && c['datapath_type'] !== '' ? c['datapath_type'] : 'system';
      if (cur !== options.datapathType) row['datapath_type'] = options.datapathType;
    }
    if (options.protocols !== undefined && !valuesEqual(c['protocols'], ovsSet([...options.protocols]))) {
      row['protocols'] = ovsSet([...options.protocols]);
    }
    if (options.failMode !== undefined && optionalString(c['fail_mode']) !== options.failMode) {
      row['fail_mode'] = options.failMode;
    }
    const mutations: Mutation[] = [];
    const changedKeys = (
      column: string,
      want: Readonly<Record<string, string>> | undefined,
    ): Record<string, string> => {
      if (want === undefined) return {};
      const cur = mapToRecord(c[column]);
      return Object.fromEntries(Object.entries(want).filter(([k, v]) => cur[k] !== v));
    };
    mutations.push(...setKeys('other_config', changedKeys('other_config', options.otherConfig)));
    mutations.push(...setKeys('external_ids', changedKeys('external_ids', options.externalIds)));
    const txn: Operation[] = [];
    if (Object.keys(row).length > 0) txn.push(ops.update('Bridge', byUuid(existing.uuid), row));
    if (mutations.length > 0) txn.push(ops.mutate('Bridge', byUuid(existing.uuid), mutations));
    if (txn.length > 0) {
      await this.client.transact(txn);
      this.logger.info('bridge updated', { columns: [...Object.keys(row), ...mutations.map((m) => m[0])] });
    }
    return this.requireInfo();
  }

  private requireInfo(): BridgeInfo {
    return this.bridgeInfo(this.requireBridge());
  }

  async delete(): Promise<void> {
    const row = this.bridgeRow();
    const root = this.rootRow();
    if (row === undefined || root === undefined) return;
    await this.client.transact([
      ops.mutate('Open_vSwitch', byUuid(root.uuid), [['bridges', 'delete', ovsSet([uuid(row.uuid)])]]),
    ]);
    this.logger.info('bridge deleted');
  }

  async setExternalIds(ids: Readonly<Record<string, string>>): Promise<void> {
    checkStringMap(ids, 'bridge.externalIds');
    await this.setMapKeys(this.requireBridge(), 'external_ids', ids);
  }

  async removeExternalIds(keys: readonly string[]): Promise<void> {
    await this.removeMapKeys(this.requireBridge(), 'external_ids', keys);
  }

  /** Sets keys of a map column of `row`, leaving the other keys alone. */
  private async setMapKeys(row: CachedRow, column: string, values: Readonly<Record<string, string>>): Promise<void> {
    const muts = setKeys(column, values);
    if (muts.length > 0) await this.client.transact([ops.mutate(row.table, byUuid(row.uuid), muts)]);
  }

  /** Removes keys from a map column of `row`; absent keys are ignored. */
  private async removeMapKeys(row: CachedRow, column: string, keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.client.transact([ops.mutate(row.table, byUuid(row.uuid), [[column, 'delete', ovsSet([...keys])]])]);
  }

  async waitForDatapathId(timeoutMs = this.waitTimeoutMs): Promise<string> {
    const cached = this.get()?.datapathId;
    if (cached !== undefined) return cached;
    const where = [eq('name', this.name)];
    const rows = await this.waitThenSelect(
      ops.wait('Bridge', where, ['datapath_id'], '!=', [{ datapath_id: EMPTY_SET }], timeoutMs),
      ops.select('Bridge', where, ['datapath_id']),
      `bridge ${this.name}: no datapath ID after ${timeoutMs}ms (is ovs-vswitchd running?)`,
    );
    const id = rows[0] === undefined ? undefined : optionalString(rows[0]['datapath_id']);
    if (id === undefined) {
      throw new OvsdbError('OVSDB_NOT_FOUND', `bridge ${this.name} does not exist`, {
        bridge: this.name,
        table: 'Bridge',
      });
    }
    return id;
  }

  private portRowOnBridge(name: string, bridge: CachedRow | undefined): CachedRow | undefined {
    if (bridge === undefined) return undefined;
    const ports = new Set(uuidSet(bridge.columns['ports']));
    return this.cache.lookup('Port', 'name', name).find((p) => ports.has(p.uuid));
  }

  private firstInterface(port: CachedRow): CachedRow | undefined {
    const id = uuidSet(port.columns['interfaces'])[0];
    return id === undefined ? undefined : this.cache.get('Interface', id);
  }

  private portInfo(port: CachedRow): PortInfo {
    const iface = this.firstInterface(port);
    const ic: OvsdbRow = iface?.columns ?? {};
    const type = typeof ic['type'] === 'string' && ic['type'] !== '' ? ic['type'] : 'system';
    return {
      name: String(port.columns['name']),
      uuid: port.uuid,
      interfaceUuid: iface?.uuid,
      type,
      ofport: optionalNumber(ic['ofport']),
      ofportRequest: optionalNumber(ic['ofport_request']),
      options: mapToRecord(ic['options']),
      externalIds: mapToRecord(port.columns['external_ids']),
      interfaceExternalIds: mapToRecord(ic['external_ids']),
      mac: optionalString(ic['mac_in_use']) ?? optionalString(ic['mac']),
      mtu: optionalNumber(ic['mtu']),
      error: optionalString(ic['error']),
    };
  }

  getPort(name: string): PortInfo | undefined {
    const p = this.portRowOnBridge(name, this.bridgeRow());
    return p === undefined ? undefined : this.portInfo(p);
  }

  listPorts(): PortInfo[] {
    const bridge = this.bridgeRow();
    if (bridge === undefined) return [];
    return uuidSet(bridge.columns['ports'])
      .flatMap((u) => {
        const p = this.cache.get('Port', u);
        return p === undefined || p.columns['name'] === this.name ? [] : [this.portInfo(p)];
      })
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async createPort(spec: PortSpec): Promise<PortInfo> {
    const [info] = await this.createPorts([spec]);
    if (info === undefined) throw new Error('unreachable: createPorts returned no port');
    return info;
  }

  createPorts(specs: readonly PortSpec[]): Promise<PortInfo[]> {
    return this.writePorts(specs, false);
  }

  private async writePorts(specs: readonly PortSpec[], retried: boolean): Promise<PortInfo[]> {
    const seen = new Set<string>();
    specs.forEach((spec, i) => {
      validatePortSpec(spec);
      if (seen.has(spec.name)) throw new ValidationError(`ports[${i}].name`, `duplicate port name ${spec.name}`);
      seen.add(spec.name);
    });
    if (specs.length === 0) return [];
    const bridge = this.requireBridge();
    const txn: Operation[] = [];
    const newPorts: NamedUuidAtom[] = [];
    let updated = 0;
    specs.forEach((spec, i) => {
      const existing = this.portRowOnBridge(spec.name, bridge);
      if (existing !== undefined) {
        const upd = this.portUpdateOps(existing, spec);
        if (upd.length > 0) updated++;
        txn.push(...upd);
        return;
      }
      if (this.cache.lookup('Port', 'name', spec.name).length > 0) {
        throw new OvsdbError('OVSDB_CONFLICT', `port ${spec.name} already exists but not on bridge ${this.name}`, {
          bridge: this.name,
          port: spec.name,
          table: 'Port',
        });
      }
      const port: Record<string, OvsdbValue> = { name: spec.name, interfaces: namedUuid(`iface${i}`) };
      if (spec.externalIds !== undefined) port['external_ids'] = ovsMap(spec.externalIds);
      txn.push(ops.insert('Interface', interfaceRow(spec), `iface${i}`), ops.insert('Port', port, `port${i}`));
      newPorts.push(namedUuid(`port${i}`));
    });
    if (newPorts.length > 0) {
      txn.push(ops.mutate('Bridge', byUuid(bridge.uuid), [['ports', 'insert', ovsSet(newPorts)]]));
    }
    if (txn.length > 0) {
      try {
        await this.client.transact(txn);
      } catch (err) {
        // Some of the names were created concurrently: reconcile them (once).
        const raced =
          isOvsdbError(err, 'OVSDB_TRANSACTION_FAILED') &&
          err.ovsdbError === 'constraint violation' &&
          specs.some((s) => this.cache.lookup('Port', 'name', s.name).length > 0);
        if (raced && !retried) return this.writePorts(specs, true);
        throw err;
      }
      this.logger.debug('ports written', { created: newPorts.length, updated });
    }
    return specs.map((s) => this.requirePortInfo(s.name));
  }

  /** The operations that make an existing port match `spec` (none if it already does). */
  private portUpdateOps(port: CachedRow, spec: PortSpec): Operation[] {
    const txn: Operation[] = [];
    const iface = this.firstInterface(port);
    if (iface === undefined) {
      throw new OvsdbError('OVSDB_NOT_FOUND', `port ${spec.name} has no interface`, { port: spec.name, table: 'Port' });
    }
    const ic = iface.columns;
    const want = interfaceRow(spec);
    const irow: Record<string, OvsdbValue> = {};
    const wantType = ovsType(spec.type);
    if (ic['type'] !== wantType) irow['type'] = wantType;
    if (!recordsEqual(mapToRecord(ic['options']), interfaceOptions(spec)))
      irow['options'] = ovsMap(interfaceOptions(spec));
    for (const col of ['ofport_request', 'external_ids', 'mac', 'mtu_request'] as const) {
      const w = want[col];
      if (w !== undefined && !valuesEqual(ic[col], w)) irow[col] = w;
    }
    if (Object.keys(irow).length > 0) txn.push(ops.update('Interface', byUuid(iface.uuid), irow));
    if (spec.externalIds !== undefined && !recordsEqual(mapToRecord(port.columns['external_ids']), spec.externalIds)) {
      txn.push(ops.update('Port', byUuid(port.uuid), { external_ids: ovsMap(spec.externalIds) }));
    }
    return txn;
  }

  private requirePortInfo(name: string): PortInfo {
    const info = this.getPort(name);
    if (info === undefined) {
      throw new OvsdbError('OVSDB_NOT_FOUND', `port ${name} is not on bridge ${this.name}`, {
        bridge: this.name,
        port: name,
        table: 'Port',
      });
    }
    return info;
  }

  async deletePort(name: string): Promise<void> {
    await this.deletePorts([name]);
  }

  async deletePorts(names: readonly string[]): Promise<void> {
    const bridge = this.bridgeRow();
    if (bridge === undefined) return;
    const uuids = names.flatMap((n) => {
      const p = this.portRowOnBridge(n, bridge);
      return p === undefined ? [] : [uuid(p.uuid)];
    });
    if (uuids.length === 0) return;
    await this.client.transact([ops.mutate('Bridge', byUuid(bridge.uuid), [['ports', 'delete', ovsSet(uuids)]])]);
    this.logger.debug('ports deleted', { ports: names });
  }

  async waitForOFPort(name: string, timeoutMs = this.waitTimeoutMs): Promise<number> {
    const cached = this.getPort(name);
    if (cached?.ofport !== undefined && cached.ofport > 0) return cached.ofport;
    const where = [eq('name', name)];
    const rows = await this.waitThenSelect(
      ops.wait('Interface', where, ['ofport'], '!=', [{ ofport: EMPTY_SET }], timeoutMs),
      ops.select('Interface', where, ['ofport', 'error']),
      `port ${name}: no ofport assigned after ${timeoutMs}ms (is ovs-vswitchd running?)`,
      name,
    );
    const row = rows[0];
    if (row === undefined) {
      throw new OvsdbError('OVSDB_NOT_FOUND', `interface ${name} does not exist`, { port: name, table: 'Interface' });
    }
    const ofport = optionalNumber(row['ofport']);
    if (ofport === undefined || ofport < 0) {
      const why = optionalString(row['error']) ?? 'no error reported';
      throw new OvsdbError('OVSDB_PORT_FAILED', `port ${name}: ovs-vswitchd could not add the interface: ${why}`, {
        bridge: this.name,
        port: name,
        table: 'Interface',
        column: 'ofport',
        value: ofport ?? null,
      });
    }
    return ofport;
  }

  /** Runs [wait, select]; a timed-out wait becomes OVSDB_TIMEOUT with `timeoutMessage`. */
  private async waitThenSelect(
    wait: Operation,
    select: Operation,
    timeoutMessage: string,
    port?: string,
  ): Promise<readonly OvsdbRow[]> {
    try {
      const [, sel] = await this.client.transact([wait, select]);
      return sel?.rows ?? [];
    } catch (err) {
      if (isOvsdbError(err, 'OVSDB_OPERATION_FAILED') && err.opIndex === 0 && err.ovsdbError === 'timed out') {
        throw new OvsdbError(
          'OVSDB_TIMEOUT',
          timeoutMessage,
          {
            bridge: this.name,
            ...(port === undefined ? {} : { port }),
            ...('table' in wait ? { table: wait.table } : {}),
          },
          err,
        );
      }
      throw err;
    }
  }

  async setPortExternalIds(name: string, ids: Readonly<Record<string, string>>): Promise<void> {
    checkStringMap(ids, 'port.externalIds');
    const port = this.requirePortRow(name);
    await this.client.transact([ops.update('Port', byUuid(port.uuid), { external_ids: ovsMap(ids) })]);
  }

  async setInterfaceExternalIds(name: string, ids: Readonly<Record<string, string>>): Promise<void> {
    checkStringMap(ids, 'port.interfaceExternalIds');
    const iface = this.requireInterfaceRow(name);
    await this.client.transact([ops.update('Interface', byUuid(iface.uuid), { external_ids: ovsMap(ids) })]);
  }

  async setInterfaceOptions(name: string, options: Readonly<Record<string, string>>): Promise<void> {
    checkStringMap(options, 'port.options');
    const iface = this.requireInterfaceRow(name);
    await this.client.transact([ops.update('Interface', byUuid(iface.uuid), { options: ovsMap(options) })]);
  }

  private requirePortRow(name: string): CachedRow {
    const p = this.portRowOnBridge(name, this.bridgeRow());
    if (p === undefined) {
      throw new OvsdbError('OVSDB_NOT_FOUND', `port ${name} is not on bridge ${this.name}`, {
        bridge: this.name,
        port: name,
        table: 'Port',
      });
    }
    return p;
  }

  private requireInterfaceRow(name: string): CachedRow {
    const iface = this.firstInterface(this.requirePortRow(name));
    if (iface === undefined) {
      throw new OvsdbError('OVSDB_NOT_FOUND', `port ${name} has no interface`, { port: name, table: 'Interface' });
    }
    return iface;
  }

  getOvsOtherConfig(): Readonly<Record<string, string>> {
    return mapToRecord(this.rootRow()?.columns['other_config']);
  }

  async setOvsOtherConfig(config: Readonly<Record<string, string>>): Promise<void> {
    checkStringMap(config, 'otherConfig');
    await this.setMapKeys(this.requireRoot(), 'other_config', config);
  }

  async removeOvsOtherConfig(keys: readonly string[]): Promise<void> {
    await this.removeMapKeys(this.requireRoot(), 'other_config', keys);
  }

  getOvsVersion(): string | undefined {
    return optionalString(this.rootRow()?.columns['ovs_version']);
  }
}
