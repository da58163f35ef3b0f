/**
 * The CNI server (Antrea's pkg/agent/cniserver): ADD, DEL, CHECK, GC and STATUS for Pods on this
 * Node, independent of the transport (grpc.ts serves it on the CNI socket) and of the OS (the
 * PlatformStrategy's PodInterfaceConfigurator makes the Pod's link).
 *
 * ADD: validate → wait until the Node network is ready (else TRY_AGAIN_LATER) → per-container lock →
 * journal the intent → IPAM (host-local) while the Pod interface is made → OVS port with the
 * container's external_ids → ofport → interface store → commit the journal → answer; gratuitous
 * ARP follows in the background. Where ovs-vswitchd assigns ofports at once (Linux), the server
 * chooses the Pod's ofport (ofport_request, see ofport-allocator.ts) and MAC itself, so the Pod's
 * flows are installed as soon as IPAM answered, while the interface and the port are made (the
 * port as soon as IPAM answered and the configurator reported the host end up); a port
 * or interface that ended up with another ofport or MAC gets its flows reinstalled before ADD
 * answers, so the answer still means "interface configured and flows installed". Where the ofport
 * arrives asynchronously (Windows), ADD answers without it and {@link CniServer.ofportChanged}
 * installs the flows when it comes. Any failure rolls back everything done so far (flows
 * included, once their install settled). A repeated ADD for an interface that is complete and
 * healthy returns the same result; a partial one is cleaned first.
 *
 * DEL: idempotent, local only (interface store, OVSDB, the host, host-local): never the controller
 * or the Kubernetes API. Flows go before the OVS port (a freed ofport may be reused at once).
 *
 * Restart: {@link CniServer.reconcile} rolls back journaled ADDs that never answered, removes ports
 * whose interface is gone, and releases host-local reservations no interface uses; it never
 * releases an IP an interface in the store still holds.
 *
 * CNI chaining (trafficEncapMode networkPolicyOnly): antrea follows a primary plugin; ADD needs
 * prevResult, attaches the primary's interface (chaining.ts) and answers prevResult unchanged; DEL
 * detaches it; IPAM is the primary's, so no IPAM call, reservation GC or journal is made.
 *
 * Errors are CniError everywhere inside; {@link CniServer.handle} turns them into the response's
 * Error exactly once.
 */
import { type CniCmdArgs, type CniCmdRequest, type CniCmdResponse, type CniMethod } from '../../apis/cni/proto.ts';
import {
  CniError,
  compareCniVersions,
  type CniIpConfig,
  type CniResult,
  type CniRoute,
  formatCniResult,
  k8sArgs,
  type K8sArgs,
  type NetworkConfig,
  parseCniArgs,
  parseCniResult,
  parseNetworkConfig,
  validateContainerId,
  validateIfName,
} from '../../apis/cni/spec.ts';
import { isAntreaError } from '../../util/errors.ts';
import { PodInterfaceError } from '../../host/errors.ts';
import { podHostInterfaceName, type PodInterfaceConfigurator } from '../../host/pod-interfaces.ts';
import type { OvsBridgeClient } from '../../ovs/ovsdb/bridge.ts';
import { type Clock, systemClock } from '../../util/clock.ts';
import { type CrashPoints, noCrashPoints } from '../../util/crash.ts';
import { errorMessage, serializeError } from '../../util/errors.ts';
import { canonicalIp, cidrContains, cidrIp, ipFamily, randomMac } from '../../util/ip.ts';
import { Latch } from '../../util/latch.ts';
import { KeyedMutex, RwLock } from '../../util/locks.ts';
import { type Logger, nullLogger } from '../../util/log.ts';
import type { AgentConfig } from '../config.ts';
import {
  type ContainerInfo,
  containerKey,
  containerPortSpec,
  interfaceKey,
  EXT,
  type InterfaceConfig,
  type InterfaceStore,
} from '../interfacestore.ts';
import type { IpamDriver, IpamRequest, Reservation } from '../ipam/host-local.ts';
import type { PendingAdd, PendingAddJournal } from './journal.ts';
import type { OfportEvent, OfportEvents } from './ofport-events.ts';
import { ChainedPods } from './chaining.ts';
import { OfportAllocator } from './ofport-allocator.ts';

/** The CNI type the configuration must name, and the only IPAM type served. */
export const ANTREA_CNI_TYPE = 'antrea';
export const SUPPORTED_IPAM_TYPES = ['host-local'] as const;

/** The crash points of ADD, in order (tests kill the agent at each). */
export const CNI_ADD_CRASH_POINTS = [
  'cni-add-journaled',
  'cni-add-ipam-done',
  'cni-add-interface-done',
  'cni-add-port-done',
  'cni-add-flows-done',
  'cni-add-committed',
] as const;

/** What the Node network looks like once the agent has set it up. */
export interface NodeNetworkContext {
  readonly nodeName: string;
  readonly podCIDRs: readonly string[];
  /**
   * The gateway address of each Pod CIDR (first address), same order; in networkPolicyOnly mode the
   * gateway's own addresses (the Node's transport addresses), which Pods never use as next hop.
   */
  readonly gatewayIPs: readonly string[];
  /** The MTU Pods get unless the network configuration sets one. */
  readonly mtu: number;
}

/** A Pod interface with everything its flows need. */
export type PodFlowTarget = InterfaceConfig & { readonly container: ContainerInfo; readonly ofport: number };

/**
 * The Pod's flows (classifier, spoofguard, ARP, L2/L3 forwarding), from the OpenFlow pipeline.
 * Both methods are idempotent; uninstall of an unknown port does nothing.
 */
export interface PodFlowClient {
  installPodFlows(iface: PodFlowTarget): Promise<void>;
  uninstallPodFlows(portName: string): Promise<void>;
}

/** Health the STATUS verb reports. */
export type DatapathHealth = 'ok' | 'ovsdb-down' | 'datapath-down';

export interface CniServerOptions {
  readonly config: AgentConfig;
  readonly bridge: OvsBridgeClient;
  readonly podInterfaces: PodInterfaceConfigurator;
  readonly ipam: IpamDriver;
  readonly store: InterfaceStore;
  readonly journal: PendingAddJournal;
  /** Absent until the OpenFlow pipeline is wired: Pods are then forwarded by the bridge's default flows. */
  readonly podFlows?: PodFlowClient;
  readonly health?: () => DatapathHealth;
  readonly crashPoints?: CrashPoints;
  readonly logger?: Logger;
  readonly clock?: Clock;
}

/** One parsed request. */
interface Request {
  readonly method: CniMethod;
  readonly args: CniCmdArgs;
  readonly network: NetworkConfig;
  readonly k8s: K8sArgs;
  readonly rawConfig: string;
}

export interface ReconcileReport {
  readonly rolledBack: readonly string[];
  readonly removedInterfaces: readonly string[];
  readonly releasedIps: readonly string[];
  readonly errors: readonly string[];
}

/** Resolves true once `latch` opens, false after `timeoutMs`. */
async function waitLatch(latch: Latch, clock: Clock, timeoutMs: number): Promise<boolean> {
  if (latch.opened) return true;
  const ac = new AbortController();
  try {
    return await Promise.race([
      latch.wait(ac.signal).then(() => true),
      clock.sleep(timeoutMs, ac.signal).then(() => false),
    ]);
  } finally {
    ac.abort();
  }
}

function ipsOf(result: CniResult): string[] {
  return result.ips.map((i) => canonicalIp(cidrIp(i.address)));
}

export class CniServer {
  private readonly o: CniServerOptions;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly crash: CrashPoints;
  private readonly containerLock = new KeyedMutex();
  private readonly rw = new RwLock();
  private readonly storeReady = new Latch();
  private readonly networkReadyLatch = new Latch();
  private ctx: NodeNetworkContext | undefined;
  private podFlows: PodFlowClient | undefined;
  private readonly background = new Set<Promise<void>>();
  private readonly ofports: OfportAllocator;
  /** CNI chaining mode (networkPolicyOnly); `chained` is undefined when the platform cannot chain. */
  private readonly chainingMode: boolean;
  private readonly chained: ChainedPods | undefined;

  constructor(opts: CniServerOptions) {
    this.o = opts;
    this.ofports = new OfportAllocator({
      inUse: () => opts.bridge.listPorts().flatMap((p) => [p.ofport, p.ofportRequest]),
    });
    this.logger = (opts.logger ?? nullLogger).child({ component: 'cniserver' });
    this.clock = opts.clock ?? systemClock;
    this.crash = opts.crashPoints ?? noCrashPoints;
    this.podFlows = opts.podFlows;
    this.chainingMode = opts.config.trafficEncapMode === 'networkPolicyOnly';
    const chaining = opts.podInterfaces.chaining;
    this.chained =
      this.chainingMode && chaining !== undefined
        ? new ChainedPods({
            bridge: opts.bridge,
            store: opts.store,
            chaining,
            ovsPortType: opts.podInterfaces.ovsPortType,
            gateway: opts.config.hostGateway,
            disableTxChecksumOffload: opts.config.disableTXChecksumOffload || opts.config.ovsDatapathType === 'netdev',
            podFlows: () => this.podFlows,
            logger: this.logger,
          })
        : undefined;
  }

  /** Attaches the Pod flow client once the OpenFlow pipeline is up (before requests are served). */
  setPodFlows(client: PodFlowClient): void {
    this.podFlows = client;
  }

  /** The interface store and Node context are in place: DEL, CHECK and GC may run. */
  setStoreReady(ctx: NodeNetworkContext): void {
    this.ctx = ctx;
    this.storeReady.open();
  }

  /** The Node network (gateway, pipeline) is ready: ADD may run. */
  setNetworkReady(): void {
    this.networkReadyLatch.open();
  }

  get networkReady(): boolean {
    return this.networkReadyLatch.opened;
  }

  /** Waits for the background work (gratuitous ARPs) started by earlier ADDs. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.background]);
  }

  // ---- the boundary ----------------------------------------------------------------------------

  /** Serves one request. Never throws: failures become the response's error. */
  async handle(method: CniMethod, req: CniCmdRequest): Promise<CniCmdResponse> {
    const started = this.clock.monotonic();
    const log = this.logger.child({ method, containerId: req.cniArgs.containerId, ifname: req.cniArgs.ifname });
    try {
      const parsed = this.parse(method, req.cniArgs);
      const result = await this.dispatch(parsed);
      log.debug('done', { ms: Math.round(this.clock.monotonic() - started) });
      return { cniResult: result, error: undefined };
    } catch (err) {
      const e = toCniError(err);
      log.warn('failed', { code: e.code, err: serializeError(err), ms: Math.round(this.clock.monotonic() - started) });
      return { cniResult: new Uint8Array(), error: { code: e.cniCode, message: e.message, details: [] } };
    }
  }

  private parse(method: CniMethod, args: CniCmdArgs): Request {
    const rawConfig = Buffer.from(args.networkConfiguration).toString('utf8');
    const network = parseNetworkConfig(rawConfig);
    const perContainer = method === 'CmdAdd' || method === 'CmdDel' || method === 'CmdCheck';
    if (perContainer) {
      validateContainerId(args.containerId);
      validateIfName(args.ifname);
      if (network.type !== ANTREA_CNI_TYPE) {
        throw new CniError(
          'UNSUPPORTED_FIELD',
          `Unsupported CNI type "${network.type}" (expected "${ANTREA_CNI_TYPE}")`,
        );
      }
      const ipamType = network.ipam?.type ?? '';
      // Chained after a primary plugin, IPAM is the primary's: no ipam section is needed.
      if (!this.chainingMode && !(SUPPORTED_IPAM_TYPES as readonly string[]).includes(ipamType)) {
        throw new CniError('UNSUPPORTED_FIELD', `Network configuration does not support ipam/type=${ipamType}`);
      }
      if ((method === 'CmdAdd' || method === 'CmdCheck') && args.netns === '') {
        throw new CniError('INVALID_ENVIRONMENT_VARIABLES', 'required env variables [CNI_NETNS] missing');
      }
    }
    return { method, args, network, k8s: k8sArgs(parseCniArgs(args.args)), rawConfig };
  }

  private async dispatch(r: Request): Promise<Uint8Array> {
    switch (r.method) {
      case 'CmdAdd':
        return this.cmdAdd(r);
      case 'CmdDel':
        await this.cmdDel(r);
        return new Uint8Array();
      case 'CmdCheck':
        await this.cmdCheck(r);
        return new Uint8Array();
      case 'CmdGC':
        await this.cmdGc(r);
        return new Uint8Array();
      case 'CmdStatus':
        await this.cmdStatus(r);
        return new Uint8Array();
    }
  }

  private async waitReady(latch: Latch): Promise<NodeNetworkContext> {
    if (!(await waitLatch(latch, this.clock, this.o.config.podNetworkWaitTimeoutMs)) || this.ctx === undefined) {
      throw new CniError('TRY_AGAIN_LATER', 'Server is busy, please retry later (the agent is not ready yet)');
    }
    return this.ctx;
  }

  /** The Pod's namespace as the agent reaches it. */
  private agentNetns(netns: string): string {
    return netns === '' ? '' : this.o.config.hostProcPathPrefix + netns;
  }

  private ipamRequest(r: Pick<Request, 'args' | 'network'>, ctx: NodeNetworkContext): IpamRequest {
    return {
      containerId: r.args.containerId,
      ifname: r.args.ifname,
      netns: r.args.netns,
      args: r.args.args,
      cniPath: r.args.path,
      network: r.network,
      podCIDRs: ctx.podCIDRs,
    };
  }

  // ---- ADD -------------------------------------------------------------------------------------

  private async cmdAdd(r: Request): Promise<Uint8Array> {
    const ctx = await this.waitReady(this.networkReadyLatch);
    if (this.chainingMode) {
      return this.containerLock.run(r.args.containerId, () => this.rw.shared(() => this.chainedAdd(r)));
    }
    return this.containerLock.run(r.args.containerId, () => this.rw.shared(() => this.add(r, ctx)));
  }

  /**
   * ADD chained after a primary plugin: prevResult is required (UNSUPPORTED_FIELD naming it), the
   * primary's interface is attached (a stored one for the container is detached first), and the
   * answer is prevResult unchanged.
   */
  private async chainedAdd(r: Request): Promise<Uint8Array> {
    if (this.chained === undefined) {
      throw new CniError('CONFIG_INTERFACE_FAILURE', 'this platform does not support CNI chaining (networkPolicyOnly)');
    }
    const raw = r.network.prevResult;
    if (raw === undefined || raw === null) {
      throw new CniError(
        'UNSUPPORTED_FIELD',
        'prevResult is required: with trafficEncapMode networkPolicyOnly antrea runs chained after the primary CNI plugin (list it after that plugin in the conflist)',
      );
    }
    const prevResult = parseCniResult(raw, 'prevResult');
    const netns = this.agentNetns(r.args.netns);
    if (!(await this.o.podInterfaces.netnsExists(netns))) {
      throw new CniError('INVALID_ENVIRONMENT_VARIABLES', `CNI_NETNS: network namespace ${netns} does not exist`);
    }
    const existing = this.o.store.byContainer(r.args.containerId, r.args.ifname);
    if (existing !== undefined) {
      this.logger.info('ADD for an attached chained Pod: attaching it again', { containerId: r.args.containerId });
      await this.removeInterface(existing);
    }
    await this.chained.add({
      containerId: r.args.containerId,
      ifname: r.args.ifname,
      netns: r.args.netns,
      agentNetns: netns,
      podName: r.k8s.podName,
      podNamespace: r.k8s.podNamespace,
      prevResult,
    });
    // The spec: pass prevResult through (it is already in the configuration's version).
    return Buffer.from(JSON.stringify(raw));
  }

  /** The result for the request's version, as bytes. */
  private encodeResult(result: CniResult, r: Request): Uint8Array {
    return Buffer.from(JSON.stringify(formatCniResult(result, r.network.cniVersion)));
  }

  private gatewayFor(ip: string, ctx: NodeNetworkContext): string | undefined {
    const i = ctx.podCIDRs.findIndex((c) => cidrContains(c, ip));
    return i < 0 ? undefined : ctx.gatewayIPs[i];
  }

  /**
   * Antrea's updateResultIfaceConfig: interfaces [host, container], every IP on interface 1 with a
   * gateway, a default route per family via the Node gateway, DNS from the configuration.
   */
  private completeResult(
    ipam: CniResult,
    r: Request,
    ctx: NodeNetworkContext,
    host: { name: string; mac: string },
    container: { name: string; mac: string },
    mtu: number,
  ): CniResult {
    const ips: CniIpConfig[] = ipam.ips.map((ip) => {
      const gw = ip.gateway ?? this.gatewayFor(cidrIp(ip.address), ctx);
      return { address: ip.address, ...(gw === undefined ? {} : { gateway: gw }), interface: 1 };
    });
    const routes: CniRoute[] = [...ipam.routes];
    for (const ip of ips) {
      const fam = ipFamily(cidrIp(ip.address));
      const any = fam === 6 ? '::/0' : '0.0.0.0/0';
      if (ip.gateway !== undefined && !routes.some((x) => x.dst === any)) routes.push({ dst: any, gw: ip.gateway });
    }
    const dns = Object.keys(r.network.dns).length > 0 ? r.network.dns : ipam.dns;
    return {
      interfaces: [
        { name: host.name, mac: host.mac, mtu },
        { name: container.name, mac: container.mac, mtu, sandbox: r.args.netns },
      ],
      ips,
      routes,
      dns,
    };
  }

  /** Routes to configure inside the Pod: the result's, each with a gateway of its family. */
  private podRoutes(result: CniResult): CniRoute[] {
    return result.routes.map((route) => {
      if (route.gw !== undefined) return route;
      const fam = ipFamily(cidrIp(route.dst));
      const gw = result.ips.find((i) => ipFamily(cidrIp(i.address)) === fam)?.gateway;
      return gw === undefined ? route : { ...route, gw };
    });
  }

  /** Whether a stored Pod interface is complete and usable (host side present, ofport assigned). */
  private async healthy(i: InterfaceConfig): Promise<boolean> {
    if (this.o.podInterfaces.ofportAssignment === 'immediate' && (i.ofport === undefined || i.ofport <= 0)) {
      return false;
    }
    const port = this.o.bridge.getPort(i.name);
    if (port === undefined || port.externalIds[EXT.containerId] !== i.container?.containerId) return false;
    return (await this.o.podInterfaces.hostInterface(i.name)) !== undefined;
  }

  private async add(r: Request, ctx: NodeNetworkContext): Promise<Uint8Array> {
    const entered = this.clock.monotonic();
    const { containerId, ifname } = r.args;
    const netns = this.agentNetns(r.args.netns);
    if (!(await this.o.podInterfaces.netnsExists(netns))) {
      throw new CniError('INVALID_ENVIRONMENT_VARIABLES', `CNI_NETNS: network namespace ${netns} does not exist`);
    }
    const mtu = r.network.mtu ?? ctx.mtu;

    // A repeated ADD: converge on a healthy interface, clean a partial one.
    const existing = this.o.store.byContainer(containerId, ifname);
    if (existing !== undefined) {
      if (existing.container?.netns === r.args.netns && (await this.healthy(existing))) {
        this.logger.info('ADD for an existing interface: returning its configuration', { containerId, ifname });
        const hostMac = (await this.o.podInterfaces.hostInterface(existing.name))?.mac ?? '';
        return this.encodeResult(this.resultFromStore(existing, r, ctx, mtu, hostMac), r);
      }
      this.logger.warn('ADD found a partial interface: removing it first', { containerId, ifname });
      await this.removeInterface(existing);
      await this.o.ipam.del(this.ipamRequest(r, ctx));
    }
    const stale = this.o.journal.get(containerId, ifname);
    if (stale !== undefined) await this.rollbackPending(stale, ctx);

    const hostName = podHostInterfaceName(r.k8s.podName, containerId, ifname);
    const owner = this.o.bridge.getPort(hostName)?.externalIds[EXT.containerId];
    if (owner !== undefined && owner !== containerId) {
      throw new CniError(
        'CONFIG_INTERFACE_FAILURE',
        `host interface name ${hostName} is already used by container ${owner}`,
      );
    }
    const pending: PendingAdd = {
      containerId,
      ifname,
      netns: r.args.netns,
      hostInterfaceName: hostName,
      podName: r.k8s.podName,
      podNamespace: r.k8s.podNamespace,
      args: r.args.args,
      cniPath: r.args.path,
      networkConfig: r.rawConfig,
      startedAt: this.clock.now(),
    };
    this.o.journal.begin(pending);
    this.crash.hit('cni-add-journaled');

    const ipamReq = this.ipamRequest(r, ctx);
    const done = { ipam: false, link: false, port: false, flows: false };
    // Where the time goes (logged with the result): each step's own duration; the link, the
    // port and the flows overlap with IPAM and with each other.
    const steps: Record<string, number> = {};
    const ms = (since: number): number => Math.round((this.clock.monotonic() - since) * 10) / 10;
    steps['prepareMs'] = ms(entered);
    let mark = this.clock.monotonic();
    const step = (name: string): void => {
      steps[name] = ms(mark);
      mark = this.clock.monotonic();
    };
    const ipamStarted = mark;
    // IPAM runs while the Pod's link is made (the link waits for the addresses only at the end).
    const ipamDone = this.o.ipam.add(ipamReq).then((res) => {
      done.ipam = true;
      steps['ipamMs'] = ms(ipamStarted);
      this.crash.hit('cni-add-ipam-done');
      if (res.ips.length === 0) throw new CniError('IPAM_FAILURE', 'host-local returned no IP address');
      return res;
    });
    const addressing = ipamDone.then((res) => {
      const draft = this.completeResult(res, r, ctx, { name: hostName, mac: '' }, { name: ifname, mac: '' }, mtu);
      return { ips: draft.ips, routes: this.podRoutes(draft), dns: draft.dns };
    });
    addressing.catch(() => undefined); // observed below; never an unhandled rejection
    const container: ContainerInfo = {
      containerId,
      podName: r.k8s.podName,
      podNamespace: r.k8s.podNamespace,
      ifDev: ifname,
      netns: r.args.netns,
    };
    // Where ovs-vswitchd assigns the ofport at once (Linux), the agent chooses it (ofport_request)
    // and the container MAC, so the Pod's flows are installed while the link and the port are
    // made; a port that got another number (or a link another MAC) gets its flows corrected
    // before ADD answers.
    const immediate = this.o.podInterfaces.ofportAssignment === 'immediate';
    const podFlows = this.podFlows;
    let ofportRequest: number | undefined;
    let earlyFlows: Promise<PodFlowTarget> | undefined;
    let earlyPort: Promise<number> | undefined;
    const portType = this.o.podInterfaces.ovsPortType;
    try {
      ofportRequest = immediate ? this.ofports.allocate() : undefined;
      const containerMac = immediate ? randomMac() : undefined;
      if (podFlows !== undefined && ofportRequest !== undefined && containerMac !== undefined) {
        const target = {
          type: 'container',
          name: hostName,
          ofport: ofportRequest,
          mac: containerMac,
          container,
        } as const;
        done.flows = true; // uninstalling flows that were never installed is a no-op
        earlyFlows = ipamDone.then(async (res) => {
          const started = this.clock.monotonic();
          const t: PodFlowTarget = { ...target, ips: ipsOf(res) };
          await podFlows.installPodFlows(t);
          steps['flowsMs'] = ms(started);
          return t;
        });
        earlyFlows.catch(() => undefined); // observed below
      }
      // Likewise the OVS port: made, with the Pod's IPs in its external ids, as soon as IPAM has
      // answered and the host end is up, while the Pod's addresses and routes are applied.
      const host = Promise.withResolvers<undefined>();
      host.promise.catch(() => undefined); // a failed configure is reported below
      if (ofportRequest !== undefined && containerMac !== undefined) {
        const requested = ofportRequest;
        earlyPort = Promise.all([host.promise, ipamDone]).then(async ([, res]) => {
          const started = this.clock.monotonic();
          const draft = { type: 'container', name: hostName, ofport: undefined, mac: containerMac } as const;
          const spec = containerPortSpec({ ...draft, ips: ipsOf(res), container }, portType);
          await this.o.bridge.createPort({ ...spec, ofportRequest: requested });
          done.port = true;
          steps['portMs'] = ms(started);
          this.crash.hit('cni-add-port-done');
          const ofport = await this.o.bridge.waitForOFPort(hostName);
          steps['ofportMs'] = ms(started);
          return ofport;
        });
        earlyPort.catch(() => undefined); // observed below
      }
      let link;
      try {
        link = await this.o.podInterfaces.configure({
          containerId,
          ifname,
          netns,
          podName: r.k8s.podName,
          podNamespace: r.k8s.podNamespace,
          hostInterfaceName: hostName,
          mtu,
          disableTxChecksumOffload:
            this.o.config.disableTXChecksumOffload || this.o.config.ovsDatapathType === 'netdev',
          addressing,
          ...(containerMac === undefined ? {} : { containerMac }),
          hostInterfaceReady: () => host.resolve(undefined),
        });
        host.resolve(undefined); // a configurator that does not say when the host end is up
      } catch (err) {
        host.reject(err);
        if (err instanceof CniError) throw err; // IPAM's
        if (err instanceof PodInterfaceError && err.code === 'POD_NETNS_NOT_FOUND') {
          throw new CniError('INVALID_ENVIRONMENT_VARIABLES', `CNI_NETNS: ${err.message}`, { cause: err });
        }
        throw new CniError('CONFIG_INTERFACE_FAILURE', `Failed to configure the Pod interface: ${errorMessage(err)}`, {
          cause: err,
        });
      }
      const ipamResult = await ipamDone;
      done.link = true;
      step('interfaceMs');
      this.crash.hit('cni-add-interface-done');
      const result = this.completeResult(ipamResult, r, ctx, link.hostInterface, link.containerInterface, mtu);

      let iface: InterfaceConfig & { container: ContainerInfo } = {
        type: 'container',
        name: hostName,
        ofport: undefined,
        mac: link.containerInterface.mac,
        ips: ipsOf(result),
        container,
      };
      try {
        if (earlyPort !== undefined) {
          iface = { ...iface, ofport: await earlyPort };
          if (iface.mac.toLowerCase() !== containerMac?.toLowerCase()) {
            // The link did not take the requested MAC: the external ids follow the link.
            await this.o.bridge.setPortExternalIds(hostName, containerPortSpec(iface, portType).externalIds ?? {});
          }
          step('portWaitMs');
        } else {
          // Asynchronous (Windows): ovs-vswitchd picks the ofport once HNS attached the endpoint.
          await this.o.bridge.createPort(containerPortSpec(iface, portType));
          done.port = true;
          step('portMs');
          this.crash.hit('cni-add-port-done');
          // Use the ofport if it is already there; else ofportChanged installs the flows when it
          // arrives (it waits for this ADD on the container lock).
          const now = this.o.bridge.getPort(hostName)?.ofport;
          if (now !== undefined && now > 0) iface = { ...iface, ofport: now };
          step('ofportMs');
        }
      } catch (err) {
        throw new CniError('CONFIG_INTERFACE_FAILURE', `Failed to connect the Pod to OVS: ${errorMessage(err)}`, {
          cause: err,
        });
      }
      if (podFlows !== undefined && iface.ofport !== undefined) {
        try {
          const waited = this.clock.monotonic();
          const early = await earlyFlows;
          steps['flowsWaitMs'] = ms(waited);
          const target: PodFlowTarget = { ...iface, ofport: iface.ofport };
          if (
            early === undefined ||
            early.ofport !== target.ofport ||
            early.mac.toLowerCase() !== target.mac.toLowerCase()
          ) {
            if (early !== undefined) {
              this.logger.warn('the Pod port did not get the requested ofport or MAC: correcting its flows', {
                port: hostName,
                requested: { ofport: early.ofport, mac: early.mac },
                actual: { ofport: target.ofport, mac: target.mac },
              });
            }
            done.flows = true;
            const started = this.clock.monotonic();
            await podFlows.installPodFlows(target);
            steps['flowsMs'] = (steps['flowsMs'] ?? 0) + ms(started);
          }
        } catch (err) {
          throw new CniError('CONFIG_INTERFACE_FAILURE', `Failed to install the Pod's flows: ${errorMessage(err)}`, {
            cause: err,
          });
        }
      }
      this.crash.hit('cni-add-flows-done');
      this.o.store.add(iface);
      this.o.journal.commit(containerId, ifname);
      this.crash.hit('cni-add-committed');
      this.announce(netns, ifname, result.ips);
      step('commitMs');
      this.logger.info('Pod network configured', {
        pod: `${r.k8s.podNamespace}/${r.k8s.podName}`,
        containerId,
        port: hostName,
        ofport: iface.ofport,
        ips: iface.ips,
        ...steps,
      });
      return this.encodeResult(result, r);
    } catch (err) {
      // Let IPAM and the flows settle first, so what they made meanwhile is removed too.
      await ipamDone.catch(() => undefined);
      await earlyFlows?.catch(() => undefined);
      await earlyPort?.catch(() => undefined);
      await this.rollback(pending, ipamReq, done);
      throw err;
    } finally {
      // The port now holds the number in OVSDB (so the allocator skips it), or never will.
      if (ofportRequest !== undefined) this.ofports.release(ofportRequest);
    }
  }

  /** Undoes a failed ADD in reverse order; every step is attempted. */
  private async rollback(
    p: PendingAdd,
    ipamReq: IpamRequest | undefined,
    done: { ipam: boolean; link: boolean; port: boolean; flows: boolean },
  ): Promise<void> {
    const steps: [string, boolean, () => Promise<void>][] = [
      ['flows', done.flows, () => this.podFlows?.uninstallPodFlows(p.hostInterfaceName) ?? Promise.resolve()],
      ['port', done.port, () => this.o.bridge.deletePort(p.hostInterfaceName)],
      [
        'interface',
        done.link,
        () =>
          this.o.podInterfaces.remove({
            containerId: p.containerId,
            ifname: p.ifname,
            hostInterfaceName: p.hostInterfaceName,
            netns: this.agentNetns(p.netns),
          }),
      ],
      [
        'ipam',
        done.ipam && ipamReq !== undefined,
        () => (ipamReq === undefined ? Promise.resolve() : this.o.ipam.del(ipamReq)),
      ],
    ];
    let clean = true;
    for (const [what, needed, fn] of steps) {
      if (!needed) continue;
      try {
        await fn();
      } catch (err) {
        clean = false;
        this.logger.error('rollback step failed', { step: what, containerId: p.containerId, err });
      }
    }
    this.o.store.delete(containerKey(p.containerId, p.ifname));
    // A failed step keeps the record, so the next start-up retries the rollback.
    if (clean) this.o.journal.commit(p.containerId, p.ifname);
  }

  private announce(netns: string, ifname: string, ips: readonly CniIpConfig[]): void {
    const advertise = this.o.podInterfaces.advertise?.bind(this.o.podInterfaces);
    if (advertise === undefined) return;
    const p = advertise({ netns, ifname, ips }).catch((err: unknown) =>
      this.logger.debug('announcing the Pod addresses failed', { netns, err }),
    );
    this.background.add(p);
    void p.finally(() => this.background.delete(p));
  }

  /** Rebuilds the result of a complete interface (a repeated ADD). */
  private resultFromStore(
    i: InterfaceConfig,
    r: Request,
    ctx: NodeNetworkContext,
    mtu: number,
    hostMac: string,
  ): CniResult {
    const ips: CniIpConfig[] = i.ips.map((ip) => {
      const cidr = ctx.podCIDRs.find((c) => cidrContains(c, ip));
      const prefix = cidr === undefined ? (ipFamily(ip) === 6 ? 128 : 32) : Number(cidr.split('/')[1]);
      const gw = this.gatewayFor(ip, ctx);
      return { address: `${ip}/${prefix}`, ...(gw === undefined ? {} : { gateway: gw }) };
    });
    const cfgRoutes = Array.isArray(r.network.ipam?.['routes']) ? (r.network.ipam['routes'] as unknown[]) : [];
    const routes = parseCniResult({ routes: cfgRoutes }, 'ipam').routes;
    return this.completeResult(
      { interfaces: [], ips, routes, dns: {} },
      r,
      ctx,
      { name: i.name, mac: hostMac },
      {
        name: i.container?.ifDev ?? r.args.ifname,
        mac: i.mac,
      },
      mtu,
    );
  }

  // ---- DEL -------------------------------------------------------------------------------------

  private async cmdDel(r: Request): Promise<void> {
    const ctx = await this.waitReady(this.storeReady);
    await this.containerLock.run(r.args.containerId, () => this.rw.shared(() => this.del(r, ctx)));
  }

  /**
   * Removes a Pod interface: flows, OVS port, host link, store entry (chained: flows, OVS port, the
   * Pod's routes on the gateway, store entry). Each step tolerates absence.
   */
  private async removeInterface(i: InterfaceConfig): Promise<void> {
    if (this.chained !== undefined) {
      await this.chained.remove(i);
      return;
    }
    await this.podFlows?.uninstallPodFlows(i.name);
    const port = this.o.bridge.getPort(i.name);
    if (port !== undefined && port.externalIds[EXT.containerId] === i.container?.containerId) {
      await this.o.bridge.deletePort(i.name);
    }
    await this.o.podInterfaces.remove({
      containerId: i.container?.containerId ?? '',
      ifname: i.container?.ifDev ?? '',
      hostInterfaceName: i.name,
      ...(i.container?.netns === undefined ? {} : { netns: this.agentNetns(i.container.netns) }),
    });
    this.o.store.delete(interfaceKey(i));
  }

  private async del(r: Request, ctx: NodeNetworkContext): Promise<void> {
    const { containerId, ifname } = r.args;
    const stored = this.o.store.byContainer(containerId, ifname);
    if (this.chainingMode) {
      // Only what antrea did; the primary plugin's DEL removes the veth and releases the IP.
      if (stored !== undefined) await this.removeInterface(stored);
      this.logger.info('chained Pod detached', { containerId, ifname, hadInterface: stored !== undefined });
      return;
    }
    const removeLink = async (): Promise<void> => {
      if (stored !== undefined) {
        await this.removeInterface(stored);
        return;
      }
      // Not in the store: an ADD that failed half-way or never ran. Clean what its names point to.
      const pending = this.o.journal.get(containerId, ifname);
      const hostName = pending?.hostInterfaceName ?? podHostInterfaceName(r.k8s.podName, containerId, ifname);
      const owner = this.o.bridge.getPort(hostName)?.externalIds[EXT.containerId];
      const ownedByOther = owner !== undefined && owner !== containerId;
      if (ownedByOther || this.o.store.byName(hostName) !== undefined) return;
      await this.podFlows?.uninstallPodFlows(hostName);
      if (owner !== undefined) await this.o.bridge.deletePort(hostName);
      await this.o.podInterfaces.remove({
        containerId,
        ifname,
        hostInterfaceName: hostName,
        ...(r.args.netns === '' ? {} : { netns: this.agentNetns(r.args.netns) }),
      });
    };
    // The IP is released while the interface is taken down; both are attempted whatever happens.
    const started = this.clock.monotonic();
    const ms = (): number => Math.round((this.clock.monotonic() - started) * 10) / 10;
    const steps: Record<string, number> = {};
    const [link, ipam] = await Promise.allSettled([
      removeLink().finally(() => (steps['interfaceMs'] = ms())),
      this.o.ipam.del(this.ipamRequest(r, ctx)).finally(() => (steps['ipamMs'] = ms())),
    ]);
    if (link.status === 'rejected') {
      const err: unknown = link.reason;
      if (err instanceof CniError) throw err;
      throw new CniError('CONFIG_INTERFACE_FAILURE', `Failed to remove the Pod interface: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    if (ipam.status === 'rejected') throw toCniError(ipam.reason);
    this.o.journal.commit(containerId, ifname);
    this.logger.info('Pod network removed', { containerId, ifname, hadInterface: stored !== undefined, ...steps });
  }

  // ---- CHECK -----------------------------------------------------------------------------------

  private async cmdCheck(r: Request): Promise<void> {
    const ctx = await this.waitReady(this.storeReady);
    await this.containerLock.run(r.args.containerId, () => this.rw.shared(() => this.check(r, ctx)));
  }

  private async check(r: Request, ctx: NodeNetworkContext): Promise<void> {
    if (compareCniVersions(r.network.cniVersion, '0.4.0') < 0) {
      throw new CniError('INCOMPATIBLE_CNI_VERSION', 'config version does not allow CHECK');
    }
    if (r.network.prevResult === undefined || r.network.prevResult === null) {
      throw new CniError('UNSUPPORTED_FIELD', 'prevResult is required for CHECK');
    }
    const prev = parseCniResult(r.network.prevResult, 'prevResult');
    const idx = prev.interfaces.findIndex((i) => i.name === r.args.ifname && i.sandbox === r.args.netns);
    const containerIface = prev.interfaces[idx];
    if (containerIface === undefined) {
      throw new CniError('INVALID_NETWORK_CONFIG', 'prevResult does not match network configuration');
    }
    if (this.chainingMode) {
      await this.checkChained(r);
      return;
    }
    await this.o.ipam.check(this.ipamRequest(r, ctx));
    const stored = this.o.store.byContainer(r.args.containerId, r.args.ifname);
    if (stored === undefined) {
      throw new CniError(
        'CHECK_INTERFACE_FAILURE',
        `no interface for container ${r.args.containerId}/${r.args.ifname}`,
      );
    }
    const ips = prev.ips.filter((i) => i.interface === undefined || i.interface === idx);
    const problems = await this.o.podInterfaces.check({
      containerId: r.args.containerId,
      ifname: r.args.ifname,
      hostInterfaceName: stored.name,
      netns: this.agentNetns(r.args.netns),
      mac: containerIface.mac ?? '',
      ips,
      routes: prev.routes,
    });
    if (containerIface.mac !== undefined && containerIface.mac.toLowerCase() !== stored.mac.toLowerCase()) {
      problems.push(`the agent knows MAC ${stored.mac}, prevResult says ${containerIface.mac}`);
    }
    const storedIps = new Set(stored.ips.map(canonicalIp));
    for (const ip of ips) {
      if (!storedIps.has(canonicalIp(cidrIp(ip.address)))) problems.push(`the agent does not know IP ${ip.address}`);
    }
    const port = this.o.bridge.getPort(stored.name);
    if (port === undefined) problems.push(`OVS port ${stored.name} does not exist`);
    else if (this.o.podInterfaces.ofportAssignment === 'immediate' && (port.ofport === undefined || port.ofport <= 0)) {
      problems.push(`OVS port ${stored.name} has no ofport (${port.error ?? 'not assigned'})`);
    }
    if (problems.length > 0) throw new CniError('CHECK_INTERFACE_FAILURE', problems.join('; '));
  }

  /** CHECK of a chained Pod: attached, its port has an ofport, its host side still exists. */
  private async checkChained(r: Request): Promise<void> {
    const stored = this.o.store.byContainer(r.args.containerId, r.args.ifname);
    if (stored === undefined) {
      throw new CniError(
        'CHECK_INTERFACE_FAILURE',
        `no interface for container ${r.args.containerId}/${r.args.ifname}`,
      );
    }
    const problems: string[] = [];
    const port = this.o.bridge.getPort(stored.name);
    if (port === undefined) problems.push(`OVS port ${stored.name} does not exist`);
    else if (port.ofport === undefined || port.ofport <= 0) problems.push(`OVS port ${stored.name} has no ofport`);
    if ((await this.o.podInterfaces.hostInterface(stored.name)) === undefined) {
      problems.push(`host interface ${stored.name} does not exist`);
    }
    if (problems.length > 0) throw new CniError('CHECK_INTERFACE_FAILURE', problems.join('; '));
  }

  // ---- GC and STATUS ---------------------------------------------------------------------------

  private async cmdGc(r: Request): Promise<void> {
    const ctx = await this.waitReady(this.storeReady);
    const valid = r.network.validAttachments;
    if (valid === undefined) {
      throw new CniError('INVALID_NETWORK_CONFIG', 'GC needs cni.dev/valid-attachments in the network configuration');
    }
    const keep = new Set(valid.map((a) => `${a.containerID}/${a.ifname}`));
    const errors: string[] = [];
    await this.rw.exclusive(async () => {
      for (const i of this.o.store.list('container')) {
        const c = i.container;
        if (c === undefined || keep.has(`${c.containerId}/${c.ifDev}`)) continue;
        try {
          await this.removeInterface(i);
          this.logger.info('GC removed a stale Pod interface', { containerId: c.containerId, port: i.name });
        } catch (err) {
          errors.push(`${i.name}: ${errorMessage(err)}`);
        }
      }
      // Chained: no journal, and the IPs are the primary plugin's.
      if (this.chainingMode) return;
      for (const p of this.o.journal.list()) {
        if (keep.has(`${p.containerId}/${p.ifname}`)) continue;
        try {
          await this.rollbackPending(p, ctx);
        } catch (err) {
          errors.push(`pending ${p.containerId}: ${errorMessage(err)}`);
        }
      }
      const inUse = new Set(this.o.store.list().flatMap((i) => i.ips.map(canonicalIp)));
      const stale = this.o.ipam
        .reservations()
        .filter((res) => res.network === r.network.name)
        .filter((res) => !keep.has(`${res.containerId}/${res.ifname}`) && !inUse.has(res.ip));
      try {
        this.o.ipam.release(stale);
      } catch (err) {
        errors.push(`releasing reservations: ${errorMessage(err)}`);
      }
      // And to the delegate, which may hold state beyond its reservation files.
      try {
        await this.o.ipam.gc(this.ipamRequest(r, ctx));
      } catch (err) {
        errors.push(`IPAM GC: ${errorMessage(err)}`);
      }
    });
    if (errors.length > 0) throw new CniError('IO_FAILURE', `GC finished with errors: ${errors.join('; ')}`);
  }

  private async cmdStatus(r: Request): Promise<void> {
    if (!this.networkReadyLatch.opened || this.ctx === undefined) {
      throw new CniError('PLUGIN_NOT_AVAILABLE', 'the agent is still initializing');
    }
    const health = this.o.health?.() ?? 'ok';
    if (health === 'ovsdb-down') {
      throw new CniError('PLUGIN_NOT_AVAILABLE', 'the agent has lost its connection to OVSDB');
    }
    if (health === 'datapath-down') {
      throw new CniError('LIMITED_CONNECTIVITY', 'ovs-vswitchd is not reachable: existing Pods may lose connectivity');
    }
    if (this.chainingMode) return; // no IPAM of ours
    // The spec asks plugins to forward STATUS to their IPAM.
    try {
      await this.o.ipam.status(this.ipamRequest(r, this.ctx));
    } catch (err) {
      throw new CniError('PLUGIN_NOT_AVAILABLE', `IPAM is not available: ${errorMessage(err)}`, { cause: err });
    }
  }

  // ---- ofports that arrive after ADD (Windows) --------------------------------------------------

  /** Feeds the server the ofport changes of `events`; returns the function that stops. */
  watchOfports(events: OfportEvents): () => void {
    return events.subscribe((e) => this.ofportChanged(e));
  }

  /**
   * An OVS port's ofport changed. For a Pod interface in the store: a new ofport (> 0) installs the
   * Pod's flows and records it; a lost one (-1 or the port gone) uninstalls them. Runs on the
   * container's lock, after any ADD or DEL in flight: a Pod deleted first is no longer in the store
   * and gets nothing; an ADD still running records the interface first. Not a Pod port: nothing
   * happens. A failure is logged and the store keeps the old ofport, so a later change or the next
   * start-up installs the flows. {@link drain} waits for the work started here.
   */
  ofportChanged(e: OfportEvent): void {
    const p = this.applyOfport(e).catch((err: unknown) =>
      this.logger.error('installing the flows of a Pod whose ofport arrived failed', {
        port: e.port,
        ofport: e.ofport,
        err,
      }),
    );
    this.background.add(p);
    void p.finally(() => this.background.delete(p));
  }

  private async applyOfport({ port, ofport }: OfportEvent): Promise<void> {
    const containerId =
      this.o.store.byName(port)?.container?.containerId ?? this.o.bridge.getPort(port)?.externalIds[EXT.containerId];
    if (containerId === undefined) return;
    await this.containerLock.run(containerId, () =>
      this.rw.shared(async () => {
        const i = this.o.store.byName(port);
        if (i?.container === undefined || i.container.containerId !== containerId) return;
        const next = ofport !== undefined && ofport > 0 ? ofport : undefined;
        if (i.ofport === next) return;
        if (next === undefined) {
          await this.podFlows?.uninstallPodFlows(port);
          this.o.store.add({ ...i, ofport: undefined });
          this.logger.warn('a Pod port lost its ofport', { port, ofport, containerId });
          return;
        }
        await this.podFlows?.installPodFlows({ ...i, container: i.container, ofport: next });
        this.o.store.add({ ...i, ofport: next });
        this.logger.info('Pod ofport assigned', {
          port,
          ofport: next,
          containerId,
          flows: this.podFlows !== undefined,
        });
      }),
    );
  }

  // ---- start-up reconciliation -----------------------------------------------------------------

  /**
   * Installs the flows of every Pod interface in the store (after a restart, in the new cookie
   * round). Returns how many Pods got flows.
   */
  async installStoredPodFlows(): Promise<number> {
    const flows = this.podFlows;
    if (flows === undefined) return 0;
    let n = 0;
    for (const i of this.o.store.list('container')) {
      if (i.container === undefined || i.ofport === undefined || i.ofport <= 0) continue;
      await flows.installPodFlows({ ...i, container: i.container, ofport: i.ofport });
      n++;
    }
    return n;
  }

  /** Rolls back a journaled ADD: port (if it is this container's), host link, IP reservation, record. */
  private async rollbackPending(p: PendingAdd, ctx: NodeNetworkContext): Promise<void> {
    let ipamReq: IpamRequest | undefined;
    try {
      ipamReq = {
        containerId: p.containerId,
        ifname: p.ifname,
        netns: p.netns,
        args: p.args,
        cniPath: p.cniPath,
        network: parseNetworkConfig(p.networkConfig),
        podCIDRs: ctx.podCIDRs,
      };
    } catch (err) {
      // Nothing to replay the IPAM DEL with: reservation GC releases the IP instead.
      this.logger.warn('pending ADD has an unreadable configuration', { containerId: p.containerId, err });
    }
    const owner = this.o.bridge.getPort(p.hostInterfaceName)?.externalIds[EXT.containerId];
    const mine = owner === undefined || owner === p.containerId;
    this.logger.info('rolling back an ADD that never answered', {
      containerId: p.containerId,
      port: p.hostInterfaceName,
    });
    await this.rollback(p, ipamReq, {
      ipam: ipamReq !== undefined,
      link: mine,
      port: owner === p.containerId,
      flows: owner === p.containerId,
    });
  }

  /**
   * Start-up reconciliation, before requests are served: roll back ADDs that never answered, remove
   * Pod interfaces whose host side or ofport is gone, release host-local reservations that no
   * interface in the store uses (nor `inUseIps`, e.g. Pod IPs reported to Kubernetes). Errors are
   * collected and reported, not thrown.
   */
  async reconcile(ctx: NodeNetworkContext, opts: { inUseIps?: Iterable<string> } = {}): Promise<ReconcileReport> {
    return this.rw.exclusive(async () => {
      const rolledBack: string[] = [];
      const removed: string[] = [];
      const errors: string[] = [];
      for (const p of this.o.journal.list()) {
        try {
          await this.rollbackPending(p, ctx);
          rolledBack.push(`${p.containerId}/${p.ifname}`);
        } catch (err) {
          errors.push(`rollback ${p.containerId}: ${errorMessage(err)}`);
        }
      }
      for (const i of this.o.store.list('container')) {
        if (await this.healthy(i)) continue;
        try {
          await this.removeInterface(i);
          removed.push(i.name);
          this.logger.info('removed a Pod interface whose host side is gone', {
            port: i.name,
            containerId: i.container?.containerId,
          });
        } catch (err) {
          errors.push(`remove ${i.name}: ${errorMessage(err)}`);
        }
      }
      const inUse = new Set(this.o.store.list().flatMap((i) => i.ips.map(canonicalIp)));
      for (const ip of opts.inUseIps ?? []) inUse.add(canonicalIp(ip));
      let leaked: Reservation[] = [];
      // Chained: the reservations are the primary plugin's, never ours to release.
      try {
        if (!this.chainingMode) {
          leaked = this.o.ipam.reservations().filter((res) => !inUse.has(res.ip));
          this.o.ipam.release(leaked);
        }
      } catch (err) {
        errors.push(`IPAM GC: ${errorMessage(err)}`);
      }
      for (const e of errors) this.logger.error('reconciliation problem', { err: e });
      return { rolledBack, removedInterfaces: removed, releasedIps: leaked.map((l) => l.ip), errors };
    });
  }
}

/** Maps anything thrown inside the server to the CNI error the runtime sees. */
export function toCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  if (isAntreaError(err, 'INVALID_ARGUMENT'))
    return new CniError('INVALID_NETWORK_CONFIG', errorMessage(err), { cause: err });
  return new CniError('UNKNOWN', `internal error: ${errorMessage(err)}`, { cause: err });
}
