/**
 * The agent's OpenFlow bridge client: programs the realized pipeline into one OVS bridge and keeps
 * it there. Every change is one atomic bundle (flows of all tables and groups together; meters
 * just before, as OVS cannot bundle them), recorded in an {@link OfStore} only once committed.
 * On every (re)connection it names the tables and synchronizes the switch with the record (the
 * first time after recording the features' initial state): a replay of every recorded meter, group
 * and flow, which also takes over what a previous agent left (groups, meters, identical flows).
 *
 * Operations run one at a time in call order. While the switch is unreachable they wait for the
 * reconnection (and its replay) up to `opTimeoutMs`, then fail with OPENFLOW_DISCONNECTED.
 */
import { type Clock, systemClock } from '../../util/clock.ts';
import { errorMessage } from '../../util/errors.ts';
import { type Logger, nullLogger } from '../../util/log.ts';
import type { OpenFlowClient } from '../../ovs/openflow/client.ts';
import type { OpenFlowConnection, PacketInListener } from '../../ovs/openflow/connection.ts';
import type { Flow, FlowStats } from '../../ovs/openflow/flow.ts';
import type { Group } from '../../ovs/openflow/group.ts';
import type { PacketOut } from '../../ovs/openflow/messages.ts';
import type { Meter } from '../../ovs/openflow/meter.ts';
import {
  type SwitchOp,
  apply,
  applyBundle,
  dumpFlows,
  dumpGroups,
  dumpMeters,
  op,
  setTableNames,
} from '../../ovs/openflow/ops.ts';
import { OpenFlowError, isOpenFlowError } from '../../ovs/openflow/errors.ts';
import type { CookieAllocator } from './cookie.ts';
import type { RealizedPipeline } from './framework.ts';
import { OfStore, type PlanBuilder } from './store.ts';

export interface BridgeClientOptions {
  readonly client: OpenFlowClient;
  readonly pipeline: RealizedPipeline;
  readonly cookies: CookieAllocator;
  readonly logger?: Logger;
  /** How long an operation waits for a connection (default 30 s). */
  readonly opTimeoutMs?: number;
  readonly clock?: Clock;
  /**
   * Called on every (re)connection to the switch before its state is synchronized: for settings of
   * the datapath that do not survive an ovs-vswitchd restart. A failure is logged; the sync goes on.
   */
  readonly onSwitchConnected?: () => Promise<void>;
  /**
   * Called after every committed change and every synchronization, before the operation resolves
   * (so a caller that awaited a change knows it is done): for the userspace datapath, purging the
   * datapath flows translated from the previous tables (see ../userspace-datapath.ts). A failure is
   * logged; the change stands.
   */
  readonly afterChange?: () => Promise<void>;
}

/** The cache key of the framework's and features' initial flows. */
export const INITIAL_FLOWS_KEY = '<initial>';

export class BridgeClient {
  readonly pipeline: RealizedPipeline;
  readonly cookies: CookieAllocator;
  private readonly client: OpenFlowClient;
  private readonly logger: Logger;
  private readonly store = new OfStore();
  private readonly opTimeoutMs: number;
  private readonly clock: Clock;
  private queue: Promise<unknown> = Promise.resolve();
  private initialized = false;
  private replays = 0;
  private readonly onSwitchConnected: (() => Promise<void>) | undefined;
  private readonly afterChange: (() => Promise<void>) | undefined;

  constructor(opts: BridgeClientOptions) {
    this.client = opts.client;
    this.pipeline = opts.pipeline;
    this.cookies = opts.cookies;
    this.logger = (opts.logger ?? nullLogger).child({ component: 'bridge-client' });
    this.opTimeoutMs = opts.opTimeoutMs ?? 30_000;
    this.clock = opts.clock ?? systemClock;
    this.onSwitchConnected = opts.onSwitchConnected;
    this.afterChange = opts.afterChange;
    this.client.onConnect((conn) => this.onConnect(conn));
  }

  /** How many times the recorded state was replayed after a reconnection. */
  get replayCount(): number {
    return this.replays;
  }

  /** Number of flows recorded (and installed). */
  get flowCount(): number {
    return this.store.flowCount;
  }

  /** Resolves once the first connection is up and the initial state is installed. */
  async ready(signal?: AbortSignal): Promise<void> {
    await this.client.ready(signal);
  }

  // ---- changes ---------------------------------------------------------------------------------

  /** Adds flows under `cacheKey` (identical ones already there are skipped). Atomic. */
  addFlows(cacheKey: string, flows: readonly Flow[]): Promise<void> {
    return this.change((b) => b.addFlows(cacheKey, flows));
  }

  /** Makes `flows` the complete set under `cacheKey` (adds, modifies, deletes). Atomic. */
  replaceFlows(cacheKey: string, flows: readonly Flow[]): Promise<void> {
    return this.change((b) => b.replaceFlows(cacheKey, flows));
  }

  /** Deletes the flows under `cacheKey`; no-op if there are none. Atomic. */
  deleteFlows(cacheKey: string): Promise<void> {
    return this.change((b) => b.deleteFlows(cacheKey));
  }

  /** Adds or replaces a group (no-op if identical). */
  setGroup(group: Group): Promise<void> {
    return this.change((b) => b.setGroup(group));
  }

  deleteGroup(groupId: number): Promise<void> {
    return this.change((b) => b.deleteGroup(groupId));
  }

  setMeter(meter: Meter): Promise<void> {
    return this.change((b) => b.setMeter(meter));
  }

  deleteMeter(meterId: number): Promise<void> {
    return this.change((b) => b.deleteMeter(meterId));
  }

  /**
   * Applies several changes (flows under several keys, groups, meters) as one atomic bundle. On
   * failure nothing changes, in OVS or in the record, and the error names the failing flow or group.
   */
  change(build: (b: PlanBuilder) => void): Promise<void> {
    return this.enqueue(async () => {
      const plan = this.store.plan(build);
      if (plan.before.length + plan.ops.length + plan.after.length === 0) return;
      const conn = await this.connection();
      if (plan.before.length > 0) await apply(conn, plan.before);
      await applyBundle(conn, plan.ops);
      if (plan.after.length > 0) await apply(conn, plan.after);
      plan.commit();
      await this.changed();
    });
  }

  /**
   * Deletes flows of other rounds (cookie round bits differ from ours) in every table: the cleanup
   * after a restarted agent has converged. Flows of this round are not touched.
   */
  deleteStaleRounds(previousRound: number): Promise<void> {
    return this.enqueue(async () => {
      if (previousRound === this.cookies.round) return;
      const conn = await this.connection();
      await applyBundle(conn, [
        op.deleteFlows({ cookie: BigInt(previousRound) << 48n, cookieMask: 0xffff_0000_0000_0000n }),
      ]);
      await this.changed();
    });
  }

  // ---- reads and packets -----------------------------------------------------------------------

  /** The flows recorded under a cache key (what the agent believes is installed). */
  recordedFlows(cacheKey?: string): Flow[] {
    return cacheKey === undefined ? this.store.allFlows() : this.store.flowsOf(cacheKey);
  }
  recordedGroups(): Group[] {
    return this.store.allGroups();
  }
  recordedMeters(): Meter[] {
    return this.store.allMeters();
  }

  /** Flows as OVS has them, with counters (optionally one table). */
  async dumpFlows(table?: number): Promise<FlowStats[]> {
    return dumpFlows(await this.connection(), table === undefined ? {} : { table });
  }

  /** Flows as OVS has them, with counters, selected by table and cookie (flow stats multipart). */
  async dumpFlowsFiltered(filter: { table?: number; cookie?: bigint; cookieMask?: bigint }): Promise<FlowStats[]> {
    return dumpFlows(await this.connection(), filter);
  }

  async packetOut(po: PacketOut): Promise<void> {
    await (await this.connection()).packetOut(po);
  }

  onPacketIn(listener: PacketInListener): () => void {
    return this.client.onPacketIn(listener);
  }

  /** Resumes a packet paused by controller(pause). */
  async resume(pin: Parameters<OpenFlowConnection['resume']>[0]): Promise<void> {
    await (await this.connection()).resume(pin);
  }

  // ---- internals -------------------------------------------------------------------------------

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async changed(): Promise<void> {
    if (this.afterChange === undefined) return;
    try {
      await this.afterChange();
    } catch (err) {
      this.logger.warn('datapath clean-up after a flow change failed', { error: errorMessage(err) });
    }
  }

  private async connection(): Promise<OpenFlowConnection> {
    const signal = AbortSignal.timeout(this.opTimeoutMs);
    try {
      return await this.client.ready(signal);
    } catch (err) {
      throw new OpenFlowError(
        'OPENFLOW_DISCONNECTED',
        `no OpenFlow connection within ${this.opTimeoutMs}ms`,
        undefined,
        err,
      );
    }
  }

  /**
   * Connect handler: names the tables, records the features' initial state (first time only), then
   * synchronizes the switch with the record. The first connection and every reconnection do the
   * same, so a restarted agent also takes over the groups and meters its predecessor left.
   */
  private async onConnect(conn: OpenFlowConnection): Promise<void> {
    if (this.onSwitchConnected !== undefined) {
      try {
        await this.onSwitchConnected();
      } catch (err) {
        this.logger.warn('datapath settings after connecting to the switch failed', { error: errorMessage(err) });
      }
    }
    await setTableNames(conn, this.pipeline.tableNames());
    if (!this.initialized) {
      const init = this.pipeline.initialState(this.cookies);
      this.store
        .plan((b) => {
          for (const m of init.meters) b.setMeter(m);
          for (const g of init.groups) b.setGroup(g);
          b.addFlows(INITIAL_FLOWS_KEY, init.flows);
        })
        .commit();
      this.initialized = true;
      await this.sync(conn);
      await this.changed();
      this.logger.info('pipeline installed', { tables: this.pipeline.tables.length, flows: init.flows.length });
      return;
    }
    await this.sync(conn);
    await this.changed();
    this.replays++;
  }

  /**
   * Makes the switch hold exactly the recorded state of this round: meters are added or modified
   * (OVS cannot bundle them); then one bundle deletes the groups not recorded (with the flows of
   * any round that use them), adds or modifies the recorded groups, deletes every flow of this
   * cookie round and adds the recorded flows. Other flows of other rounds are left alone.
   */
  private async sync(conn: OpenFlowConnection): Promise<void> {
    const meters = this.store.allMeters();
    if (meters.length > 0) {
      const present = new Map((await dumpMeters(conn)).map((m) => [m.meterId, m.toString()]));
      const ops: SwitchOp[] = [];
      for (const m of meters) {
        const have = present.get(m.meterId);
        if (have === undefined) ops.push(op.addMeter(m));
        else if (have !== m.toString()) ops.push(op.modifyMeter(m));
      }
      await apply(conn, ops);
    }
    const presentGroups = new Map((await dumpGroups(conn)).map((g) => [g.groupId, g.toString()]));
    const ops: SwitchOp[] = [];
    // Groups nobody recorded (a previous run's Services) go first; OVS removes the flows using them.
    const recorded = new Set(this.store.allGroups().map((g) => g.groupId));
    for (const id of presentGroups.keys()) if (!recorded.has(id)) ops.push(op.deleteGroup(id));
    for (const g of this.store.allGroups()) {
      const have = presentGroups.get(g.groupId);
      if (have === undefined) ops.push(op.addGroup(g));
      else if (have !== g.toString()) ops.push(op.modifyGroup(g));
    }
    ops.push(op.deleteFlows(this.cookies.roundFilter));
    for (const f of this.store.allFlows()) ops.push(op.addFlow(f));
    try {
      await applyBundle(conn, ops);
    } catch (err) {
      this.logger.error('synchronizing the switch failed', { error: errorMessage(err) });
      throw err;
    }
    this.logger.info('switch synchronized', {
      meters: meters.length,
      groups: this.store.allGroups().length,
      flows: this.store.flowCount,
    });
  }
}

export { isOpenFlowError };
