/**
 * An in-memory OvsBridgeClient for unit tests of components built on the bridge client (agent
 * start-up, CNI server, lab). It follows the real client's contract: idempotent creates and
 * deletes, in-place updates, ofport_request honoured, OVSDB_NOT_FOUND / OVSDB_CONFLICT /
 * OVSDB_PORT_FAILED where the real one raises them, and the same spec validation. Every write is
 * recorded in `calls` so tests can assert what a component asked for.
 */
import {
  type BridgeInfo,
  type BridgeOptions,
  interfaceOptions,
  OFPORT_LOCAL,
  type OvsBridgeClient,
  type PortInfo,
  type PortSpec,
  validateBridgeOptions,
  validateDeviceName,
  validatePortSpec,
} from '../../src/common/ovs/ovsdb/bridge.ts';
import type { OfportEvent, OfportEvents } from '../../src/common/agent/cniserver/ofport-events.ts';
import { OvsdbError } from '../../src/common/ovs/ovsdb/errors.ts';
import { ValidationError } from '../../src/common/util/errors.ts';

/** State shared by the fake bridges of one fake OVS instance (port names are unique across bridges). */
export class FakeOvs {
  readonly bridges = new Map<string, { info: BridgeInfo; ports: Map<string, PortInfo> }>();
  otherConfig: Record<string, string> = {};
  version: string | undefined = '3.1.0';
  /** Names of ports whose interface ovs-vswitchd "cannot open" (ofport -1). */
  readonly failing = new Set<string>();
  /** When false, no ofport is ever assigned (as with ovs-vswitchd down). */
  vswitchdRunning = true;
  /**
   * 'async': internal ports get no ofport when created, only on {@link assignPendingOfport} (the
   * Windows case: the vNIC appears once HNS attached the endpoint).
   */
  ofportAssignment: 'immediate' | 'async' = 'immediate';
  private uuidSeq = 0;
  private readonly ofportListeners = new Set<(e: OfportEvent) => void>();

  /** Ofport changes, as ovsdbOfportEvents reports them from the monitor cache. */
  readonly ofportEvents: OfportEvents = {
    subscribe: (listener) => {
      this.ofportListeners.add(listener);
      return () => this.ofportListeners.delete(listener);
    },
  };

  emitOfport(port: string, ofport: number | undefined): void {
    for (const l of [...this.ofportListeners]) l({ port, ofport });
  }

  /** Gives a port still waiting for its ofport the next free one (or -1 if failing) and reports it. */
  assignPendingOfport(name: string): number {
    for (const s of this.bridges.values()) {
      const p = s.ports.get(name);
      if (p === undefined) continue;
      const used = new Set([...s.ports.values()].map((x) => x.ofport));
      let n = 1;
      while (used.has(n) || n === OFPORT_LOCAL) n++;
      const ofport = this.failing.has(name) ? -1 : n;
      s.ports.set(name, { ...p, ofport });
      this.emitOfport(name, ofport);
      return ofport;
    }
    throw new Error(`no port ${name}`);
  }

  nextUuid(): string {
    return `00000000-0000-4000-8000-${(++this.uuidSeq).toString(16).padStart(12, '0')}`;
  }

  bridge(name: string): FakeOvsBridge {
    return new FakeOvsBridge(this, name);
  }
}

export class FakeOvsBridge implements OvsBridgeClient {
  readonly name: string;
  readonly calls: string[] = [];
  private readonly ovs: FakeOvs;

  constructor(ovs: FakeOvs, name: string) {
    validateDeviceName(name, 'bridge.name');
    this.ovs = ovs;
    this.name = name;
  }

  private notFound(what: string): OvsdbError {
    return new OvsdbError('OVSDB_NOT_FOUND', what, { bridge: this.name });
  }

  private state(): { info: BridgeInfo; ports: Map<string, PortInfo> } {
    const s = this.ovs.bridges.get(this.name);
    if (s === undefined) throw this.notFound(`bridge ${this.name} does not exist`);
    return s;
  }

  private withPortNames(s: { info: BridgeInfo; ports: Map<string, PortInfo> }): BridgeInfo {
    return { ...s.info, portNames: [this.name, ...s.ports.keys()].sort() };
  }

  create(options: BridgeOptions = {}): Promise<BridgeInfo> {
    validateBridgeOptions(options);
    this.calls.push(`create ${JSON.stringify(options)}`);
    const cur = this.ovs.bridges.get(this.name);
    const base: BridgeInfo = cur?.info ?? {
      name: this.name,
      uuid: this.ovs.nextUuid(),
      datapathType: 'system',
      datapathId: '0000' + Buffer.from(this.name).toString('hex').padEnd(12, '0').slice(0, 12),
      protocols: [],
      failMode: undefined,
      otherConfig: {},
      externalIds: {},
      portNames: [],
    };
    const info: BridgeInfo = {
      ...base,
      datapathType: options.datapathType ?? base.datapathType,
      protocols: options.protocols === undefined ? base.protocols : [...options.protocols].sort(),
      failMode: options.failMode ?? base.failMode,
      otherConfig: { ...base.otherConfig, ...options.otherConfig },
      externalIds: { ...base.externalIds, ...options.externalIds },
    };
    const state = { info, ports: cur?.ports ?? new Map<string, PortInfo>() };
    this.ovs.bridges.set(this.name, state);
    return Promise.resolve(this.withPortNames(state));
  }

  delete(): Promise<void> {
    this.calls.push('delete');
    this.ovs.bridges.delete(this.name);
    return Promise.resolve();
  }

  get(): BridgeInfo | undefined {
    const s = this.ovs.bridges.get(this.name);
    return s === undefined ? undefined : this.withPortNames(s);
  }

  setExternalIds(ids: Readonly<Record<string, string>>): Promise<void> {
    const s = this.state();
    this.calls.push(`setExternalIds ${JSON.stringify(ids)}`);
    s.info = { ...s.info, externalIds: { ...s.info.externalIds, ...ids } };
    return Promise.resolve();
  }

  removeExternalIds(keys: readonly string[]): Promise<void> {
    const s = this.state();
    this.calls.push(`removeExternalIds ${keys.join(',')}`);
    const drop = new Set(keys);
    const ids = Object.fromEntries(Object.entries(s.info.externalIds).filter(([k]) => !drop.has(k)));
    s.info = { ...s.info, externalIds: ids };
    return Promise.resolve();
  }

  waitForDatapathId(timeoutMs = 5000): Promise<string> {
    const s = this.state();
    if (!this.ovs.vswitchdRunning || s.info.datapathId === undefined) {
      return Promise.reject(
        new OvsdbError('OVSDB_TIMEOUT', `bridge ${this.name}: no datapath ID after ${timeoutMs}ms`),
      );
    }
    return Promise.resolve(s.info.datapathId);
  }

  private portBridge(name: string): string | undefined {
    for (const [br, s] of this.ovs.bridges) if (s.ports.has(name)) return br;
    return undefined;
  }

  createPort(spec: PortSpec): Promise<PortInfo> {
    return this.createPorts([spec]).then((infos) => {
      const info = infos[0];
      if (info === undefined) throw new Error('unreachable');
      return info;
    });
  }

  createPorts(specs: readonly PortSpec[]): Promise<PortInfo[]> {
    try {
      const names = new Set<string>();
      specs.forEach((spec, i) => {
        validatePortSpec(spec);
        if (names.has(spec.name)) throw new ValidationError(`ports[${i}].name`, `duplicate port name ${spec.name}`);
        names.add(spec.name);
      });
      const s = this.state();
      for (const spec of specs) {
        const owner = this.portBridge(spec.name);
        if (owner !== undefined && owner !== this.name) {
          throw new OvsdbError('OVSDB_CONFLICT', `port ${spec.name} already exists but not on bridge ${this.name}`, {
            bridge: this.name,
            port: spec.name,
          });
        }
      }
      const out = specs.map((spec) => {
        this.calls.push(`createPort ${spec.name} ${spec.type}`);
        const cur = s.ports.get(spec.name);
        const info: PortInfo = {
          name: spec.name,
          uuid: cur?.uuid ?? this.ovs.nextUuid(),
          interfaceUuid: cur?.interfaceUuid ?? this.ovs.nextUuid(),
          type: spec.type,
          ofport: !this.ovs.vswitchdRunning
            ? undefined
            : this.ovs.ofportAssignment === 'async' && spec.type === 'internal'
              ? cur?.ofport
              : this.assignOfport(s.ports, spec, cur),
          ofportRequest: spec.ofportRequest ?? cur?.ofportRequest,
          options: interfaceOptions(spec),
          externalIds: spec.externalIds ?? cur?.externalIds ?? {},
          interfaceExternalIds: spec.interfaceExternalIds ?? cur?.interfaceExternalIds ?? {},
          mac: spec.mac?.toLowerCase() ?? cur?.mac,
          mtu: spec.mtuRequest ?? cur?.mtu,
          error: this.ovs.failing.has(spec.name)
            ? `could not open network device ${spec.name} (No such device)`
            : undefined,
        };
        s.ports.set(spec.name, info);
        if (info.ofport !== cur?.ofport) this.ovs.emitOfport(spec.name, info.ofport);
        return info;
      });
      return Promise.resolve(out);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private assignOfport(ports: Map<string, PortInfo>, spec: PortSpec, cur: PortInfo | undefined): number {
    if (this.ovs.failing.has(spec.name)) return -1;
    const used = new Set([...ports.values()].filter((p) => p.name !== spec.name).map((p) => p.ofport));
    if (spec.ofportRequest !== undefined && !used.has(spec.ofportRequest)) return spec.ofportRequest;
    if (cur?.ofport !== undefined && cur.ofport > 0) return cur.ofport;
    let n = 1;
    while (used.has(n) || n === OFPORT_LOCAL) n++;
    return n;
  }

  deletePort(name: string): Promise<void> {
    return this.deletePorts([name]);
  }

  deletePorts(names: readonly string[]): Promise<void> {
    this.calls.push(`deletePorts ${names.join(',')}`);
    const s = this.ovs.bridges.get(this.name);
    for (const n of names) if (s?.ports.delete(n) === true) this.ovs.emitOfport(n, undefined);
    return Promise.resolve();
  }

  getPort(name: string): PortInfo | undefined {
    return this.ovs.bridges.get(this.name)?.ports.get(name);
  }

  listPorts(): PortInfo[] {
    const s = this.ovs.bridges.get(this.name);
    return s === undefined
      ? []
      : [...s.ports.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  waitForOFPort(name: string, timeoutMs = 5000): Promise<number> {
    const p = this.getPort(name);
    if (p === undefined)
      return Promise.reject(new OvsdbError('OVSDB_NOT_FOUND', `interface ${name} does not exist`, { port: name }));
    if (p.ofport === undefined) {
      return Promise.reject(
        new OvsdbError('OVSDB_TIMEOUT', `port ${name}: no ofport assigned after ${timeoutMs}ms`, { port: name }),
      );
    }
    if (p.ofport < 0) {
      return Promise.reject(
        new OvsdbError(
          'OVSDB_PORT_FAILED',
          `port ${name}: ovs-vswitchd could not add the interface: ${p.error ?? ''}`,
          {
            port: name,
          },
        ),
      );
    }
    return Promise.resolve(p.ofport);
  }

  private update(name: string, patch: Partial<PortInfo>, what: string): Promise<void> {
    const s = this.ovs.bridges.get(this.name);
    const p = s?.ports.get(name);
    if (s === undefined || p === undefined) {
      return Promise.reject(this.notFound(`port ${name} is not on bridge ${this.name}`));
    }
    this.calls.push(`${what} ${name}`);
    s.ports.set(name, { ...p, ...patch });
    return Promise.resolve();
  }

  setPortExternalIds(name: string, ids: Readonly<Record<string, string>>): Promise<void> {
    return this.update(name, { externalIds: { ...ids } }, 'setPortExternalIds');
  }

  setInterfaceExternalIds(name: string, ids: Readonly<Record<string, string>>): Promise<void> {
    return this.update(name, { interfaceExternalIds: { ...ids } }, 'setInterfaceExternalIds');
  }

  setInterfaceOptions(name: string, options: Readonly<Record<string, string>>): Promise<void> {
    return this.update(name, { options: { ...options } }, 'setInterfaceOptions');
  }

  getOvsOtherConfig(): Readonly<Record<string, string>> {
    return { ...this.ovs.otherConfig };
  }

  setOvsOtherConfig(config: Readonly<Record<string, string>>): Promise<void> {
    this.calls.push(`setOvsOtherConfig ${JSON.stringify(config)}`);
    this.ovs.otherConfig = { ...this.ovs.otherConfig, ...config };
    return Promise.resolve();
  }

  removeOvsOtherConfig(keys: readonly string[]): Promise<void> {
    this.calls.push(`removeOvsOtherConfig ${keys.join(',')}`);
    const drop = new Set(keys);
    this.ovs.otherConfig = Object.fromEntries(Object.entries(this.ovs.otherConfig).filter(([k]) => !drop.has(k)));
    return Promise.resolve();
  }

  getOvsVersion(): string | undefined {
    return this.ovs.version;
  }
}
