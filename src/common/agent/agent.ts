/**
 * The agent (what `antrea-agent` runs): connects to OVSDB, serves the CNI socket at once (ADD waits
 * for readiness, answering TRY_AGAIN_LATER after podNetworkWaitTimeoutMs), initializes the Node,
 * programs the OpenFlow pipeline in a new cookie round, reconciles what a previous run left,
 * re-installs the flows of the Pods that survived, deletes the previous round's flows, then marks
 * the Pod network ready. `run(signal)` returns after a clean shutdown: the socket is closed and
 * nothing on the datapath is torn down (Pods keep their network while the agent restarts).
 */
import { join } from 'node:path';
import { ovsSocketEndpoint, type PlatformStrategy } from '../host/platform.ts';
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
import { PodConnectivityFeature, PodFlowInstaller } from './openflow/pod-connectivity.ts';
import { aborted, type Runnable } from '../util/runnable.ts';
import { CniGrpcService } from './cniserver/grpc.ts';
import { PendingAddJournal } from './cniserver/journal.ts';
import { ovsdbOfportEvents } from './cniserver/ofport-events.ts';
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
    const endpoint = ovsSocketEndpoint(platform.os, config.ovsRunDir, 'db.sock');
    const ovsdb = await OvsdbClient.connect({ endpoint, logger: this.logger, clock, timeoutMs: 30_000 });
    const inner = new AbortController();
    const stop = (): void => inner.abort(signal.reason);
    signal.addEventListener('abort', stop, { once: true });
    const tasks: Promise<void>[] = [];
    let openflow: OpenFlowClient | undefined;
    const cleanups: (() => void)[] = [];
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
        endpoint: ovsSocketEndpoint(platform.os, config.ovsRunDir, `${config.ovsBridge}.mgmt`),
        logger: this.logger,
        clock,
      });
      openflow = ofClient;
      const ofBridge = new BridgeClient({
        client: ofClient,
        pipeline: new RealizedPipeline([feature]),
        cookies,
        logger: this.logger,
        clock,
      });
      tasks.push(ofClient.run(inner.signal));
      await ofBridge.ready(inner.signal);
      server.setPodFlows(new PodFlowInstaller(ofBridge, feature));

      const report = await server.reconcile(node);
      this.logger.info('reconciled the previous run', { ...report });
      server.setStoreReady(node);
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
      signal.removeEventListener('abort', stop);
      for (const c of cleanups) c();
      inner.abort();
      await Promise.allSettled(tasks);
      await ovsdb.close();
    }
    // A failed listener surfaces here (unless we were asked to stop).
    if (!signal.aborted) for (const t of tasks) await t;
  }
}
