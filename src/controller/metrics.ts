/**
 * antrea-controller's Prometheus metrics: Antrea's `antrea_controller_*` names for the computation
 * (work items processed, their sync durations in ms, queue lengths), and, beyond Antrea, the state
 * of the controlplane API (watchers per resource, connected agents, events and bytes sent, watchers
 * closed by reason, status reports, object counts). Antrea's `acnp_status_updates` and
 * `annp_status_updates` are not registered: antrea-ts does not process Antrea-native policies.
 */
import { exponentialBuckets, type Counter, type Histogram, type MetricsRegistry } from '../common/util/metrics.ts';
import type { WatchHub } from './apiserver/watch.ts';
import type { ControllerMetricsSink, NetworkPolicyController, WorkKind } from './networkpolicy/controller.ts';
import type { StatusAggregator } from './status/aggregator.ts';

const NAMES: Readonly<Record<WorkKind, string>> = {
  appliedToGroup: 'applied_to_group',
  addressGroup: 'address_group',
  networkPolicy: 'network_policy',
};
const HELP: Readonly<Record<WorkKind, string>> = {
  appliedToGroup: 'AppliedToGroup',
  addressGroup: 'AddressGroup',
  networkPolicy: 'internal NetworkPolicy',
};
const KINDS: readonly WorkKind[] = ['appliedToGroup', 'addressGroup', 'networkPolicy'];

export class ControllerMetrics implements ControllerMetricsSink {
  readonly registry: MetricsRegistry;
  private readonly processedCounters: Record<WorkKind, Counter>;
  private readonly durations: Record<WorkKind, Histogram>;

  /** Registers the computation metrics; pass this object as the controller's `metrics` option. */
  constructor(registry: MetricsRegistry) {
    this.registry = registry;
    const buckets = exponentialBuckets(0.1, 2, 15);
    const processed = {} as Record<WorkKind, Counter>;
    const durations = {} as Record<WorkKind, Histogram>;
    for (const k of KINDS) {
      processed[k] = registry.counter(`antrea_controller_${NAMES[k]}_processed`, `The number of ${HELP[k]} processed`);
      durations[k] = registry.histogram(
        `antrea_controller_${NAMES[k]}_sync_duration_milliseconds`,
        `The duration of syncing ${HELP[k]}`,
        buckets,
      );
    }
    this.processedCounters = processed;
    this.durations = durations;
  }

  processed(kind: WorkKind, ms: number): void {
    this.processedCounters[kind].inc();
    this.durations[kind].observe(ms);
  }

  /** Registers the gauges read from the controller, the watch hub and the status aggregator at scrape time. */
  attach(controller: NetworkPolicyController, hub?: WatchHub, status?: StatusAggregator): void {
    const r = this.registry;
    for (const k of KINDS) {
      r.gauge(
        `antrea_controller_length_${NAMES[k]}_queue`,
        `The length of the ${HELP[k]} queue`,
        () => controller.queueLengths()[k],
      );
    }
    r.gauge(
      'antrea_controller_network_policies',
      'Internal NetworkPolicies published',
      () => controller.networkPolicies.size,
    );
    r.gauge('antrea_controller_address_groups', 'AddressGroups published', () => controller.addressGroups.size);
    r.gauge('antrea_controller_applied_to_groups', 'AppliedToGroups published', () => controller.appliedToGroups.size);
    if (hub !== undefined) {
      r.gauge('antrea_controller_watchers', 'Open watches of the controlplane API, by resource', () =>
        Object.entries(hub.stats().watchers).map(([resource, n]) => [{ resource }, n] as const),
      );
      r.gauge(
        'antrea_controller_connected_agents',
        'Nodes with an AppliedToGroup watch',
        () => hub.stats().connectedAgents,
      );
      r.gauge(
        'antrea_controller_watch_events_sent',
        'Watch events written (counter semantics)',
        () => hub.stats().eventsSent,
      );
      r.gauge(
        'antrea_controller_watch_bytes_sent',
        'Watch bytes written (counter semantics)',
        () => hub.stats().bytesSent,
      );
      r.gauge('antrea_controller_watchers_closed', 'Watches ended, by reason (counter semantics)', () =>
        Object.entries(hub.stats().closed).map(([reason, n]) => [{ reason }, n] as const),
      );
    }
    if (status !== undefined) {
      r.gauge(
        'antrea_controller_network_policy_status_reports',
        'Realization reports accepted (counter semantics)',
        () => status.accepted,
      );
    }
  }
}
