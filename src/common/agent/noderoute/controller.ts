/**
 * The NodeRoute controller (Antrea's pkg/agent/controller/noderoute, facts §4.4): watches Nodes and,
 * per remote Node with a Pod CIDR and a transport address, installs the OpenFlow flows (tunnel with
 * tun_dst, or to the gateway) and the host routes through the platform's RouteClient, as the
 * traffic mode says: encap tunnels everything, noEncap routes directly via the Node IP (or leaves
 * it to the underlay when the peer is in another subnet), hybrid tunnels only to Nodes outside the
 * local transport subnets. A deleted Node (or one that lost its CIDR or address) leaves nothing.
 *
 * Work is serialized on one queue keyed by Node name; failures are retried with backoff. At start
 * the routes of Nodes that no longer exist are reconciled away once the first Node list is in.
 * Not run in networkPolicyOnly mode (no routing there).
 */
import type { PeerRoute, RouteClient } from '../../host/routes.ts';
import { peerRouteKind, ROUTE_SYNC_INTERVAL_MS } from '../../host/routes.ts';
import { Backoff } from '../../util/backoff.ts';
import { type Clock, systemClock } from '../../util/clock.ts';
import { errorMessage } from '../../util/errors.ts';
import { cidrIp, firstHostIp, ipFamily, parseCidr } from '../../util/ip.ts';
import { Latch } from '../../util/latch.ts';
import { type Logger, nullLogger } from '../../util/log.ts';
import type { Runnable } from '../../util/runnable.ts';
import type { TrafficEncapMode } from '../config.ts';
import type { PeerNodeFlowTarget } from '../openflow/pod-connectivity.ts';
import type { NodeSource, PeerNode } from './node-source.ts';

/** What the controller needs from the OpenFlow side (NodeFlowInstaller implements it). */
export interface NodeFlowClient {
  /** Makes the Node's flows exactly these (idempotent). */
  installNodeFlows(peer: PeerNodeFlowTarget): Promise<void>;
  /** Removes the Node's flows; absent: nothing happens. */
  uninstallNodeFlows(nodeName: string): Promise<void>;
}

export interface NodeRouteControllerOptions {
  readonly localNodeName: string;
  readonly trafficEncapMode: TrafficEncapMode;
  /** The local transport interface's addresses with prefix (for hybrid and direct routing). */
  readonly localTransportCIDRs: readonly string[];
  readonly source: NodeSource;
  readonly flows: NodeFlowClient;
  /** Absent on a platform without host routes: flows only. */
  readonly routes?: RouteClient;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Retry delays (default 2 s doubling to 120 s, as Antrea's workqueue). */
  readonly backoff?: Backoff;
}

/** What is installed for one remote Node. */
interface Installed {
  readonly signature: string;
  readonly routes: readonly PeerRoute[];
}

/** The routes a Node needs, or undefined when it cannot be routed (no CIDR or no address). */
export function desiredPeerRoutes(
  node: PeerNode,
  mode: TrafficEncapMode,
  localTransportCIDRs: readonly string[],
): PeerRoute[] | undefined {
  const out: PeerRoute[] = [];
  for (const cidr of node.podCIDRs) {
    const family = parseCidr(cidr, `node ${node.name} podCIDR`).family;
    const nodeIP = node.nodeIPs.find((ip) => ipFamily(ip) === family);
    if (nodeIP === undefined) continue;
    out.push({
      podCIDR: cidr,
      nodeName: node.name,
      nodeIP,
      peerGatewayIP: firstHostIp(cidr),
      via: peerRouteKind(mode, nodeIP, localTransportCIDRs),
    });
  }
  return out.length === 0 ? undefined : out;
}

export class NodeRouteController implements Runnable {
  private readonly o: NodeRouteControllerOptions;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly backoff: Backoff;
  private readonly installed = new Map<string, Installed>();
  private readonly dirty = new Set<string>();
  private readonly failed = new Set<string>();
  private readonly initial = new Latch();
  private wake: (() => void) | undefined;
  /** Completed (successful) Node installs and removals, for tests and logs. */
  applied = 0;

  constructor(opts: NodeRouteControllerOptions) {
    this.o = opts;
    this.logger = (opts.logger ?? nullLogger).child({ component: 'noderoute' });
    this.clock = opts.clock ?? systemClock;
    this.backoff = opts.backoff ?? new Backoff({ initialMs: 2_000, maxMs: 120_000 });
  }

  /** Resolves once the first Node list has been processed (successfully or not). */
  waitInitialSync(signal?: AbortSignal): Promise<void> {
    return this.initial.wait(signal);
  }

  /** Names of the remote Nodes with flows and routes installed. */
  installedNodes(): string[] {
    return [...this.installed.keys()].sort();
  }

  /** Whether nothing is queued or waiting for a retry. */
  get idle(): boolean {
    return this.dirty.size === 0 && this.failed.size === 0;
  }

  async run(signal: AbortSignal): Promise<void> {
    if (this.o.trafficEncapMode === 'networkPolicyOnly') {
      this.logger.info('networkPolicyOnly: no Node routes');
      this.initial.open();
      return;
    }
    const unsubscribe = this.o.source.onChange((name) => this.enqueue(name));
    try {
      await this.o.source.waitSynced(signal);
      const nodes = this.o.source.list().filter((n) => n.name !== this.o.localNodeName);
      if (this.o.routes !== undefined) {
        try {
          await this.o.routes.reconcile(nodes.flatMap((n) => n.podCIDRs));
        } catch (err) {
          this.logger.warn('reconciling routes failed', { error: errorMessage(err) });
        }
      }
      for (const n of nodes) this.dirty.add(n.name);
      await this.drain();
      this.initial.open();
      this.logger.info('initial Node list processed', { nodes: this.installed.size, failed: this.failed.size });
      while (!signal.aborted) {
        await this.waitForWork(signal);
        await this.drain();
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    } finally {
      unsubscribe();
    }
  }

  private enqueue(name: string): void {
    this.dirty.add(name);
    this.wake?.();
  }

  /** Waits for a change, or for the retry delay when something failed. */
  private async waitForWork(signal: AbortSignal): Promise<void> {
    if (this.dirty.size > 0) return;
    const woken = new Promise<void>((resolve) => (this.wake = resolve));
    const timers = new AbortController();
    const both = AbortSignal.any([signal, timers.signal]);
    try {
      const waits: Promise<unknown>[] = [woken, new Promise((r) => both.addEventListener('abort', r, { once: true }))];
      if (this.failed.size > 0) waits.push(this.clock.sleep(this.backoff.next(), both).catch(() => undefined));
      await Promise.race(waits);
    } finally {
      timers.abort();
      this.wake = undefined;
    }
    if (this.dirty.size === 0) {
      for (const name of this.failed) this.dirty.add(name);
      this.failed.clear();
    }
  }

  private async drain(): Promise<void> {
    while (this.dirty.size > 0) {
      const names = [...this.dirty];
      this.dirty.clear();
      for (const name of names) {
        try {
          await this.sync(name);
          this.failed.delete(name);
        } catch (err) {
          this.failed.add(name);
          this.logger.warn('Node route sync failed, will retry', { node: name, error: errorMessage(err) });
        }
      }
    }
    if (this.failed.size === 0) this.backoff.reset();
  }

  /** Brings one Node's flows and routes to what the source says. */
  private async sync(name: string): Promise<void> {
    if (name === this.o.localNodeName) return;
    const node = this.o.source.get(name);
    const routes =
      node === undefined ? undefined : desiredPeerRoutes(node, this.o.trafficEncapMode, this.o.localTransportCIDRs);
    if (routes === undefined) {
      if (node !== undefined) this.logger.debug('Node has no Pod CIDR or address yet', { node: name });
      await this.remove(name);
      return;
    }
    const signature = JSON.stringify(routes);
    const have = this.installed.get(name);
    if (have?.signature === signature) return;
    for (const r of routes) {
      for (const [other, inst] of this.installed) {
        if (other !== name && inst.routes.some((x) => sameCidr(x.podCIDR, r.podCIDR))) {
          throw new Error(`Pod CIDR ${r.podCIDR} of Node ${name} is still installed for Node ${other}`);
        }
      }
    }
    const first = routes[0];
    const v4 = routes.find((r) => ipFamily(r.nodeIP) === 4) ?? first;
    if (v4 === undefined) return;
    await this.o.flows.installNodeFlows({
      name,
      podCIDRs: routes.map((r) => r.podCIDR),
      nodeIP: v4.nodeIP,
      tunnel: v4.via === 'tunnel',
    });
    if (this.o.routes !== undefined) {
      for (const old of have?.routes ?? []) {
        if (!routes.some((r) => sameCidr(r.podCIDR, old.podCIDR))) await this.o.routes.deleteRoutes(old.podCIDR);
      }
      for (const r of routes) await this.o.routes.addRoutes(r);
    }
    this.installed.set(name, { signature, routes });
    this.applied++;
    this.logger.info('Node routes installed', {
      node: name,
      routes: routes.map(
        (r) =>
          `${r.podCIDR} via ${r.via === 'tunnel' ? `tunnel to ${r.nodeIP}` : r.via === 'direct' ? r.nodeIP : 'underlay'}`,
      ),
    });
  }

  private async remove(name: string): Promise<void> {
    const have = this.installed.get(name);
    if (have === undefined) return;
    if (this.o.routes !== undefined) for (const r of have.routes) await this.o.routes.deleteRoutes(r.podCIDR);
    await this.o.flows.uninstallNodeFlows(name);
    this.installed.delete(name);
    this.applied++;
    this.logger.info('Node routes removed', { node: name });
    // A Node waiting for this one's Pod CIDR can go now.
    for (const f of this.failed) this.dirty.add(f);
  }
}

function sameCidr(a: string, b: string): boolean {
  return cidrIp(a) === cidrIp(b) && parseCidr(a).prefix === parseCidr(b).prefix;
}

/**
 * Runs the host-network resync every `intervalMs` (Antrea: 60 s) until `signal` aborts: each round
 * calls `routes.sync()`, which restores rules and routes removed behind the agent's back. A failed
 * round is logged and the loop goes on.
 */
export async function runRouteSync(
  routes: RouteClient,
  signal: AbortSignal,
  opts: { clock?: Clock; logger?: Logger; intervalMs?: number } = {},
): Promise<void> {
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? nullLogger;
  for (;;) {
    try {
      await clock.sleep(opts.intervalMs ?? ROUTE_SYNC_INTERVAL_MS, signal);
    } catch {
      return;
    }
    try {
      await routes.sync();
    } catch (err) {
      logger.warn('host network resync failed', { error: errorMessage(err) });
    }
  }
}
