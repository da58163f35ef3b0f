/**
 * The agent's NetworkPolicy controller (Antrea's pkg/agent/controller/networkpolicy; facts §6): it
 * receives this Node's NetworkPolicies, AddressGroups and AppliedToGroups from a policy source (the
 * controlplane watcher, or its on-disk snapshot when the controller is unreachable at start), keeps
 * them in the {@link RuleCache}, and has the {@link PolicyReconciler} enforce them with OpenFlow.
 *
 * - Nothing is enforced before every resource had its first `replace`: then all rules are realized in
 *   one bundle and {@link NetworkPolicyController.waitInitialRealized} resolves (the agent installs
 *   Pod forwarding flows and answers CNI ADD only after that).
 * - Each later call (`replace`, `event`, a Pod added or removed) is realized in one bundle. A failed
 *   realization is retried (every `retryMs`) until it succeeds; until then the previous flows stay.
 * - After each realization the generation realized of every affected policy is reported to the
 *   status sink (a failure is reported with its message).
 *
 * Calls are serialized; each returns once its changes are realized (or failed and queued for retry).
 */
import type { ControlplaneResource } from '../../apis/controlplane/codec.ts';
import type { AddressGroup, AppliedToGroup, NetworkPolicy } from '../../apis/controlplane/types.ts';
import { type Clock, systemClock, type TimerHandle } from '../../util/clock.ts';
import { errorMessage } from '../../util/errors.ts';
import { Latch } from '../../util/latch.ts';
import { type Logger, nullLogger } from '../../util/log.ts';
import type { ResourceEvent, ResourceObjects } from '../controlplane/state.ts';
import type { NetworkPolicyFeature } from '../openflow/network-policy.ts';
import { type CompletedRule, RuleCache } from './cache.ts';
import {
  type LocalPodInterface,
  type LocalPods,
  type PolicyFlowSink,
  PolicyReconciler,
  type RuleStats,
} from './reconciler.ts';

/** Where the objects of a replace come from. */
export type PolicySourceKind = 'controller' | 'snapshot' | 'file';

/**
 * What a policy source calls (the controlplane watcher's handler contract): `replace` once per
 * resource with the complete set (again after every reconnection), then `event` per change.
 */
export interface PolicyEventHandler {
  replace<R extends ControlplaneResource>(
    resource: R,
    objects: ResourceObjects[R][],
    source: PolicySourceKind,
  ): Promise<void>;
  event(ev: ResourceEvent): Promise<void>;
}

/** One policy's realization on this Node. */
export interface RealizationReport {
  readonly policy: string;
  readonly generation: number;
  readonly failure?: string;
}

/** Where realization status goes (the controlplane StatusReporter implements it). */
export interface RealizationStatusSink {
  report(r: RealizationReport): void;
  /** The policy is gone: nothing more is reported for it. */
  forget(policy: string): void;
}

/** Per-rule counters with the policy the rule belongs to. */
export interface PolicyRuleStats extends RuleStats {
  readonly policy: string;
  readonly sourceRef: string | undefined;
}

/** Local Pods, fed by the CNI server (ADD/DEL) and the interface store at start. */
export class PodIndex implements LocalPods {
  private readonly pods = new Map<string, Map<string, LocalPodInterface>>();

  get(namespace: string, name: string): readonly LocalPodInterface[] | undefined {
    const m = this.pods.get(`${namespace}/${name}`);
    return m === undefined ? undefined : [...m.values()];
  }
  /** Adds or replaces one interface (keyed by its OVS port name). */
  set(namespace: string, name: string, portName: string, iface: LocalPodInterface): void {
    const k = `${namespace}/${name}`;
    let m = this.pods.get(k);
    if (m === undefined) this.pods.set(k, (m = new Map<string, LocalPodInterface>()));
    m.set(portName, iface);
  }
  /** Removes one interface; no-op if absent. */
  delete(namespace: string, name: string, portName: string): void {
    const k = `${namespace}/${name}`;
    const m = this.pods.get(k);
    m?.delete(portName);
    if (m?.size === 0) this.pods.delete(k);
  }
  get size(): number {
    return this.pods.size;
  }
}

export interface NetworkPolicyControllerOptions {
  readonly sink: PolicyFlowSink;
  readonly feature: NetworkPolicyFeature;
  readonly status?: RealizationStatusSink;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Delay before retrying a failed realization (default 1 s). */
  readonly retryMs?: number;
}

/** Kubernetes NetworkPolicy rules: no tier, and Allow (or unset for default-deny rules). */
function supported(r: CompletedRule): boolean {
  return r.tierPriority === undefined && (r.action === undefined || r.action === 'Allow');
}

export class NetworkPolicyController implements PolicyEventHandler {
  readonly cache = new RuleCache();
  readonly pods = new PodIndex();
  private readonly reconciler: PolicyReconciler;
  private readonly o: NetworkPolicyControllerOptions;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly replaced = new Set<ControlplaneResource>();
  private readonly initial = new Latch();
  private readonly dirty = new Set<string>();
  private readonly dirtyPolicies = new Set<string>();
  private chain: Promise<unknown> = Promise.resolve();
  private retryTimer: TimerHandle | undefined;
  private closed = false;
  /** Realizations done (bundles applied) and failed. */
  realizations = 0;
  failures = 0;
  lastError: string | undefined;
  /** Where the last replace came from. */
  source: PolicySourceKind | undefined;

  constructor(o: NetworkPolicyControllerOptions) {
    this.o = o;
    this.log = (o.logger ?? nullLogger).child({ component: 'networkpolicy' });
    this.clock = o.clock ?? systemClock;
    this.reconciler = new PolicyReconciler({ sink: o.sink, feature: o.feature, pods: this.pods });
  }

  /** Whether the initial policies are realized. */
  get initialRealized(): boolean {
    return this.initial.opened;
  }

  /** Resolves once the initial policies are realized. */
  waitInitialRealized(signal?: AbortSignal): Promise<void> {
    return this.initial.wait(signal);
  }

  /** Stops retrying (pending work is dropped). */
  close(): void {
    this.closed = true;
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
  }

  replace<R extends ControlplaneResource>(
    resource: R,
    objects: ResourceObjects[R][],
    source: PolicySourceKind,
  ): Promise<void> {
    return this.serialize(async () => {
      this.source = source;
      let ids: Set<string>;
      if (resource === 'networkpolicies') {
        const list = objects as NetworkPolicy[];
        const before = new Set(this.policyNames());
        ids = this.cache.replacePolicies(list);
        const now = new Set(list.map((p) => p.metadata.name));
        for (const n of before) if (!now.has(n)) this.o.status?.forget(n);
        for (const n of now) this.dirtyPolicies.add(n);
      } else {
        ids = this.cache.replaceGroups(resource, objects as (AddressGroup | AppliedToGroup)[]);
      }
      for (const id of ids) this.dirty.add(id);
      this.replaced.add(resource);
      this.log.debug('replace', { resource, objects: objects.length, source, dirtyRules: ids.size });
      if (this.replaced.size === 3 && !this.initial.opened) {
        // Initial realization: every rule, in one bundle.
        for (const id of this.cache.ruleIds()) this.dirty.add(id);
        for (const n of this.policyNames()) this.dirtyPolicies.add(n);
      }
      await this.flush();
    });
  }

  event(ev: ResourceEvent): Promise<void> {
    return this.serialize(async () => {
      let ids: Set<string> | undefined;
      switch (ev.resource) {
        case 'networkpolicies':
          if (ev.type === 'DELETED') {
            ids = this.cache.deletePolicy(ev.object.metadata.name);
            this.o.status?.forget(ev.object.metadata.name);
          } else {
            ids = this.cache.setPolicy(ev.object);
            this.dirtyPolicies.add(ev.object.metadata.name);
          }
          break;
        case 'addressgroups':
        case 'appliedtogroups':
          if (ev.type === 'DELETED') ids = this.cache.deleteGroup(ev.resource, ev.object.metadata.name);
          else if (ev.type === 'ADDED') ids = this.cache.setGroup(ev.resource, ev.object);
          else {
            ids = this.cache.patchGroup(ev.resource, ev.object);
            if (ids === undefined) {
              this.log.warn('patch for an unknown group ignored', {
                resource: ev.resource,
                name: ev.object.metadata.name,
              });
              ids = new Set();
            }
          }
      }
      for (const id of ids) this.dirty.add(id);
      await this.flush();
    });
  }

  /** A local Pod interface appeared (CNI ADD): its rules are realized before this resolves. */
  podAdded(namespace: string, name: string, portName: string, iface: LocalPodInterface): Promise<void> {
    return this.serialize(async () => {
      this.pods.set(namespace, name, portName, iface);
      for (const id of this.cache.rulesOfPod(namespace, name)) this.dirty.add(id);
      await this.flush();
    });
  }

  /** A local Pod interface is gone (CNI DEL); no-op if unknown. */
  podRemoved(namespace: string, name: string, portName: string): Promise<void> {
    return this.serialize(async () => {
      if (this.pods.get(namespace, name) === undefined) return;
      this.pods.delete(namespace, name, portName);
      for (const id of this.cache.rulesOfPod(namespace, name)) this.dirty.add(id);
      await this.flush();
    });
  }

  /** Per-rule counters with their policy. */
  async ruleStats(): Promise<PolicyRuleStats[]> {
    const stats = await this.reconciler.ruleStats();
    return stats.map((s) => {
      const r = this.cache.rule(s.ruleId);
      const ref = r?.sourceRef;
      return {
        ...s,
        policy: r?.policy ?? '',
        sourceRef: ref === undefined ? undefined : `${ref.type}:${ref.namespace}/${ref.name}`,
      };
    });
  }

  /** Summary for tests and antctl. */
  summary(): {
    policies: number;
    rules: number;
    ofRules: number;
    initialRealized: boolean;
    source: PolicySourceKind | undefined;
  } {
    return {
      policies: this.cache.policyCount,
      rules: this.cache.ruleCount,
      ofRules: this.reconciler.ofRuleCount,
      initialRealized: this.initial.opened,
      source: this.source,
    };
  }

  /** conj_ids of the rules of a policy (empty when none is installed). */
  conjIdsOfPolicy(policy: string): number[] {
    return this.cache.ruleIdsOfPolicy(policy).flatMap((id) => this.reconciler.conjIdsOf(id));
  }

  private policyNames(): string[] {
    const out: string[] = [];
    for (const id of this.cache.ruleIds()) {
      const r = this.cache.rule(id);
      if (r !== undefined) out.push(r.policy);
    }
    return [...new Set(out)];
  }

  private serialize(fn: () => Promise<void>): Promise<void> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Realizes the dirty rules in one bundle (only once the initial set is complete). */
  private async flush(): Promise<void> {
    if (this.replaced.size < 3 || this.closed) return;
    if (this.dirty.size === 0 && this.dirtyPolicies.size === 0) {
      this.initial.open();
      return;
    }
    const batch = new Map<string, CompletedRule | undefined>();
    const waiting = new Set<string>();
    const unsupported = new Set<string>();
    for (const id of this.dirty) {
      const c = this.cache.completed(id);
      if (c === 'unrealizable') {
        waiting.add(id);
        continue;
      }
      // Antrea-native rules (tiers, Drop/Reject/Pass) are not enforced yet: never as an allow.
      if (c !== undefined && !supported(c)) {
        unsupported.add(c.policy);
        batch.set(id, undefined);
        continue;
      }
      batch.set(id, c);
    }
    const policies = new Set(this.dirtyPolicies);
    for (const r of batch.values()) if (r !== undefined) policies.add(r.policy);
    try {
      const t0 = this.clock.monotonic();
      await this.reconciler.reconcile(batch);
      this.realizations++;
      this.dirty.clear();
      this.dirtyPolicies.clear();
      for (const id of waiting) this.dirty.add(id);
      this.log.debug('realized', { rules: batch.size, waiting: waiting.size, ms: this.clock.monotonic() - t0 });
      if (!this.initial.opened) {
        this.initial.open();
        this.log.info('initial NetworkPolicies realized', { ...this.summary() });
      }
      for (const name of policies) {
        const p = this.cache.policy(name);
        if (p === undefined) continue;
        const pending = this.cache.ruleIdsOfPolicy(name).some((id) => waiting.has(id));
        if (unsupported.has(name)) {
          this.o.status?.report({
            policy: name,
            generation: p.metadata.generation ?? 0,
            failure: 'Antrea-native policy rules (tiers, Drop/Reject/Pass) are not supported by this agent',
          });
        } else if (!pending) this.o.status?.report({ policy: name, generation: p.metadata.generation ?? 0 });
      }
    } catch (err) {
      this.failures++;
      this.lastError = errorMessage(err);
      this.log.error('realizing NetworkPolicies failed; will retry', { error: this.lastError, rules: batch.size });
      for (const name of policies) {
        const p = this.cache.policy(name);
        if (p !== undefined)
          this.o.status?.report({ policy: name, generation: p.metadata.generation ?? 0, failure: this.lastError });
      }
      this.scheduleRetry();
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== undefined || this.closed) return;
    this.retryTimer = this.clock.setTimer(this.o.retryMs ?? 1000, () => {
      this.retryTimer = undefined;
      void this.serialize(() => this.flush());
    });
  }
}
