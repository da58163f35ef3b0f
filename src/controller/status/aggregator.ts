/**
 * Realization status of internal NetworkPolicies (Antrea's status controller, §6.3): agents report,
 * per policy, the generation their Node realized (and whether it failed); the aggregator keeps the
 * latest report per (policy, Node) and summarizes it against the policy's current span and
 * generation:
 *
 * - desired = the number of Nodes in the span; a Node counts as realized when it reported the
 *   policy's current generation without failure, as failed when it reported a failure for it;
 *   reports of Nodes no longer in the span are ignored;
 * - phase: Realized when every Node realized it, Failed when the rest failed, Pending before the
 *   stores are published, Realizing otherwise.
 *
 * Reports for policies that do not exist are refused (the caller answers 404); a deleted policy's
 * reports are forgotten.
 */
import type {
  NetworkPolicyNodeStatus,
  NetworkPolicyReference,
  NetworkPolicyStatus,
} from '../../common/apis/controlplane/types.ts';
import type { NetworkPolicyController } from '../networkpolicy/controller.ts';

export type RealizationPhase = 'Pending' | 'Realizing' | 'Realized' | 'Failed';

export interface PolicyRealization {
  readonly name: string;
  readonly sourceRef?: NetworkPolicyReference;
  readonly generation: number;
  readonly phase: RealizationPhase;
  readonly desiredNodesRealized: number;
  readonly currentNodesRealized: number;
  readonly failedNodes: readonly { readonly node: string; readonly message: string }[];
}

export class StatusAggregator {
  private readonly controller: NetworkPolicyController;
  private readonly reports = new Map<string, Map<string, NetworkPolicyNodeStatus>>();
  private readonly unsubscribe: () => void;
  /** Reports accepted so far. */
  accepted = 0;

  constructor(controller: NetworkPolicyController) {
    this.controller = controller;
    this.unsubscribe = controller.networkPolicies.subscribe((ev) => {
      if (ev.type === 'DELETED') this.reports.delete(ev.name);
    });
  }

  /**
   * Records an agent's report. Returns false (and records nothing) when the policy does not exist.
   * A later report for the same Node replaces the earlier one.
   */
  update(status: NetworkPolicyStatus): boolean {
    const name = status.metadata.name;
    if (this.controller.networkPolicies.get(name) === undefined) return false;
    let byNode = this.reports.get(name);
    if (byNode === undefined) this.reports.set(name, (byNode = new Map<string, NetworkPolicyNodeStatus>()));
    for (const n of status.nodes) byNode.set(n.nodeName, n);
    this.accepted++;
    return true;
  }

  /** Every Node's latest report for a policy (undefined if the policy does not exist). */
  get(name: string): NetworkPolicyStatus | undefined {
    if (this.controller.networkPolicies.get(name) === undefined) return undefined;
    const nodes = [...(this.reports.get(name)?.values() ?? [])].sort((a, b) => a.nodeName.localeCompare(b.nodeName));
    return { metadata: { name }, nodes };
  }

  /** The realization summary of a policy (undefined if it does not exist). */
  summary(name: string): PolicyRealization | undefined {
    const view = this.controller.networkPolicies.get(name);
    if (view === undefined) return undefined;
    const generation = view.object.metadata.generation ?? 0;
    const desired = view.span.size;
    let current = 0;
    const failed: { node: string; message: string }[] = [];
    for (const [node, r] of this.reports.get(name) ?? []) {
      if (!view.span.has(node) || r.generation !== generation) continue;
      if (r.realizationFailure === true) failed.push({ node, message: r.message ?? '' });
      else current++;
    }
    failed.sort((a, b) => a.node.localeCompare(b.node));
    const phase: RealizationPhase =
      current === desired
        ? 'Realized'
        : failed.length > 0 && current + failed.length === desired
          ? 'Failed'
          : 'Realizing';
    return {
      name,
      ...(view.object.sourceRef === undefined ? {} : { sourceRef: view.object.sourceRef }),
      generation,
      phase,
      desiredNodesRealized: desired,
      currentNodesRealized: current,
      failedNodes: failed,
    };
  }

  /** Summaries of every policy, by name. */
  summaries(): PolicyRealization[] {
    const out: PolicyRealization[] = [];
    for (const v of this.controller.networkPolicies.list()) {
      const s = this.summary(v.name);
      if (s !== undefined) out.push(s);
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  stop(): void {
    this.unsubscribe();
  }
}
