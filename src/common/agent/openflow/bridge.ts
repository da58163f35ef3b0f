/**
 * The agent's OpenFlow bridge client: programs the realized pipeline into one OVS bridge and keeps
 * it there. Every change is one atomic bundle (flows of all tables and groups together; meters
 * just before, as OVS cannot bundle them), recorded in an {@link OfStore} only once committed.
 * On every (re)connection it names the tables and synchronizes the switch with the record (the
 * first time after recording the features' initial state): a replay of every recorded meter, group
 * and flow, which also takes over what a previous agent left (groups, meters, identical flows).
 *
 * Operations run one at a time in call order; changes that pile up meanwhile are committed together
 * (see {@link BridgeClient.change}). While the switch is unreachable they wait for the
 * reconnection (and its replay) up to `opTimeoutMs`, then fail with OPENFLOW_DISCONNECTED.
 */
import { type Clock, systemClock } from '../../util/clock.ts';
import { errorMessage, ValidationError } from '../../util/errors.ts';
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

/** A change waiting in a batch (see {@link BridgeClient.change}). */
interface PendingChange {
  readonly build: (b: PlanBuilder) => void;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Whether a change's build only adds, replaces or deletes flows (so it can share a bundle with
 * others: group and meter operations are reordered within a bundle). Builds are pure: calling one
 * on a probe has no effect. A build that throws is applied alone (and fails there).
 */
function touchesOnlyFlows(build: (b: PlanBuilder) => void): boolean {
  let only = true;
  const other = (): void => {
    only = false;
  };
  const noop = (): void => undefined;
  try {
    build({
      addFlows: noop,
      replaceFlows: noop,
      deleteFlows: noop,
      setGroup: other,
      deleteGroup: other,
      setMeter: other,
      deleteMeter: other,
    });
  } catch {
    return false;
  }
  return only;
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
  /** Changes waiting for their turn in the queue, to be applied together (see {@link change}). */
  private openBatch: PendingChange[] | undefined;
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
   *
   * Changes requested while earlier operations are still running are committed together (group
   * commit): consecutive changes that touch only flows go into one bundle, followed by one
   * `afterChange`. Each caller still gets its own outcome: if the common bundle is refused (by the
   * switch, or by the record's checks), its changes are applied again one by one, so only the
   * faulty one fails. A change that touches groups or meters is applied alone, in its turn.
   */
  change(build: (b: PlanBuilder) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let batch = this.openBatch;
      if (batch === undefined) {
        const fresh: PendingChange[] = [];
        // The batch is applied when the queue reaches it; until then later changes join it.
        this.enqueueTask(() => this.applyBatch(fresh)).catch(() => undefined);
        this.openBatch = fresh;
        batch = fresh;
      }
      batch.push({ build, resolve, reject });
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

  /** Queues an operation; changes requested after it are applied after it. */
  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    this.openBatch = undefined;
    return this.enqueueTask(fn);
  }

  private enqueueTask<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Applies queued changes: runs of flow-only changes in one bundle each, the others alone. */
  private async applyBatch(batch: readonly PendingChange[]): Promise<void> {
    if (this.openBatch === batch) this.openBatch = undefined;
    let run: PendingChange[] = [];
    const flush = async (): Promise<void> => {
      const together = run;
      run = [];
      const [first] = together;
      if (together.length > 1) await this.applyTogether(together);
      else if (first !== undefined) await this.applyOne(first);
    };
    for (const c of batch) {
      // A change alone in its batch is applied as it is, without probing what it touches.
      if (batch.length > 1 && touchesOnlyFlows(c.build)) {
        run.push(c);
        continue;
      }
      await flush();
      await this.applyOne(c);
    }
    await flush();
  }

  private async applyOne(c: PendingChange): Promise<void> {
    try {
      await this.applyPlan(c.build);
      c.resolve();
    } catch (err) {
      c.reject(err);
    }
  }

  private async applyTogether(changes: readonly PendingChange[]): Promise<void> {
    try {
      await this.applyPlan((b) => {
        for (const c of changes) c.build(b);
      });
    } catch (err) {
      // Refused for what one of them asks: find it by applying them one by one. Any other
      // failure (no connection, a timeout) is every change's outcome.
      if (!(err instanceof ValidationError || (err instanceof OpenFlowError && err.info !== undefined))) {
        for (const c of changes) c.reject(err);
        return;
      }
      this.logger.debug('a group of flow changes was refused; applying them one by one', {
        changes: changes.length,
        error: errorMessage(err),
      });
      for (const c of changes) await this.applyOne(c);
      return;
    }
    for (const c of changes) c.resolve();
  }

  /** Plans, applies and records one change, then runs `afterChange`. */
  private async applyPlan(build: (b: PlanBuilder) => void): Promise<void> {
    const plan = this.store.plan(build);
    if (plan.before.length + plan.ops.length + plan.after.length === 0) return;
    const conn = await this.connection();
    if (plan.before.length > 0) await apply(conn, plan.before);
    await applyBundle(conn, plan.ops);
    if (plan.after.length > 0) await apply(conn, plan.after);
    plan.commit();
    await this.changed();
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
