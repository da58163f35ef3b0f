/**
 * The pipeline framework ("FlexiblePipeline"): features declare the tables they need and build
 * their flows; the active features decide which declared tables exist in OVS and their ids.
 *
 * Assembly: the union of the required tables (plus PipelineRootClassifier) is bucketed by pipeline;
 * pipelines are walked in ascending order and, inside each, tables in declaration order; each kept
 * table gets the next id from 0. Inside a pipeline every table's miss goes to the next table
 * (unless declared "drop"), the last table of a pipeline drops.
 */
import { ValidationError } from '../../util/errors.ts';
import type { Flow } from '../../ovs/openflow/flow.ts';
import type { Group } from '../../ovs/openflow/group.ts';
import type { Meter } from '../../ovs/openflow/meter.ts';
import { FlowBuilder, type FlowTable } from './builder.ts';
import type { CookieAllocator, CookieCategory } from './cookie.ts';
import { PRIORITY } from './fields.ts';
import {
  CATALOG,
  type MissAction,
  PIPELINES,
  type PipelineId,
  type StageId,
  T,
  type TableCatalog,
  type TableDef,
  pipelineIndex,
  stageIndex,
} from './pipeline.ts';

/** What a feature hands to the framework. Implementations live in files named after the feature. */
export interface Feature {
  readonly name: string;
  /** The cookie category of the feature's flows. */
  readonly category: CookieCategory;
  /** The tables this feature needs, given its configuration. */
  requiredTables(): readonly TableDef[];
  /** Meters installed on every (re)connection (before groups and flows). */
  initialMeters?(p: RealizedPipeline): readonly Meter[];
  /** Groups installed on every (re)connection (before flows). */
  initialGroups?(p: RealizedPipeline): readonly Group[];
  /** Node-wide flows installed at start. */
  initialFlows?(p: RealizedPipeline): readonly Flow[];
}

/** A table that exists in OVS: its definition, id, and position in its pipeline. */
export class RealizedTable implements FlowTable {
  readonly def: TableDef;
  readonly id: number;
  private readonly pipeline: RealizedPipeline;
  private readonly index: number;

  constructor(def: TableDef, id: number, pipeline: RealizedPipeline, index: number) {
    this.def = def;
    this.id = id;
    this.pipeline = pipeline;
    this.index = index;
  }

  get name(): string {
    return this.def.name;
  }
  get stage(): StageId {
    return this.def.stage;
  }
  get pipelineId(): PipelineId {
    return this.def.pipeline;
  }

  /** The next table of this pipeline, or undefined for the last. */
  get next(): RealizedTable | undefined {
    return this.pipeline.tablesOf(this.def.pipeline)[this.index + 1];
  }

  /** The miss action in effect: the last table of a pipeline drops. */
  get missAction(): MissAction {
    return this.next === undefined ? 'drop' : this.def.missAction;
  }

  stageTable(stage: StageId): RealizedTable | undefined {
    const want = stageIndex(stage);
    const here = stageIndex(this.def.stage);
    if (want <= here) return undefined;
    return this.pipeline.tablesOf(this.def.pipeline).find((t, i) => i > this.index && stageIndex(t.stage) >= want);
  }

  /** Starts a flow in this table. */
  flow(priority: number): FlowBuilder {
    return FlowBuilder.for(this, priority);
  }
}

/** The tables in OVS for a set of active features. */
export class RealizedPipeline {
  readonly features: readonly Feature[];
  private readonly byPipeline = new Map<PipelineId, RealizedTable[]>();
  private readonly byName = new Map<string, RealizedTable>();
  private readonly ordered: RealizedTable[] = [];

  constructor(features: readonly Feature[], catalog: TableCatalog = CATALOG) {
    const names = new Set<string>();
    for (const f of features) {
      if (names.has(f.name)) throw new ValidationError('features', `feature ${f.name} given twice`);
      names.add(f.name);
    }
    this.features = features;
    const required = new Set<TableDef>([catalog.get(T.PipelineRootClassifier.name)]);
    for (const f of features) {
      for (const t of f.requiredTables()) {
        if (catalog.get(t.name) !== t)
          throw new ValidationError('requiredTables', `${f.name} requires undeclared table ${t.name}`);
        required.add(t);
      }
    }
    let id = 0;
    for (const p of PIPELINES) {
      const tables = catalog.tables.filter((t) => t.pipeline === p && required.has(t));
      const realized = tables.map((def, i) => new RealizedTable(def, id + i, this, i));
      id += realized.length;
      if (realized.length === 0) continue;
      this.byPipeline.set(p, realized);
      for (const r of realized) {
        this.byName.set(r.name, r);
        this.ordered.push(r);
      }
    }
    if (id > 254) throw new ValidationError('features', `the pipeline needs ${id} tables; OVS has 254`);
  }

  /** All tables, by id. */
  get tables(): readonly RealizedTable[] {
    return this.ordered;
  }

  tablesOf(p: PipelineId): readonly RealizedTable[] {
    return this.byPipeline.get(p) ?? [];
  }

  has(t: TableDef | string): boolean {
    return this.byName.has(typeof t === 'string' ? t : t.name);
  }

  /** The realized table; throws a ValidationError if no active feature needs it. */
  table(t: TableDef | string): RealizedTable {
    const name = typeof t === 'string' ? t : t.name;
    const r = this.byName.get(name);
    if (r === undefined)
      throw new ValidationError('table', `table ${name} is not in the pipeline (no active feature needs it)`);
    return r;
  }

  /** Table names for OVS (table_features), so ovs-ofctl shows and accepts them. */
  tableNames(): { tableId: number; name: string }[] {
    return this.ordered.map((t) => ({ tableId: t.id, name: t.name }));
  }

  /**
   * The framework's flows: one priority-0 miss flow per table (goto next / drop / NORMAL) and the
   * root classifier flows that send IP to the IP pipeline, ARP to the ARP pipeline and anything else
   * to the non-IP pipeline when those exist.
   */
  defaultFlows(cookies: CookieAllocator): Flow[] {
    const cookie = cookies.request('Default');
    const out: Flow[] = [];
    for (const t of this.ordered) {
      const b = t.flow(PRIORITY.miss).cookie(cookie);
      const miss = t.missAction;
      if (miss === 'next' && t.next !== undefined) out.push(b.gotoTable(t.next));
      else if (miss === 'normal') out.push(b.normal().done());
      else out.push(b.done());
    }
    const root = this.table(T.PipelineRootClassifier);
    const first = (p: PipelineId): RealizedTable | undefined => this.tablesOf(p)[0];
    const ip = first('ip');
    if (ip !== undefined) {
      out.push(root.flow(PRIORITY.normal).cookie(cookie).matchProtocol('ip').gotoTable(ip));
      out.push(root.flow(PRIORITY.normal).cookie(cookie).matchProtocol('ipv6').gotoTable(ip));
    }
    const arp = first('arp');
    if (arp !== undefined) out.push(root.flow(PRIORITY.normal).cookie(cookie).matchProtocol('arp').gotoTable(arp));
    const nonIP = first('nonIP');
    if (nonIP !== undefined) out.push(root.flow(PRIORITY.low).cookie(cookie).gotoTable(nonIP));
    return out;
  }

  /** Every feature's initial meters, groups and flows, plus the default flows. */
  initialState(cookies: CookieAllocator): { meters: Meter[]; groups: Group[]; flows: Flow[] } {
    const meters: Meter[] = [];
    const groups: Group[] = [];
    const flows: Flow[] = this.defaultFlows(cookies);
    for (const f of this.features) {
      meters.push(...(f.initialMeters?.(this) ?? []));
      groups.push(...(f.initialGroups?.(this) ?? []));
      flows.push(...(f.initialFlows?.(this) ?? []));
    }
    return { meters, groups, flows };
  }
}

export { pipelineIndex };
