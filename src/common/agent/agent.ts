/**
 * The agent (what `antrea-agent` runs): connects to OVSDB, serves the CNI socket at once (ADD waits
 * for readiness, answering TRY_AGAIN_LATER after podNetworkWaitTimeoutMs), initializes the Node,
 * programs the OpenFlow pipeline in a new cookie round, reconciles what a previous run left,
 * re-installs the flows of the Pods that survived, deletes the previous round's flows, then marks
 * the Pod network ready. `run(signal)` returns after a clean shutdown: the socket is closed and
 * nothing on the datapath is torn down (Pods keep their network while the agent restarts).
 */
import { dirname, join } from 'node:path';
import { DelegatingAuthorizer, TokenAuthenticator } from '../apiserver/auth.ts';
import { createKubeReviewer } from '../k8s/reviews.ts';
import { ANTREA_TS_VERSION } from '../version.ts';
import { AgentQuerier } from './apiserver/querier.ts';
import { AgentApiServer } from './apiserver/server.ts';
import { ovsSocketEndpoint, type PlatformStrategy } from '../host/platform.ts';
import { configureUserspaceConntrack, purgeDatapathFlows } from './userspace-datapath.ts';
import { vswitchdControlSocket } from '../ovs/unixctl.ts';
import { OvsdbBridge } from '../ovs/ovsdb/bridge.ts';
import { OvsdbClient } from '../ovs/ovsdb/client.ts';
import { type Clock, systemClock } from '../util/clock.ts';
import { type CrashPoints, noCrashPoints } from '../util/crash.ts';
import type { CommandRunner } from '../util/exec.ts';
import { type Logger, nullLogger } from '../util/log.ts';
import { OpenFlowClient } from '../ovs/openflow/client.ts';
import { BridgeClient } from './openflow/bridge.ts';
import { CookieAllocator } from './openflow/cookie.ts';
import { RealizedPipeline } from './openflow/framework.ts';
import { NetworkPolicyFeature } from './openflow/network-policy.ts';
import {
  NetworkPolicyController,
  type PolicyEventHandler,
  type RealizationStatusSink,
} from './networkpolicy/controller.ts';
import type { PodFlowClient, PodFlowTarget } from './cniserver/server.ts';
import { NodeFlowInstaller, PodConnectivityFeature, PodFlowInstaller } from './openflow/pod-connectivity.ts';
import { NodeRouteController, runRouteSync } from './noderoute/controller.ts';
import type { NodeSource } from './noderoute/node-source.ts';
import { UPLINK_BRIDGE } from './uplink-bridge.ts';
import { aborted, type Runnable } from '../util/runnable.ts';
import { CniGrpcService } from './cniserver/grpc.ts';
import { PendingAddJournal } from './cniserver/journal.ts';
import { ovsdbOfportEvents } from './cniserver/ofport-events.ts';
import { CniServer } from './cniserver/server.ts';
import { type AgentConfig, hostLocalDataDir } from './config.ts';
import { DEFAULT_TUNNEL_DST_PORTS, type InitializedNode, Initializer } from './initializer.ts';
import { InterfaceStore } from './interfacestore.ts';
import { HostLocalIpam } from './ipam/host-local.ts';
import type { NodeConfigSource } from './node-config.ts';
import { ServiceFeature } from './openflow/service.ts';
import { ProxyController } from './proxy/controller.ts';
import { Proxier } from './proxy/proxier.ts';
import { startServiceRejecter } from './proxy/reject.ts';
import { Informer } from '../k8s/informer.ts';
import { kubeListWatch, loadKubeConfig, ResourcePaths } from '../k8s/client.ts';
import type { EndpointSlice, Service } from '../k8s/objects.ts';
import { cidrContains, ipFamily, parseCidr } from '../util/ip.ts';

/** Bridge external_ids key holding the flow round of the last agent that completed start-up (Antrea's). */
export const ROUND_KEY = 'roundNum';

function parseRound(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d+$/.test(v)) return undefined;
  const n = Number(v);
  return n >= 1 && n <= 0xffff ? n : undefined;
}

export interface AgentOptions {
  readonly config: AgentConfig;
  readonly platform: PlatformStrategy;
  readonly nodeConfigSource: NodeConfigSource;
  readonly runner: CommandRunner;
  readonly logger?: Logger;
  readonly clock?: Clock;
  readonly crashPoints?: CrashPoints;
  /**
   * How long start-up waits for the first Service sync before deleting the previous run's flows
   * (default 10 s); Services keep working meanwhile through the previous round's flows.
   */
  readonly proxyInitialSyncTimeoutMs?: number;
  /**
   * The cluster's Nodes, for the NodeRoute controller (routes and tunnel flows to the other Nodes).
   * Absent: a single-Node agent (no peers; SNAT and host rules are still set up).
   */
  readonly nodeSource?: NodeSource;
  /** How long start-up waits for the first Node list before deleting the previous round's flows (default 30 s). */
  readonly nodeSyncWaitMs?: number;
  /** Called once the Pod network is ready (tests and the lab wait on it). */
  readonly onReady?: (node: InitializedNode) => void;
  /**
   * Where this Node's NetworkPolicies come from (the controlplane watcher, a policy file): given the
   * policy controller, returns what to run. Without one the agent enforces no policy (and says so).
   */
  readonly policySource?: (handler: PolicyEventHandler) => Runnable;
  /** Where policy realization is reported (the controlplane StatusReporter). */
  readonly policyStatus?: RealizationStatusSink;
  /** Called with the policy controller once it exists (stats, antctl, tests). */
  readonly onPolicyController?: (c: NetworkPolicyController) => void;
  /**
   * The agent API for antctl (on `apiPort`): where its loopback token and CA certificate go
   * (default `<directory of cniSocket>/apiserver`, i.e. /var/run/antrea/apiserver), the address to
   * bind (default 0.0.0.0), and the agent's own Pod for agentinfo. `false` disables it.
   */
  readonly api?:
    | false
    | { readonly dir?: string; readonly host?: string; readonly podName?: string; readonly podNamespace?: string };
}

/**
 * The CNI server's Pod flow client, with policy first: a new Pod's rules (isolation included) are
 * realized before its forwarding flows exist, and its rules are updated after they are gone.
 */
class PolicyAwarePodFlows implements PodFlowClient {
  private readonly inner: PodFlowClient;
  private readonly policy: NetworkPolicyController;
  private readonly store: InterfaceStore;
  /** Pods whose flows were installed, by port: an ADD rolled back never reaches the store. */
  private readonly added = new Map<string, { namespace: string; name: string }>();

  constructor(inner: PodFlowClient, policy: NetworkPolicyController, store: InterfaceStore) {
    this.inner = inner;
    this.policy = policy;
    this.store = store;
  }

  async installPodFlows(iface: PodFlowTarget): Promise<void> {
    const { podNamespace: namespace, podName: name } = iface.container;
    this.added.set(iface.name, { namespace, name });
    await this.policy.podAdded(namespace, name, iface.name, { ofport: iface.ofport, ips: iface.ips });
    await this.inner.installPodFlows(iface);
  }

  async uninstallPodFlows(portName: string): Promise<void> {
    const stored = this.store.byName(portName)?.container;
    const known =
      this.added.get(portName) ??
      (stored === undefined ? undefined : { namespace: stored.podNamespace, name: stored.podName });
    await this.inner.uninstallPodFlows(portName);
    if (known !== undefined) await this.policy.podRemoved(known.namespace, known.name, portName);
    this.added.delete(portName);
  }
}

export class Agent implements Runnable {
  private readonly o: AgentOptions;
  private readonly logger: Logger;
  readonly store = new InterfaceStore();
  /** What the agent API answers (set when run starts). */
  querier: AgentQuerier | undefined;
  /** The agent API server (set when run starts, unless disabled). */
  apiServer: AgentApiServer | undefined;

  constructor(opts: AgentOptions) {
    this.o = opts;
    this.logger = opts.logger ?? nullLogger;
  }

  async run(signal: AbortSignal): Promise<void> {
    const { config, platform } = this.o;
    const clock = this.o.clock ?? systemClock;
    const endpoint = ovsSocketEndpoint(platform.os, config.ovsRunDir, 'db.sock');
    const ovsdb = await OvsdbClient.connect({ endpoint, logger: this.logger, clock, timeoutMs: 30_000 });
    const inner = new AbortController();
    const stop = (): void => inner.abort(signal.reason);
    signal.addEventListener('abort', stop, { once: true });
    const tasks: Promise<void>[] = [];
    let openflow: OpenFlowClient | undefined;
    let policyController: NetworkPolicyController | undefined;
    const cleanups: (() => void)[] = [];
    const openflowUp = (): boolean => {
      try {
        openflow?.connection();
        return openflow !== undefined;
      } catch {
        return false;
      }
    };
    const querier = new AgentQuerier({
      nodeName: '',
      bridgeName: config.ovsBridge,
      apiPort: config.apiPort,
      version: ANTREA_TS_VERSION,
      ...(this.o.api === false || this.o.api === undefined
        ? {}
        : {
            ...(this.o.api.podName === undefined ? {} : { podName: this.o.api.podName }),
            ...(this.o.api.podNamespace === undefined ? {} : { podNamespace: this.o.api.podNamespace }),
          }),
      interfaces: () => this.store.list(),
      ovsdbConnected: () => ovsdb.isConnected,
      openflowConnected: openflowUp,
      controllerConnected: () =>
        policyController?.source === undefined ? undefined : policyController.source === 'controller',
      now: () => clock.now(),
    });
    this.querier = querier;
    if (this.o.api !== false)
      tasks.push(this.serveApi(querier, inner.signal, ovsdb, openflowUp, () => policyController));
    try {
      const bridge = new OvsdbBridge(ovsdb, config.ovsBridge, { logger: this.logger });
      const ipam = new HostLocalIpam({
        runner: this.o.runner,
        pluginDirs: config.cniPluginDirs,
        dataDir: hostLocalDataDir(config),
        logger: this.logger,
      });
      const server = new CniServer({
        config,
        bridge,
        podInterfaces: platform.podInterfaces,
        ipam,
        store: this.store,
        journal: new PendingAddJournal(join(config.stateDir, 'cni-pending'), this.logger),
        health: () => {
          if (!ovsdb.isConnected) return 'ovsdb-down';
          try {
            openflow?.connection();
            return 'ok';
          } catch {
            return 'datapath-down';
          }
        },
        crashPoints: this.o.crashPoints ?? noCrashPoints,
        logger: this.logger,
        clock,
      });
      // Windows: Pod ports get their ofport after ADD answered; their flows follow it.
      if (platform.podInterfaces.ofportAssignment === 'async') {
        cleanups.push(server.watchOfports(ovsdbOfportEvents(ovsdb.cache)));
      }
      const grpc = new CniGrpcService({ socketPath: config.cniSocket, handler: server, logger: this.logger });
      const served = grpc.run(inner.signal);
      tasks.push(served);
      await Promise.race([grpc.ready, served]);

      const node = await new Initializer({
        config,
        platform,
        bridge,
        store: this.store,
        nodeConfigSource: this.o.nodeConfigSource,
        ...(config.ovsDatapathType === 'netdev'
          ? { uplinkBridge: new OvsdbBridge(ovsdb, UPLINK_BRIDGE, { logger: this.logger }) }
          : {}),
        logger: this.logger,
      }).initialize(inner.signal);
      querier.nodeName = node.nodeName;
      querier.nodeSubnets = node.podCIDRs;
      // The OpenFlow pipeline, in a new cookie round; the previous round's flows stay until the
      // new one is complete, so Pods keep forwarding across an agent restart.
      const prevRound = parseRound(bridge.get()?.externalIds[ROUND_KEY]);
      const cookies = new CookieAllocator(CookieAllocator.nextRound(prevRound));
      const feature = new PodConnectivityFeature({
        cookies,
        gateway: { ofport: node.gatewayOfport, mac: node.gatewayMac, ips: node.gatewayIPs },
        ...(node.tunnelOfport === undefined ? {} : { tunnel: { ofport: node.tunnelOfport } }),
        podCIDRs: node.podCIDRs,
        ...(config.trafficEncapMode === 'networkPolicyOnly' ? { networkPolicyOnly: true } : {}),
      });
      const ofClient = new OpenFlowClient({
        endpoint: ovsSocketEndpoint(platform.os, config.ovsRunDir, `${config.ovsBridge}.mgmt`),
        logger: this.logger,
        clock,
      });
      openflow = ofClient;
      // AntreaProxy: Services load-balanced in OVS, when the agent can watch the Kubernetes API.
      const proxy = config.antreaProxy;
      const proxyOn = proxy.enable && config.clientConnection.kubeconfig !== '';
      const nodePortAddresses = proxy.proxyAll
        ? nodePortAddressesOf(node.node.nodeIPs, proxy.nodePortAddresses)
        : undefined;
      const serviceFeature = proxyOn
        ? new ServiceFeature({
            cookies,
            gateway: { ofport: node.gatewayOfport, mac: node.gatewayMac, ips: node.gatewayIPs },
            ...(nodePortAddresses === undefined ? {} : { nodePortAddresses }),
          })
        : undefined;
      const npFeature = new NetworkPolicyFeature({ cookies, gatewayIPs: node.gatewayIPs });
      const ofBridge = new BridgeClient({
        client: ofClient,
        pipeline: new RealizedPipeline(
          serviceFeature === undefined ? [feature, npFeature] : [feature, serviceFeature, npFeature],
        ),
        cookies,
        logger: this.logger,
        clock,
        ...(config.ovsDatapathType === 'netdev'
          ? {
              onSwitchConnected: () => configureUserspaceConntrack(config.ovsRunDir, this.logger),
              afterChange: () => purgeDatapathFlows(vswitchdControlSocket(config.ovsRunDir)),
            }
          : {}),
      });
      tasks.push(ofClient.run(inner.signal));
      await ofBridge.ready(inner.signal);
      querier.setPipeline(ofBridge);
      const policy = new NetworkPolicyController({
        sink: ofBridge,
        feature: npFeature,
        logger: this.logger,
        clock,
        ...(this.o.policyStatus === undefined ? {} : { status: this.o.policyStatus }),
      });
      policyController = policy;
      querier.setPolicyController(policy);
      this.o.onPolicyController?.(policy);
      server.setPodFlows(new PolicyAwarePodFlows(new PodFlowInstaller(ofBridge, feature), policy, this.store));
      let proxyController: ProxyController | undefined;
      if (serviceFeature !== undefined) {
        const serviceNetwork = nodePortAddresses === undefined ? undefined : platform.serviceNetwork;
        await serviceNetwork?.initialize({ gatewayName: node.gatewayName, nodePortAddresses: nodePortAddresses ?? [] });
        const kc = loadKubeConfig(config.clientConnection.kubeconfig);
        const proxier = new Proxier({
          datapath: ofBridge,
          feature: serviceFeature,
          nodeName: node.nodeName,
          ...(serviceNetwork === undefined ? {} : { nodePortHost: serviceNetwork }),
          skipServices: proxy.skipServices,
          logger: this.logger,
        });
        proxyController = new ProxyController({
          proxier,
          services: new Informer<Service>({
            resource: 'services',
            client: kubeListWatch(kc, ResourcePaths.services),
            logger: this.logger,
            clock,
          }),
          slices: new Informer<EndpointSlice>({
            resource: 'endpointslices',
            client: kubeListWatch(kc, ResourcePaths.endpointSlices),
            logger: this.logger,
            clock,
          }),
          clock,
          logger: this.logger,
        });
        tasks.push(proxyController.run(inner.signal));
        const stopRejecter = startServiceRejecter(ofBridge, this.logger);
        inner.signal.addEventListener('abort', stopRejecter, { once: true });
      }

      const report = await server.reconcile(node);
      this.logger.info('reconciled the previous run', { ...report });
      server.setStoreReady(node);
      // Pod forwarding flows of this round only after the initial policies are realized (the
      // previous round's flows keep enforcing meanwhile); CNI ADD waits for it too.
      for (const i of this.store.list('container')) {
        if (i.container !== undefined && i.ofport !== undefined) {
          policy.pods.set(i.container.podNamespace, i.container.podName, i.name, { ofport: i.ofport, ips: i.ips });
        }
      }
      if (this.o.policySource !== undefined) {
        const source = this.o.policySource(policy);
        tasks.push(source.run(inner.signal));
      } else {
        this.logger.warn('no NetworkPolicy source configured: no policy is enforced on this Node');
        await policy.replace('networkpolicies', [], 'file');
        await policy.replace('addressgroups', [], 'file');
        await policy.replace('appliedtogroups', [], 'file');
      }
      await policy.waitInitialRealized(inner.signal);
      this.logger.info('initial NetworkPolicies realized', { ...policy.summary() });
      const pods = await server.installStoredPodFlows();

      // Host rules (SNAT, Pod-address sets) and the routes and tunnel flows to the other Nodes.
      const mode = config.trafficEncapMode;
      const routes = mode === 'networkPolicyOnly' ? undefined : platform.routes;
      if (routes !== undefined) {
        await routes.initialize({
          trafficEncapMode: mode,
          noSNAT: config.noSNAT,
          snatFullyRandomPorts: config.snatFullyRandomPorts,
          gatewayName: node.gatewayName,
          localPodCIDRs: node.podCIDRs,
          tunnelType: config.tunnelType,
          tunnelPort: config.tunnelPort !== 0 ? config.tunnelPort : DEFAULT_TUNNEL_DST_PORTS[config.tunnelType],
        });
        tasks.push(runRouteSync(routes, inner.signal, { clock, logger: this.logger }));
      }
      if (this.o.nodeSource !== undefined && mode !== 'networkPolicyOnly') {
        const controller = new NodeRouteController({
          localNodeName: node.nodeName,
          trafficEncapMode: mode,
          localTransportCIDRs: node.transportCIDRs,
          source: this.o.nodeSource,
          flows: new NodeFlowInstaller(ofBridge, feature),
          ...(routes === undefined ? {} : { routes }),
          logger: this.logger,
          clock,
        });
        tasks.push(this.o.nodeSource.run(inner.signal), controller.run(inner.signal));
        // The previous round's flows stay until the peers' flows are back (or we gave up waiting).
        const waitMs = this.o.nodeSyncWaitMs ?? 30_000;
        const synced = await Promise.race([
          controller.waitInitialSync(inner.signal).then(
            () => true,
            () => false,
          ),
          clock.sleep(waitMs, inner.signal).then(
            () => false,
            () => false,
          ),
        ]);
        if (!synced) this.logger.warn('the first Node list is not processed yet', { waitedMs: waitMs });
      }
      if (proxyController !== undefined && prevRound !== undefined) {
        const timeoutMs = this.o.proxyInitialSyncTimeoutMs ?? 10_000;
        const synced = await Promise.race([
          proxyController.waitInitialSync(inner.signal).then(() => true),
          clock.sleep(timeoutMs, inner.signal).then(() => false),
        ]);
        if (!synced) this.logger.warn('no Service sync yet; deleting the previous round anyway', { timeoutMs });
      }
      if (prevRound !== undefined) await ofBridge.deleteStaleRounds(prevRound);
      await bridge.setExternalIds({ [ROUND_KEY]: String(cookies.round) });
      this.logger.info('pipeline ready', { round: cookies.round, previousRound: prevRound, podsReplayed: pods });
      server.setNetworkReady();
      this.logger.info('Pod network ready', { node: node.nodeName, podCIDRs: node.podCIDRs, mtu: node.mtu });
      this.o.onReady?.(node);
      await Promise.race([aborted(inner.signal), served]);
      inner.abort();
      await server.drain();
    } catch (err) {
      // Stopped during start-up: a clean stop, not a failure.
      if (!signal.aborted) throw err;
      this.logger.info('stopped during start-up', { reason: String(signal.reason) });
    } finally {
      policyController?.close();
      signal.removeEventListener('abort', stop);
      for (const c of cleanups) c();
      inner.abort();
      await Promise.allSettled(tasks);
      await ovsdb.close();
    }
    // A failed listener surfaces here (unless we were asked to stop).
    if (!signal.aborted) for (const t of tasks) await t;
  }

  /**
   * Runs the agent API server: delegated auth through the Kubernetes API when a kubeconfig is
   * configured (else only the loopback token). Never rejects: a failure is logged, the agent goes on.
   */
  private async serveApi(
    querier: AgentQuerier,
    signal: AbortSignal,
    ovsdb: OvsdbClient,
    openflowUp: () => boolean,
    policy: () => NetworkPolicyController | undefined,
  ): Promise<void> {
    const { config } = this.o;
    const api = this.o.api === false ? undefined : this.o.api;
    const clock = this.o.clock ?? systemClock;
    try {
      const kubeconfig = config.clientConnection.kubeconfig;
      const reviewer = kubeconfig === '' ? undefined : createKubeReviewer(loadKubeConfig(kubeconfig));
      const server = new AgentApiServer({
        querier,
        dir: api?.dir ?? join(dirname(config.cniSocket), 'apiserver'),
        ...(reviewer === undefined
          ? {}
          : {
              authenticator: new TokenAuthenticator(reviewer, { clock }),
              authorizer: new DelegatingAuthorizer(reviewer, { clock }),
            }),
        livenessChecks: () => ({ ovsdb: ovsdb.isConnected, openflow: openflowUp() }),
        readinessChecks: () => ({ 'networkpolicies-realized': policy()?.initialRealized === true }),
        ...(api?.host === undefined ? {} : { host: api.host }),
        port: config.apiPort,
        logger: this.logger,
        clock,
      });
      this.apiServer = server;
      await server.run(signal);
    } catch (err) {
      this.logger.error('the agent API server failed; antctl cannot reach this agent', { error: String(err) });
    }
  }
}

/** The Node addresses NodePorts answer on: its IPv4 addresses, filtered by `cidrs` when given. */
export function nodePortAddressesOf(nodeIPs: readonly string[], cidrs: readonly string[]): string[] {
  const v4 = nodeIPs.filter((ip) => ipFamily(ip) === 4);
  if (cidrs.length === 0) return v4;
  cidrs.forEach((c, i) => parseCidr(c, `antreaProxy.nodePortAddresses[${i}]`));
  return v4.filter((ip) => cidrs.some((c) => cidrContains(c, ip)));
}
