/**
 * The agent (what `antrea-agent` runs): connects to OVSDB, serves the CNI socket at once (ADD waits
 * for readiness, answering TRY_AGAIN_LATER after podNetworkWaitTimeoutMs), initializes the Node,
 * programs the OpenFlow pipeline in a new cookie round, reconciles what a previous run left,
 * re-installs the flows of the Pods that survived, deletes the previous round's flows, then marks
 * the Pod network ready. `run(signal)` returns after a clean shutdown: the socket is closed and
 * nothing on the datapath is torn down (Pods keep their network while the agent restarts).
 */
import { join } from 'node:path';
import type { PlatformStrategy } from '../host/platform.ts';
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
import { PodConnectivityFeature, PodFlowInstaller } from './openflow/pod-connectivity.ts';
import {
  NetworkPolicyController,
  type PolicyEventHandler,
  type RealizationStatusSink,
} from './networkpolicy/controller.ts';
import type { PodFlowClient, PodFlowTarget } from './cniserver/server.ts';
import { aborted, type Runnable } from '../util/runnable.ts';
import { CniGrpcService } from './cniserver/grpc.ts';
import { PendingAddJournal } from './cniserver/journal.ts';
import { CniServer } from './cniserver/server.ts';
import { type AgentConfig, hostLocalDataDir } from './config.ts';
import { type InitializedNode, Initializer } from './initializer.ts';
import { InterfaceStore } from './interfacestore.ts';
import { HostLocalIpam } from './ipam/host-local.ts';
import type { NodeConfigSource } from './node-config.ts';

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
}

/**
 * The CNI server's Pod flow client, with policy first: a new Pod's rules (isolation included) are
 * realized before its forwarding flows exist, and its rules are updated after they are gone.
 */
class PolicyAwarePodFlows implements PodFlowClient {
  private readonly inner: PodFlowClient;
  private readonly policy: NetworkPolicyController;
  private readonly store: InterfaceStore;

  constructor(inner: PodFlowClient, policy: NetworkPolicyController, store: InterfaceStore) {
    this.inner = inner;
    this.policy = policy;
    this.store = store;
  }

  async installPodFlows(iface: PodFlowTarget): Promise<void> {
    await this.policy.podAdded(iface.container.podNamespace, iface.container.podName, iface.name, {
      ofport: iface.ofport,
      ips: iface.ips,
    });
    await this.inner.installPodFlows(iface);
  }

  async uninstallPodFlows(portName: string): Promise<void> {
    const known = this.store.byName(portName)?.container;
    await this.inner.uninstallPodFlows(portName);
    if (known !== undefined) await this.policy.podRemoved(known.podNamespace, known.podName, portName);
  }
}

export class Agent implements Runnable {
  private readonly o: AgentOptions;
  private readonly logger: Logger;
  readonly store = new InterfaceStore();

  constructor(opts: AgentOptions) {
    this.o = opts;
    this.logger = opts.logger ?? nullLogger;
  }

  async run(signal: AbortSignal): Promise<void> {
    const { config, platform } = this.o;
    const clock = this.o.clock ?? systemClock;
    const endpoint = `unix:${join(config.ovsRunDir, 'db.sock')}`;
    const ovsdb = await OvsdbClient.connect({ endpoint, logger: this.logger, clock, timeoutMs: 30_000 });
    const inner = new AbortController();
    const stop = (): void => inner.abort(signal.reason);
    signal.addEventListener('abort', stop, { once: true });
    const tasks: Promise<void>[] = [];
    let openflow: OpenFlowClient | undefined;
    let policyController: NetworkPolicyController | undefined;
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
        logger: this.logger,
      }).initialize(inner.signal);
      // The OpenFlow pipeline, in a new cookie round; the previous round's flows stay until the
      // new one is complete, so Pods keep forwarding across an agent restart.
      const prevRound = parseRound(bridge.get()?.externalIds[ROUND_KEY]);
      const cookies = new CookieAllocator(CookieAllocator.nextRound(prevRound));
      const feature = new PodConnectivityFeature({
        cookies,
        gateway: { ofport: node.gatewayOfport, mac: node.gatewayMac, ips: node.gatewayIPs },
        ...(node.tunnelOfport === undefined ? {} : { tunnel: { ofport: node.tunnelOfport } }),
        podCIDRs: node.podCIDRs,
      });
      const ofClient = new OpenFlowClient({
        endpoint: `unix:${join(config.ovsRunDir, `${config.ovsBridge}.mgmt`)}`,
        logger: this.logger,
        clock,
      });
      openflow = ofClient;
      const npFeature = new NetworkPolicyFeature({ cookies, gatewayIPs: node.gatewayIPs });
      const ofBridge = new BridgeClient({
        client: ofClient,
        pipeline: new RealizedPipeline([feature, npFeature]),
        cookies,
        logger: this.logger,
        clock,
      });
      tasks.push(ofClient.run(inner.signal));
      await ofBridge.ready(inner.signal);
      const policy = new NetworkPolicyController({
        sink: ofBridge,
        feature: npFeature,
        logger: this.logger,
        clock,
        ...(this.o.policyStatus === undefined ? {} : { status: this.o.policyStatus }),
      });
      policyController = policy;
      this.o.onPolicyController?.(policy);
      server.setPodFlows(new PolicyAwarePodFlows(new PodFlowInstaller(ofBridge, feature), policy, this.store));

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
      inner.abort();
      await Promise.allSettled(tasks);
      await ovsdb.close();
    }
    // A failed listener surfaces here (unless we were asked to stop).
    if (!signal.aborted) for (const t of tasks) await t;
  }
}
