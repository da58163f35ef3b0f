/**
 * The lab's scheduler: binds each Pod without a Node (and not being deleted) to a Ready Node whose
 * labels match the Pod's nodeSelector, choosing the one with the fewest Pods (ties by name), through
 * the pods/binding subresource as kube-scheduler does. Pods that fit nowhere stay Pending with a
 * PodScheduled=False condition and are retried when Nodes change.
 */
import { errorMessage } from '../common/util/errors.ts';
import { type Logger, nullLogger } from '../common/util/log.ts';
import type { Pod } from '../common/k8s/objects.ts';
import type { KubeClient } from './kube-client.ts';

export interface SchedulerNode {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly ready: boolean;
  readonly unschedulable: boolean;
}

interface SchedulingPod extends Pod {
  readonly spec?: Pod['spec'] & {
    readonly nodeSelector?: Readonly<Record<string, string>>;
    readonly schedulerName?: string;
  };
}

/** The Node a Pod should go to, or undefined with the reason it fits nowhere. Pure. */
export function chooseNode(
  pod: SchedulingPod,
  nodes: readonly SchedulerNode[],
  podsPerNode: ReadonlyMap<string, number>,
): { node: string } | { reason: string } {
  const selector = pod.spec?.nodeSelector ?? {};
  const fits = nodes.filter(
    (n) => n.ready && !n.unschedulable && Object.entries(selector).every(([k, v]) => n.labels[k] === v),
  );
  if (fits.length === 0) {
    const ready = nodes.filter((n) => n.ready && !n.unschedulable).length;
    return {
      reason:
        ready === 0
          ? `0/${nodes.length} nodes are available: no Node is Ready`
          : `0/${nodes.length} nodes are available: ${ready} node(s) didn't match Pod's node affinity/selector`,
    };
  }
  const best = [...fits].sort(
    (a, b) => (podsPerNode.get(a.name) ?? 0) - (podsPerNode.get(b.name) ?? 0) || a.name.localeCompare(b.name),
  )[0];
  return best === undefined ? { reason: 'no node' } : { node: best.name };
}

export class Scheduler {
  private readonly client: KubeClient;
  private readonly log: Logger;
  private readonly nodes = new Map<string, SchedulerNode>();
  /** Pods by uid with their Node ('' when unscheduled). */
  private readonly pods = new Map<string, { pod: SchedulingPod; node: string }>();
  private readonly inFlight = new Set<string>();
  private readonly reported = new Map<string, string>();

  constructor(client: KubeClient, logger: Logger = nullLogger) {
    this.client = client;
    this.log = logger.child({ component: 'scheduler' });
  }

  onNode(
    type: 'ADDED' | 'MODIFIED' | 'DELETED',
    node: {
      metadata?: { name?: string; labels?: Record<string, string> };
      spec?: { unschedulable?: boolean };
      status?: { conditions?: readonly { type?: string; status?: string }[] };
    },
  ): void {
    const name = node.metadata?.name;
    if (name === undefined) return;
    if (type === 'DELETED') this.nodes.delete(name);
    else {
      this.nodes.set(name, {
        name,
        labels: node.metadata?.labels ?? {},
        ready: (node.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
        unschedulable: node.spec?.unschedulable === true,
      });
    }
    this.scheduleAll();
  }

  onPod(type: 'ADDED' | 'MODIFIED' | 'DELETED', pod: SchedulingPod): void {
    const uid = pod.metadata?.uid;
    if (uid === undefined) return;
    if (type === 'DELETED') {
      this.pods.delete(uid);
      this.reported.delete(uid);
      return;
    }
    this.pods.set(uid, { pod, node: pod.spec?.nodeName ?? '' });
    if ((pod.spec?.nodeName ?? '') === '') this.schedule(uid);
  }

  private podsPerNode(): Map<string, number> {
    const m = new Map<string, number>();
    for (const { node } of this.pods.values()) if (node !== '') m.set(node, (m.get(node) ?? 0) + 1);
    return m;
  }

  private scheduleAll(): void {
    for (const [uid, p] of this.pods) if (p.node === '') this.schedule(uid);
  }

  private schedule(uid: string): void {
    const entry = this.pods.get(uid);
    if (entry === undefined || entry.node !== '' || this.inFlight.has(uid)) return;
    const pod = entry.pod;
    if (pod.metadata?.deletionTimestamp !== undefined) return;
    const sched = pod.spec?.schedulerName;
    if (sched !== undefined && sched !== '' && sched !== 'default-scheduler') return;
    const choice = chooseNode(pod, [...this.nodes.values()], this.podsPerNode());
    const ns = pod.metadata?.namespace ?? 'default';
    const name = pod.metadata?.name ?? '';
    if ('reason' in choice) {
      if (this.reported.get(uid) !== choice.reason) {
        this.reported.set(uid, choice.reason);
        void this.client
          .patch(
            { apiVersion: 'v1', resource: 'pods', namespace: ns, name, subresource: 'status' },
            {
              status: {
                phase: 'Pending',
                conditions: [
                  {
                    type: 'PodScheduled',
                    status: 'False',
                    reason: 'Unschedulable',
                    message: choice.reason,
                    lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
                  },
                ],
              },
            },
          )
          .catch((err: unknown) => this.log.debug('reporting unschedulable failed', { err: errorMessage(err) }));
      }
      return;
    }
    this.inFlight.add(uid);
    entry.node = choice.node; // count it at once so a burst spreads over the Nodes
    void this.client
      .create(
        { apiVersion: 'v1', resource: 'pods', namespace: ns, name, subresource: 'binding' },
        {
          apiVersion: 'v1',
          kind: 'Binding',
          metadata: { name, namespace: ns, uid },
          target: { apiVersion: 'v1', kind: 'Node', name: choice.node },
        },
      )
      .then(
        () => this.log.debug('bound', { pod: `${ns}/${name}`, node: choice.node }),
        (err: unknown) => {
          this.log.warn('binding failed', { pod: `${ns}/${name}`, err: errorMessage(err) });
          const cur = this.pods.get(uid);
          if (cur !== undefined && cur.pod === pod) cur.node = '';
        },
      )
      .finally(() => this.inFlight.delete(uid));
  }
}
