/**
 * Where the NodeRoute controller learns about the cluster's Nodes. {@link NodeSource} keeps the
 * controller independent of the Kubernetes API: {@link InformerNodeSource} watches Node objects
 * through the informer (list + watch, relist on 410, reconnects), {@link StaticNodeSource} is set
 * by hand (unit tests, a fixed cluster).
 */
import { Latch } from '../../util/latch.ts';
import { type Logger, nullLogger } from '../../util/log.ts';
import type { Clock } from '../../util/clock.ts';
import type { Runnable } from '../../util/runnable.ts';
import { aborted } from '../../util/runnable.ts';
import { Informer, type ListWatchClient } from '../../k8s/informer.ts';
import type { KubeObject, Node } from '../../k8s/objects.ts';
import { ipFamily } from '../../util/ip.ts';

/** Antrea's annotation holding a Node's transport addresses (comma-separated) when they differ from InternalIP. */
export const TRANSPORT_ADDRESSES_ANNOTATION = 'node.antrea.io/transport-addresses';

/** A Node as the NodeRoute controller needs it. */
export interface PeerNode {
  readonly name: string;
  /** spec.podCIDRs (or spec.podCIDR); empty until the Node got one. */
  readonly podCIDRs: readonly string[];
  /** Transport addresses: the annotation when set, else the InternalIP addresses. */
  readonly nodeIPs: readonly string[];
}

/** Called with a Node's name and its new state (undefined: deleted). */
export type NodeChangeHandler = (name: string, node: PeerNode | undefined) => void;

export interface NodeSource extends Runnable {
  /** Subscribes to changes; returns the function that unsubscribes. */
  onChange(handler: NodeChangeHandler): () => void;
  /** The Node, or undefined when it does not exist (or is not known yet). */
  get(name: string): PeerNode | undefined;
  /** Every known Node. */
  list(): PeerNode[];
  /** Resolves once the first complete list is known; rejects if `signal` aborts first. */
  waitSynced(signal?: AbortSignal): Promise<void>;
}

/** A Node object reduced to what the controller reads (also used as the informer's transform). */
export function peerNodeOf(obj: Node): PeerNode {
  const spec = obj.spec ?? {};
  const podCIDRs =
    spec.podCIDRs !== undefined && spec.podCIDRs.length > 0 ? spec.podCIDRs : spec.podCIDR ? [spec.podCIDR] : [];
  const annotation = obj.metadata?.annotations?.[TRANSPORT_ADDRESSES_ANNOTATION];
  const fromAnnotation = (annotation ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => ipFamily(s) !== undefined);
  const internal = (obj.status?.addresses ?? [])
    .filter((a) => a.type === 'InternalIP' && ipFamily(a.address) !== undefined)
    .map((a) => a.address);
  return {
    name: obj.metadata?.name ?? '',
    podCIDRs: [...podCIDRs],
    nodeIPs: fromAnnotation.length > 0 ? fromAnnotation : internal,
  };
}

type PeerNodeObject = KubeObject & { readonly peer: PeerNode };

export interface InformerNodeSourceOptions {
  /** List/watch of /api/v1/nodes (kubeListWatch(kc, ResourcePaths.nodes) for a real API server). */
  readonly client: ListWatchClient;
  readonly logger?: Logger;
  readonly clock?: Clock;
}

/** Nodes from the Kubernetes API through an informer. */
export class InformerNodeSource implements NodeSource {
  private readonly informer: Informer<PeerNodeObject>;

  constructor(opts: InformerNodeSourceOptions) {
    this.informer = new Informer<PeerNodeObject>({
      resource: 'nodes',
      client: opts.client,
      transform: (obj) => ({
        metadata: { name: obj.metadata?.name ?? '', resourceVersion: obj.metadata?.resourceVersion ?? '' },
        peer: peerNodeOf(obj),
      }),
      ...(opts.logger === undefined ? {} : { logger: opts.logger }),
      ...(opts.clock === undefined ? {} : { clock: opts.clock }),
    });
  }

  run(signal: AbortSignal): Promise<void> {
    return this.informer.run(signal);
  }

  onChange(handler: NodeChangeHandler): () => void {
    return this.informer.onEvent((type, obj) => handler(obj.peer.name, type === 'DELETED' ? undefined : obj.peer));
  }

  get(name: string): PeerNode | undefined {
    return this.informer.get(name)?.peer;
  }

  list(): PeerNode[] {
    return [...this.informer.list()].map((o) => o.peer);
  }

  waitSynced(signal?: AbortSignal): Promise<void> {
    return this.informer.waitSynced(signal);
  }
}

/** Nodes set by hand: synced from the start; `set` and `delete` notify the subscribers. */
export class StaticNodeSource implements NodeSource {
  private readonly nodes = new Map<string, PeerNode>();
  private readonly handlers = new Set<NodeChangeHandler>();
  private readonly synced = new Latch();
  private readonly logger: Logger;

  constructor(nodes: readonly PeerNode[] = [], opts: { logger?: Logger; synced?: boolean } = {}) {
    for (const n of nodes) this.nodes.set(n.name, n);
    this.logger = opts.logger ?? nullLogger;
    if (opts.synced !== false) this.synced.open();
  }

  /** Marks the initial list complete (when constructed with `synced: false`). */
  markSynced(): void {
    this.synced.open();
  }

  /** Adds or replaces a Node. */
  set(node: PeerNode): void {
    this.nodes.set(node.name, node);
    this.emit(node.name, node);
  }

  /** Removes a Node; absent: nothing happens. */
  delete(name: string): void {
    if (!this.nodes.delete(name)) return;
    this.emit(name, undefined);
  }

  private emit(name: string, node: PeerNode | undefined): void {
    for (const h of this.handlers) h(name, node);
    this.logger.debug('node changed', { node: name, deleted: node === undefined });
  }

  onChange(handler: NodeChangeHandler): () => void {
    this.handlers.add(handler);
    return () => void this.handlers.delete(handler);
  }

  get(name: string): PeerNode | undefined {
    return this.nodes.get(name);
  }

  list(): PeerNode[] {
    return [...this.nodes.values()];
  }

  waitSynced(signal?: AbortSignal): Promise<void> {
    return this.synced.wait(signal);
  }

  /** Nothing to run: resolves when `signal` aborts. */
  run(signal: AbortSignal): Promise<void> {
    return aborted(signal);
  }
}
