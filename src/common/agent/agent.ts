/**
 * The agent (what `antrea-agent` runs): connects to OVSDB, serves the CNI socket at once (ADD waits
 * for readiness, answering TRY_AGAIN_LATER after podNetworkWaitTimeoutMs), initializes the Node,
 * reconciles what a previous run left, then marks the Pod network ready. `run(signal)` returns
 * after a clean shutdown: the socket is closed and nothing on the datapath is torn down (Pods keep
 * their network while the agent restarts).
 */
import { join } from 'node:path';
import type { PlatformStrategy } from '../host/platform.ts';
import { OvsdbBridge } from '../ovs/ovsdb/bridge.ts';
import { OvsdbClient } from '../ovs/ovsdb/client.ts';
import { type Clock, systemClock } from '../util/clock.ts';
import { type CrashPoints, noCrashPoints } from '../util/crash.ts';
import type { CommandRunner } from '../util/exec.ts';
import { type Logger, nullLogger } from '../util/log.ts';
import { aborted, type Runnable } from '../util/runnable.ts';
import { CniGrpcService } from './cniserver/grpc.ts';
import { PendingAddJournal } from './cniserver/journal.ts';
import { CniServer, type PodFlowClient } from './cniserver/server.ts';
import { type AgentConfig, hostLocalDataDir } from './config.ts';
import { type InitializedNode, Initializer } from './initializer.ts';
import { InterfaceStore } from './interfacestore.ts';
import { HostLocalIpam } from './ipam/host-local.ts';
import type { NodeConfigSource } from './node-config.ts';

export interface AgentOptions {
  readonly config: AgentConfig;
  readonly platform: PlatformStrategy;
  readonly nodeConfigSource: NodeConfigSource;
  readonly runner: CommandRunner;
  readonly logger?: Logger;
  readonly clock?: Clock;
  readonly crashPoints?: CrashPoints;
  /** The Pod flows; absent until the OpenFlow pipeline is wired. */
  readonly podFlows?: PodFlowClient;
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
    const endpoint = `unix:${join(config.ovsRunDir, 'db.sock')}`;
    const ovsdb = await OvsdbClient.connect({ endpoint, logger: this.logger, clock, timeoutMs: 30_000 });
    const inner = new AbortController();
    const stop = (): void => inner.abort(signal.reason);
    signal.addEventListener('abort', stop, { once: true });
    const tasks: Promise<void>[] = [];
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
        ...(this.o.podFlows === undefined ? {} : { podFlows: this.o.podFlows }),
        health: () => (ovsdb.isConnected ? 'ok' : 'ovsdb-down'),
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
      const report = await server.reconcile(node);
      this.logger.info('reconciled the previous run', { ...report });
      server.setStoreReady(node);
      server.setNetworkReady();
      this.logger.info('Pod network ready', { node: node.nodeName, podCIDRs: node.podCIDRs, mtu: node.mtu });
      this.o.onReady?.(node);
      await Promise.race([aborted(inner.signal), served]);
      inner.abort();
      await server.drain();
    } finally {
      signal.removeEventListener('abort', stop);
      inner.abort();
      await Promise.allSettled(tasks);
      await ovsdb.close();
    }
    // A failed listener surfaces here.
    for (const t of tasks) await t;
  }
}
