/**
 * The informers the NetworkPolicy controller needs (Pods, Namespaces, Nodes, NetworkPolicies), each
 * trimming its objects to the fields the computation reads and feeding the controller's handlers.
 * Pass the result to {@link NetworkPolicyController.run}.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { ResourcePaths, kubeListWatch } from '../../common/k8s/client.ts';
import { Informer, type InformerOptions, type ListWatchClient } from '../../common/k8s/informer.ts';
import {
  type KubeObject,
  type Namespace,
  type NetworkPolicy,
  type Node,
  type Pod,
  trimNamespace,
  trimNetworkPolicy,
  trimNode,
  trimPod,
} from '../../common/k8s/objects.ts';
import type { Logger } from '../../common/util/log.ts';
import type { ControllerSource, NetworkPolicyController } from './controller.ts';

export interface ControllerInformers {
  readonly pods: Informer<Pod>;
  readonly namespaces: Informer<Namespace>;
  readonly nodes: Informer<Node>;
  readonly networkPolicies: Informer<NetworkPolicy>;
  /** All four, for {@link NetworkPolicyController.run}. */
  readonly all: readonly ControllerSource[];
}

export interface ControllerInformerOptions {
  readonly logger?: Logger;
  /** The transport per collection path (default: the API server of `kubeConfig`). */
  readonly client?: (path: string) => ListWatchClient;
  readonly kubeConfig?: KubeConfig;
  /** Extra informer options (backoff, page size...), mainly for tests. */
  readonly informerOptions?: Partial<Omit<InformerOptions<KubeObject>, 'resource' | 'client' | 'transform'>>;
}

/** Creates the informers and subscribes the controller's handlers to them. */
export function createControllerInformers(
  controller: NetworkPolicyController,
  opts: ControllerInformerOptions,
): ControllerInformers {
  const client =
    opts.client ??
    ((path: string): ListWatchClient => {
      if (opts.kubeConfig === undefined)
        throw new TypeError('createControllerInformers needs a kubeConfig or a client');
      return kubeListWatch(opts.kubeConfig, path);
    });
  const make = <T extends KubeObject>(resource: string, path: string, transform: (o: T) => T): Informer<T> =>
    new Informer<T>({
      ...opts.informerOptions,
      ...(opts.logger === undefined ? {} : { logger: opts.logger }),
      resource,
      client: client(path),
      transform: (o) => transform(o as T),
    });
  const pods = make<Pod>('pods', ResourcePaths.pods, trimPod);
  const namespaces = make<Namespace>('namespaces', ResourcePaths.namespaces, trimNamespace);
  const nodes = make<Node>('nodes', ResourcePaths.nodes, trimNode);
  const networkPolicies = make<NetworkPolicy>('networkpolicies', ResourcePaths.networkPolicies, trimNetworkPolicy);
  pods.onEvent((type, obj) => controller.handlePod(type, obj));
  namespaces.onEvent((type, obj) => controller.handleNamespace(type, obj));
  nodes.onEvent((type, obj) => controller.handleNode(type, obj));
  networkPolicies.onEvent((type, obj) => controller.handleNetworkPolicy(type, obj));
  return { pods, namespaces, nodes, networkPolicies, all: [pods, namespaces, nodes, networkPolicies] };
}
