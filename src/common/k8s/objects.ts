/**
 * The shapes of the Kubernetes objects antrea-ts reads, as they arrive in JSON from the API server
 * (field names exactly as in the Kubernetes API). Only the fields some component reads are declared;
 * everything is optional and read-only because the API server, not us, decides what is present.
 * Informers may trim objects to these fields (see {@link trimPod} and friends) to save memory.
 */

export interface ObjectMeta {
  readonly name?: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
  readonly generation?: number;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly deletionTimestamp?: string;
}

export interface KubeObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: ObjectMeta;
}

export interface KubeList<T> {
  readonly metadata?: { readonly resourceVersion?: string; readonly continue?: string };
  readonly items?: readonly T[];
}

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelSelectorRequirement {
  readonly key: string;
  readonly operator: string;
  readonly values?: readonly string[];
}

export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly LabelSelectorRequirement[];
}

export interface ContainerPort {
  readonly name?: string;
  readonly containerPort: number;
  readonly protocol?: string;
}

export interface Container {
  readonly name?: string;
  readonly ports?: readonly ContainerPort[];
}

export interface Pod extends KubeObject {
  readonly spec?: {
    readonly nodeName?: string;
    readonly hostNetwork?: boolean;
    readonly serviceAccountName?: string;
    readonly containers?: readonly Container[];
  };
  readonly status?: {
    readonly phase?: string;
    readonly podIP?: string;
    readonly podIPs?: readonly { readonly ip: string }[];
  };
}

export interface Namespace extends KubeObject {
  readonly status?: { readonly phase?: string };
}

export interface NodeAddress {
  readonly type: string;
  readonly address: string;
}

export interface Node extends KubeObject {
  readonly spec?: { readonly podCIDR?: string; readonly podCIDRs?: readonly string[] };
  readonly status?: { readonly addresses?: readonly NodeAddress[] };
}

export type IntOrString = number | string;

export interface IPBlock {
  readonly cidr: string;
  readonly except?: readonly string[];
}

export interface NetworkPolicyPeer {
  readonly podSelector?: LabelSelector;
  readonly namespaceSelector?: LabelSelector;
  readonly ipBlock?: IPBlock;
}

export interface NetworkPolicyPort {
  readonly protocol?: string;
  readonly port?: IntOrString;
  readonly endPort?: number;
}

export interface NetworkPolicyIngressRule {
  readonly from?: readonly NetworkPolicyPeer[];
  readonly ports?: readonly NetworkPolicyPort[];
}

export interface NetworkPolicyEgressRule {
  readonly to?: readonly NetworkPolicyPeer[];
  readonly ports?: readonly NetworkPolicyPort[];
}

export interface NetworkPolicySpec {
  readonly podSelector?: LabelSelector;
  readonly ingress?: readonly NetworkPolicyIngressRule[];
  readonly egress?: readonly NetworkPolicyEgressRule[];
  readonly policyTypes?: readonly string[];
}

export interface NetworkPolicy extends KubeObject {
  readonly spec?: NetworkPolicySpec;
}

export interface ServicePort {
  readonly name?: string;
  readonly protocol?: string;
  readonly port: number;
  readonly targetPort?: number | string;
  readonly nodePort?: number;
}

export interface Service extends KubeObject {
  readonly spec?: {
    readonly type?: string;
    readonly clusterIP?: string;
    readonly clusterIPs?: readonly string[];
    readonly ports?: readonly ServicePort[];
    readonly selector?: Readonly<Record<string, string>>;
    readonly sessionAffinity?: string;
    readonly sessionAffinityConfig?: { readonly clientIP?: { readonly timeoutSeconds?: number } };
    readonly externalTrafficPolicy?: string;
    readonly internalTrafficPolicy?: string;
    readonly externalIPs?: readonly string[];
  };
}

export interface EndpointConditions {
  readonly ready?: boolean;
  readonly serving?: boolean;
  readonly terminating?: boolean;
}

export interface Endpoint {
  readonly addresses: readonly string[];
  readonly conditions?: EndpointConditions;
  readonly nodeName?: string;
  readonly hostname?: string;
  readonly targetRef?: {
    readonly kind?: string;
    readonly namespace?: string;
    readonly name?: string;
    readonly uid?: string;
  };
}

export interface EndpointPort {
  readonly name?: string;
  readonly protocol?: string;
  readonly port?: number;
}

/** discovery.k8s.io/v1 EndpointSlice; label `kubernetes.io/service-name` names its Service. */
export interface EndpointSlice extends KubeObject {
  readonly addressType: string;
  readonly endpoints?: readonly Endpoint[];
  readonly ports?: readonly EndpointPort[];
}

/** The label linking an EndpointSlice to its Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** `namespace/name`, or `name` for cluster-scoped objects: the key informers and stores use. */
export function objectKey(obj: KubeObject): string {
  const ns = obj.metadata?.namespace ?? '';
  const name = obj.metadata?.name ?? '';
  return ns === '' ? name : `${ns}/${name}`;
}

function trimMeta(m: ObjectMeta | undefined, keep: { annotations?: boolean; generation?: boolean } = {}): ObjectMeta {
  const out: {
    -readonly [K in keyof ObjectMeta]: ObjectMeta[K];
  } = {};
  if (m === undefined) return out;
  if (m.name !== undefined) out.name = m.name;
  if (m.namespace !== undefined) out.namespace = m.namespace;
  if (m.uid !== undefined) out.uid = m.uid;
  if (m.resourceVersion !== undefined) out.resourceVersion = m.resourceVersion;
  if (keep.generation === true && m.generation !== undefined) out.generation = m.generation;
  if (m.labels !== undefined) out.labels = m.labels;
  if (keep.annotations === true && m.annotations !== undefined) out.annotations = m.annotations;
  if (m.deletionTimestamp !== undefined) out.deletionTimestamp = m.deletionTimestamp;
  return out;
}

/**
 * A Pod reduced to what policy computation reads: identity, labels, node, host networking, named
 * container ports, phase and IPs. Everything else (volumes, env, probes, managed fields, container
 * statuses...) is dropped.
 */
export function trimPod(pod: Pod): Pod {
  const spec = pod.spec ?? {};
  const containers: Container[] = [];
  for (const c of spec.containers ?? []) {
    const ports: ContainerPort[] = [];
    for (const p of c.ports ?? []) {
      if (p.name === undefined || p.name === '') continue;
      ports.push({
        name: p.name,
        containerPort: p.containerPort,
        ...(p.protocol === undefined ? {} : { protocol: p.protocol }),
      });
    }
    if (ports.length > 0) containers.push({ ports });
  }
  const status = pod.status ?? {};
  return {
    metadata: trimMeta(pod.metadata),
    spec: {
      ...(spec.nodeName === undefined ? {} : { nodeName: spec.nodeName }),
      ...(spec.hostNetwork === true ? { hostNetwork: true } : {}),
      ...(spec.serviceAccountName === undefined ? {} : { serviceAccountName: spec.serviceAccountName }),
      ...(containers.length > 0 ? { containers } : {}),
    },
    status: {
      ...(status.phase === undefined ? {} : { phase: status.phase }),
      ...(status.podIP === undefined ? {} : { podIP: status.podIP }),
      ...(status.podIPs === undefined ? {} : { podIPs: status.podIPs.map((p) => ({ ip: p.ip })) }),
    },
  };
}

/** A Namespace reduced to identity, labels, annotations and phase. */
export function trimNamespace(ns: Namespace): Namespace {
  return {
    metadata: trimMeta(ns.metadata, { annotations: true }),
    ...(ns.status?.phase === undefined ? {} : { status: { phase: ns.status.phase } }),
  };
}

/** A Node reduced to identity, labels, pod CIDRs and addresses. */
export function trimNode(node: Node): Node {
  return {
    metadata: trimMeta(node.metadata),
    spec: {
      ...(node.spec?.podCIDR === undefined ? {} : { podCIDR: node.spec.podCIDR }),
      ...(node.spec?.podCIDRs === undefined ? {} : { podCIDRs: node.spec.podCIDRs }),
    },
    status: { addresses: node.status?.addresses ?? [] },
  };
}

/** A NetworkPolicy without managed fields, annotations and status. */
export function trimNetworkPolicy(np: NetworkPolicy): NetworkPolicy {
  return {
    metadata: trimMeta(np.metadata, { generation: true }),
    ...(np.spec === undefined ? {} : { spec: np.spec }),
  };
}
