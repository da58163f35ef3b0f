/**
 * The agent's record of what it installed in OVS: flows grouped under cache keys (a Pod's interface
 * name, a Node name, a Service key...), groups and meters. It plans the OpenFlow operations that
 * take the switch from the recorded state to a requested one, and records the result only after
 * the caller applied them. The same record is replayed after a reconnection.
 */
import { ValidationError } from '../../util/errors.ts';
import type { Flow } from '../../ovs/openflow/flow.ts';
import type { Group } from '../../ovs/openflow/group.ts';
import type { Meter } from '../../ovs/openflow/meter.ts';
import { type SwitchOp, op } from '../../ovs/openflow/ops.ts';

/** Operations to apply, and how to record them once applied. */
export interface Plan {
  /** Meter additions and changes (meters cannot be bundled): applied before the bundle. */
  readonly before: readonly SwitchOp[];
  /** Group and flow changes, applied in one atomic bundle. */
  readonly ops: readonly SwitchOp[];
  /** Meter deletions: applied after the bundle removed the flows that used them. */
  readonly after: readonly SwitchOp[];
  /** Records the planned state; call only after the operations succeeded. */
  commit(): void;
}

type Change = () => void;

/** Accumulates changes into one plan (see {@link OfStore.plan}). */
export interface PlanBuilder {
  /** Adds flows under `cacheKey`, keeping the ones already there; identical flows are skipped. */
  addFlows(cacheKey: string, flows: readonly Flow[]): void;
  /** Makes `flows` the complete set under `cacheKey`: adds, modifies and deletes as needed. */
  replaceFlows(cacheKey: string, flows: readonly Flow[]): void;
  /** Deletes every flow recorded under `cacheKey` (no-op if there is none). */
  deleteFlows(cacheKey: string): void;
  /** Adds or modifies a group (no-op if identical). */
  setGroup(group: Group): void;
  /** Deletes a group (no-op if absent). */
  deleteGroup(groupId: number): void;
  setMeter(meter: Meter): void;
  deleteMeter(meterId: number): void;
}

export class OfStore {
  private readonly byKey = new Map<string, Map<string, Flow>>();
  private readonly owner = new Map<string, string>();
  private readonly groups = new Map<number, Group>();
  private readonly meters = new Map<number, Meter>();

  get flowCount(): number {
    return this.owner.size;
  }

  /** Flows recorded under `cacheKey`. */
  flowsOf(cacheKey: string): Flow[] {
    return [...(this.byKey.get(cacheKey)?.values() ?? [])];
  }

  allFlows(): Flow[] {
    const out: Flow[] = [];
    for (const m of this.byKey.values()) out.push(...m.values());
    return out;
  }
  allGroups(): Group[] {
    return [...this.groups.values()];
  }
  allMeters(): Meter[] {
    return [...this.meters.values()];
  }
  cacheKeys(): string[] {
    return [...this.byKey.keys()];
  }

  /**
   * Plans several changes together. Later changes see earlier ones. Throws a ValidationError (and
   * plans nothing) if two cache keys would own the same flow (table, priority and match).
   */
  plan(build: (b: PlanBuilder) => void): Plan {
    // Working copies of the parts we touch.
    const keys = new Map<string, Map<string, Flow> | undefined>();
    const owner = new Map<string, string | undefined>();
    const groups = new Map<number, Group | undefined>();
    const meters = new Map<number, Meter | undefined>();
    const flowKeyOf = (cacheKey: string): Map<string, Flow> => {
      if (!keys.has(cacheKey)) keys.set(cacheKey, new Map(this.byKey.get(cacheKey) ?? []));
      return keys.get(cacheKey) ?? new Map<string, Flow>();
    };
    const ownerOf = (k: string): string | undefined => (owner.has(k) ? owner.get(k) : this.owner.get(k));
    const groupOf = (id: number): Group | undefined => (groups.has(id) ? groups.get(id) : this.groups.get(id));
    const meterOf = (id: number): Meter | undefined => (meters.has(id) ? meters.get(id) : this.meters.get(id));
    const flowOps: SwitchOp[] = [];
    const groupOps: SwitchOp[] = [];
    const meterOps: SwitchOp[] = [];

    const putFlow = (cacheKey: string, set: Map<string, Flow>, f: Flow): void => {
      const k = f.key;
      const o = ownerOf(k);
      if (o !== undefined && o !== cacheKey) {
        throw new ValidationError(
          'flows',
          `flow "${f.toString()}" is already installed under "${o}" (not "${cacheKey}")`,
        );
      }
      const old = set.get(k);
      if (old === undefined) flowOps.push(op.addFlow(f));
      else if (old.toString() === f.toString()) return;
      else if (old.cookie === f.cookie && sameNonActions(old, f)) flowOps.push(op.modifyFlow(f));
      else flowOps.push(op.addFlow(f));
      set.set(k, f);
      owner.set(k, cacheKey);
    };
    const dropFlow = (set: Map<string, Flow>, f: Flow): void => {
      flowOps.push(op.deleteFlow(f));
      set.delete(f.key);
      owner.set(f.key, undefined);
    };
    const checkUnique = (flows: readonly Flow[]): void => {
      const seen = new Set<string>();
      for (const f of flows) {
        if (seen.has(f.key))
          throw new ValidationError('flows', `two flows with the same table, priority and match: ${f.toString()}`);
        seen.add(f.key);
      }
    };

    build({
      addFlows(cacheKey, flows) {
        checkUnique(flows);
        const set = flowKeyOf(cacheKey);
        for (const f of flows) putFlow(cacheKey, set, f);
      },
      replaceFlows(cacheKey, flows) {
        checkUnique(flows);
        const set = flowKeyOf(cacheKey);
        const want = new Set(flows.map((f) => f.key));
        for (const f of [...set.values()]) if (!want.has(f.key)) dropFlow(set, f);
        for (const f of flows) putFlow(cacheKey, set, f);
      },
      deleteFlows(cacheKey) {
        const set = flowKeyOf(cacheKey);
        for (const f of [...set.values()]) dropFlow(set, f);
      },
      setGroup(g) {
        const old = groupOf(g.groupId);
        if (old !== undefined && old.toString() === g.toString()) return;
        groupOps.push(old === undefined ? op.addGroup(g) : op.modifyGroup(g));
        groups.set(g.groupId, g);
      },
      deleteGroup(id) {
        if (groupOf(id) === undefined) return;
        groupOps.push(op.deleteGroup(id));
        groups.set(id, undefined);
      },
      setMeter(m) {
        const old = meterOf(m.meterId);
        if (old !== undefined && old.toString() === m.toString()) return;
        meterOps.push(old === undefined ? op.addMeter(m) : op.modifyMeter(m));
        meters.set(m.meterId, m);
      },
      deleteMeter(id) {
        if (meterOf(id) === undefined) return;
        meterOps.push(op.deleteMeter(id));
        meters.set(id, undefined);
      },
    });

    // Groups are added before the flows that use them; group deletes come after flow deletes.
    const groupAdds = groupOps.filter((o) => o.kind === 'group');
    const groupDeletes = groupOps.filter((o) => o.kind === 'group_delete');
    const changes: Change[] = [
      () => {
        for (const [k, set] of keys) {
          if (set === undefined || set.size === 0) this.byKey.delete(k);
          else this.byKey.set(k, set);
        }
        for (const [k, o] of owner) {
          if (o === undefined) this.owner.delete(k);
          else this.owner.set(k, o);
        }
        for (const [id, g] of groups) {
          if (g === undefined) this.groups.delete(id);
          else this.groups.set(id, g);
        }
        for (const [id, m] of meters) {
          if (m === undefined) this.meters.delete(id);
          else this.meters.set(id, m);
        }
      },
    ];
    return {
      before: meterOps.filter((o) => o.kind === 'meter'),
      ops: [...groupAdds, ...flowOps, ...groupDeletes],
      after: meterOps.filter((o) => o.kind === 'meter_delete'),
      commit: () => {
        for (const c of changes) c();
      },
    };
  }
}

function sameNonActions(a: Flow, b: Flow): boolean {
  return (
    a.idleTimeout === b.idleTimeout &&
    a.hardTimeout === b.hardTimeout &&
    a.flags === b.flags &&
    a.importance === b.importance
  );
}
