/**
 * The grouping index: which entities (Pods) each group selector selects, kept up to date
 * incrementally. Four kinds of items are linked both ways:
 *
 *   entity ──> label set  <──>  selector  ──> sinks (the groups using the selector)
 *
 * - A label set is shared by every entity of one namespace with the same labels, so Deployment
 *   replicas cost one selector match, not one each.
 * - A selector is shared by every group with the same normalized selector.
 * - A label set is linked to exactly the selectors that select it; an entity event therefore touches
 *   only the selectors of its old and new label sets, a selector event only the label sets of the
 *   namespaces it can select, and a namespace label change only the cluster-scoped selectors and the
 *   label sets of that namespace. Nothing scans all entities or all selectors.
 * - A namespace with many label sets or selectors indexes them by label pair (`key=value`), so a new
 *   label set is matched only against the selectors that require one of its pairs (or require none),
 *   and a new selector only against the label sets having its first required pair.
 *
 * Sinks are told synchronously, inside the call that changed the index, about every entity that
 * enters, leaves or changes within their selection. Entities are opaque immutable values: an update
 * passes a new value; the index compares values by identity. Label records are kept by reference
 * (never copied), so they must not be mutated after they are passed in.
 */
import { type Labels, labelSetString, sameLabels, type Selector } from '../../common/k8s/labels.ts';
import { type SmallSet, smallAdd, smallDelete, smallHas, smallSize, smallValues } from './small-set.ts';

/**
 * What a group selects. Exactly one of the combinations is meaningful:
 * - `namespace` (+ optional `podSelector`): entities of that namespace (all of them without a podSelector);
 * - `namespaceSelector` (+ optional `podSelector`): entities of the namespaces whose labels match;
 * - only `podSelector`: matching entities of every namespace (cluster-scoped policies);
 * - nothing: selects nothing.
 */
export interface GroupSelector {
  readonly namespace?: string;
  readonly namespaceSelector?: Selector;
  readonly podSelector?: Selector;
  /** The normalized name; two selectors with the same name select the same entities. */
  readonly normalizedName: string;
}

/**
 * Builds a GroupSelector and its normalized name, Antrea's way: the parts `namespace=<ns>` or
 * `namespaceSelector=<sel>`, and `podSelector=<sel>`, sorted and joined with " And ". A namespace
 * selector overrides the namespace.
 */
export function makeGroupSelector(opts: {
  namespace?: string;
  namespaceSelector?: Selector | undefined;
  podSelector?: Selector | undefined;
}): GroupSelector {
  // The parts sort as namespace=… < namespaceSelector=… < podSelector=…, and the first two exclude each other.
  const pod = opts.podSelector;
  if (opts.namespaceSelector !== undefined) {
    const ns = `namespaceSelector=${opts.namespaceSelector.text}`;
    return pod === undefined
      ? { namespaceSelector: opts.namespaceSelector, normalizedName: ns }
      : {
          namespaceSelector: opts.namespaceSelector,
          podSelector: pod,
          normalizedName: `${ns} And podSelector=${pod.text}`,
        };
  }
  if (opts.namespace !== undefined && opts.namespace !== '') {
    const ns = `namespace=${opts.namespace}`;
    return pod === undefined
      ? { namespace: opts.namespace, normalizedName: ns }
      : { namespace: opts.namespace, podSelector: pod, normalizedName: `${ns} And podSelector=${pod.text}` };
  }
  return pod === undefined ? { normalizedName: '' } : { podSelector: pod, normalizedName: `podSelector=${pod.text}` };
}

/** Receives the changes of one selector's selection. Called synchronously by the index. */
export interface GroupSink<E> {
  entityAdded(entity: E): void;
  entityRemoved(entity: E): void;
  /** The entity stayed selected but its value changed. */
  entityUpdated(previous: E, current: E): void;
}

interface NamespaceItem<E extends object> {
  readonly name: string;
  labels: Labels;
  /** False until the Namespace object is known, and again after it is deleted. */
  present: boolean;
  labelSets: SmallSet<LabelSetItem<E>>;
  /** Namespace-scoped selectors of this namespace. */
  scoped: SmallSet<SelectorItem<E>>;
  /** Cluster-scoped selectors whose namespace part selects this namespace. */
  cluster: SmallSet<SelectorItem<E>>;
  entityCount: number;
  /** Label sets by label pair; built once the namespace has many label sets. */
  lsIndex: Map<string, SmallSet<LabelSetItem<E>>> | undefined;
  /** Candidate selectors (scoped and cluster) by anchor; built once there are many. */
  selIndex: SelectorIndex<E> | undefined;
}

interface LabelSetItem<E extends object> {
  readonly key: string;
  readonly ns: NamespaceItem<E>;
  readonly labels: Labels;
  entities: SmallSet<E>;
  selectors: SmallSet<SelectorItem<E>>;
}

interface SelectorItem<E extends object> {
  readonly selector: GroupSelector;
  readonly clusterScoped: boolean;
  /**
   * The label pairs (`key\0value`) of which a selected label set must have one, from the first
   * Equals or In requirement of the pod selector; undefined when there is none (must be checked
   * against every label set).
   */
  readonly anchors: readonly string[] | undefined;
  labelSets: SmallSet<LabelSetItem<E>>;
  /** Replaced, never mutated (exact-size arrays: most selectors have one or two sinks). */
  sinks: readonly GroupSink<E>[];
}

interface EntityRecord<E extends object> {
  readonly labelSet: LabelSetItem<E>;
  readonly entity: E;
}

const NO_LABELS: Labels = Object.freeze({});

/** Namespaces index their label sets and candidate selectors once they hold more than this many. */
const INDEX_THRESHOLD = 32;

function pair(key: string, value: string): string {
  return key + '\u0000' + value;
}

function anchorsOf(s: GroupSelector): readonly string[] | undefined {
  for (const r of s.podSelector?.requirements ?? []) {
    if (r.op === 'Equals' || r.op === 'In') return r.values.map((v) => pair(r.key, v));
  }
  return undefined;
}

/** Selectors by anchor, plus those without one: the candidates for a label set are few. */
class SelectorIndex<E extends object> {
  private readonly byAnchor = new Map<string, SmallSet<SelectorItem<E>>>();
  private readonly unanchored = new Set<SelectorItem<E>>();

  add(sel: SelectorItem<E>): void {
    if (sel.anchors === undefined) {
      this.unanchored.add(sel);
      return;
    }
    for (const a of sel.anchors) this.byAnchor.set(a, smallAdd(this.byAnchor.get(a), sel));
  }

  delete(sel: SelectorItem<E>): void {
    if (sel.anchors === undefined) {
      this.unanchored.delete(sel);
      return;
    }
    for (const a of sel.anchors) {
      const rest = smallDelete(this.byAnchor.get(a), sel);
      if (rest === undefined) this.byAnchor.delete(a);
      else this.byAnchor.set(a, rest);
    }
  }

  /** Every selector that may select `labels` (each once: a selector's anchors share one key). */
  *candidates(labels: Labels): Generator<SelectorItem<E>> {
    yield* this.unanchored;
    for (const k of Object.keys(labels)) {
      const v = labels[k];
      if (v !== undefined) yield* smallValues(this.byAnchor.get(pair(k, v)));
    }
  }
}

export interface GroupingIndexStats {
  readonly namespaces: number;
  readonly entities: number;
  readonly labelSets: number;
  readonly selectors: number;
  readonly clusterSelectors: number;
}

export class GroupingIndex<E extends object> {
  private readonly namespaces = new Map<string, NamespaceItem<E>>();
  private readonly labelSets = new Map<string, LabelSetItem<E>>();
  private readonly selectors = new Map<string, SelectorItem<E>>();
  private readonly clusterSelectors = new Set<SelectorItem<E>>();
  private readonly entities = new Map<string, EntityRecord<E>>();

  // ---- namespaces ----

  /** Records a Namespace and its labels (add or update). Idempotent. */
  setNamespace(name: string, labels: Labels | undefined): void {
    const ns = this.namespaceItem(name);
    const next = labels === undefined || Object.keys(labels).length === 0 ? NO_LABELS : labels;
    const changed = !sameLabels(ns.labels, next);
    ns.present = true;
    ns.labels = next;
    if (changed) this.rematchNamespace(ns);
  }

  /** Forgets a Namespace's labels (entities in it, if any, stay until deleted). No-op if unknown. */
  deleteNamespace(name: string): void {
    const ns = this.namespaces.get(name);
    if (ns === undefined || !ns.present) return;
    ns.present = false;
    if (ns.labels !== NO_LABELS) {
      ns.labels = NO_LABELS;
      this.rematchNamespace(ns);
    }
    this.maybeDropNamespace(ns);
  }

  /** Whether the Namespace object is known. */
  hasNamespace(name: string): boolean {
    return this.namespaces.get(name)?.present === true;
  }

  /** Number of entities in a namespace (0 if unknown). */
  namespaceEntityCount(name: string): number {
    return this.namespaces.get(name)?.entityCount ?? 0;
  }

  private namespaceItem(name: string): NamespaceItem<E> {
    let ns = this.namespaces.get(name);
    if (ns === undefined) {
      ns = {
        name,
        labels: NO_LABELS,
        present: false,
        labelSets: undefined,
        scoped: undefined,
        cluster: undefined,
        entityCount: 0,
        lsIndex: undefined,
        selIndex: undefined,
      };
      this.namespaces.set(name, ns);
      for (const sel of this.clusterSelectors) if (namespacePartMatches(sel.selector, ns)) addCluster(ns, sel);
    }
    return ns;
  }

  private maybeDropNamespace(ns: NamespaceItem<E>): void {
    if (!ns.present && ns.labelSets === undefined && ns.scoped === undefined) this.namespaces.delete(ns.name);
  }

  /** Re-evaluates the cluster-scoped selectors against a namespace whose labels changed. */
  private rematchNamespace(ns: NamespaceItem<E>): void {
    for (const sel of this.clusterSelectors) {
      const was = smallHas(ns.cluster, sel);
      const is = namespacePartMatches(sel.selector, ns);
      if (was === is) continue;
      if (is) {
        addCluster(ns, sel);
        for (const ls of candidateLabelSets(ns, sel)) if (podPartMatches(sel.selector, ls.labels)) this.link(sel, ls);
      } else {
        deleteCluster(ns, sel);
        for (const ls of [...smallValues(ns.labelSets)]) if (smallHas(sel.labelSets, ls)) this.unlink(sel, ls);
      }
    }
  }

  // ---- entities ----

  /**
   * Adds or updates an entity. `entity` is its new value; when it is the same value (identity) and the
   * labels are unchanged, nothing happens.
   */
  setEntity(key: string, namespace: string, labels: Labels | undefined, entity: E): void {
    this.upsertEntity(key, namespace, labels, () => entity);
  }

  /**
   * Like {@link setEntity}, with the new value computed from the current one (undefined if new) in
   * one lookup.
   */
  upsertEntity(key: string, namespace: string, labels: Labels | undefined, make: (prev: E | undefined) => E): void {
    const lsKey = namespace + '\u0000' + labelSetString(labels);
    const rec = this.entities.get(key);
    const entity = make(rec?.entity);
    if (rec !== undefined && rec.labelSet.key === lsKey) {
      if (rec.entity === entity) return;
      const ls = rec.labelSet;
      ls.entities = smallAdd(smallDelete(ls.entities, rec.entity), entity);
      this.entities.set(key, { labelSet: ls, entity });
      for (const sel of smallValues(ls.selectors)) for (const sink of sel.sinks) sink.entityUpdated(rec.entity, entity);
      return;
    }
    const ls = this.labelSetItem(lsKey, namespace, labels);
    ls.entities = smallAdd(ls.entities, entity);
    ls.ns.entityCount++;
    this.entities.set(key, { labelSet: ls, entity });
    if (rec === undefined) {
      for (const sel of smallValues(ls.selectors)) for (const sink of sel.sinks) sink.entityAdded(entity);
      return;
    }
    // Labels changed: selectors of both label sets see an update, the others an add or a remove.
    const old = rec.labelSet;
    old.entities = smallDelete(old.entities, rec.entity);
    old.ns.entityCount--;
    for (const sel of smallValues(old.selectors)) {
      if (smallHas(ls.selectors, sel)) {
        if (rec.entity !== entity) for (const sink of sel.sinks) sink.entityUpdated(rec.entity, entity);
      } else {
        for (const sink of sel.sinks) sink.entityRemoved(rec.entity);
      }
    }
    for (const sel of smallValues(ls.selectors)) {
      if (!smallHas(old.selectors, sel)) for (const sink of sel.sinks) sink.entityAdded(entity);
    }
    this.maybeDropLabelSet(old);
  }

  /** Removes an entity; returns its last value, or undefined if it was unknown. */
  deleteEntity(key: string): E | undefined {
    const rec = this.entities.get(key);
    if (rec === undefined) return undefined;
    this.entities.delete(key);
    const ls = rec.labelSet;
    ls.entities = smallDelete(ls.entities, rec.entity);
    ls.ns.entityCount--;
    for (const sel of smallValues(ls.selectors)) for (const sink of sel.sinks) sink.entityRemoved(rec.entity);
    this.maybeDropLabelSet(ls);
    return rec.entity;
  }

  getEntity(key: string): E | undefined {
    return this.entities.get(key)?.entity;
  }

  /** The sinks whose selection holds the entity `key` (none if it is unknown). */
  *sinksOfEntity(key: string): Generator<GroupSink<E>> {
    const rec = this.entities.get(key);
    if (rec === undefined) return;
    for (const sel of smallValues(rec.labelSet.selectors)) yield* sel.sinks;
  }

  private labelSetItem(key: string, namespace: string, labels: Labels | undefined): LabelSetItem<E> {
    let ls = this.labelSets.get(key);
    if (ls !== undefined) return ls;
    const ns = this.namespaceItem(namespace);
    ls = {
      key,
      ns,
      labels: labels === undefined || Object.keys(labels).length === 0 ? NO_LABELS : labels,
      entities: undefined,
      selectors: undefined,
    };
    this.labelSets.set(key, ls);
    ns.labelSets = smallAdd(ns.labelSets, ls);
    if (ns.lsIndex !== undefined) indexLabelSet(ns.lsIndex, ls);
    else if (smallSize(ns.labelSets) > INDEX_THRESHOLD) {
      ns.lsIndex = new Map();
      for (const x of smallValues(ns.labelSets)) indexLabelSet(ns.lsIndex, x);
    }
    // Link before any entity is in it: no notifications are due yet.
    if (ns.selIndex !== undefined) {
      for (const sel of ns.selIndex.candidates(ls.labels)) {
        if (podPartMatches(sel.selector, ls.labels)) linkQuiet(sel, ls);
      }
    } else {
      for (const sel of smallValues(ns.scoped)) if (podPartMatches(sel.selector, ls.labels)) linkQuiet(sel, ls);
      for (const sel of smallValues(ns.cluster)) if (podPartMatches(sel.selector, ls.labels)) linkQuiet(sel, ls);
    }
    return ls;
  }

  private maybeDropLabelSet(ls: LabelSetItem<E>): void {
    if (ls.entities !== undefined) return;
    this.labelSets.delete(ls.key);
    const ns = ls.ns;
    ns.labelSets = smallDelete(ns.labelSets, ls);
    if (ns.lsIndex !== undefined) {
      for (const k of Object.keys(ls.labels)) {
        const p = pair(k, ls.labels[k] ?? '');
        const rest = smallDelete(ns.lsIndex.get(p), ls);
        if (rest === undefined) ns.lsIndex.delete(p);
        else ns.lsIndex.set(p, rest);
      }
    }
    for (const sel of smallValues(ls.selectors)) sel.labelSets = smallDelete(sel.labelSets, ls);
    ls.selectors = undefined;
    this.maybeDropNamespace(ns);
  }

  // ---- selectors ----

  /**
   * Subscribes `sink` to the selection of `selector`, creating the shared selector item if needed.
   * The sink is told `entityAdded` for every entity already selected, before this returns. Returns
   * the selector item's own GroupSelector (equal to `selector`), which callers may keep instead of
   * theirs so that one copy is kept per distinct selector.
   */
  addSink(selector: GroupSelector, sink: GroupSink<E>): GroupSelector {
    const sel = this.selectorItem(selector);
    sel.sinks = [...sel.sinks, sink];
    for (const ls of smallValues(sel.labelSets)) for (const e of smallValues(ls.entities)) sink.entityAdded(e);
    return sel.selector;
  }

  /**
   * Unsubscribes `sink`. The sink is not told about entities leaving (it is going away). The selector
   * item is dropped with its last sink. No-op if the sink was not subscribed.
   */
  removeSink(selector: GroupSelector, sink: GroupSink<E>): void {
    const sel = this.selectors.get(selector.normalizedName);
    if (sel === undefined) return;
    if (!sel.sinks.includes(sink)) return;
    sel.sinks = sel.sinks.filter((x) => x !== sink);
    if (sel.sinks.length > 0) return;
    this.selectors.delete(selector.normalizedName);
    for (const ls of smallValues(sel.labelSets)) ls.selectors = smallDelete(ls.selectors, sel);
    sel.labelSets = undefined;
    if (sel.clusterScoped) {
      this.clusterSelectors.delete(sel);
      for (const ns of this.namespaces.values()) deleteCluster(ns, sel);
    } else {
      const ns = this.namespaces.get(sel.selector.namespace ?? '');
      if (ns !== undefined) {
        ns.scoped = smallDelete(ns.scoped, sel);
        ns.selIndex?.delete(sel);
        this.maybeDropNamespace(ns);
      }
    }
  }

  /** The sinks subscribed to the selector with this normalized name. */
  sinksOf(normalizedName: string): readonly GroupSink<E>[] {
    return this.selectors.get(normalizedName)?.sinks ?? [];
  }

  /** The entities `selector` selects now (empty if no group uses it). */
  *selected(selector: GroupSelector): Generator<E> {
    const sel = this.selectors.get(selector.normalizedName);
    if (sel === undefined) return;
    for (const ls of smallValues(sel.labelSets)) yield* smallValues(ls.entities);
  }

  private selectorItem(selector: GroupSelector): SelectorItem<E> {
    let sel = this.selectors.get(selector.normalizedName);
    if (sel !== undefined) return sel;
    const clusterScoped = selector.namespace === undefined;
    sel = { selector, clusterScoped, anchors: anchorsOf(selector), labelSets: undefined, sinks: [] };
    this.selectors.set(selector.normalizedName, sel);
    if (!clusterScoped) {
      const ns = this.namespaceItem(selector.namespace ?? '');
      ns.scoped = smallAdd(ns.scoped, sel);
      indexSelector(ns, sel);
      for (const ls of candidateLabelSets(ns, sel)) if (podPartMatches(selector, ls.labels)) linkQuiet(sel, ls);
    } else if (selector.namespaceSelector !== undefined || selector.podSelector !== undefined) {
      this.clusterSelectors.add(sel);
      for (const ns of this.namespaces.values()) {
        if (!namespacePartMatches(selector, ns)) continue;
        addCluster(ns, sel);
        for (const ls of candidateLabelSets(ns, sel)) if (podPartMatches(selector, ls.labels)) linkQuiet(sel, ls);
      }
    }
    return sel;
  }

  private link(sel: SelectorItem<E>, ls: LabelSetItem<E>): void {
    if (smallHas(sel.labelSets, ls)) return;
    linkQuiet(sel, ls);
    for (const e of smallValues(ls.entities)) for (const sink of sel.sinks) sink.entityAdded(e);
  }

  private unlink(sel: SelectorItem<E>, ls: LabelSetItem<E>): void {
    sel.labelSets = smallDelete(sel.labelSets, ls);
    ls.selectors = smallDelete(ls.selectors, sel);
    for (const e of smallValues(ls.entities)) for (const sink of sel.sinks) sink.entityRemoved(e);
  }

  stats(): GroupingIndexStats {
    return {
      namespaces: this.namespaces.size,
      entities: this.entities.size,
      labelSets: this.labelSets.size,
      selectors: this.selectors.size,
      clusterSelectors: this.clusterSelectors.size,
    };
  }
}

function indexLabelSet<E extends object>(index: Map<string, SmallSet<LabelSetItem<E>>>, ls: LabelSetItem<E>): void {
  for (const k of Object.keys(ls.labels)) {
    const p = pair(k, ls.labels[k] ?? '');
    index.set(p, smallAdd(index.get(p), ls));
  }
}

/** The label sets of `ns` that `sel` may select: those with one of its anchors, else all. */
function* candidateLabelSets<E extends object>(ns: NamespaceItem<E>, sel: SelectorItem<E>): Generator<LabelSetItem<E>> {
  if (ns.lsIndex === undefined || sel.anchors === undefined) {
    yield* smallValues(ns.labelSets);
    return;
  }
  for (const a of sel.anchors) yield* smallValues(ns.lsIndex.get(a));
}

/** Adds a selector (scoped or cluster) to the namespace's candidate index, building it when due. */
function indexSelector<E extends object>(ns: NamespaceItem<E>, sel: SelectorItem<E>): void {
  if (ns.selIndex !== undefined) {
    ns.selIndex.add(sel);
    return;
  }
  if (smallSize(ns.scoped) + smallSize(ns.cluster) <= INDEX_THRESHOLD) return;
  const index = new SelectorIndex<E>();
  for (const x of smallValues(ns.scoped)) index.add(x);
  for (const x of smallValues(ns.cluster)) index.add(x);
  ns.selIndex = index;
}

function addCluster<E extends object>(ns: NamespaceItem<E>, sel: SelectorItem<E>): void {
  ns.cluster = smallAdd(ns.cluster, sel);
  indexSelector(ns, sel);
}

function deleteCluster<E extends object>(ns: NamespaceItem<E>, sel: SelectorItem<E>): void {
  if (!smallHas(ns.cluster, sel)) return;
  ns.cluster = smallDelete(ns.cluster, sel);
  ns.selIndex?.delete(sel);
}

function linkQuiet<E extends object>(sel: SelectorItem<E>, ls: LabelSetItem<E>): void {
  sel.labelSets = smallAdd(sel.labelSets, ls);
  ls.selectors = smallAdd(ls.selectors, sel);
}

/** Whether a cluster-scoped selector's namespace part selects `ns`. */
function namespacePartMatches<E extends object>(s: GroupSelector, ns: NamespaceItem<E>): boolean {
  if (s.namespaceSelector !== undefined) return s.namespaceSelector.matches(ns.labels);
  return s.podSelector !== undefined;
}

function podPartMatches(s: GroupSelector, labels: Labels): boolean {
  return s.podSelector === undefined || s.podSelector.matches(labels);
}
